//! APERAK (application error and acknowledgement, UN/EDIFACT D.96B): the
//! answer to an EDIFACT sender whose message broke a business rule or could
//! not be mapped, one error group per finding with the tradehub code and
//! the segment, element and component of the offending value.
//!
//! Layout (D.96B APERAK segment table; codes from the D.96B UNCL):
//!
//! ```text
//! BGM+963+REF+27+RE'              1001 963 error response (Customs), or 961
//!                                 general response (Customs) when there is
//!                                 nothing to report; 1225 27 not accepted /
//!                                 29 accepted without amendment; 4343 RE
//!                                 rejected / AP accepted. (D.96B has no
//!                                 "application error and acknowledgement"
//!                                 document code; 305 came later.)
//! DTM+137:CCYYMMDDHHMM:203'       2005 137 document/message date/time
//! FTX+AAP+++answer to …'          4451 AAP response (free text)
//! RFF+ACW:1'  RFF+INO:…'  RFF+ABE:LRN'    SG1: 1153 ACW reference number to
//!                                 previous message (UNH 0062), INO
//!                                 interchange number old (the answered
//!                                 interchange's UNB 0020; UNCL 1153: INN
//!                                 points to the interchange the reference
//!                                 is in, INO to a previous one), ABE
//!                                 declarant's reference number (the LRN)
//! ERC+RUL002::ZZZ'                SG3, per finding: 9321 the tradehub code
//!                                 (D.96B 9321 is user defined, an..8), 3055
//!                                 ZZZ mutually defined
//! FTX+AAO+++HS code …'            4451 AAO error description
//! RFF+ACW:1:17'                   SG4: the message, 1156 line number = the
//!                                 segment's position in it (UNH = 1)
//! FTX+ACB+++segment CST at …'     4451 ACB additional information: tag and
//!                                 position, element and component, group
//!                                 path, canonical field
//! ```

use super::{Envelope, Original};
use crate::diag::{Code, Issue, Severity};
use crate::edifact::{Element, Segment};

/// Error groups (SG3) one D.96B APERAK may hold: the segment table's
/// repetition count for SG3 (a test checks it against the directory).
pub const MAX_ERROR_GROUPS: usize = 99_999;

/// The APERAK interchange answering `original` with `findings` (an empty
/// list acknowledges the message). At most [`MAX_ERROR_GROUPS`] error
/// groups: past that, the last group (EDI106) says how many were left out.
pub fn build(original: &Original, findings: &[Issue], envelope: &Envelope) -> String {
    build_bounded(original, findings, envelope, MAX_ERROR_GROUPS)
}

pub(crate) fn build_bounded(
    original: &Original,
    findings: &[Issue],
    envelope: &Envelope,
    max_groups: usize,
) -> String {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let rejected = errors > 0;
    let mut body = vec![Segment::new(
        "BGM",
        vec![
            Element::simple(if rejected { "963" } else { "961" }),
            Element::simple(super::cut(&envelope.reference, 35)),
            Element::simple(if rejected { "27" } else { "29" }),
            Element::simple(if rejected { "RE" } else { "AP" }),
        ],
    )];
    body.push(super::dtm_prepared(&envelope.at));
    body.push(super::ftx(
        "AAP",
        &[
            super::answering(original),
            format!(
                "{} finding(s), {errors} error(s){}",
                findings.len(),
                if rejected { "; not accepted" } else { "" }
            ),
        ],
    ));
    body.push(super::rff("ACW", &original.message_reference, None));
    body.push(super::rff("INO", &original.interchange_reference, None));
    if let Some(lrn) = original.lrn.as_deref().filter(|l| !l.is_empty()) {
        body.push(super::rff("ABE", lrn, None));
    }
    let max_groups = max_groups.max(1);
    let (listed, left_out) = if findings.len() > max_groups {
        (
            findings.get(..max_groups - 1).unwrap_or_default(),
            findings.len() - (max_groups - 1),
        )
    } else {
        (findings, 0)
    };
    for finding in listed {
        body.extend(error_group(original, finding));
    }
    if left_out > 0 {
        body.push(super::erc(Code::TooManyIssues.as_str()));
        body.push(super::ftx(
            "AAO",
            &[format!(
                "{left_out} further finding(s) not listed: an APERAK holds at most {max_groups} error groups"
            )],
        ));
    }
    super::interchange(envelope, "APERAK", body)
}

/// SG3 for one finding: ERC, FTX, and SG4 (RFF, FTX) with its location.
fn error_group(original: &Original, finding: &Issue) -> Vec<Segment> {
    let loc = &finding.location;
    let message = loc
        .message
        .as_deref()
        .unwrap_or(&original.message_reference);
    let text = if finding.severity == Severity::Warning {
        format!("(warning) {}", finding.message)
    } else {
        finding.message.clone()
    };
    let mut out = vec![
        super::erc(finding.code.as_str()),
        super::ftx("AAO", &[text]),
        super::rff("ACW", message, loc.message_segment),
    ];
    let place = super::describe(loc, message);
    out.push(super::ftx(
        "ACB",
        &if place.is_empty() {
            vec![format!("message {message} as a whole")]
        } else {
            place
        },
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Location;

    #[test]
    fn error_groups_are_bounded_and_the_rest_counted() {
        let findings: Vec<Issue> = (1..=5)
            .map(|i| {
                Issue::error(
                    Code::RuleHsCode,
                    Location::default(),
                    format!("finding {i}"),
                )
            })
            .collect();
        let envelope = Envelope {
            hub: "HUB".into(),
            hub_qualifier: String::new(),
            partner: "PARTNER".into(),
            partner_qualifier: String::new(),
            partner_routing: String::new(),
            syntax_identifier: "UNOC".into(),
            syntax_version: 3,
            reference: "A1".into(),
            at: crate::timestamp::Timestamp::from_unix(0),
        };
        let original = Original {
            interchange_reference: "I1".into(),
            message_reference: "1".into(),
            message_type: "CUSDEC".into(),
            lrn: None,
        };
        let text = build_bounded(&original, &findings, &envelope, 3);
        assert_eq!(text.matches("ERC+RUL002::ZZZ'").count(), 2, "{text}");
        assert!(
            text.contains("ERC+EDI106::ZZZ'FTX+AAO+++3 further finding(s) not listed"),
            "{text}"
        );
        assert!(!text.contains("finding 3"), "{text}");
        // Unlocated findings are about the message as a whole.
        assert!(
            text.contains("RFF+ACW:1'FTX+ACB+++message 1 as a whole'"),
            "{text}"
        );
    }
}
