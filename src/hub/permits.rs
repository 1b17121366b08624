//! Agency answers: permit decisions from an agency's account (AMQP
//! `hub.permit-replies` or `POST /v1/permits/{id}/decision`), permits that
//! time out, and officers releasing goods. Each moves the declaration in
//! one transaction with its events, response and outbox messages.

use std::time::Duration;

use crate::model::PermitDecision;
use crate::store::{Decided, Partner, StoreError, StoredDeclaration};
use crate::timestamp::Timestamp;

use super::Intake;

/// Where a declaration's goods items stand in its message, by sequence
/// number (see [`Intake::goods_located`]).
pub(crate) type GoodsLocated = std::collections::BTreeMap<u16, crate::diag::Location>;

/// Largest interchange read again to locate a refused permit's goods items
/// (see [`Intake::goods_located`]): a larger one's answer points at the
/// message as a whole rather than parse it again for each refusal.
const LOCATE_MAX_BYTES: usize = 4 << 20;
use super::clearance::{permit_status, state};

/// Why a decision was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("no permit {0}")]
    NotFound(String),
    #[error("permit {permit} is for agency {agency}; {partner:?} does not act for it")]
    WrongAgency {
        permit: String,
        agency: String,
        partner: String,
    },
    /// A text of the decision the hub does not store: a control
    /// character (U+0000, which PostgreSQL refuses, and the other C0
    /// controls but tab, line feed and carriage return).
    #[error("{0}")]
    Invalid(String),
    /// The agency's account is suspended (HUB204): it records nothing.
    #[error("{0}")]
    Suspended(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The first control character of `text` a stored text may not hold (C0
/// and C1 controls and DEL, but tab, line feed and carriage return; the
/// bidirectional embeddings, overrides and isolates, which would show a
/// reader other text than was stored), if any.
pub fn control_character(text: &str) -> Option<char> {
    text.chars().find(|c| {
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    })
}

/// Why a decision cannot be taken as it is: a conditional grant that
/// states no conditions (the trader would be cleared "on conditions not
/// stated"), or the first text that holds a control character, named.
fn unstorable(decision: &PermitDecision) -> Option<String> {
    if decision.outcome == crate::model::PermitOutcome::Conditional
        && decision
            .conditions
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
    {
        return Some(
            "a conditional grant states its conditions (conditions is missing or empty)".into(),
        );
    }
    let named = |what: String, text: &str| {
        control_character(text).map(|c| {
            format!(
                "{what} holds the control character U+{:04X}, which is not stored",
                c as u32
            )
        })
    };
    decision
        .reasons
        .iter()
        .enumerate()
        .find_map(|(i, r)| named(format!("reasons[{i}]"), r))
        .or_else(|| {
            decision
                .conditions
                .as_deref()
                .and_then(|c| named("conditions".to_owned(), c))
        })
}

/// What became of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionOutcome {
    /// Recorded; the declaration as it now is.
    Recorded(Box<StoredDeclaration>),
    /// The permit had been answered already with this very answer
    /// (outcome, reasons and conditions): a resend after a lost reply or a
    /// timeout. Nothing changed; the declaration as it now is.
    Repeated(Box<StoredDeclaration>),
    /// The permit had been answered already (a redelivery or a second
    /// answer): nothing changed; its recorded status.
    AlreadyDecided(String),
}

/// Why a permit takes no answer any more, for the agency: answered (and
/// how), expired, or withdrawn.
pub fn closed(permit: &str, status: &str) -> String {
    match status {
        "expired" => format!(
            "permit {permit} expired: it was not answered before it was due, and the declaration is held"
        ),
        "withdrawn" => {
            format!(
                "permit {permit} was withdrawn: its declaration was amended or cancelled, or held for another permit missing"
            )
        }
        other => format!("permit {permit} was already answered: {other}"),
    }
}

/// True when the recorded decision says what `new` says: the same outcome,
/// reasons and conditions (both as stored, JSON of [`PermitDecision`]).
fn same_answer(recorded: Option<&str>, new: &str) -> bool {
    let read = |json: &str| serde_json::from_str::<PermitDecision>(json).ok();
    match (recorded.and_then(read), read(new)) {
        (Some(a), Some(b)) => {
            a.outcome == b.outcome && a.reasons == b.reasons && a.conditions == b.conditions
        }
        _ => false,
    }
}

impl Intake {
    /// Records an agency's decision. Only an account acting for the
    /// permit's agency may answer it; a repeated answer changes nothing.
    pub async fn decide(
        &self,
        partner: &Partner,
        decision: &PermitDecision,
    ) -> Result<DecisionOutcome, DecisionError> {
        if let Some(why) = partner.suspension_detail() {
            return Err(DecisionError::Suspended(why));
        }
        // No permit id holds a control character.
        if control_character(&decision.permit_id).is_some() {
            return Err(DecisionError::NotFound(decision.permit_id.clone()));
        }
        if let Some(why) = unstorable(decision) {
            return Err(DecisionError::Invalid(why));
        }
        let Some(permit) = self.store.permit(&decision.permit_id).await? else {
            return Err(DecisionError::NotFound(decision.permit_id.clone()));
        };
        if partner.agency.as_deref() != Some(permit.agency.as_str()) {
            return Err(DecisionError::WrongAgency {
                permit: permit.id,
                agency: permit.agency,
                partner: partner.id.clone(),
            });
        }
        let status = permit_status(decision.outcome);
        let json = serde_json::to_string(decision).unwrap_or_else(|_| "{}".into());
        let goods_at = if status == "refused" {
            self.goods_located(&permit.declaration_id).await
        } else {
            GoodsLocated::new()
        };
        self.record(
            &permit.id,
            status,
            &json,
            Timestamp::now(),
            Some(&partner.id),
            goods_at,
        )
        .await
        .map_err(DecisionError::from)
    }

    /// Where each goods item of a declaration stands in the message it came
    /// in (the segment that opens it: CST in a CUSDEC), by sequence number,
    /// so that the answer to a permit refused or expired points at the
    /// goods items it was for: the interchange is read again and the
    /// message mapped with provenance (the hub keeps only that of a
    /// message's own fields). None for a WCO XML declaration, one whose
    /// interchange is over [`LOCATE_MAX_BYTES`], an item that did not come
    /// in the message (an amendment of changes only), or what cannot be
    /// read: the answer then points at the message as a whole.
    async fn goods_located(&self, declaration_id: &str) -> GoodsLocated {
        let Ok(Some(d)) = self.store.declaration(declaration_id).await else {
            return GoodsLocated::new();
        };
        let Ok(Some(raw)) = self.store.raw(&d.interchange_id).await else {
            return GoodsLocated::new();
        };
        if raw.len() > LOCATE_MAX_BYTES || crate::xml::looks_like_xml(&raw) {
            return GoodsLocated::new();
        }
        let directories = self.directories.clone();
        let limits = self.limits;
        let reference = d.message_reference;
        let located = super::cpu_work(raw.len(), move || {
            let parsed = super::parse_validated(&raw, limits, &directories);
            let mut located = GoodsLocated::new();
            // That message alone, with every value's provenance.
            let index = parsed
                .interchange
                .all_messages()
                .position(|m| m.reference == reference);
            let Some(m) = index.and_then(|index| {
                crate::mapping::edifact::map_message(&parsed, &directories, index)
            }) else {
                return located;
            };
            let goods = m
                .canonical
                .as_ref()
                .and_then(|c| c.get("goods"))
                .and_then(serde_json::Value::as_array);
            for (i, item) in goods.into_iter().flatten().enumerate() {
                let sequence = item
                    .get("sequence")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|n| u16::try_from(n).ok());
                if let (Some(sequence), Some(at)) =
                    (sequence, m.provenance.get(&format!("/goods/{i}")))
                {
                    located.entry(sequence).or_insert_with(|| at.clone());
                }
            }
            located
        })
        .await;
        located.map(|(located, _)| located).unwrap_or_default()
    }

    /// Records a permit's answer; `account`: the agency account that gave
    /// it (none for an expiry), named on the trail; `goods_at`: where the
    /// declaration's goods items stand in its message (see
    /// [`goods_located`](Self::goods_located)), for an answer that names
    /// them.
    async fn record(
        &self,
        permit: &str,
        status: &str,
        json: &str,
        now: Timestamp,
        account: Option<&str>,
        goods_at: GoodsLocated,
    ) -> Result<DecisionOutcome, StoreError> {
        let clearance = self.clearance.clone();
        let decided = permit.to_owned();
        let by = account.map(str::to_owned);
        let outcome = self
            .store
            .decide_permit(permit, status, json, now, move |d, permits, answered| {
                let answer = super::clearance::Answered {
                    by: by.as_deref(),
                    answered,
                    goods_at: &goods_at,
                };
                clearance.after_decision(d, permits, &decided, answer, now)
            })
            .await?;
        match outcome {
            Decided::Recorded(d) => {
                self.outbox_wake.notify_one();
                super::Metrics::inc(if status == "expired" {
                    &self.metrics.permits_expired
                } else {
                    &self.metrics.permit_decisions
                });
                tracing::info!(permit, status, account, declaration = %d.id, declaration_status = %d.status, "permit answered");
                Ok(DecisionOutcome::Recorded(Box::new(d)))
            }
            Decided::AlreadyDecided(p) => {
                if same_answer(p.decision_json.as_deref(), json)
                    && let Some(d) = self.store.declaration(&p.declaration_id).await?
                {
                    return Ok(DecisionOutcome::Repeated(Box::new(d)));
                }
                Ok(DecisionOutcome::AlreadyDecided(p.status))
            }
            Decided::NotFound => Ok(DecisionOutcome::AlreadyDecided("unknown".into())),
        }
    }

    /// Expires every pending permit due before `now`; returns how many.
    pub async fn expire_overdue(&self, now: Timestamp) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let due = self.store.overdue_permits(now, 100).await?;
            if due.is_empty() {
                return Ok(total);
            }
            // The goods items' places, read once per declaration.
            let mut located: std::collections::HashMap<String, GoodsLocated> =
                std::collections::HashMap::new();
            for permit in due {
                let json = serde_json::json!({
                    "permit_id": permit.id,
                    "outcome": "expired",
                    "reasons": [format!("no answer from {} by {}", permit.agency, permit.due_at)],
                })
                .to_string();
                let goods_at = match located.get(&permit.declaration_id) {
                    Some(known) => known.clone(),
                    None => {
                        let found = self.goods_located(&permit.declaration_id).await;
                        located.insert(permit.declaration_id.clone(), found.clone());
                        found
                    }
                };
                if let DecisionOutcome::Recorded(_) = self
                    .record(&permit.id, "expired", &json, now, None, goods_at)
                    .await?
                {
                    total += 1;
                }
            }
        }
    }

    /// An officer releases the goods of a cleared or examined declaration.
    /// `Ok(None)`: no such declaration; `Ok(Some((d, false)))`: it was not
    /// in a releasable state (or already released) and did not change.
    pub async fn release(
        &self,
        officer: &Partner,
        declaration: &str,
        note: &str,
    ) -> Result<Option<(StoredDeclaration, bool)>, StoreError> {
        let clearance = self.clearance.clone();
        let officer_id = officer.id.clone();
        let note = note.to_owned();
        // Goods held because a permit was refused or expired stay held
        // (decided inside the change's transaction, under the lock a
        // decision on the permits takes too).
        let from = (state::RELEASABLE, &[state::CLEARED][..]);
        self.officer_change(declaration, from, move |d, conditions, answered, now| {
            clearance.release(d, &officer_id, &note, conditions, answered, now)
        })
        .await
    }

    /// An officer orders a declaration's goods examined (see
    /// [`super::clearance::Clearance::hold`]): possible while it is cleared
    /// (not yet released) or awaiting permits, and held already (changing
    /// nothing). Returns the declaration as it now is and whether it
    /// changed; `None`: no such declaration.
    pub async fn hold(
        &self,
        officer: &Partner,
        declaration: &str,
        reason: &str,
    ) -> Result<Option<(StoredDeclaration, bool)>, StoreError> {
        let clearance = self.clearance.clone();
        let officer_id = officer.id.clone();
        let reason = reason.to_owned();
        // With a permit refused or expired it is held already (and its lane
        // made red, so that an amendment is examined).
        let from = (state::HOLDABLE, &[state::HELD][..]);
        self.officer_change(declaration, from, move |d, conditions, answered, now| {
            clearance.hold(d, &officer_id, &reason, conditions, answered, now)
        })
        .await
    }

    /// An officer's change to a declaration in one of `from` (the statuses
    /// it may be in, and those with a permit refused or expired; see
    /// [`crate::store::Store::change_declaration`]): `next` is given the
    /// declaration, the conditions of its permits (final once it is
    /// cleared), how many answers it has had and the time.
    async fn officer_change<F>(
        &self,
        declaration: &str,
        (from, from_if_permit_missing): (&[&str], &[&str]),
        next: F,
    ) -> Result<Option<(StoredDeclaration, bool)>, StoreError>
    where
        F: FnOnce(&StoredDeclaration, &[String], usize, Timestamp) -> crate::store::Transition,
    {
        let now = Timestamp::now();
        let conditions =
            super::clearance::permit_conditions(&self.store.permits_of(declaration).await?);
        let result = self
            .store
            .change_declaration(
                declaration,
                from,
                from_if_permit_missing,
                now,
                move |d, answered| next(d, &conditions, answered, now),
            )
            .await?;
        if result.as_ref().is_some_and(|(_, changed)| *changed) {
            self.outbox_wake.notify_one();
        }
        Ok(result)
    }

    /// Records an agency's answer that was not taken, posted over HTTP
    /// (where the answer to the request is its only other trace; over
    /// AMQP the dead-letter queue keeps it): in `refusals`, under the
    /// account, with the code its dead letter would carry, and in the log.
    /// A store that cannot take the record is logged; the request is
    /// answered all the same.
    pub async fn record_refused_answer(
        &self,
        account: &str,
        body: &[u8],
        code: crate::diag::Code,
        detail: &str,
    ) {
        tracing::warn!(
            account,
            code = code.as_str(),
            detail,
            "agency answer not taken"
        );
        let refusal = crate::store::Refusal {
            partner_id: Some(account.to_owned()),
            at: Timestamp::now(),
            sha256: super::sha256_hex(body),
            size_bytes: i64::try_from(body.len()).unwrap_or(i64::MAX),
            code: code.as_str().to_owned(),
            detail: detail.to_owned(),
        };
        if let Err(e) = self.store.refuse(&refusal).await {
            tracing::warn!(account, error = %e, "a refused agency answer could not be recorded");
        }
    }
}

/// Expires overdue permits every `every` until `shutdown` resolves, while
/// the hub hears the agencies (see `BrokerState::agencies_heard`): with a
/// broker, not before the replies waiting in it are taken.
pub async fn expire_loop<F>(intake: Intake, every: Duration, shutdown: F)
where
    F: std::future::Future<Output = ()>,
{
    tokio::pin!(shutdown);
    // Said once per stretch of waiting, not at every look.
    let mut waiting = false;
    loop {
        if !intake.broker().agencies_heard() {
            if !waiting {
                tracing::info!(
                    "permit expiry waits until the agency replies waiting in the broker are taken"
                );
            }
            waiting = true;
        } else {
            waiting = false;
            match intake.expire_overdue(Timestamp::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(expired = n, "permits expired without an answer"),
                Err(e) => tracing::warn!(error = %e, "permit expiry failed; retrying"),
            }
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
