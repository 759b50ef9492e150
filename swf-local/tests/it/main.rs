//! The swf-local integration tests, one module per area, built as one test binary: each separate
//! test file linked its own copy of the whole dependency graph (40-90 MB each); one binary per
//! crate took a clean CI build's `target/` from 2.6 GB to 1.9 GB (`du -s target` after a fresh
//! clone's `.ci/run`). nextest still runs every test in its own process.

mod common;

mod api;
mod boto3_client;
mod concurrency;
mod decoder_proptest;
mod durability;
mod sigv4;
mod timeouts;
