//! The hub's sealer of the audit trail: it seals committed events into the
//! hash chain (see [`crate::store::seal_hash`]) every 5 seconds and once
//! more when the hub has stopped writing, and logs the chain's head (at
//! most once a minute, and as it stops),
//! so that the log kept outside the database holds anchors an auditor can
//! check the chain against (`tradehub audit verify --anchor POS:HASH`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::metrics::Metrics;
use crate::store::Store;
use crate::timestamp::Timestamp;

/// Events sealed per transaction. Each is a commit on SQLite's one writer:
/// fewer, larger ones cost the intake less throughput than many small
/// ones (docs/PERFORMANCE.md, "Sealing the audit trail").
pub const SEAL_BATCH: i64 = 1_000;

/// How often the hub seals what was written since its last run.
pub const SEAL_EVERY: Duration = Duration::from_secs(5);

/// How often, at most, the log names the chain's head while the hub runs
/// (and once more when it stops).
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// The hub's sealer: seals, counts in `metrics`, and logs the head as an
/// anchor at most every [`LOG_EVERY`].
#[derive(Debug)]
pub struct Sealer {
    store: Store,
    metrics: Arc<Metrics>,
    logged_at: Option<Instant>,
    /// Sealed since the head was last logged.
    unlogged: u64,
}

impl Sealer {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> Sealer {
        Sealer {
            store,
            metrics,
            logged_at: None,
            unlogged: 0,
        }
    }

    /// Seals every `every` until `shutdown`, and gives itself back for
    /// the last run (the hub makes it with [`run`](Self::run) when
    /// everything else has stopped writing).
    pub async fn run_until<F>(mut self, every: Duration, shutdown: F) -> Sealer
    where
        F: std::future::Future<Output = ()>,
    {
        tokio::pin!(shutdown);
        loop {
            self.run(false).await;
            tokio::select! {
                _ = &mut shutdown => return self,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One run: every event that can be sealed now, counted; the head is
    /// logged when events were sealed since it was last logged and
    /// [`LOG_EVERY`] has passed, or with `last`. A failure is logged,
    /// counted and left to the next run (nothing is lost: unsealed events
    /// stay in line). Gives how many events it sealed.
    pub async fn run(&mut self, last: bool) -> u64 {
        let metrics = &self.metrics;
        let sealed = match self
            .store
            .seal_all_events(SEAL_BATCH, Timestamp::now())
            .await
        {
            Ok(n) => n,
            Err(e) => {
                Metrics::inc(&metrics.audit_seal_failures);
                tracing::warn!(error = %e, "sealing the audit trail failed; retrying");
                return 0;
            }
        };
        metrics.audit_sealed.fetch_add(sealed, Ordering::Relaxed);
        self.unlogged += sealed;
        match self.store.audit_head().await {
            Ok(head) => {
                metrics
                    .audit_head
                    .store(head.pos.unsigned_abs(), Ordering::Relaxed);
                let due = self.logged_at.is_none_or(|at| at.elapsed() >= LOG_EVERY);
                if self.unlogged > 0 && (last || due) {
                    tracing::info!(
                        sealed = self.unlogged,
                        anchor = %head,
                        "audit trail sealed"
                    );
                    self.unlogged = 0;
                    self.logged_at = Some(Instant::now());
                }
            }
            Err(e) => {
                tracing::warn!(sealed, error = %e, "the audit trail's head could not be read")
            }
        }
        sealed
    }
}
