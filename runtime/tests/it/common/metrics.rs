//! Reading what `metrics_util`'s `DebuggingRecorder` captured, for the tests that check the
//! runtime's metrics without a Prometheus scrape.

use metrics_util::debugging::DebugValue;
use metrics_util::{CompositeKey, MetricKind};

/// The sum over every metric of `kind` named `name` whose labels include each of `labels`: a
/// counter's count, a gauge's value, a histogram's number of samples.
pub fn sum<'a>(
    seen: impl IntoIterator<Item = (&'a CompositeKey, &'a DebugValue)>,
    kind: MetricKind,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    seen.into_iter()
        .filter(|(k, _)| k.kind() == kind && k.key().name() == name)
        .filter(|(k, _)| {
            labels
                .iter()
                .all(|(lk, lv)| k.key().labels().any(|l| l.key() == *lk && l.value() == *lv))
        })
        .map(|(_, v)| match v {
            DebugValue::Counter(c) => *c as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(h) => h.len() as f64,
        })
        .sum()
}
