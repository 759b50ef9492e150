//! `swf-local` binary: serves the endpoint until interrupted.
//!
//! Usage: `swf-local [--listen ADDR] [--db PATH] [--long-poll-secs N]`. The first line on stdout is
//! `swf-local listening on http://ADDR`, so a parent process (the durability test that kills this
//! process with SIGKILL) can learn the port. Credentials come from `SWF_LOCAL_ACCESS_KEY_ID` and
//! `SWF_LOCAL_SECRET_ACCESS_KEY` when set.

// Same allocator as the `swf-runtime` binary that embeds swf-local: the server allocates many small
// JSON values per request, and glibc malloc (arena locks, consolidation) was a fifth of the
// profile of this workload.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::time::Duration;

fn usage() -> ! {
    eprintln!("usage: swf-local [--listen ADDR] [--db PATH] [--long-poll-secs N]");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let mut listen = "127.0.0.1:7070".to_string();
    let mut db = "swf-local.db".to_string();
    let mut long_poll = 60u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--listen" => listen = v,
            "--db" => db = v,
            "--long-poll-secs" => long_poll = v.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let Ok(addr) = listen.parse() else { usage() };
    let mut config = swf_local::Config::new(addr, db.into());
    config.long_poll_timeout = Duration::from_secs(long_poll.max(1));
    if let (Ok(k), Ok(s)) = (
        std::env::var("SWF_LOCAL_ACCESS_KEY_ID"),
        std::env::var("SWF_LOCAL_SECRET_ACCESS_KEY"),
    ) {
        config.credentials = Some((k, s));
    }
    let server = match swf_local::start(config).await {
        Ok(s) => s,
        Err(err) => {
            eprintln!("swf-local: {err}");
            std::process::exit(1);
        }
    };
    println!("swf-local listening on {}", server.endpoint_url());
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
}
