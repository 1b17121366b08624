//! CUSRES (customs response, UN/EDIFACT D.96B): what customs decided about
//! a declaration — its status, the LRN and MRN, the date, and the errors
//! with the segment each is about.
//!
//! Layout (D.96B CUSRES segment table; codes from the D.96B UNCL):
//!
//! ```text
//! BGM+961+LRN+29+AP'          1001 961 general response (Customs), 962
//!                             document response, 963 error response (when
//!                             errors are listed); 1004 the LRN (the
//!                             reference of the message answered); 1225 and
//!                             4343 per status (table below)
//! DTM+137:…:203'              2005 137 document/message date/time, in the
//!                             response's 2379 format
//! FTX+AAP+++status accepted'  4451 AAP response (free text)
//! GIS+1'                      7365 processing indicator per status
//! RFF+ABE:LRN'  RFF+ABT:MRN'  RFF+ACW:1'  RFF+INO:…'
//!                             SG3: 1153 ABE declarant's reference number
//!                             (LRN), ABT customs declaration number (MRN),
//!                             ACW reference number to previous message (UNH
//!                             0062), INO interchange number old (the
//!                             answered interchange's UNB 0020; UNCL 1153:
//!                             INN would be this response's own)
//! ERP++CST:17:5'              SG4, per error: C853 segment tag, sequence
//!                             number = position in the message (UNH = 1),
//!                             1159 5 transmission sequence
//! RFF+ACW:1:17'  ERC+RUL002::ZZZ'  FTX+AAO+++…'  FTX+ACB+++…'
//!                             the message and 1156 line number, the code
//!                             (9321, user defined in D.96B, 3055 ZZZ), the
//!                             text, the location in words
//! ```
//!
//! Status → codes (`status` is case-insensitive; `_`, `-` and space are
//! the same):
//!
//! | status | 1225 | 4343 | 7365 |
//! |---|---|---|---|
//! | received | 12 not processed | — | 17 message received |
//! | accepted, awaiting permits, cancelled (the cancellation is accepted) | 29 accepted without amendment | AP | 1 message content accepted |
//! | rejected | 27 not accepted | RE | 2 rejected with comment (3 without, when no error is listed) |
//! | cleared (every permit given; the goods wait for an officer's release) | 29 | AP | 1 message content accepted |
//! | released | 29 | AP | 4 goods released |
//! | cleared or released on permits given with conditions (listed in `FTX+AAX`) | 29 | CA conditionally accepted | 66 accepted, with comments (cleared), 4 (released) |
//! | held for examination (no errors listed) | 23 transaction on hold | — | 5 goods required for examination |
//! | examination ordered (while permits are awaited; held once they are given) | 23 | — | 5 |
//! | held for a permit refused or not answered (listed) | 23 | — | 6 all documents or as specified to be produced |
//! | anything else | 11 response | — | none (the status is in FTX) |

use super::{Envelope, Original, SegmentPointer};
use crate::diag::Code;
use crate::edifact::{Element, Segment};
use crate::model::Response;

/// Error groups (SG4) one D.96B CUSRES may hold: the segment table's
/// repetition count for SG4 (a test checks it against the directory).
pub const MAX_ERROR_GROUPS: usize = 99;

/// Conditions one CUSRES says (`FTX+AAX`): the header's FTX occurs at most
/// 9 times in D.96B, one of them the status (`FTX+AAP`).
pub const MAX_CONDITIONS: usize = 8;

/// The codes a status is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCodes {
    /// BGM 1225 message function.
    pub function: &'static str,
    /// BGM 4343 response type.
    pub response_type: Option<&'static str>,
    /// GIS 7365 processing indicator.
    pub indicator: Option<&'static str>,
}

/// The D.96B codes of a hub status (see the module table).
pub fn status_codes(status: &str, has_errors: bool) -> StatusCodes {
    let normal: String = status
        .trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    let (function, response_type, indicator) = match normal.as_str() {
        "received" => ("12", None, Some("17")),
        "accepted" | "awaiting_permits" | "cancelled" => ("29", Some("AP"), Some("1")),
        "rejected" => ("27", Some("RE"), Some(if has_errors { "2" } else { "3" })),
        // Cleared: every permit given, but the goods wait for an officer's
        // release, so not yet 4 (goods released).
        "cleared" => ("29", Some("AP"), Some("1")),
        "released" => ("29", Some("AP"), Some("4")),
        // Held for examination (red lane) or, with the permit errors
        // listed, because a permit was refused or not answered in time.
        "held" if has_errors => ("23", None, Some("6")),
        "held" => ("23", None, Some("5")),
        // The goods are to be examined; permits are still awaited (held
        // once they are given).
        "examination_ordered" => ("23", None, Some("5")),
        _ => ("11", None, None),
    };
    StatusCodes {
        function,
        response_type,
        indicator,
    }
}

/// The CUSRES interchange carrying `response` to the sender of `original`.
/// At most [`MAX_ERROR_GROUPS`] error groups: past that, the last group
/// (EDI106) says how many were left out.
pub fn build(response: &Response, original: &Original, envelope: &Envelope) -> String {
    build_bounded(response, original, envelope, MAX_ERROR_GROUPS)
}

pub(crate) fn build_bounded(
    response: &Response,
    original: &Original,
    envelope: &Envelope,
    max_groups: usize,
) -> String {
    // Warnings listed with an accepting answer do not make it an error
    // response.
    let has_errors = response.errors.iter().any(|e| !e.warning);
    let mut codes = status_codes(&response.status, has_errors);
    // On permits given with conditions: conditionally accepted, and the
    // conditions said in FTX+AAX (licence information) below.
    if !response.conditions.is_empty() && codes.response_type == Some("AP") {
        codes.response_type = Some("CA");
        if codes.indicator == Some("1") {
            codes.indicator = Some("66");
        }
    }
    let normal = response
        .status
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_");
    let document = if has_errors {
        "963"
    } else if normal == "documents_required" {
        "962"
    } else {
        "961"
    };
    let lrn = if response.declaration_lrn.is_empty() {
        original.lrn.clone().unwrap_or_default()
    } else {
        response.declaration_lrn.clone()
    };
    let mut body = vec![Segment::new(
        "BGM",
        vec![
            Element::simple(document),
            Element::simple(super::cut(
                if lrn.is_empty() {
                    &original.message_reference
                } else {
                    &lrn
                },
                35,
            )),
            Element::simple(codes.function),
            Element::simple(codes.response_type.unwrap_or("")),
        ],
    )];
    body.push(match response.at.to_edifact() {
        Ok(value) => super::dtm("137", &value, &response.at.format),
        Err(_) => super::dtm_prepared(&envelope.at),
    });
    body.push(super::ftx(
        "AAP",
        &[
            format!("status {}", response.status),
            super::answering(original),
        ],
    ));
    // The header has room for 9 FTX: AAP above, and up to 8 conditions (the
    // last one saying how many more there are when they do not fit).
    let conditions = &response.conditions;
    for (i, condition) in conditions.iter().enumerate().take(MAX_CONDITIONS) {
        let mut text = vec![condition.clone()];
        if i + 1 == MAX_CONDITIONS && conditions.len() > MAX_CONDITIONS {
            text.push(format!(
                "and {} more condition(s), see the declaration at the hub",
                conditions.len() - (MAX_CONDITIONS - 1)
            ));
            text.remove(0);
        }
        body.push(super::ftx("AAX", &text));
    }
    if let Some(indicator) = codes.indicator {
        body.push(Segment::new("GIS", vec![Element::simple(indicator)]));
    }
    if !lrn.is_empty() {
        body.push(super::rff("ABE", &lrn, None));
    }
    if let Some(mrn) = response.mrn.as_deref().filter(|m| !m.is_empty()) {
        body.push(super::rff("ABT", mrn, None));
    }
    body.push(super::rff("ACW", &original.message_reference, None));
    body.push(super::rff("INO", &original.interchange_reference, None));

    let max_groups = max_groups.max(1);
    let errors = &response.errors;
    let (listed, left_out) = if errors.len() > max_groups {
        (
            errors.get(..max_groups - 1).unwrap_or_default(),
            errors.len() - (max_groups - 1),
        )
    } else {
        (errors.as_slice(), 0)
    };
    let message = original.message_reference.as_str();
    for error in listed {
        let at = error.pointer.as_deref().and_then(SegmentPointer::parse);
        let (tag, position) = match &at {
            Some(p) => (p.tag.clone(), p.position),
            // Not located at a segment: the message as a whole.
            None => ("UNH".to_owned(), 1),
        };
        body.push(Segment::new(
            "ERP",
            vec![
                Element::simple(""),
                Element::composite([tag, position.to_string(), "5".to_owned()]),
            ],
        ));
        body.push(super::rff("ACW", message, at.as_ref().map(|p| p.position)));
        body.push(super::erc(&error.code));
        body.push(super::ftx("AAO", std::slice::from_ref(&error.message)));
        let place = match (&at, &error.pointer) {
            (Some(p), _) => p.describe(message),
            (None, Some(pointer)) => vec![format!("at {pointer}")],
            (None, None) => vec![format!("message {message} as a whole")],
        };
        body.push(super::ftx("ACB", &place));
    }
    if left_out > 0 {
        body.push(Segment::new(
            "ERP",
            vec![Element::simple(""), Element::composite(["UNH", "1", "5"])],
        ));
        body.push(super::erc(Code::TooManyIssues.as_str()));
        body.push(super::ftx(
            "AAO",
            &[format!(
                "{left_out} further error(s) not listed: a CUSRES holds at most {max_groups} error groups"
            )],
        ));
    }
    super::interchange(envelope, "CUSRES", body)
}
