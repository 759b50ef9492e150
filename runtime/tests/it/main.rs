//! The runtime integration tests, one module per area, built as one test binary: each separate
//! test file linked its own copy of the whole dependency graph (40-90 MB each); one binary per
//! crate took a clean CI build's `target/` from 2.6 GB to 1.9 GB (`du -s target` after a fresh
//! clone's `.ci/run`). nextest still runs every test in its own process.
//!
//! The tests that install the process's global subscriber (`telemetry::init`) or switch telemetry
//! off process-wide stay binaries of their own (`telemetry_full`, `telemetry_json`,
//! `telemetry_switch`, `observability_e2e`), so that plain `cargo test`, which runs a binary's
//! tests as threads of one process, passes too.

mod common;

mod cli_e2e;
mod decider_replay;
mod deploy_files;
mod drills;
mod pipeline_e2e;
mod telemetry_logstash;
mod telemetry_metrics;
mod telemetry_otlp;
mod worker_aws_backends;
mod worker_aws_http;
mod worker_logs;
mod worker_tasks;
