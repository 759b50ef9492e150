//! Telemetry events: one struct per occurrence whose `emit()` writes the log line and updates the
//! metric together, so the two cannot drift apart (the pattern of vector's `internal_events`).
//!
//! Events are built where the occurrence happens and emitted at once; they hold only borrowed or
//! cheap data. The events here are the telemetry pipeline's own; the worker and decider define
//! theirs next to their code with the same trait.
//!
//! Events raised from inside the log pipeline itself (the Logstash shipper, the local writer) must
//! not go through `tracing`, or a failing sink would feed itself: those write one line to stderr.

use super::fields;
use super::metrics as m;

/// An occurrence worth a log line and a metric.
pub trait TelemetryEvent {
    fn emit(&self);
}

/// Log lines lost because the Logstash spool or the in-memory queue in front of it was full.
#[derive(Debug, Clone, Copy)]
pub struct TelemetryDropped {
    /// Lines dropped by this occurrence.
    pub lines: u64,
    /// Whether this is the first drop of an episode: only then is it said (once) on stderr.
    pub first_of_episode: bool,
    /// Why: `spool_full` or `queue_full`.
    pub reason: &'static str,
}

impl TelemetryEvent for TelemetryDropped {
    fn emit(&self) {
        m::increment(&m::LOG_LINES_DROPPED, &[], self.lines);
        if self.first_of_episode {
            // stderr, not tracing: the line would go back into the queue that is full.
            eprintln!(
                "{{\"{}\":\"warn\",\"reason\":\"{}\",\"{}\":\"Log lines are being dropped: the Logstash spool or queue is full; see swf_log_lines_dropped_total.\"}}",
                fields::LOG_LEVEL,
                self.reason,
                fields::MESSAGE
            );
        }
    }
}

/// An OTLP export attempt failed; its spans are lost.
pub struct SpanExportFailed<'a> {
    pub spans: u64,
    pub error: &'a dyn std::fmt::Display,
}

impl TelemetryEvent for SpanExportFailed<'_> {
    fn emit(&self) {
        m::increment(&m::SPANS_DROPPED, &[], self.spans);
        // Runs on the span processor's thread, outside any span: the line cannot create spans.
        tracing::warn!(
            spans = self.spans,
            error = %self.error,
            "Span export failed, spans dropped."
        );
    }
}

/// The collector took an export but rejected some of its spans (OTLP partial success). They are
/// counted as dropped here, and the export counts only the others as exported
/// (`otlp::CountingExporter`).
pub struct SpansRejected<'a> {
    pub spans: u64,
    pub message: &'a str,
}

impl TelemetryEvent for SpansRejected<'_> {
    fn emit(&self) {
        m::increment(&m::SPANS_DROPPED, &[], self.spans);
        tracing::warn!(
            spans = self.spans,
            error = self.message,
            "The OTLP collector rejected spans of an export."
        );
    }
}

/// Spans delivered to the OTLP collector.
#[derive(Debug, Clone, Copy)]
pub struct SpansExported {
    pub spans: u64,
}

impl TelemetryEvent for SpansExported {
    fn emit(&self) {
        m::increment(&m::SPANS_EXPORTED, &[], self.spans);
    }
}

/// Spans that never reached the exporter (the batch queue was full), counted at shutdown.
#[derive(Debug, Clone, Copy)]
pub struct SpansLostInQueue {
    pub spans: u64,
}

impl TelemetryEvent for SpansLostInQueue {
    fn emit(&self) {
        if self.spans == 0 {
            return;
        }
        m::increment(&m::SPANS_DROPPED, &[], self.spans);
        tracing::warn!(
            spans = self.spans,
            "Spans dropped before export: the batch queue was full."
        );
    }
}

/// Lines handed to Logstash or to the spool; counted only, a log line per line would recurse.
#[derive(Debug, Clone, Copy)]
pub struct LogLinesShipped {
    pub lines: u64,
}

impl TelemetryEvent for LogLinesShipped {
    fn emit(&self) {
        m::increment(&m::LOG_LINES_SHIPPED, &[], self.lines);
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LogLinesSpooled {
    pub lines: u64,
}

impl TelemetryEvent for LogLinesSpooled {
    fn emit(&self) {
        m::increment(&m::LOG_LINES_SPOOLED, &[], self.lines);
    }
}

/// Which kind of task a long poll asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollKind {
    Decision,
    Activity,
}

/// A long poll came back, with a task or empty: the one event behind `swf_polls_total`, shared by
/// the decider and the workers so both count polls the same way.
#[derive(Debug, Clone, Copy)]
pub struct PollAnswered<'a> {
    pub kind: PollKind,
    pub task_list: &'a str,
    pub got_task: bool,
}

impl PollAnswered<'_> {
    pub fn emit(&self) {
        let outcome = if self.got_task { "task" } else { "empty" };
        m::increment(&m::POLLS, &[self.task_list, outcome], 1);
        match self.kind {
            PollKind::Decision => tracing::trace!(
                { fields::TASK_LIST } = self.task_list,
                { fields::OUTCOME } = outcome,
                "Decision poll answered."
            ),
            PollKind::Activity => tracing::trace!(
                { fields::TASK_LIST } = self.task_list,
                { fields::OUTCOME } = outcome,
                "Activity poll answered."
            ),
        }
    }
}
