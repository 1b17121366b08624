//! The AMQP adapter (RabbitMQ): partners publish interchanges to exchange
//! `tradehub.inbound` (routing key `inbound`), the hub consumes the quorum
//! queue `inbound` with manual acknowledgements and answers on
//! `tradehub.acks` → `ack.<partner>` (or the message's `reply_to`).
//!
//! A delivery is acknowledged only after its interchange is committed and
//! its answer is confirmed by the broker. The sender is the `user_id`
//! property, which RabbitMQ checks against the connection's user, so a
//! partner cannot claim another's identity. Messages that can never be taken
//! (no or unknown `user_id`, refused submissions) are republished to the
//! dead-letter exchange `tradehub.dlx` with the reason in headers
//! (`x-tradehub-code`, `x-tradehub-reason`), confirmed, and only then
//! acknowledged; nothing is dropped silently. A storage failure that
//! outlasts the retry budget gives the unacknowledged deliveries back by
//! reconnecting, and the consumer takes nothing more until the database
//! takes a write again, so an outage costs each waiting message one delivery
//! of the queue's limit, not one per attempt; a failure that persists
//! while the database takes writes (that message's own) reaches the
//! dead-letter queue through the delivery limit.
//!
//! Deliveries are handled concurrently (as many as the prefetch lets the
//! broker hand over), except that those of one sender (`user_id`) are
//! handled one after another in the order the broker delivered them, so a
//! sender's amendment never overtakes its original within one hub
//! instance. (Across several instances consuming the same queue the
//! broker spreads one sender's messages, as it does for any competing
//! consumers.)

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::diag::Code;
use crate::hub::permits::{DecisionError, DecisionOutcome};
use crate::hub::{Intake, Submission};
use crate::model::PermitDecision;
use crate::store::StoreError;

/// Names and limits of the AMQP topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpSettings {
    /// Broker URL, e.g. `amqp://user:password@127.0.0.1:5672/%2f`.
    pub url: String,
    /// Prefix for every exchange and queue name (empty in production;
    /// tests use it to stay apart).
    pub prefix: String,
    /// Unacknowledged deliveries per consumer.
    pub prefetch: u16,
    /// Deliveries of one message before the broker dead-letters it.
    pub delivery_limit: i64,
    /// Agency codes: a queue `agency.<CODE>` bound on `permit.<CODE>` is
    /// declared for each at start-up.
    pub agencies: Vec<String>,
    /// Largest message body taken (as `--max-body-bytes` for HTTP and the
    /// drop folder); a larger delivery is dead-lettered unread (HUB413).
    pub max_body_bytes: usize,
    /// How long a delivery's task keeps retrying a storage failure that may
    /// pass before the consumer gives every unacknowledged delivery back
    /// (by reconnecting) to keep each sender's order.
    pub store_retry_budget: Duration,
    /// How long connecting and setting up (connection, channel, topology,
    /// confirms, consumers) may take before it counts as the broker away:
    /// a broker, or a balancer in front of it, that takes the connection
    /// and never answers would otherwise hold the consumer or the relay
    /// for good.
    pub connect_timeout: Duration,
}

impl AmqpSettings {
    pub fn new(url: impl Into<String>) -> Self {
        AmqpSettings {
            url: url.into(),
            prefix: String::new(),
            prefetch: 32,
            delivery_limit: 20,
            agencies: Vec::new(),
            max_body_bytes: 16 * 1024 * 1024,
            store_retry_budget: STORE_RETRY_BUDGET,
            connect_timeout: CONFIRM_TIMEOUT,
        }
    }

    fn name(&self, base: &str) -> ShortString {
        format!("{}{base}", self.prefix).into()
    }

    /// What follows the hub's connection names: the prefix, if any.
    fn connection_suffix(&self) -> String {
        match self.prefix.as_str() {
            "" => String::new(),
            prefix => format!(" ({})", prefix.trim_end_matches('.')),
        }
    }

    pub fn inbound_exchange(&self) -> ShortString {
        self.name("tradehub.inbound")
    }
    pub fn inbound_queue(&self) -> ShortString {
        self.name("inbound")
    }
    pub fn dead_letter_exchange(&self) -> ShortString {
        self.name("tradehub.dlx")
    }
    pub fn dead_inbound_queue(&self) -> ShortString {
        self.name("dead.inbound")
    }
    pub fn acks_exchange(&self) -> ShortString {
        self.name("tradehub.acks")
    }
    pub fn ack_queue(&self, partner: &str) -> ShortString {
        self.name(&format!("ack.{partner}"))
    }
    pub fn events_exchange(&self) -> ShortString {
        self.name("tradehub.events")
    }
    pub fn permits_exchange(&self) -> ShortString {
        self.name("tradehub.permits")
    }
    pub fn agency_queue(&self, code: &str) -> ShortString {
        self.name(&format!("agency.{code}"))
    }
    pub fn replies_exchange(&self) -> ShortString {
        self.name("tradehub.agency-replies")
    }
    pub fn replies_queue(&self) -> ShortString {
        self.name("hub.permit-replies")
    }
    pub fn dead_replies_queue(&self) -> ShortString {
        self.name("dead.permit-replies")
    }
}

/// Routing key of agency replies.
pub const REPLIES_KEY: &str = "permit-replies";

/// An AMQP failure; `retryable` says whether reconnecting can help.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("AMQP: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker did not confirm a publish to {0}")]
    NotConfirmed(String),
    /// A negative confirm: the broker declined the message where it was
    /// going (a queue at its length limit that rejects publishes).
    #[error("the broker declined a publish to {0} (negative confirm)")]
    Nacked(String),
    /// The broker did not take a publish, declaration or acknowledgement in
    /// time (a connection blocked by a memory or disk alarm).
    #[error("the broker did not answer {0} within {secs} s", secs = CONFIRM_TIMEOUT.as_secs())]
    Stalled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The broker refused to declare or bind a partner's answer queue
    /// (declared exclusive by the partner, on a node that is down, not
    /// permitted): that partner's answers wait (kept in the store), nobody
    /// else's.
    #[error("answer queue refused: {0}")]
    QueueRefused(String),
    /// A mandatory publish no queue took (the broker gave it back): the
    /// queue it was bound for was deleted while the hub ran.
    #[error("no queue took a publish to {0} (returned by the broker)")]
    Unroutable(String),
}

impl AmqpError {
    pub fn is_retryable(&self) -> bool {
        match self {
            AmqpError::Broker(_)
            | AmqpError::NotConfirmed(_)
            | AmqpError::Nacked(_)
            | AmqpError::Unroutable(_)
            | AmqpError::Stalled(_) => true,
            AmqpError::Store(e) => e.is_retryable(),
            AmqpError::QueueRefused(_) => false,
        }
    }
}

/// Routing key of inbound messages.
pub const INBOUND_KEY: &str = "inbound";

/// How long a publish waits for the broker's confirmation. A broker that
/// holds confirms (a queue that lost its quorum, a memory or disk alarm)
/// fails the publish after this instead of holding up the consumer or the
/// relay for good; what was not confirmed is published again (the
/// delivery is redelivered, the outbox row stays pending).
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// The broker's confirmation of a publish to `target`, waited for at most
/// [`CONFIRM_TIMEOUT`].
async fn confirmation(
    target: &str,
    confirm: lapin::PublisherConfirm,
) -> Result<lapin::Confirmation, AmqpError> {
    confirmation_by(
        target,
        confirm,
        tokio::time::Instant::now() + CONFIRM_TIMEOUT,
    )
    .await
}

/// [`confirmation`], waited for until `deadline` (one deadline serves a
/// batch of publishes).
async fn confirmation_by(
    target: &str,
    confirm: lapin::PublisherConfirm,
    deadline: tokio::time::Instant,
) -> Result<lapin::Confirmation, AmqpError> {
    match tokio::time::timeout_at(deadline, confirm).await {
        Ok(confirmation) => Ok(confirmation?),
        Err(_) => Err(AmqpError::NotConfirmed(format!(
            "{target} (no confirmation within {} s)",
            CONFIRM_TIMEOUT.as_secs()
        ))),
    }
}

/// A broker operation (the write of a publish, a declaration, an ack)
/// waited for at most [`CONFIRM_TIMEOUT`]: lapin stops writing to a
/// connection the broker blocked (memory or disk alarm), and the task would
/// otherwise wait as long as the alarm lasts.
async fn in_time<T, E: Into<AmqpError>>(
    what: impl FnOnce() -> String,
    operation: impl Future<Output = Result<T, E>>,
) -> Result<T, AmqpError> {
    within(CONFIRM_TIMEOUT, what, operation).await
}

/// The messages ready in `queue` (a passive declare: the broker's count
/// leaves out those handed to a consumer and not yet acknowledged), in
/// time, like every broker operation: a blocked connection must not hold
/// up the consumer's loop.
async fn queue_depth(channel: &Channel, queue: ShortString) -> Result<u32, AmqpError> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..durable_queue()
    };
    let what = format!("the depth of queue {queue}");
    let declared = in_time(
        || what,
        channel.queue_declare(queue, passive, FieldTable::default()),
    );
    Ok(declared.await?.message_count())
}

async fn within<T, E: Into<AmqpError>>(
    limit: Duration,
    what: impl FnOnce() -> String,
    operation: impl Future<Output = Result<T, E>>,
) -> Result<T, AmqpError> {
    match tokio::time::timeout(limit, operation).await {
        Ok(done) => done.map_err(Into::into),
        Err(_) => Err(AmqpError::Stalled(what())),
    }
}

/// Acknowledges a delivery, bounded like every broker operation
/// ([`in_time`]).
async fn ack(delivery: &lapin::message::Delivery) -> Result<(), AmqpError> {
    in_time(
        || "an acknowledgement".into(),
        delivery.acker.ack(BasicAckOptions::default()),
    )
    .await?;
    Ok(())
}

/// Waits for a publisher confirmation (see [`confirmation`]); anything but
/// an ack is an error.
async fn confirmed(target: String, confirm: lapin::PublisherConfirm) -> Result<(), AmqpError> {
    confirmed_by(
        target,
        confirm,
        tokio::time::Instant::now() + CONFIRM_TIMEOUT,
    )
    .await
}

/// [`confirmed`], waited for until `deadline`.
async fn confirmed_by(
    target: String,
    confirm: lapin::PublisherConfirm,
    deadline: tokio::time::Instant,
) -> Result<(), AmqpError> {
    match confirmation_by(&target, confirm, deadline).await? {
        lapin::Confirmation::Ack(None) => Ok(()),
        // Only a mandatory publish comes back: nothing took it.
        lapin::Confirmation::Ack(Some(_)) => Err(AmqpError::Unroutable(target)),
        _ => Err(AmqpError::Nacked(target)),
    }
}

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in pairs {
        table.insert((*k).into(), v.clone());
    }
    table
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

/// Declares the intake topology (idempotent; safe from several instances).
pub async fn declare_topology(channel: &Channel, s: &AmqpSettings) -> Result<(), AmqpError> {
    exchange(channel, s.dead_letter_exchange(), ExchangeKind::Direct).await?;
    consumed_queue(
        channel,
        s,
        s.inbound_exchange(),
        s.inbound_queue(),
        s.dead_inbound_queue(),
        INBOUND_KEY,
    )
    .await?;
    exchange(channel, s.acks_exchange(), ExchangeKind::Direct).await?;
    exchange(channel, s.events_exchange(), ExchangeKind::Topic).await?;
    declare_permit_topology(channel, s).await
}

/// Permit requests: exchange `tradehub.permits` (topic) and one quorum
/// queue `agency.<CODE>` per agency bound on `permit.<CODE>`; agency
/// answers: `tradehub.agency-replies` → `hub.permit-replies`, dead letters
/// to `dead.permit-replies`.
async fn declare_permit_topology(channel: &Channel, s: &AmqpSettings) -> Result<(), AmqpError> {
    exchange(channel, s.permits_exchange(), ExchangeKind::Topic).await?;
    for code in &s.agencies {
        let queue = s.agency_queue(code);
        quorum_queue(channel, queue.clone(), FieldTable::default()).await?;
        bind(
            channel,
            queue,
            s.permits_exchange(),
            &format!("permit.{code}"),
        )
        .await?;
    }
    consumed_queue(
        channel,
        s,
        s.replies_exchange(),
        s.replies_queue(),
        s.dead_replies_queue(),
        REPLIES_KEY,
    )
    .await
}

async fn exchange(
    channel: &Channel,
    name: ShortString,
    kind: ExchangeKind,
) -> Result<(), AmqpError> {
    channel
        .exchange_declare(name, kind, durable_exchange(), FieldTable::default())
        .await?;
    Ok(())
}

/// A durable quorum queue with further arguments.
async fn quorum_queue(
    channel: &Channel,
    name: ShortString,
    mut arguments: FieldTable,
) -> Result<(), AmqpError> {
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(name, durable_queue(), arguments)
        .await?;
    Ok(())
}

async fn bind(
    channel: &Channel,
    queue: ShortString,
    exchange: ShortString,
    key: &str,
) -> Result<(), AmqpError> {
    channel
        .queue_bind(
            queue,
            exchange,
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// A queue the hub consumes: its direct exchange, the queue bound on `key`
/// with dead-lettering to `tradehub.dlx` under the same key after
/// `delivery_limit` deliveries, and the dead-letter queue bound there.
async fn consumed_queue(
    channel: &Channel,
    s: &AmqpSettings,
    exchange_name: ShortString,
    queue: ShortString,
    dead: ShortString,
    key: &str,
) -> Result<(), AmqpError> {
    quorum_queue(channel, dead.clone(), FieldTable::default()).await?;
    bind(channel, dead, s.dead_letter_exchange(), key).await?;
    exchange(channel, exchange_name.clone(), ExchangeKind::Direct).await?;
    let arguments = args(&[
        (
            "x-dead-letter-exchange",
            AMQPValue::LongString(s.dead_letter_exchange().as_str().into()),
        ),
        (
            "x-dead-letter-routing-key",
            AMQPValue::LongString(key.into()),
        ),
        ("x-delivery-limit", AMQPValue::LongLongInt(s.delivery_limit)),
    ]);
    quorum_queue(channel, queue.clone(), arguments).await?;
    bind(channel, queue, exchange_name, key).await
}

/// Declares a partner's answer queue `ack.<partner>` bound to
/// `tradehub.acks` (idempotent; partners may declare it the same way).
pub async fn declare_ack_queue(
    channel: &Channel,
    s: &AmqpSettings,
    partner: &str,
) -> Result<(), AmqpError> {
    let queue = s.ack_queue(partner);
    let key = queue.as_str().to_owned();
    let declare = async {
        quorum_queue(channel, queue.clone(), FieldTable::default()).await?;
        bind(channel, queue, s.acks_exchange(), &key).await
    };
    in_time(|| format!("declaring {key}"), declare).await
}

/// The most of a reason an `x-tradehub-reason` header carries. Reasons can
/// quote what the sender sent (an identifier of 200 KiB); the broker closes
/// the connection for a header frame larger than its `frame_max` (128 KiB by
/// default), so a longer reason is cut at a character boundary and marked.
/// The whole reason stays in the hub's records (and in the body of a
/// refusal answered without an acknowledgement).
pub const HEADER_TEXT_MAX: usize = 1024;

fn header_text(text: &str) -> AMQPValue {
    if text.len() <= HEADER_TEXT_MAX {
        return AMQPValue::LongString(text.into());
    }
    let end = text.floor_char_boundary(HEADER_TEXT_MAX - '…'.len_utf8());
    let cut = format!("{}…", text.get(..end).unwrap_or_default());
    AMQPValue::LongString(cut.as_str().into())
}

/// Whether the broker refused a declaration because the object exists with
/// other arguments (406 PRECONDITION_FAILED, which closes the channel).
fn exists_otherwise(e: &AmqpError) -> bool {
    matches!(e, AmqpError::Broker(b) if matches!(
        b.kind(),
        lapin::ErrorKind::ProtocolError(p) if matches!(
            p.kind(),
            lapin::protocol::AMQPErrorKind::Soft(lapin::protocol::AMQPSoftError::PRECONDITIONFAILED)
        )
    ))
}

/// [`declare_ack_queue`] on a channel of its own, which a refusal closes
/// instead of the caller's. A partner may have declared its answer queue
/// itself, with other arguments (a classic queue): that queue is used as it
/// is (bound to `tradehub.acks`, a warning logged) rather than failing, so
/// that one partner's queue can never stop the intake or the outbox relay
/// for everyone.
pub async fn ensure_ack_queue(
    conn: &Connection,
    s: &AmqpSettings,
    partner: &str,
) -> Result<(), AmqpError> {
    let queue = s.ack_queue(partner);
    let key = queue.as_str().to_owned();
    let channel = in_time(|| format!("a channel for {key}"), conn.create_channel()).await?;
    let error = match declare_ack_queue(&channel, s, partner).await {
        Ok(()) => {
            let _ = channel.close(200, "declared".into()).await;
            return Ok(());
        }
        Err(error) => error,
    };
    if !exists_otherwise(&error) {
        let _ = channel.close(200, "failed".into()).await;
        return Err(refused_queue(&key, error));
    }
    tracing::warn!(partner, queue = %key, %error, "the partner's answer queue exists with other arguments; used as it is");
    let channel = in_time(|| format!("a channel for {key}"), conn.create_channel()).await?;
    let existing = async {
        let passive = QueueDeclareOptions {
            passive: true,
            ..durable_queue()
        };
        channel
            .queue_declare(queue.clone(), passive, FieldTable::default())
            .await?;
        bind(&channel, queue, s.acks_exchange(), &key).await
    };
    let result = in_time(|| format!("binding {key}"), existing).await;
    let _ = channel.close(200, "declared".into()).await;
    result.map_err(|e| refused_queue(&key, e))
}

/// A channel-level refusal (a soft AMQP error) of a partner's answer queue
/// is that partner's problem ([`AmqpError::QueueRefused`]); anything else
/// (the connection, a timeout) stays what it is.
fn refused_queue(key: &str, error: AmqpError) -> AmqpError {
    match &error {
        AmqpError::Broker(b) if b.is_amqp_soft_error() => {
            AmqpError::QueueRefused(format!("{key}: {error}"))
        }
        _ => error,
    }
}

/// The answer queues of partners declared on one connection, each once.
struct AckQueues {
    conn: Arc<Connection>,
    declared: tokio::sync::Mutex<HashSet<String>>,
}

impl AckQueues {
    async fn ensure(&self, s: &AmqpSettings, partner: &str) -> Result<(), AmqpError> {
        let queue = s.ack_queue(partner);
        let mut declared = self.declared.lock().await;
        if !declared.contains(queue.as_str()) {
            ensure_ack_queue(&self.conn, s, partner).await?;
            declared.insert(queue.as_str().to_owned());
        }
        Ok(())
    }
}

/// Connects to the broker.
pub async fn connect(settings: &AmqpSettings) -> Result<Connection, AmqpError> {
    open(&settings.url, ConnectionProperties::default()).await
}

/// [`connect`], the connection named for the broker's management tools
/// (`rabbitmqctl list_connections name client_properties`).
async fn connect_named(settings: &AmqpSettings, name: &str) -> Result<Connection, AmqpError> {
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("tradehub {name}{}", settings.connection_suffix()).into());
    open(&settings.url, properties).await
}

/// Opens a connection as lapin's own `connect` does, keeping hold of the
/// attempt's socket until the handshake is over: an attempt dropped before
/// then (the connect timeout ran out on a broker that took the connection
/// and never answered) has its socket shut down, which ends the client's
/// I/O thread. lapin's handshake has no deadline of its own, and each
/// attempt given up on used to keep its socket and its thread for good
/// (about three a minute while such a broker lasted).
async fn open(url: &str, properties: ConnectionProperties) -> Result<Connection, AmqpError> {
    let uri: lapin::uri::AMQPUri = url
        .parse()
        .map_err(|e: String| AmqpError::Broker(lapin::Error::from(std::io::Error::other(e))))?;
    let runtime = lapin::runtime::default_runtime()?;
    let socket = Arc::new(AttemptSocket::default());
    let held = socket.clone();
    let attempt = Attempt(socket);
    let connection = Connection::connector(
        uri,
        runtime,
        async move |uri, runtime| {
            use lapin::tcp::AMQPUriTcpExt;
            let stream = uri
                .connect_with_config_async(lapin::tcp::TLSConfig::default(), &runtime)
                .await?;
            held.keep(duplicate(&stream))?;
            Ok(stream)
        },
        properties,
    )
    .await?;
    attempt.0.settled();
    Ok(connection)
}

/// A duplicate of the descriptor of a stream's socket (plain or TLS) as
/// the default runtime makes it.
fn duplicate(
    stream: &lapin::AsyncTcpStream<async_compat::Compat<tokio::net::TcpStream>>,
) -> std::io::Result<Option<std::net::TcpStream>> {
    use std::os::fd::AsFd;
    let socket = match stream {
        lapin::AsyncTcpStream::Plain(plain) => plain.get_ref(),
        lapin::AsyncTcpStream::Rustls(tls) => tls.get_ref().0.get_ref(),
        _ => return Ok(None),
    };
    Ok(Some(socket.as_fd().try_clone_to_owned()?.into()))
}

/// A connection attempt in progress: dropped before it is settled, it shuts
/// its socket down.
struct Attempt(Arc<AttemptSocket>);

impl Drop for Attempt {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// The socket of one connection attempt (a duplicate of its descriptor),
/// shared between the task waiting for the connection and the client's
/// I/O thread, which makes the socket.
#[derive(Default)]
struct AttemptSocket {
    state: std::sync::Mutex<AttemptState>,
}

#[derive(Default)]
struct AttemptState {
    /// Given up on, or settled: a socket made now is not kept.
    over: bool,
    /// Given up on: a socket made now is shut down at once.
    abandoned: bool,
    socket: Option<std::net::TcpStream>,
}

impl AttemptSocket {
    fn state(&self) -> std::sync::MutexGuard<'_, AttemptState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a duplicate of the stream's socket, or, the attempt given up
    /// on meanwhile (the TCP connect outlasted the timeout), shuts it down
    /// and fails.
    fn keep(&self, socket: std::io::Result<Option<std::net::TcpStream>>) -> std::io::Result<()> {
        let Some(socket) = socket? else {
            return Ok(());
        };
        let mut state = self.state();
        if state.abandoned {
            let _ = socket.shutdown(std::net::Shutdown::Both);
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the connection attempt was given up on",
            ));
        }
        if !state.over {
            state.socket = Some(socket);
        }
        Ok(())
    }

    /// The handshake is over: the connection owns its socket.
    fn settled(&self) {
        let mut state = self.state();
        state.over = true;
        state.socket = None;
    }

    /// Given up on: shuts the socket down (a settled attempt keeps it).
    fn abandon(&self) {
        let mut state = self.state();
        if state.over {
            return;
        }
        state.over = true;
        state.abandoned = true;
        if let Some(socket) = state.socket.take() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Consumes until `shutdown` resolves, reconnecting with back-off (1 s
/// doubling to 30 s) after errors a retry can help with.
pub async fn run(
    intake: Intake,
    settings: AmqpSettings,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    intake.broker().set_configured();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let mut rx = shutdown.clone();
        let stop = async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        let started = tokio::time::Instant::now();
        let result = consume(intake.clone(), settings.clone(), stop).await;
        // A consumer that got set up and ran a while was a success: the
        // next wait starts again from 1 s (without this, after five losses
        // in the life of the process every later one cost 30 s of intake);
        // one that fails while setting up, or at once, keeps backing off.
        if intake.broker().status() == Some(true) && started.elapsed() >= Duration::from_secs(5) {
            backoff = Duration::from_secs(1);
        }
        intake.broker().set_connected(false);
        // Not counted while disconnected: the gauge is left out, not stale.
        intake.broker().clear_dead_letters();
        match result {
            Ok(()) if *shutdown.borrow() => return,
            Ok(()) => tracing::warn!("AMQP consumer ended; reconnecting"),
            Err(AmqpError::Store(e)) => {
                tracing::warn!(error = %e, "store failing; consuming again once it answers");
                if !store_answers(&intake, &shutdown).await {
                    return;
                }
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, ?backoff, "AMQP unavailable; retrying")
            }
            Err(e) => {
                tracing::error!(error = %e, "AMQP intake stopped");
                // Nothing is heard from the broker again: permits expire
                // as they would without one.
                intake.broker().set_stopped();
                return;
            }
        }
        let mut rx = shutdown.clone();
        tokio::select! {
            _ = rx.wait_for(|v| *v) => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Waits until the store takes a write again (polling every second, then
/// every five), so that the consumer does not take the queue's deliveries
/// while the database is away or refuses writes: each delivery given back
/// counts towards the queue's delivery limit, and an outage of some
/// minutes would otherwise send every waiting message to the dead-letter
/// queue as if it were poison. A query alone would not do: a read-only
/// standby after a failover answers it. False when `shutdown` came first.
async fn store_answers(intake: &Intake, shutdown: &tokio::sync::watch::Receiver<bool>) -> bool {
    let mut pause = Duration::from_secs(1);
    loop {
        match intake.store().probe_write().await {
            Ok(()) => return true,
            Err(e) => tracing::warn!(error = %e, "store takes no writes; AMQP intake waits"),
        }
        let mut rx = shutdown.clone();
        tokio::select! {
            _ = rx.wait_for(|v| *v) => return false,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause + Duration::from_secs(1)).min(Duration::from_secs(5));
    }
}

/// The consumer's connection and channels, the topology declared: the
/// intake channel and its consumer of `inbound`, the replies channel and
/// its consumer of `hub.permit-replies`.
async fn open_consumers(
    settings: &AmqpSettings,
) -> Result<
    (
        Arc<Connection>,
        Channel,
        lapin::Consumer,
        Channel,
        lapin::Consumer,
        u32,
    ),
    AmqpError,
> {
    let conn = Arc::new(connect(settings).await?);
    let channel = conn.create_channel().await?;
    declare_topology(&channel, settings).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .basic_qos(settings.prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            settings.inbound_queue(),
            "tradehub-intake".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let replies_channel = conn.create_channel().await?;
    replies_channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    replies_channel
        .basic_qos(settings.prefetch, BasicQosOptions::default())
        .await?;
    // The agency replies waiting, counted before this consumer takes any
    // (the broker's count leaves out those handed to a consumer).
    let waiting = queue_depth(&replies_channel, settings.replies_queue()).await?;
    let replies = replies_channel
        .basic_consume(
            settings.replies_queue(),
            "tradehub-permit-replies".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((conn, channel, consumer, replies_channel, replies, waiting))
}

/// Consumes `inbound` until `shutdown` resolves or the connection fails.
pub async fn consume<F>(
    intake: Intake,
    settings: AmqpSettings,
    shutdown: F,
) -> Result<(), AmqpError>
where
    F: Future<Output = ()>,
{
    let (conn, channel, mut consumer, replies_channel, mut replies, waiting) = within(
        settings.connect_timeout,
        || "connecting the AMQP intake to the broker".to_owned(),
        open_consumers(&settings),
    )
    .await?;
    tracing::info!(
        broker = %crate::store::store_target(&settings.url),
        prefix = %settings.prefix,
        queue = %settings.inbound_queue(),
        "AMQP intake connected; consuming"
    );
    let declared = Arc::new(AckQueues {
        conn: conn.clone(),
        declared: tokio::sync::Mutex::new(HashSet::new()),
    });
    for partner in intake.store().partners().await? {
        // One partner's queue the broker refuses is logged and left (its
        // answers are kept in the store); it never stops the intake.
        match declared.ensure(&settings, &partner.id).await {
            Ok(()) => {}
            Err(AmqpError::QueueRefused(why)) => {
                tracing::error!(partner = %partner.id, %why, "the partner's answer queue cannot be declared; its answers are kept in the store");
            }
            Err(e) => return Err(e),
        }
    }
    // Connected once everything is in place: a failure while setting up
    // (the database down, a queue declared with other arguments) is not a
    // connection that worked.
    intake.broker().set_connected(true);
    let connection = intake.broker().connection();
    // The agency replies waiting when the consumer connected (sent while
    // the hub was away) are taken before any permit expires (see
    // `BrokerState::agencies_heard`). Of them, those not yet handled
    // (shared with the tasks that handle them), and those not yet
    // delivered; the queue seen empty, with none of this consumer's
    // replies in hand, also says so (another hub instance took some, or
    // an operator moved them).
    let backlog = Arc::new(std::sync::atomic::AtomicU32::new(waiting));
    let mut undelivered = waiting;
    if waiting == 0 {
        intake.broker().set_replies_taken(connection);
    } else {
        tracing::info!(
            waiting,
            "agency replies waiting in the broker; permits expire once they are taken"
        );
    }
    // Shared with the delivery tasks.
    let settings = Arc::new(settings);
    // Per sender, the task handling its latest delivery: the next one of
    // the same sender waits for it. Finished ones are pruned.
    // A task answers whether its delivery was handled: when it was not (a
    // failure that ends the connection), the sender's next delivery is not
    // handled either but comes back after it.
    let mut chains: HashMap<String, tokio::task::JoinHandle<bool>> = HashMap::new();
    let mut reply_chains: HashMap<String, tokio::task::JoinHandle<bool>> = HashMap::new();
    // A task whose delivery failed in a way that needs a new connection.
    let (failed_tx, mut failed_rx) = tokio::sync::mpsc::unbounded_channel::<AmqpError>();
    tokio::pin!(shutdown);
    let mut depth_check = tokio::time::interval(Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            failed = failed_rx.recv() => {
                if let Some(e) = failed {
                    // The connection is closed, so the other deliveries
                    // under way end too: unacknowledged, they are
                    // delivered again.
                    close_all(&conn, &[&replies_channel, &channel], "failure").await;
                    return Err(e);
                }
            }
            _ = depth_check.tick() => {
                // The gauge is the sum of both queues or nothing: a sum
                // with one queue missing would read as messages having left
                // the dead-letter queues, and a value kept from an earlier
                // check as a current one. It is left out of /metrics until
                // both can be counted again.
                let mut total = Some(0u32);
                for queue in [settings.dead_inbound_queue(), settings.dead_replies_queue()] {
                    match queue_depth(&channel, queue.clone()).await {
                        Ok(n) => total = total.map(|t| t.saturating_add(n)),
                        Err(e) => {
                            tracing::warn!(
                                queue = %queue,
                                error = %e,
                                "the dead-letter queue's depth could not be read; the gauge is left out until it can"
                            );
                            total = None;
                        }
                    }
                }
                match total {
                    Some(total) => intake.broker().set_dead_letters(total),
                    None => intake.broker().clear_dead_letters(),
                }
                // A task that failed (and so left its delivery unhandled)
                // says so before it finishes. The finished tasks are noted
                // first, then failures taken, then only the noted tasks
                // pruned: a failed task is never pruned before its failure
                // closes the connection, so the sender's next delivery
                // cannot overtake the failed one.
                let finished = |chains: &HashMap<String, tokio::task::JoinHandle<bool>>| {
                    chains
                        .iter()
                        .filter(|(_, task)| task.is_finished())
                        .map(|(sender, _)| sender.clone())
                        .collect::<Vec<_>>()
                };
                let (done, replies_done) = (finished(&chains), finished(&reply_chains));
                // Replies still awaited from the start, while the queue is
                // empty and this consumer holds none: taken (by another
                // instance, or moved away).
                if !intake.broker().replies_taken()
                    && replies_done.len() == reply_chains.len()
                {
                    let depth = queue_depth(&replies_channel, settings.replies_queue());
                    if depth.await.is_ok_and(|n| n == 0) {
                        intake.broker().set_replies_taken(connection);
                    }
                }
                if let Ok(e) = failed_rx.try_recv() {
                    close_all(&conn, &[&replies_channel, &channel], "failure").await;
                    return Err(e);
                }
                for sender in done {
                    chains.remove(&sender);
                }
                for account in replies_done {
                    reply_chains.remove(&account);
                }
            }
            next = consumer.next() => match next {
                Some(d) => {
                    let delivery = d?;
                    let sender = user_of(&delivery);
                    let (intake, settings, channel, declared) = (
                        intake.clone(),
                        settings.clone(),
                        channel.clone(),
                        declared.clone(),
                    );
                    let task = after(chains.remove(&sender), failed_tx.clone(), async move {
                        handle(&intake, &settings, &channel, &declared, delivery).await
                    });
                    chains.insert(sender, task);
                }
                None => break,
            },
            // Agency answers are handled in tasks too, so that one waiting on
            // the store does not hold up the intake; those of one account
            // one after another, so the first answer to a permit stays the
            // one it gave first.
            next = replies.next() => match next {
                Some(d) => {
                    let delivery = d?;
                    let account = user_of(&delivery);
                    let (intake, settings, channel) =
                        (intake.clone(), settings.clone(), replies_channel.clone());
                    // One of the replies waiting at the start (they come
                    // first): counted once handled.
                    let of_backlog = (undelivered > 0).then(|| backlog.clone());
                    undelivered = undelivered.saturating_sub(1);
                    let task = after(reply_chains.remove(&account), failed_tx.clone(), async move {
                        let handled = handle_reply(&intake, &settings, &channel, delivery).await;
                        if handled.is_ok()
                            && let Some(backlog) = of_backlog
                            && backlog.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1
                        {
                            intake.broker().set_replies_taken(connection);
                            tracing::info!("the agency replies that were waiting are taken");
                        }
                        handled
                    });
                    reply_chains.insert(account, task);
                }
                None => break,
            },
        }
    }
    // Deliveries under way are finished (committed, answered,
    // acknowledged) before the channels close.
    for (_, task) in chains.drain().chain(reply_chains.drain()) {
        let _ = task.await;
    }
    close_all(&conn, &[&replies_channel, &channel], "shutdown").await;
    Ok(())
}

/// Closes the channels, then the connection.
async fn close_all(conn: &Connection, channels: &[&Channel], why: &str) {
    for channel in channels {
        let _ = channel.close(200, why.into()).await;
    }
    let _ = conn.close(200, why.into()).await;
}

/// The broker-validated user a delivery came from ("" without one).
fn user_of(delivery: &lapin::message::Delivery) -> String {
    delivery
        .properties
        .user_id()
        .as_ref()
        .map(|u| u.as_str().to_owned())
        .unwrap_or_default()
}

/// Runs `work` (one delivery's handling) in a task once `before` (the same
/// sender's previous one) has ended, and answers whether it was handled.
/// Its outcome is its own, only the order matters, unless it was left
/// unhandled: then this one is not handled either (it comes back after it,
/// with the connection). A failure that needs a new connection goes to
/// `failed`.
fn after(
    before: Option<tokio::task::JoinHandle<bool>>,
    failed: tokio::sync::mpsc::UnboundedSender<AmqpError>,
    work: impl Future<Output = Result<(), AmqpError>> + Send + 'static,
) -> tokio::task::JoinHandle<bool> {
    tokio::spawn(async move {
        if let Some(before) = before
            && matches!(before.await, Ok(false))
        {
            return false;
        }
        match work.await {
            Ok(()) => true,
            Err(e) => {
                let _ = failed.send(e);
                false
            }
        }
    })
}

async fn handle(
    intake: &Intake,
    s: &AmqpSettings,
    channel: &Channel,
    declared: &AckQueues,
    delivery: lapin::message::Delivery,
) -> Result<(), AmqpError> {
    let props = delivery.properties.clone();
    let user = props.user_id().as_ref().map(|u| u.as_str().to_owned());
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        dead_letter(
            channel,
            s,
            &delivery,
            Code::UnknownSender.as_str(),
            "message has no user_id property: the sender cannot be identified",
        )
        .await?;
        return Ok(());
    };
    if delivery.data.len() > s.max_body_bytes {
        let why = format!(
            "message of {} bytes exceeds the limit of {} bytes; not read",
            delivery.data.len(),
            s.max_body_bytes
        );
        // Recorded under the partner when the user is one (the broker
        // validated the user id; an account that is no partner is named in
        // the reason only).
        let partner = match intake.store().partner(&user).await {
            Ok(partner) => partner,
            Err(e) => {
                tracing::warn!(user = %user, error = %e, "the sender of an over-size message cannot be looked up; recorded without a partner");
                None
            }
        };
        let registered = partner.is_some();
        let why = if registered {
            why
        } else {
            format!("{why} (user_id {user:?}, not a registered partner)")
        };
        if let Err(e) = retrying("refusal", s.store_retry_budget, || {
            intake.refuse_too_large(
                registered.then_some(user.as_str()),
                i64::try_from(delivery.data.len()).unwrap_or(i64::MAX),
                Some(&delivery.data),
                &why,
                crate::timestamp::Timestamp::now(),
            )
        })
        .await
        {
            return store_failed(channel, s, &delivery, INBOUND_KEY, e).await;
        }
        // A registered sender is answered, as for any refusal: it would
        // otherwise wait for an answer that never comes.
        let body = format!("refused {}: {why}", Code::TooLarge);
        let partner = partner.as_ref().map(|p| p.id.as_str());
        return refuse_delivery(
            (channel, s, declared),
            &delivery,
            partner,
            Code::TooLarge,
            &why,
            body.as_bytes(),
        )
        .await;
    }
    let partner = match retrying("partner", s.store_retry_budget, || {
        intake.store().partner(&user)
    })
    .await
    {
        Ok(Some(p)) => p,
        Ok(None) => {
            let why = format!("user_id {user:?} is not a registered partner");
            dead_letter(channel, s, &delivery, Code::UnknownSender.as_str(), &why).await?;
            return Ok(());
        }
        Err(e) => return store_failed(channel, s, &delivery, INBOUND_KEY, e).await,
    };
    let via = crate::hub::Via::Amqp {
        message_id: props.message_id().as_ref().map(|m| m.as_str().to_owned()),
    };
    let outcome = match retrying("submission", s.store_retry_budget, || {
        intake.submit_via(&partner, delivery.data.clone(), via.clone())
    })
    .await
    {
        Ok(o) => o,
        Err(e) => return store_failed(channel, s, &delivery, INBOUND_KEY, e).await,
    };
    match outcome {
        Submission::Stored(r) | Submission::Duplicate(r) => {
            let headers = args(&[
                (
                    "x-tradehub-interchange",
                    AMQPValue::LongString(r.interchange.id.as_str().into()),
                ),
                (
                    "x-tradehub-status",
                    AMQPValue::LongString(r.interchange.status.as_str().into()),
                ),
            ]);
            reply(
                channel,
                s,
                declared,
                &partner.id,
                &props,
                headers,
                // Encoded in the repertoire its UNB names (ISO 8859-1
                // for UNOC), as the sender reads it.
                &crate::ack::to_bytes(&r.interchange.acknowledgement),
            )
            .await
            .or_else(|e| declined(e, &partner.id, Some(&r.interchange.id)))?;
        }
        Submission::Refused(refused) => {
            let body = match &refused.acknowledgement {
                Some(answer) => crate::ack::to_bytes(answer),
                None => format!("refused {}: {}", refused.code, refused.detail).into_bytes(),
            };
            return refuse_delivery(
                (channel, s, declared),
                &delivery,
                Some(&partner.id),
                refused.code,
                &refused.detail,
                &body,
            )
            .await;
        }
    }
    ack(&delivery).await?;
    Ok(())
}

/// One agency answer: a JSON [`PermitDecision`] from an account acting for
/// the permit's agency (its validated `user_id`). Answers that can never be
/// taken are dead-lettered with the reason; a repeated answer is dropped
/// (the first one stands).
async fn handle_reply(
    intake: &Intake,
    s: &AmqpSettings,
    channel: &Channel,
    delivery: lapin::message::Delivery,
) -> Result<(), AmqpError> {
    let held = &delivery;
    let unknown = |code: &'static str, why: String| async move {
        dead_letter_to(channel, s, held, REPLIES_KEY, code, &why).await
    };
    let user = delivery
        .properties
        .user_id()
        .as_ref()
        .map(|u| u.as_str().to_owned())
        .filter(|u| !u.is_empty());
    let Some(user) = user else {
        return unknown(
            Code::UnknownSender.as_str(),
            "agency reply without user_id: the agency cannot be identified".into(),
        )
        .await;
    };
    let partner = match retrying("partner", s.store_retry_budget, || {
        intake.store().partner(&user)
    })
    .await
    {
        Ok(Some(p)) => p,
        Ok(None) => {
            return unknown(
                Code::UnknownSender.as_str(),
                format!("user_id {user:?} is not a registered account"),
            )
            .await;
        }
        Err(e) => return store_failed(channel, s, &delivery, REPLIES_KEY, e).await,
    };
    // From here the account is known: a reply not taken is also announced
    // to its agency, on its own permit queue (the dead-letter queue is the
    // operator's, shared by every agency).
    // The notice says what the dead letter says, unless `told` gives it
    // another code and reason (see the wrong agency below).
    let dead_told = |code: &'static str,
                     why: String,
                     permit: Option<String>,
                     told: Option<(&'static str, String)>| {
        let partner = &partner;
        async move {
            if let Some(agency) = &partner.agency {
                let (told_code, told_why) = told.unwrap_or((code, why.clone()));
                reply_refused_notice(
                    (channel, s, held),
                    agency,
                    &partner.id,
                    permit,
                    told_code,
                    &told_why,
                )
                .await?;
            }
            dead_letter_to(channel, s, held, REPLIES_KEY, code, &why).await
        }
    };
    let dead = |code: &'static str, why: String, permit: Option<String>| {
        dead_told(code, why, permit, None)
    };
    // The same limit as a decision posted over HTTP (and as intake).
    if delivery.data.len() > s.max_body_bytes {
        return dead(
            Code::TooLarge.as_str(),
            format!(
                "agency reply of {} bytes exceeds the limit of {} bytes; not read",
                delivery.data.len(),
                s.max_body_bytes
            ),
            None,
        )
        .await;
    }
    let decision = match PermitDecision::from_reply(&delivery.data) {
        Ok(d) => d,
        Err(e) => {
            return dead(
                Code::PermitReplyInvalid.as_str(),
                format!("not a permit decision (JSON with permit_id, outcome, reasons): {e}"),
                None,
            )
            .await;
        }
    };
    let recorded = |declaration: Box<crate::store::StoredDeclaration>, repeated: bool| {
        let (partner, decision) = (&partner, &decision);
        async move {
            match &partner.agency {
                Some(agency) => {
                    let told = (agency.as_str(), partner.id.as_str());
                    let notice = (decision, *declaration, repeated);
                    decision_recorded_notice((channel, s, held), told, notice).await
                }
                None => Ok(()),
            }
        }
    };
    match retrying("decision", s.store_retry_budget, || {
        intake.decide(&partner, &decision)
    })
    .await
    {
        // The very answer again (a redelivery, a resend) is taken as the
        // first was (`Repeated`); any other answer to a permit no longer
        // pending (another outcome, other reasons or conditions, or a
        // permit that expired or was withdrawn) is not taken and is
        // dead-lettered with the reason, never dropped silently.
        Ok(DecisionOutcome::AlreadyDecided(status)) => {
            dead(
                Code::PermitAlreadyAnswered.as_str(),
                format!(
                    "{}; this {} was not taken",
                    crate::hub::permits::closed(&decision.permit_id, &status),
                    outcome_name(decision.outcome)
                ),
                Some(decision.permit_id.clone()),
            )
            .await
        }
        // The agency hears that its answer was recorded (or, for the very
        // answer again, that it stands) before the reply is acknowledged:
        // a reply whose notice could not be published comes back and is
        // taken as `Repeated`, and its notice, of the same id, published then.
        Ok(DecisionOutcome::Recorded(declaration)) => {
            recorded(declaration, false).await?;
            ack(&delivery).await
        }
        Ok(DecisionOutcome::Repeated(declaration)) => {
            recorded(declaration, true).await?;
            ack(&delivery).await
        }
        Err(DecisionError::Store(e)) => store_failed(channel, s, &delivery, REPLIES_KEY, e).await,
        Err(e @ (DecisionError::NotFound(_) | DecisionError::Invalid(_))) => {
            dead(
                Code::PermitReplyInvalid.as_str(),
                e.to_string(),
                Some(decision.permit_id.clone()),
            )
            .await
        }
        Err(DecisionError::Suspended(why)) => {
            dead(
                Code::PartnerSuspended.as_str(),
                why,
                Some(decision.permit_id.clone()),
            )
            .await
        }
        // The agency is told what it would be told of a permit that does
        // not exist (as over HTTP, a 404 alike): the notice must not let it
        // learn which permits exist elsewhere, and whose they are. The dead
        // letter, the operator's, says which agency's it is.
        Err(e @ DecisionError::WrongAgency { .. }) => {
            let unknown = DecisionError::NotFound(decision.permit_id.clone()).to_string();
            dead_told(
                Code::WrongSender.as_str(),
                e.to_string(),
                Some(decision.permit_id.clone()),
                Some((Code::PermitReplyInvalid.as_str(), unknown)),
            )
            .await
        }
    }
}

/// Tells an agency that a reply from one of its accounts was not taken:
/// `{"type": "permit.reply-refused", "agency", "account", "permit_id",
/// "code", "reason", "reply_message_id", "at"}` on its permit queue
/// (routing key `permit.<CODE>`, `message_id` `<reply message id>/refused`,
/// or the SHA-256 of account and body for a reply without one),
/// as withdrawals and expiries are announced.
async fn reply_refused_notice(
    (channel, s, delivery): (&Channel, &AmqpSettings, &lapin::message::Delivery),
    agency: &str,
    account: &str,
    permit: Option<String>,
    code: &str,
    reason: &str,
) -> Result<(), AmqpError> {
    let reply_id = message_id_of(delivery);
    let notice = serde_json::json!({
        "type": "permit.reply-refused",
        "agency": agency,
        "account": account,
        "permit_id": permit,
        "code": code,
        "reason": reason,
        "reply_message_id": reply_id,
        "at": crate::timestamp::Timestamp::now().to_string(),
    });
    // A reply without a message id is named by what it is (who sent what),
    // so that the notice of a redelivered reply has the same id.
    let id = match &reply_id {
        Some(reply) => format!("{reply}/refused"),
        None => {
            let mut named = account.as_bytes().to_vec();
            named.push(0);
            named.extend_from_slice(&delivery.data);
            format!("{}/refused", crate::hub::sha256_hex(&named))
        }
    };
    publish_agency_notice((channel, s), agency, id, &notice).await
}

/// Publishes a notice to an agency on its permit queue (routing key
/// `permit.<CODE>`), persistent and confirmed, with its JSON `type` as
/// the AMQP `type` and `id` as its `message_id`.
async fn publish_agency_notice(
    (channel, s): (&Channel, &AmqpSettings),
    agency: &str,
    id: String,
    notice: &serde_json::Value,
) -> Result<(), AmqpError> {
    let mut props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(id.into());
    if let Some(kind) = notice.get("type").and_then(serde_json::Value::as_str) {
        props = props.with_type(kind.into());
    }
    publish_confirmed(
        channel,
        s.permits_exchange(),
        format!("permit.{agency}").into(),
        notice.to_string().as_bytes(),
        props,
    )
    .await
}

/// Tells an agency that a decision from one of its accounts was recorded:
/// `{"type": "permit.decision-recorded", "agency", "account", "permit_id",
/// "outcome", "repeated", "declaration", "reply_message_id", "at"}` on its
/// permit queue (routing key `permit.<CODE>`, `message_id`
/// `<permit id>/recorded`: a permit takes one answer, so the notice of a
/// redelivered or resent answer has the same id). `declaration` is the
/// declaration as it stands after the answer, without its risk lane (as
/// over HTTP); `repeated`: the very answer had been recorded already.
async fn decision_recorded_notice(
    (channel, s, delivery): (&Channel, &AmqpSettings, &lapin::message::Delivery),
    (agency, account): (&str, &str),
    (decision, mut declaration, repeated): (&PermitDecision, crate::store::StoredDeclaration, bool),
) -> Result<(), AmqpError> {
    let reply_id = message_id_of(delivery);
    declaration.lane = None;
    let notice = serde_json::json!({
        "type": "permit.decision-recorded",
        "agency": agency,
        "account": account,
        "permit_id": decision.permit_id,
        "outcome": outcome_name(decision.outcome),
        "repeated": repeated,
        "declaration": declaration,
        "reply_message_id": reply_id,
        "at": crate::timestamp::Timestamp::now().to_string(),
    });
    let id = format!("{}/recorded", decision.permit_id);
    publish_agency_notice((channel, s), agency, id, &notice).await
}

/// A delivery's AMQP `message_id`, if it has one.
fn message_id_of(delivery: &lapin::message::Delivery) -> Option<String> {
    delivery
        .properties
        .message_id()
        .as_ref()
        .map(|m| m.as_str().to_owned())
}

/// A decision's outcome as a permit's status names it.
fn outcome_name(outcome: crate::model::PermitOutcome) -> &'static str {
    match outcome {
        crate::model::PermitOutcome::Granted => "granted",
        crate::model::PermitOutcome::Refused => "refused",
        crate::model::PermitOutcome::Conditional => "conditional",
    }
}

/// How long a delivery's task keeps retrying a storage failure that may
/// pass, by default (`AmqpSettings::store_retry_budget`).
pub const STORE_RETRY_BUDGET: Duration = Duration::from_secs(30);

/// Runs a store operation, retrying failures that may pass (database
/// restarting, pool exhausted, deadlock) with growing pauses (0.1 s
/// doubling to 5 s) for up to `budget` ([`STORE_RETRY_BUDGET`] by default). The delivery's task
/// holds its place meanwhile, so the sender's next deliveries wait behind
/// it instead of overtaking it (an amendment handled before its original),
/// and a short outage does not use up the queue's delivery limit.
async fn retrying<T, E, F, Fut>(what: &str, budget: Duration, mut operation: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display + Retryable,
{
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        match operation().await {
            Err(e) if e.retryable() && started.elapsed() + pause <= budget => {
                tracing::warn!(error = %e, what, pause_ms = pause.as_millis() as u64, "store failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// Errors [`retrying`] may try again.
trait Retryable {
    fn retryable(&self) -> bool;
}

impl Retryable for StoreError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }
}

impl Retryable for DecisionError {
    fn retryable(&self) -> bool {
        matches!(self, DecisionError::Store(e) if e.is_retryable())
    }
}

/// After a storage failure: a failure that may pass (the database away, a
/// serialization conflict) puts the delivery back, and persistent ones
/// reach the dead-letter queue through the queue's delivery limit; one that
/// retrying cannot change is dead-lettered to `key`'s dead-letter queue
/// with the reason (HUB501) at once, so that the consumer goes on with the
/// deliveries after it.
async fn store_failed(
    channel: &Channel,
    s: &AmqpSettings,
    delivery: &lapin::message::Delivery,
    key: &str,
    e: StoreError,
) -> Result<(), AmqpError> {
    if !e.is_retryable() {
        tracing::error!(error = %e, "store refused the delivery; dead-lettered");
        let reason = format!("the hub could not store it: {e}");
        return dead_letter_to(
            channel,
            s,
            delivery,
            key,
            Code::StoreRefused.as_str(),
            &reason,
        )
        .await;
    }
    // Requeueing this one delivery would let the sender's next delivery
    // (an amendment of this original) be handled before it comes back. The
    // error ends the connection instead: the sender's later deliveries are
    // not handled (see `consume`), and every unacknowledged delivery comes
    // back in order once the consumer reconnects (with back-off).
    tracing::error!(error = %e, "store still failing; reconnecting, the deliveries come back");
    Err(AmqpError::Store(e))
}

/// Publishes and waits for the broker's confirmation.
async fn publish_confirmed(
    channel: &Channel,
    exchange: ShortString,
    key: ShortString,
    body: &[u8],
    props: BasicProperties,
) -> Result<(), AmqpError> {
    let target = format!("{exchange}/{key}");
    let confirm = in_time(
        || format!("a publish to {target}"),
        channel.basic_publish(exchange, key, BasicPublishOptions::default(), body, props),
    )
    .await?;
    confirmed(target, confirm).await
}

/// Republishes a delivery to the dead-letter exchange with the reason, then
/// acknowledges the original.
async fn dead_letter(
    channel: &Channel,
    s: &AmqpSettings,
    delivery: &lapin::message::Delivery,
    code: &str,
    reason: &str,
) -> Result<(), AmqpError> {
    dead_letter_to(channel, s, delivery, INBOUND_KEY, code, reason).await
}

/// Republishes to the dead-letter exchange under `key` (`dead.<queue>`).
async fn dead_letter_to(
    channel: &Channel,
    s: &AmqpSettings,
    delivery: &lapin::message::Delivery,
    key: &str,
    code: &str,
    reason: &str,
) -> Result<(), AmqpError> {
    tracing::warn!(code, reason, key, "message dead-lettered");
    let (mut headers, dropped) = dead_letter_headers(delivery.properties.headers().as_ref());
    if dropped > 0 {
        headers.insert(
            "x-tradehub-headers-dropped".into(),
            AMQPValue::LongLongInt(i64::try_from(dropped).unwrap_or(i64::MAX)),
        );
    }
    headers.insert("x-tradehub-code".into(), AMQPValue::LongString(code.into()));
    headers.insert("x-tradehub-reason".into(), header_text(reason));
    // The broker accepts a `user_id` only from a connection of that user,
    // and the hub's user is not the partner's: the copy carries the sender
    // as a header instead, and no expiration (a dead letter is kept).
    let original = &delivery.properties;
    if let Some(user) = original.user_id() {
        headers.insert(
            "x-tradehub-user".into(),
            AMQPValue::LongString(user.as_str().into()),
        );
    }
    let mut props = BasicProperties::default()
        .with_headers(headers)
        .with_delivery_mode(2);
    if let Some(v) = original.content_type() {
        props = props.with_content_type(v.clone());
    }
    if let Some(v) = original.content_encoding() {
        props = props.with_content_encoding(v.clone());
    }
    if let Some(v) = original.correlation_id() {
        props = props.with_correlation_id(v.clone());
    }
    if let Some(v) = original.reply_to() {
        props = props.with_reply_to(v.clone());
    }
    if let Some(v) = original.message_id() {
        props = props.with_message_id(v.clone());
    }
    if let Some(v) = original.timestamp() {
        props = props.with_timestamp(*v);
    }
    if let Some(v) = original.kind() {
        props = props.with_type(v.clone());
    }
    if let Some(v) = original.app_id() {
        props = props.with_app_id(v.clone());
    }
    if let Some(v) = original.priority() {
        props = props.with_priority(*v);
    }
    publish_confirmed(
        channel,
        s.dead_letter_exchange(),
        key.into(),
        &delivery.data,
        props,
    )
    .await?;
    ack(delivery).await?;
    Ok(())
}

/// The `reply_to` queues the hub answers on: queues the broker named
/// (`amq.gen-…`, random names only their declarer knows) and the queue
/// named exactly `reply.<partner>`. Any other name could be another
/// partner's answer queue or an agency's queue, which the hub's own user
/// may publish to: the answer goes to `ack.<partner>` instead. (Not
/// `reply.<partner>.…`: partner ids may hold dots, so `reply.ACME.DE`
/// could be partner `ACME.DE`'s.) Not RabbitMQ's direct reply-to
/// (`amq.rabbitmq.reply-to…`): the answer comes after the commit, not on
/// the sender's channel, and a publish to a malformed direct reply-to name
/// makes the broker close the hub's whole connection, which the sender
/// could have it do again at every redelivery.
fn reply_to_allowed(s: &AmqpSettings, partner: &str, queue: &str) -> bool {
    queue.starts_with("amq.gen-") || queue == format!("{}reply.{partner}", s.prefix)
}

/// Most headers of the sender's a dead-letter copy carries.
const DEAD_LETTER_HEADERS: usize = 32;

/// Longest header value (string or bytes) a dead-letter copy carries.
const DEAD_LETTER_HEADER_BYTES: usize = 512;

/// The sender's headers a dead-letter copy keeps: plain values (strings
/// and byte strings up to [`DEAD_LETTER_HEADER_BYTES`], numbers, booleans,
/// timestamps) under names that are not the broker's (`CC`, `BCC` would
/// route the copy to further queues, `x-…` are the broker's and the
/// hub's), at most [`DEAD_LETTER_HEADERS`] of them; and how many were
/// left out. So the copy stays far below the broker's frame size whatever
/// the sender sent: a copy the broker refuses would close the connection
/// and bring the delivery back, again and again.
fn dead_letter_headers(original: Option<&FieldTable>) -> (FieldTable, usize) {
    let mut kept = FieldTable::default();
    let mut dropped = 0;
    let Some(original) = original else {
        return (kept, 0);
    };
    for (name, value) in original.inner() {
        let key = name.as_str();
        let routing = key.eq_ignore_ascii_case("CC") || key.eq_ignore_ascii_case("BCC");
        let plain = match value {
            AMQPValue::LongString(v) => v.as_bytes().len() <= DEAD_LETTER_HEADER_BYTES,
            AMQPValue::ShortString(v) => v.as_str().len() <= DEAD_LETTER_HEADER_BYTES,
            AMQPValue::ByteArray(v) => v.as_slice().len() <= DEAD_LETTER_HEADER_BYTES,
            AMQPValue::FieldTable(_) | AMQPValue::FieldArray(_) => false,
            _ => true,
        };
        if routing || key.starts_with("x-") || !plain || kept.inner().len() >= DEAD_LETTER_HEADERS {
            dropped += 1;
        } else {
            kept.insert(name.clone(), value.clone());
        }
    }
    (kept, dropped)
}

/// The content type of an answer: a WCO RES is XML, a CONTRL EDIFACT, and
/// a refusal the hub could not write in the sender's format plain text.
fn content_type_of(body: &[u8]) -> &'static str {
    let start = body.trim_ascii_start();
    if start.starts_with(b"<") {
        "application/xml"
    } else if start.starts_with(b"UNA") || start.starts_with(b"UNB") {
        "application/edifact"
    } else {
        "text/plain; charset=utf-8"
    }
}

/// An answer the broker declined everywhere it could go (the partner's
/// answer queue too, e.g. under a length limit): the submission is
/// committed and its answer stays readable over HTTP, so the delivery is
/// still acknowledged; only this sender misses the push, and the intake of
/// every other sender goes on. Other failures are the connection's.
fn declined(error: AmqpError, partner: &str, interchange: Option<&str>) -> Result<(), AmqpError> {
    match error {
        AmqpError::Nacked(target) | AmqpError::QueueRefused(target) => {
            tracing::error!(
                partner,
                interchange,
                target = %target,
                "the broker declined the answer; it is kept with the interchange (GET /v1/interchanges/{{id}})"
            );
            Ok(())
        }
        other => Err(other),
    }
}

/// Answers a refused delivery's registered sender (`partner`) with the
/// refusal's code and reason as headers and `body`, then dead-letters the
/// delivery with them.
async fn refuse_delivery(
    (channel, s, declared): (&Channel, &AmqpSettings, &AckQueues),
    delivery: &lapin::message::Delivery,
    partner: Option<&str>,
    code: Code,
    reason: &str,
    body: &[u8],
) -> Result<(), AmqpError> {
    if let Some(partner) = partner {
        let headers = refusal_headers(code, reason);
        reply(
            channel,
            s,
            declared,
            partner,
            &delivery.properties,
            headers,
            body,
        )
        .await
        .or_else(|e| declined(e, partner, None))?;
    }
    dead_letter(channel, s, delivery, code.as_str(), reason).await
}

/// The headers of a refusal's answer: its code and reason.
fn refusal_headers(code: Code, reason: &str) -> FieldTable {
    args(&[
        (
            "x-tradehub-code",
            AMQPValue::LongString(code.as_str().into()),
        ),
        ("x-tradehub-reason", header_text(reason)),
    ])
}

/// Sends an answer to the partner: to `reply_to` when the message named one,
/// else to `ack.<partner>` through `tradehub.acks` (declared on first use),
/// with the message's `message_id` as its `correlation_id`.
#[allow(clippy::too_many_arguments)]
async fn reply(
    channel: &Channel,
    s: &AmqpSettings,
    declared: &AckQueues,
    partner: &str,
    inbound: &BasicProperties,
    headers: FieldTable,
    body: &[u8],
) -> Result<(), AmqpError> {
    let mut props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(headers)
        .with_content_type(content_type_of(body).into());
    if let Some(id) = inbound.message_id() {
        props = props.with_correlation_id(id.clone());
    }
    let asked = inbound
        .reply_to()
        .as_ref()
        .filter(|r| !r.as_str().is_empty());
    let allowed = asked.filter(|r| reply_to_allowed(s, partner, r.as_str()));
    if let (Some(refused), None) = (asked, allowed) {
        tracing::warn!(partner, reply_to = %refused, "reply_to names a queue that is not the partner's; answered on the partner's answer queue");
    }
    if let Some(reply_to) = allowed {
        // Mandatory: a `reply_to` queue that does not exist (any more)
        // gives the answer back, and it goes to the partner's answer queue
        // instead of being dropped.
        let target = format!("reply_to {reply_to}");
        let confirm = in_time(
            || format!("a publish to {target}"),
            channel.basic_publish(
                "".into(),
                reply_to.clone(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                props.clone(),
            ),
        )
        .await?;
        match confirmation(&target, confirm).await? {
            lapin::Confirmation::Ack(None) => return Ok(()),
            lapin::Confirmation::Ack(Some(_)) => {
                tracing::warn!(partner, reply_to = %reply_to, "reply_to queue missing; answered on the partner's answer queue");
            }
            // The queue refuses it (full, with overflow reject-publish):
            // the partner's answer queue takes it instead.
            _ => {
                tracing::warn!(partner, reply_to = %reply_to, "reply_to queue declined the answer; answered on the partner's answer queue");
            }
        }
    }
    let queue = s.ack_queue(partner);
    declared.ensure(s, partner).await?;
    publish_confirmed(channel, s.acks_exchange(), queue, body, props).await
}

/// Publishes outbox messages to RabbitMQ with confirms, reconnecting on the
/// next publish after a failure.
#[derive(Debug)]
pub struct OutboxPublisher {
    settings: AmqpSettings,
    link: tokio::sync::Mutex<Option<(Connection, Channel, HashSet<String>)>>,
}

impl OutboxPublisher {
    pub fn new(settings: AmqpSettings) -> Self {
        OutboxPublisher {
            settings,
            link: tokio::sync::Mutex::new(None),
        }
    }

    /// A connection and a confirming channel with the topology declared,
    /// within the settings' connect timeout.
    async fn open_link(&self) -> Result<(Connection, Channel, HashSet<String>), AmqpError> {
        within(
            self.settings.connect_timeout,
            || "connecting the outbox relay to the broker".to_owned(),
            async {
                let conn = connect_named(&self.settings, "outbox relay").await?;
                let channel = conn.create_channel().await?;
                declare_topology(&channel, &self.settings).await?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await?;
                Ok::<_, AmqpError>((conn, channel, HashSet::new()))
            },
        )
        .await
    }

    /// Connected (reconnecting when the last link broke, or when the
    /// client has seen it end since: the broker closed it, a heartbeat was
    /// missed), before the relay claims rows to publish, so that rows are
    /// not claimed for a link that cannot take them.
    async fn ready(&self) -> Result<(), AmqpError> {
        let mut link = self.link.lock().await;
        let alive = link.as_ref().is_some_and(|(conn, channel, _)| {
            conn.status().connected() && channel.status().connected()
        });
        if !alive {
            *link = None;
            *link = Some(self.open_link().await?);
        }
        Ok(())
    }

    async fn send(&self, m: &crate::store::PendingMessage) -> Result<(), SendFailure> {
        self.send_all(std::slice::from_ref(m))
            .await
            .pop()
            .unwrap_or(Ok(()))
    }

    /// Publishes every message, then waits for every confirm (the broker
    /// confirms in any order), all within one [`CONFIRM_TIMEOUT`]; one
    /// result per message. After a failure other than a negative confirm
    /// (which leaves the channel as it was) the next publish opens a new
    /// connection.
    async fn send_all(
        &self,
        messages: &[crate::store::PendingMessage],
    ) -> Vec<Result<(), SendFailure>> {
        let mut link = self.link.lock().await;
        let results = self.send_on(&mut link, messages).await;
        let broken = results
            .iter()
            .any(|r| matches!(r, Err(f) if !matches!(f.error, AmqpError::Nacked(_))));
        if broken {
            *link = None;
        }
        results
    }

    async fn send_on(
        &self,
        link: &mut Option<(Connection, Channel, HashSet<String>)>,
        messages: &[crate::store::PendingMessage],
    ) -> Vec<Result<(), SendFailure>> {
        let mut results: Vec<Result<(), SendFailure>> = Vec::with_capacity(messages.len());
        let mut confirms = Vec::with_capacity(messages.len());
        let sent = self.publish_each(link, messages, &mut confirms).await;
        // One deadline for the whole batch: a broker that stops confirming
        // costs the relay one timeout, not one per message.
        let deadline = tokio::time::Instant::now() + CONFIRM_TIMEOUT;
        for (target, confirm) in confirms {
            // A confirm is the message's own answer.
            let result = confirmed_by(target, confirm, deadline).await;
            results.push(result.map_err(|error| SendFailure { error, own: true }));
        }
        // A message not sent and every one after it share that failure: the
        // message's own when its publish failed, the link's when the
        // connection, channel or topology did.
        if let Err(first) = sent {
            let reason = first.error.to_string();
            let mut first = Some(first);
            while results.len() < messages.len() {
                results.push(Err(first.take().unwrap_or_else(|| SendFailure {
                    error: AmqpError::NotConfirmed(format!("not sent: {reason}")),
                    own: false,
                })));
            }
        }
        results
    }

    /// Sends messages in order, keeping each one's pending confirm; stops
    /// at the first that cannot be sent.
    async fn publish_each(
        &self,
        link: &mut Option<(Connection, Channel, HashSet<String>)>,
        messages: &[crate::store::PendingMessage],
        confirms: &mut Vec<(String, lapin::PublisherConfirm)>,
    ) -> Result<(), SendFailure> {
        let link_failed = |error: AmqpError| SendFailure { error, own: false };
        if link.is_none() {
            *link = Some(self.open_link().await.map_err(link_failed)?);
        }
        let Some((conn, channel, declared)) = link.as_mut() else {
            return Err(link_failed(AmqpError::NotConfirmed("no channel".into())));
        };
        for m in messages {
            // Answers to partners go to their `ack.<partner>` queue,
            // declared on first use so that nothing is published into the
            // void.
            let mut key: ShortString = m.message.routing_key.as_str().into();
            if m.message.exchange == crate::hub::clearance::ACKS_EXCHANGE
                && let Some(partner) = m.message.routing_key.strip_prefix("ack.")
            {
                key = self.settings.ack_queue(partner);
                if !declared.contains(key.as_str()) {
                    ensure_ack_queue(conn, &self.settings, partner)
                        .await
                        .map_err(|error| match error {
                            // This message's destination, not the link:
                            // it waits, the others flow.
                            AmqpError::QueueRefused(_) => SendFailure { error, own: true },
                            error => link_failed(error),
                        })?;
                    declared.insert(key.as_str().to_owned());
                }
            }
            let mut props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(m.message.message_id.as_str().into())
                .with_content_type(m.message.content_type.as_str().into());
            if let Some(correlation) = &m.message.correlation_id {
                props = props.with_correlation_id(correlation.as_str().into());
            }
            // Permit requests, notices to agencies and answers to partners
            // have a queue that must take them: published mandatory, so
            // that one whose queue was deleted while the hub ran comes
            // back (and waits, the topology declared again on the next
            // link) instead of being confirmed and lost. Events go to a
            // topic exchange nobody need listen to.
            let mandatory = m.message.exchange == crate::hub::clearance::PERMITS_EXCHANGE
                || m.message.exchange == crate::hub::clearance::ACKS_EXCHANGE;
            let exchange = self.settings.name(&m.message.exchange);
            let target = format!("{exchange}/{key}");
            let confirm = in_time(
                || format!("a publish to {target}"),
                channel.basic_publish(
                    exchange,
                    key,
                    BasicPublishOptions {
                        mandatory,
                        ..BasicPublishOptions::default()
                    },
                    &m.message.payload,
                    props,
                ),
            )
            .await
            .map_err(|error| SendFailure { error, own: true })?;
            confirms.push((target, confirm));
        }
        Ok(())
    }
}

/// A failed outbox publish, and whether it was the message's own publish
/// or confirm that failed (rather than the connection, the channel or the
/// topology declared on the way).
#[derive(Debug)]
struct SendFailure {
    error: AmqpError,
    own: bool,
}

/// What a failed publish means for the outbox: a negative confirm declines
/// the message at its destination; the broker closing the channel over the
/// message's own publish with a soft AMQP error (an exchange that does not
/// exist, a message over the size limit) rejects the message itself;
/// anything else (a dead connection, a broker restarting, a timeout, a
/// failed declaration) is the broker being away, no message's fault.
fn relay_error(failure: SendFailure) -> crate::hub::outbox::RelayError {
    use crate::hub::outbox::RelayError;
    match &failure.error {
        AmqpError::Nacked(_) | AmqpError::QueueRefused(_) | AmqpError::Unroutable(_) => {
            RelayError::Refused(failure.error.to_string())
        }
        AmqpError::Broker(b) if failure.own && b.is_amqp_soft_error() => {
            RelayError::Rejected(failure.error.to_string())
        }
        _ => RelayError::Publish(failure.error.to_string()),
    }
}

impl crate::hub::outbox::Publish for OutboxPublisher {
    fn broker(&self) -> Option<&str> {
        Some(&self.settings.prefix)
    }

    fn ready<'a>(&'a self) -> crate::hub::outbox::Ready<'a> {
        Box::pin(async move {
            OutboxPublisher::ready(self)
                .await
                .map_err(|e| crate::hub::outbox::RelayError::Publish(e.to_string()))
        })
    }

    fn publish<'a>(
        &'a self,
        message: &'a crate::store::PendingMessage,
    ) -> crate::hub::outbox::Sent<'a> {
        Box::pin(async move { self.send(message).await.map_err(relay_error) })
    }

    fn publish_all<'a>(
        &'a self,
        messages: &'a [crate::store::PendingMessage],
    ) -> crate::hub::outbox::Published<'a> {
        Box::pin(async move {
            self.send_all(messages)
                .await
                .into_iter()
                .map(|r| r.map_err(relay_error))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker operation that never completes (a blocked connection) ends
    /// as a retryable error instead of holding the task.
    #[tokio::test]
    async fn a_stalled_broker_operation_times_out() {
        let stalled = within(
            Duration::from_millis(20),
            || "a publish to x".into(),
            std::future::pending::<Result<(), lapin::Error>>(),
        )
        .await;
        match stalled {
            Err(e @ AmqpError::Stalled(_)) => {
                assert!(e.is_retryable());
                assert!(e.to_string().contains("a publish to x"), "{e}");
            }
            other => panic!("not stalled: {other:?}"),
        }
        let done = within(Duration::from_millis(20), || "x".into(), async {
            Ok::<_, lapin::Error>(7)
        })
        .await;
        assert!(matches!(done, Ok(7)));
    }
}
