//! Jittered exponential backoff, shared by the retry loops that have no crate doing it for them
//! (the activity worker's poll errors, the OTLP/HTTP exporter's retries). Stateless: callers
//! count their own failures.

use std::time::Duration;

/// `initial * 2^(failures-1)`, capped at `max`, with +-20% jitter so hosts do not retry in step.
pub fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let base = initial.saturating_mul(1u32 << exp).min(max);
    base.mul_f64(rand::random_range(0.8..=1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let i = Duration::from_secs(1);
        let m = Duration::from_secs(60);
        for (n, expected) in [(1u32, 1.0f64), (2, 2.0), (3, 4.0), (7, 60.0), (40, 60.0)] {
            let got = backoff(i, m, n).as_secs_f64();
            assert!(
                got >= expected * 0.8 - 1e-9 && got <= expected * 1.2 + 1e-9,
                "failure {n}: {got}"
            );
        }
    }
}
