//! Clearance storage: declarations mapped from accepted messages, the
//! permit requests routed to agencies, the responses sent back, and the
//! declaration events of the audit trail. Every state change happens in one
//! transaction with its events and its outbox messages.
//!
//! Concurrency: a decision first touches its declaration row (a row lock on
//! PostgreSQL, the write lock on SQLite), then updates the permit only while
//! it is still pending, then reads all permits of the declaration. Two
//! decisions on one declaration therefore run one after the other and the
//! second sees the first; a repeated decision finds the permit decided and
//! changes nothing.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Event, NewInterchange, OutboxMessage, Store, StoreError, value_rows};
use crate::timestamp::Timestamp;

/// A declaration (or manifest, passenger list) to store with its interchange.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewDeclaration {
    pub id: String,
    pub message_reference: String,
    pub message_type: String,
    /// Canonical type: `declaration`, `cargo_report`, `passenger_list`.
    pub target: String,
    pub lrn: Option<String>,
    /// What its LRN is unique in (see [`lrn_scope`]): one live declaration
    /// per scope and LRN.
    pub lrn_scope: Option<String>,
    /// Given when customs accepts the declaration (kept by an amendment).
    pub mrn: Option<String>,
    pub function: Option<String>,
    pub status: String,
    pub lane: Option<String>,
    pub canonical_json: Option<String>,
    pub issues_json: String,
    /// How to answer the sender (format, envelope references), as JSON.
    pub reply_json: String,
    /// Events of this declaration, in order.
    pub events: Vec<(String, String)>,
    /// Cargo references it carries, `(kind, reference)` (see
    /// `hub::cargo::cargo_references`); duplicates are written once.
    pub references: Vec<(String, String)>,
    pub permits: Vec<NewPermit>,
    pub responses: Vec<NewResponse>,
    pub outbox: Vec<OutboxMessage>,
    /// An earlier declaration this one amends or cancels, and the status it
    /// moves to.
    pub supersedes: Option<Supersede>,
    /// Notices to agencies, each for a permit of the declaration replaced:
    /// written only for the permits that were still pending when it was
    /// (a permit answered meanwhile gets none).
    pub withdrawal_notices: Vec<(String, OutboxMessage)>,
}

/// The scope an LRN is unique in: the declarant's, `declarant:<id>`, when
/// the sending partner is registered for that identifier (its trader
/// identifiers), so that every partner registered for the declarant shares
/// it; otherwise the sender's view of that declarant,
/// `partner:<n>:<partner>/<id>` (`<n>` the length of the partner id in
/// characters, so that no partner id and declarant id containing `/` give
/// another pair's scope; `<id>` empty without a declarant), as an
/// identifier the hub cannot vouch for must not reach other senders'
/// declarations. Migration 0009 writes the same for earlier rows.
pub fn lrn_scope(partner: &str, declarant: Option<&str>, registered: bool) -> String {
    match declarant {
        Some(id) if registered => format!("declarant:{id}"),
        _ => format!(
            "partner:{}:{partner}/{}",
            partner.chars().count(),
            declarant.unwrap_or("")
        ),
    }
}

/// The declarant an LRN scope of [`lrn_scope`] was made for; `None` when
/// it names none.
pub fn scope_declarant(scope: &str) -> Option<&str> {
    let declarant = match scope.strip_prefix("declarant:") {
        Some(id) => id,
        None => {
            // `partner:{chars}:{partner}/{declarant}`: the partner's id is
            // skipped by its length, as it may hold a slash.
            let rest = scope.strip_prefix("partner:")?;
            let (chars, rest) = rest.split_once(':')?;
            let chars: usize = chars.parse().ok()?;
            let skip = rest.char_indices().nth(chars).map(|(i, _)| i)?;
            rest.get(skip..)?.strip_prefix('/')?
        }
    };
    (!declarant.is_empty()).then_some(declarant)
}

/// The declarant identifier of a canonical declaration as LRN scopes use
/// it: `declarant.id` without surrounding spaces, `None` when empty.
/// (Migration 0009 reads stored declarations the same way.)
pub fn declarant_id(canonical: &serde_json::Value) -> Option<&str> {
    canonical
        .get("declarant")
        .and_then(|d| d.get("id"))
        .and_then(|v| v.as_str())
        .map(|id| id.trim_matches(' '))
        .filter(|id| !id.is_empty())
}

/// Where [`Store::live_declarations`] looks: the declarations of these LRN
/// scopes and, with `all_of_partner`, every declaration of the partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveScope {
    pub partner: String,
    pub scopes: Vec<String>,
    pub all_of_partner: bool,
}

impl LiveScope {
    /// Whether a declaration of the partner itself, in LRN scope `scope`,
    /// is one this looks at.
    pub fn covers_own(&self, scope: Option<&str>) -> bool {
        self.all_of_partner || scope.is_some_and(|s| self.scopes.iter().any(|x| x == s))
    }
}

/// How [`Store::live_declarations`] finds the declaration referred to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveReference<'a> {
    /// The sender's own local reference number.
    Lrn(&'a str),
    /// The movement reference number customs gave it.
    Mrn(&'a str),
}

impl LiveReference<'_> {
    /// The reference itself.
    pub fn text(&self) -> &str {
        match self {
            LiveReference::Lrn(text) | LiveReference::Mrn(text) => text,
        }
    }
}

/// An earlier declaration moved by an amendment or cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supersede {
    pub id: String,
    /// Only from one of these statuses (else the whole intake conflicts).
    pub from: Vec<String>,
    /// Only while its risk lane is still this one (an amendment, which
    /// takes its lane into account: an officer's hold committed after it
    /// was read makes the intake conflict and read it again).
    pub lane: Option<String>,
    pub to: String,
    pub detail: String,
}

/// A permit request to store (and publish through the outbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPermit {
    pub id: String,
    pub agency: String,
    pub rule: String,
    pub due_at: Timestamp,
    pub request_json: String,
}

/// A response sent to the declarant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResponse {
    /// `cusres`, `aperak`, `res` (WCO) or `json`.
    pub kind: String,
    pub status: String,
    pub body: String,
    /// The outbox message it goes out as (see [`OutboxMessage`]), whose
    /// publishing marks it published.
    pub message_id: String,
}

/// A stored declaration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredDeclaration {
    pub id: String,
    pub interchange_id: String,
    pub message_reference: String,
    pub message_type: String,
    pub target: String,
    pub partner_id: String,
    pub lrn: Option<String>,
    /// What its LRN is unique in (see [`lrn_scope`]).
    #[serde(skip)]
    pub lrn_scope: Option<String>,
    /// The movement reference number, once customs accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrn: Option<String>,
    pub function: Option<String>,
    pub status: String,
    pub lane: Option<String>,
    #[serde(skip)]
    pub canonical_json: Option<String>,
    #[serde(skip)]
    pub issues_json: String,
    #[serde(skip)]
    pub reply_json: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A stored permit request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredPermit {
    pub id: String,
    pub declaration_id: String,
    pub agency: String,
    pub rule: String,
    /// `pending`, `granted`, `refused`, `conditional`, `expired`, `withdrawn`.
    pub status: String,
    pub requested_at: String,
    pub due_at: String,
    pub decided_at: Option<String>,
    #[serde(skip)]
    pub request_json: String,
    #[serde(skip)]
    pub decision_json: Option<String>,
}

/// A stored response.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredResponse {
    pub seq: i64,
    pub kind: String,
    pub status: String,
    pub body: String,
    pub created_at: String,
    /// The message id it went out with (the AMQP `message_id`, the drop
    /// folder file's stem); none for answers stored before it was kept.
    pub message_id: Option<String>,
    /// When the outbox relay had it published (confirmed by the broker,
    /// written to the drop folder, given to the in-process transport);
    /// none while it waits.
    pub published_at: Option<String>,
}

/// What a state change writes besides the new status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transition {
    /// The declaration's new status (`None`: unchanged).
    pub status: Option<String>,
    pub events: Vec<(String, String)>,
    pub responses: Vec<NewResponse>,
    pub outbox: Vec<OutboxMessage>,
    /// Withdraw the declaration's permits still pending (a refusal has
    /// decided it; their events and notices are among the above).
    pub withdraw_pending: bool,
    /// The declaration's new risk lane (`None`: unchanged); an officer's
    /// order to examine the goods.
    pub lane: Option<String>,
}

/// The outcome of recording a permit decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// No permit with this id.
    NotFound,
    /// The permit was decided before; nothing changed.
    AlreadyDecided(StoredPermit),
    /// Recorded; the declaration as it now is.
    Recorded(StoredDeclaration),
}

/// Statuses after which a declaration does not change any more by itself.
pub const FINAL_STATUSES: &[&str] = &["rejected", "released", "cancelled", "amended"];

/// Declarations a cargo timeline shows at most: the latest ones.
pub const TIMELINE_DECLARATIONS: usize = 500;

/// Whose view of a cargo timeline: customs officers see every declaration;
/// a partner its own and, for an agency's account, those its agency has a
/// permit on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineViewer {
    Everything,
    Partner { id: String, agency: Option<String> },
}

const DECLARATION_COLUMNS: &str = "id, interchange_id, message_reference, message_type, target, partner_id, lrn, \
     function, status, lane, canonical_json, issues_json, reply_json, created_at, updated_at, mrn, lrn_scope";
const PERMIT_COLUMNS: &str = "id, declaration_id, agency, rule, status, requested_at, due_at, decided_at, \
     request_json, decision_json";

impl Store {
    /// Writes one declaration with everything it carries, inside the
    /// interchange's transaction.
    pub(super) async fn insert_declaration(
        &self,
        tx: &mut Transaction<'static, Any>,
        interchange: &NewInterchange,
        d: &NewDeclaration,
    ) -> Result<(), StoreError> {
        let at = interchange.received_at.to_string();
        // The declaration an amendment or cancellation replaces leaves the
        // live ones first: one LRN has one live declaration (the index
        // `declarations_live_lrn`).
        if let Some(s) = &d.supersedes {
            // What happens to the replaced declaration happens now, at the
            // commit: after anything already on its trail (an agency's
            // decision committed while this interchange was parsed), not
            // at the time the interchange was received.
            let now = Timestamp::now().to_string();
            let moved = self
                .move_declaration(tx, &s.id, &s.from, s.lane.as_deref(), &s.to, &now)
                .await?;
            if !moved {
                let lane = s
                    .lane
                    .as_deref()
                    .map(|l| format!(" in the {l} lane"))
                    .unwrap_or_default();
                return Err(StoreError::StateChanged {
                    what: format!(
                        "declaration {} is no longer {}{lane} (it changed while declaration {} was stored)",
                        s.id,
                        s.from.join(" or "),
                        d.id
                    ),
                });
            }
            let withdrawn = self.withdraw_permits(tx, &s.id, &now).await?;
            let notices: Vec<OutboxMessage> = d
                .withdrawal_notices
                .iter()
                .filter(|(permit, _)| withdrawn.iter().any(|(id, _)| id == permit))
                .map(|(_, message)| message.clone())
                .collect();
            self.write_outbox(tx, &notices, &now).await?;
            // Each permit withdrawn is on the trail, as every other
            // permit outcome is.
            for (permit, agency) in &withdrawn {
                self.declaration_event(
                    tx,
                    &interchange.id,
                    &s.id,
                    &now,
                    "permit_withdrawn",
                    &format!("permit {permit} of {agency} withdrawn: {}", s.detail),
                )
                .await?;
            }
            self.declaration_event(tx, &interchange.id, &s.id, &now, &s.to, &s.detail)
                .await?;
        }
        let sql = self.sql(&format!(
            "INSERT INTO declarations ({DECLARATION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ));
        sqlx::query(&sql)
            .bind(&d.id)
            .bind(&interchange.id)
            .bind(&d.message_reference)
            .bind(&d.message_type)
            .bind(&d.target)
            .bind(&interchange.partner_id)
            .bind(d.lrn.clone())
            .bind(d.function.clone())
            .bind(&d.status)
            .bind(d.lane.clone())
            .bind(d.canonical_json.clone())
            .bind(&d.issues_json)
            .bind(&d.reply_json)
            .bind(at.clone())
            .bind(at.clone())
            .bind(d.mrn.clone())
            .bind(d.lrn_scope.clone())
            .execute(&mut **tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                // Two declarations drew the same MRN (the same second and
                // the same 42 drawn bits): worked out again, it gets
                // another.
                StoreError::Conflict { what } if what.contains("declarations_live_mrn") || what.contains("declarations.mrn") => {
                    StoreError::StateChanged {
                        what: format!("the MRN drawn for declaration {} is taken", d.id),
                    }
                }
                // Another declaration with this LRN went live after intake
                // looked (a submission committed meanwhile).
                StoreError::Conflict { what } if what.contains("declarations_live_lrn") || what.contains("declarations.lrn_scope, declarations.lrn") => {
                    StoreError::StateChanged {
                        what: format!(
                            "another live declaration with LRN {} was stored while declaration {} was",
                            d.lrn.as_deref().unwrap_or(""),
                            d.id
                        ),
                    }
                }
                // Another cargo report of the sender with this number went
                // live meanwhile (`declarations_live_cargo`).
                StoreError::Conflict { what } if what.contains("declarations_live_cargo") || what.contains("declarations.partner_id, declarations.lrn") => {
                    StoreError::StateChanged {
                        what: format!(
                            "another live cargo report numbered {} was stored while cargo report {} was",
                            d.lrn.as_deref().unwrap_or(""),
                            d.id
                        ),
                    }
                }
                other => other,
            })?;
        self.declaration_events_in(tx, &interchange.id, &d.id, &at, &d.events)
            .await?;
        self.write_references(tx, &d.id, &d.references).await?;
        let sql = self.sql(&format!(
            "INSERT INTO permits ({PERMIT_COLUMNS}) VALUES ($1, $2, $3, $4, 'pending', $5, $6, NULL, $7, NULL)"
        ));
        for p in &d.permits {
            sqlx::query(&sql)
                .bind(&p.id)
                .bind(&d.id)
                .bind(&p.agency)
                .bind(&p.rule)
                .bind(at.clone())
                .bind(p.due_at.to_string())
                .bind(&p.request_json)
                .execute(&mut **tx)
                .await?;
        }
        self.write_responses(tx, &d.id, &d.responses, &at).await?;
        self.write_outbox(tx, &d.outbox, &at).await?;
        Ok(())
    }

    async fn move_declaration(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &str,
        from: &[String],
        lane: Option<&str>,
        to: &str,
        at: &str,
    ) -> Result<bool, StoreError> {
        let placeholders: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 4)).collect();
        let mut clause = if from.is_empty() {
            String::new()
        } else {
            format!(" AND status IN ({})", placeholders.join(", "))
        };
        if lane.is_some() {
            clause.push_str(&format!(" AND lane = ${}", from.len() + 4));
        }
        let sql = self.sql(&format!(
            "UPDATE declarations SET status = $1, updated_at = $2 WHERE id = $3{clause}"
        ));
        let mut query = sqlx::query(&sql).bind(to).bind(at).bind(id);
        for f in from {
            query = query.bind(f);
        }
        if let Some(lane) = lane {
            query = query.bind(lane);
        }
        Ok(query.execute(&mut **tx).await?.rows_affected() == 1)
    }

    /// Withdraws the declaration's pending permits; returns their ids and
    /// agencies.
    async fn withdraw_permits(
        &self,
        tx: &mut Transaction<'static, Any>,
        declaration: &str,
        at: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let sql = self.sql(
            "UPDATE permits SET status = 'withdrawn', decided_at = $1 \
             WHERE declaration_id = $2 AND status = 'pending' RETURNING id, agency",
        );
        let rows = sqlx::query(&sql)
            .bind(at)
            .bind(declaration)
            .fetch_all(&mut **tx)
            .await?;
        let mut withdrawn: Vec<(String, String)> = rows
            .iter()
            .filter_map(|row| Some((row.try_get(0).ok()?, row.try_get(1).ok()?)))
            .collect();
        // In a stable order, whatever order the database returns.
        withdrawn.sort();
        Ok(withdrawn)
    }

    /// Records an event of a declaration (in a transaction of the caller).
    pub(super) async fn declaration_event(
        &self,
        conn: &mut sqlx::AnyConnection,
        interchange: &str,
        declaration: &str,
        at: &str,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let sql = self.sql(
            "INSERT INTO events (interchange_id, declaration_id, at, kind, detail) \
             VALUES ($1, $2, $3, $4, $5)",
        );
        sqlx::query(&sql)
            .bind(interchange)
            .bind(declaration)
            .bind(at)
            .bind(kind)
            .bind(detail)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Several events of one declaration in one statement.
    async fn declaration_events_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        interchange: &str,
        declaration: &str,
        at: &str,
        events: &[(String, String)],
    ) -> Result<(), StoreError> {
        for chunk in events.chunks(100) {
            let sql = self.sql(&format!(
                "INSERT INTO events (interchange_id, declaration_id, at, kind, detail) VALUES {}",
                value_rows(chunk.len(), 5)
            ));
            let mut query = sqlx::query(&sql);
            for (kind, detail) in chunk {
                query = query
                    .bind(interchange)
                    .bind(declaration)
                    .bind(at)
                    .bind(kind.as_str())
                    .bind(detail.as_str());
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Cargo references in one statement per 100; a pair given twice is
    /// written once.
    async fn write_references(
        &self,
        tx: &mut Transaction<'static, Any>,
        declaration: &str,
        references: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut seen = std::collections::HashSet::with_capacity(references.len());
        let unique: Vec<&(String, String)> =
            references.iter().filter(|r| seen.insert(*r)).collect();
        for chunk in unique.chunks(100) {
            let sql = self.sql(&format!(
                "INSERT INTO cargo_refs (reference, declaration_id, kind) VALUES {}",
                value_rows(chunk.len(), 3)
            ));
            let mut query = sqlx::query(&sql);
            for (kind, reference) in chunk {
                query = query
                    .bind(reference.as_str())
                    .bind(declaration)
                    .bind(kind.as_str());
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    async fn write_responses(
        &self,
        tx: &mut Transaction<'static, Any>,
        declaration: &str,
        responses: &[NewResponse],
        at: &str,
    ) -> Result<(), StoreError> {
        let sql = self.sql(
            "INSERT INTO responses (declaration_id, kind, status, body, created_at, message_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        );
        for r in responses {
            sqlx::query(&sql)
                .bind(declaration)
                .bind(&r.kind)
                .bind(&r.status)
                .bind(&r.body)
                .bind(at)
                .bind(&r.message_id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Outbox rows in one statement per 100, in order (their `seq`
    /// follows the order of the VALUES list).
    pub(super) async fn write_outbox(
        &self,
        tx: &mut Transaction<'static, Any>,
        outbox: &[OutboxMessage],
        at: &str,
    ) -> Result<(), StoreError> {
        for chunk in outbox.chunks(100) {
            let sql = self.sql(&format!(
                "INSERT INTO outbox (exchange, routing_key, message_id, content_type, payload, correlation_id, created_at) VALUES {}",
                value_rows(chunk.len(), 7)
            ));
            let mut query = sqlx::query(&sql);
            for m in chunk {
                query = query
                    .bind(m.exchange.as_str())
                    .bind(m.routing_key.as_str())
                    .bind(m.message_id.as_str())
                    .bind(m.content_type.as_str())
                    .bind(m.payload.clone())
                    .bind(m.correlation_id.as_deref())
                    .bind(at);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Gives a partner account an agency role (`None` removes it).
    pub async fn set_partner_agency(
        &self,
        id: &str,
        agency: Option<&str>,
    ) -> Result<bool, StoreError> {
        let _writing = self.write_lock().await;
        let sql = self.sql("UPDATE partners SET agency = $1 WHERE id = $2");
        let query = sqlx::query(&sql).bind(agency.map(str::to_owned)).bind(id);
        let done = self.execute_as_operator(query).await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn declaration(&self, id: &str) -> Result<Option<StoredDeclaration>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {DECLARATION_COLUMNS} FROM declarations WHERE id = $1"
        ));
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(declaration_row).transpose()
    }

    /// The partner's live (accepted) cargo report with this reference, the
    /// newest: what a replacement or cancellation of it refers to. (A
    /// cancellation is stored accepted but is no report to replace.)
    pub async fn live_cargo_report(
        &self,
        partner: &str,
        reference: &str,
    ) -> Result<Option<StoredDeclaration>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {DECLARATION_COLUMNS} FROM declarations \
             WHERE partner_id = $1 AND target = 'cargo_report' AND lrn = $2 AND status = 'accepted' \
             AND (function IS NULL OR function <> 'cancellation') \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        ));
        let row = sqlx::query(&sql)
            .bind(partner)
            .bind(reference)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(declaration_row).transpose()
    }

    /// The declarations of one interchange, in message order.
    pub async fn declarations_of(
        &self,
        interchange: &str,
    ) -> Result<Vec<StoredDeclaration>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {DECLARATION_COLUMNS} FROM declarations WHERE interchange_id = $1 ORDER BY created_at, id"
        ));
        let rows = sqlx::query(&sql)
            .bind(interchange)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(declaration_row).collect()
    }

    /// Declarations, newest first, optionally of one status and/or partner.
    pub async fn declarations(
        &self,
        status: Option<&str>,
        partner: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StoredDeclaration>, StoreError> {
        self.declarations_after(status, partner, None, limit).await
    }

    /// [`declarations`](Self::declarations) that come after `after` in
    /// that order (newest first: created before it, or at the same time
    /// with a smaller id), for paging through more than one page holds.
    pub async fn declarations_after(
        &self,
        status: Option<&str>,
        partner: Option<&str>,
        after: Option<&StoredDeclaration>,
        limit: i64,
    ) -> Result<Vec<StoredDeclaration>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {DECLARATION_COLUMNS} FROM declarations \
             WHERE ($1 = '' OR status = $1) AND ($2 = '' OR partner_id = $2) \
             AND ($4 = '' OR created_at < $4 OR (created_at = $4 AND id < $5)) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ));
        let (before, last) = after.map_or(("", ""), |d| (d.created_at.as_str(), d.id.as_str()));
        let rows = sqlx::query(&sql)
            .bind(status.unwrap_or("").to_owned())
            .bind(partner.unwrap_or("").to_owned())
            .bind(limit)
            .bind(before.to_owned())
            .bind(last.to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(declaration_row).collect()
    }

    /// The declarations `scope` covers with this LRN, or holding this MRN,
    /// that are not rejected, amended or cancelled, newest first, at most
    /// `limit`: an earlier declaration of the LRN, or what an amendment or
    /// cancellation refers to. (The MRN terms match the partial unique
    /// index on `mrn`.)
    pub async fn live_declarations(
        &self,
        scope: &LiveScope,
        by: LiveReference<'_>,
        limit: i64,
    ) -> Result<Vec<StoredDeclaration>, StoreError> {
        let (term, value) = match by {
            LiveReference::Lrn(lrn) => ("lrn = $1", lrn),
            LiveReference::Mrn(mrn) => ("mrn = $1 AND status <> 'amended'", mrn),
        };
        // $1 the reference, $2… the scopes, then the partner.
        let mut places: Vec<String> = (0..scope.scopes.len())
            .map(|i| format!("lrn_scope = ${}", i + 2))
            .collect();
        if scope.all_of_partner {
            places.push(format!("partner_id = ${}", scope.scopes.len() + 2));
        }
        if places.is_empty() {
            return Ok(Vec::new());
        }
        let sql = self.sql(&format!(
            "SELECT {DECLARATION_COLUMNS} FROM declarations \
             WHERE {term} AND ({}) AND target = 'declaration' \
             AND status NOT IN ('rejected', 'amended', 'cancelled') \
             ORDER BY created_at DESC, id DESC LIMIT {limit}",
            places.join(" OR "),
            limit = limit.max(1)
        ));
        let mut query = sqlx::query(&sql).bind(value);
        for s in &scope.scopes {
            query = query.bind(s.clone());
        }
        if scope.all_of_partner {
            query = query.bind(scope.partner.clone());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(declaration_row).collect()
    }

    pub async fn permit(&self, id: &str) -> Result<Option<StoredPermit>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {PERMIT_COLUMNS} FROM permits WHERE id = $1"
        ));
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(permit_row).transpose()
    }

    pub async fn permits_of(&self, declaration: &str) -> Result<Vec<StoredPermit>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {PERMIT_COLUMNS} FROM permits WHERE declaration_id = $1 ORDER BY agency, id"
        ));
        let rows = sqlx::query(&sql)
            .bind(declaration)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(permit_row).collect()
    }

    /// Pending permit requests of an agency, oldest first (by request
    /// time, then id); with `after`, only those after that permit in this
    /// order (a page after the one that ended with it, whether or not it
    /// has been decided since).
    pub async fn agency_inbox(
        &self,
        agency: &str,
        limit: i64,
        after: Option<&StoredPermit>,
    ) -> Result<Vec<StoredPermit>, StoreError> {
        let (since, last) = after.map_or(("", ""), |p| (p.requested_at.as_str(), p.id.as_str()));
        let sql = self.sql(&format!(
            "SELECT {PERMIT_COLUMNS} FROM permits WHERE agency = $1 AND status = 'pending' \
             AND (requested_at > $3 OR (requested_at = $3 AND id > $4)) \
             ORDER BY requested_at, id LIMIT $2"
        ));
        let rows = sqlx::query(&sql)
            .bind(agency)
            .bind(limit)
            .bind(since)
            .bind(last)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(permit_row).collect()
    }

    /// Pending permits whose answer was due before `now`, oldest first;
    /// not those whose request still waits in the outbox to be sent (the
    /// agency has not had it: its time runs from when it is, see
    /// [`Store::claim_outbox`]'s publishing). A request parked (the broker
    /// rejects it, and will again) no longer holds its permit back: it
    /// expires when due, and the declaration is held and answered.
    pub async fn overdue_permits(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<StoredPermit>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {PERMIT_COLUMNS} FROM permits WHERE status = 'pending' AND due_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = permits.id \
                             AND o.published_at IS NULL AND o.parked_at IS NULL) \
             ORDER BY due_at, id LIMIT $2"
        ));
        let rows = sqlx::query(&sql)
            .bind(now.to_string())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(permit_row).collect()
    }

    /// Permits still waiting for an answer (for the metrics).
    pub async fn pending_permit_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM permits WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    pub async fn responses_of(&self, declaration: &str) -> Result<Vec<StoredResponse>, StoreError> {
        let sql = self.sql(
            "SELECT seq, kind, status, body, created_at, message_id, published_at FROM responses \
             WHERE declaration_id = $1 ORDER BY seq",
        );
        let rows = sqlx::query(&sql)
            .bind(declaration)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredResponse {
                    seq: r.try_get("seq")?,
                    kind: r.try_get("kind")?,
                    status: r.try_get("status")?,
                    body: r.try_get("body")?,
                    created_at: r.try_get("created_at")?,
                    message_id: r.try_get("message_id")?,
                    published_at: r.try_get("published_at")?,
                })
            })
            .collect()
    }

    pub async fn declaration_events(&self, declaration: &str) -> Result<Vec<Event>, StoreError> {
        let sql = self
            .sql("SELECT seq, at, kind, detail FROM events WHERE declaration_id = $1 ORDER BY seq");
        let rows = sqlx::query(&sql)
            .bind(declaration)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(super::event_row).collect()
    }

    /// The declarations (manifests, passenger lists) carrying a cargo
    /// reference of any kind, oldest first, each with its events in order.
    pub async fn cargo_timeline(
        &self,
        reference: &str,
        viewer: &TimelineViewer,
    ) -> Result<Vec<(StoredDeclaration, Vec<Event>)>, StoreError> {
        // Only what the viewer may see (checked per declaration through
        // the permits' index), and the latest TIMELINE_DECLARATIONS of it:
        // a reference many declarations cite (a container number other
        // partners quote) costs a bounded query and at most that many
        // event reads.
        let filter = match viewer {
            TimelineViewer::Everything => "",
            TimelineViewer::Partner { .. } => {
                "AND (partner_id = $2 OR EXISTS (SELECT 1 FROM permits p \
                 WHERE p.declaration_id = declarations.id AND p.agency = $3)) "
            }
        };
        let sql = self.sql(&format!(
            "SELECT {DECLARATION_COLUMNS} FROM declarations \
             WHERE id IN (SELECT declaration_id FROM cargo_refs WHERE reference = $1) {filter}\
             ORDER BY created_at DESC, id DESC LIMIT {TIMELINE_DECLARATIONS}"
        ));
        let mut query = sqlx::query(&sql).bind(reference);
        if let TimelineViewer::Partner { id, agency } = viewer {
            // No agency: a code no permit has.
            query = query
                .bind(id.clone())
                .bind(agency.clone().unwrap_or_default());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut timeline = Vec::with_capacity(rows.len());
        for row in rows.iter().rev() {
            let declaration = declaration_row(row)?;
            let events = self.declaration_events(&declaration.id).await?;
            timeline.push((declaration, events));
        }
        Ok(timeline)
    }

    /// Records a permit's answer (`status` one of granted, refused,
    /// conditional, expired) and, in the same transaction, what `next`
    /// derives from the declaration, all its permits as they now are and
    /// the number of responses its sender has had.
    pub async fn decide_permit<F>(
        &self,
        permit_id: &str,
        status: &str,
        decision_json: &str,
        now: Timestamp,
        next: F,
    ) -> Result<Decided, StoreError>
    where
        F: FnOnce(&StoredDeclaration, &[StoredPermit], usize) -> Transition,
    {
        let Some(permit) = self.permit(permit_id).await? else {
            return Ok(Decided::NotFound);
        };
        if permit.status != "pending" {
            return Ok(Decided::AlreadyDecided(permit));
        }
        let at = now.to_string();
        let _writing = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        // Serialise decisions of one declaration (see the module comment).
        let sql = self.sql("UPDATE declarations SET updated_at = $1 WHERE id = $2");
        sqlx::query(&sql)
            .bind(at.clone())
            .bind(&permit.declaration_id)
            .execute(&mut *tx)
            .await?;
        let sql = self.sql(
            "UPDATE permits SET status = $1, decided_at = $2, decision_json = $3 \
             WHERE id = $4 AND status = 'pending'",
        );
        let updated = sqlx::query(&sql)
            .bind(status)
            .bind(at.clone())
            .bind(decision_json)
            .bind(permit_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if updated != 1 {
            tx.rollback().await?;
            let again = self.permit(permit_id).await?;
            return Ok(again.map_or(Decided::NotFound, Decided::AlreadyDecided));
        }
        let sql = self.sql(&format!(
            "SELECT {DECLARATION_COLUMNS} FROM declarations WHERE id = $1"
        ));
        let row = sqlx::query(&sql)
            .bind(&permit.declaration_id)
            .fetch_one(&mut *tx)
            .await?;
        let mut declaration = declaration_row(&row)?;
        let sql = self.sql(&format!(
            "SELECT {PERMIT_COLUMNS} FROM permits WHERE declaration_id = $1 ORDER BY agency, id"
        ));
        let rows = sqlx::query(&sql)
            .bind(&permit.declaration_id)
            .fetch_all(&mut *tx)
            .await?;
        let permits = rows.iter().map(permit_row).collect::<Result<Vec<_>, _>>()?;
        let answered = self.response_count(&mut tx, &declaration.id).await?;
        let change = next(&declaration, &permits, answered);
        self.apply(&mut tx, &mut declaration, &change, &at).await?;
        tx.commit().await?;
        Ok(Decided::Recorded(declaration))
    }

    /// Applies `change` to a declaration outside a permit decision (an
    /// officer's release or hold), only while it is in one of `from` (or,
    /// with a permit refused or expired, of `from_if_permit_missing`);
    /// `next` is given the declaration and how many responses it has had,
    /// and may find nothing to change (an empty [`Transition`]). Returns
    /// the declaration as it now is and whether it changed.
    pub async fn change_declaration<F>(
        &self,
        id: &str,
        from: &[&str],
        from_if_permit_missing: &[&str],
        now: Timestamp,
        next: F,
    ) -> Result<Option<(StoredDeclaration, bool)>, StoreError>
    where
        F: FnOnce(&StoredDeclaration, usize) -> Transition,
    {
        let at = now.to_string();
        let _writing = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        let sql = self.sql("UPDATE declarations SET updated_at = $1 WHERE id = $2");
        sqlx::query(&sql)
            .bind(at.clone())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let sql = self.sql(&format!(
            "SELECT {DECLARATION_COLUMNS} FROM declarations WHERE id = $1"
        ));
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        let mut declaration = declaration_row(&row)?;
        // Read under the declaration's lock, which every decision on its
        // permits takes too: a refusal that lands meanwhile is seen.
        let sql = self.sql(
            "SELECT COUNT(*) FROM permits WHERE declaration_id = $1 \
             AND status IN ('refused', 'expired')",
        );
        let missing: i64 = sqlx::query_scalar(&sql)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let from = if missing > 0 {
            from_if_permit_missing
        } else {
            from
        };
        if !from.contains(&declaration.status.as_str()) {
            tx.rollback().await?;
            return Ok(Some((declaration, false)));
        }
        let answered = self.response_count(&mut tx, &declaration.id).await?;
        let change = next(&declaration, answered);
        // Nothing to change (an order given already): nothing written.
        if change == Transition::default() {
            tx.rollback().await?;
            return Ok(Some((declaration, false)));
        }
        self.apply(&mut tx, &mut declaration, &change, &at).await?;
        tx.commit().await?;
        Ok(Some((declaration, true)))
    }

    /// How many responses the declaration's sender has been given, read
    /// in the transaction that adds the next one (which numbers it).
    async fn response_count(
        &self,
        tx: &mut Transaction<'static, Any>,
        declaration: &str,
    ) -> Result<usize, StoreError> {
        let sql = self.sql("SELECT COUNT(*) FROM responses WHERE declaration_id = $1");
        let count: i64 = sqlx::query_scalar(&sql)
            .bind(declaration)
            .fetch_one(&mut **tx)
            .await?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    async fn apply(
        &self,
        tx: &mut Transaction<'static, Any>,
        declaration: &mut StoredDeclaration,
        change: &Transition,
        at: &str,
    ) -> Result<(), StoreError> {
        if let Some(status) = &change.status {
            let sql =
                self.sql("UPDATE declarations SET status = $1, updated_at = $2 WHERE id = $3");
            sqlx::query(&sql)
                .bind(status)
                .bind(at)
                .bind(&declaration.id)
                .execute(&mut **tx)
                .await?;
            declaration.status = status.clone();
        }
        if let Some(lane) = &change.lane {
            let sql = self.sql("UPDATE declarations SET lane = $1 WHERE id = $2");
            sqlx::query(&sql)
                .bind(lane)
                .bind(&declaration.id)
                .execute(&mut **tx)
                .await?;
            declaration.lane = Some(lane.clone());
        }
        declaration.updated_at = at.to_owned();
        if change.withdraw_pending {
            self.withdraw_permits(tx, &declaration.id, at).await?;
        }
        self.declaration_events_in(
            tx,
            &declaration.interchange_id,
            &declaration.id,
            at,
            &change.events,
        )
        .await?;
        self.write_responses(tx, &declaration.id, &change.responses, at)
            .await?;
        self.write_outbox(tx, &change.outbox, at).await?;
        Ok(())
    }
}

fn declaration_row(r: &AnyRow) -> Result<StoredDeclaration, StoreError> {
    Ok(StoredDeclaration {
        id: r.try_get("id")?,
        interchange_id: r.try_get("interchange_id")?,
        message_reference: r.try_get("message_reference")?,
        message_type: r.try_get("message_type")?,
        target: r.try_get("target")?,
        partner_id: r.try_get("partner_id")?,
        lrn: r.try_get("lrn")?,
        lrn_scope: r.try_get("lrn_scope")?,
        mrn: r.try_get("mrn")?,
        function: r.try_get("function")?,
        status: r.try_get("status")?,
        lane: r.try_get("lane")?,
        canonical_json: r.try_get("canonical_json")?,
        issues_json: r.try_get("issues_json")?,
        reply_json: r.try_get("reply_json")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn permit_row(r: &AnyRow) -> Result<StoredPermit, StoreError> {
    Ok(StoredPermit {
        id: r.try_get("id")?,
        declaration_id: r.try_get("declaration_id")?,
        agency: r.try_get("agency")?,
        rule: r.try_get("rule")?,
        status: r.try_get("status")?,
        requested_at: r.try_get("requested_at")?,
        due_at: r.try_get("due_at")?,
        decided_at: r.try_get("decided_at")?,
        request_json: r.try_get("request_json")?,
        decision_json: r.try_get("decision_json")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_names_the_declarant_it_was_made_for() {
        for (partner, declarant, registered) in [
            ("KRBROKER01", Some("1234567890"), true),
            ("KRBROKER01", Some("1234567890"), false),
            ("A/B:C", Some("X/Y"), false),
            ("브로커", Some("DE123"), false),
            ("KRBROKER01", None, false),
        ] {
            let scope = lrn_scope(partner, declarant, registered);
            assert_eq!(scope_declarant(&scope), declarant, "{scope}");
        }
        assert_eq!(scope_declarant("partner:x:P/D"), None);
    }
}
