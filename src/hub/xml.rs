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

use super::{Intake, Receipt, Submission, clearance, status};

impl Intake {
    pub(super) async fn submit_xml(
        &self,
        partner: &Partner,
        bytes: Vec<u8>,
        now: Timestamp,
        sha256: String,
    ) -> Result<Submission, StoreError> {
        let validator = self.xml.clone();
        let rule_settings = crate::rules::RuleSettings {
            now,
            tolerance: self.clearance.tolerance,
        };
        let size = bytes.len();
        let (report, mapped, bytes) = super::cpu_work(size, move || {
            let mut report = validator.validate(&bytes, "body");
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
            let mapped = report
                .valid
                .then(|| map_declaration(&bytes, &report, &rule_settings));
            (report, mapped, bytes)
        })
        .await?;

        let id = uuid::Uuid::now_v7().to_string();
        let response_id: String = id.chars().filter(|c| *c != '-').collect();
        let acknowledgement =
            crate::xml::response::write(&crate::ack::res::for_report(&report, now, &response_id))
                .unwrap_or_default();
        let errors = report.issues.iter().filter(|i| i.is_error()).count();
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
                format!("{} bytes of WCO XML, sha256 {}", new.raw.len(), new.sha256),
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
            ..clearance::Reply::default()
        };
        let declarations = self
            .declarations(partner, &reply, mapped.into_iter().collect(), now)
            .await?;
        match self
            .store_new(&new, &events, &outbox, &declarations, now)
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
}

/// The mapped declaration with its located rule findings.
fn map_declaration(
    bytes: &[u8],
    report: &XmlReport,
    settings: &crate::rules::RuleSettings,
) -> (Mapped, Vec<Issue>) {
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
    };
    let mapping = match crate::mapping::wco::load() {
        Ok(m) => m,
        Err(e) => {
            mapped.issues.push(Issue::error(
                Code::MappingUnavailable,
                Location::default(),
                e.to_string(),
            ));
            return (mapped, Vec::new());
        }
    };
    let (value, issues, provenance) = mapping.apply_located(bytes);
    mapped.issues = issues;
    mapped.provenance = provenance;
    match crate::mapping::typed(&mapping.target, value) {
        Ok(canonical) => mapped.canonical = Some(canonical),
        Err(e) => mapped.issues.push(Issue::error(
            Code::MappingIncomplete,
            Location::default(),
            format!("the mapped declaration is incomplete: {e}"),
        )),
    }
    let findings = crate::rules::check_mapped(&mapped, settings);
    (mapped, findings)
}

/// `local` of `{namespace}local`.
fn local_name(root: &str) -> &str {
    root.rsplit('}').next().unwrap_or(root)
}
