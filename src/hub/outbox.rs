//! The outbox relay: publishes what intake (and later the permit workflow)
//! wrote to the `outbox` table in the same transaction as the state change,
//! waits for each publish to be confirmed, then marks the row. Publishing is
//! at least once (a crash between confirm and mark publishes again); every
//! message carries a unique `message_id` so consumers can drop repeats.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

use crate::store::{PendingMessage, Store, StoreError};
use crate::timestamp::Timestamp;

/// Exchange of status-change events.
pub const EVENTS_EXCHANGE: &str = "tradehub.events";

/// Why a publish failed; the relay retries all of them later.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("publish failed: {0}")]
    Publish(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Somewhere outbox messages go: RabbitMQ, or subscribers in this process.
pub trait Publish: Send + Sync {
    /// Publishes one message and returns once it is confirmed.
    fn publish<'a>(
        &'a self,
        message: &'a PendingMessage,
    ) -> Pin<Box<dyn Future<Output = Result<(), RelayError>> + Send + 'a>>;

    /// Publishes messages in order and returns once all are confirmed.
    /// Brokers pipeline them (all sent, then all confirms awaited); the
    /// default publishes one after the other.
    fn publish_all<'a>(
        &'a self,
        messages: &'a [PendingMessage],
    ) -> Pin<Box<dyn Future<Output = Result<(), RelayError>> + Send + 'a>> {
        Box::pin(async move {
            for m in messages {
                self.publish(m).await?;
            }
            Ok(())
        })
    }
}

/// The embedded transport: messages go to in-process subscribers.
#[derive(Debug, Clone)]
pub struct InProcess {
    sender: broadcast::Sender<PendingMessage>,
}

impl InProcess {
    pub fn new(capacity: usize) -> Self {
        InProcess {
            sender: broadcast::channel(capacity.max(1)).0,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<PendingMessage> {
        self.sender.subscribe()
    }
}

impl Publish for InProcess {
    fn publish<'a>(
        &'a self,
        message: &'a PendingMessage,
    ) -> Pin<Box<dyn Future<Output = Result<(), RelayError>> + Send + 'a>> {
        // No subscriber is not a failure: in-process delivery is best effort
        // on top of the durable row, which stays readable in the store.
        let _ = self.sender.send(message.clone());
        Box::pin(async { Ok(()) })
    }
}

/// Publishes pending outbox rows until `shutdown` resolves.
pub async fn relay<P, F>(
    store: Store,
    publisher: Arc<P>,
    wake: Arc<Notify>,
    poll: Duration,
    shutdown: F,
) where
    P: Publish + ?Sized,
    F: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(200);
    loop {
        match drain(&store, publisher.as_ref()).await {
            Ok(_) => backoff = Duration::from_millis(200),
            Err(e) => {
                tracing::warn!(error = %e, ?backoff, "outbox relay: publish failed; retrying");
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// Rows published per round: sent together, confirmed, then marked in one
/// statement.
const BATCH: i64 = 200;

/// Publishes everything pending, in order; returns how many were published.
/// A batch is marked only after every message of it was confirmed; if one
/// fails, the whole batch stays pending and is published again (at least
/// once; consumers drop repeats by `message_id`). On PostgreSQL a batch is
/// claimed by this relay while it publishes it, so several hub instances
/// do not publish the same rows.
pub async fn drain<P: Publish + ?Sized>(store: &Store, publisher: &P) -> Result<usize, RelayError> {
    let mut total = 0;
    loop {
        // Claimed: the relays of other hub instances take other rows.
        let claim = store.claim_outbox(BATCH).await?;
        if claim.messages.is_empty() {
            return Ok(total);
        }
        publisher.publish_all(&claim.messages).await?;
        let published = claim.messages.len();
        store.mark_claimed(claim, Timestamp::now()).await?;
        total += published;
    }
}
