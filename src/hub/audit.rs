//! The hub's sealer of the audit trail: it seals committed events into the
//! hash chain (see [`crate::store::seal_hash`]) every few seconds and once
//! more when the hub has stopped writing, and logs the chain's head each time it moves,
//! so that the log kept outside the database holds anchors an auditor can
//! check the chain against (`tradehub audit verify --anchor POS:HASH`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::metrics::Metrics;
use crate::store::Store;
use crate::timestamp::Timestamp;

/// Events sealed per transaction.
pub const SEAL_BATCH: i64 = 1_000;

/// How often the hub seals what was written since its last run.
pub const SEAL_EVERY: Duration = Duration::from_secs(5);

/// Seals every `every` until `shutdown` (the hub seals once more with
/// [`seal_now`] when everything else has stopped writing).
pub async fn seal_loop<F>(store: Store, metrics: Arc<Metrics>, every: Duration, shutdown: F)
where
    F: std::future::Future<Output = ()>,
{
    tokio::pin!(shutdown);
    loop {
        seal_now(&store, &metrics).await;
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One run of the sealer: every event that can be sealed now, logged with
/// the new head and counted in `metrics`; a failure is logged, counted and
/// left to the next run (nothing is lost: unsealed events stay in line).
pub async fn seal_now(store: &Store, metrics: &Metrics) -> u64 {
    let sealed = match store.seal_all_events(SEAL_BATCH, Timestamp::now()).await {
        Ok(n) => n,
        Err(e) => {
            Metrics::inc(&metrics.audit_seal_failures);
            tracing::warn!(error = %e, "sealing the audit trail failed; retrying");
            return 0;
        }
    };
    metrics.audit_sealed.fetch_add(sealed, Ordering::Relaxed);
    match store.audit_head().await {
        Ok(head) => {
            metrics
                .audit_head
                .store(head.pos.unsigned_abs(), Ordering::Relaxed);
            if sealed > 0 {
                tracing::info!(
                    sealed,
                    anchor = %format!("{}:{}", head.pos, head.hash),
                    "audit trail sealed"
                );
            }
        }
        Err(e) => tracing::warn!(sealed, error = %e, "the audit trail's head could not be read"),
    }
    sealed
}
