//! Telemetry: the names every log line, span and metric uses, and the machinery that ships them.
//!
//! `fields` and `metrics` are the single source of truth for names; dashboards, the Logstash
//! template and the alert rules are tested against what these emit.

pub mod fields;
pub mod metrics;
