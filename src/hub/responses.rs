//! The answers a declarant receives when its declaration changes state, in
//! the declarant's own format: for UN/EDIFACT senders an APERAK (D.96B)
//! when the message is rejected with errors located at segments and
//! elements, otherwise a CUSRES (D.96B) carrying the status; for WCO XML
//! senders a WCO RES. The canonical JSON form is the fallback when an
//! answer cannot be written in the sender's format.

use crate::ack::res::{clip, lrn_for_res, text_for_res};
use crate::ack::{Envelope, Original, aperak, cusres, to_bytes};
use crate::diag::Issue;
use crate::model::Response;
use crate::timestamp::Timestamp;
use crate::xml::response::{
    AdditionalInformation, DeclarationRef, ResponseFunction, WcoResponse, write,
};

use super::clearance::{Clearance, Reply, state};

/// A rendered answer.
pub(crate) struct Rendered {
    /// `aperak`, `cusres`, `res` or `json`.
    pub kind: &'static str,
    pub content_type: &'static str,
    /// The answer as stored and shown.
    pub text: String,
    /// The answer as sent (EDIFACT in the repertoire its UNB names).
    pub bytes: Vec<u8>,
}

/// The response to `reply`'s sender; `sequence` numbers the answers of one
/// declaration (it makes the EDIFACT control reference unique).
pub(crate) fn render(
    clearance: &Clearance,
    reply: &Reply,
    response: &Response,
    errors: &[Issue],
    now: Timestamp,
    declaration_id: &str,
    sequence: usize,
) -> Rendered {
    if reply.format == "xml" {
        let res = wco_response(reply, response, errors, now, declaration_id, sequence);
        match write(&res) {
            Ok(xml) => {
                return Rendered {
                    kind: "res",
                    content_type: "application/xml",
                    bytes: xml.clone().into_bytes(),
                    text: xml,
                };
            }
            // Not expected: the LRN and the texts are made fit for XML
            // above. Should it happen, the answer goes as JSON and the
            // operator is told.
            Err(e) => tracing::error!(
                declaration = declaration_id,
                error = %e,
                "the WCO RES cannot be written; the answer is sent as JSON"
            ),
        }
    } else if reply.format == "edifact" {
        // UNB 0020 / UNH 0062: an..14, unique per answer: the random tail
        // of the declaration id and the answer's number.
        let tail: String = declaration_id
            .chars()
            .filter(char::is_ascii_hexdigit)
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let envelope = Envelope {
            hub: if reply.recipient.is_empty() {
                clearance.hub_id.clone()
            } else {
                reply.recipient.clone()
            },
            hub_qualifier: reply.recipient_qualifier.clone(),
            partner: reply.partner.clone(),
            partner_qualifier: reply.sender_qualifier.clone(),
            partner_routing: reply.sender_routing.clone(),
            syntax_identifier: if reply.syntax_identifier.is_empty() {
                "UNOC".into()
            } else {
                reply.syntax_identifier.clone()
            },
            syntax_version: if reply.syntax_version == 0 {
                4
            } else {
                reply.syntax_version
            },
            reference: format!("{}{}", tail.to_uppercase(), answer_number(sequence)),
            at: now,
        };
        let original = Original {
            interchange_reference: reply.interchange_reference.clone(),
            message_reference: reply.message_reference.clone(),
            message_type: reply.message_type.clone(),
            lrn: reply.lrn.clone(),
        };
        let (kind, text) = if response.status == state::REJECTED && !errors.is_empty() {
            ("aperak", aperak::build(&original, errors, &envelope))
        } else {
            ("cusres", cusres::build(response, &original, &envelope))
        };
        return Rendered {
            kind,
            content_type: "application/edifact",
            bytes: to_bytes(&text),
            text,
        };
    }
    let text = serde_json::to_string(response).unwrap_or_default();
    Rendered {
        kind: "json",
        content_type: "application/json",
        bytes: text.clone().into_bytes(),
        text,
    }
}

/// The WCO RES for a declaration status.
fn wco_response(
    reply: &Reply,
    response: &Response,
    errors: &[Issue],
    now: Timestamp,
    declaration_id: &str,
    sequence: usize,
) -> WcoResponse {
    // The function codes of HMRC's CDS notifications (DMS): 01 accepted,
    // 03 rejected, 05 under control (held for examination), 06 documents
    // required (a permit the goods need was refused or not given in time,
    // the errors say which), 08 released, 09 cleared, 10 cancelled.
    let function = match response.status.as_str() {
        state::REJECTED => ResponseFunction::Rejected,
        state::CLEARED => ResponseFunction::Cleared,
        state::RELEASED => ResponseFunction::Released,
        state::CANCELLED => ResponseFunction::Cancelled,
        state::HELD if !errors.iter().any(Issue::is_error) => ResponseFunction::UnderControl,
        state::EXAMINATION_ORDERED => ResponseFunction::UnderControl,
        state::HELD => ResponseFunction::DocumentsRequired,
        _ => ResponseFunction::Accepted,
    };
    // FunctionalReferenceID: unique per response, at most 35 characters:
    // the declaration's id and the answer's number.
    let reference: String = declaration_id.chars().filter(|c| *c != '-').collect();
    let reference = format!("{}{}", clip(&reference, 32), answer_number(sequence));
    let mut res = WcoResponse::new(function, reference, now);
    res.declaration = DeclarationRef {
        lrn: reply.lrn.as_deref().and_then(lrn_for_res),
        mrn: response.mrn.clone(),
        rejected: (function == ResponseFunction::Rejected).then_some(now),
        cancelled: (response.status == state::CANCELLED).then_some(now),
        accepted: matches!(
            response.status.as_str(),
            state::AWAITING_PERMITS | state::ACCEPTED
        )
        .then_some(now),
        ..DeclarationRef::default()
    };
    res.additional_information.push(AdditionalInformation {
        statement_description: Some(format!("declaration {declaration_id}: {}", response.status)),
        ..AdditionalInformation::default()
    });
    // The conditions of permits given with conditions: one statement each,
    // of type AAX (UN/EDIFACT 4451, licence information).
    for condition in &response.conditions {
        res.additional_information.push(AdditionalInformation {
            statement_description: Some(text_for_res(condition, 512)),
            statement_type_code: Some("AAX".into()),
            ..AdditionalInformation::default()
        });
    }
    // At most 99, then one saying how many more (EDI106, as CUSRES); a
    // warning, told with an accepting answer, says it is one.
    let errors: Vec<&Issue> = errors.iter().collect();
    crate::ack::res::push_errors(&mut res.errors, &errors, errors.len(), "EDI106");
    res
}

/// The answer's number in the last two characters of its interchange
/// reference: base 36 (0-9, then A-Z), so that the first ten read as
/// before ("00" to "09") and 1,296 answers to one declaration stay
/// distinct (decimal wrapped after 100).
fn answer_number(sequence: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let n = sequence % (36 * 36);
    let digit = |d: usize| char::from(DIGITS.get(d).copied().unwrap_or(b'0'));
    format!("{}{}", digit(n / 36), digit(n % 36))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Code, Location};
    use crate::model::Moment;

    /// An LRN or an agency's condition with a character XML cannot carry
    /// still gives a WCO RES (the LRN left out, the character replaced),
    /// not a JSON answer to an XML sender.
    #[test]
    fn a_value_xml_cannot_carry_does_not_turn_the_res_into_json() {
        let reply = Reply {
            format: "xml".into(),
            partner: "GB-BROKER".into(),
            lrn: Some("LRN\u{0}1".into()),
            ..Reply::default()
        };
        let response = Response {
            declaration_lrn: "LRN\u{0}1".into(),
            mrn: Some("26KR0FQ3B5T2L8W1X0".into()),
            status: state::CLEARED.into(),
            errors: Vec::new(),
            conditions: vec!["keep cold\u{1b}[0m below 8 C".into()],
            at: Moment {
                iso: "2026-11-27T00:00:00Z".into(),
                format: "304".into(),
            },
        };
        let id = "0194f2a0-0000-7000-8000-000000000001";
        let res = wco_response(&reply, &response, &[], Timestamp::now(), id, 1);
        let xml = write(&res).expect("written");
        assert!(!xml.contains("LRN"), "{xml}");
        assert!(xml.contains("keep cold\u{FFFD}[0m below 8 C"), "{xml}");
        let report = crate::xml::XmlValidator::new(None, crate::xml::XmlLimits::default())
            .validate(xml.as_bytes(), "res.xml");
        assert!(report.valid, "{:#?}", report.issues);
    }

    #[test]
    fn wco_answers_say_the_state_in_their_function_and_each_has_its_own_reference() {
        let reply = Reply {
            format: "xml".into(),
            partner: "GB-BROKER".into(),
            lrn: Some("LRN1".into()),
            ..Reply::default()
        };
        let now = Timestamp::now();
        let response = |status: &str| Response {
            declaration_lrn: "LRN1".into(),
            mrn: Some("26KR0FQ3B5T2L8W1X0".into()),
            status: status.into(),
            errors: Vec::new(),
            conditions: Vec::new(),
            at: Moment {
                iso: "2026-11-27T00:00:00Z".into(),
                format: "304".into(),
            },
        };
        let refused = [Issue::error(
            Code::PermitRefused,
            Location::default(),
            "refused",
        )];
        // A warning goes with an accepting answer: it makes a hold for
        // examination no hold for documents.
        let warned = [Issue::warning(
            Code::RuleTotals,
            Location::default(),
            "totals in another currency",
        )];
        let id = "0194f2a0-0000-7000-8000-000000000001";
        let mut references = std::collections::HashSet::new();
        for (sequence, (status, errors, code)) in [
            (state::AWAITING_PERMITS, &[][..], 1),
            (state::REJECTED, &refused[..], 3),
            (state::HELD, &[][..], 5),
            (state::HELD, &refused[..], 6),
            (state::HELD, &warned[..], 5),
            (state::RELEASED, &[][..], 8),
            (state::CLEARED, &[][..], 9),
            (state::CANCELLED, &[][..], 10),
            (state::AWAITING_PERMITS, &warned[..], 1),
            (state::EXAMINATION_ORDERED, &[][..], 5),
        ]
        .into_iter()
        .enumerate()
        {
            let res = wco_response(&reply, &response(status), errors, now, id, sequence);
            assert_eq!(res.function.code(), code, "{status}");
            assert!(res.functional_reference_id.len() <= 35);
            references.insert(res.functional_reference_id);
            // Each warning listed, saying it is one; errors do not.
            assert_eq!(res.errors.len(), errors.len());
            for (listed, issue) in res.errors.iter().zip(errors) {
                let description = listed.description.as_deref().unwrap_or_default();
                assert_eq!(
                    description.starts_with("(warning) "),
                    !issue.is_error(),
                    "{description}"
                );
            }
        }
        assert_eq!(references.len(), 10, "{references:?}");
    }

    /// The conditions of permits given with conditions reach an XML sender
    /// as statements of type AAX (licence information), in a RES that still
    /// writes.
    #[test]
    fn conditions_are_statements_of_the_wco_answer() {
        let reply = Reply {
            format: "xml".into(),
            partner: "GB-BROKER".into(),
            lrn: Some("LRN1".into()),
            ..Reply::default()
        };
        let response = Response {
            declaration_lrn: "LRN1".into(),
            mrn: None,
            status: state::CLEARED.into(),
            errors: Vec::new(),
            conditions: vec!["APQA: keep chilled <4 C & sealed".into()],
            at: Moment {
                iso: "2026-11-27T00:00:00Z".into(),
                format: "304".into(),
            },
        };
        let res = wco_response(&reply, &response, &[], Timestamp::now(), "d-1", 1);
        let statements: Vec<(Option<&str>, Option<&str>)> = res
            .additional_information
            .iter()
            .map(|a| {
                (
                    a.statement_type_code.as_deref(),
                    a.statement_description.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            statements,
            [
                (None, Some("declaration d-1: cleared")),
                (Some("AAX"), Some("APQA: keep chilled <4 C & sealed"))
            ]
        );
        let xml = write(&res).unwrap_or_default();
        assert!(
            xml.contains("APQA: keep chilled &lt;4 C &amp; sealed"),
            "{xml}"
        );
    }

    #[test]
    fn answer_numbers_are_two_characters_and_distinct_for_1296_answers() {
        assert_eq!(answer_number(0), "00");
        assert_eq!(answer_number(9), "09");
        assert_eq!(answer_number(10), "0A");
        assert_eq!(answer_number(100), "2S");
        assert_eq!(answer_number(1295), "ZZ");
        let all: std::collections::HashSet<String> = (0..1296).map(answer_number).collect();
        assert_eq!(all.len(), 1296);
        assert!(all.iter().all(|a| a.len() == 2));
    }
}
