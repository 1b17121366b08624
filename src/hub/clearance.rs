//! The clearance workflow: what happens to a mapped message (business rules,
//! amendment and cancellation references, risk lane, permit routing) and to
//! a declaration when its agencies answer, as data the store writes in one
//! transaction: a status, events, permit requests, responses to the sender
//! and outbox messages. No I/O here; the caller passes the time and what
//! the store knows about earlier declarations.
//!
//! Declaration states (DESIGN.md §4), stored as the `status` column; the
//! passing states are events only:
//!
//! ```text
//! received → validated → rejected
//!                      → accepted → lane_assigned → awaiting_permits ─┬→ permits_granted → cleared (green, yellow)
//!                                                 (no permit needed) ─┤                  → held    (red: examination)
//!                                                                     ├→ permits_refused → held    (an agency refused)
//!                                                                     └→ permit_expired  → held    (no answer in time)
//! held (examination) → released      cleared → released           (officer, POST …/release)
//! cleared → examination_ordered → held (red)                       (officer, POST …/hold)
//! awaiting_permits → examination_ordered (red: the sender told at once, held once the permits are granted)
//! awaiting_permits | held → amended  (a later amendment with the same LRN)
//! awaiting_permits | held → cancelled (a cancellation with the same LRN)
//! ```

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::outbox::{EVENTS_EXCHANGE, json_message};
use crate::diag::{Code, Issue, Location};
use crate::mapping::Mapped;
use crate::model::{
    Declaration, DeclarationFunction, Moment, PassengerList, PermitDecision, PermitOutcome,
    PermitRequest, Response,
};
use crate::risk::{Lane, RiskProfile};
use crate::routing::Routing;
use crate::store::{
    NewDeclaration, NewPermit, NewResponse, OutboxMessage, StoredDeclaration, StoredPermit,
    Supersede, Transition,
};
use crate::timestamp::Timestamp;

/// Declaration statuses and event kinds.
pub mod state {
    pub const RECEIVED: &str = "received";
    pub const VALIDATED: &str = "validated";
    pub const REJECTED: &str = "rejected";
    pub const ACCEPTED: &str = "accepted";
    pub const LANE_ASSIGNED: &str = "lane_assigned";
    /// A passenger or crew list's travellers were screened (an event
    /// only customs officers see).
    pub const SCREENED: &str = "screened";
    /// An officer ordered the goods examined: who and why (an event only
    /// customs officers see).
    pub const EXAMINATION_ORDERED: &str = "examination_ordered";
    pub const AWAITING_PERMITS: &str = "awaiting_permits";
    pub const PERMITS_GRANTED: &str = "permits_granted";
    /// The milestone: the declaration is held because an agency refused
    /// (each permit's answer is an event of its own, `permit_refused`).
    pub const PERMITS_REFUSED: &str = "permits_refused";
    pub const CLEARED: &str = "cleared";
    pub const HELD: &str = "held";
    pub const RELEASED: &str = "released";
    pub const AMENDED: &str = "amended";
    pub const CANCELLED: &str = "cancelled";
    /// The statuses a stored declaration can have (the others are events).
    pub const STORED: &[&str] = &[
        REJECTED,
        ACCEPTED,
        AWAITING_PERMITS,
        CLEARED,
        HELD,
        RELEASED,
        AMENDED,
        CANCELLED,
    ];
    /// Statuses from which an amendment or cancellation may move a declaration.
    pub const CHANGEABLE: &[&str] = &[AWAITING_PERMITS, HELD];
    /// Statuses from which an officer may release the goods.
    pub const RELEASABLE: &[&str] = &[CLEARED, HELD];
    /// Statuses in which an officer may order the goods examined (held
    /// already: the order changes nothing).
    pub const HOLDABLE: &[&str] = &[CLEARED, AWAITING_PERMITS, HELD];
}

/// The most travellers a screening event names; the rest are counted.
const SCREENED_NAMED: usize = 100;

/// The event of a passenger list's screening: its lane and each selected
/// traveller with the rules that selected them.
fn screening_detail(s: &crate::risk::Screening) -> String {
    if s.selected.is_empty() {
        return format!("{} lane: no traveller selected", s.lane.as_str());
    }
    let mut out = format!(
        "{} lane: {} traveller(s) selected",
        s.lane.as_str(),
        s.selected.len()
    );
    for t in s.selected.iter().take(SCREENED_NAMED) {
        out.push_str(&format!(
            "; #{} {} ({}): {}",
            t.position,
            t.name,
            t.lane.as_str(),
            t.reasons.join(", ")
        ));
    }
    if s.selected.len() > SCREENED_NAMED {
        out.push_str(&format!("; and {} more", s.selected.len() - SCREENED_NAMED));
    }
    out
}

/// The role of customs officers' accounts (`partner add --agency CUSTOMS`):
/// they see every declaration and release goods.
pub const CUSTOMS_ROLE: &str = "CUSTOMS";

/// Exchange of permit requests (routing key `permit.<CODE>`).
pub const PERMITS_EXCHANGE: &str = "tradehub.permits";
/// Exchange of answers to senders (routing key `ack.<partner>`).
pub const ACKS_EXCHANGE: &str = "tradehub.acks";

/// How to answer the sender of a message, kept with its declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Reply {
    /// `edifact` or `xml`.
    pub format: String,
    pub partner: String,
    /// UNB S001 of the original (e.g. `UNOC`), for EDIFACT answers.
    #[serde(default)]
    pub syntax_identifier: String,
    #[serde(default)]
    pub syntax_version: u8,
    #[serde(default)]
    pub interchange_reference: String,
    pub message_reference: String,
    pub message_type: String,
    #[serde(default)]
    pub lrn: Option<String>,
    /// UNB identification code qualifiers (0007) of the original: its
    /// sender's (the partner's own), and its recipient's. The answers' UNB
    /// carries them back, so a network that routes on id and qualifier
    /// delivers them.
    #[serde(default)]
    pub sender_qualifier: String,
    #[serde(default)]
    pub recipient_qualifier: String,
    /// The UNB recipient (S003 0010) the original named when it was one of
    /// the hub's other names (`--recipient-id`, e.g. `KRCUSTOMS`); empty
    /// when it named the hub's own id. The answers come from the id the
    /// sender addressed, as its CONTRL does, so a translator that pairs
    /// an exchange by its two ids finds them. (Replies stored before this
    /// field have neither it nor, for such an interchange, the recipient's
    /// qualifier: their answers come from the hub's id, as they did.)
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub recipient: String,
    /// The original's reverse routing address (UNB S002 0008), carried
    /// back in the answers' S003 (0014).
    #[serde(default)]
    pub sender_routing: String,
    /// The `message_id` of the AMQP delivery that brought the original:
    /// every answer to it published over AMQP carries it as its
    /// `correlation_id`, as the hub's immediate answer does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<String>,
}

/// The settings and tables of the workflow.
#[derive(Debug, Clone)]
pub struct Clearance {
    pub routing: Routing,
    pub risk: RiskProfile,
    /// The hub's own identity in answers (UNB sender of CUSRES/APERAK),
    /// and the UNB recipient (S003 0010) it takes interchanges for.
    pub hub_id: String,
    /// Further UNB recipient ids the hub takes interchanges for (the
    /// administration's other names, e.g. `KRCUSTOMS`); an interchange
    /// addressed to anyone else is rejected (E0007).
    pub recipient_ids: Vec<String>,
    /// How long an agency has to answer a permit request.
    pub permit_timeout_secs: i64,
    /// Relative tolerance of totals against the items (rules).
    pub tolerance: Decimal,
    /// ISO 3166 alpha-2 code of the country whose customs runs the hub:
    /// the MRNs it gives start with it (see [`super::mrn`]).
    pub country: String,
    /// The codes of the agency catalogue (`config/agencies.toml`): an
    /// officer asking for the inbox of another code is told there is no
    /// such agency. Empty: not known, not checked.
    pub agencies: std::collections::BTreeSet<String>,
}

impl Clearance {
    /// True when the hub takes interchanges addressed to `id`.
    pub fn is_recipient(&self, id: &str) -> bool {
        id == self.hub_id || self.recipient_ids.iter().any(|r| r == id)
    }
}

impl Default for Clearance {
    fn default() -> Self {
        Clearance {
            routing: Routing::default(),
            risk: RiskProfile::default(),
            hub_id: "TRADEHUB".into(),
            recipient_ids: Vec::new(),
            permit_timeout_secs: 24 * 3600,
            tolerance: Decimal::new(1, 2),
            country: "KR".into(),
            agencies: std::collections::BTreeSet::new(),
        }
    }
}

/// An earlier live declaration of the same declarant with the same LRN, or
/// holding the MRN an amendment or cancellation quotes: what it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prior {
    pub id: String,
    /// Its LRN, named in the events about it.
    pub lrn: Option<String>,
    pub status: String,
    /// Its MRN: an amendment keeps it, a cancellation's answer quotes it.
    pub mrn: Option<String>,
    /// `cancellation` when it is the cancellation of the declaration that
    /// had its LRN (which then holds the LRN, so that it is not reused).
    pub function: Option<String>,
    /// Its risk lane: an amendment is never given a lower one.
    pub lane: Option<String>,
    /// What its LRN is unique in ([`crate::store::lrn_scope`]): an
    /// amendment that replaces it takes the same.
    pub scope: Option<String>,
}

impl From<&StoredDeclaration> for Prior {
    fn from(d: &StoredDeclaration) -> Self {
        Prior {
            id: d.id.clone(),
            lrn: d.lrn.clone(),
            status: d.status.clone(),
            mrn: d.mrn.clone(),
            function: d.function.clone(),
            lane: d.lane.clone(),
            scope: d.lrn_scope.clone(),
        }
    }
}

impl Clearance {
    /// The settings of the business rules at `now` (this workflow's
    /// tolerance).
    pub fn rule_settings(&self, now: Timestamp) -> crate::rules::RuleSettings {
        crate::rules::RuleSettings {
            now,
            tolerance: self.tolerance,
        }
    }

    /// The declaration row (with events, permits, responses and outbox
    /// messages) for one mapped message. `findings` are the rule findings
    /// already located at segments or elements; `prior` the live
    /// declaration with the same LRN, if any.
    pub fn intake(
        &self,
        mapped: &Mapped,
        mut findings: Vec<Issue>,
        reply: &Reply,
        prior: Option<&Prior>,
        now: Timestamp,
        id: String,
    ) -> NewDeclaration {
        let mut d = NewDeclaration {
            id,
            message_reference: mapped.message.clone(),
            message_type: mapped.message_type.clone(),
            target: mapped.target.clone(),
            references: mapped.canonical.as_ref().map_or_else(Vec::new, |c| {
                super::cargo::cargo_references(&mapped.target, c)
            }),
            ..NewDeclaration::default()
        };
        let mut reply = reply.clone();
        d.events.push((
            state::RECEIVED.into(),
            format!(
                "{} message {} mapped to {}",
                mapped.message_type,
                mapped.message,
                if mapped.target.is_empty() {
                    "nothing"
                } else {
                    &mapped.target
                }
            ),
        ));
        let mapping_errors: Vec<Issue> = mapped
            .issues
            .iter()
            .filter(|i| i.is_error())
            .cloned()
            .collect();
        let declaration: Option<Declaration> = (mapped.target == "declaration")
            .then(|| mapped.canonical.clone())
            .flatten()
            .and_then(|v| serde_json::from_value(v).ok());
        if let Some(decl) = &declaration {
            d.lrn = Some(decl.lrn.clone());
            d.function = Some(function_name(decl.function).into());
            reply.lrn = Some(decl.lrn.clone());
            let mut references = self.reference_rules(decl, prior);
            crate::mapping::locate(&mut references, &mapped.provenance);
            findings.extend(references);
        } else if let Some(lrn) = mapped
            .canonical
            .as_ref()
            .and_then(|c| c.get("lrn").or_else(|| c.get("reference")))
            .and_then(|v| v.as_str())
        {
            d.lrn = Some(lrn.to_owned());
            reply.lrn = Some(lrn.to_owned());
        }
        if declaration.is_none() {
            // A manifest's or list's own function (original, amendment,
            // cancellation), also when it is rejected, so that a listing
            // tells a refused replacement from a refused original.
            d.function = mapped
                .canonical
                .as_ref()
                .and_then(|c| c.get("function"))
                .and_then(|v| v.as_str())
                .filter(|f| matches!(*f, "original" | "amendment" | "cancellation"))
                .map(str::to_owned);
        }
        d.canonical_json = mapped.canonical.as_ref().map(|c| c.to_string());
        let mut issues = mapped.issues.clone();
        issues.extend(findings.iter().cloned());
        d.issues_json = serde_json::to_string(&issues).unwrap_or_else(|_| "[]".into());
        d.reply_json = serde_json::to_string(&reply).unwrap_or_else(|_| "{}".into());

        // Warnings (a list's total that differs from its travellers, a
        // change the canonical model does not hold) go with an accepting
        // answer, so that the sender hears of them too.
        let warnings: Vec<Issue> = findings.iter().filter(|i| !i.is_error()).cloned().collect();
        let errors: Vec<Issue> = mapping_errors
            .into_iter()
            .chain(findings.into_iter().filter(Issue::is_error))
            .collect();
        if mapped.canonical.is_none() || !errors.is_empty() {
            d.status = state::REJECTED.into();
            d.events.push((
                state::REJECTED.into(),
                format!(
                    "{} error(s): {}",
                    errors.len(),
                    summary(&errors).unwrap_or_else(|| "the message could not be mapped".into())
                ),
            ));
            self.respond(&mut d, &reply, state::REJECTED, &errors, &[], 0, now);
            return d;
        }
        d.events
            .push((state::VALIDATED.into(), "business rules passed".into()));
        d.events
            .push((state::ACCEPTED.into(), format!("{} accepted", d.target)));
        let Some(decl) = declaration else {
            // Manifests and passenger lists are accepted and answered; they
            // need no permits. A passenger list's travellers are screened:
            // what is found is for customs (an event only officers see),
            // not for the carrier's answer.
            if mapped.target == "passenger_list" {
                let list = mapped
                    .canonical
                    .as_ref()
                    .ok_or_else(|| "no canonical list".to_owned())
                    .and_then(|c| PassengerList::deserialize(c).map_err(|e| e.to_string()));
                match list {
                    Ok(list) => {
                        let screening = self.risk.screen(&d.id, &list);
                        d.lane = Some(screening.lane.as_str().into());
                        d.events
                            .push((state::SCREENED.into(), screening_detail(&screening)));
                    }
                    // Accepted lists are typed; should one not be, the
                    // officers are told it was not screened.
                    Err(why) => {
                        tracing::warn!(declaration = %d.id, %why, "passenger list not screened");
                        d.events
                            .push((state::SCREENED.into(), format!("not screened: {why}")));
                    }
                }
            }
            d.status = state::ACCEPTED.into();
            self.respond(&mut d, &reply, state::ACCEPTED, &warnings, &[], 0, now);
            return d;
        };
        match (decl.function, prior) {
            (DeclarationFunction::Cancellation, Some(p)) => {
                d.supersedes = Some(Supersede {
                    id: p.id.clone(),
                    from: state::CHANGEABLE.iter().map(|s| (*s).to_owned()).collect(),
                    lane: None,
                    to: state::CANCELLED.into(),
                    detail: format!("cancelled by declaration {}", d.id),
                });
                d.status = state::ACCEPTED.into();
                // The answer names the cancelled declaration's MRN; the
                // cancellation itself has none of its own.
                d.mrn.clone_from(&p.mrn);
                self.respond(&mut d, &reply, state::CANCELLED, &warnings, &[], 0, now);
                d.mrn = None;
                return d;
            }
            (DeclarationFunction::Amendment, Some(p)) => {
                d.supersedes = Some(Supersede {
                    id: p.id.clone(),
                    from: state::CHANGEABLE.iter().map(|s| (*s).to_owned()).collect(),
                    // Its lane bounds the amendment's from below.
                    lane: p.lane.clone(),
                    to: state::AMENDED.into(),
                    detail: format!("amended by declaration {}", d.id),
                });
            }
            _ => {}
        }
        // Accepted: the declaration gets its MRN (an amendment keeps the
        // one of the declaration it replaces), in its canonical form and
        // the permit requests too.
        let mrn = prior
            .filter(|_| decl.function == DeclarationFunction::Amendment)
            .and_then(|p| p.mrn.clone())
            .unwrap_or_else(|| super::mrn::issue(&self.country, &d.id, now));
        let mut decl = decl;
        decl.mrn = Some(mrn.clone());
        if let Some(mut canonical) = mapped.canonical.clone()
            && let Some(object) = canonical.as_object_mut()
        {
            object.insert("mrn".into(), serde_json::Value::String(mrn.clone()));
            d.canonical_json = Some(canonical.to_string());
        }
        // Assessed by the MRN, so that a random draw is the same for the
        // original and each of its amendments; and an amendment never gets
        // a lower lane than the declaration it replaces (a declaration held
        // for examination cannot be amended out of it).
        let mut assessment = self.risk.assess(&mrn, &decl);
        d.mrn = Some(mrn);
        if decl.function == DeclarationFunction::Amendment
            && let Some(p) = prior
            && let Some(kept) = p.lane.as_deref().and_then(Lane::parse)
            && kept > assessment.lane
        {
            assessment.lane = kept;
            assessment.reasons.push(format!(
                "kept from declaration {}, which this amendment replaces",
                p.id
            ));
        }
        d.lane = Some(assessment.lane.as_str().into());
        d.events.push((
            state::LANE_ASSIGNED.into(),
            if assessment.reasons.is_empty() {
                format!("{} lane: no risk rule matched", assessment.lane.as_str())
            } else {
                format!(
                    "{} lane: {}",
                    assessment.lane.as_str(),
                    assessment.reasons.join("; ")
                )
            },
        ));
        let due = now.plus_secs(self.permit_timeout_secs);
        for plan in self.routing.route(&decl) {
            let permit_id = uuid::Uuid::now_v7().to_string();
            let request = PermitRequest {
                id: permit_id.clone(),
                declaration_id: d.id.clone(),
                agency: plan.agency.clone(),
                rule: plan.rule.clone(),
                law: plan.law.clone(),
                goods: plan.goods.clone(),
                due_at: Some(due.to_string()),
                declaration: decl.clone(),
            };
            let body = serde_json::to_vec(&request).unwrap_or_default();
            d.outbox.push(OutboxMessage {
                exchange: PERMITS_EXCHANGE.into(),
                routing_key: format!("permit.{}", plan.agency),
                message_id: permit_id.clone(),
                content_type: "application/json".into(),
                payload: body.clone(),
                correlation_id: None,
            });
            d.permits.push(NewPermit {
                id: permit_id,
                agency: plan.agency,
                rule: plan.rule,
                due_at: due,
                request_json: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        if d.permits.is_empty() {
            let status = if assessment.lane == Lane::Red {
                d.events.push((
                    state::HELD.into(),
                    "no permit needed; held for physical examination (red lane)".into(),
                ));
                state::HELD
            } else {
                d.events.push((
                    state::CLEARED.into(),
                    "no permit needed; cleared on the declared data".into(),
                ));
                state::CLEARED
            };
            d.status = status.into();
        } else {
            let agencies: Vec<&str> = d.permits.iter().map(|p| p.agency.as_str()).collect();
            d.events.push((
                state::AWAITING_PERMITS.into(),
                format!(
                    "{} permit request(s) to {}, due {due}",
                    agencies.len(),
                    agencies.join(", ")
                ),
            ));
            d.status = state::AWAITING_PERMITS.into();
        }
        let status = d.status.clone();
        self.respond(&mut d, &reply, &status, &warnings, &[], 0, now);
        d
    }

    /// What follows an agency's answer: an event for the answer (naming
    /// the agency account `answer.by` that gave it, as a release names its
    /// officer) and, once no permit is pending or at the first refusal or
    /// expiry, the declaration's next status and response (numbered after
    /// the `answer.answered` responses the sender has had; a permit
    /// refused or expired located at the first of its goods items
    /// `answer.goods_at` places).
    pub fn after_decision(
        &self,
        declaration: &StoredDeclaration,
        permits: &[StoredPermit],
        decided: &str,
        answer: Answered<'_>,
        now: Timestamp,
    ) -> Transition {
        let Answered {
            by,
            answered,
            goods_at,
        } = answer;
        let mut change = Transition::default();
        if let Some(p) = permits.iter().find(|p| p.id == decided) {
            let reasons = decision_reasons(p);
            change.events.push((
                format!("permit_{}", p.status),
                format!(
                    "{} permit {} ({}){}",
                    match by {
                        _ if p.status == "expired" => {
                            format!("{} did not answer by {}:", p.agency, p.due_at)
                        }
                        Some(account) => format!("{} answered (account {account})", p.agency),
                        None => format!("{} answered", p.agency),
                    },
                    p.id,
                    p.rule,
                    if reasons.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", reasons.join("; "))
                    }
                ),
            ));
            // The agency is told its request expired, on its permit queue
            // (as it is told of a withdrawal): an answer it is still
            // working on would not be taken.
            if p.status == "expired" {
                let notice = serde_json::json!({
                    "type": "permit.expired",
                    "permit_id": p.id,
                    "agency": p.agency,
                    "declaration_id": declaration.id,
                    "due_at": p.due_at,
                    "reason": format!("not answered by {}; the declaration is held", p.due_at),
                    "at": now.to_string(),
                });
                change
                    .outbox
                    .push(agency_notice(&p.agency, &p.id, "expired", &notice));
            }
        }
        let refused: Vec<&StoredPermit> = permits
            .iter()
            .filter(|p| matches!(p.status.as_str(), "refused" | "expired"))
            .collect();
        let pending: Vec<&StoredPermit> =
            permits.iter().filter(|p| p.status == "pending").collect();
        // Decided once every permit is answered, or at the first refusal
        // (or expiry): with a permit missing the declaration can only be
        // held, so the sender is told now, not when the last agency
        // answers (up to a day later), and the agencies still working on
        // it are told to stop: their permits are withdrawn. Not while
        // another is overdue too: it is expiring in the same sweep, and
        // the answer names every agency that did not answer.
        let overdue = |p: &&StoredPermit| Timestamp::parse(&p.due_at).is_none_or(|due| due <= now);
        if declaration.status != state::AWAITING_PERMITS
            || (!pending.is_empty() && refused.is_empty())
            || pending.iter().any(overdue)
        {
            return change;
        }
        let next = if refused.is_empty() {
            let on_terms = permits.iter().filter(|p| p.status == "conditional").count();
            change.events.push((
                state::PERMITS_GRANTED.into(),
                match on_terms {
                    0 => format!("all {} permit(s) granted", permits.len()),
                    n => format!(
                        "all {} permit(s) granted, {n} of them on conditions",
                        permits.len()
                    ),
                },
            ));
            if declaration.lane.as_deref() == Some(Lane::Red.as_str()) {
                change.events.push((
                    state::HELD.into(),
                    "held for physical examination (red lane)".into(),
                ));
                state::HELD
            } else {
                change.events.push((
                    state::CLEARED.into(),
                    "cleared: every required permit granted".into(),
                ));
                state::CLEARED
            }
        } else {
            let why: Vec<String> = refused
                .iter()
                .map(|p| {
                    if p.status == "expired" {
                        format!("{} did not answer by {}", p.agency, p.due_at)
                    } else {
                        let reasons = decision_reasons(p);
                        format!("{} refused: {}", p.agency, reasons.join("; "))
                    }
                })
                .collect();
            for p in &pending {
                // Nothing of the other agencies' answers: an agency reads
                // its own permits' trail.
                let reason = "the declaration is held: another required permit is missing; \
                              this one is no longer needed";
                change.events.push((
                    "permit_withdrawn".into(),
                    format!("permit {} of {} withdrawn: {reason}", p.id, p.agency),
                ));
                let notice = serde_json::json!({
                    "type": "permit.withdrawn",
                    "permit_id": p.id,
                    "agency": p.agency,
                    "declaration_id": declaration.id,
                    "reason": reason,
                    "at": now.to_string(),
                });
                change
                    .outbox
                    .push(agency_notice(&p.agency, &p.id, "withdrawn", &notice));
            }
            change.withdraw_pending = !pending.is_empty();
            // "permits_refused" only when an agency refused: an expiry is
            // recorded as such (`permit_expired`, per permit), and the
            // audit trail must not say that an agency refused what it
            // never answered.
            if refused.iter().any(|p| p.status != "expired") {
                change
                    .events
                    .push((state::PERMITS_REFUSED.into(), why.join("; ")));
            }
            change.events.push((
                state::HELD.into(),
                format!("held: a required permit is missing ({})", why.join("; ")),
            ));
            state::HELD
        };
        change.status = Some(next.into());
        let errors: Vec<Issue> = refused
            .iter()
            .map(|p| {
                // The goods items it was for, so that the declarant knows
                // which to correct or take out; located at the first of
                // them whose place is known, else at the message.
                let location = goods_of(p)
                    .iter()
                    .find_map(|g| goods_at.get(g))
                    .cloned()
                    .unwrap_or_default();
                let goods = permit_goods(p);
                let (code, text) = if p.status == "expired" {
                    (
                        Code::PermitExpired,
                        format!(
                            "permit {} of {}{goods} was not answered by {}",
                            p.id, p.agency, p.due_at
                        ),
                    )
                } else {
                    (
                        Code::PermitRefused,
                        format!(
                            "permit {} refused by {}{goods}: {}",
                            p.id,
                            p.agency,
                            decision_reasons(p).join("; ")
                        ),
                    )
                };
                Issue::error(code, location, text)
            })
            .collect();
        // The terms of the permits given with conditions go with a
        // clearance (or an examination) on them; after a refusal they are
        // moot.
        let conditions = if refused.is_empty() {
            permit_conditions(permits)
        } else {
            Vec::new()
        };
        let answer = (next, &errors[..], &conditions[..]);
        self.answer_stored(&mut change, declaration, answer, answered, now);
        change
    }

    /// Adds to `change` the answer to a stored declaration's sender saying
    /// `status` (with `errors`, on `conditions`), numbered after the
    /// `answered` ones before it, and its event for subscribers; on the
    /// lane `change` gives it, if any, else its own.
    fn answer_stored(
        &self,
        change: &mut Transition,
        declaration: &StoredDeclaration,
        (status, errors, conditions): (&str, &[Issue], &[String]),
        answered: usize,
        now: Timestamp,
    ) {
        let reply: Reply = serde_json::from_str(&declaration.reply_json).unwrap_or_default();
        let mut sink = NewDeclaration {
            id: declaration.id.clone(),
            lane: change.lane.clone().or_else(|| declaration.lane.clone()),
            mrn: declaration.mrn.clone(),
            ..NewDeclaration::default()
        };
        self.respond(&mut sink, &reply, status, errors, conditions, answered, now);
        change.responses.extend(sink.responses);
        change.outbox.extend(sink.outbox);
    }

    /// An officer releases the goods of a cleared or examined declaration;
    /// the response is numbered after the `answered` ones before it.
    /// `conditions` are those of its permits ([`permit_conditions`]): the
    /// goods are released on them.
    pub fn release(
        &self,
        declaration: &StoredDeclaration,
        officer: &str,
        note: &str,
        conditions: &[String],
        answered: usize,
        now: Timestamp,
    ) -> Transition {
        let mut change = Transition {
            status: Some(state::RELEASED.into()),
            events: vec![(
                state::RELEASED.into(),
                format!(
                    "released by {officer}{}",
                    if note.is_empty() {
                        String::new()
                    } else {
                        format!(": {note}")
                    }
                ),
            )],
            ..Transition::default()
        };
        let answer = (state::RELEASED, &[][..], conditions);
        self.answer_stored(&mut change, declaration, answer, answered, now);
        change
    }

    /// An officer orders the goods of a declaration examined (`reason`
    /// says why): its lane becomes red, so that an amendment cannot take
    /// it out of examination. A cleared declaration is held at once and
    /// its sender told (numbered after the `answered` responses, on the
    /// `conditions` of its permits); one still awaiting permits is held
    /// once they are granted, as any red-lane declaration, and its sender
    /// is told now that the goods are to be examined (answer
    /// `examination_ordered`, on no conditions: the permits are not all
    /// given), so that the examination can be arranged while the agencies
    /// decide. Who ordered it
    /// and why is an event for officers only
    /// ([`state::EXAMINATION_ORDERED`]); the lane and the hold say
    /// "ordered by customs". One red already (held, or to be held once its
    /// permits are granted) changes nothing: an empty transition, as the
    /// order stands already.
    pub fn hold(
        &self,
        declaration: &StoredDeclaration,
        officer: &str,
        reason: &str,
        conditions: &[String],
        answered: usize,
        now: Timestamp,
    ) -> Transition {
        let red = Lane::Red.as_str();
        let mut change = Transition::default();
        if declaration.lane.as_deref() == Some(red) {
            return change;
        }
        change.lane = Some(red.into());
        change.events.push((
            state::EXAMINATION_ORDERED.into(),
            format!("by {officer}: {reason}"),
        ));
        let mut lane = String::from("red lane: examination ordered by customs");
        if declaration.status == state::AWAITING_PERMITS {
            lane.push_str("; held for it once the permits are granted");
        }
        change.events.push((state::LANE_ASSIGNED.into(), lane));
        if declaration.status == state::CLEARED {
            change.events.push((
                state::HELD.into(),
                "held for physical examination (ordered by customs)".into(),
            ));
            change.status = Some(state::HELD.into());
            let answer = (state::HELD, &[][..], conditions);
            self.answer_stored(&mut change, declaration, answer, answered, now);
        } else if declaration.status == state::AWAITING_PERMITS {
            let answer = (state::EXAMINATION_ORDERED, &[][..], &[][..]);
            self.answer_stored(&mut change, declaration, answer, answered, now);
        }
        change
    }

    /// RUL008 and RUL009: references to other declarations of the sender.
    /// An amendment or cancellation that quotes an MRN refers to the
    /// declaration holding it (`prior` was found by it); one that does not,
    /// to the declaration with its LRN.
    fn reference_rules(&self, decl: &Declaration, prior: Option<&Prior>) -> Vec<Issue> {
        let at = |path: &str| Location {
            path: Some(path.into()),
            ..Location::default()
        };
        let what = function_name(decl.function);
        // What the reference names, and where it is.
        let (named, path) = match &decl.mrn {
            Some(mrn) => (format!("MRN {mrn:?}"), "/mrn"),
            None => (format!("LRN {:?}", decl.lrn), "/lrn"),
        };
        match (decl.function, prior) {
            (DeclarationFunction::Original, _) if decl.mrn.is_some() => vec![Issue::error(
                Code::RuleReference,
                at("/mrn"),
                format!(
                    "an original declaration cannot quote an MRN ({named}): customs issues the \
                     MRN when it accepts the declaration; to change the declaration holding it, \
                     send an amendment"
                ),
            )],
            (DeclarationFunction::Original, Some(p)) if cancelled(p) => vec![Issue::error(
                Code::RuleDuplicateLrn,
                at("/lrn"),
                format!(
                    "LRN {:?} is the LRN of cancellation {} of this sender, which keeps it (a \
                     cancellation by LRN keeps the cancelled declaration's); an LRN is not \
                     reused: send a new one",
                    decl.lrn, p.id
                ),
            )],
            (DeclarationFunction::Original, Some(p)) => vec![Issue::error(
                Code::RuleDuplicateLrn,
                at("/lrn"),
                format!(
                    "LRN {:?} was already declared (declaration {}, {}); send an amendment or a new LRN",
                    decl.lrn, p.id, p.status
                ),
            )],
            (DeclarationFunction::Amendment | DeclarationFunction::Cancellation, None) => {
                vec![Issue::error(
                    Code::RuleReference,
                    at(path),
                    format!(
                        "the {what} refers to {named}, which no live declaration of this sender has"
                    ),
                )]
            }
            (DeclarationFunction::Amendment | DeclarationFunction::Cancellation, Some(p))
                if !state::CHANGEABLE.contains(&p.status.as_str()) =>
            {
                let change = if decl.function == DeclarationFunction::Amendment {
                    "amended"
                } else {
                    "cancelled"
                };
                vec![Issue::error(
                    Code::RuleReference,
                    at(path),
                    if cancelled(p) {
                        format!(
                            "{named} is held by cancellation {} of this sender (the declaration \
                             it cancelled, or the cancellation itself); it can no longer be \
                             {change}",
                            p.id
                        )
                    } else {
                        format!(
                            "declaration {} with {named} is {}; it can no longer be {change}",
                            p.id, p.status
                        )
                    },
                )]
            }
            _ => Vec::new(),
        }
    }

    /// Adds the response for `status` to the sender and the status event
    /// on `tradehub.events`.
    #[allow(clippy::too_many_arguments)]
    fn respond(
        &self,
        d: &mut NewDeclaration,
        reply: &Reply,
        status: &str,
        errors: &[Issue],
        conditions: &[String],
        sequence_base: usize,
        now: Timestamp,
    ) {
        let response = Response {
            declaration_lrn: reply.lrn.clone().unwrap_or_default(),
            mrn: d.mrn.clone(),
            status: status.to_owned(),
            errors: errors.iter().map(crate::ack::response_error).collect(),
            conditions: conditions.to_vec(),
            at: moment(now),
        };
        // Answers of one declaration are numbered by its stored responses;
        // a transition adds at most one.
        let sequence = d.responses.len() + sequence_base;
        let rendered =
            super::responses::render(self, reply, &response, errors, now, &d.id, sequence);
        let message_id = format!("{}/{status}/{sequence}/response", d.id);
        d.outbox.push(OutboxMessage {
            exchange: ACKS_EXCHANGE.into(),
            routing_key: format!("ack.{}", reply.partner),
            message_id: message_id.clone(),
            content_type: rendered.content_type.into(),
            payload: rendered.bytes,
            correlation_id: reply.correlation.clone(),
        });
        d.responses.push(NewResponse {
            kind: rendered.kind.into(),
            status: status.to_owned(),
            body: rendered.text,
            message_id,
        });
        // The event says the declaration's own status, where it has one
        // that differs from what its answer says: a cancellation is stored
        // accepted (what it cancelled has its own event, `superseded`).
        let status = if d.status.is_empty() {
            status
        } else {
            d.status.as_str()
        };
        let event = serde_json::json!({
            "type": format!("declaration.{status}"),
            "declaration": {
                "id": d.id,
                "lrn": reply.lrn,
                "partner": reply.partner,
                "message_type": reply.message_type,
                "status": status,
                // Events reach carriers too: no screening lane.
                "lane": if lane_is_screening(&d.target) { None } else { d.lane.as_deref() },
                "at": now.to_string(),
            }
        });
        d.outbox.push(json_message(
            EVENTS_EXCHANGE,
            format!("declaration.{status}"),
            format!("{}/{status}/{sequence}/event", d.id),
            &event,
        ));
    }
}

impl Clearance {
    /// A cargo report that cancels the sender's live report is answered as
    /// a declaration's cancellation is, `cancelled`, in place of the
    /// `accepted` it got on intake (which told the carrier nothing of the
    /// cancellation); it stays stored as accepted.
    pub fn answer_cancellation(&self, d: &mut NewDeclaration, reply: &Reply, now: Timestamp) {
        if d.responses
            .last()
            .is_some_and(|r| r.status == state::ACCEPTED)
        {
            let sequence = d.responses.len() - 1;
            d.responses.pop();
            let answered = format!("{}/{}/{sequence}/", d.id, state::ACCEPTED);
            d.outbox.retain(|m| !m.message_id.starts_with(&answered));
        }
        self.respond(d, reply, state::CANCELLED, &[], &[], 0, now);
    }

    /// The messages about the declaration `s` replaces, written with the
    /// one replacing it (`d`): its status event on `tradehub.events`
    /// (`declaration.amended` or `declaration.cancelled`, naming what
    /// replaced it), and to each agency whose permit for it was pending
    /// (`pending`: permit id and agency), a withdrawal notice on its permit
    /// queue (`permit.<CODE>`, JSON `{"type": "permit.withdrawn", …}`): the
    /// permit is withdrawn and an answer to it is no longer taken.
    pub fn superseded(
        &self,
        d: &mut NewDeclaration,
        s: &Supersede,
        replaced: &Prior,
        reply: &Reply,
        pending: &[(String, String)],
        now: Timestamp,
    ) {
        let event = serde_json::json!({
            "type": format!("declaration.{}", s.to),
            "declaration": {
                "id": s.id,
                "lrn": replaced.lrn,
                "partner": reply.partner,
                "message_type": reply.message_type,
                "status": s.to,
                "lane": replaced.lane,
                "replaced_by": d.id,
                "at": now.to_string(),
            }
        });
        d.outbox.push(json_message(
            EVENTS_EXCHANGE,
            format!("declaration.{}", s.to),
            format!("{}/{}/by/{}/event", s.id, s.to, d.id),
            &event,
        ));
        for (permit, agency) in pending {
            let notice = serde_json::json!({
                "type": "permit.withdrawn",
                "permit_id": permit,
                "agency": agency,
                "declaration_id": s.id,
                "replaced_by": d.id,
                "reason": s.detail,
                "at": now.to_string(),
            });
            d.withdrawal_notices.push((
                permit.clone(),
                agency_notice(agency, permit, "withdrawn", &notice),
            ));
        }
    }
}

/// A notice to an agency about one of its permits (`what`: `expired`,
/// `withdrawn`) on its permit queue, `message_id` `<permit id>/<what>`.
fn agency_notice(
    agency: &str,
    permit: &str,
    what: &str,
    notice: &serde_json::Value,
) -> OutboxMessage {
    json_message(
        PERMITS_EXCHANGE,
        format!("permit.{agency}"),
        format!("{permit}/{what}"),
        notice,
    )
}

/// Whether the live declaration an LRN names is the cancellation of the
/// one that had it.
fn cancelled(prior: &Prior) -> bool {
    prior.function.as_deref() == Some(function_name(DeclarationFunction::Cancellation))
}

/// The canonical name of a declaration function.
pub fn function_name(f: DeclarationFunction) -> &'static str {
    match f {
        DeclarationFunction::Original => "original",
        DeclarationFunction::Amendment => "amendment",
        DeclarationFunction::Cancellation => "cancellation",
    }
}

/// The stored status of a permit for an agency's outcome.
pub fn permit_status(outcome: PermitOutcome) -> &'static str {
    match outcome {
        PermitOutcome::Granted => "granted",
        PermitOutcome::Refused => "refused",
        PermitOutcome::Conditional => "conditional",
    }
}

/// The conditions of the permits given with conditions, one per permit in
/// the order given: `AGENCY: conditions` (the decision's conditions, else
/// its reasons).
pub fn permit_conditions(permits: &[StoredPermit]) -> Vec<String> {
    permits
        .iter()
        .filter(|p| p.status == "conditional")
        .map(|p| {
            let decision = p
                .decision_json
                .as_deref()
                .and_then(|j| serde_json::from_str::<PermitDecision>(j).ok());
            let terms = match decision {
                Some(PermitDecision {
                    conditions: Some(c),
                    ..
                }) if !c.trim().is_empty() => c,
                Some(d) if !d.reasons.is_empty() => d.reasons.join("; "),
                _ => "conditions not stated".to_owned(),
            };
            format!("{}: {terms}", p.agency)
        })
        .collect()
}

/// The goods items a permit was requested for, as its answer names them
/// (` for goods item 2`, ` for goods items 1, 3`); empty when its request
/// named none or cannot be read.
fn permit_goods(p: &StoredPermit) -> String {
    match goods_of(p).as_slice() {
        [] => String::new(),
        [one] => format!(" for goods item {one}"),
        many => {
            let listed: Vec<String> = many.iter().map(u16::to_string).collect();
            format!(" for goods items {}", listed.join(", "))
        }
    }
}

/// The sequence numbers of the goods items a permit's request named.
fn goods_of(p: &StoredPermit) -> Vec<u16> {
    #[derive(Deserialize)]
    struct Goods {
        #[serde(default)]
        goods: Vec<u16>,
    }
    serde_json::from_str::<Goods>(&p.request_json)
        .map(|g| g.goods)
        .unwrap_or_default()
}

/// Who answered a permit and what the answer can name (see
/// [`Clearance::after_decision`]).
#[derive(Debug, Clone, Copy)]
pub struct Answered<'a> {
    /// The agency account that answered (none for an expiry).
    pub by: Option<&'a str>,
    /// How many responses the sender has had.
    pub answered: usize,
    /// Where the declaration's goods items stand in its message.
    pub goods_at: &'a super::permits::GoodsLocated,
}

fn decision_reasons(p: &StoredPermit) -> Vec<String> {
    let Some(decision) = p
        .decision_json
        .as_deref()
        .and_then(|j| serde_json::from_str::<PermitDecision>(j).ok())
    else {
        return Vec::new();
    };
    let mut out = decision.reasons;
    if let Some(c) = decision.conditions {
        out.push(format!("conditions: {c}"));
    }
    out
}

fn summary(errors: &[Issue]) -> Option<String> {
    let first = errors.first()?;
    Some(format!("{} {}", first.code, first.message))
}

fn moment(now: Timestamp) -> Moment {
    Moment {
        iso: now.to_string().trim_end_matches('Z').to_owned(),
        format: "204".into(),
    }
}

/// True when a record of this target's lane is its travellers' screening
/// (a passenger list's): for customs officers only, never told to the
/// carrier that sent it, on `tradehub.events` or over HTTP.
pub fn lane_is_screening(target: &str) -> bool {
    target == "passenger_list"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permit(request_json: &str) -> StoredPermit {
        StoredPermit {
            id: "P1".into(),
            declaration_id: "D1".into(),
            agency: "MFDS".into(),
            rule: "r".into(),
            status: "refused".into(),
            requested_at: String::new(),
            due_at: String::new(),
            decided_at: None,
            request_json: request_json.into(),
            decision_json: None,
        }
    }

    /// A refusal or expiry names the goods items its permit was for, as
    /// the request sent to the agency listed them.
    #[test]
    fn a_permit_answer_names_its_goods_items() {
        assert_eq!(
            permit_goods(&permit(r#"{"goods": [2]}"#)),
            " for goods item 2"
        );
        assert_eq!(
            permit_goods(&permit(
                r#"{"id": "P1", "goods": [1, 3, 12], "declaration": {}}"#
            )),
            " for goods items 1, 3, 12"
        );
        assert_eq!(permit_goods(&permit(r#"{"goods": []}"#)), "");
        assert_eq!(permit_goods(&permit("not json")), "");
    }
}
