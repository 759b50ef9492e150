//! The `swf-runtime` binary: everything lives in the library; this only hands over the process.

fn main() -> std::process::ExitCode {
    swf_runtime::commands::main()
}
