//! Counters and latency histograms of the hub, exposed in the Prometheus
//! text format on `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds: up to the longest a
/// submission may take (the request timeout, 60 s by default; the AMQP
/// retry budget, 30 s), so that slow ones are told apart, not all +Inf.
const BUCKETS: [f64; 15] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
];

/// A cumulative histogram of durations.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds.
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            d.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Everything the hub counts.
#[derive(Debug, Default)]
pub struct Metrics {
    pub received: AtomicU64,
    pub received_bytes: AtomicU64,
    pub validated: AtomicU64,
    pub rejected: AtomicU64,
    pub duplicates: AtomicU64,
    pub refused: AtomicU64,
    pub store_errors: AtomicU64,
    /// Declarations (manifests, passenger lists) accepted after the rules.
    pub declarations_accepted: AtomicU64,
    /// Declarations rejected by mapping or business rules.
    pub declarations_rejected: AtomicU64,
    /// Agency decisions recorded.
    pub permit_decisions: AtomicU64,
    /// Permits that expired unanswered.
    pub permits_expired: AtomicU64,
    /// HTTP requests refused for want of a partner's API token (401).
    pub unauthorized: AtomicU64,
    /// Receipt of the bytes to the committed, acknowledged answer.
    pub submit_latency: Histogram,
    /// Drop-folder files answered but not movable out of `work/` (a gauge).
    pub drop_stuck: AtomicU64,
    /// Events this instance sealed into the audit trail's hash chain.
    pub audit_sealed: AtomicU64,
    /// Runs of the sealer that failed (retried at the next).
    pub audit_seal_failures: AtomicU64,
    /// The chain's head position as last read (a gauge).
    pub audit_head: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters: [(&str, &str, &AtomicU64); 14] = [
            (
                "tradehub_interchanges_received_total",
                "Submissions received (all transports).",
                &self.received,
            ),
            (
                "tradehub_received_bytes_total",
                "Bytes received in submissions.",
                &self.received_bytes,
            ),
            (
                "tradehub_interchanges_validated_total",
                "Interchanges stored without syntax errors.",
                &self.validated,
            ),
            (
                "tradehub_interchanges_rejected_total",
                "Interchanges stored as rejected (syntax errors).",
                &self.rejected,
            ),
            (
                "tradehub_duplicates_total",
                "Redeliveries answered with the original receipt.",
                &self.duplicates,
            ),
            (
                "tradehub_refused_total",
                "Submissions refused (wrong sender, duplicate reference, not an interchange, over the size limit).",
                &self.refused,
            ),
            (
                "tradehub_store_errors_total",
                "Submissions that failed on a storage error.",
                &self.store_errors,
            ),
            (
                "tradehub_declarations_accepted_total",
                "Declarations, manifests and passenger lists accepted after the business rules.",
                &self.declarations_accepted,
            ),
            (
                "tradehub_declarations_rejected_total",
                "Declarations rejected by their mapping or the business rules.",
                &self.declarations_rejected,
            ),
            (
                "tradehub_permit_decisions_total",
                "Agency decisions on permit requests recorded.",
                &self.permit_decisions,
            ),
            (
                "tradehub_permits_expired_total",
                "Permit requests that expired without an answer.",
                &self.permits_expired,
            ),
            (
                "tradehub_http_unauthorized_total",
                "HTTP requests refused 401: no API token, or one that is no partner's.",
                &self.unauthorized,
            ),
            (
                "tradehub_audit_sealed_total",
                "Events this instance sealed into the audit trail's hash chain.",
                &self.audit_sealed,
            ),
            (
                "tradehub_audit_seal_failures_total",
                "Runs of the audit trail's sealer that failed (retried at the next run).",
                &self.audit_seal_failures,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tradehub_drop_files_stuck Drop-folder files answered but not movable to done/ or failed/ (left in work/).\n\
             # TYPE tradehub_drop_files_stuck gauge\ntradehub_drop_files_stuck {}",
            self.drop_stuck.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tradehub_audit_chain_position The audit trail's hash chain: the position of its last seal.\n\
             # TYPE tradehub_audit_chain_position gauge\ntradehub_audit_chain_position {}",
            self.audit_head.load(Ordering::Relaxed)
        );
        self.submit_latency.render(
            "tradehub_submit_seconds",
            "Time from receiving a submission to its committed answer.",
            &mut out,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        Metrics::inc(&m.received);
        Metrics::inc(&m.received);
        m.submit_latency.observe(Duration::from_micros(1500));
        m.submit_latency.observe(Duration::from_millis(30));
        let text = m.render();
        assert!(
            text.contains("tradehub_interchanges_received_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("tradehub_submit_seconds_bucket{le=\"0.001\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("tradehub_submit_seconds_bucket{le=\"0.002\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("tradehub_submit_seconds_bucket{le=\"0.05\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("tradehub_submit_seconds_bucket{le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("tradehub_submit_seconds_count 2\n"), "{text}");
        assert!(
            text.contains("tradehub_submit_seconds_sum 0.0315\n"),
            "{text}"
        );
    }
}
