//! The `swf-runtime` binary: parse configuration, set up telemetry, build the app, wait for a signal.

fn main() {
    println!("swf-runtime: under construction");
}
