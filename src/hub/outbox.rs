//! The outbox relay: publishes what intake (and later the permit workflow)
//! wrote to the `outbox` table in the same transaction as the state change,
//! waits for each publish to be confirmed, then marks the row. Publishing is
//! at least once (a crash between confirm and mark publishes again); every
//! message carries a unique `message_id` so consumers can drop repeats.
//!
//! A message the broker refuses (a negative confirm: its queue is full, say)
//! is tried again later with a growing pause, and later messages to the same
//! destination wait behind it, so their order holds. A message the broker
//! rejects for itself (it closes the channel over that publish) is parked
//! after `max_attempts`: set aside for the operator (`tradehub outbox list`,
//! `tradehub outbox retry`), and the rest flows on. A broker that cannot be
//! reached costs no message an attempt: everything waits for it. Published
//! rows are deleted after the retention period.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashSet;
use tokio::sync::{Notify, broadcast};

use crate::store::{OutboxFailure, PendingMessage, Store, StoreError};
use crate::timestamp::Timestamp;

/// Exchange of status-change events.
pub const EVENTS_EXCHANGE: &str = "tradehub.events";

/// An outbox message carrying `body` as JSON.
pub fn json_message(
    exchange: &str,
    routing_key: String,
    message_id: String,
    body: &serde_json::Value,
) -> crate::store::OutboxMessage {
    crate::store::OutboxMessage {
        exchange: exchange.into(),
        routing_key,
        message_id,
        content_type: "application/json".into(),
        payload: serde_json::to_vec(body).unwrap_or_default(),
        correlation_id: None,
    }
}

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The broker could not be reached or did not answer in time: no
    /// message's fault, so no attempt is counted; everything is published
    /// again once it answers.
    #[error("publish failed: {0}")]
    Publish(String),
    /// The broker declined this message where it was going (a negative
    /// confirm, e.g. a full queue that rejects publishes): tried again
    /// later; later messages to the same destination wait.
    #[error("the broker refused the message: {0}")]
    Refused(String),
    /// The broker rejected the message itself (it closed the channel over
    /// the publish: an exchange that does not exist, a message over its
    /// size limit): tried again, then parked.
    #[error("the broker rejected the message: {0}")]
    Rejected(String),
    /// This hub could not hand the message over itself (a partner's
    /// answer whose drop-folder file cannot be written: its folder full,
    /// read-only or in the way): a fault of the destination, not of the
    /// message, so it is tried again with growing pauses as a refused one
    /// is, never parked, and the partner's later answers wait behind it
    /// (parked, it let them overtake it and was never delivered). No
    /// channel closed over it, so the rest of its batch stands and it is
    /// not sent again in the same round.
    #[error("the message could not be delivered: {0}")]
    Undelivered(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`Publish::publish_all`] gives back: one result per message.
pub type Published<'a> = Pin<Box<dyn Future<Output = Vec<Result<(), RelayError>>> + Send + 'a>>;

/// What [`Publish::publish`] gives back: the message's own outcome, once
/// it is confirmed or has failed.
pub type Sent<'a> = Pin<Box<dyn Future<Output = Result<(), RelayError>> + Send + 'a>>;

/// What [`Publish::ready`] returns.
pub type Ready<'a> = Sent<'a>;

/// Somewhere outbox messages go: RabbitMQ, or subscribers in this process.
pub trait Publish: Send + Sync {
    /// Gets ready to publish (connects to the broker) before the relay
    /// claims rows: a relay whose broker is away, or takes the connection
    /// and never answers, then claims nothing, where its claim would hold
    /// the oldest rows back from the relays of other hub instances until
    /// the database ended it. Ready at once by default.
    fn ready<'a>(&'a self) -> Ready<'a> {
        Box::pin(async { Ok(()) })
    }

    /// The AMQP prefix this publisher sends under; `None` for one that
    /// sends to no broker (in process). The relay claims rows only while
    /// the store records no other (see [`Store::claim_outbox`]).
    fn broker(&self) -> Option<&str> {
        None
    }

    /// Publishes one message and returns once it is confirmed.
    fn publish<'a>(&'a self, message: &'a PendingMessage) -> Sent<'a>;

    /// Publishes messages in order and returns once each is confirmed or
    /// failed: one result per message. Brokers pipeline them (all sent,
    /// then all confirms awaited); the default publishes one after the
    /// other and, once the broker is away, does not try the rest.
    fn publish_all<'a>(&'a self, messages: &'a [PendingMessage]) -> Published<'a> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(messages.len());
            for m in messages {
                let result = self.publish(m).await;
                let away = matches!(result, Err(RelayError::Publish(_) | RelayError::Store(_)));
                results.push(result);
                if away {
                    break;
                }
            }
            while results.len() < messages.len() {
                results.push(Err(RelayError::Publish(
                    "not sent: the broker was away for an earlier message".into(),
                )));
            }
            results
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
    fn publish<'a>(&'a self, message: &'a PendingMessage) -> Sent<'a> {
        // No subscriber is not a failure: in-process delivery is best effort
        // on top of the durable row, which stays readable in the store.
        let _ = self.sender.send(message.clone());
        Box::pin(async { Ok(()) })
    }
}

/// How the relay runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySettings {
    /// Longest pause between two looks at the outbox (commits wake the
    /// relay at once; waiting messages are due after their pause).
    pub poll: Duration,
    /// Attempts before a message the broker rejects is parked.
    pub max_attempts: i64,
    /// How long published rows are kept (none: for good).
    pub retention: Option<Duration>,
    /// How long refusals (submissions refused before they were read as
    /// interchanges: wrong sender, too large, cut off) are kept (none: for
    /// good). They may come from anyone who can reach the hub, so they
    /// must not pile up without bound. The relay purges them with the
    /// outbox.
    pub refusal_retention: Option<Duration>,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            poll: Duration::from_secs(1),
            max_attempts: 5,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            refusal_retention: Some(Duration::from_secs(REFUSAL_RETENTION_DAYS * 24 * 3600)),
        }
    }
}

/// Days refusals are kept by default.
pub const REFUSAL_RETENTION_DAYS: u64 = 90;

/// How often published rows past the retention period are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Rows deleted per statement when purging.
const PURGE_BATCH: i64 = 5_000;

/// Publishes pending outbox rows until `shutdown` resolves.
pub async fn relay<P, F>(
    store: Store,
    publisher: Arc<P>,
    wake: Arc<Notify>,
    settings: RelaySettings,
    shutdown: F,
) where
    P: Publish + ?Sized,
    F: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(200);
    let mut purged: Option<tokio::time::Instant> = None;
    // True while the last purge found more than one statement deletes: the
    // next look purges again (one statement a look, so publishing goes on
    // meanwhile).
    let mut behind = false;
    loop {
        if (settings.retention.is_some() || settings.refusal_retention.is_some())
            && (behind || purged.is_none_or(|at| at.elapsed() >= PURGE_EVERY))
        {
            purged = Some(tokio::time::Instant::now());
            behind = purge(&store, &settings).await;
        }
        // A bounded round, so that under steady load (rows committed during
        // every round) the purge above still gets its turn; when the round
        // stopped at its bound the next one starts at once.
        match drain_rounds(&store, publisher.as_ref(), &settings, ROUNDS_PER_LOOK).await {
            Ok((_, true)) => {
                backoff = Duration::from_millis(200);
                continue;
            }
            Ok(_) => backoff = Duration::from_millis(200),
            Err(e) => {
                if matches!(e, RelayError::Store(StoreError::OutboxBroker { .. })) {
                    tracing::error!(error = %e, ?backoff, "outbox relay: not relaying");
                } else {
                    tracing::warn!(error = %e, ?backoff, "outbox relay: publish failed; retrying");
                    // Its broker away, the relay still holds the store's
                    // record of it (see `outbox broker --forget`).
                    if let Some(broker) = publisher.broker()
                        && let Err(e) = store.keep_outbox_broker(Some(broker)).await
                    {
                        tracing::warn!(error = %e, "outbox relay: the broker record was not kept");
                    }
                }
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
            _ = tokio::time::sleep(settings.poll) => {}
        }
    }
}

/// Deletes up to [`PURGE_BATCH`] of the outbox rows published longer than
/// the retention period ago, and as many refusals older than theirs; true
/// when there may be more of either.
pub async fn purge(store: &Store, settings: &RelaySettings) -> bool {
    let mut more = false;
    if let Some(retention) = settings.retention {
        more |= purged("outbox: published rows", retention, |before| {
            store.purge_published_outbox(before, PURGE_BATCH)
        })
        .await;
    }
    if let Some(retention) = settings.refusal_retention {
        more |= purged("refusals", retention, |before| {
            store.purge_refusals(before, PURGE_BATCH)
        })
        .await;
    }
    more
}

/// Runs one purge of what is older than `retention` and logs it; true when
/// it deleted a whole batch (there may be more).
async fn purged<F, Fut>(what: &str, retention: Duration, delete: F) -> bool
where
    F: FnOnce(Timestamp) -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let secs = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX / 2);
    let before = Timestamp::now().plus_secs(-secs);
    match delete(before).await {
        Ok(n) => {
            if n > 0 {
                tracing::info!(rows = n, %before, what, "purged past their retention");
            }
            n >= PURGE_BATCH as u64
        }
        Err(e) => {
            tracing::warn!(error = %e, what, "purging failed; trying again later");
            false
        }
    }
}

/// Rows published per round: sent together, confirmed, then marked in one
/// statement.
const BATCH: i64 = 200;

/// The pause before the next attempt after `attempts` failed ones: 1 s,
/// doubling, at most 5 minutes.
pub fn retry_pause(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    (1i64 << doublings).min(300)
}

/// [`drain_with`] with the default settings.
pub async fn drain<P: Publish + ?Sized>(store: &Store, publisher: &P) -> Result<usize, RelayError> {
    drain_with(store, publisher, &RelaySettings::default()).await
}

/// Publishes everything due, in order; returns how many were published.
/// A batch is sent together; what the broker confirmed is marked. When it
/// declines a message of the batch, the messages not confirmed are
/// published again one at a time (at least once; consumers drop repeats by
/// `message_id`), so that only the declined message and those behind it to
/// the same destination wait. On PostgreSQL a batch is claimed by this
/// relay while it publishes it, so several hub instances do not publish
/// the same rows.
pub async fn drain_with<P: Publish + ?Sized>(
    store: &Store,
    publisher: &P,
    settings: &RelaySettings,
) -> Result<usize, RelayError> {
    let mut total = 0;
    loop {
        let (n, more) = drain_rounds(store, publisher, settings, ROUNDS_PER_LOOK).await?;
        total += n;
        if !more {
            return Ok(total);
        }
    }
}

/// Batches the relay publishes before it looks at its other work (purging
/// published rows): 50 × 200 rows.
const ROUNDS_PER_LOOK: usize = 50;

/// [`drain_with`] for at most `rounds` batches: what was published, and
/// whether it stopped at the bound with rows perhaps left.
async fn drain_rounds<P: Publish + ?Sized>(
    store: &Store,
    publisher: &P,
    settings: &RelaySettings,
    rounds: usize,
) -> Result<(usize, bool), RelayError> {
    let mut total = 0;
    for _ in 0..rounds {
        // Connected first, then claimed: the relays of other hub
        // instances take other rows.
        publisher.ready().await?;
        let claim = store.claim_outbox(BATCH, publisher.broker()).await?;
        if claim.messages.is_empty() {
            return Ok((total, false));
        }
        // A batch is sent together, unless a message of it failed before:
        // then all go one at a time.
        let mut published = Vec::new();
        let mut again: Vec<PendingMessage> = Vec::new();
        let mut declines = Declines::default();
        if claim.messages.iter().all(|m| m.attempts == 0) {
            let results = publisher.publish_all(&claim.messages).await;
            if results.iter().all(Result::is_ok) {
                let n = claim.messages.len();
                store.mark_claimed(claim, Timestamp::now()).await?;
                total += n;
                continue;
            }
            let mut away = None;
            let mut declined = false;
            for (m, result) in claim.messages.iter().zip(results) {
                match result {
                    Ok(()) => published.push(m.seq),
                    // A negative confirm is the broker's answer to this
                    // very message: its attempt, counted (it is not sent
                    // again now); later ones to its destination wait.
                    Err(RelayError::Refused(error)) => {
                        declines.declined(m, error, false, settings);
                    }
                    // Its destination's failure, as certain as a negative
                    // confirm, and waited out as one is.
                    Err(RelayError::Undelivered(error)) => {
                        declines.declined(m, error, false, settings);
                    }
                    // A channel the broker closed fails every confirm
                    // still due, not only the message it was about: they
                    // are sent again one at a time to find out which.
                    Err(RelayError::Rejected(_)) => {
                        declined = true;
                        again.push(m.clone());
                    }
                    Err(e) => {
                        away.get_or_insert(e);
                        again.push(m.clone());
                    }
                }
            }
            // The broker away and nothing declined: what was confirmed is
            // marked, the rest waits for the broker.
            let declined = declined || !declines.failures.is_empty();
            if let (Some(e), false) = (away, declined) {
                store
                    .settle_claim(claim, &published, &[], Timestamp::now())
                    .await?;
                return Err(e);
            }
            if declined {
                tracing::info!(
                    "outbox relay: a message of the batch was declined; publishing the rest one at a time"
                );
            }
        } else {
            again.clone_from(&claim.messages);
        }
        let outage =
            one_at_a_time(publisher, &again, settings, &mut declines, &mut published).await;
        let failures = declines.failures;
        total += published.len();
        store
            .settle_claim(claim, &published, &failures, Timestamp::now())
            .await?;
        if let Some(e) = outage {
            return Err(e);
        }
        // The next round comes with the relay's next look, so that what
        // failed now is not tried again at once.
        if !failures.is_empty() {
            return Ok((total, false));
        }
    }
    Ok((total, true))
}

/// The messages the broker declined in a round, and the destinations
/// that wait behind them.
#[derive(Default)]
struct Declines {
    failures: Vec<OutboxFailure>,
    held: FxHashSet<(String, String)>,
}

impl Declines {
    /// True when a message to `m`'s destination was declined before it
    /// in this round: it waits, without an attempt.
    fn holds(&self, m: &PendingMessage) -> bool {
        self.held
            .contains(&(m.message.exchange.clone(), m.message.routing_key.clone()))
    }

    /// The broker declined `m` (refused it, or `rejected` it): one more
    /// attempt, and either parked (rejected too often) or waiting, with
    /// its destination held. A message behind a declined one to the same
    /// destination is left as it is.
    fn declined(
        &mut self,
        m: &PendingMessage,
        error: String,
        rejected: bool,
        settings: &RelaySettings,
    ) {
        if self.holds(m) {
            return;
        }
        let attempts = m.attempts + 1;
        let park = rejected && attempts >= settings.max_attempts;
        let (exchange, key) = (m.message.exchange.as_str(), m.message.routing_key.as_str());
        if park {
            tracing::error!(seq = m.seq, message_id = %m.message.message_id, exchange, key,
                attempts, %error, "outbox relay: message parked; see `tradehub outbox list`");
        } else {
            tracing::warn!(seq = m.seq, message_id = %m.message.message_id, exchange, key,
                attempts, %error, retry_in_secs = retry_pause(attempts),
                "outbox relay: message declined; it and later ones to its destination wait");
            self.held.insert((exchange.to_owned(), key.to_owned()));
        }
        self.failures.push(OutboxFailure {
            seq: m.seq,
            error,
            // Whole seconds: one more, so that at least the pause passes.
            retry_at: Timestamp::now().unix() + retry_pause(attempts) + 1,
            park,
        });
    }
}

/// Publishes `messages` one after the other, each confirmed before the
/// next; a declined message holds back the later ones to its destination
/// (unless it is parked), as do those declined before in the round.
/// Stops at the first failure that is not the message's (the broker
/// away), and returns it; what was published is added to `published`.
async fn one_at_a_time<P: Publish + ?Sized>(
    publisher: &P,
    messages: &[PendingMessage],
    settings: &RelaySettings,
    declines: &mut Declines,
    published: &mut Vec<i64>,
) -> Option<RelayError> {
    for m in messages {
        if declines.holds(m) {
            continue;
        }
        match publisher.publish(m).await {
            Ok(()) => published.push(m.seq),
            Err(RelayError::Refused(error) | RelayError::Undelivered(error)) => {
                declines.declined(m, error, false, settings)
            }
            Err(RelayError::Rejected(error)) => declines.declined(m, error, true, settings),
            Err(e) => return Some(e),
        }
    }
    None
}
