//! swf-runtime: an observability-first worker runtime for Amazon Simple Workflow Service.
//!
//! The binary (`main.rs`) only parses configuration and wires these modules together:
//! - [`swf`]: the one boundary to the SWF API (a trait, its `aws-sdk-swf` implementation and a fake);
//! - [`decider`]: workflow definitions turned into decisions by replaying the whole paged history;
//! - [`worker`]: activity pollers, handler dispatch, heartbeats, cancellation and drain;
//! - [`telemetry`]: field and metric names, telemetry events, log shipping, traces and metrics.

pub mod app;
pub mod backoff;
pub mod bench;
pub mod bench_sinks;
pub mod cli;
pub mod commands;
pub mod config;
pub mod decider;
pub mod demo;
pub mod envelope;
pub mod inject;
pub mod manual;
pub mod pipeline;
pub mod swf;
pub mod telemetry;
pub mod worker;
