//! Intake of WCO Data Model XML: the declaration is validated against the
//! WCO schemas, answered at once with a WCO RES (02 received or 03
//! rejected, errors located by element path) and, when valid, mapped by
//! mappings/wco/DEC.toml into the canonical declaration that then goes
//! through the same clearance workflow as a CUSDEC. Later answers (cleared,
//! held, …) are WCO RES as well.
//!
//! WCO documents carry no interchange control reference: redelivery is
//! recognised by the bytes (same partner, same SHA-256), and a second
//! original with the same LRN is refused by RUL009.

use crate::diag::{Code, Issue, Location};
use crate::mapping::Mapped;
use crate::store::{NewInterchange, Partner, StoreError};
use crate::timestamp::Timestamp;
use crate::xml::{DocumentKind, XmlReport};

use super::{Intake, Receipt, RefusalReason, Refused, Submission, clearance, status};

impl Intake {
    pub(super) async fn submit_xml(
        &self,
        partner: &Partner,
        bytes: Vec<u8>,
        now: Timestamp,
        sha256: String,
    ) -> Result<Submission, StoreError> {
        let validator = self.xml.clone();
        let rule_settings = self.clearance.rule_settings(now);
        let size = bytes.len();
        let ((report, mapped, named, bytes), _turn) = super::cpu_work(size, move || {
            let mut report = validator.validate(&bytes, "body");
            refuse_non_declaration(&mut report);
            let mapped = report
                .valid
                .then(|| map_declaration(&bytes, &report, &rule_settings));
            let (mapped, named) = match mapped {
                Some((mapped, findings, named)) => (Some((mapped, findings)), named),
                None => (None, None),
            };
            (report, mapped, named, bytes)
        })
        .await?;

        if report.valid
            && let Some(refused) = self.wrong_trader(partner, named).await?
        {
            return self
                .record_refusal(partner, &sha256, bytes.len(), refused, now)
                .await;
        }

        let id = uuid::Uuid::now_v7().to_string();
        let response_id: String = id.chars().filter(|c| *c != '-').collect();
        let acknowledgement =
            crate::xml::response::write(&crate::ack::res::for_report(&report, now, &response_id))
                .unwrap_or_else(|e| {
                    tracing::error!(interchange = %id, error = %e, "the WCO RES acknowledgement cannot be written; none is stored");
                    String::new()
                });
        let errors = report.error_count();
        let status = if report.valid {
            status::VALIDATED
        } else {
            status::REJECTED
        };
        let new = NewInterchange {
            id: id.clone(),
            partner_id: partner.id.clone(),
            sender: partner.id.clone(),
            control_reference: None,
            sha256,
            format: "xml".into(),
            status: status.into(),
            received_at: now,
            message_count: 1,
            error_count: errors as i64,
            issues_json: serde_json::to_string(&report.issues).unwrap_or_else(|_| "[]".into()),
            acknowledgement,
            raw: bytes,
        };
        let events = [
            (
                "received",
                self.via.after(&format!(
                    "{} bytes of WCO XML, sha256 {}",
                    new.raw.len(),
                    new.sha256
                )),
            ),
            (
                status,
                if report.valid {
                    "valid against the WCO schema".to_owned()
                } else {
                    format!("{errors} error(s); WCO RES 03 rejects")
                },
            ),
        ];
        let outbox = [super::status_event(&new)];
        let reply = clearance::Reply {
            format: "xml".into(),
            partner: partner.id.clone(),
            correlation: self.via.correlation(),
            ..clearance::Reply::default()
        };
        let mapped: Vec<_> = mapped.into_iter().collect();
        match self
            .store_declared(&new, &events, &outbox, partner, &reply, &mapped, now)
            .await?
        {
            super::Stored::Committed => {}
            super::Stored::Duplicate(answer) => return Ok(answer),
            // WCO declarations carry no control reference of their own.
            super::Stored::ReferenceTaken(_) => {
                return Err(StoreError::Conflict {
                    what: format!("interchange {}", new.id),
                });
            }
        }
        tracing::info!(interchange = %id, partner = %partner.id, status, "WCO declaration stored");
        Ok(Submission::Stored(Receipt {
            interchange: new.into_stored(),
            issues: report.issues,
        }))
    }

    /// The sender rule for WCO declarations, which name no sender the way
    /// UNB does: when the partner has registered trader identifiers, the
    /// declaration's Submitter (or, without one, its Declarant) must be one
    /// of them. A partner with none registered submits as itself.
    async fn wrong_trader(
        &self,
        partner: &Partner,
        named: Option<String>,
    ) -> Result<Option<Refused>, StoreError> {
        let allowed = self.store.trader_ids(&partner.id).await?;
        if allowed.is_empty() {
            return Ok(None);
        }
        if named.as_ref().is_some_and(|id| allowed.contains(id)) {
            return Ok(None);
        }
        let detail = match &named {
            Some(id) => format!(
                "the declaration's submitter (or, without one, declarant) {id:?} is not a trader registered for the authenticated partner {:?}",
                partner.id
            ),
            None => format!(
                "the declaration names no Submitter nor Declarant ID; partner {:?} may only submit for its registered traders",
                partner.id
            ),
        };
        Ok(Some(Refused {
            reason: RefusalReason::WrongSender {
                sender: named.unwrap_or_default(),
            },
            code: Code::WrongSender,
            detail,
            acknowledgement: None,
        }))
    }
}

/// A valid WCO document that is not a declaration (a response, say) is
/// not taken: XML012 at its root element (`tradehub ack --kind res`
/// answers it as the hub does).
pub(crate) fn refuse_non_declaration(report: &mut XmlReport) {
    if report.valid && report.summary.kind != DocumentKind::Declaration {
        report.valid = false;
        report.issues.push(Issue::error(
            Code::XmlNotDeclaration,
            Location {
                path: Some(format!("/{}", local_name(&report.summary.root))),
                ..Location::default()
            },
            "the hub takes WCO declarations (DEC); this document is not one",
        ));
    }
}

/// The mapped declaration with its located rule findings, and the trader
/// it names as its Submitter (or, without one, its Declarant) — read from
/// the mapping's output even when that does not make a whole declaration.
pub(crate) fn map_declaration(
    bytes: &[u8],
    report: &XmlReport,
    settings: &crate::rules::RuleSettings,
) -> (Mapped, Vec<Issue>, Option<String>) {
    let reference = report
        .summary
        .functional_reference_id
        .clone()
        .unwrap_or_else(|| "1".into());
    let mut mapped = Mapped {
        message: reference,
        message_type: "WCO DEC".into(),
        target: "declaration".into(),
        canonical: None,
        issues: Vec::new(),
        provenance: Default::default(),
        partial: None,
    };
    let mapping = match crate::mapping::wco::load() {
        Ok(m) => m,
        Err(e) => {
            // The cause (with the file's path) is the operator's: logged,
            // not sent to the declarant.
            tracing::error!(error = %e, "the WCO DEC mapping did not load; a declaration cannot be mapped");
            mapped.issues.push(Issue::error(
                Code::MappingUnavailable,
                Location::default(),
                "the hub's WCO DEC mapping is not available; the declaration cannot be read",
            ));
            return (mapped, Vec::new(), None);
        }
    };
    let (value, issues, provenance) = mapping.apply_located(bytes);
    let party_id = |role: &str| {
        value
            .get(role)
            .and_then(|p| p.get("id"))
            .and_then(|id| id.as_str())
            .map(str::to_owned)
    };
    let named = party_id("submitter").or_else(|| party_id("declarant"));
    mapped.issues = issues;
    mapped.provenance = provenance;
    // Whole, or every gap located (at the element its pointer came from)
    // and what is left of the declaration for the rules.
    match crate::mapping::gaps(&mapping.target, value) {
        (gaps, Some(partial)) if gaps.is_empty() => mapped.canonical = Some(partial.rest),
        (gaps, partial) => {
            let gaps = crate::mapping::gap_issues(
                &gaps,
                &mapped.provenance,
                &Location::default(),
                "the mapped declaration",
                mapped.issues.len(),
            );
            mapped.issues.extend(gaps);
            mapped.partial = partial;
        }
    }
    let findings = crate::rules::check_mapped(&mapped, settings);
    (mapped, findings, named)
}

/// `local` of `{namespace}local`.
fn local_name(root: &str) -> &str {
    root.rsplit('}').next().unwrap_or(root)
}
