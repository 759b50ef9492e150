//! The JSON log layer: one ECS-style object per event, with every field of the event's span and
//! of its parents flattened at the top level.
//!
//! Why not a crate: `tracing-subscriber`'s JSON formatter nests span fields under `spans`/`span`
//! and names its keys `timestamp`/`level`/`fields.message`; `tracing-logstash` and the bunyan
//! formatter fix the keys but not the OpenTelemetry ids, and none derives `trace.id` from a
//! `run_id` when no OTLP exporter is running. Handler lines must inherit `workflow_id`,
//! `media_uuid`, ... at the top level, because that is what the Logstash template, Kibana queries
//! and `swf-runtime logs` search on.
//!
//! Lifecycle: span fields are captured when a span is created and updated on `record`, stored in
//! the span's extensions and freed with it. Each event is rendered once, in buffers the thread
//! reuses, and handed to every [`LineSink`] (stdout/file writer, Logstash shipper) to copy; sinks
//! never block for long.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::fields as f;
use crate::envelope::trace_id_for_run;

/// Receives each finished JSON line (without the trailing newline).
///
/// Implementations must return quickly and must not emit `tracing` events (that would recurse).
pub trait LineSink: Send + Sync + 'static {
    fn write_line(&self, line: &str);
}

/// Fields of one span, rendered once as JSON when the span is created, in the order they were
/// declared; a field recorded later is appended, a value recorded again replaced in place.
struct SpanFields {
    /// `,"key":value` for every field (reserved keys left out), appended as is to every line of
    /// the span when none of its keys is taken already. Written straight from the recorded
    /// values: keeping a `serde_json::Value` per field first cost an allocation per string field,
    /// about eight per task span, for values that were only ever rendered.
    rendered: String,
    /// Each field in `rendered`: its key, where its `,"key":` starts, where its value starts and
    /// where it ends. Used for a line on which an inner span or the event already wrote some of
    /// these keys, and to find `run_id`.
    keys: Vec<(&'static str, usize, usize, usize)>,
    /// [`key_bit`] of every key in `keys`: a line checks its keys against the span's one by one
    /// only when the masks share a bit.
    mask: u64,
    /// `span.id` used when no OpenTelemetry span backs this span. Drawn at the first line that
    /// needs it: with OpenTelemetry on, never.
    local_span_id: OnceLock<SpanId>,
    /// Trace id derived from this span's own `run_id` (a SHA-256), computed at the first line that
    /// needs it (none does while an OpenTelemetry span backs the line) and again after a
    /// `record`.
    run_trace_id: OnceLock<Option<TraceId>>,
    /// Trace and span id of the OpenTelemetry span behind this span, looked up at its first line.
    /// They cannot change after that: the parent (and with it the trace id) is set right after a
    /// task span is created, before anything logs in it, and the first line starts the span.
    /// Ids are kept as numbers (`Copy`) and written as hex into each line.
    otel_ids: OnceLock<Option<(TraceId, SpanId)>>,
}

impl SpanFields {
    fn new(capacity: usize) -> Self {
        SpanFields {
            rendered: String::with_capacity(64 * capacity),
            keys: Vec::with_capacity(capacity),
            mask: 0,
            local_span_id: OnceLock::new(),
            run_trace_id: OnceLock::new(),
            otel_ids: OnceLock::new(),
        }
    }

    /// Appends `,"key":` and notes where the field starts; then the caller writes its value and
    /// calls [`SpanFields::end`]. Nothing for a reserved key or one already rendered (the
    /// caller replaces that one's value).
    fn start(&mut self, key: &'static str) -> Start {
        let bit = key_bit(key);
        if is_reserved(key, bit) {
            return Start::Reserved;
        }
        if self.mask & bit != 0 {
            if let Some(i) = self.keys.iter().position(|(k, ..)| *k == key) {
                return Start::Present(i);
            }
        }
        self.mask |= bit;
        let start = self.rendered.len();
        self.rendered.push(',');
        push_key(&mut self.rendered, key);
        let value = self.rendered.len();
        self.keys.push((key, start, value, value));
        Start::New
    }

    fn end(&mut self) {
        if let Some(last) = self.keys.last_mut() {
            last.3 = self.rendered.len();
        }
    }

    /// Replaces the value of the `i`th field with `text` (already JSON), moving the fields
    /// after it.
    fn replace_value(&mut self, i: usize, text: &str) {
        let (_, _, value, end) = self.keys[i];
        self.rendered.replace_range(value..end, text);
        self.keys[i].3 = value + text.len();
        // Every later offset is at least `end`, so this never goes below zero.
        let moved = |at: &mut usize| *at = *at + text.len() - (end - value);
        for (_, start, value, end) in &mut self.keys[i + 1..] {
            moved(start);
            moved(value);
            moved(end);
        }
    }

    fn local_span_id(&self) -> SpanId {
        *self
            .local_span_id
            .get_or_init(|| SpanId::from(rand::random::<u64>().max(1)))
    }

    fn run_trace_id(&self) -> Option<TraceId> {
        *self.run_trace_id.get_or_init(|| {
            let (_, _, value, end) = self.keys.iter().find(|(k, ..)| *k == f::RUN_ID)?;
            let text = &self.rendered[*value..*end];
            // A run id is a plain string; anything else (escaped, a number) is read back as JSON.
            match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                Some(plain) if !plain.contains('\\') => trace_id_of_run(plain),
                _ => serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|v| run_trace_id(&v)),
            }
        })
    }

    /// Whether a key on the line so far (`seen`, whose [`key_bit`]s are `seen_mask`) is one of
    /// this span's.
    fn has_key_in(&self, seen: &[&'static str], seen_mask: u64) -> bool {
        self.mask & seen_mask != 0 && self.keys.iter().any(|(k, ..)| seen.contains(k))
    }

    /// Appends the fields whose keys are not on the line yet, and notes them as written.
    fn push_unseen(&self, body: &mut String, seen: &mut Vec<&'static str>) {
        for (key, start, _, end) in &self.keys {
            if !seen.contains(key) {
                seen.push(key);
                body.push_str(&self.rendered[*start..*end]);
            }
        }
    }
}

fn run_trace_id(run_id: &Value) -> Option<TraceId> {
    match run_id {
        Value::String(s) => trace_id_of_run(s),
        Value::Null => None,
        other => trace_id_of_run(&other.to_string()),
    }
}

/// The trace id of the execution with this run id (none for an empty one).
fn trace_id_of_run(run_id: &str) -> Option<TraceId> {
    (!run_id.is_empty()).then(|| TraceId::from_bytes(trace_id_for_run(run_id)))
}

/// What [`SpanFields::start`] did with a key.
enum Start {
    /// Started its field: write the value.
    New,
    /// The span has it already, as its `n`th field.
    Present(usize),
    /// The layer writes that key itself.
    Reserved,
}

/// Renders a span's fields into its [`SpanFields`] as they are visited.
struct SpanFieldWriter<'a> {
    out: &'a mut SpanFields,
}

impl SpanFieldWriter<'_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut String)) {
        match self.out.start(field.name()) {
            Start::New => {
                value(&mut self.out.rendered);
                self.out.end();
            }
            Start::Present(i) => {
                let mut text = String::new();
                value(&mut text);
                self.out.replace_value(i, &text);
            }
            Start::Reserved => {}
        }
    }
}

impl Visit for SpanFieldWriter<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // `Value` writes non-finite numbers as `null`, keeping the line valid JSON.
        self.field(field, |out| push_json(out, &Value::from(value)));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| out.push_str(itoa::Buffer::new().format(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| out.push_str(itoa::Buffer::new().format(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| {
            out.push_str(if value { "true" } else { "false" })
        });
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| push_str(out, value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |out| push_str(out, &value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.field(field, |out| push_str(out, &format!("{value:?}")));
    }
}

/// Writes an event's fields into the line as it records them, without building a value per field
/// first (that was an allocation per field on every line). The message is kept apart: it goes
/// near the front of the line.
struct EventWriter<'a> {
    body: &'a mut String,
    seen: &'a mut Vec<&'static str>,
    message: &'a mut String,
    run_id: &'a mut Option<String>,
}

impl EventWriter<'_> {
    /// Starts `,"key":` and returns true, or returns false for the message (whose text `text`
    /// writes), a reserved key or a key already written.
    fn start(&mut self, name: &'static str, text: impl FnOnce(&mut String)) -> bool {
        if name == f::MESSAGE {
            text(self.message);
            return false;
        }
        start_field(self.body, self.seen, name)
    }

    fn scalar(&mut self, field: &Field, value: Value) {
        if self.start(field.name(), |m| {
            let _ = write!(m, "{value}");
        }) {
            let _ = write!(self.body, "{value}");
        }
    }

    /// Integers are written with `itoa`: through `Value`'s `Display` each cost a formatter and a
    /// serializer, about 500 instructions per field on every line.
    fn integer(&mut self, field: &Field, value: impl itoa::Integer) {
        let mut buf = itoa::Buffer::new();
        let text = buf.format(value);
        if self.start(field.name(), |m| m.push_str(text)) {
            self.body.push_str(text);
        }
    }

    fn text(&mut self, field: &Field, value: &str) {
        if field.name() == f::RUN_ID {
            *self.run_id = Some(value.to_string());
        }
        if self.start(field.name(), |m| m.push_str(value)) {
            push_str(self.body, value);
        }
    }
}

impl Visit for EventWriter<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // `Value` writes non-finite numbers as `null`, keeping the line valid JSON.
        self.scalar(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.scalar(field, Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, &value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == f::MESSAGE {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.text(field, &format!("{value:?}"));
        }
    }
}

/// Keys the layer writes itself; fields of the same name are ignored rather than duplicated.
const RESERVED: &[&str] = &[
    f::TIMESTAMP,
    f::LOG_LEVEL,
    f::SERVICE_NAME,
    f::HOST_NAME,
    f::TRACE_ID,
    f::SPAN_ID,
    f::LOG_LOGGER,
];

/// Whether the layer writes `key` (whose [`key_bit`] is `bit`) itself: compared with the seven
/// only when its bit is one of theirs. That comparison used to run for every field of every line.
fn is_reserved(key: &str, bit: u64) -> bool {
    RESERVED_BITS & bit != 0 && RESERVED.contains(&key)
}

/// The [`key_bit`]s of the reserved keys.
const RESERVED_BITS: u64 = {
    let mut bits = 0;
    let mut i = 0;
    while i < RESERVED.len() {
        bits |= key_bit(RESERVED[i]);
        i += 1;
    }
    bits
};

/// One of 64 bits for a key (FNV-1a of its bytes): a line's keys and a span's are compared one
/// by one only when their masks share a bit. By hand because it is a few lines and runs on a
/// dozen bytes; a general-purpose hasher costs more than the comparisons it saves.
const fn key_bit(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash = (hash ^ bytes[i] as u64).wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    1 << (hash >> 58)
}

/// The layer; see the module documentation.
pub struct JsonLogLayer {
    keys: FixedKeys,
    sinks: Vec<Arc<dyn LineSink>>,
    dispatch: OnceLock<tracing::dispatcher::WeakDispatch>,
}

/// The parts of a line that never change, rendered once: the keys every line has, and the
/// service and host names. Escaping them again on every line was a quarter of the escaping.
struct FixedKeys {
    /// `{"@timestamp":`
    open: String,
    /// `,"log.level":`
    level: String,
    /// `,"message":`
    message: String,
    /// `,"service.name":"...","host.name":"...","log.logger":`
    logger: String,
    /// `,"trace.id":`
    trace_id: String,
    /// `,"span.id":`
    span_id: String,
}

impl FixedKeys {
    fn new(service_name: &str, host_name: &str) -> Self {
        let key = |lead: &str, name: &str| {
            let mut out = String::from(lead);
            push_key(&mut out, name);
            out
        };
        let mut logger = String::new();
        for (name, value) in [(f::SERVICE_NAME, service_name), (f::HOST_NAME, host_name)] {
            logger.push(',');
            push_key(&mut logger, name);
            push_str(&mut logger, value);
        }
        logger.push_str(&key(",", f::LOG_LOGGER));
        FixedKeys {
            open: key("{", f::TIMESTAMP),
            level: key(",", f::LOG_LEVEL),
            message: key(",", f::MESSAGE),
            logger,
            trace_id: key(",", f::TRACE_ID),
            span_id: key(",", f::SPAN_ID),
        }
    }
}

impl JsonLogLayer {
    pub fn new(service_name: &str, host_name: &str, sinks: Vec<Arc<dyn LineSink>>) -> Self {
        JsonLogLayer {
            keys: FixedKeys::new(service_name, host_name),
            sinks,
            dispatch: OnceLock::new(),
        }
    }

    /// Trace and span id of the event's span from the OpenTelemetry layer, when one runs.
    fn otel_ids(&self, span: &Id) -> Option<(TraceId, SpanId)> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let cx = tracing_opentelemetry::get_otel_context(span, &dispatch)?;
        let otel_span = cx.span();
        let sc = otel_span.span_context();
        sc.is_valid().then(|| (sc.trace_id(), sc.span_id()))
    }
}

impl<S> Layer<S> for JsonLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::new(attrs.fields().len());
        attrs.record(&mut SpanFieldWriter { out: &mut fields });
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        let Some(fields) = ext.get_mut::<SpanFields>() else {
            return;
        };
        // A run id recorded now names the span's trace from now on.
        fields.run_trace_id = OnceLock::new();
        // The usual record fills a field declared `Empty`: it goes at the end. A value recorded
        // again replaces the old one in place. The span's ids stay (see `otel_ids`).
        values.record(&mut SpanFieldWriter { out: fields });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if self.sinks.is_empty() {
            return;
        }
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.emit(event, &ctx, &mut scratch),
            // `tracing` does not dispatch an event raised while one is dispatched on this thread,
            // so the buffers are never taken here; fresh ones rather than a panic if they were.
            Err(_) => self.emit(event, &ctx, &mut Scratch::default()),
        });
    }
}

/// Buffers one line is built in, kept per thread and reused: a line allocates nothing (each sink
/// copies it into its queue's buffer, which is reused too).
#[derive(Default)]
struct Scratch {
    line: String,
    body: String,
    message: String,
    seen: Vec<&'static str>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// A buffer grown past this by one huge line is given back instead of kept.
const SCRATCH_KEEP_BYTES: usize = 64 * 1024;

impl JsonLogLayer {
    /// Renders the event into `scratch.line` and hands it to every sink.
    fn emit<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, scratch: &mut Scratch)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Scratch {
            line,
            body,
            message,
            seen,
        } = scratch;
        line.clear();
        body.clear();
        message.clear();
        seen.clear();
        // The event's own fields go straight into `body`; they win over span fields of the same
        // name, inner spans over outer ones (`seen`).
        seen.push(f::MESSAGE);
        let mut event_run_id: Option<String> = None;
        event.record(&mut EventWriter {
            body,
            seen,
            message,
            run_id: &mut event_run_id,
        });

        let meta = event.metadata();
        let keys = &self.keys;
        line.push_str(&keys.open);
        push_timestamp(line);
        line.push_str(&keys.level);
        // Level names need no escaping.
        line.push('"');
        line.push_str(level_name(meta.level()));
        line.push('"');
        line.push_str(&keys.message);
        push_str(line, message);
        line.push_str(&keys.logger);
        push_str(line, meta.target());

        // The nearest span with a run id names the execution (an event's own `run_id` first).
        let mut run_trace: Option<TraceId> = event_run_id.as_deref().and_then(trace_id_of_run);
        let mut local_span_id: Option<SpanId> = None;
        let mut otel: Option<(TraceId, SpanId)> = None;
        let mut leaf = true;
        let mut seen_mask = seen.iter().fold(0, |mask, key| mask | key_bit(key));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                let ext = span.extensions();
                let Some(fields) = ext.get::<SpanFields>() else {
                    leaf = false;
                    continue;
                };
                if leaf {
                    otel = *fields.otel_ids.get_or_init(|| self.otel_ids(&span.id()));
                    leaf = false;
                }
                // Only a line no OpenTelemetry span backs needs the ids derived here.
                if otel.is_none() {
                    local_span_id = local_span_id.or_else(|| Some(fields.local_span_id()));
                    run_trace = run_trace.or_else(|| fields.run_trace_id());
                }
                if fields.has_key_in(seen, seen_mask) {
                    fields.push_unseen(body, seen);
                } else {
                    body.push_str(&fields.rendered);
                    seen.extend(fields.keys.iter().map(|(k, ..)| *k));
                }
                seen_mask |= fields.mask;
            }
        }

        let (trace_id, span_id) = match otel {
            Some((t, s)) => (Some(t), Some(s)),
            None => (run_trace, local_span_id),
        };
        if let Some(trace_id) = trace_id {
            line.push_str(&keys.trace_id);
            push_hex(line, &trace_id.to_bytes());
        }
        if let Some(span_id) = span_id {
            line.push_str(&keys.span_id);
            push_hex(line, &span_id.to_bytes());
        }
        line.push_str(body);
        line.push('}');
        for sink in &self.sinks {
            sink.write_line(line);
        }
        for buf in [line, body, message] {
            if buf.capacity() > SCRATCH_KEEP_BYTES {
                *buf = String::new();
            }
        }
    }
}

/// `log.level`'s value: the level in lower case, without building a string per line.
fn level_name(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::ERROR => "error",
        tracing::Level::WARN => "warn",
        tracing::Level::INFO => "info",
        tracing::Level::DEBUG => "debug",
        tracing::Level::TRACE => "trace",
    }
}

/// Appends an id (16 or 8 bytes) as a JSON string of lower-case hex.
///
/// Why by hand: `hex::encode_to_slice` took about 500 instructions per id under callgrind, and
/// every line carries two; a nibble table writes the digits in a few dozen.
fn push_hex(out: &mut String, id: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 2 + 2 * 16];
    let Some(digits) = buf.get_mut(1..1 + 2 * id.len()) else {
        return;
    };
    for (pair, byte) in digits.chunks_exact_mut(2).zip(id) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    let end = 2 + 2 * id.len();
    buf[0] = b'"';
    buf[end - 1] = b'"';
    // Only ASCII was written.
    out.push_str(std::str::from_utf8(&buf[..end]).unwrap_or_default());
}

/// Appends `,"key":` and notes the key, unless it is reserved or already on the line: the first
/// writer of a key wins. Says whether it appended.
fn start_field(out: &mut String, seen: &mut Vec<&'static str>, key: &'static str) -> bool {
    if seen.contains(&key) || is_reserved(key, key_bit(key)) {
        return false;
    }
    seen.push(key);
    out.push(',');
    push_key(out, key);
    true
}

/// Appends `value` as JSON.
fn push_json(out: &mut String, value: &Value) {
    match value {
        // The common cases directly: going through `Display` costs a formatter per field.
        Value::String(s) => push_str(out, s),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
        Value::Number(n) if n.is_u64() || n.is_i64() => {
            let mut buf = itoa::Buffer::new();
            match n.as_u64() {
                Some(u) => out.push_str(buf.format(u)),
                None => out.push_str(buf.format(n.as_i64().unwrap_or_default())),
            }
        }
        // `Value`'s Display is its compact JSON encoding.
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

fn push_key(out: &mut String, key: &str) {
    push_str(out, key);
    out.push(':');
}

/// Appends `s` as a JSON string literal. Copies runs of plain characters in one piece: most
/// values (ids, names) need no escaping at all.
///
/// Why by hand: this scan was the JSON layer's largest cost (about a fifth of the instructions
/// telemetry adds to an execution, one byte at a time). It now skips eight plain bytes per step
/// ([`needs_escape`]); `memchr` finds at most three given bytes, not a range, and `serde_json`
/// escapes through a per-byte table into a byte buffer.
fn push_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut plain = 0;
    let mut i = 0;
    while i < bytes.len() {
        // A whole word is one load; only the last few bytes are copied, padded with spaces
        // (plain), to make a word too (a copy of a variable length is a call to `memcpy`, and
        // did that for every word it cost more than the test itself).
        let (word, step) = match bytes
            .get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        {
            Some(word) => (word, 8),
            None => {
                let rest = &bytes[i..];
                let mut word = [b' '; 8];
                word[..rest.len()].copy_from_slice(rest);
                (word, rest.len())
            }
        };
        if !needs_escape(u64::from_le_bytes(word)) {
            i += step;
            continue;
        }
        let b = bytes[i];
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b if b < 0x20 => "",
            _ => {
                i += 1;
                continue;
            }
        };
        // Only ASCII bytes get here, so `i` is always on a character boundary.
        out.push_str(&s[plain..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        i += 1;
        plain = i;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// Whether any of the eight bytes in `word` must be escaped in a JSON string: a control character
/// (below 0x20), `"` or `\`. The classic word-at-a-time tests (exact as a yes/no answer): a byte
/// below `n` (for `n` <= 0x80) leaves its high bit set in `(w - n*ONES) & !w`, and a byte equal to
/// `c` is a zero byte of `w ^ c*ONES`. Bytes of multi-byte UTF-8 characters (0x80 and above) never
/// match.
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS;
    let control = below(word, 0x20);
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    (control | quote | backslash) != 0
}

fn push_timestamp(out: &mut String) {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    push_timestamp_at(
        out,
        i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        since_epoch.subsec_millis(),
    );
}

/// `"YYYY-MM-DDTHH:MM:SS.mmmZ"` for a Unix time in seconds and milliseconds. The part up to the
/// seconds is formatted once per second per thread: most lines of a busy second share it, and
/// formatting seven fields per line showed in the profile. The clock is read as a plain duration
/// since the epoch: building an `OffsetDateTime` for every line cost more than the rest of the
/// timestamp.
fn push_timestamp_at(out: &mut String, unix_secs: i64, millis: u32) {
    thread_local! {
        static PREFIX: std::cell::RefCell<(i64, String)> =
            const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    PREFIX.with(|prefix| {
        let mut prefix = prefix.borrow_mut();
        if prefix.0 != unix_secs {
            let at = time::OffsetDateTime::from_unix_timestamp(unix_secs)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            prefix.1.clear();
            let _ = write!(
                prefix.1,
                "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second(),
            );
            prefix.0 = unix_secs;
        }
        out.push_str(&prefix.1);
    });
    let millis = millis.min(999);
    out.push(char::from(b'0' + (millis / 100) as u8));
    out.push(char::from(b'0' + (millis / 10 % 10) as u8));
    out.push(char::from(b'0' + (millis % 10) as u8));
    out.push_str("Z\"");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn timestamps_are_rfc3339_with_milliseconds() {
        use time::macros::datetime;
        for (at, want) in [
            (
                datetime!(2026-11-26 22:05:09.007 UTC),
                "2026-11-26T22:05:09.007Z",
            ),
            (
                datetime!(2026-11-26 22:05:09.999 UTC),
                "2026-11-26T22:05:09.999Z",
            ),
            // Same thread, next second: the cached prefix must not leak into it.
            (
                datetime!(2026-11-26 22:05:10.000 UTC),
                "2026-11-26T22:05:10.000Z",
            ),
            (
                datetime!(1999-01-02 03:04:05.120 UTC),
                "1999-01-02T03:04:05.120Z",
            ),
        ] {
            let mut out = String::new();
            push_timestamp_at(&mut out, at.unix_timestamp(), u32::from(at.millisecond()));
            assert_eq!(out, format!("\"{want}\""));
        }
    }

    #[test]
    fn strings_are_escaped_as_json() {
        for raw in [
            "plain-id-123",
            "a\"b\\c\nd\re\tf\u{1}g\u{1f}",
            "é ünïcode ✓ \u{7f}",
            "",
        ] {
            let mut out = String::new();
            push_str(&mut out, raw);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, raw, "{out}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_round_trips_through_push_str(raw in "(?s).{0,80}", cut in 0usize..8) {
            // A prefix shifts where the eight-byte steps fall.
            let raw = format!("{}{raw}", &"abcdefg"[..cut]);
            let mut out = String::new();
            push_str(&mut out, &raw);
            let back: String = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(back, raw);
        }

        #[test]
        fn the_word_test_agrees_with_the_byte_test(word: u64) {
            let bytewise = word
                .to_le_bytes()
                .iter()
                .any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            proptest::prop_assert_eq!(needs_escape(word), bytewise);
        }
    }

    #[test]
    fn the_word_test_finds_each_special_byte_in_every_position() {
        for special in (0u8..0x20).chain([b'"', b'\\']) {
            for pos in 0..8 {
                let mut bytes = *b"plain-id";
                bytes[pos] = special;
                assert!(
                    needs_escape(u64::from_le_bytes(bytes)),
                    "{special:#x} at {pos}"
                );
            }
        }
        for plain in [
            *b"plain-id",
            *b"\x7f\x80\xff ~!#$",
            [0x21; 8],
            [0x5b; 8],
            [0x5d; 8],
        ] {
            assert!(!needs_escape(u64::from_le_bytes(plain)), "{plain:?}");
        }
    }

    #[derive(Default)]
    struct Memory(Mutex<Vec<String>>);
    impl LineSink for Memory {
        fn write_line(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_string());
        }
    }

    #[test]
    fn lines_flatten_span_fields_and_escape_strings() {
        let sink = Arc::new(Memory::default());
        let subscriber = || {
            tracing_subscriber::registry().with(JsonLogLayer::new(
                "svc",
                "host-1",
                vec![sink.clone() as Arc<dyn LineSink>],
            ))
        };
        tracing::subscriber::with_default(subscriber(), || {
            let outer =
                tracing::info_span!("task", run_id = "r-1", media_uuid = "m-1", attempt = 2);
            let _o = outer.enter();
            let inner =
                tracing::info_span!("handler", attempt = 3, duration_ms = tracing::field::Empty);
            let _i = inner.enter();
            inner.record("duration_ms", 12u64);
            tracing::warn!(error = %"bad \"quote\"\n", "Something failed.");
        });
        tracing::subscriber::with_default(subscriber(), || {
            let late = tracing::info_span!("decision", run_id = tracing::field::Empty);
            let _l = late.enter();
            tracing::info!("Before the run id is known.");
            late.record("run_id", "r-2");
            tracing::info!("After.");
        });
        tracing::subscriber::with_default(subscriber(), || {
            let task = tracing::info_span!("task", run_id = "r-3", media_uuid = "m-3");
            let _t = task.enter();
            tracing::info!(media_uuid = "m-own", "The event's own field wins.");
            tracing::info!("The span's again.");
        });
        let lines = sink.0.lock().unwrap();
        assert_eq!(lines.len(), 5);
        let own: Value = serde_json::from_str(&lines[3]).unwrap();
        assert_eq!(own["media_uuid"], "m-own", "{own}");
        assert_eq!(own["run_id"], "r-3", "{own}");
        assert_eq!(lines[3].matches("media_uuid").count(), 1, "{}", lines[3]);
        let again: Value = serde_json::from_str(&lines[4]).unwrap();
        assert_eq!(again["media_uuid"], "m-3", "{again}");
        let before: Value = serde_json::from_str(&lines[1]).unwrap();
        assert!(before.get("trace.id").is_none(), "{before}");
        let after: Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(after["trace.id"], hex::encode(trace_id_for_run("r-2")));
        assert_eq!(after["span.id"], before["span.id"]);
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["message"], "Something failed.");
        assert_eq!(v["log.level"], "warn");
        assert_eq!(v["service.name"], "svc");
        assert_eq!(v["host.name"], "host-1");
        assert_eq!(v["media_uuid"], "m-1");
        assert_eq!(v["attempt"], 3, "the inner span wins");
        assert_eq!(v["duration_ms"], 12);
        assert_eq!(v["error"], "bad \"quote\"\n");
        assert_eq!(v["trace.id"], hex::encode(trace_id_for_run("r-1")));
        assert_eq!(v["span.id"].as_str().unwrap().len(), 16);
        let ts = v["@timestamp"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok(),
            "{ts}"
        );
        assert_eq!(ts.len(), 24, "{ts}");
    }

    #[test]
    fn every_reserved_key_is_caught_by_its_bit() {
        for key in RESERVED {
            assert!(
                is_reserved(key, key_bit(key)),
                "{key} would be written twice"
            );
        }
        for key in f::TASK_IDENTITY.iter().chain(f::ACTIVITY_IDENTITY) {
            assert!(!is_reserved(key, key_bit(key)), "{key}");
        }
    }

    #[test]
    fn ids_are_written_as_lower_case_hex() {
        let mut out = String::new();
        push_hex(&mut out, &[0x00, 0x0f, 0xa5, 0xff]);
        push_hex(&mut out, &[0xab; 16]);
        assert_eq!(out, format!("\"000fa5ff\"\"{}\"", "ab".repeat(16)));
    }

    #[test]
    fn a_recorded_span_field_replaces_its_value_in_place() {
        let sink = Arc::new(Memory::default());
        let subscriber = tracing_subscriber::registry().with(JsonLogLayer::new(
            "svc",
            "host-1",
            vec![sink.clone() as Arc<dyn LineSink>],
        ));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "task",
                stage = "stageA",
                { f::LOG_LEVEL } = "bogus",
                ratio = f64::NAN,
                media_uuid = "m-1",
                run_id = "r \"1\"",
                outcome = tracing::field::Empty,
            );
            let _s = span.enter();
            tracing::info!("First.");
            span.record("stage", "stageB, attempt 2");
            span.record("outcome", "completed");
            tracing::info!("Second.");
        });
        let raw = sink.0.lock().unwrap().clone();
        let lines: Vec<Value> = raw
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        let (first, second) = (&lines[0], &lines[1]);
        assert_eq!(first["stage"], "stageA", "{first}");
        assert!(first.get("outcome").is_none(), "{first}");
        assert_eq!(
            first["log.level"], "info",
            "a span cannot override a reserved key"
        );
        assert_eq!(first["ratio"], Value::Null);
        assert_eq!(second["stage"], "stageB, attempt 2", "{second}");
        assert_eq!(second["outcome"], "completed", "{second}");
        assert_eq!(second["media_uuid"], "m-1");
        assert_eq!(
            second["span.id"], first["span.id"],
            "recording keeps the span's id"
        );
        // An escaped run id still names its execution's trace.
        assert_eq!(
            second["trace.id"],
            hex::encode(trace_id_for_run("r \"1\"")),
            "{second}"
        );
        // In place: the declared order stays, a late field goes last.
        let text = &raw[1];
        let at = |key: &str| text.find(&format!("\"{key}\"")).unwrap();
        assert!(at("stage") < at("media_uuid"), "{text}");
        assert!(at("run_id") < at("outcome"), "{text}");
        assert_eq!(text.matches("\"stage\"").count(), 1, "{text}");
    }

    /// The lines a JSON layer over a bare registry writes while `f` runs, parsed.
    fn lines_while(f: impl FnOnce()) -> Vec<Value> {
        let sink = Arc::new(Memory::default());
        let subscriber = tracing_subscriber::registry().with(JsonLogLayer::new(
            "svc",
            "host-1",
            vec![sink.clone() as Arc<dyn LineSink>],
        ));
        tracing::subscriber::with_default(subscriber, f);
        let lines = sink.0.lock().unwrap();
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn numbers_and_flags_keep_their_json_types() {
        let lines = lines_while(|| {
            let span = tracing::info_span!("task", big = u64::MAX, low = i64::MIN, zero = 0u64);
            let _s = span.enter();
            tracing::info!(
                events = 1234567890u64,
                delta = -42i64,
                ok = true,
                ratio = 0.5f64,
                nan = f64::NAN,
                "Numbers."
            );
        });
        let v = &lines[0];
        assert_eq!(v["events"], 1234567890u64, "{v}");
        assert_eq!(v["delta"], -42, "{v}");
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["ratio"], 0.5, "{v}");
        assert!(v["nan"].is_null(), "{v}");
        assert_eq!(v["big"], u64::MAX, "{v}");
        assert_eq!(v["low"], i64::MIN, "{v}");
        assert_eq!(v["zero"], 0, "{v}");
    }

    /// A field whose formatting logs while the line is being built (with the thread's buffers
    /// taken): `tracing` does not dispatch that nested line (its re-entrancy guard), and the outer
    /// line and the next one must come out whole.
    struct LogsWhenFormatted;
    impl std::fmt::Debug for LogsWhenFormatted {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            tracing::info!(inner_field = 1u64, "Inner line.");
            f.write_str("formatted")
        }
    }

    #[test]
    fn a_field_that_logs_while_formatted_leaves_the_line_whole() {
        let lines = lines_while(|| {
            let span = tracing::info_span!("task", media_uuid = "m-9");
            let _e = span.enter();
            tracing::info!(outer_field = ?LogsWhenFormatted, "Outer line.");
            tracing::info!("Next line.");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["message"], "Outer line.");
        assert_eq!(lines[0]["outer_field"], "formatted");
        assert_eq!(lines[0]["media_uuid"], "m-9");
        assert!(lines[0].get("inner_field").is_none(), "{}", lines[0]);
        assert_eq!(lines[1]["message"], "Next line.");
        assert_eq!(lines[1]["media_uuid"], "m-9");
        assert!(lines[1].get("outer_field").is_none(), "{}", lines[1]);
    }
}
