//! The swf-local integration tests, one module per area, built as one test binary: each separate
//! test file linked its own copy of the whole dependency graph (50-90 MB each), which made the
//! clean CI build's `target/` and its link time about twice what one binary takes. nextest still
//! runs every test in its own process.

mod common;

mod api;
mod boto3_client;
mod concurrency;
mod decoder_proptest;
mod durability;
mod sigv4;
mod timeouts;
