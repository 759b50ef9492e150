//! The `swf-runtime` binary: everything lives in the library; this only hands over the process.

// The runtime (and the embedded swf-local) allocate many small JSON values per request; glibc's
// malloc showed as the largest item after SQLite in swf-local's profile, mimalloc is measurably
// cheaper for this pattern (see README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    swf_runtime::commands::main()
}
