//! CONTRL, the syntax and service report message of ISO 9735: accepts an
//! interchange or rejects it, naming each syntax error with its 0085 code and
//! position (UCI for the interchange, UCF for groups, UCM for messages, UCS
//! and UCD for segments and data elements).
//!
//! Syntax version 4 interchanges get a CONTRL 4:1 (UCI/UCM with 0135 and a
//! three-part S011); versions 1 to 3 get the version 3 layout (CONTRL D:3,
//! 0013 and a two-part S011).

use std::collections::BTreeMap;

use super::{UNKNOWN, or_else};
use crate::diag::{Code, Issue, Severity};
use crate::edifact::writer;
use crate::edifact::{Charset, Element, Interchange, Parsed, Segment, Separators};

/// 0083 action codes used here.
const ACTION_REJECTED: &str = "4";
const ACTION_ACKNOWLEDGED: &str = "7";

/// Who sends the CONTRL and when; kept out of the builder so that it stays
/// pure and its output reproducible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// UNB interchange control reference of the CONTRL interchange.
    pub reference: String,
    /// Date (YYMMDD, or CCYYMMDD for syntax 4) and time (HHMM) of preparation.
    pub date: String,
    pub time: String,
    /// The hub's interchange id: the CONTRL's sender when the subject names
    /// no recipient.
    pub hub_id: String,
    /// Who the CONTRL goes to when the subject names no sender (the
    /// authenticated partner, when there is one).
    pub fallback_recipient: String,
}

/// The hub's default interchange id.
pub const HUB_ID: &str = "TRADEHUB";

impl Options {
    /// The envelope of a CONTRL prepared at `t`: syntax 4 dates are
    /// CCYYMMDD, earlier ones YYMMDD; the reference is `C` + `unique`
    /// (cut to the 14 characters 0020 allows).
    pub fn at(t: crate::timestamp::Timestamp, syntax_v4: bool, unique: String) -> Options {
        let mut reference = format!("C{unique}");
        reference.truncate(14);
        Options {
            reference,
            date: t.edifact_date(syntax_v4),
            time: t.edifact_time(),
            hub_id: HUB_ID.into(),
            fallback_recipient: UNKNOWN.into(),
        }
    }
}

/// A built CONTRL: its bytes and the interchange they parse to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contrl {
    pub bytes: Vec<u8>,
    pub interchange: Interchange,
    /// True when the subject interchange was accepted (UCI action 7).
    pub accepted: bool,
}

impl Contrl {
    /// The CONTRL as text, decoded from the repertoire its UNB names (the
    /// hub keeps answers as text and encodes them again to send them:
    /// [`crate::ack::to_bytes`]).
    pub fn text(&self) -> String {
        Charset::from_syntax_identifier(&self.interchange.syntax_identifier)
            .unwrap_or(Charset::Iso8859(1))
            .decode(&self.bytes)
            .into_owned()
    }
}

/// Builds the CONTRL answering `parsed`.
pub fn build(parsed: &Parsed, options: &Options) -> Contrl {
    let subject = &parsed.interchange;
    let v4 = subject.syntax_version == "4";
    let misaddressed = parsed
        .issues
        .iter()
        .any(|i| i.code == crate::diag::Code::RecipientNotActual);
    let errors: Vec<&Issue> = parsed
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();

    // Sort each error to the level it belongs to. A message is told by its
    // UNH position, not only its reference: two messages may share one
    // (E0026), and each gets its own UCM.
    let message_index = index_messages(subject);
    let mut interchange_errors: Vec<&Issue> = Vec::new();
    let mut group_errors: BTreeMap<usize, Vec<&Issue>> = BTreeMap::new();
    let mut message_errors: BTreeMap<MessageKey, Vec<&Issue>> = BTreeMap::new();
    for issue in &errors {
        let loc = &issue.location;
        // A UCM names its message by reference and S009 (mandatory, all
        // four components): the errors of a message whose UNH does not give
        // them are reported one level up, at its group or the interchange.
        let position = unh_position(issue, &message_index);
        let identified = message_index.get(&position).is_some_and(|m| {
            [&m.message_type, &m.version, &m.release, &m.agency]
                .iter()
                .all(|v| !v.trim().is_empty())
        });
        let group = loc.group.as_deref().map(|g| {
            let at = if identified {
                Some(position)
            } else {
                loc.segment
            };
            group_index(subject, g, at)
        });
        match (&loc.message, group) {
            (Some(m), g) if identified && !m.trim().is_empty() => message_errors
                .entry((g.flatten(), position, m.clone()))
                .or_default()
                .push(issue),
            (_, Some(Some(g))) => group_errors.entry(g).or_default().push(issue),
            _ => interchange_errors.push(issue),
        }
    }
    let accepted = errors.is_empty();

    let mut body: Vec<Segment> = Vec::new();
    // UCI: interchange response.
    // 0020, S002 and S003 are mandatory in UCI: an interchange without a
    // readable UNB is answered with placeholders (its sender unknown, the
    // hub its recipient), so that the CONTRL itself stays valid.
    let mut uci = vec![
        // Echoed values are cut to what their data elements hold (0020
        // an..14, 0004 an..35, 0007 an..4): a subject whose values are too
        // long (an error reported below) still gets a valid CONTRL.
        // (A subject without 0020 gets `UNKNOWN`, not a value that could
        // pass for a reference of its own.)
        Element::simple(super::cut(
            &or_else(&subject.control_reference, UNKNOWN),
            14,
        )),
        party(
            &or_else(&subject.sender.id, &options.fallback_recipient),
            &subject.sender.qualifier,
        ),
        party(
            &or_else(&subject.recipient.id, &options.hub_id),
            &subject.recipient.qualifier,
        ),
        // 7 (acknowledged, what is not listed accepted) only when nothing
        // is in error: the hub takes an interchange whole or not at all, so
        // an error in one message rejects the interchange (4) with all its
        // messages, and the UCMs say which were in error. A 7 would tell
        // the sender that its other messages were taken, which they were not.
        Element::simple(if accepted {
            ACTION_ACKNOWLEDGED
        } else {
            ACTION_REJECTED
        }),
    ];
    if let Some(first) = interchange_errors.first() {
        push_error(&mut uci, first, v4, true);
    }
    body.push(Segment::new("UCI", trim(uci)));

    // Messages outside the groups (all of them when there are none, loose
    // ones beside groups, E0030, or in a group not kept in the tree): their
    // UCMs are the CONTRL's segment group 1, which comes before the UCFs of
    // segment group 3 (a UCM after a UCF would be read as that group's).
    // CONTRL's segment groups 1 and 4 (UCM) and 3 (UCF) occur 999999
    // times at most, groups 2 and 5 (UCS) 999 times per message: beyond,
    // the UCI (and UCF) rejection says it all, and the CONTRL stays valid.
    for ((_, position, reference), issues) in message_errors
        .iter()
        .filter(|((g, _, _), _)| g.is_none())
        .take(MAX_GROUP)
    {
        body.extend(message_response(
            reference,
            message_index.get(position),
            issues,
            v4,
        ));
    }
    // Segment group 3 (UCF) occurs 999999 times at most too.
    let mut ucfs = 0usize;
    for (index, group) in subject.groups.iter().enumerate() {
        let g_errors = group_errors.get(&index);
        let msgs: Vec<_> = message_errors
            .iter()
            .filter(|((g, _, _), _)| *g == Some(index))
            .collect();
        if g_errors.is_none() && msgs.is_empty() {
            continue;
        }
        if ucfs == MAX_GROUP {
            break;
        }
        ucfs += 1;
        // S006/S007 as UCF holds them (an..35 and an..4), 0048 as an..14,
        // as UCI and UCM cut theirs: the CONTRL stays valid whatever the
        // group header carried (its errors are reported on the UCF).
        let group_party = |at: usize| {
            let parts = group
                .header
                .element(at)
                .map(|e| e.components().to_vec())
                .unwrap_or_default();
            // S006 0040 and S007 0044 are mandatory in UCF: a group
            // header without them is answered with a placeholder, as the
            // UCI answers an interchange without its parties.
            party(
                &or_else(parts.first().map_or("", String::as_str), UNKNOWN),
                parts.get(1).map_or("", String::as_str),
            )
        };
        let group_reference = match group.reference.as_str() {
            "" => "0",
            reference => reference,
        };
        let mut ucf = vec![
            Element::simple(super::cut(group_reference, 14)),
            group_party(1),
            group_party(2),
            // Listed only with errors in it or its messages, so rejected,
            // as the interchange is: a group with errors only in its
            // messages too.
            Element::simple(ACTION_REJECTED),
        ];
        if let Some(first) = g_errors.and_then(|e| e.first()) {
            push_error(&mut ucf, first, v4, true);
        }
        body.push(Segment::new("UCF", trim(ucf)));
        for ((_, position, reference), issues) in msgs.into_iter().take(MAX_GROUP) {
            body.extend(message_response(
                reference,
                message_index.get(position),
                issues,
                v4,
            ));
        }
    }

    let reference = options.reference.clone();
    // The CONTRL of syntax versions 1 to 3 is version D release 3 (the
    // JWG1 syntax 3 service directory; 2:2 is its superseded 1990s form).
    let version = if v4 { ("4", "1") } else { ("D", "3") };
    let mut segments = Vec::with_capacity(body.len() + 4);
    // The CONTRL answers in the subject's syntax level and version when the
    // hub supports them, else in UNOC version 3; a level A or B subject
    // whose identifiers (all a CONTRL holds) need a wider repertoire is
    // answered in it, so that they come back as sent.
    let (syntax_id, charset) = super::answer_repertoire(
        &subject.syntax_identifier,
        body.iter().flat_map(super::values).chain([
            subject.sender.id.as_str(),
            subject.sender.qualifier.as_str(),
            subject.sender.internal_id.as_str(),
            subject.recipient.id.as_str(),
            subject.recipient.qualifier.as_str(),
        ]),
    );
    let syntax_version = match subject.syntax_version.as_str() {
        v @ ("1" | "2" | "3" | "4") => v,
        _ => "3",
    };
    segments.push(Segment::new(
        "UNB",
        vec![
            Element::composite([syntax_id, syntax_version]),
            // Signed by whom the interchange was sent to, unless that is
            // not this hub (E0007): then by the hub.
            if misaddressed {
                party(&options.hub_id, "")
            } else {
                party(
                    &or_else(&subject.recipient.id, &options.hub_id),
                    &subject.recipient.qualifier,
                )
            },
            // Back to the sender, by its reverse routing address (S002
            // 0008) when it gave one.
            super::routed_party(
                &or_else(&subject.sender.id, &options.fallback_recipient),
                &subject.sender.qualifier,
                &subject.sender.internal_id,
                v4,
            ),
            Element::composite([options.date.as_str(), options.time.as_str()]),
            Element::simple(&reference),
        ],
    ));
    segments.push(Segment::new(
        "UNH",
        vec![
            Element::simple("1"),
            Element::composite(["CONTRL", version.0, version.1, "UN"]),
        ],
    ));
    let count = body.len() + 2;
    segments.extend(body);
    segments.push(Segment::new(
        "UNT",
        vec![Element::simple(count.to_string()), Element::simple("1")],
    ));
    segments.push(Segment::new(
        "UNZ",
        vec![Element::simple("1"), Element::simple(&reference)],
    ));

    let seps = contrl_separators(subject);
    let mut bytes = Vec::new();
    if subject.una.is_some() {
        bytes.extend_from_slice(&seps.una());
    }
    // Values echoed from a broken subject may hold characters the
    // repertoire cannot carry (a line feed in a reference, say): they are
    // replaced, so that a CONTRL is always written.
    let segments: Vec<Segment> = segments.iter().map(|seg| sanitize(seg, charset)).collect();
    if writer::write_segments(&segments, &seps, charset, &mut bytes).is_err() {
        bytes.clear();
    }
    let interchange = crate::edifact::parse(&bytes).interchange;
    Contrl {
        bytes,
        interchange,
        accepted,
    }
}

/// The segment with every character `charset` cannot encode replaced by
/// `.`, and empty trailing components dropped (ISO 9735 omits them).
pub(super) fn sanitize(seg: &Segment, charset: Charset) -> Segment {
    let clean = |text: &String| -> String {
        text.chars()
            .map(|c| {
                let mut probe = Vec::new();
                let mut buf = [0u8; 4];
                if charset.encode(c.encode_utf8(&mut buf), &mut probe).is_ok() {
                    c
                } else {
                    '.'
                }
            })
            .collect()
    };
    let elements = seg
        .elements
        .iter()
        .map(|e| {
            let reps = e
                .repetitions()
                .iter()
                .map(|comps| {
                    let mut comps: Vec<String> = comps.iter().map(clean).collect();
                    while comps.len() > 1 && comps.last().is_some_and(String::is_empty) {
                        comps.pop();
                    }
                    comps
                })
                .collect();
            Element::repeated(reps)
        })
        .collect();
    Segment::new(seg.tag.clone(), elements)
}

/// The subject's separators (a CONTRL answers in the same syntax), with a
/// release character so that any value can be written.
fn contrl_separators(subject: &Interchange) -> Separators {
    let v4 = subject.syntax_version == "4";
    let mut seps = subject.separators;
    if !v4 {
        seps.repetition = None;
    }
    if seps.release.is_none() && seps.component != Separators::LEVEL_B.component {
        seps.release = Some(b'?');
    }
    // Separators the subject advised but that cannot work (the same
    // character twice, a letter, …) are not repeated: the CONTRL must be
    // readable whatever it answers.
    let una = seps.una();
    let mut chars = [0u8; 6];
    chars.copy_from_slice(una.get(3..9).unwrap_or(&[0; 6]));
    if Separators::from_una(chars).1.is_empty() {
        seps
    } else if v4 {
        Separators::LEVEL_A_V4
    } else {
        Separators::LEVEL_A
    }
}

fn party(id: &str, qualifier: &str) -> Element {
    let (id, qualifier) = (super::cut(id, 35), super::cut(qualifier, 4));
    if qualifier.is_empty() {
        Element::simple(id)
    } else {
        Element::composite([id, qualifier])
    }
}

/// Most occurrences of CONTRL's segment groups 1, 3 and 4 (UCM, UCF):
/// 999999 (ISO 9735 part 11 and the syntax 3 service directory).
const MAX_GROUP: usize = 999_999;

/// Most occurrences of CONTRL's segment groups 2 and 5 (UCS) in a message.
const MAX_UCS: usize = 999;

/// A message with errors: the index of its group in the subject's groups
/// (none outside groups), its UNH position (0 when not known) and its
/// reference; ordered as the messages came.
type MessageKey = (Option<usize>, u32, String);

/// The index of the group of `subject` that an issue at segment
/// `position` with group reference `reference` belongs to: the last group
/// of that reference that starts at or before it. Told by position, not
/// by reference alone: two groups may share one (E0026), and each gets its
/// own UCF with its own errors and messages.
fn group_index(subject: &Interchange, reference: &str, position: Option<u32>) -> Option<usize> {
    let mut found = None;
    for (i, group) in subject.groups.iter().enumerate() {
        if group.reference != reference {
            continue;
        }
        match position {
            Some(at) if group.position > at => break,
            None if found.is_some() => break,
            _ => found = Some(i),
        }
    }
    found
}

/// The subject's messages by UNH position.
fn index_messages(subject: &Interchange) -> BTreeMap<u32, &crate::edifact::Message> {
    subject
        .groups
        .iter()
        .flat_map(|g| g.messages.iter())
        .chain(subject.messages.iter())
        .map(|m| (m.position, m))
        .collect()
}

/// The UNH position of the message an issue is in: from its place in the
/// interchange and in the message, else the first message with its
/// reference, else 0.
fn unh_position(issue: &Issue, messages: &BTreeMap<u32, &crate::edifact::Message>) -> u32 {
    let loc = &issue.location;
    if let (Some(segment), Some(in_message)) = (loc.segment, loc.message_segment)
        && let Some(unh) = segment.checked_sub(in_message.saturating_sub(1))
    {
        return unh;
    }
    messages
        .values()
        .find(|m| Some(&m.reference) == loc.message.as_ref())
        .map_or(0, |m| m.position)
}

/// UCM (+ UCS/UCD) for one message with errors.
fn message_response(
    reference: &str,
    message: Option<&&crate::edifact::Message>,
    issues: &[&Issue],
    v4: bool,
) -> Vec<Segment> {
    // Only messages whose S009 is known get here (see `build`).
    let s009 = match message {
        Some(m) => {
            let mut parts = vec![
                super::cut(&m.message_type, 6),
                super::cut(&m.version, 3),
                super::cut(&m.release, 3),
                // 0051 is an..2 before version 4, an..3 from it on.
                super::cut(&m.agency, if v4 { 3 } else { 2 }),
            ];
            // The association assigned code (0057, an..6) names the
            // subset the message follows, as its UNH did.
            if !m.association_code.is_empty() {
                parts.push(super::cut(&m.association_code, 6));
            }
            Element::composite(parts)
        }
        None => Element::simple(""),
    };
    let mut ucm = vec![
        // 0062 is an..14; a longer reference is reported at its UNH.
        Element::simple(super::cut(reference, 14)),
        s009,
        Element::simple(ACTION_REJECTED),
    ];
    // Errors in UNH or UNT are reported on UCM itself; a segment missing
    // before UNT is placed at UNT but is no error of it.
    let envelope = issues.iter().find(|i| is_envelope(i));
    if let Some(first) = envelope {
        push_error(&mut ucm, first, v4, true);
    }
    let mut out = vec![Segment::new("UCM", trim(ucm))];
    let mut by_segment: BTreeMap<u32, Vec<&Issue>> = BTreeMap::new();
    for issue in issues {
        if is_envelope(issue) {
            continue;
        }
        if let Some(pos) = issue.location.message_segment {
            // A missing segment is reported at "the numerical count
            // position of the last segment that was processed before the
            // position where the missing segment was expected to be"
            // (0096, D.96B): the segment before the one it is placed at.
            let pos = if issue.location.missing.is_some() {
                pos.saturating_sub(1).max(1)
            } else {
                pos
            };
            by_segment.entry(pos).or_default().push(issue);
        }
    }
    for (pos, seg_issues) in by_segment.into_iter().take(MAX_UCS) {
        let segment_level = seg_issues.iter().find(|i| i.location.element.is_none());
        let mut ucs = vec![Element::simple(pos.to_string())];
        if let Some(first) = segment_level {
            ucs.push(Element::simple(number(first, v4)));
        }
        out.push(Segment::new("UCS", ucs));
        for issue in seg_issues
            .iter()
            .filter(|i| i.location.element.is_some())
            .take(99)
        {
            out.push(Segment::new(
                "UCD",
                vec![Element::simple(number(issue, v4)), s011(issue, v4)],
            ));
        }
    }
    out
}

/// An error of the message's UNH or UNT, reported on UCM.
fn is_envelope(issue: &Issue) -> bool {
    issue.location.missing.is_none()
        && matches!(issue.location.tag.as_deref(), Some("UNH") | Some("UNT"))
}

/// Appends 0085, 0013/0135 and S011 for the first error of a level.
fn push_error(elements: &mut Vec<Element>, issue: &Issue, v4: bool, with_tag: bool) {
    elements.push(Element::simple(number(issue, v4)));
    // 0013 (a3) and 0135 (an..3) name a service segment: a tag the
    // subject wrote wrong (`UNG `, `UNHX`, `UNX`) is not one, and
    // echoed it would make the CONTRL itself invalid.
    let tag = issue
        .location
        .tag
        .as_deref()
        .filter(|t| with_tag && (*t == "UNA" || service_segment(t, v4).is_some()))
        .unwrap_or("");
    elements.push(Element::simple(tag));
    if issue.location.element.is_some() {
        elements.push(s011(issue, v4));
    }
}

/// The ISO 9735 definition of the service segment `tag` in the CONTRL's
/// syntax version (3 below version 4).
fn service_segment(tag: &str, v4: bool) -> Option<crate::schema::SegmentDef> {
    crate::schema::service::segment(tag, if v4 { 4 } else { 3 })
}

/// True when the data element at `element` (1-based) of the service
/// segment `tag` is a simple one, which S011 names without a component.
fn simple_service_element(tag: Option<&str>, element: u16, v4: bool) -> bool {
    tag.and_then(|t| service_segment(t, v4))
        .and_then(|def| {
            def.elements
                .get(usize::from(element).checked_sub(1)?)
                .map(|e| matches!(e.kind, crate::schema::ElementKind::Simple(_)))
        })
        .unwrap_or(false)
}

/// S011: 0098 counts the segment tag as position 1 ("The segment tag has
/// position number 1", the directory's definition of 0098), so the first
/// data element after the tag, `element` 1 of a location, is 2; 0104
/// counts components from 1. In syntax 4, 0136 gives the occurrence of a
/// repeated element, and the dependency note of S011, D4(020,030) "one or
/// none", allows 0104 or 0136, not both: the occurrence is given when it is
/// not the first (without it the pointer would name another value).
fn s011(issue: &Issue, v4: bool) -> Element {
    let loc = &issue.location;
    let element = loc
        .element
        .map(|e| (u32::from(e) + 1).to_string())
        .unwrap_or_default();
    let occurrence = loc
        .repetition
        .filter(|r| *r > 1 && v4)
        .map(|r| r.to_string())
        .unwrap_or_default();
    let simple = loc
        .element
        .is_some_and(|e| simple_service_element(loc.tag.as_deref(), e, v4));
    let component = if occurrence.is_empty() && !simple {
        loc.component.map(|c| c.to_string()).unwrap_or_default()
    } else {
        String::new()
    };
    let mut parts = vec![element, component, occurrence];
    while parts.len() > 1 && parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    Element::composite(parts)
}

/// The syntax error code (0085) of an issue; project codes map to 18
/// (unspecified error). The version 3 list (the service code list, UNSL,
/// of the D.95B to D.97B directories) has 1 (UNA not supported); version
/// 4's (ISO 9735 part 11) has not, nor 19 (invalid decimal notation), 31
/// (more than one message type in group) or 38 (missing digit in front of
/// decimal sign): a CONTRL 4 says what its list can.
fn number(issue: &Issue, v4: bool) -> String {
    let code = issue.code.syntax_error_number().unwrap_or(18);
    let code = match code {
        1 if v4 => 18,
        // A message type or release that cannot be validated: version 3's
        // list has a code of its own (3, "message version/release not
        // supported"); version 4's has not.
        _ if !v4
            && matches!(
                issue.code,
                Code::DirectoryUnavailable | Code::UnknownMessageType
            ) =>
        {
            3
        }
        // A decimal mark advised in UNA that cannot be one: a character
        // invalid as service character; in a value: an invalid value.
        19 if v4 && issue.location.tag.as_deref() == Some("UNA") => 20,
        19 | 38 if v4 => 12,
        31 if v4 => 14,
        other => other,
    };
    code.to_string()
}

/// Drops empty trailing elements (ISO 9735 forbids trailing separators).
fn trim(mut elements: Vec<Element>) -> Vec<Element> {
    while elements.last().is_some_and(Element::is_empty) {
        elements.pop();
    }
    elements
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Location;

    /// 0085 code 1 (UNA not supported) is in syntax version 3's list
    /// (UNSL of D.95B-D.97B), not in version 4's: 18 there.
    #[test]
    fn una_not_supported_is_code_1_before_syntax_version_4() {
        let issue = Issue::error(Code::UnaNotSupported, Location::default(), "short UNA");
        assert_eq!(number(&issue, false), "1");
        assert_eq!(number(&issue, true), "18");
    }

    fn at(element: u16, component: Option<u16>, repetition: Option<u16>) -> Issue {
        Issue::error(
            Code::InvalidCharacterType,
            Location {
                element: Some(element),
                component,
                repetition,
                ..Location::default()
            },
            "x",
        )
    }

    /// Two messages sharing a reference (E0026 at the second) each get a
    /// UCM of their own, with their own errors.
    #[test]
    fn messages_sharing_a_reference_are_answered_one_by_one() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("fixtures/edifact/ok/cusdec-d96b-unoc.edi"))
            .unwrap_or_default()
            .replacen("MOA+39:125000.50:USD", "MOA+39:1X:USD", 1)
            .replace("UNH+2+", "UNH+1+")
            .replace("UNT+24+2", "UNT+24+1");
        let parsed = validated(text.as_bytes());
        let contrl = contrl_for(&parsed);
        let out = String::from_utf8_lossy(&contrl.bytes).into_owned();
        let ucms: Vec<&str> = out.split('\'').filter(|s| s.starts_with("UCM+")).collect();
        assert_eq!(
            ucms,
            [
                "UCM+1+CUSDEC:D:96B:UN+4",
                "UCM+1+CUSDEC:D:96B:UN+4+26+UNH+2"
            ],
            "{out}"
        );
        // The first message's amount error is under the first UCM.
        let first = out.split("UCM+").nth(1).unwrap_or_default();
        assert!(first.contains("UCD+37+2:2"), "{out}");
    }

    /// `bytes` parsed and validated against the vendored directories, the
    /// messages kept.
    /// The CONTRL answering `parsed`, prepared now by hub `T`.
    fn contrl_for(parsed: &Parsed) -> Contrl {
        build(
            parsed,
            &Options::at(crate::timestamp::Timestamp::now(), false, "T".into()),
        )
    }

    fn validated(bytes: &[u8]) -> Parsed {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let directories = std::sync::Arc::new(crate::schema::Directories::new(&[
            root.join("schemas/untdid")
        ]));
        crate::edifact::Parser::new(
            bytes,
            crate::edifact::ParseOptions {
                keep_messages: true,
                ..crate::edifact::ParseOptions::default()
            },
        )
        .with_directories(directories)
        .run(|_, _| {})
        .unwrap_or_default()
    }

    /// A missing segment is reported at the segment processed before the
    /// gap (0096: "the numerical count position of the last segment that
    /// was processed before the position where the missing segment was
    /// expected to be"), not as an error of the segment after it, and one
    /// missing just before UNT is no UNT error. An error in one message
    /// rejects the whole interchange (UCI 4), as the hub does.
    #[test]
    fn missing_segments_are_reported_at_the_segment_before_the_gap() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("fixtures/edifact/ok/cusdec-d96b-unoc.edi"))
            .unwrap_or_default()
            .replacen("UNS+S'\nUNT+20+1'", "UNT+19+1'", 1)
            .replacen("BGM+830+LRN2026002+9'\n", "", 1)
            .replace("UNT+24+2", "UNT+23+2");
        assert!(!text.contains("UNT+20+1") && !text.contains("LRN2026002"));
        let parsed = validated(text.as_bytes());
        let missing: Vec<_> = parsed
            .issues
            .iter()
            .filter_map(|i| i.location.missing.clone())
            .collect();
        assert_eq!(missing, ["UNS", "BGM"], "{:#?}", parsed.issues);
        let contrl = contrl_for(&parsed);
        let out = contrl.text();
        let body: Vec<&str> = out.split('\'').filter(|s| s.starts_with("UC")).collect();
        assert_eq!(
            body,
            [
                "UCI+20261124001+KRBROKER01:ZZZ+TRADEHUB:ZZZ+4",
                "UCM+1+CUSDEC:D:96B:UN+4",
                "UCS+18+13",
                "UCM+2+CUSDEC:D:96B:UN+4",
                "UCS+1+13",
            ],
            "{out}"
        );
        assert!(!contrl.accepted);
    }

    /// A CONTRL in UNOC echoes the sender's ISO 8859-1 identifiers: its text
    /// decodes them, and encoded again for sending they are the sender's
    /// bytes (they were once decoded as UTF-8 and became U+FFFD).
    #[test]
    fn latin_1_identifiers_survive_the_answer() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("fixtures/edifact/ok/cusdec-d96b-unoc.edi"))
            .unwrap_or_default()
            .replacen("TRADEHUB:ZZZ", "ZOLLÄMT:ZZZ", 1);
        // ISO 8859-1: each character's code point is its byte.
        let latin: Vec<u8> = text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect();
        let parsed = crate::edifact::parse(&latin);
        let contrl = contrl_for(&parsed);
        let answer = contrl.text();
        assert!(
            answer.contains("UNB+UNOC:3+ZOLLÄMT:ZZZ+KRBROKER01"),
            "{answer}"
        );
        let sent = crate::ack::to_bytes(&answer);
        assert_eq!(sent, contrl.bytes);
        assert!(sent.windows(7).any(|w| w == b"ZOLL\xC4MT"));
    }

    /// A level A (UNOA) interchange whose references hold lower case (an
    /// error, E0021, which senders often make) is answered in level B, so
    /// that the UCI names it as sent; before, its lower-case letters came
    /// back as `.` and the sender could not match the answer.
    #[test]
    fn lower_case_references_of_a_unoa_interchange_come_back_as_sent() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("fixtures/edifact/ok/cusdec-d96b-unoc.edi"))
            .unwrap_or_default()
            .replacen("UNOC:3", "UNOA:3", 1)
            .replace("20261124001", "ref-2026-x1");
        let parsed = validated(text.as_bytes());
        assert!(!parsed.is_valid());
        let contrl = contrl_for(&parsed);
        let out = contrl.text();
        assert!(out.contains("UNB+UNOB:3+"), "{out}");
        assert!(out.contains("UCI+ref-2026-x1+KRBROKER01:ZZZ+"), "{out}");
        let answer = validated(&contrl.bytes);
        assert!(answer.is_valid(), "{out}\n{:#?}", answer.issues);
        // Upper case only: level A kept.
        let upper = std::fs::read_to_string(root.join("fixtures/edifact/ok/cusdec-d96b-unoc.edi"))
            .unwrap_or_default()
            .replacen("UNOC:3", "UNOA:3", 1);
        let out = contrl_for(&validated(upper.as_bytes())).text();
        assert!(out.contains("UNB+UNOA:3+"), "{out}");
    }

    /// Two functional groups sharing a reference (UNG 0048): the second is
    /// E0026 on its own UCF, and each UCF lists only its own group's
    /// messages. Before, the duplicate went unreported and both UCFs, keyed
    /// by reference, listed the second group's message in error.
    #[test]
    fn groups_sharing_a_reference_are_answered_one_by_one() {
        let text = "UNA:+.? 'UNB+UNOC:3+S:ZZZ+TRADEHUB:ZZZ+261124:1030+R1'\
            UNG+CUSDEC+S:ZZZ+KCS:ZZZ+261124:1030+G1+UN+D:96B'\
            UNH+1+CUSDEC:D:96B:UN'BGM+929+X+9'UNT+3+1'UNE+1+G1'\
            UNG+CUSDEC+S:ZZZ+KCS:ZZZ+261124:1030+G1+UN+D:96B'\
            UNH+2+CUSDEC:D:96B:UN'BGM+929+Y+9'UNT+9+2'UNE+1+G1'UNZ+2+R1'";
        let parsed = crate::edifact::parse(text.as_bytes());
        let duplicate: Vec<_> = parsed
            .issues
            .iter()
            .filter(|i| i.code == Code::Duplicate)
            .map(|i| (i.location.segment, i.location.element))
            .collect();
        assert_eq!(duplicate, [(Some(7), Some(5))], "{:#?}", parsed.issues);
        let out = contrl_for(&parsed).text();
        let body: Vec<&str> = out.split('\'').filter(|s| s.starts_with("UC")).collect();
        assert_eq!(
            body,
            [
                "UCI+R1+S:ZZZ+TRADEHUB:ZZZ+4",
                "UCF+G1+S:ZZZ+KCS:ZZZ+4+26+UNG+6",
                "UCM+2+CUSDEC:D:96B:UN+4+29+UNT+2",
            ],
            "{out}"
        );
    }

    /// A UNG date or time that does not exist is E0012 on its group's UCF,
    /// as one in UNB is on the UCI.
    #[test]
    fn a_ung_date_that_does_not_exist_is_reported_on_its_ucf() {
        for (moment, at) in [("261399:1030", "UNG+5:1"), ("261124:1099", "UNG+5:2")] {
            let text = format!(
                "UNA:+.? 'UNB+UNOC:3+S:ZZZ+TRADEHUB:ZZZ+261124:1030+R1'\
                 UNG+CUSDEC+S:ZZZ+KCS:ZZZ+{moment}+G1+UN+D:96B'\
                 UNH+1+CUSDEC:D:96B:UN'BGM+929+X+9'UNT+3+1'UNE+1+G1'UNZ+1+R1'"
            );
            let out = contrl_for(&crate::edifact::parse(text.as_bytes())).text();
            assert!(
                out.contains(&format!("UCF+G1+S:ZZZ+KCS:ZZZ+4+12+{at}'")),
                "{moment}: {out}"
            );
        }
    }

    /// A subject without a control reference is answered with `UNKNOWN`
    /// in UCI 0020, not with a value that could pass for its reference;
    /// a syntax 4 reverse routing address keeps its 35 characters.
    #[test]
    fn placeholders_and_routing_addresses_in_the_envelope() {
        let no_reference = "UNA:+.? 'UNB+UNOC:3+S:ZZZ+TRADEHUB:ZZZ+261124:1030'\
            UNH+1+CUSDEC:D:96B:UN'BGM+929+X+9'UNT+3+1'UNZ+1'";
        let out = contrl_for(&crate::edifact::parse(no_reference.as_bytes())).text();
        assert!(out.contains("UCI+UNKNOWN+S:ZZZ+TRADEHUB:ZZZ+4"), "{out}");
        let routed = "UNA:+.? 'UNB+UNOC:4+S:ZZZ:ROUTE-ABCDEFGHIJKLMNOP+TRADEHUB:ZZZ+20261124:1030+R1'\
            UNH+1+CUSDEC:D:96B:UN'BGM+929+X+9'UNT+3+1'UNZ+1+R1'";
        let out = contrl_for(&crate::edifact::parse(routed.as_bytes())).text();
        assert!(out.contains("+S:ZZZ:ROUTE-ABCDEFGHIJKLMNOP+"), "{out}");
    }

    /// Values echoed from the subject are cut to what the CONTRL's data
    /// elements hold: a recipient id of 40 characters, a qualifier of 6 and
    /// a control reference of 20 (each an error of the subject) still give a
    /// CONTRL without errors of its own.
    #[test]
    fn echoed_values_are_cut_to_their_lengths() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let long_id = "R".repeat(40);
        let text = std::fs::read_to_string(root.join("fixtures/edifact/ok/cusdec-d96b-unoc.edi"))
            .unwrap_or_default()
            .replacen("TRADEHUB:ZZZ", &format!("{long_id}:ZZZZZZ"), 1)
            .replace("20261124001", "20261124001ABCDEFGHI");
        let parsed = validated(text.as_bytes());
        assert!(
            parsed
                .issues
                .iter()
                .any(|i| i.is_error() && i.location.tag.as_deref() == Some("UNB")),
            "{:#?}",
            parsed.issues
        );
        let contrl = contrl_for(&parsed);
        let answer = validated(&contrl.bytes);
        let errors: Vec<&Issue> = answer.issues.iter().filter(|i| i.is_error()).collect();
        let out = contrl.text();
        assert!(errors.is_empty(), "{out}\n{errors:#?}");
        assert!(
            out.contains(&format!("UNB+UNOC:3+{}:ZZZZ+", "R".repeat(35))),
            "{out}"
        );
        assert!(out.contains("UCI+20261124001ABC+"), "{out}");
    }

    /// A message whose UNH does not say its type (S009 missing, or a
    /// component of it) cannot be named by a UCM, whose S009 is mandatory:
    /// its error is reported on the UCI, at UNH, and the CONTRL stays valid.
    /// A message with a readable S009 beside it keeps its own UCM.
    #[test]
    fn a_message_without_its_type_is_answered_at_the_interchange() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("fixtures/edifact/ok/cusdec-d96b-unoc.edi"))
            .unwrap_or_default();
        for header in ["UNH+1'", "UNH+1+CUSDEC:D::UN'"] {
            let broken = text.replacen("UNH+1+CUSDEC:D:96B:UN'", header, 1);
            assert_ne!(broken, text);
            let parsed = validated(broken.as_bytes());
            assert!(
                parsed
                    .issues
                    .iter()
                    .any(|i| i.is_error() && i.location.tag.as_deref() == Some("UNH")),
                "{:#?}",
                parsed.issues
            );
            let contrl = contrl_for(&parsed);
            let out = contrl.text();
            let segments: Vec<&str> = out.split('\'').collect();
            let uci = segments
                .iter()
                .find(|s| s.starts_with("UCI+"))
                .copied()
                .unwrap_or_default();
            assert!(uci.contains("+4+") && uci.contains("+UNH"), "{out}");
            assert!(
                segments.iter().all(|s| !s.starts_with("UCM+1+")),
                "{header}: {out}"
            );
            let answer = validated(&contrl.bytes);
            let errors: Vec<&Issue> = answer.issues.iter().filter(|i| i.is_error()).collect();
            assert!(errors.is_empty(), "{out}\n{errors:#?}");
        }
    }

    /// A CONTRL of syntax version 4 uses the codes of version 4's 0085
    /// list: 38 (missing digit before the decimal mark) and 19 are not in
    /// it, so `.5` is reported as 12, invalid value; version 3 keeps 38.
    #[test]
    fn a_version_4_contrl_uses_version_4_codes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("fixtures/edifact/ok/cusdec-d96b-unoc.edi"))
            .unwrap_or_default()
            .replacen("MOA+39:125000.50:USD'", "MOA+39:.5:USD'", 1);
        let v4 = text.replacen(
            "UNOC:3+KRBROKER01:ZZZ+TRADEHUB:ZZZ+261124",
            "UNOC:4+KRBROKER01:ZZZ+TRADEHUB:ZZZ+20261124",
            1,
        );
        assert_ne!(v4, text);
        let answer = |input: &str| {
            let parsed = validated(input.as_bytes());
            contrl_for(&parsed).text()
        };
        let out = answer(&text);
        assert!(out.contains("UCD+38+2:2"), "{out}");
        let out = answer(&v4);
        assert!(out.contains("UNH+1+CONTRL:4:1:UN"), "{out}");
        assert!(out.contains("UCD+12+2:2"), "{out}");
        assert!(!out.contains("UCD+38"), "{out}");
    }

    /// A UNA whose decimal mark cannot be one: in syntax 4 an invalid
    /// service character (20) at UNA (0135), as version 4's list has no
    /// 19; the CONTRL of syntax 3 is CONTRL D:3.
    #[test]
    fn a_bad_una_decimal_mark_in_syntax_4_is_code_20_at_una() {
        let text = "UNA:+;? 'UNB+UNOC:4+S+R+20261124:1030+REF'UNH+1+CUSDEC:D:96B:UN'BGM+929+A+9'UNT+3+1'UNZ+1+REF'";
        let out = contrl_for(&crate::edifact::parse(text.as_bytes())).text();
        assert!(out.contains("UCI+REF+S+R+4+20+UNA'"), "{out}");
        let v3 = "UNA:+.? 'UNB+UNOC:3+S+R+261124:1030+REF'UNH+1+CUSDEC:D:96B:UN'BGM+929+A+9'UNT+3+1'UNZ+1+REF'";
        let out = contrl_for(&crate::edifact::parse(v3.as_bytes())).text();
        assert!(out.contains("UNH+1+CONTRL:D:3:UN'"), "{out}");
    }

    /// CONTRL's UCM groups occur 999999 times (not 999, as one schema of
    /// it has): an interchange of 1,200 messages in error is answered by
    /// 1,200 UCMs under its rejecting UCI, and the CONTRL is itself valid.
    #[test]
    fn ucm_groups_go_beyond_999() {
        let mut text = String::from("UNA:+.? 'UNB+UNOC:3+S+R+261124:1030+REF'");
        for n in 1..=1200 {
            text.push_str(&format!("UNH+{n}+CUSDEC:D:96B:UN'BGM+929+A+9'UNT+9+{n}'"));
        }
        text.push_str("UNZ+1200+REF'");
        let parsed = crate::edifact::parse(text.as_bytes());
        let contrl = contrl_for(&parsed);
        let out = contrl.text();
        // One UCM per message whose errors the parser recorded (it keeps
        // the first 1,000 issues and counts the rest): more than 999.
        let recorded: std::collections::BTreeSet<_> = parsed
            .issues
            .iter()
            .filter_map(|i| i.location.message.clone())
            .collect();
        assert!(recorded.len() > 999, "{}", recorded.len());
        assert_eq!(out.matches("UCM+").count(), recorded.len(), "{}", out.len());
        assert!(
            out.contains("UCI+REF+S+R+4"),
            "{}",
            out.get(..300).unwrap_or("")
        );
        let answer = validated(&contrl.bytes);
        let errors: Vec<&Issue> = answer.issues.iter().filter(|i| i.is_error()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    /// Segment group 3 (UCF) goes beyond 999 too: 1,200 groups, each with
    /// a message in error, are answered by 1,200 UCFs.
    #[test]
    fn ucf_groups_go_beyond_999() {
        let mut text = String::from("UNA:+.? 'UNB+UNOC:3+S+R+261124:1030+REF'");
        for n in 1..=1200 {
            text.push_str(&format!(
                "UNG+CUSDEC+S+R+261124:1030+G{n}+UN+D:96B'UNH+{n}+CUSDEC:D:96B:UN'BGM+929+A+9'UNT+9+{n}'UNE+1+G{n}'"
            ));
        }
        text.push_str("UNZ+1200+REF'");
        let parsed = crate::edifact::parse(text.as_bytes());
        let contrl = contrl_for(&parsed);
        let out = contrl.text();
        let recorded: std::collections::BTreeSet<_> = parsed
            .issues
            .iter()
            .filter_map(|i| i.location.group.clone())
            .collect();
        assert!(recorded.len() > 999, "{}", recorded.len());
        assert_eq!(
            out.matches("UCF+").count(),
            recorded.len(),
            "{} issues ({} dropped), {} groups, {:?}",
            parsed.issues.len(),
            parsed.dropped_issues,
            parsed.interchange.groups.len(),
            parsed.issues.iter().take(3).collect::<Vec<_>>()
        );
        let answer = validated(&contrl.bytes);
        let errors: Vec<&Issue> = answer.issues.iter().filter(|i| i.is_error()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    /// An interchange with no UNB is answered by a CONTRL that is itself
    /// valid: UCI's mandatory 0020, S002 and S003 get placeholders.
    #[test]
    fn the_answer_to_an_interchange_without_unb_is_valid() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("fixtures/edifact/ok/cusdec-d96b-unoc.edi"))
            .unwrap_or_default();
        let headless = text
            .get(text.find("UNH+").unwrap_or(0)..)
            .unwrap_or_default();
        let directories = std::sync::Arc::new(crate::schema::Directories::new(&[
            root.join("schemas/untdid")
        ]));
        let parse = |bytes: &[u8]| {
            crate::edifact::Parser::new(bytes, crate::edifact::ParseOptions::default())
                .with_directories(directories.clone())
                .run(|_, _| {})
                .ok()
        };
        let Some(parsed) = parse(headless.as_bytes()) else {
            panic!("the interchange parses");
        };
        assert!(parsed.issues.iter().any(Issue::is_error));
        let contrl = contrl_for(&parsed);
        let out = String::from_utf8_lossy(&contrl.bytes).into_owned();
        assert!(out.contains("UCI+UNKNOWN+UNKNOWN+TRADEHUB+4"), "{out}");
        let Some(answer) = parse(&contrl.bytes) else {
            panic!("the CONTRL parses");
        };
        let errors: Vec<&Issue> = answer.issues.iter().filter(|i| i.is_error()).collect();
        assert!(errors.is_empty(), "{out}\n{errors:#?}");
    }

    /// Found by review, each answer checked to be a valid CONTRL as well:
    /// a segment tag written wrong is not echoed as 0013 (it made the
    /// CONTRL invalid: 0013 is a3 and names a service segment); a group
    /// header without its parties gets placeholders in UCF's mandatory
    /// S006/S007; a simple data element is named without a component
    /// (0104); a release not available is version 3's code 3 (message
    /// version/release not supported) at 0054, and 18 in version 4,
    /// whose list has no such code.
    #[test]
    fn answers_to_broken_envelopes_are_valid_contrls() {
        let directories =
            std::sync::Arc::new(crate::schema::Directories::new(&[std::path::Path::new(
                env!("CARGO_MANIFEST_DIR"),
            )
            .join("schemas/untdid")]));
        let parse = |bytes: &[u8]| {
            crate::edifact::Parser::new(bytes, crate::edifact::ParseOptions::default())
                .with_directories(directories.clone())
                .run(|_, _| {})
                .ok()
        };
        let message = "UNH+1+CUSDEC:D:96B:UN'BGM+929+LRN1+9'UNT+3+1'";
        let cases = [
            (
                format!(
                    "UNB+UNOC:3+S+R+261129:1200+REF1'UNG +CUSDEC+X+Y+261124:1030+G1+UN+D:96B'{message}UNZ+1+REF1'"
                ),
                "UCI+REF1+S+R+4+33'",
            ),
            (
                format!(
                    "UNB+UNOC:3+S+R+261129:1200+REF2'UNG+CUSDEC+++261124:1030+G1+UN+D:96B'{message}UNE+1+G1'UNZ+1+REF2'"
                ),
                "UCF+G1+UNKNOWN+UNKNOWN+4+13+UNG+3'",
            ),
            (
                format!("UNB+UNOA:3+S+R+261129:1200+ref-3'{message}UNZ+1+ref-3'"),
                "UCI+ref-3+S+R+4+21+UNB+6'",
            ),
            (
                format!(
                    "UNB+UNOC:3+S+R+261129:1200+REF4'{}UNZ+1+REF4'",
                    message.replace("D:96B", "D:99Z")
                ),
                "UCM+1+CUSDEC:D:99Z:UN+4+3+UNH+3:3'",
            ),
            (
                format!(
                    "UNB+UNOC:4+S+R+20261129:1200+REF5'{}UNZ+1+REF5'",
                    message.replace("D:96B", "D:99Z")
                ),
                "UCM+1+CUSDEC:D:99Z:UN+4+18+UNH+3:3'",
            ),
        ];
        for (subject, expected) in cases {
            let v4 = subject.starts_with("UNB+UNOC:4");
            let contrl = build(
                &validated(subject.as_bytes()),
                &Options::at(crate::timestamp::Timestamp::now(), v4, "T".into()),
            );
            let out = String::from_utf8_lossy(&contrl.bytes).into_owned();
            assert!(out.contains(expected), "{subject}\n{out}");
            let Some(answer) = parse(&contrl.bytes) else {
                panic!("the CONTRL parses");
            };
            let errors: Vec<&Issue> = answer.issues.iter().filter(|i| i.is_error()).collect();
            assert!(errors.is_empty(), "{out}\n{errors:#?}");
        }
    }

    #[test]
    fn s011_counts_the_tag_and_gives_component_or_occurrence() {
        // The first data element after the tag is position 2.
        assert_eq!(s011(&at(1, None, None), false), Element::simple("2"));
        assert_eq!(
            s011(&at(3, Some(2), None), false),
            Element::composite(["4", "2"])
        );
        // Syntax 4: a later occurrence is named instead of the component
        // (D4: one or none of 0104 and 0136); the first occurrence keeps
        // the component.
        assert_eq!(
            s011(&at(1, Some(2), Some(2)), true),
            Element::composite(["2", "", "2"])
        );
        assert_eq!(
            s011(&at(1, Some(2), Some(1)), true),
            Element::composite(["2", "2"])
        );
        // Syntax 3 has no 0136.
        assert_eq!(
            s011(&at(1, Some(2), Some(2)), false),
            Element::composite(["2", "2"])
        );
    }
}
