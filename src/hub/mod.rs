//! The hub's pipeline. So far: durable intake — receive bytes from an
//! authenticated partner, check the syntax, refuse what may not be taken,
//! store the interchange with its raw bytes and first events in one
//! transaction, and only then hand back the acknowledgement (CONTRL).
//!
//! Invariants held here: nothing is acknowledged before it is durably stored;
//! redelivery is harmless (same bytes → the original receipt; same sender and
//! control reference with other bytes → refused with 0085 code 26); a
//! partner may only submit as itself (UNB sender = authenticated partner).

use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

pub mod amend;
pub mod audit;
pub mod cargo;
pub mod clearance;
pub mod metrics;
pub mod mrn;
pub mod outbox;
pub mod permits;
mod responses;
pub(crate) mod xml;

use metrics::Metrics;

use crate::ack::contrl;
use crate::diag::{Code, Issue};
use crate::edifact::{self, Limits, ParseOptions, Parsed};
use crate::store::{
    LiveReference, LiveScope, NewInterchange, OutboxMessage, Partner, Refusal, Store, StoreError,
    StoredInterchange,
};
use crate::timestamp::Timestamp;

/// Interchange status values stored and reported.
pub mod status {
    /// Syntax-checked without errors; awaiting the next pipeline steps.
    pub const VALIDATED: &str = "validated";
    /// Syntax errors: rejected, with a CONTRL saying where and why.
    pub const REJECTED: &str = "rejected";
}

/// Whether a mapped message changes an earlier one (an amendment,
/// replacement or cancellation of a declaration or cargo report: its
/// function is not `original`), so that the hub completes it from, or
/// checks it against, what it refers to.
fn changes_earlier(m: &crate::mapping::Mapped) -> bool {
    m.canonical
        .as_ref()
        .and_then(|c| c.get("function"))
        .and_then(serde_json::Value::as_str)
        .is_some_and(|f| f != "original")
}

/// What a cargo report changes ([`Intake::cargo_change`]).
enum CargoChange {
    None,
    /// Its function (`amendment` or `cancellation`) and the live report it
    /// replaces.
    Replaces(&'static str, clearance::Prior),
    /// It refers to no live report, or is an original with the reference
    /// of a live one: the finding that refuses it.
    Refused(Issue),
}

/// True when the message's function code (BGM 1225) has no translation
/// (MAP003 at BGM): it is no original, whatever the canonical default.
fn function_untranslated(m: &crate::mapping::Mapped) -> bool {
    m.issues.iter().any(|i| {
        i.code == crate::diag::Code::MappingCodeUnknown && i.location.tag.as_deref() == Some("BGM")
    })
}

/// What [`Intake::store_new`] found.
enum Stored {
    Committed,
    /// The same bytes were stored before: the original answer.
    Duplicate(Submission),
    /// Other bytes under a control reference the sender used before.
    ReferenceTaken(StoredInterchange),
}

/// What became of a submission.
#[derive(Debug, Clone, PartialEq)]
pub enum Submission {
    /// Stored now; the receipt carries the acknowledgement.
    Stored(Receipt),
    /// The same bytes were received from this partner before: the original
    /// receipt, nothing new stored.
    Duplicate(Receipt),
    /// Not taken; recorded as a refusal.
    Refused(Refused),
}

/// A stored interchange with its issues.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Receipt {
    #[serde(flatten)]
    pub interchange: StoredInterchange,
    pub issues: Vec<Issue>,
}

/// Why a submission was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalReason {
    /// The UNB sender is not the authenticated partner.
    WrongSender { sender: String },
    /// Another interchange with this sender and control reference exists.
    DuplicateReference { original: String },
    /// The input is not an interchange this hub reads.
    NotAnInterchange,
    /// The interchange holds more messages than the hub takes in one.
    TooManyMessages { count: u64, limit: usize },
    /// The account acts for an agency (or for customs) and files nothing.
    NotASender { agency: String },
    /// An operator suspended the partner.
    Suspended,
}

/// A refused submission, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: RefusalReason,
    pub code: Code,
    pub detail: String,
    /// A CONTRL rejecting the interchange, when one can be addressed.
    pub acknowledgement: Option<String>,
}

/// Messages an EDIFACT interchange may hold unless configured otherwise.
pub const DEFAULT_MAX_MESSAGES: usize = 10_000;

/// Durable intake on top of a store.
#[derive(Debug, Clone)]
pub struct Intake {
    store: Store,
    limits: Limits,
    /// Messages one EDIFACT interchange may hold.
    max_messages: usize,
    metrics: Arc<Metrics>,
    /// Token hash → partner, for `TOKEN_CACHE_TTL` (saves a round trip per
    /// request; a new or changed partner is seen within that time).
    tokens: Arc<std::sync::RwLock<std::collections::HashMap<String, (Partner, Instant)>>>,
    /// Woken after each commit that wrote to the outbox.
    outbox_wake: Arc<tokio::sync::Notify>,
    /// Whether an AMQP consumer is configured and currently connected.
    broker: Arc<BrokerState>,
    /// The UN/EDIFACT directories messages are validated against.
    directories: Arc<crate::schema::Directories>,
    /// Rules, risk lanes and permit routing for mapped declarations.
    clearance: Arc<clearance::Clearance>,
    /// WCO XML validation (schemas and hostile-input limits).
    xml: crate::xml::XmlValidator,
    /// How the submission being taken reached the hub (see
    /// [`Intake::submit_via`]), named on its trail and in its refusal.
    via: Via,
}

/// How a submission reached the hub: named in its `received` (or
/// `duplicate_received`) event and in a refusal's record, so that the
/// trail says which channel, file or message it was and, for a file, when
/// it was delivered (which may be long before the hub took it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Via {
    /// Not said (a library caller).
    #[default]
    Unspecified,
    Http,
    /// A drop-folder file: its name and its modification time.
    Drop {
        file: String,
        delivered_at: Option<Timestamp>,
    },
    /// An AMQP delivery and its `message_id`, if it has one.
    Amqp {
        message_id: Option<String>,
    },
}

impl Via {
    /// The `correlation_id` of the answers to what came this way: an AMQP
    /// delivery's `message_id`.
    fn correlation(&self) -> Option<String> {
        match self {
            Via::Amqp { message_id } => message_id.clone().filter(|m| !m.is_empty()),
            _ => None,
        }
    }

    /// `text` followed by how the submission came, if said.
    fn after(&self, text: &str) -> String {
        match self {
            Via::Unspecified => text.to_owned(),
            via => format!("{text}; {via}"),
        }
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::Unspecified => Ok(()),
            Via::Http => f.write_str("over HTTP"),
            Via::Drop { file, delivered_at } => {
                write!(f, "drop file {file:?}")?;
                match delivered_at {
                    Some(at) => write!(f, " delivered {at}"),
                    None => Ok(()),
                }
            }
            Via::Amqp {
                message_id: Some(id),
            } => write!(
                f,
                "over AMQP, message_id {:?}",
                id.get(..id.floor_char_boundary(200)).unwrap_or_default()
            ),
            Via::Amqp { message_id: None } => f.write_str("over AMQP, without message_id"),
        }
    }
}

/// The AMQP broker as the hub last saw it, for `/readyz`.
#[derive(Debug, Default)]
pub struct BrokerState {
    configured: std::sync::atomic::AtomicBool,
    connected: std::sync::atomic::AtomicBool,
    /// Messages in the dead-letter queues at the last check, plus one
    /// (0: never checked).
    dead_letters: std::sync::atomic::AtomicI64,
    /// The agency replies that were waiting in the broker when the
    /// consumer connected have been taken.
    replies_taken: std::sync::atomic::AtomicBool,
    /// Counts the consumer's connections: what a task of an earlier one
    /// says of the replies is not taken for the current one.
    connection: std::sync::atomic::AtomicU64,
    /// The consumer stopped for good (an error no retry mends): nothing
    /// is heard from the broker again, and permits expire as without one.
    stopped: std::sync::atomic::AtomicBool,
}

impl BrokerState {
    /// An AMQP consumer will run (readiness then depends on it).
    pub fn set_configured(&self) {
        self.configured
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// The consumer connected (`true`) or lost its connection (`false`;
    /// the replies waiting in the broker are then unknown again).
    pub fn set_connected(&self, up: bool) {
        use std::sync::atomic::Ordering::AcqRel;
        if up {
            self.connection.fetch_add(1, AcqRel);
        } else {
            self.replies_taken
                .store(false, std::sync::atomic::Ordering::Release);
        }
        self.connected
            .store(up, std::sync::atomic::Ordering::Release);
    }

    /// The current connection of the consumer (see
    /// [`set_replies_taken`](Self::set_replies_taken)).
    pub fn connection(&self) -> u64 {
        self.connection.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The agency replies waiting in the broker when the consumer made
    /// its connection `connection` have all been taken (or there were
    /// none). Said of an earlier connection, it changes nothing.
    pub fn set_replies_taken(&self, connection: u64) {
        if self.connection() == connection {
            self.replies_taken
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// True once the replies waiting at the current connection are taken.
    pub fn replies_taken(&self) -> bool {
        self.replies_taken
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The consumer stopped for good.
    pub fn set_stopped(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the hub hears the agencies: no broker is configured (they
    /// answer over HTTP), or the consumer is connected and has taken the
    /// replies that were waiting when it connected. Permits expire only
    /// then: an answer waiting in the broker (sent while the hub was down
    /// or away from the broker) is not a missing one.
    pub fn agencies_heard(&self) -> bool {
        use std::sync::atomic::Ordering::Acquire;
        !self.configured.load(Acquire)
            || self.stopped.load(Acquire)
            || (self.connected.load(Acquire) && self.replies_taken.load(Acquire))
    }

    /// Records the depth of the dead-letter queues.
    pub fn set_dead_letters(&self, n: u32) {
        self.dead_letters
            .store(i64::from(n) + 1, std::sync::atomic::Ordering::Release);
    }

    /// The depth is not known (a queue could not be counted): the gauge
    /// is left out of `/metrics` until both can be counted again, rather
    /// than showing a value that is no longer current.
    pub fn clear_dead_letters(&self) {
        self.dead_letters
            .store(0, std::sync::atomic::Ordering::Release);
    }

    /// The depth of the dead-letter queues at the last check, if any.
    pub fn dead_letters(&self) -> Option<i64> {
        let n = self.dead_letters.load(std::sync::atomic::Ordering::Acquire);
        (n > 0).then_some(n - 1)
    }

    /// `None` when no broker is configured, else whether it is connected.
    pub fn status(&self) -> Option<bool> {
        self.configured
            .load(std::sync::atomic::Ordering::Acquire)
            .then(|| self.connected.load(std::sync::atomic::Ordering::Acquire))
    }
}

/// Events of one kind of repeat (`duplicate_received`,
/// `duplicate_reference_refused`) recorded one by one on an interchange's
/// trail; further repeats are only counted (`repeat_counts`, see
/// [`Store::append_repeat_event`]).
pub const MAX_REPEAT_EVENTS: i64 = 100;

/// How long an authenticated token is remembered.
const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// The SHA-256 of `bytes` as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Intake {
    /// Validates against these directories instead of the default folders.
    pub fn with_directories(mut self, directories: Arc<crate::schema::Directories>) -> Self {
        self.directories = directories;
        self
    }

    /// The broker connection state shared with the AMQP consumer.
    pub fn broker(&self) -> &BrokerState {
        &self.broker
    }

    pub fn new(store: Store, limits: Limits) -> Self {
        Intake {
            store,
            limits,
            max_messages: DEFAULT_MAX_MESSAGES,
            metrics: Arc::new(Metrics::default()),
            broker: Arc::default(),
            directories: crate::schema::Directories::global(),
            tokens: Arc::default(),
            outbox_wake: Arc::default(),
            clearance: Arc::default(),
            xml: crate::xml::XmlValidator::new(None, crate::xml::XmlLimits::default()),
            via: Via::Unspecified,
        }
    }

    /// Validates WCO XML with this validator (schema folder, limits).
    pub fn with_xml(mut self, validator: crate::xml::XmlValidator) -> Self {
        self.xml = validator;
        self
    }

    /// Refuses EDIFACT interchanges of more than `max` messages (each
    /// message is mapped, checked, answered and written in one
    /// transaction, so the count bounds the memory and the time of one
    /// submission).
    pub fn with_max_messages(mut self, max: usize) -> Self {
        self.max_messages = max.max(1);
        self
    }

    /// Applies these rules, risk lanes and routing to mapped declarations.
    pub fn with_clearance(mut self, clearance: clearance::Clearance) -> Self {
        self.clearance = Arc::new(clearance);
        self
    }

    /// The clearance workflow's settings and tables.
    pub fn clearance(&self) -> &clearance::Clearance {
        &self.clearance
    }

    /// What the outbox relay waits on between polls.
    pub fn outbox_wake(&self) -> Arc<tokio::sync::Notify> {
        self.outbox_wake.clone()
    }

    /// The partner an API token belongs to (the token's SHA-256 is looked
    /// up; recent answers come from memory).
    pub async fn partner_for_token(&self, token: &str) -> Result<Option<Partner>, StoreError> {
        let hash = sha256_hex(token.as_bytes());
        if let Ok(cache) = self.tokens.read()
            && let Some((partner, at)) = cache.get(&hash)
            && at.elapsed() < TOKEN_CACHE_TTL
        {
            return Ok(Some(partner.clone()));
        }
        let found = self.store.partner_by_token(&hash).await?;
        if let (Some(partner), Ok(mut cache)) = (&found, self.tokens.write()) {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(hash, (partner.clone(), Instant::now()));
        }
        Ok(found)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The counters, shared (for tasks beside the intake: the sealer).
    pub fn shared_metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// [`submit`](Self::submit), saying how the submission came (the
    /// transports do).
    pub async fn submit_via(
        &self,
        partner: &Partner,
        bytes: Vec<u8>,
        via: Via,
    ) -> Result<Submission, StoreError> {
        let bound = Intake {
            via,
            ..self.clone()
        };
        bound.submit(partner, bytes).await
    }

    /// Takes one submission from an authenticated partner.
    pub async fn submit(
        &self,
        partner: &Partner,
        bytes: Vec<u8>,
    ) -> Result<Submission, StoreError> {
        let started = Instant::now();
        let m = &self.metrics;
        Metrics::inc(&m.received);
        m.received_bytes
            .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let result = self.submit_inner(partner, bytes).await;
        match &result {
            Ok(Submission::Stored(r)) if r.interchange.status == status::VALIDATED => {
                Metrics::inc(&m.validated)
            }
            Ok(Submission::Stored(_)) => Metrics::inc(&m.rejected),
            Ok(Submission::Duplicate(_)) => Metrics::inc(&m.duplicates),
            Ok(Submission::Refused(_)) => Metrics::inc(&m.refused),
            Err(_) => Metrics::inc(&m.store_errors),
        }
        m.submit_latency.observe(started.elapsed());
        result
    }

    async fn submit_inner(
        &self,
        partner: &Partner,
        bytes: Vec<u8>,
    ) -> Result<Submission, StoreError> {
        let now = Timestamp::now();
        let sha256 = sha256_hex(&bytes);
        if let Some(detail) = partner.suspension_detail() {
            // Taken before the suspension (a drop-folder file the hub had
            // committed and not yet moved out of work/ when it stopped, a
            // response lost on the way): a redelivery gets its original
            // answer, as any duplicate does, rather than a refusal of what
            // is stored and being cleared.
            if let Some(original) = self.store.interchange_by_hash(&partner.id, &sha256).await? {
                return self.duplicate(original, now).await;
            }
            // Anything else is refused unread, on every transport, and
            // recorded.
            let refused = Refused {
                reason: RefusalReason::Suspended,
                code: Code::PartnerSuspended,
                detail,
                acknowledgement: None,
            };
            return self
                .record_refusal(partner, &sha256, bytes.len(), refused, now)
                .await;
        }
        if let Some(agency) = &partner.agency {
            // Agencies' and officers' accounts answer and release; a
            // declaration filed under one would be sent by nobody the
            // clearance answers, and would let an agency file for itself.
            // Refused unread, on every transport.
            let refused = Refused {
                reason: RefusalReason::NotASender {
                    agency: agency.clone(),
                },
                code: Code::NotASender,
                detail: format!(
                    "account {} acts for {agency}; it answers permit requests and does not submit interchanges (register the trader or carrier as a partner of its own)",
                    partner.id
                ),
                acknowledgement: None,
            };
            return self
                .record_refusal(partner, &sha256, bytes.len(), refused, now)
                .await;
        }
        if crate::xml::looks_like_xml(&bytes) {
            return self.submit_xml(partner, bytes, now, sha256).await;
        }
        let limits = self.limits;
        let directories = self.directories.clone();
        let rule_settings = self.clearance.rule_settings(now);
        let clearance = self.clearance.clone();
        let size = bytes.len();
        let max_messages = self.max_messages;
        let ((parsed, mapped, bytes), _turn) = cpu_work(size, move || {
            let mut parsed = parse_validated(&bytes, limits, &directories);
            // A UNB read with separators in error says nothing reliable:
            // its parties are not what was written (the CONTRL goes to the
            // authenticated partner, signed by the hub), and neither its
            // recipient nor its test indicator is held against it; the
            // UCI names the UNA. Nor is its control reference what the
            // sender wrote (a party's id read in its place): it is not
            // kept, so it neither stands for the interchange in the CONTRL
            // (UCI 0020 `UNKNOWN`) nor refuses the sender's next
            // interchange as a reuse of it (E0026).
            if separators_in_error(&parsed) {
                parsed.interchange.sender = Default::default();
                parsed.interchange.recipient = Default::default();
                parsed.interchange.control_reference.clear();
            } else {
                // Misaddressed first: the UCI names the first interchange
                // error.
                refuse_test(&mut parsed);
                refuse_misaddressed(&mut parsed, &clearance);
            }
            // Only a valid interchange goes on: each message is mapped to
            // the canonical model and checked by the business rules.
            let too_many = parsed.interchange.counts.messages > max_messages as u64;
            let mapped = if parsed.is_valid() && !too_many {
                // Each message's own fields are traced; a message the hub
                // may report on below them (a rule finding, an amendment
                // or cancellation, applied to or checked against what it
                // refers to) is traced whole. The findings the hub adds
                // later name the message's own fields (its LRN, MRN or
                // reference).
                crate::mapping::edifact::map_interchange_top(&parsed, &directories)
                    .into_iter()
                    .enumerate()
                    .map(|(index, mut m)| {
                        let mut findings = crate::rules::check_mapped(&m, &rule_settings);
                        if !findings.is_empty() || changes_earlier(&m) {
                            crate::mapping::edifact::trace_message(
                                &mut m,
                                &parsed,
                                &directories,
                                index,
                            );
                            findings = crate::rules::check_mapped(&m, &rule_settings);
                        }
                        (m, findings)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            (parsed, mapped, bytes)
        })
        .await?;

        let ic = &parsed.interchange;
        let refuse = |reason, code, detail: String, ack| Refused {
            reason,
            code,
            detail,
            acknowledgement: ack,
        };
        if let Some(issue) = parsed.issues.iter().find(|i| i.code == Code::NotEdifact) {
            // What else was found says why (a UNA cut short: E0001).
            let also: Vec<String> = parsed
                .issues
                .iter()
                .filter(|i| i.is_error() && i.code != Code::NotEdifact)
                .take(3)
                .map(|i| format!("{} {}", i.code.as_str(), i.message))
                .collect();
            let also = if also.is_empty() {
                String::new()
            } else {
                format!(" ({})", also.join("; "))
            };
            let refused = refuse(
                RefusalReason::NotAnInterchange,
                Code::NotEdifact,
                format!(
                    "the body is neither a UN/EDIFACT interchange nor XML: {}{also}",
                    issue.message
                ),
                None,
            );
            return self
                .record_refusal(partner, &sha256, bytes.len(), refused, now)
                .await;
        }
        // A UNA whose separators are in error left the UNB's sender
        // unread (above): the interchange is rejected for its UNA (CONTRL,
        // code 20 at UNA) under the authenticated partner, rather than
        // refused as another sender's.
        let sender = if ic.sender.id.is_empty() {
            partner.id.clone()
        } else {
            ic.sender.id.clone()
        };
        let count = ic.counts.messages;
        if count > self.max_messages as u64 && sender == partner.id {
            // Taken in before the limit was lowered: a redelivery gets its
            // original answer, as any duplicate does.
            if let Some(original) = self.store.interchange_by_hash(&partner.id, &sha256).await? {
                return self.duplicate(original, now).await;
            }
            let refused = refuse(
                RefusalReason::TooManyMessages {
                    count,
                    limit: self.max_messages,
                },
                Code::TooManyMessages,
                format!(
                    "the interchange holds {count} messages; at most {} are taken in one: send them in several interchanges",
                    self.max_messages
                ),
                None,
            );
            return self
                .record_refusal(partner, &sha256, bytes.len(), refused, now)
                .await;
        }
        if sender != partner.id {
            let refused = refuse(
                RefusalReason::WrongSender {
                    sender: sender.clone(),
                },
                Code::WrongSender,
                format!(
                    "UNB sender {sender:?} is not the authenticated partner {:?}",
                    partner.id
                ),
                None,
            );
            return self
                .record_refusal(partner, &sha256, bytes.len(), refused, now)
                .await;
        }
        let control_reference =
            (!ic.control_reference.is_empty()).then(|| storable(&ic.control_reference));

        let id = uuid::Uuid::now_v7().to_string();
        let ack = contrl_for(&parsed, &id, &self.clearance.hub_id, &partner.id, now);
        let valid = parsed.is_valid();
        let status = if valid {
            status::VALIDATED
        } else {
            status::REJECTED
        };
        let issues_json = serde_json::to_string(&parsed.issues).unwrap_or_else(|_| "[]".into());
        let new = NewInterchange {
            id: id.clone(),
            partner_id: partner.id.clone(),
            sender,
            control_reference,
            sha256,
            format: "edifact".into(),
            status: status.into(),
            received_at: now,
            message_count: ic.counts.messages as i64,
            error_count: parsed.error_count as i64,
            issues_json,
            acknowledgement: ack,
            raw: bytes,
        };
        let events = [
            (
                "received",
                self.via
                    .after(&format!("{} bytes, sha256 {}", new.raw.len(), new.sha256)),
            ),
            (
                status,
                if valid {
                    format!("{} message(s), syntax valid", new.message_count)
                } else {
                    format!("{} syntax error(s); CONTRL rejects", new.error_count)
                },
            ),
        ];
        let outbox = [status_event(&new)];
        let reply = clearance::Reply {
            format: "edifact".into(),
            partner: partner.id.clone(),
            syntax_identifier: ic.syntax_identifier.clone(),
            syntax_version: ic.syntax_version.parse().unwrap_or(4),
            interchange_reference: storable(&ic.control_reference),
            sender_qualifier: storable(&ic.sender.qualifier),
            sender_routing: storable(&ic.sender.internal_id),
            recipient_qualifier: storable(&ic.recipient.qualifier),
            recipient: if ic.recipient.id == self.clearance.hub_id {
                String::new()
            } else {
                storable(&ic.recipient.id)
            },
            correlation: self.via.correlation(),
            ..clearance::Reply::default()
        };
        match self
            .store_declared(&new, &events, &outbox, partner, &reply, &mapped, now)
            .await?
        {
            Stored::Committed => {}
            Stored::Duplicate(answer) => return Ok(answer),
            Stored::ReferenceTaken(original) => {
                return self
                    .duplicate_reference(partner, &new.sha256, &new.raw, &parsed, original, now)
                    .await;
            }
        }
        let stored = new.into_stored();
        tracing::info!(interchange = %id, partner = %partner.id, status, "interchange stored");
        Ok(Submission::Stored(Receipt {
            interchange: stored,
            issues: parsed.issues,
        }))
    }

    /// Works out the declarations of an interchange from the current state
    /// of the ones they amend or cancel, and commits them with it
    /// ([`store_new`](Self::store_new)). When an earlier declaration
    /// changed between the two (an agency decision landed meanwhile), they
    /// are worked out again from its new state, a few times at most.
    #[allow(clippy::too_many_arguments)]
    async fn store_declared(
        &self,
        new: &NewInterchange,
        events: &[(&str, String)],
        outbox: &[OutboxMessage],
        partner: &Partner,
        reply: &clearance::Reply,
        mapped: &[(crate::mapping::Mapped, Vec<Issue>)],
        now: Timestamp,
    ) -> Result<Stored, StoreError> {
        const ATTEMPTS: usize = 4;
        let mut attempt = 1;
        loop {
            let declarations = self.declarations(partner, reply, mapped, now).await?;
            match self
                .store_new(new, events, outbox, &declarations, now)
                .await
            {
                Err(StoreError::StateChanged { what }) if attempt < ATTEMPTS => {
                    tracing::info!(interchange = %new.id, attempt, reason = %what, "declarations worked out again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Commits a new interchange with its events, outbox rows and
    /// declarations. The unique constraints decide what was here already:
    /// the same bytes again (or a redelivery that raced the first copy)
    /// get the original answer; other bytes under a used control
    /// reference are the caller's to refuse.
    async fn store_new(
        &self,
        new: &NewInterchange,
        events: &[(&str, String)],
        outbox: &[OutboxMessage],
        declarations: &[crate::store::NewDeclaration],
        now: Timestamp,
    ) -> Result<Stored, StoreError> {
        match self
            .store
            .insert_interchange(new, events, outbox, declarations)
            .await
        {
            Ok(()) => {
                self.committed(declarations);
                Ok(Stored::Committed)
            }
            Err(StoreError::Conflict { .. }) => {
                if let Some(original) = self
                    .store
                    .interchange_by_hash(&new.partner_id, &new.sha256)
                    .await?
                {
                    // Our own row: an earlier attempt's COMMIT reached the
                    // database although its answer was lost (a connection
                    // dropped during COMMIT), and the retry met it. That
                    // is this submission committed, not a duplicate.
                    if original.id == new.id {
                        self.committed(declarations);
                        return Ok(Stored::Committed);
                    }
                    return Ok(Stored::Duplicate(self.duplicate(original, now).await?));
                }
                if let Some(reference) = &new.control_reference
                    && let Some(original) = self
                        .store
                        .interchange_by_reference(&new.sender, reference)
                        .await?
                {
                    return Ok(Stored::ReferenceTaken(original));
                }
                Err(StoreError::Conflict {
                    what: format!("interchange {}", new.id),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// After a commit: wake the relay, count the declarations.
    fn committed(&self, declarations: &[crate::store::NewDeclaration]) {
        self.outbox_wake.notify_one();
        for d in declarations {
            Metrics::inc(if d.status == clearance::state::REJECTED {
                &self.metrics.declarations_rejected
            } else {
                &self.metrics.declarations_accepted
            });
        }
    }

    /// Counts a submission a transport refused before handing it over (a
    /// body over the size limit): received and refused, as the intake
    /// counts its own refusals.
    pub fn count_refused_unread(&self) {
        let m = self.metrics();
        Metrics::inc(&m.received);
        Metrics::inc(&m.refused);
    }

    /// Counts a request the HTTP API refused for want of a partner's API
    /// token (401).
    pub fn count_unauthorized(&self) {
        Metrics::inc(&self.metrics().unauthorized);
    }

    /// Records requests the HTTP API refused for want of a partner's API
    /// token (`HTTP401`, no partner, nothing read): `detail` says from
    /// where, how many and when (see the HTTP adapter's tally).
    pub async fn record_unauthorized(
        &self,
        detail: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.store
            .refuse(&crate::store::Refusal {
                partner_id: None,
                at: now,
                sha256: String::new(),
                size_bytes: -1,
                code: "HTTP401".to_owned(),
                detail: detail.to_owned(),
            })
            .await?;
        tracing::info!(%detail, "requests refused (401) recorded");
        Ok(())
    }

    /// Counts and records a submission a transport refused unread for its
    /// size (HUB413): who, when, how large, the hash of what was received
    /// when the transport holds it (empty otherwise), and why.
    pub async fn refuse_too_large(
        &self,
        partner: Option<&str>,
        size_bytes: i64,
        received: Option<&[u8]>,
        detail: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.refuse_unread(Code::TooLarge, partner, size_bytes, received, detail, now)
            .await
    }

    /// Counts and records a submission a transport refused unread with
    /// `code` (too large, a file it could not read): who, when, how large,
    /// the hash of what was received when the transport holds it (empty
    /// otherwise), and why.
    pub async fn refuse_unread(
        &self,
        code: Code,
        partner: Option<&str>,
        size_bytes: i64,
        received: Option<&[u8]>,
        detail: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.record_refused_unread(code.as_str(), partner, size_bytes, received, detail, now)
            .await?;
        // Counted once recorded: a write retried after a store failure
        // does not count it twice.
        self.count_refused_unread();
        Ok(())
    }

    /// Records and logs a submission refused unread, without counting it
    /// (the caller does: [`refuse_unread`](Self::refuse_unread) once it is
    /// recorded, the HTTP layer, which does not retry, whatever becomes
    /// of the write). `code`: a hub code, or `HTTP<status>` for a request
    /// the HTTP layer could not read.
    pub async fn record_refused_unread(
        &self,
        code: &str,
        partner: Option<&str>,
        size_bytes: i64,
        received: Option<&[u8]>,
        detail: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let sha256 = received.map(sha256_hex).unwrap_or_default();
        self.store
            .refuse(&crate::store::Refusal {
                partner_id: partner.map(str::to_owned),
                at: now,
                sha256,
                size_bytes,
                code: code.to_owned(),
                detail: detail.to_owned(),
            })
            .await?;
        tracing::warn!(partner = %partner.unwrap_or("-"), %code, size_bytes, %detail, "submission refused unread");
        Ok(())
    }

    /// The live declarations `by` names among those `scope` covers, newest
    /// first, at most two (enough to tell that a reference is ambiguous):
    /// those declared earlier in the same interchange (`known`, which holds
    /// only what is still live there), then the store's, except those an
    /// earlier message of the interchange replaced (`replaced`: the store
    /// still lists them live until the interchange commits).
    async fn live(
        &self,
        scope: &LiveScope,
        known: &[(String, clearance::Prior)],
        replaced: &std::collections::HashSet<String>,
        by: LiveReference<'_>,
    ) -> Result<Vec<clearance::Prior>, StoreError> {
        // `known` holds the partner's own declarations only.
        let mut found: Vec<clearance::Prior> = Vec::new();
        for (reference, p) in known.iter().rev() {
            if reference == by.text()
                && scope.covers_own(p.scope.as_deref())
                && !found.iter().any(|f| f.id == p.id)
            {
                found.push(p.clone());
            }
        }
        for d in self
            .store
            .live_declarations(scope, by, 2 + replaced.len() as i64)
            .await?
        {
            if !replaced.contains(&d.id) && !found.iter().any(|f| f.id == d.id) {
                found.push(clearance::Prior::from(&d));
            }
        }
        found.truncate(2);
        Ok(found)
    }

    /// What a mapped cargo report changes: nothing (an original, or no
    /// cargo report), the live report with its reference that it replaces
    /// or cancels (with its function), or, when there is none, the finding
    /// that refuses it (RUL008).
    async fn cargo_change(
        &self,
        partner: &Partner,
        m: &crate::mapping::Mapped,
        out: &[crate::store::NewDeclaration],
        seen: &[clearance::Prior],
    ) -> Result<CargoChange, StoreError> {
        let Some(canonical) = m.canonical.as_ref().filter(|_| m.target == "cargo_report") else {
            return Ok(CargoChange::None);
        };
        let text = |field: &str| canonical.get(field).and_then(|v| v.as_str());
        let Some(reference) = text("reference") else {
            return Ok(CargoChange::None);
        };
        let function = match text("function") {
            Some("amendment") => "amendment",
            Some("cancellation") => "cancellation",
            // A function the mapping did not take is its MAP003 already.
            Some("original") | None if !function_untranslated(m) => "original",
            _ => return Ok(CargoChange::None),
        };
        // The sender's live report with this reference: the newest of this
        // interchange first, then the stored one (not one an earlier
        // message of this interchange replaced).
        let live = match seen.iter().rev().find(|p| {
            p.lrn.as_deref() == Some(reference) && p.function.as_deref() != Some("cancellation")
        }) {
            Some(p) => Some(p.clone()),
            None => self
                .store
                .live_cargo_report(&partner.id, reference)
                .await?
                .filter(|stored| {
                    !out.iter()
                        .any(|d| d.supersedes.as_ref().is_some_and(|s| s.id == stored.id))
                })
                .map(|stored| clearance::Prior::from(&stored)),
        };
        let refused = |code, message: String| {
            CargoChange::Refused(Issue::error(
                code,
                crate::diag::Location {
                    path: Some("/reference".into()),
                    ..crate::diag::Location::default()
                },
                message,
            ))
        };
        Ok(match (function, live) {
            // An original with the reference of a live report of the same
            // sender's (the same manifest sent again under a new
            // interchange reference) would be a second live report, the
            // older one left live for good: refused, as a declaration's
            // reused LRN is.
            ("original", Some(_)) => refused(
                crate::diag::Code::RuleDuplicateLrn,
                format!(
                    "an original cargo report {reference:?}, but this sender has a live \
                     cargo report with that reference; replace it (BGM 1225 5) or cancel it \
                     (1)"
                ),
            ),
            ("original", None) => CargoChange::None,
            (function, Some(live)) => CargoChange::Replaces(function, live),
            (function, None) => refused(
                crate::diag::Code::RuleReference,
                format!(
                    "{} of cargo report {reference:?}, but this sender has no live cargo report \
                     with that reference (none was accepted, or it was cancelled)",
                    if function == "amendment" {
                        "an amendment"
                    } else {
                        "a cancellation"
                    }
                ),
            ),
        })
    }

    /// The declaration rows of the mapped messages of one interchange.
    async fn declarations(
        &self,
        partner: &Partner,
        reply: &clearance::Reply,
        mapped: &[(crate::mapping::Mapped, Vec<Issue>)],
        now: Timestamp,
    ) -> Result<Vec<crate::store::NewDeclaration>, StoreError> {
        let mut out = Vec::with_capacity(mapped.len());
        // LRNs declared earlier in this same interchange count as prior, and
        // so do the MRNs its amendments and cancellations quoted.
        let mut seen: Vec<(String, clearance::Prior)> = Vec::new();
        let mut seen_mrn: Vec<(String, clearance::Prior)> = Vec::new();
        // Cargo reports accepted earlier in this interchange.
        let mut seen_cargo: Vec<clearance::Prior> = Vec::new();
        // Stored declarations an earlier message of this interchange
        // replaced (amended or cancelled): no longer live for the next.
        let mut replaced: std::collections::HashSet<String> = std::collections::HashSet::new();
        // The declarants the partner is registered for: their LRNs are
        // unique across every partner registered for them.
        let registered = self.store.trader_ids(&partner.id).await?;
        // A finding about the message's LRN.
        let at_lrn = |code: crate::diag::Code, message: String| {
            Issue::error(
                code,
                crate::diag::Location {
                    path: Some("/lrn".into()),
                    ..crate::diag::Location::default()
                },
                message,
            )
        };
        for (m, findings) in mapped {
            let canonical = (m.target == "declaration")
                .then_some(m.canonical.as_ref())
                .flatten();
            let text = |field: &str| {
                canonical
                    .and_then(|c| c.get(field))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let lrn = text("lrn");
            let changes = matches!(
                text("function").as_deref(),
                Some("amendment" | "cancellation")
            );
            let declarant = canonical.and_then(crate::store::declarant_id);
            let own_scope = crate::store::lrn_scope(
                &partner.id,
                declarant,
                declarant.is_some_and(|id| registered.iter().any(|t| t == id)),
            );
            // An LRN refers to the declarations of its scope and to what
            // the partner itself declared for that declarant before it was
            // registered for it (or before migration 0009), so that an
            // original is not declared twice and an amendment finds it;
            // an amendment or cancellation that names no declarant (HMRC's
            // amendments carry only their changes) to any declaration of
            // the partner, unless that is ambiguous.
            let mut scopes = vec![own_scope.clone()];
            let senders = crate::store::lrn_scope(&partner.id, declarant, false);
            if senders != own_scope {
                scopes.push(senders);
            }
            let by_lrn = LiveScope {
                partner: partner.id.clone(),
                scopes,
                all_of_partner: changes && declarant.is_none(),
            };
            let by_mrn = LiveScope {
                partner: partner.id.clone(),
                scopes: vec![own_scope.clone()],
                all_of_partner: true,
            };
            // An amendment or cancellation that quotes an MRN refers to the
            // declaration holding it (its own LRN may be new, as in the WCO
            // Data Model's amendments); otherwise to the one with its LRN.
            let quoted = text("mrn").filter(|_| changes);
            let candidates = match (&quoted, &lrn) {
                (Some(mrn), _) => {
                    self.live(&by_mrn, &seen_mrn, &replaced, LiveReference::Mrn(mrn))
                        .await?
                }
                (None, Some(lrn)) => {
                    self.live(&by_lrn, &seen, &replaced, LiveReference::Lrn(lrn))
                        .await?
                }
                (None, None) => Vec::new(),
            };
            let mut taken = Vec::new();
            // An amendment or cancellation whose LRN names two live
            // declarations it may reach is refused rather than guessed:
            // without a declarant, an LRN the partner used for several
            // declarants; with one, the declarant's (through any partner
            // registered for it) and the one the partner filed for it
            // before it was registered.
            if let ([first, second, ..], None, Some(lrn), true) =
                (candidates.as_slice(), &quoted, &lrn, changes)
            {
                let which = if by_lrn.all_of_partner {
                    "the sender used it for several declarants; the message must name its \
                     declarant"
                } else {
                    "one of them was filed by this sender before it was registered for the \
                     declarant, so the LRN cannot tell which is meant; name the declaration by \
                     its MRN (WCO Declaration/ID)"
                };
                taken.push(at_lrn(
                    crate::diag::Code::RuleReference,
                    format!(
                        "LRN {lrn:?} names more than one live declaration this {} may change \
                         ({} and {}): {which}",
                        text("function").unwrap_or_default(),
                        first.id,
                        second.id,
                    ),
                ));
            }
            let prior = candidates.into_iter().next();
            // What the declaration's LRN will be unique in: an amendment or
            // cancellation takes the scope of the declaration it replaces.
            let stored_scope = match &prior {
                Some(p) if changes => p.scope.clone().unwrap_or_else(|| own_scope.clone()),
                _ => own_scope.clone(),
            };
            // An amendment or cancellation found by its MRN goes live under
            // its own LRN: one another live declaration holds already in
            // that scope is refused (RUL009), as an original's would be
            // (else the store's one-live-LRN index would refuse it at every
            // try).
            if let (Some(p), Some(_), Some(lrn)) = (&prior, &quoted, &lrn) {
                let within = LiveScope {
                    partner: partner.id.clone(),
                    scopes: vec![stored_scope.clone()],
                    all_of_partner: false,
                };
                let holder = self
                    .live(&within, &seen, &replaced, LiveReference::Lrn(lrn))
                    .await?;
                if let Some(h) = holder.into_iter().find(|h| h.id != p.id) {
                    taken.push(at_lrn(
                        crate::diag::Code::RuleDuplicateLrn,
                        format!(
                            "LRN {lrn:?} is the LRN of another live declaration of this declarant \
                             ({}, {}); an amendment or cancellation needs an LRN of its own or \
                             the one of the declaration it refers to",
                            h.id, h.status
                        ),
                    ));
                }
            }
            crate::mapping::locate(&mut taken, &m.provenance);
            let reply = clearance::Reply {
                message_reference: storable(&m.message),
                message_type: m.message_type.clone(),
                ..reply.clone()
            };
            // An amendment of changes only, or one without its kind, is
            // completed from the declaration it refers to and judged
            // whole (hub::amend); its findings are then the whole's.
            let completed;
            let (m, mut findings) = match &prior {
                Some(p) if amend::needs_prior(m) => {
                    let earlier = match out
                        .iter()
                        .find(|d: &&crate::store::NewDeclaration| d.id == p.id)
                    {
                        Some(d) => d.canonical_json.clone(),
                        None => self
                            .store
                            .declaration(&p.id)
                            .await?
                            .and_then(|d| d.canonical_json),
                    };
                    let earlier: serde_json::Value = earlier
                        .and_then(|json| serde_json::from_str(&json).ok())
                        .unwrap_or_default();
                    let (whole, errors) =
                        amend::complete(m, &earlier, &self.clearance.rule_settings(now));
                    completed = whole;
                    (&completed, errors)
                }
                _ => (m, findings.clone()),
            };
            findings.extend(taken);
            // An amendment or cancellation keeps the declarant of the
            // declaration it changes: one naming another (found by the MRN
            // it quotes, or changing the declarant's id) would leave the
            // LRN in the first declarant's scope while the declaration
            // named the second, whose partners could then reuse the LRN
            // and could not reach the declaration by it.
            if changes
                && let Some(p) = &prior
                && let Some(was) = p.scope.as_deref().and_then(crate::store::scope_declarant)
                && let Some(named) = m
                    .canonical
                    .as_ref()
                    .filter(|_| m.target == "declaration")
                    .and_then(crate::store::declarant_id)
                && named != was
            {
                let mut refused = vec![Issue::error(
                    crate::diag::Code::RuleReference,
                    crate::diag::Location {
                        path: Some("/declarant/id".into()),
                        ..crate::diag::Location::default()
                    },
                    format!(
                        "this {} names declarant {named:?}, but declaration {} it refers to is \
                         declarant {was:?}'s; an amendment cannot change the declarant: cancel \
                         it and file the declaration anew for {named:?}",
                        text("function").unwrap_or_default(),
                        p.id
                    ),
                )];
                crate::mapping::locate(&mut refused, &m.provenance);
                findings.extend(refused);
            }
            // A cargo report that replaces or cancels an earlier one (BGM
            // 1225 5 or 1) refers to the partner's live report with its
            // reference: found, it replaces it; not found, it is refused.
            // An original with the reference of a live one is refused.
            let cargo_change = match self.cargo_change(partner, m, &out, &seen_cargo).await? {
                CargoChange::None => None,
                CargoChange::Replaces(function, replaced) => Some((function, replaced)),
                CargoChange::Refused(finding) => {
                    let mut refused = vec![finding];
                    crate::mapping::locate(&mut refused, &m.provenance);
                    findings.extend(refused);
                    None
                }
            };
            let id = uuid::Uuid::now_v7().to_string();
            let mut d = self
                .clearance
                .intake(m, findings, &reply, prior.as_ref(), now, id);
            if let Some((function, replaced)) = cargo_change
                && d.status == clearance::state::ACCEPTED
            {
                let to = if function == "cancellation" {
                    clearance::state::CANCELLED
                } else {
                    clearance::state::AMENDED
                };
                let s = crate::store::Supersede {
                    id: replaced.id.clone(),
                    from: vec![clearance::state::ACCEPTED.to_owned()],
                    lane: None,
                    to: to.to_owned(),
                    detail: format!("{} by cargo report {}", to, d.id),
                };
                d.function = Some(function.to_owned());
                if function == "cancellation" {
                    self.clearance.answer_cancellation(&mut d, &reply, now);
                }
                self.clearance
                    .superseded(&mut d, &s, &replaced, &reply, &[], now);
                d.supersedes = Some(s);
                seen_cargo.retain(|p| p.id != replaced.id);
            }
            if d.target == "cargo_report" && d.status == clearance::state::ACCEPTED {
                seen_cargo.push(clearance::Prior {
                    id: d.id.clone(),
                    lrn: d.lrn.clone(),
                    status: d.status.clone(),
                    mrn: None,
                    function: d.function.clone(),
                    lane: None,
                    scope: None,
                });
            }
            if d.target == "declaration" {
                d.lrn_scope = Some(stored_scope);
            }
            if let Some(s) = d.supersedes.clone() {
                // Subscribers and agencies are told what happened to the
                // declaration replaced: its event, and a withdrawal notice
                // for each permit still pending (one of this interchange's
                // own declarations, or a stored one).
                let pending: Vec<(String, String)> = match out
                    .iter()
                    .find(|earlier: &&crate::store::NewDeclaration| earlier.id == s.id)
                {
                    Some(earlier) => earlier
                        .permits
                        .iter()
                        .map(|p| (p.id.clone(), p.agency.clone()))
                        .collect(),
                    None => self
                        .store
                        .permits_of(&s.id)
                        .await?
                        .into_iter()
                        .filter(|p| p.status == "pending")
                        .map(|p| (p.id, p.agency))
                        .collect(),
                };
                if let Some(replaced) = &prior {
                    self.clearance
                        .superseded(&mut d, &s, replaced, &reply, &pending, now);
                }
                // What this one replaces is no longer live in the rest of
                // the interchange (a cancellation's quoted MRN is marked
                // below).
                replaced.insert(s.id.clone());
                seen.retain(|(_, p)| p.id != s.id);
                seen_mrn.retain(|(_, p)| p.id != s.id);
            }
            if d.status != clearance::state::REJECTED {
                let now_prior = clearance::Prior {
                    id: d.id.clone(),
                    lrn: d.lrn.clone(),
                    status: d.status.clone(),
                    mrn: d.mrn.clone(),
                    function: d.function.clone(),
                    lane: d.lane.clone(),
                    scope: d.lrn_scope.clone(),
                };
                if let Some(mrn) = quoted {
                    // The quoted declaration is replaced by this one, or,
                    // for a cancellation, is no longer live.
                    let after = match &d.supersedes {
                        Some(s) if s.to == clearance::state::CANCELLED => clearance::Prior {
                            id: s.id.clone(),
                            lrn: prior.as_ref().and_then(|p| p.lrn.clone()),
                            status: s.to.clone(),
                            mrn: Some(mrn.clone()),
                            function: None,
                            lane: None,
                            scope: d.lrn_scope.clone(),
                        },
                        _ => now_prior.clone(),
                    };
                    seen_mrn.push((mrn, after));
                }
                if let Some(lrn) = lrn {
                    seen.push((lrn, now_prior));
                }
            }
            out.push(d);
        }
        Ok(out)
    }

    async fn duplicate(
        &self,
        original: StoredInterchange,
        now: Timestamp,
    ) -> Result<Submission, StoreError> {
        self.store
            .append_repeat_event(
                &original.id,
                now,
                "duplicate_received",
                &self
                    .via
                    .after("same bytes received again; original answer returned"),
                MAX_REPEAT_EVENTS,
            )
            .await?;
        let issues = serde_json::from_str(&original.issues_json).unwrap_or_default();
        Ok(Submission::Duplicate(Receipt {
            interchange: original,
            issues,
        }))
    }

    async fn duplicate_reference(
        &self,
        partner: &Partner,
        sha256: &str,
        bytes: &[u8],
        parsed: &Parsed,
        original: StoredInterchange,
        now: Timestamp,
    ) -> Result<Submission, StoreError> {
        // The same bytes under the same reference (a redelivery that raced
        // the first copy's commit) are a duplicate, not a clash.
        if original.sha256 == sha256 && original.partner_id == partner.id {
            return self.duplicate(original, now).await;
        }
        let reference = parsed.interchange.control_reference.clone();
        let detail = format!(
            "interchange control reference {reference:?} of sender {:?} was already used by interchange {}",
            partner.id, original.id
        );
        // A CONTRL rejecting the new interchange with 0085 code 26, the
        // first error, so that its UCI names it (as the 409 does) rather
        // than another error of the UNB.
        let mut dup = parsed.clone();
        dup.issues.insert(
            0,
            Issue::error(
                Code::Duplicate,
                crate::diag::Location {
                    interchange: Some(reference),
                    segment: Some(1),
                    tag: Some("UNB".into()),
                    element: Some(5),
                    ..Default::default()
                },
                detail.clone(),
            ),
        );
        dup.error_count += 1;
        let ack = contrl_for(
            &dup,
            &uuid::Uuid::now_v7().to_string(),
            &self.clearance.hub_id,
            &partner.id,
            now,
        );
        self.store
            .append_repeat_event(
                &original.id,
                now,
                "duplicate_reference_refused",
                &format!("other bytes (sha256 {sha256}) with the same reference refused"),
                MAX_REPEAT_EVENTS,
            )
            .await?;
        let refused = Refused {
            reason: RefusalReason::DuplicateReference {
                original: original.id,
            },
            code: Code::Duplicate,
            detail,
            acknowledgement: Some(ack),
        };
        self.record_refusal(partner, sha256, bytes.len(), refused, now)
            .await
    }

    async fn record_refusal(
        &self,
        partner: &Partner,
        sha256: &str,
        size: usize,
        refused: Refused,
        now: Timestamp,
    ) -> Result<Submission, StoreError> {
        self.store
            .refuse(&Refusal {
                partner_id: Some(partner.id.clone()),
                at: now,
                sha256: sha256.to_owned(),
                size_bytes: size as i64,
                code: refused.code.as_str().to_owned(),
                // With the answer sent, when there is one (the CONTRL of a
                // reused reference): it is stored nowhere else.
                detail: {
                    let detail = self.via.after(&refused.detail);
                    match &refused.acknowledgement {
                        Some(ack) => format!("{detail}; answered with {}", ack.trim_end()),
                        None => detail,
                    }
                },
            })
            .await?;
        tracing::warn!(partner = %partner.id, code = %refused.code, detail = %refused.detail, via = %self.via, "submission refused");
        Ok(Submission::Refused(refused))
    }
}

/// The event announcing a newly stored interchange on `tradehub.events`
/// (routing key `interchange.<status>`).
fn status_event(new: &NewInterchange) -> OutboxMessage {
    let payload = serde_json::json!({
        "type": format!("interchange.{}", new.status),
        "interchange": {
            "id": new.id,
            "partner_id": new.partner_id,
            "sender": new.sender,
            "control_reference": new.control_reference,
            "status": new.status,
            "received_at": new.received_at.to_string(),
            "message_count": new.message_count,
            "error_count": new.error_count,
        }
    });
    outbox::json_message(
        outbox::EVENTS_EXCHANGE,
        format!("interchange.{}", new.status),
        format!("{}/{}", new.id, new.status),
        &payload,
    )
}

/// The CONTRL for a stored interchange; its reference comes from the
/// interchange id so that it is unique.
/// An interchange marked as a test (UNB 0035) is rejected with 0085 code
/// 25, "test indicator not supported": the hub has no test mode, and a
/// test must never become a live declaration or permit request. The CONTRL
/// says so at UNB 0035.
pub(crate) fn refuse_test(parsed: &mut Parsed) {
    let ic = &parsed.interchange;
    if ic.test_indicator.is_empty() {
        return;
    }
    // A value that is no test code (`0` written for "not a test") is not
    // a test marking: it stands as the error it is (E0012, invalid value,
    // at 0035), not hidden behind "test not supported".
    let invalid = parsed.issues.iter().any(|i| {
        i.is_error()
            && i.code == Code::InvalidValue
            && i.location.tag.as_deref() == Some("UNB")
            && i.location.element == Some(11)
    });
    if invalid {
        return;
    }
    let detail = format!(
        "the interchange is marked as a test (UNB 0035 {:?}); this hub processes live interchanges only: send it without the test indicator, under a new control reference (this one is now taken)",
        ic.test_indicator
    );
    reject_at_unb(parsed, Code::TestIndicatorNotSupported, 11, None, detail);
}

/// True when a UNA advised separators in error (a digit, or one character
/// for two purposes): the UNB was then read with other separators than it
/// was written with. (Only separators: a bad decimal mark leaves the UNB
/// as written.)
fn separators_in_error(parsed: &Parsed) -> bool {
    parsed.issues.iter().any(|i| {
        i.is_error()
            && i.location.tag.as_deref() == Some("UNA")
            && i.code == Code::InvalidAsServiceCharacter
    })
}

/// Rejects the interchange for what its UNB says at `element` (and
/// `component`), an error the CONTRL reports at UCI.
fn reject_at_unb(
    parsed: &mut Parsed,
    code: Code,
    element: u16,
    component: Option<u16>,
    detail: String,
) {
    let ic = &parsed.interchange;
    let location = crate::diag::Location {
        interchange: (!ic.control_reference.is_empty()).then(|| ic.control_reference.clone()),
        segment: Some(1),
        tag: Some("UNB".into()),
        element: Some(element),
        component,
        ..crate::diag::Location::default()
    };
    // First, so that the CONTRL's UCI (which holds one error) names the
    // reason the hub acts on, not another error of the UNB.
    parsed
        .issues
        .insert(0, Issue::error(code, location, detail));
    parsed.error_count += 1;
}

/// An interchange addressed (UNB S003 0010) to someone other than this hub
/// is rejected with 0085 code 7, "interchange recipient not actual
/// recipient": it is not taken as a declaration meant for this
/// administration, and the CONTRL is signed by the hub, not by the party
/// named.
pub(crate) fn refuse_misaddressed(parsed: &mut Parsed, clearance: &clearance::Clearance) {
    let ic = &parsed.interchange;
    if ic.header.is_none() || ic.recipient.id.is_empty() || clearance.is_recipient(&ic.recipient.id)
    {
        return;
    }
    let detail = format!(
        "the interchange is addressed to {:?} (UNB S003 0010), not to this hub ({:?}): send it to {:?} under a new control reference",
        ic.recipient.id, clearance.hub_id, clearance.hub_id
    );
    reject_at_unb(parsed, Code::RecipientNotActual, 3, Some(1), detail);
}

/// The CONTRL of `parsed`, signed by the hub (`hub_id`) where the UNB does
/// not name the recipient, and addressed to `partner` (the authenticated
/// sender) where it does not name the sender.
fn contrl_for(parsed: &Parsed, id: &str, hub_id: &str, partner: &str, now: Timestamp) -> String {
    let unique: String = id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .rev()
        .take(13)
        .collect();
    let options = contrl::Options {
        hub_id: hub_id.to_owned(),
        fallback_recipient: partner.to_owned(),
        ..contrl::Options::at(
            now,
            parsed.interchange.syntax_version == "4",
            unique.to_uppercase(),
        )
    };
    contrl::build(parsed, &options).text()
}

/// Interchanges up to this size are parsed, validated and mapped on the
/// task that received them: handing them to a blocking thread and back
/// costs more than the work (tens of microseconds).
const INLINE_BYTES: usize = 64 * 1024;

/// A large submission's turn (see [`cpu_work`]): held until the
/// submission is committed or given up, then the next may start.
#[must_use = "the turn bounds memory only while it is held"]
pub(super) struct Turn(#[allow(dead_code)] Option<tokio::sync::OwnedSemaphorePermit>);

/// Runs the CPU work of one submission of `size` bytes: inline when small,
/// on a blocking thread otherwise, so large files do not hold up the async
/// workers. A panic is an error of this submission either way.
///
/// Large submissions take turns, one per core: what their parse and
/// mapping make (about 110 to 140 times their size in memory: the
/// messages' texts, canonical objects and provenance, then the rows to
/// write) lives until they are committed, so the caller keeps the
/// returned [`Turn`] until then. Handing it back after the parse let every
/// waiting submission parse and then hold its results while the store
/// wrote the earlier ones: four 13 MB interchanges took 5.7 GB at once.
/// More at once would not finish sooner either. The others wait their
/// turn (their request deadline still runs).
/// An EDIFACT interchange parsed as intake parses it: every message kept
/// with its text (what the mappings read) and validated against its
/// directory release, so that the CONTRL reports structure errors as well
/// as syntax errors.
pub(super) fn parse_validated(
    bytes: &[u8],
    limits: Limits,
    directories: &Arc<crate::schema::Directories>,
) -> Parsed {
    let options = ParseOptions {
        limits,
        keep_messages: true,
        decode_messages: false,
        message_text: true,
    };
    edifact::Parser::new(bytes, options)
        .with_directories(directories.clone())
        .run(|_, _| {})
        .unwrap_or_default()
}

pub(super) async fn cpu_work<T, F>(size: usize, work: F) -> Result<(T, Turn), StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    cpu_work_in(large_work_slots(), size, work).await
}

/// [`cpu_work`] with the turns of `slots`.
async fn cpu_work_in<T, F>(
    slots: &std::sync::Arc<tokio::sync::Semaphore>,
    size: usize,
    work: F,
) -> Result<(T, Turn), StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let crashed = |retryable| StoreError::Database {
        source: sqlx::Error::WorkerCrashed,
        retryable,
    };
    if size <= INLINE_BYTES {
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
            .map(|done| (done, Turn(None)))
            .map_err(|_| crashed(false));
    }
    // The turn goes with the work while it runs, not with this future: a
    // request whose deadline passes stops waiting, but the parse it
    // started runs on and keeps the turn until it ends (its results are
    // then dropped with the turn).
    let turn = slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| crashed(true))?;
    tokio::task::spawn_blocking(move || (work(), Turn(Some(turn))))
        .await
        .map_err(|e| crashed(!e.is_panic()))
}

/// The slots of [`cpu_work`]'s large submissions: one per core.
fn large_work_slots() -> &'static std::sync::Arc<tokio::sync::Semaphore> {
    static SLOTS: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> =
        std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        std::sync::Arc::new(tokio::sync::Semaphore::new(cores))
    })
}

/// A new random API token (shown once) and its stored hash.
pub fn new_token() -> Result<(String, String), getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    let token = format!("th_{}", hex(&bytes));
    let hash = sha256_hex(token.as_bytes());
    Ok((token, hash))
}

/// A reference as the store keeps it: a NUL (outside every syntax level's
/// repertoire, E0021, and which PostgreSQL's text cannot hold) becomes
/// U+FFFD, so that the interchange is recorded and answered with its
/// rejecting CONTRL instead of failing to store.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Permits expire only while the hub hears the agencies: without a
    /// broker; with one, once connected and the replies waiting at that
    /// connection are taken (what a task of an earlier connection says does
    /// not count), or once the consumer stopped for good.
    #[test]
    fn the_agencies_are_heard_once_the_waiting_replies_are_taken() {
        let broker = BrokerState::default();
        assert!(broker.agencies_heard(), "no broker configured");
        broker.set_configured();
        assert!(!broker.agencies_heard());
        broker.set_connected(true);
        let first = broker.connection();
        assert!(!broker.agencies_heard(), "replies may be waiting");
        broker.set_replies_taken(first);
        assert!(broker.agencies_heard());
        broker.set_connected(false);
        assert!(!broker.agencies_heard(), "disconnected");
        broker.set_connected(true);
        let second = broker.connection();
        assert_ne!(first, second);
        broker.set_replies_taken(first);
        assert!(!broker.agencies_heard(), "said of the earlier connection");
        broker.set_replies_taken(second);
        assert!(broker.agencies_heard());
        broker.set_connected(false);
        broker.set_stopped();
        assert!(broker.agencies_heard(), "the consumer stopped for good");
    }

    /// Large submissions are worked on at most one per core at a time;
    /// small ones are not held up by them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_submissions_take_turns() {
        // Turns of the test's own (tests of one process run at once).
        let pool = Arc::new(tokio::sync::Semaphore::new(2));
        let slots = pool.available_permits();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..(slots * 4) {
            let (running, most, pool) = (running.clone(), most.clone(), pool.clone());
            // Each lets its turn go when done, as a submission does once
            // committed (a turn kept in a finished task's output would hold
            // up the others until it is joined).
            tasks.push(tokio::spawn(async move {
                cpu_work_in(&pool, INLINE_BYTES + 1, move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .map(|(done, _turn)| done)
            }));
        }
        for task in tasks {
            let done = task.await;
            assert!(matches!(done, Ok(Ok(()))));
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=slots).contains(&most), "{most} at once, {slots} slots");
        // A small one runs at once.
        let small = cpu_work(10, || 7).await;
        assert!(matches!(small, Ok((7, _))));
    }

    /// A large submission's turn is held after its parse until the caller
    /// lets it go (after the commit), so the results of no more than one
    /// large submission per core are held at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_submission_keeps_its_turn_until_it_lets_it_go() {
        let slots = Arc::new(tokio::sync::Semaphore::new(2));
        let free = slots.available_permits();
        let Ok((done, turn)) = cpu_work_in(&slots, INLINE_BYTES + 1, || 1).await else {
            panic!("the work failed");
        };
        assert_eq!(done, 1);
        assert_eq!(slots.available_permits(), free - 1, "the turn is held");
        drop(turn);
        assert_eq!(slots.available_permits(), free);
        // A small submission takes no turn.
        let Ok((_, small)) = cpu_work_in(&slots, 10, || 1).await else {
            panic!("the work failed");
        };
        assert_eq!(slots.available_permits(), free);
        drop(small);
    }
}
