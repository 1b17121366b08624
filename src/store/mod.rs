//! Durable storage: partners, interchanges with their raw bytes, the
//! append-only event trail and refused submissions, in SQLite (the embedded
//! default) or PostgreSQL, with the same schema and the same queries.
//!
//! Queries are written once with PostgreSQL's `$n` placeholders; for SQLite
//! they are rewritten to its equivalent `?n` form.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::timestamp::Timestamp;

mod audit;
mod clearance;
mod outbox;
pub use audit::*;
pub use clearance::*;
pub use outbox::*;

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A storage failure. `retryable` says whether trying again can help
/// (connection loss, busy database) or not (constraint, bad URL).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL's scheme is neither (the URL is named without user,
    /// password or options: see [`store_target`]).
    #[error("store URL {0:?} is neither sqlite: nor postgres:")]
    UnsupportedUrl(String),
    /// The URL does not parse (sqlx's reason, which does not quote it; the
    /// URL is named as [`store_target`] gives it).
    #[error("store URL {target} does not parse: {reason}")]
    BadUrl { target: String, reason: String },
    #[error("{what} already exists")]
    Conflict { what: String },
    /// What the transaction was computed from changed before it committed
    /// (an amendment whose declaration an agency decision moved meanwhile);
    /// computing it again from the new state may succeed.
    #[error("{what}")]
    StateChanged { what: String },
    #[error("database error: {source}")]
    Database {
        #[source]
        source: sqlx::Error,
        retryable: bool,
    },
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// An administrative command opened a store an upgrade behind this
    /// binary: it does not upgrade it (instances of the older binary may
    /// still run on it).
    #[error(
        "the store is at schema version {at} and this binary expects {expected}; an administrative \
         command does not upgrade it: stop every instance, then start `tradehub serve` of this \
         version, which upgrades it (docs/OPERATIONS.md, upgrades)"
    )]
    Behind { at: i64, expected: i64 },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    /// The database could not be reached when the store was opened.
    #[error("cannot connect to the store at {target}: {source}")]
    Unreachable {
        /// Where it was looked for: host, port and database (or the SQLite
        /// file), without user, password or options.
        target: String,
        #[source]
        source: sqlx::Error,
        /// As for [`StoreError::Database`]: a database restarting or not
        /// accepting connections for now may be reached later.
        retryable: bool,
    },
    /// The group committer is gone (the store is shutting down).
    #[error("the store's committer has stopped")]
    CommitterStopped,
    /// A relay asked to claim outbox rows for another broker than the one
    /// recorded on the store (see [`Store::claim_outbox`]).
    #[error(
        "the store's outbox is published to RabbitMQ under the AMQP prefix {recorded:?}, and this \
         instance's relay publishes {}: it claims nothing, and the instances of that broker \
         publish its rows (run every instance with the same --amqp-url and --amqp-prefix)",
        ours.as_deref().map_or_else(|| "in process, to no broker".to_owned(), |p| format!("under {p:?}"))
    )]
    OutboxBroker {
        recorded: String,
        ours: Option<String>,
    },
}

impl StoreError {
    /// True when the same operation may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Database {
                retryable: true,
                ..
            } | StoreError::Unreachable {
                retryable: true,
                ..
            } | StoreError::CommitterStopped
                | StoreError::StateChanged { .. }
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(source: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &source
            && db.is_unique_violation()
        {
            return StoreError::Conflict {
                what: db.message().to_owned(),
            };
        }
        let retryable = matches!(
            source,
            sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
        ) || matches!(&source, sqlx::Error::Database(db)
        if db.message().contains("database is locked")
            || session_ended(db.as_ref())
            || db.code().as_deref().is_some_and(|code| {
                transient_sqlstate(code) || transient_sqlite(code)
            }));
        StoreError::Database { source, retryable }
    }
}

/// A PostgreSQL error of severity FATAL or PANIC ends the session, not the
/// statement: the server refused or dropped the connection (a database
/// that does not accept connections, a changed password, the server
/// shutting down). Whatever the SQLSTATE, the data being written is not at
/// fault, so it is worth trying again once the server takes connections.
fn session_ended(db: &dyn sqlx::error::DatabaseError) -> bool {
    db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some_and(|pg| {
            matches!(
                pg.severity(),
                sqlx::postgres::PgSeverity::Fatal | sqlx::postgres::PgSeverity::Panic
            )
        })
}

/// SQLite result codes (numeric, extended codes carry the primary one in
/// their low byte) that say nothing about the statement: busy, locked, an
/// I/O error, a full disk. A full disk is an operator's matter that passes
/// once space is freed; until then deliveries wait rather than being
/// refused for good.
/// (PostgreSQL's SQLSTATEs have five characters, SQLite's codes at most
/// four digits.)
fn transient_sqlite(code: &str) -> bool {
    code.len() <= 4
        && code
            .parse::<u32>()
            .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10 | 13))
}

/// PostgreSQL errors that say nothing about the statement itself, only
/// about the server or the moment (SQLSTATE, PostgreSQL appendix A): the
/// same statement may succeed when tried again.
fn transient_sqlstate(code: &str) -> bool {
    matches!(
        code,
        // Serialization failure, deadlock.
        "40001" | "40P01"
        // Read-only transaction (a standby after a failover), lock not
        // available (lock_timeout), statement timeout / cancel.
        | "25006" | "55P03" | "57014"
    ) || ["08", "53", "57"].iter().any(|class| {
        // Connection exceptions, insufficient resources (disk full, out of
        // memory, too many connections), operator intervention (admin or
        // crash shutdown, cannot connect now).
        code.starts_with(class) && code.len() == 5
    })
}

/// A trading partner allowed to submit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Partner {
    pub id: String,
    pub name: String,
    /// The agency this account acts for (its permit inbox and decisions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// Set while an operator has the partner suspended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended: Option<Suspension>,
}

/// Why and since when a partner is suspended (`tradehub partner suspend`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Suspension {
    /// When the suspension was recorded (RFC 3339, UTC).
    pub since: String,
    pub reason: String,
}

impl Partner {
    /// What a refusal of this partner's submission or answer says while it
    /// is suspended.
    pub fn suspension_detail(&self) -> Option<String> {
        self.suspended.as_ref().map(|s| {
            format!(
                "partner {} is suspended since {}: {}; nothing it sends is taken until an operator reinstates it",
                self.id, s.since, s.reason
            )
        })
    }
}

/// What intake stores for one received interchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInterchange {
    pub id: String,
    pub partner_id: String,
    pub sender: String,
    pub control_reference: Option<String>,
    pub sha256: String,
    pub format: String,
    pub status: String,
    pub received_at: Timestamp,
    pub message_count: i64,
    pub error_count: i64,
    pub issues_json: String,
    pub acknowledgement: String,
    pub raw: Vec<u8>,
}

impl NewInterchange {
    /// The stored interchange this becomes once committed (without the raw
    /// bytes, which it gives up).
    pub fn into_stored(self) -> StoredInterchange {
        StoredInterchange {
            size_bytes: self.raw.len() as i64,
            received_at: self.received_at.to_string(),
            id: self.id,
            partner_id: self.partner_id,
            sender: self.sender,
            control_reference: self.control_reference,
            sha256: self.sha256,
            format: self.format,
            status: self.status,
            message_count: self.message_count,
            error_count: self.error_count,
            issues_json: self.issues_json,
            acknowledgement: self.acknowledgement,
        }
    }
}

/// A message to publish once the transaction that writes it commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Exchange name without any deployment prefix, e.g. `tradehub.events`.
    pub exchange: String,
    pub routing_key: String,
    /// Unique; consumers use it to drop redeliveries (publishing is at least once).
    pub message_id: String,
    pub content_type: String,
    pub payload: Vec<u8>,
    /// The AMQP `correlation_id` it is published with: an answer to a
    /// partner's AMQP delivery carries that delivery's `message_id`.
    pub correlation_id: Option<String>,
}

/// The conditions of an outbox message due for publishing (`$2`: now, in
/// Unix seconds): not published, not parked, not waiting for a retry, and
/// not behind an earlier message to the same destination that waits for
/// one (so that the order per destination holds while the broker refuses
/// a message). A macro, so that [`PENDING_OUTBOX`] and [`PENDING_WHERE`]
/// are one text.
macro_rules! pending_where {
    () => {
        "WHERE o.published_at IS NULL AND o.parked_at IS NULL \
         AND (o.retry_at IS NULL OR o.retry_at <= $2) \
         AND NOT EXISTS (SELECT 1 FROM outbox w WHERE w.published_at IS NULL \
             AND w.retry_at IS NOT NULL AND w.retry_at > $2 AND w.parked_at IS NULL \
             AND w.exchange = o.exchange AND w.routing_key = o.routing_key AND w.seq < o.seq)"
    };
}

/// The query of the oldest outbox messages due for publishing (`$1`: how
/// many; `$2`: now).
const PENDING_OUTBOX: &str = concat!(
    "SELECT o.seq, o.exchange, o.routing_key, o.message_id, o.content_type, \
     o.payload, o.correlation_id, o.created_at, CAST(o.attempts AS BIGINT) AS attempts FROM outbox o ",
    pending_where!(),
    " ORDER BY o.seq LIMIT $1"
);

/// [`PENDING_OUTBOX`]'s conditions, for the rows a claim must not
/// overtake.
const PENDING_WHERE: &str = pending_where!();

fn pending_row(r: &AnyRow) -> Result<PendingMessage, StoreError> {
    Ok(PendingMessage {
        seq: r.try_get("seq")?,
        created_at: r.try_get("created_at")?,
        attempts: r.try_get("attempts")?,
        message: OutboxMessage {
            exchange: r.try_get("exchange")?,
            routing_key: r.try_get("routing_key")?,
            message_id: r.try_get("message_id")?,
            content_type: r.try_get("content_type")?,
            payload: r.try_get("payload")?,
            correlation_id: r.try_get("correlation_id")?,
        },
    })
}

/// Where a store URL points, for messages: scheme, host, port and path
/// (the database, or the SQLite file), without the user, password or
/// options it may carry.
pub fn store_target(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    // The user information ends at the last `@`: a password written
    // without escapes may hold `/`, `?` or `@` itself.
    let rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
    let rest = rest.split('?').next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = if host.is_empty() && scheme.starts_with("postgres") {
        "localhost"
    } else {
        host
    };
    let has_port = if host.starts_with('[') {
        host.contains("]:")
    } else {
        host.contains(':')
    };
    let port = if scheme.starts_with("postgres") && !has_port {
        ":5432"
    } else {
        ""
    };
    format!("{scheme}://{host}{port}{path}")
}

/// Why a store could not be opened. The pool says only that it timed out
/// waiting for a connection; one connection tried directly (for at most
/// 5 s) names the cause: refused, no such host, a password refused.
async fn connect_cause(url: &str, pooled: sqlx::Error) -> sqlx::Error {
    use sqlx::Connection;
    if !matches!(pooled, sqlx::Error::PoolTimedOut) {
        return pooled;
    }
    match tokio::time::timeout(Duration::from_secs(5), sqlx::AnyConnection::connect(url)).await {
        Ok(Err(direct)) => direct,
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            pooled
        }
        Err(_) => sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer within 10 s, nor to a connection tried alone within 5 s",
        )),
    }
}

/// How often a relay publishing to the recorded broker marks it as seen.
const BROKER_SEEN_EVERY_SECS: i64 = 30;

/// `tradehub outbox broker --forget` refuses while the recorded broker was
/// seen this recently (a relay claims at least every second while it runs,
/// and marks the record every 30 seconds).
pub const BROKER_LIVE_SECS: i64 = 90;

/// What a relay's claim writes to `outbox_broker` before it claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BrokerWrite {
    /// Nothing recorded: the relay records its prefix (the record was
    /// forgotten while it ran, or it started before the table existed).
    Record,
    /// Its own prefix, last seen long ago: seen now.
    Touch,
}

/// What the store records of its broker: the prefix, when a relay with
/// it last claimed, and the database's time when it was read. Both times
/// are the database's: the hosts of the relays and of the operator's
/// command may keep different time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BrokerRecord {
    prefix: String,
    seen: Option<Timestamp>,
    now: Timestamp,
}

impl BrokerRecord {
    /// Seconds since a relay with the broker last claimed, if one has.
    fn seen_secs_ago(&self) -> Option<i64> {
        self.seen.map(|seen| (self.now.unix() - seen.unix()).max(0))
    }
}

/// Whether a relay publishing under `broker` (`None`: in process) may
/// claim, given what the store records; and what it writes first. Fails
/// with [`StoreError::OutboxBroker`] when the store records a broker other
/// than `broker`.
fn broker_action(
    recorded: Option<BrokerRecord>,
    broker: Option<&str>,
) -> Result<Option<BrokerWrite>, StoreError> {
    match (recorded, broker) {
        (Some(record), ours) if Some(record.prefix.as_str()) != ours => {
            Err(StoreError::OutboxBroker {
                recorded: record.prefix,
                ours: ours.map(str::to_owned),
            })
        }
        (None, Some(_)) => Ok(Some(BrokerWrite::Record)),
        (Some(record), Some(_))
            if record
                .seen_secs_ago()
                .is_none_or(|ago| ago >= BROKER_SEEN_EVERY_SECS) =>
        {
            Ok(Some(BrokerWrite::Touch))
        }
        _ => Ok(None),
    }
}

/// What [`Store::forget_outbox_broker`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forget {
    NoneRecorded,
    Forgotten(String),
    /// Not forgotten: a relay publishing under `prefix` claimed
    /// `seen_secs_ago` seconds ago.
    InUse {
        prefix: String,
        seen_secs_ago: i64,
    },
}

/// Outbox messages one relay has taken (see [`Store::claim_outbox`]).
#[derive(Debug)]
pub struct OutboxClaim {
    /// PostgreSQL: the transaction holding the rows' locks.
    tx: Option<sqlx::Transaction<'static, sqlx::Any>>,
    pub messages: Vec<PendingMessage>,
}

/// An outbox row not yet published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMessage {
    pub seq: i64,
    pub message: OutboxMessage,
    pub created_at: String,
    /// Failed publishes so far (see [`Store::settle_claim`]).
    pub attempts: i64,
}

/// A stored interchange (without its raw bytes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredInterchange {
    pub id: String,
    pub partner_id: String,
    pub sender: String,
    pub control_reference: Option<String>,
    pub sha256: String,
    pub format: String,
    pub status: String,
    pub received_at: String,
    pub size_bytes: i64,
    pub message_count: i64,
    pub error_count: i64,
    #[serde(skip)]
    pub issues_json: String,
    pub acknowledgement: String,
}

/// One row of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub detail: String,
}

/// A submission that was refused before it became an interchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub partner_id: Option<String>,
    pub at: Timestamp,
    pub sha256: String,
    pub size_bytes: i64,
    pub code: String,
    pub detail: String,
}

/// A refusal as recorded (see [`Store::refusal_list`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredRefusal {
    pub seq: i64,
    /// The sender, when it was known (an unknown token: none).
    pub partner_id: Option<String>,
    pub at: String,
    /// SHA-256 of what was received; empty when it was not read.
    pub sha256: String,
    /// Bytes received or declared; -1 when not known.
    pub size_bytes: i64,
    pub code: String,
    pub detail: String,
}

/// What an operator changed, as the store's triggers recorded it (see
/// [`Store::operator_log`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OperatorAction {
    pub seq: i64,
    pub at: String,
    /// `partner_added`, `token_issued`, `role_changed`,
    /// `partner_suspended`, `partner_reinstated`, `trader_added`,
    /// `outbox_retried` or `broker_forgotten`.
    pub action: String,
    /// The partner, or the outbox message (`outbox SEQ`), or `outbox`.
    pub subject: String,
    pub detail: String,
    /// The database role that made the change (PostgreSQL only).
    pub by_role: Option<String>,
    /// Who made it, as the operator command that made it named them
    /// (`TRADEHUB_OPERATOR`, else the login name that ran it); none for a
    /// change made otherwise (SQL by hand) or before the log kept names.
    pub operator: Option<String>,
}

/// How often an interchange was repeated, of one kind (see
/// [`Store::repeat_counts`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RepeatCount {
    /// `duplicate_received` (the same bytes again) or
    /// `duplicate_reference_refused` (other bytes under its reference).
    pub kind: String,
    pub count: i64,
    pub first_at: String,
    pub last_at: String,
}

/// The database behind the hub.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer: write transactions take this lock first, so
    /// that they queue in order instead of retrying on a busy database.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// The group committer new interchanges go through (`None` in the
    /// committer's own copy).
    committer: Option<mpsc::Sender<InsertJob>>,
    /// What the group committers did, for `/metrics`.
    group_commits: Arc<GroupCounters>,
    /// Who an operator's changes through this handle are made by, for the
    /// operator log (see [`with_operator`](Self::with_operator)).
    operator: Option<Arc<str>>,
}

/// Counters of the group committers.
#[derive(Debug, Default)]
struct GroupCounters {
    groups: std::sync::atomic::AtomicU64,
    grouped: std::sync::atomic::AtomicU64,
    fallbacks: std::sync::atomic::AtomicU64,
}

/// What the group committers did since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupCommits {
    /// Transactions that wrote more than one new interchange.
    pub groups: u64,
    /// New interchanges written in those transactions.
    pub grouped: u64,
    /// Groups that failed as a whole and were written one by one.
    pub fallbacks: u64,
}

/// One new interchange on its way to the group committer.
#[derive(Debug)]
struct InsertJob {
    new: NewInterchange,
    events: Vec<(String, String)>,
    outbox: Vec<OutboxMessage>,
    declarations: Vec<NewDeclaration>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// Longest a PostgreSQL statement may run (`statement_timeout`).
pub const PG_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest a PostgreSQL transaction may sit idle
/// (`idle_in_transaction_session_timeout`): longer than the outbox relay
/// holds a claim while the broker confirms a batch.
pub const PG_IDLE_IN_TRANSACTION: Duration = Duration::from_secs(600);

/// The `SET`s each PostgreSQL session of the store starts with: the
/// statement and idle-transaction limits, each unless `url` sets its own.
fn pg_session_settings(url: &str) -> Vec<String> {
    [
        ("statement_timeout", PG_STATEMENT_TIMEOUT),
        (
            "idle_in_transaction_session_timeout",
            PG_IDLE_IN_TRANSACTION,
        ),
    ]
    .into_iter()
    .filter(|(name, _)| !url.contains(name))
    .map(|(name, limit)| format!("SET {name} = '{}s'", limit.as_secs()))
    .collect()
}

/// The most interchanges one group commit writes.
const GROUP_COMMIT_MAX: usize = 64;

/// How much later than it was asked for a permit request must be sent for
/// its agency's time to start again from the sending.
const LATE_REQUEST_SECS: i64 = 10;

/// The declaration event of a permit request sent late, its due time moved.
pub const PERMIT_REQUEST_SENT_LATE: &str = "permit_request_sent_late";

const INTERCHANGE_COLUMNS: &str = "id, partner_id, sender, control_reference, sha256, format, status, received_at, \
     size_bytes, message_count, error_count, issues_json, acknowledgement";

impl Store {
    /// Opens (creating an SQLite file if needed) and migrates the store.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, true).await
    }

    /// Opens the store for an administrative command: a new store is
    /// created (the first `partner add` sets up an installation), one of
    /// this binary's version is opened, and one an upgrade behind is
    /// refused ([`StoreError::Behind`]) rather than upgraded under the
    /// instances that may still run on it.
    pub async fn open_for_admin(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, false).await
    }

    async fn open_with(url: &str, upgrade: bool) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(store_target(url)));
        };
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let url = if backend == Backend::Sqlite {
            options = options.max_connections(4).after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL with synchronous=FULL: a commit is on disk before
                    // it returns; readers do not block the writer.
                    sqlx::query("PRAGMA journal_mode=WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA synchronous=FULL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout=5000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys=ON")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
            if url.contains('?') {
                url.to_owned()
            } else {
                format!("{url}?mode=rwc")
            }
        } else {
            // A statement that runs away (a lock never released, a query
            // gone wrong) ends with an error instead of holding a
            // connection for good, and so does a transaction left open by
            // a client that stopped talking. A URL that sets either (its
            // `options=-c …`) keeps its own.
            let settings = pg_session_settings(url);
            options = options.max_connections(16).after_connect(move |conn, _| {
                let settings = settings.clone();
                Box::pin(async move {
                    for set in settings {
                        sqlx::query(&set).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            });
            url.to_owned()
        };
        let pool = match options.connect(&url).await {
            Ok(pool) => pool,
            Err(sqlx::Error::Configuration(reason)) => {
                return Err(StoreError::BadUrl {
                    target: store_target(&url),
                    reason: reason.to_string(),
                });
            }
            Err(e) => {
                return Err(match connect_cause(&url, e).await.into() {
                    StoreError::Database { source, retryable } => StoreError::Unreachable {
                        target: store_target(&url),
                        source,
                        retryable,
                    },
                    other => other,
                });
            }
        };
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        if !upgrade {
            // No migration table: a new store, created below.
            let applied: Vec<i64> =
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(&pool)
                    .await
                    .unwrap_or_default();
            let expected = migrator.iter().map(|m| m.version).max().unwrap_or(0);
            if !applied.is_empty() && migrator.iter().any(|m| !applied.contains(&m.version)) {
                pool.close().await;
                return Err(StoreError::Behind {
                    at: applied.iter().copied().max().unwrap_or(0),
                    expected,
                });
            }
        }
        match backend {
            Backend::Sqlite => migrator.run(&pool).await?,
            Backend::Postgres => {
                // A migration may take longer than a statement may: it runs
                // on a connection without the limit.
                let mut conn = pool.acquire().await?;
                sqlx::query("SET statement_timeout = 0")
                    .execute(&mut *conn)
                    .await?;
                let migrated = migrator.run(&mut *conn).await;
                // The session's own limits again (a URL's, or ours).
                let restored = async {
                    sqlx::query("RESET statement_timeout")
                        .execute(&mut *conn)
                        .await?;
                    for set in pg_session_settings(&url) {
                        sqlx::query(&set).execute(&mut *conn).await?;
                    }
                    Ok::<(), sqlx::Error>(())
                }
                .await;
                migrated?;
                restored?;
            }
        }
        let own = Store {
            pool,
            backend,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            committer: None,
            group_commits: Arc::default(),
            operator: None,
        };
        // Group commit: the interchanges that arrive while one transaction
        // commits are written together in the next (one fsync for all).
        // SQLite writes one transaction at a time anyway; PostgreSQL gets a
        // few committers working side by side.
        let (sender, receiver) = mpsc::channel(4 * GROUP_COMMIT_MAX);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let committers = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        };
        for _ in 0..committers {
            let store = own.clone();
            let receiver = receiver.clone();
            tokio::spawn(async move { store.commit_groups(receiver).await });
        }
        Ok(Store {
            committer: Some(sender),
            ..own
        })
    }

    /// The committer's loop: takes the interchanges waiting (at most
    /// [`GROUP_COMMIT_MAX`]) and writes them in one transaction, until every
    /// store handle that could send more is gone.
    async fn commit_groups(&self, receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<InsertJob>>>) {
        loop {
            let mut jobs = Vec::new();
            {
                let mut receiver = receiver.lock().await;
                let Some(first) = receiver.recv().await else {
                    return;
                };
                jobs.push(first);
                while jobs.len() < GROUP_COMMIT_MAX {
                    match receiver.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
            }
            let results = self.commit_group(&jobs).await;
            for (job, result) in jobs.into_iter().zip(results) {
                // A submitter that gave up waiting no longer listens.
                let _ = job.reply.send(result);
            }
        }
    }

    /// Writes `jobs` in one transaction, each inside its own savepoint when
    /// there are several, so that one unique-constraint conflict (a
    /// duplicate) or changed state leaves the others in. Any other failure
    /// fails them all.
    /// Answers come only after the commit.
    async fn commit_group(&self, jobs: &[InsertJob]) -> Vec<Result<(), StoreError>> {
        let mut results: Vec<Result<(), StoreError>> = Vec::with_capacity(jobs.len());
        let outcome: Result<(), StoreError> = async {
            let _writing = self.write_lock().await;
            let mut tx = self.pool.begin().await?;
            let grouped = jobs.len() > 1;
            for job in jobs {
                if grouped {
                    sqlx::query("SAVEPOINT interchange")
                        .execute(&mut *tx)
                        .await?;
                }
                match self.write_interchange(&mut tx, job).await {
                    Ok(()) => {
                        if grouped {
                            sqlx::query("RELEASE SAVEPOINT interchange")
                                .execute(&mut *tx)
                                .await?;
                        }
                        results.push(Ok(()));
                    }
                    Err(
                        conflict @ (StoreError::Conflict { .. } | StoreError::StateChanged { .. }),
                    ) if grouped => {
                        sqlx::query("ROLLBACK TO SAVEPOINT interchange")
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query("RELEASE SAVEPOINT interchange")
                            .execute(&mut *tx)
                            .await?;
                        results.push(Err(conflict));
                    }
                    Err(e) => return Err(e),
                }
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        let count = |counter: &std::sync::atomic::AtomicU64, n: usize| {
            counter.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        };
        match outcome {
            Ok(()) => {
                // Written: those not rolled back to their savepoint.
                let written = results.iter().filter(|r| r.is_ok()).count();
                if written > 1 {
                    count(&self.group_commits.groups, 1);
                    count(&self.group_commits.grouped, written);
                }
                results
            }
            Err(e) if jobs.len() == 1 => vec![Err(e)],
            Err(e) => {
                // Nothing of the group was written. Two groups can deadlock
                // where single interchanges cannot (each waiting for a
                // unique key the other holds, as when copies of the same
                // two interchanges land in both): each is tried alone.
                tracing::warn!(error = %e, size = jobs.len(), "group commit failed; committing one by one");
                count(&self.group_commits.fallbacks, 1);
                let mut results = Vec::with_capacity(jobs.len());
                for job in jobs {
                    let alone = Box::pin(self.commit_group(std::slice::from_ref(job))).await;
                    results.push(alone.into_iter().next().unwrap_or(Ok(())));
                }
                results
            }
        }
    }

    /// This handle, making the changes the operator log records (partners,
    /// tokens, roles, suspensions, trader identifiers, outbox retries, the
    /// broker record) in the name of `operator`, which the log keeps beside
    /// what changed. An empty name names no one.
    pub fn with_operator(mut self, operator: &str) -> Store {
        self.operator = (!operator.trim().is_empty()).then(|| Arc::from(operator.trim()));
        self
    }

    /// Begins a transaction for an operator's change: one that names the
    /// operator, if this handle has one, to the operator log's triggers
    /// (PostgreSQL: the transaction's `tradehub.operator` setting; SQLite,
    /// which has none: the row of `operator_actor`, which
    /// [`commit_operator`](Self::commit_operator) deletes again, so that
    /// no other transaction sees it).
    async fn begin_operator(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(operator) = &self.operator {
            let sql = match self.backend {
                Backend::Postgres => "SELECT set_config('tradehub.operator', $1, true)",
                Backend::Sqlite => "INSERT INTO operator_actor (id, name) VALUES (1, $1)",
            };
            sqlx::query(&self.sql(sql))
                .bind(operator.to_string())
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Commits an operator's change begun with
    /// [`begin_operator`](Self::begin_operator).
    async fn commit_operator(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<(), StoreError> {
        if self.operator.is_some() && self.backend == Backend::Sqlite {
            sqlx::query("DELETE FROM operator_actor")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Runs one statement of an operator's change in a transaction that
    /// names the operator (see [`begin_operator`](Self::begin_operator)).
    async fn execute_as_operator<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<sqlx::any::AnyQueryResult, StoreError> {
        let mut tx = self.begin_operator().await?;
        let done = query.execute(&mut *tx).await?;
        self.commit_operator(tx).await?;
        Ok(done)
    }

    /// Held by a write transaction on SQLite (see `writer`).
    async fn write_lock(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// The SQLite URL of the embedded store in `data_dir`, creating the directory.
    pub fn embedded_url(data_dir: &Path) -> Result<String, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        Ok(format!(
            "sqlite://{}",
            data_dir.join("tradehub.db").display()
        ))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// What the group committers did since the store was opened.
    pub fn group_commits(&self) -> GroupCommits {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        GroupCommits {
            groups: get(&self.group_commits.groups),
            grouped: get(&self.group_commits.grouped),
            fallbacks: get(&self.group_commits.fallbacks),
        }
    }

    fn sql(&self, query: &str) -> String {
        match self.backend {
            Backend::Postgres => query.to_owned(),
            Backend::Sqlite => query.replace('$', "?"),
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Checks that the database takes a write and commits it: the one row
    /// of `write_probe` is rewritten. A database may answer queries and
    /// still refuse every write (a read-only standby after a failover, a
    /// full disk, a lock held on the table); [`Store::ping`] does not see it.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        let _writing = self.write_lock().await;
        let sql = self.sql(
            "INSERT INTO write_probe (id, probed_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
        );
        sqlx::query(&sql)
            .bind(Timestamp::now().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Registers a partner with the hash of its API token.
    pub async fn add_partner(
        &self,
        id: &str,
        name: &str,
        token_hash: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let _writing = self.write_lock().await;
        let sql = self
            .sql("INSERT INTO partners (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)");
        let query = sqlx::query(&sql)
            .bind(id)
            .bind(name)
            .bind(token_hash)
            .bind(at.to_string());
        self.execute_as_operator(query).await.map_err(|e| match e {
            StoreError::Conflict { .. } => StoreError::Conflict {
                what: format!("partner {id}"),
            },
            other => other,
        })?;
        Ok(())
    }

    /// Replaces a partner's API token (its hash); false when there is no
    /// such partner. The old token stops working at once for this store,
    /// and within the hub's token cache time (30 s) for running hubs.
    pub async fn set_partner_token(&self, id: &str, token_hash: &str) -> Result<bool, StoreError> {
        let _writing = self.write_lock().await;
        let sql = self.sql("UPDATE partners SET token_hash = $1 WHERE id = $2");
        let query = sqlx::query(&sql).bind(token_hash).bind(id);
        let done = self.execute_as_operator(query).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Suspends a partner (`reason`: why, for the refusals it gets), or,
    /// `None`, reinstates it; false when there is no such partner. A
    /// suspension already recorded keeps its time and takes the new reason.
    pub async fn set_partner_suspension(
        &self,
        id: &str,
        reason: Option<&str>,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let _writing = self.write_lock().await;
        let done = match reason {
            Some(reason) => {
                let sql = self.sql(
                    "UPDATE partners SET suspended_at = COALESCE(suspended_at, $1), \
                     suspended_reason = $2 WHERE id = $3",
                );
                let query = sqlx::query(&sql).bind(at.to_string()).bind(reason).bind(id);
                self.execute_as_operator(query).await?
            }
            None => {
                let sql = self.sql(
                    "UPDATE partners SET suspended_at = NULL, suspended_reason = NULL WHERE id = $1",
                );
                self.execute_as_operator(sqlx::query(&sql).bind(id)).await?
            }
        };
        Ok(done.rows_affected() == 1)
    }

    /// Registers a trader identifier (e.g. an EORI number) the partner may
    /// submit WCO declarations for. Registering one again changes nothing.
    pub async fn add_trader_id(&self, partner_id: &str, trader_id: &str) -> Result<(), StoreError> {
        let _writing = self.write_lock().await;
        let sql = self.sql(
            "INSERT INTO partner_trader_ids (partner_id, trader_id) VALUES ($1, $2) \
             ON CONFLICT (partner_id, trader_id) DO NOTHING",
        );
        let query = sqlx::query(&sql).bind(partner_id).bind(trader_id);
        self.execute_as_operator(query).await?;
        Ok(())
    }

    /// The trader identifiers registered for a partner, sorted.
    pub async fn trader_ids(&self, partner_id: &str) -> Result<Vec<String>, StoreError> {
        let sql = self.sql(
            "SELECT trader_id FROM partner_trader_ids WHERE partner_id = $1 ORDER BY trader_id",
        );
        let rows = sqlx::query(&sql)
            .bind(partner_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                row.try_get::<String, _>("trader_id")
                    .map_err(StoreError::from)
            })
            .collect()
    }

    /// Every registered partner, by id.
    pub async fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, agency, suspended_at, suspended_reason FROM partners ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(partner_row).collect()
    }

    /// The partner with this id.
    pub async fn partner(&self, id: &str) -> Result<Option<Partner>, StoreError> {
        self.partner_where("id", id).await
    }

    /// The partner whose token hashes to `token_hash`.
    pub async fn partner_by_token(&self, token_hash: &str) -> Result<Option<Partner>, StoreError> {
        self.partner_where("token_hash", token_hash).await
    }

    async fn partner_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<Partner>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT id, name, agency, suspended_at, suspended_reason FROM partners WHERE {column} = $1"
        ));
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(partner_row).transpose()
    }

    /// Stores an interchange and its first events in one transaction.
    /// A unique violation (same sender and control reference, or same bytes
    /// from the same partner) is [`StoreError::Conflict`].
    pub async fn insert_interchange(
        &self,
        new: &NewInterchange,
        events: &[(&str, String)],
        outbox: &[OutboxMessage],
        declarations: &[NewDeclaration],
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = InsertJob {
            new: new.clone(),
            events: events
                .iter()
                .map(|(kind, detail)| ((*kind).to_owned(), detail.clone()))
                .collect(),
            outbox: outbox.to_vec(),
            declarations: declarations.to_vec(),
            reply,
        };
        match &self.committer {
            Some(committer) => {
                committer
                    .send(job)
                    .await
                    .map_err(|_| StoreError::CommitterStopped)?;
                answer.await.map_err(|_| StoreError::CommitterStopped)?
            }
            None => self
                .commit_group(std::slice::from_ref(&job))
                .await
                .pop()
                .unwrap_or(Ok(())),
        }
    }

    /// Writes one interchange with its events, outbox rows and
    /// declarations inside `tx`.
    async fn write_interchange(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        job: &InsertJob,
    ) -> Result<(), StoreError> {
        let (new, events, outbox) = (&job.new, &job.events, &job.outbox);
        let sql = self.sql(
            "INSERT INTO interchanges (id, partner_id, sender, control_reference, sha256, format, status, \
             received_at, size_bytes, message_count, error_count, issues_json, acknowledgement, raw) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        );
        sqlx::query(&sql)
            .bind(&new.id)
            .bind(&new.partner_id)
            .bind(&new.sender)
            .bind(new.control_reference.clone())
            .bind(&new.sha256)
            .bind(&new.format)
            .bind(&new.status)
            .bind(new.received_at.to_string())
            .bind(new.raw.len() as i64)
            .bind(new.message_count)
            .bind(new.error_count)
            .bind(&new.issues_json)
            .bind(&new.acknowledgement)
            .bind(new.raw.clone())
            .execute(&mut **tx)
            .await?;
        if !events.is_empty() {
            // One statement for all first events.
            let sql = self.sql(&format!(
                "INSERT INTO events (interchange_id, at, kind, detail) VALUES {}",
                value_rows(events.len(), 4)
            ));
            let at = new.received_at.to_string();
            let mut query = sqlx::query(&sql);
            for (kind, detail) in events {
                query = query
                    .bind(&new.id)
                    .bind(at.clone())
                    .bind(kind.as_str())
                    .bind(detail);
            }
            query.execute(&mut **tx).await?;
        }
        self.write_outbox(tx, outbox, &new.received_at.to_string())
            .await?;
        for declaration in &job.declarations {
            self.insert_declaration(tx, new, declaration).await?;
        }
        Ok(())
    }

    /// The oldest unpublished outbox messages, at most `limit`.
    pub async fn pending_outbox(&self, limit: i64) -> Result<Vec<PendingMessage>, StoreError> {
        let sql = self.sql(PENDING_OUTBOX);
        let rows = sqlx::query(&sql)
            .bind(limit)
            .bind(Timestamp::now().unix())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(pending_row).collect()
    }

    /// Takes the oldest unpublished outbox messages, at most `limit`, for
    /// one relay until [`mark_claimed`](Self::mark_claimed) (or until the
    /// claim is dropped, which gives them back). On PostgreSQL the rows
    /// stay locked (`FOR UPDATE SKIP LOCKED`) in the claim's transaction,
    /// so the relays of several hub instances take different rows instead
    /// of publishing the same ones; SQLite has one writer and one relay.
    ///
    /// `broker` is the AMQP prefix the relay publishes under (`None`: in
    /// process). When the store records another broker (see
    /// [`Store::record_outbox_broker`]), nothing is claimed
    /// ([`StoreError::OutboxBroker`]): that relay would mark rows published
    /// where the consumers of the other instances never see them. Serve
    /// refuses to start such an instance; this holds for one started before
    /// the first instance with a broker recorded it.
    pub async fn claim_outbox(
        &self,
        limit: i64,
        broker: Option<&str>,
    ) -> Result<OutboxClaim, StoreError> {
        // Before the claim's transaction (which lasts while its batch is
        // published), so that it does not hold a second connection.
        self.keep_outbox_broker(broker).await?;
        if self.backend == Backend::Sqlite {
            return Ok(OutboxClaim {
                tx: None,
                messages: self.pending_outbox(limit).await?,
            });
        }
        let mut tx = self.pool.begin().await?;
        let now = Timestamp::now().unix();
        let sql = format!("{PENDING_OUTBOX} FOR UPDATE SKIP LOCKED");
        let rows = sqlx::query(&sql)
            .bind(limit)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        let mut messages: Vec<PendingMessage> =
            rows.iter().map(pending_row).collect::<Result<_, _>>()?;
        // Order per destination across relays: a row skipped because
        // another relay holds it (or one committed after this claim's
        // rows, with a lower number) is still pending; this claim's later
        // rows to its exchange and routing key wait until it is
        // published, so that, say, a "cleared" answer never overtakes the
        // "awaiting permits" another instance is still sending. They stay
        // locked until this claim ends, then are taken by the next.
        if let Some(last) = messages.last().map(|m| m.seq) {
            let sql = format!(
                "SELECT o.seq, o.exchange, o.routing_key FROM outbox o {PENDING_WHERE} AND o.seq < $1"
            );
            let pending = sqlx::query(&sql)
                .bind(last)
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
            let ours: std::collections::HashSet<i64> = messages.iter().map(|m| m.seq).collect();
            let mut first_foreign: std::collections::HashMap<(String, String), i64> =
                std::collections::HashMap::new();
            for row in &pending {
                let seq: i64 = row.try_get("seq")?;
                if ours.contains(&seq) {
                    continue;
                }
                let destination = (row.try_get("exchange")?, row.try_get("routing_key")?);
                let first = first_foreign.entry(destination).or_insert(seq);
                *first = (*first).min(seq);
            }
            if !first_foreign.is_empty() {
                messages.retain(|m| {
                    let destination = (m.message.exchange.clone(), m.message.routing_key.clone());
                    first_foreign
                        .get(&destination)
                        .is_none_or(|first| m.seq < *first)
                });
            }
        }
        Ok(OutboxClaim {
            tx: Some(tx),
            messages,
        })
    }

    /// Marks a claim's messages as published and releases them.
    pub async fn mark_claimed(&self, claim: OutboxClaim, at: Timestamp) -> Result<(), StoreError> {
        let seqs: Vec<i64> = claim.messages.iter().map(|m| m.seq).collect();
        self.settle_claim(claim, &seqs, &[], at).await
    }

    /// Settles a claim: marks `published` as published and records each
    /// failure (one more attempt, its error, and either when to try again
    /// or that the message is parked); the claim's other messages stay
    /// pending. Releases the claim.
    pub async fn settle_claim(
        &self,
        claim: OutboxClaim,
        published: &[i64],
        failures: &[OutboxFailure],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        // The claim's own transaction (PostgreSQL), or a new one in the
        // writer's turn (SQLite).
        let _writing;
        let mut tx = match claim.tx {
            Some(tx) => tx,
            None => {
                _writing = self.write_lock().await;
                self.pool.begin().await?
            }
        };
        self.mark_published_on(&mut tx, published, at).await?;
        self.record_failures_on(&mut tx, failures, at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks outbox messages as published, 500 to a statement.
    async fn mark_published_on(
        &self,
        conn: &mut sqlx::AnyConnection,
        seqs: &[i64],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        for chunk in seqs.chunks(500) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            // Before they count as published: only a request sent now
            // moves its permit's time, once.
            self.start_permit_time_on(conn, chunk, &placeholders, at)
                .await?;
            // The answers among them are marked with their declaration,
            // where the record outlives the outbox row.
            let sql = self.sql(&format!(
                "UPDATE responses SET published_at = $1 WHERE published_at IS NULL \
                 AND message_id IN (SELECT message_id FROM outbox WHERE seq IN ({}) \
                 AND published_at IS NULL AND exchange = '{}')",
                placeholders.join(", "),
                crate::hub::clearance::ACKS_EXCHANGE
            ));
            let mut query = sqlx::query(&sql).bind(at.to_string());
            for seq in chunk {
                query = query.bind(*seq);
            }
            query.execute(&mut *conn).await?;
            let sql = self.sql(&format!(
                "UPDATE outbox SET published_at = $1 WHERE seq IN ({}) AND published_at IS NULL",
                placeholders.join(", ")
            ));
            let mut query = sqlx::query(&sql).bind(at.to_string());
            for seq in chunk {
                query = query.bind(*seq);
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// An agency's time to answer runs from when its request is sent: a
    /// pending permit whose request (outbox rows `seqs`, as `placeholders`
    /// from `$2`) is published at `at`, later than it was asked for (the
    /// broker was away, the relay behind), gets its due time moved on by
    /// as much, so that it keeps the whole answer time the hub grants.
    async fn start_permit_time_on(
        &self,
        conn: &mut sqlx::AnyConnection,
        seqs: &[i64],
        placeholders: &[String],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let sql = self.sql(&format!(
            "SELECT p.id, p.agency, p.requested_at, p.due_at, p.declaration_id, d.interchange_id \
             FROM permits p \
             JOIN outbox o ON o.message_id = p.id \
             JOIN declarations d ON d.id = p.declaration_id \
             WHERE p.status = 'pending' AND p.requested_at < $1 \
             AND o.published_at IS NULL AND o.seq IN ({})",
            placeholders.join(", ")
        ));
        // Late by more than a moment: seconds are whole, and a request
        // sent in the next second is on time.
        let late_since = at.plus_secs(-LATE_REQUEST_SECS);
        let mut query = sqlx::query(&sql).bind(late_since.to_string());
        for seq in seqs {
            query = query.bind(*seq);
        }
        let late = query.fetch_all(&mut *conn).await?;
        for row in late {
            let id: String = row.try_get("id")?;
            let requested: String = row.try_get("requested_at")?;
            let due: String = row.try_get("due_at")?;
            let (Some(requested), Some(due)) =
                (Timestamp::parse(&requested), Timestamp::parse(&due))
            else {
                continue;
            };
            let moved = at.plus_secs(due.unix() - requested.unix());
            if moved.unix() <= due.unix() {
                continue;
            }
            let sql =
                self.sql("UPDATE permits SET due_at = $1 WHERE id = $2 AND status = 'pending'");
            sqlx::query(&sql)
                .bind(moved.to_string())
                .bind(&id)
                .execute(&mut *conn)
                .await?;
            // On the declaration's trail: its awaiting_permits event gave
            // the first due time.
            let agency: String = row.try_get("agency")?;
            let declaration: String = row.try_get("declaration_id")?;
            let interchange: String = row.try_get("interchange_id")?;
            let detail = format!(
                "{agency} permit {id}: request sent {} s after it was asked for; due {moved} (was {due})",
                at.unix() - requested.unix()
            );
            self.declaration_event(
                conn,
                &interchange,
                &declaration,
                &at.to_string(),
                PERMIT_REQUEST_SENT_LATE,
                &detail,
            )
            .await?;
            tracing::info!(permit = %id, requested = %requested, sent = %at, due = %moved, "permit request sent late; the agency's time runs from now");
        }
        Ok(())
    }

    /// The AMQP prefix this store's outbox is published under, as recorded
    /// by the hub instances that publish it to RabbitMQ; `None` when none
    /// has (embedded, or no broker yet).
    pub async fn outbox_broker(&self) -> Result<Option<String>, StoreError> {
        Ok(self.broker_record().await?.map(|record| record.prefix))
    }

    /// [`outbox_broker`](Self::outbox_broker) with the time a relay
    /// publishing to it last claimed from the outbox, or tried to while
    /// the broker was away (by the database's clock).
    pub async fn outbox_broker_seen(
        &self,
    ) -> Result<Option<(String, Option<Timestamp>)>, StoreError> {
        Ok(self
            .broker_record()
            .await?
            .map(|record| (record.prefix, record.seen)))
    }

    /// The database's time `offset` seconds from now as stored text (RFC
    /// 3339 to the second, UTC), in SQL.
    fn db_time_sql(&self, offset: i64) -> String {
        match self.backend {
            Backend::Sqlite => {
                format!("strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '{offset} seconds')")
            }
            Backend::Postgres => format!(
                "to_char(now() AT TIME ZONE 'UTC' + interval '{offset} seconds', \
                 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            ),
        }
    }

    /// What the store records of its broker, read with the database's time.
    async fn broker_record(&self) -> Result<Option<BrokerRecord>, StoreError> {
        let sql = format!(
            "SELECT amqp_prefix, seen_at, {} AS db_now FROM outbox_broker WHERE id = 1",
            self.db_time_sql(0)
        );
        let Some(row) = sqlx::query(&sql).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let seen: Option<String> = row.try_get("seen_at")?;
        let now: String = row.try_get("db_now")?;
        Ok(Some(BrokerRecord {
            prefix: row.try_get("amqp_prefix")?,
            seen: seen.as_deref().and_then(Timestamp::parse),
            now: Timestamp::parse(&now).unwrap_or_else(Timestamp::now),
        }))
    }

    /// What a relay does at each claim (see
    /// [`claim_outbox`](Self::claim_outbox)) without claiming: checks its
    /// broker against the record, records it when none is, and marks it
    /// seen. The relay calls it while its broker is away, so that an
    /// instance waiting for RabbitMQ still counts as running.
    pub async fn keep_outbox_broker(&self, broker: Option<&str>) -> Result<(), StoreError> {
        let Some(write) = broker_action(self.broker_record().await?, broker)? else {
            return Ok(());
        };
        let now = self.db_time_sql(0);
        let sql = match write {
            BrokerWrite::Record => format!(
                "INSERT INTO outbox_broker (id, amqp_prefix, recorded_at, seen_at) \
                 VALUES (1, $1, {now}, {now}) ON CONFLICT (id) DO NOTHING"
            ),
            BrokerWrite::Touch => format!(
                "UPDATE outbox_broker SET seen_at = {now} WHERE id = 1 AND amqp_prefix = $1"
            ),
        };
        {
            let _writing = self.write_lock().await;
            sqlx::query(&self.sql(&sql))
                .bind(broker.unwrap_or_default())
                .execute(&self.pool)
                .await?;
        }
        // Recorded: checked again, as another relay may have recorded its
        // own prefix meanwhile.
        if write == BrokerWrite::Record {
            tracing::warn!(
                prefix = broker.unwrap_or_default(),
                "no broker was recorded for the outbox (forgotten while this instance ran?): recorded again"
            );
            broker_action(self.broker_record().await?, broker)?;
        }
        Ok(())
    }

    /// Records that this store's outbox is published to RabbitMQ under
    /// `prefix`, unless another prefix is recorded already; returns the
    /// prefix recorded (this one, or the other).
    pub async fn record_outbox_broker(
        &self,
        prefix: &str,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        let sql = self.sql(
            "INSERT INTO outbox_broker (id, amqp_prefix, recorded_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        );
        sqlx::query(&sql)
            .bind(prefix)
            .bind(now.to_string())
            .execute(&self.pool)
            .await?;
        Ok(self
            .outbox_broker()
            .await?
            .unwrap_or_else(|| prefix.to_owned()))
    }

    /// Forgets the broker recorded for the outbox (the operator's
    /// `tradehub outbox broker --forget`), unless a relay publishing to it
    /// claimed within the last [`BROKER_LIVE_SECS`] seconds: an instance
    /// still runs with it, and forgetting would let one without a broker
    /// start and mark the outbox published in-process.
    pub async fn forget_outbox_broker(&self) -> Result<Forget, StoreError> {
        let _writing = self.write_lock().await;
        let Some(record) = self.broker_record().await? else {
            return Ok(Forget::NoneRecorded);
        };
        if let Some(ago) = record.seen_secs_ago()
            && ago < BROKER_LIVE_SECS
        {
            return Ok(Forget::InUse {
                prefix: record.prefix,
                seen_secs_ago: ago,
            });
        }
        // Only the record just read, and only while still unseen: a relay
        // that claims meanwhile keeps it.
        let sql = self.sql(&format!(
            "DELETE FROM outbox_broker WHERE id = 1 AND amqp_prefix = $1 \
             AND (seen_at IS NULL OR seen_at < {})",
            self.db_time_sql(-BROKER_LIVE_SECS)
        ));
        let done = self
            .execute_as_operator(sqlx::query(&sql).bind(&record.prefix))
            .await?;
        Ok(if done.rows_affected() > 0 {
            Forget::Forgotten(record.prefix)
        } else {
            Forget::InUse {
                prefix: record.prefix,
                seen_secs_ago: 0,
            }
        })
    }

    /// Outbox messages still to publish (parked ones not counted: see
    /// [`outbox_counts`](Self::outbox_counts)).
    pub async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL AND parked_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Appends one event to an interchange's trail.
    pub async fn append_event(
        &self,
        id: &str,
        at: Timestamp,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let _writing = self.write_lock().await;
        self.insert_event(&self.pool, id, at, kind, detail).await
    }

    /// Inserts an interchange's event on `on`, the pool or a transaction
    /// (the write lock held by the caller).
    async fn insert_event<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
        &self,
        on: E,
        id: &str,
        at: Timestamp,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let sql = self
            .sql("INSERT INTO events (interchange_id, at, kind, detail) VALUES ($1, $2, $3, $4)");
        sqlx::query(&sql)
            .bind(id)
            .bind(at.to_string())
            .bind(kind)
            .bind(detail)
            .execute(on)
            .await?;
        Ok(())
    }

    /// Counts a repeat of an interchange of a kind that a sender can
    /// repeat without end (the same interchange received again) in
    /// `repeat_counts`, every one, and appends it to the trail as an event:
    /// the first `max` of that kind on the interchange one by one, then one
    /// more saying that further ones are only counted, and nothing after
    /// it, so that a flood of repeats cannot grow an interchange's trail
    /// (and the answer that lists it) without bound. True when the event
    /// was recorded.
    pub async fn append_repeat_event(
        &self,
        id: &str,
        at: Timestamp,
        kind: &str,
        detail: &str,
        max: i64,
    ) -> Result<bool, StoreError> {
        let _writing = self.write_lock().await;
        // The count and the event are one transaction; on PostgreSQL,
        // repeats of one interchange taken at once by several connections
        // (or hubs) queue on its count's row, so that the count each gets
        // includes the others' (else every one in flight could read the
        // same count and pass the bound). SQLite's writers queue on the
        // write lock held here.
        let mut tx = self.pool.begin().await?;
        let sql = self.sql(
            "INSERT INTO repeat_counts (interchange_id, kind, count, first_at, last_at) \
             VALUES ($1, $2, 1, $3, $3) ON CONFLICT (interchange_id, kind) DO UPDATE \
             SET count = repeat_counts.count + 1, last_at = excluded.last_at RETURNING count",
        );
        let counted: i64 = sqlx::query(&sql)
            .bind(id)
            .bind(kind)
            .bind(at.to_string())
            .fetch_one(&mut *tx)
            .await?
            .try_get("count")?;
        let detail = match counted.cmp(&(max + 1)) {
            std::cmp::Ordering::Less => detail.to_owned(),
            std::cmp::Ordering::Equal => format!(
                "{detail}; {counted} such events recorded, further ones are counted \
                 (repeat_counts, shown by tradehub trail) but not recorded one by one"
            ),
            std::cmp::Ordering::Greater => {
                tx.commit().await?;
                return Ok(false);
            }
        };
        self.insert_event(&mut *tx, id, at, kind, &detail).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// How often an interchange was repeated, by kind of repeat
    /// (`duplicate_received`, `duplicate_reference_refused`), with the
    /// first and the last; none when it never was.
    pub async fn repeat_counts(&self, id: &str) -> Result<Vec<RepeatCount>, StoreError> {
        let sql = self.sql(
            "SELECT kind, count, first_at, last_at FROM repeat_counts \
             WHERE interchange_id = $1 ORDER BY kind",
        );
        let rows = sqlx::query(&sql).bind(id).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(RepeatCount {
                    kind: r.try_get("kind")?,
                    count: r.try_get("count")?,
                    first_at: r.try_get("first_at")?,
                    last_at: r.try_get("last_at")?,
                })
            })
            .collect()
    }

    /// Records a refused submission.
    pub async fn refuse(&self, refusal: &Refusal) -> Result<(), StoreError> {
        let _writing = self.write_lock().await;
        let sql = self.sql(
            "INSERT INTO refusals (partner_id, at, sha256, size_bytes, code, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        );
        sqlx::query(&sql)
            .bind(refusal.partner_id.clone())
            .bind(refusal.at.to_string())
            .bind(&refusal.sha256)
            .bind(refusal.size_bytes)
            .bind(&refusal.code)
            .bind(&refusal.detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Refusals recorded for a partner, newest first (at most `limit`).
    pub async fn refusals(
        &self,
        partner_id: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let listed = self.refusal_list(Some(partner_id), limit).await?;
        Ok(listed.into_iter().map(|r| (r.code, r.detail)).collect())
    }

    /// What operators changed (accounts, tokens, roles, suspensions,
    /// trader identifiers, outbox retries, the broker record), newest
    /// first, at most `limit`; of one subject (a partner id, or `outbox
    /// SEQ`) when `subject` is given.
    pub async fn operator_log(
        &self,
        subject: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OperatorAction>, StoreError> {
        let sql = self.sql(
            "SELECT seq, at, action, subject, detail, by_role, operator FROM operator_log \
             WHERE ($1 = '' OR subject = $1) ORDER BY seq DESC LIMIT $2",
        );
        let rows = sqlx::query(&sql)
            .bind(subject.unwrap_or("").to_owned())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(OperatorAction {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    action: r.try_get("action")?,
                    subject: r.try_get("subject")?,
                    detail: r.try_get("detail")?,
                    by_role: r.try_get("by_role")?,
                    operator: r.try_get("operator")?,
                })
            })
            .collect()
    }

    /// The refusals recorded, newest first: of one partner (`None`: of
    /// every sender, those whose sender was not known included), at most
    /// `limit`.
    pub async fn refusal_list(
        &self,
        partner_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StoredRefusal>, StoreError> {
        let columns = "seq, partner_id, at, sha256, size_bytes, code, detail";
        let rows = match partner_id {
            Some(partner) => {
                let sql = self.sql(&format!(
                    "SELECT {columns} FROM refusals WHERE partner_id = $1 ORDER BY seq DESC LIMIT $2"
                ));
                sqlx::query(&sql)
                    .bind(partner)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = self.sql(&format!(
                    "SELECT {columns} FROM refusals ORDER BY seq DESC LIMIT $1"
                ));
                sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(StoredRefusal {
                    seq: r.try_get("seq")?,
                    partner_id: r.try_get("partner_id")?,
                    at: r.try_get("at")?,
                    sha256: r.try_get("sha256")?,
                    size_bytes: r.try_get("size_bytes")?,
                    code: r.try_get("code")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    pub async fn interchange(&self, id: &str) -> Result<Option<StoredInterchange>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {INTERCHANGE_COLUMNS} FROM interchanges WHERE id = $1"
        ));
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(stored).transpose()
    }

    /// The interchange a partner already sent with these bytes.
    pub async fn interchange_by_hash(
        &self,
        partner_id: &str,
        sha256: &str,
    ) -> Result<Option<StoredInterchange>, StoreError> {
        self.interchange_where("partner_id = $1 AND sha256 = $2", partner_id, sha256)
            .await
    }

    /// The interchange with this sender and control reference.
    pub async fn interchange_by_reference(
        &self,
        sender: &str,
        control_reference: &str,
    ) -> Result<Option<StoredInterchange>, StoreError> {
        self.interchange_where(
            "sender = $1 AND control_reference = $2",
            sender,
            control_reference,
        )
        .await
    }

    async fn interchange_where(
        &self,
        clause: &'static str,
        a: &str,
        b: &str,
    ) -> Result<Option<StoredInterchange>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {INTERCHANGE_COLUMNS} FROM interchanges WHERE {clause}"
        ));
        let row = sqlx::query(&sql)
            .bind(a)
            .bind(b)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(stored).transpose()
    }

    /// The raw bytes exactly as received.
    pub async fn raw(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = self.sql("SELECT raw FROM interchanges WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get::<Vec<u8>, _>("raw").map_err(StoreError::from))
            .transpose()
    }

    /// The interchange's own events (its declarations' events are read with
    /// [`Store::declaration_events`]).
    pub async fn events(&self, id: &str) -> Result<Vec<Event>, StoreError> {
        let sql = self
            .sql("SELECT seq, at, kind, detail FROM events WHERE interchange_id = $1 AND declaration_id IS NULL ORDER BY seq");
        let rows = sqlx::query(&sql).bind(id).fetch_all(&self.pool).await?;
        rows.iter().map(event_row).collect()
    }

    /// Counts rows of a table (operations and tests).
    pub async fn count(&self, table: Table) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) AS n FROM {}", table.name());
        let row = sqlx::query(&sql).fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }

    /// A PostgreSQL session setting of one of the pool's connections
    /// (`current_setting`); none on SQLite.
    #[doc(hidden)]
    pub async fn pg_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let row = sqlx::query("SELECT current_setting($1) AS v")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(Some(row.try_get("v")?))
    }

    /// Tries to rewrite (or, with `delete`, to erase) the audit trail;
    /// the database must refuse.
    #[doc(hidden)]
    pub async fn try_rewrite_events(&self, delete: bool) -> Result<u64, StoreError> {
        let _writing = self.write_lock().await;
        let statement = if delete {
            "DELETE FROM events"
        } else {
            "UPDATE events SET detail = 'rewritten'"
        };
        let done = sqlx::query(statement).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}

/// Tables whose rows can be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Partners,
    Interchanges,
    Events,
    Refusals,
    Outbox,
    Declarations,
    Permits,
    Responses,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Partners => "partners",
            Table::Interchanges => "interchanges",
            Table::Events => "events",
            Table::Refusals => "refusals",
            Table::Outbox => "outbox",
            Table::Declarations => "declarations",
            Table::Permits => "permits",
            Table::Responses => "responses",
        }
    }
}

/// The VALUES list of a multi-row INSERT: `rows` groups of `columns`
/// numbered placeholders, `($1, $2), ($3, $4)` (bound row by row, column
/// by column; [`Store::sql`] turns them into SQLite's).
pub(crate) fn value_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let cells: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn event_row(r: &AnyRow) -> Result<Event, StoreError> {
    Ok(Event {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        kind: r.try_get("kind")?,
        detail: r.try_get("detail")?,
    })
}

fn partner_row(r: &AnyRow) -> Result<Partner, StoreError> {
    let since: Option<String> = r.try_get("suspended_at")?;
    let reason: Option<String> = r.try_get("suspended_reason")?;
    Ok(Partner {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        agency: r.try_get("agency")?,
        suspended: since.map(|since| Suspension {
            since,
            reason: reason.unwrap_or_default(),
        }),
    })
}

fn stored(r: &AnyRow) -> Result<StoredInterchange, StoreError> {
    Ok(StoredInterchange {
        id: r.try_get("id")?,
        partner_id: r.try_get("partner_id")?,
        sender: r.try_get("sender")?,
        control_reference: r.try_get("control_reference")?,
        sha256: r.try_get("sha256")?,
        format: r.try_get("format")?,
        status: r.try_get("status")?,
        received_at: r.try_get("received_at")?,
        size_bytes: r.try_get("size_bytes")?,
        message_count: r.try_get("message_count")?,
        error_count: r.try_get("error_count")?,
        issues_json: r.try_get("issues_json")?,
        acknowledgement: r.try_get("acknowledgement")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_rows_number_the_placeholders_row_by_row() {
        assert_eq!(value_rows(1, 3), "($1, $2, $3)");
        assert_eq!(value_rows(2, 4), "($1, $2, $3, $4), ($5, $6, $7, $8)");
        assert_eq!(value_rows(0, 4), "");
    }

    #[test]
    fn a_store_is_named_without_its_credentials() {
        for (url, target) in [
            (
                "postgres://app:secret@db.example:6432/hub?sslmode=require",
                "postgres://db.example:6432/hub",
            ),
            (
                "postgresql://app@10.0.0.5/hub",
                "postgresql://10.0.0.5:5432/hub",
            ),
            ("postgres://[::1]/hub", "postgres://[::1]:5432/hub"),
            ("postgres:///hub", "postgres://localhost:5432/hub"),
            (
                "sqlite://data/tradehub.db?mode=rwc",
                "sqlite://data/tradehub.db",
            ),
            // Passwords written without escapes.
            ("postgres://app:p/ss@db/hub", "postgres://db:5432/hub"),
            ("postgres://app:pa?ss@db/hub", "postgres://db:5432/hub"),
            ("postgres://app:p@ss@db:5433/hub", "postgres://db:5433/hub"),
            ("mysql://app:secret@db/hub", "mysql://db/hub"),
        ] {
            assert_eq!(store_target(url), target, "{url}");
        }
    }

    /// A full disk (SQLITE_FULL, caused here by a page limit) and SQLite's
    /// I/O errors may pass: a delivery waits for them rather than being
    /// refused for good. A constraint failure does not pass.
    #[tokio::test]
    async fn a_full_sqlite_database_is_a_failure_that_may_pass() {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .in_memory(true)
            .pragma("max_page_count", "8")
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (v BLOB NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
        let mut full = None;
        for _ in 0..64 {
            if let Err(e) = sqlx::query("INSERT INTO t (v) VALUES (zeroblob(4096))")
                .execute(&mut conn)
                .await
            {
                full = Some(e);
                break;
            }
        }
        let full = StoreError::from(full.expect("the page limit was reached"));
        assert!(full.is_retryable(), "{full:?}");
        let constraint = sqlx::query("INSERT INTO t (v) VALUES (NULL)")
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(!StoreError::from(constraint).is_retryable());
        for (code, transient) in [("13", true), ("10", true), ("266", true), ("19", false)] {
            assert_eq!(transient_sqlite(code), transient, "{code}");
        }
        // PostgreSQL's SQLSTATEs are not read as SQLite codes.
        for code in ["40001", "23505", "42601", "22001"] {
            assert!(!transient_sqlite(code), "{code}");
        }
    }
}
