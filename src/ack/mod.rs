//! Acknowledgements and responses the hub sends back to senders: CONTRL
//! (syntax), WCO RES (XML), and the UN/EDIFACT D.96B application answers
//! APERAK (findings located at segments) and CUSRES (customs status).
//!
//! The D.96B writers only emit segments; which segments may follow which,
//! and which codes are valid, is the official directory's business, and the
//! tests validate every answer against it (tests/ack_edifact.rs). Code
//! values named here are from the D.96B UNCL code lists.

pub mod aperak;
pub mod contrl;
pub mod cusres;
pub mod res;

use std::fmt;

use crate::diag::{Issue, Location, Severity};
use crate::edifact::writer;
use crate::edifact::{Charset, Element, Segment, Separators};
use crate::model::ResponseError;
use crate::timestamp::Timestamp;

/// Who sends an answer, to whom, in which syntax and when. The caller
/// supplies it, so the builders stay pure and their output reproducible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// UNB sender id (the hub).
    pub hub: String,
    /// Its identification code qualifier (0007), when known.
    pub hub_qualifier: String,
    /// UNB recipient id (the partner answered).
    pub partner: String,
    /// Its identification code qualifier (0007), as the partner gave it.
    pub partner_qualifier: String,
    /// The address for reverse routing the partner gave in its UNB S002
    /// (0008), carried back in the answer's S003 (0014) so that a network
    /// routing on it delivers the answer.
    pub partner_routing: String,
    /// Syntax identifier, e.g. `UNOC`; one tradehub does not support is
    /// answered in UNOC.
    pub syntax_identifier: String,
    /// Syntax version 1 to 4 (others are answered in version 3).
    pub syntax_version: u8,
    /// Unique control reference, at most 14 characters (longer ones are
    /// cut): UNB 0020 and UNH 0062 of the answer.
    pub reference: String,
    /// Time of preparation (UNB S004, the answer's DTM).
    pub at: Timestamp,
}

/// The message being answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Original {
    /// UNB 0020 of its interchange.
    pub interchange_reference: String,
    /// UNH 0062.
    pub message_reference: String,
    /// UNH 0065, e.g. `CUSDEC`.
    pub message_type: String,
    /// The declaration's LRN (CUSDEC BGM 1004), when it is known.
    pub lrn: Option<String>,
}

/// Where an error is in an EDIFACT message, as a [`ResponseError`]'s
/// `pointer` carries it: `TAG:POSITION[:ELEMENT[:COMPONENT]]`, the position
/// counted in the message (UNH = 1) as in CONTRL's UCS, element and
/// component 1-based as in S011 — e.g. `CST:17:2:1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPointer {
    pub tag: String,
    pub position: u32,
    pub element: Option<u16>,
    pub component: Option<u16>,
}

impl SegmentPointer {
    /// The pointer of a location that names a segment in a message.
    pub fn of(location: &Location) -> Option<SegmentPointer> {
        Some(SegmentPointer {
            tag: location.tag.clone()?,
            position: location.message_segment?,
            element: location.element,
            component: location.element.and(location.component),
        })
    }

    /// Reads `CST:17:2:1`; `None` for anything else (an XML path, a JSON
    /// pointer).
    pub fn parse(text: &str) -> Option<SegmentPointer> {
        let mut parts = text.split(':');
        let tag = parts.next()?;
        if tag.len() != 3
            || !tag
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return None;
        }
        let position = parts.next()?.parse().ok()?;
        let element = match parts.next() {
            Some(e) => Some(e.parse().ok()?),
            None => None,
        };
        let component = match parts.next() {
            Some(c) => Some(c.parse().ok()?),
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(SegmentPointer {
            tag: tag.to_owned(),
            position,
            element,
            component,
        })
    }

    /// Human-readable parts: the segment, then element and component.
    fn describe(&self, message: &str) -> Vec<String> {
        let mut out = vec![format!(
            "segment {} at position {} of message {message}",
            self.tag, self.position
        )];
        match (self.element, self.component) {
            (Some(e), Some(c)) => out.push(format!("element {e}, component {c}")),
            (Some(e), None) => out.push(format!("element {e}")),
            _ => {}
        }
        out
    }
}

impl fmt::Display for SegmentPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.tag, self.position)?;
        if let Some(e) = self.element {
            write!(f, ":{e}")?;
            if let Some(c) = self.component {
                write!(f, ":{c}")?;
            }
        }
        Ok(())
    }
}

/// A finding as a [`ResponseError`]: its code; the segment pointer when the
/// finding is located in an EDIFACT message, else its XML element path or
/// canonical field; its message, with the canonical field when there is one
/// (`… [field /goods/1/hs_code]`).
pub fn response_error(issue: &Issue) -> ResponseError {
    let loc = &issue.location;
    let pointer = SegmentPointer::of(loc)
        .map(|p| p.to_string())
        .or_else(|| loc.path.clone())
        .or_else(|| loc.field.clone());
    let mut message = issue.message.clone();
    if issue.severity == Severity::Warning {
        message.insert_str(0, "(warning) ");
    }
    if let Some(field) = &loc.field
        && pointer.as_deref() != Some(field.as_str())
    {
        message.push_str(&format!(" [field {field}]"));
    }
    ResponseError {
        code: issue.code.as_str().to_owned(),
        pointer,
        message,
        warning: issue.severity == Severity::Warning,
    }
}

/// Where a located issue is, in words, at most 5 parts (FTX C108).
fn describe(location: &Location, message: &str) -> Vec<String> {
    let mut out = match SegmentPointer::of(location) {
        Some(p) => p.describe(location.message.as_deref().unwrap_or(message)),
        None => Vec::new(),
    };
    if let Some(group) = &location.group_path {
        out.push(format!("segment group {group}"));
    }
    if let Some(field) = &location.field {
        out.push(format!("field {field}"));
    }
    if let Some(path) = &location.path {
        out.push(format!("element path {path}"));
    }
    out.truncate(5);
    out
}

/// UNCL 3055 `ZZZ` (mutually defined): qualifies a 9321 application error
/// code as one of tradehub's issue codes (docs/codes.md). D.96B has no UNCL
/// code list for 9321; its directory entry says "user or association
/// defined code, may be used in combination with 1131/3055".
const AGENCY_MUTUALLY_DEFINED: &str = "ZZZ";

/// ERC: the application error code (9321, an..8) qualified by 3055 `ZZZ`.
fn erc(code: &str) -> Segment {
    Segment::new(
        "ERC",
        vec![Element::composite([
            cut(code, 8).as_str(),
            "",
            AGENCY_MUTUALLY_DEFINED,
        ])],
    )
}

/// FTX with a text subject (UNCL 4451) and the text in at most five
/// 70-character parts of C108 (a longer text ends its fifth with `...`).
fn ftx(subject: &str, parts: &[String]) -> Segment {
    Segment::new(
        "FTX",
        vec![
            Element::simple(subject),
            Element::simple(""),
            Element::simple(""),
            Element::composite(ftx_lines(parts)),
        ],
    )
}

/// The lines of an FTX C108 holding `parts`: at most five of 70
/// characters, a longer text ending its fifth with `...`.
fn ftx_lines(parts: &[String]) -> Vec<String> {
    let mut texts: Vec<String> = Vec::new();
    for (n, part) in parts.iter().enumerate() {
        // A part after the first starts with a space too: all the lines
        // joined without a separator are the parts joined by one.
        texts.extend(wrap_on(part, 70, n > 0));
    }
    if texts.len() > 5 {
        // Said, not silently dropped: the fifth part ends with "...".
        texts.truncate(5);
        if let Some(last) = texts.last_mut() {
            *last = format!("{}...", cut(last, 67));
        }
    }
    if texts.is_empty() {
        texts.push("-".into());
    }
    texts
}

/// Romanized initial, medial and final consonants of the Hangul syllables
/// (Unicode U+AC00–U+D7A3, composed as (initial × 21 + medial) × 28 +
/// final), after the Revised Romanization of Korean (Ministry of Culture
/// and Tourism notice 2000-8): a final consonant as it is pronounced at
/// the end of a word (ㄱ ㄲ ㅋ k; ㄷ ㅅ ㅆ ㅈ ㅊ ㅌ ㅎ t; ㅂ ㅍ p; a double
/// final as its sounding consonant).
const HANGUL_INITIALS: [&str; 19] = [
    "g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p",
    "h",
];
const HANGUL_MEDIALS: [&str; 21] = [
    "a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we",
    "wi", "yu", "eu", "ui", "i",
];
const HANGUL_FINALS: [&str; 28] = [
    "", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m", "p", "p",
    "t", "t", "ng", "t", "t", "k", "t", "p", "t",
];

/// `text` with each Hangul syllable romanized (see [`HANGUL_INITIALS`]),
/// syllable by syllable: the sound changes between syllables that the
/// Revised Romanization also writes (독립 dongnip) are not made, so the
/// result spells the text out rather than how it is said (독립 dokrip).
/// For an answer in a repertoire without Hangul (UNOA to UNOC), whose
/// reader gets a legible text instead of `.` for every syllable; the hub
/// keeps the original.
fn romanize(text: &str) -> std::borrow::Cow<'_, str> {
    let syllable = |c: char| {
        let code = u32::from(c).checked_sub(0xAC00).filter(|n| *n < 11_172)?;
        let at = |n: u32| usize::try_from(n).ok();
        Some([
            HANGUL_INITIALS.get(at(code / 588)?)?,
            HANGUL_MEDIALS.get(at(code % 588 / 28)?)?,
            HANGUL_FINALS.get(at(code % 28)?)?,
        ])
    };
    if !text.chars().any(|c| syllable(c).is_some()) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match syllable(c) {
            Some(parts) => parts.iter().for_each(|p| out.push_str(p)),
            None => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// An FTX whose text (C108, its lines joined) holds Hangul, with the text
/// romanized and wrapped again (see [`romanize`]); any other segment as it is.
fn romanized_ftx(segment: Segment) -> Segment {
    if segment.tag != "FTX" {
        return segment;
    }
    let Some(lines) = segment
        .elements
        .get(3)
        .and_then(|e| e.repetitions().first())
    else {
        return segment;
    };
    let joined = lines.concat();
    let std::borrow::Cow::Owned(romanized) = romanize(&joined) else {
        return segment;
    };
    let mut elements = segment.elements.clone();
    if let Some(text) = elements.get_mut(3) {
        *text = Element::composite(ftx_lines(&[romanized]));
    }
    Segment::new(segment.tag, elements)
}

/// RFF: a reference qualifier (UNCL 1153), the number, and a line number
/// (1156) when one is given.
fn rff(qualifier: &str, number: &str, line: Option<u32>) -> Segment {
    let mut parts = vec![qualifier.to_owned(), cut(number, 35)];
    if let Some(line) = line {
        parts.push(cut(&line.to_string(), 6));
    }
    Segment::new("RFF", vec![Element::composite(parts)])
}

/// DTM 137 (document/message date/time, UNCL 2005) in format 203
/// (CCYYMMDDHHMM, UNCL 2379).
fn dtm_prepared(at: &Timestamp) -> Segment {
    dtm(
        "137",
        &format!("{}{}", at.edifact_date(true), at.edifact_time()),
        "203",
    )
}

fn dtm(qualifier: &str, value: &str, format: &str) -> Segment {
    Segment::new("DTM", vec![Element::composite([qualifier, value, format])])
}

/// At most `max` characters.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Splits text into lines of at most `width` characters, at spaces where
/// possible. Joined without a separator the lines give the text back (its
/// words one space apart): a line cut at a space carries that space at its
/// start, where a receiver keeps it (trailing spaces are often trimmed).
/// `continued`: the text continues one before it, so its first word is
/// carried with the space that parts them.
fn wrap_on(text: &str, width: usize, continued: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for (n, word) in text.split_whitespace().enumerate() {
        let mut piece = if n == 0 && !continued {
            word.to_owned()
        } else {
            format!(" {word}")
        };
        loop {
            let used = line.chars().count();
            if used + piece.chars().count() <= width {
                line.push_str(&piece);
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a line is split.
            let head: String = piece.chars().take(width).collect();
            piece = piece.chars().skip(width).collect();
            lines.push(head);
            if piece.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Drops empty trailing elements (ISO 9735 forbids trailing separators).
fn trim(mut segment: Segment) -> Segment {
    while segment.elements.last().is_some_and(Element::is_empty) {
        segment.elements.pop();
    }
    segment
}

/// One D.96B message (`UNH` … `UNT` around `body`) in its own interchange,
/// as text: UNA, then level A separators (with `*` for repetitions in
/// syntax version 4). Every character is in the repertoire of the syntax
/// identifier (Hangul in free text romanized where it has none, see
/// [`romanize`]; others replaced by `.`), so the text encodes with it.
fn interchange(envelope: &Envelope, message_type: &str, body: Vec<Segment>) -> String {
    // The references the answer quotes (RFF) and the parties of its UNB
    // are echoed as the sender wrote them (see `answer_charset`).
    let (syntax_id, charset) = answer_repertoire(
        &envelope.syntax_identifier,
        body.iter()
            .filter(|s| s.tag == "RFF")
            .flat_map(values)
            .chain([
                envelope.hub.as_str(),
                envelope.partner.as_str(),
                envelope.partner_routing.as_str(),
            ]),
    );
    let version = match envelope.syntax_version {
        v @ 1..=4 => v,
        _ => 3,
    };
    let v4 = version == 4;
    let mut reference = cut(&envelope.reference, 14);
    if reference.is_empty() {
        reference.push('1');
    }
    let at = &envelope.at;
    let mut segments = Vec::with_capacity(body.len() + 4);
    segments.push(Segment::new(
        "UNB",
        vec![
            Element::composite([syntax_id.to_owned(), version.to_string()]),
            party(&envelope.hub, &envelope.hub_qualifier),
            // S003 0010 is mandatory: an answer to an interchange that
            // named no sender (`ack` of a broken file; the hub answers its
            // authenticated partner) goes to `UNKNOWN`, as its CONTRL does.
            routed_party(
                &or_else(&envelope.partner, UNKNOWN),
                &envelope.partner_qualifier,
                &envelope.partner_routing,
                v4,
            ),
            Element::composite([at.edifact_date(v4), at.edifact_time()]),
            Element::simple(&reference),
        ],
    ));
    segments.push(Segment::new(
        "UNH",
        vec![
            Element::simple(&reference),
            Element::composite([message_type, "D", "96B", "UN"]),
        ],
    ));
    let count = body.len() + 2;
    // Free text in Korean (an agency's reasons) goes to a sender whose
    // repertoire has no Hangul romanized, not as a `.` per syllable.
    let hangul = charset.encode("\u{AC00}", &mut Vec::new()).is_ok();
    segments.extend(body.into_iter().map(|s| {
        if hangul {
            trim(s)
        } else {
            trim(romanized_ftx(s))
        }
    }));
    segments.push(Segment::new(
        "UNT",
        vec![
            Element::simple(count.to_string()),
            Element::simple(&reference),
        ],
    ));
    segments.push(Segment::new(
        "UNZ",
        vec![Element::simple("1"), Element::simple(&reference)],
    ));
    let segments: Vec<Segment> = segments
        .iter()
        .map(|s| {
            // Level A has no lower case: texts are written in capitals
            // rather than lost to replacement characters.
            if charset == Charset::LevelA {
                contrl::sanitize(&upper(s), charset)
            } else {
                contrl::sanitize(s, charset)
            }
        })
        .collect();
    let seps = if v4 {
        Separators::LEVEL_A_V4
    } else {
        Separators::LEVEL_A
    };
    let mut bytes = seps.una().to_vec();
    // Every value is in the repertoire now, and written as UTF-8 text; the
    // tags are fixed and nothing repeats, so writing cannot fail.
    if writer::write_segments(&segments, &seps, Charset::Utf8, &mut bytes).is_err() {
        bytes.clear();
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// The repertoire an answer is written in: the subject's (`declared`),
/// unless the identifiers the answer echoes (`echoed`: references, party
/// ids) hold characters it cannot carry — lower case in a level A (UNOA)
/// interchange, which senders often write — and then the narrowest of
/// level B and Latin-1 that holds them, so that the sender finds its own
/// references in the answer as it sent them rather than with `.` in their
/// place. Only the level A and B repertoires are widened: the others are
/// kept (what they cannot carry is replaced).
pub(crate) fn answer_charset<'a>(
    declared: Charset,
    echoed: impl IntoIterator<Item = &'a str>,
) -> Charset {
    if !matches!(declared, Charset::LevelA | Charset::LevelB) {
        return declared;
    }
    let echoed: Vec<&str> = echoed.into_iter().collect();
    let holds = |charset: Charset| {
        let mut scratch = Vec::new();
        echoed
            .iter()
            .all(|text| charset.encode(text, &mut scratch).is_ok())
    };
    [declared, Charset::LevelB, Charset::Iso8859(1)]
        .into_iter()
        .find(|c| holds(*c))
        .unwrap_or(declared)
}

/// The syntax identifier and repertoire of an answer to a subject that
/// declared `declared` (see [`answer_charset`]): the subject's own
/// identifier when it is kept, the widened repertoire's otherwise, and
/// UNOC when the hub does not support the subject's.
pub(crate) fn answer_repertoire<'a>(
    declared: &'a str,
    echoed: impl IntoIterator<Item = &'a str>,
) -> (&'a str, Charset) {
    match Charset::from_syntax_identifier(declared) {
        Some(charset) => match answer_charset(charset, echoed) {
            c if c == charset => (declared, c),
            c => (c.syntax_identifier(), c),
        },
        None => ("UNOC", Charset::Iso8859(1)),
    }
}

/// Every value of `segment` (all elements, repetitions and components).
pub(crate) fn values(segment: &Segment) -> impl Iterator<Item = &str> {
    segment
        .elements
        .iter()
        .flat_map(|e| e.repetitions().iter().flatten())
        .map(String::as_str)
}

/// The segment with its values in ASCII capitals.
fn upper(segment: &Segment) -> Segment {
    let elements = segment
        .elements
        .iter()
        .map(|e| {
            Element::repeated(
                e.repetitions()
                    .iter()
                    .map(|comps| comps.iter().map(|c| c.to_ascii_uppercase()).collect())
                    .collect(),
            )
        })
        .collect();
    Segment::new(segment.tag.clone(), elements)
}

/// The placeholder for a mandatory party or reference the subject did not
/// give (a field of an unreadable UNB).
pub(crate) const UNKNOWN: &str = "UNKNOWN";

/// `value`, or `fallback` when it is empty (a field of an unreadable UNB).
pub(crate) fn or_else(value: &str, fallback: &str) -> String {
    if value.is_empty() {
        fallback.to_owned()
    } else {
        value.to_owned()
    }
}

/// UNB S003 with the routing address (0014, an..14 in syntax 3, an..35
/// in 4 as 0014 internal identification) after the id and qualifier.
pub(crate) fn routed_party(id: &str, qualifier: &str, routing: &str, v4: bool) -> Element {
    if routing.is_empty() {
        return party(id, qualifier);
    }
    let most = if v4 { 35 } else { 14 };
    Element::composite([cut(id, 35), cut(qualifier, 4), cut(routing, most)])
}

/// UNB S002/S003: the id (an..35) and, when there is one, its qualifier
/// (an..4).
fn party(id: &str, qualifier: &str) -> Element {
    let qualifier = cut(qualifier, 4);
    if qualifier.is_empty() {
        Element::simple(cut(id, 35))
    } else {
        Element::composite([cut(id, 35), qualifier])
    }
}

/// The bytes to send for an answer the writers built: the text encoded in
/// the repertoire its UNB names (the writers only put characters of that
/// repertoire in it; UTF-8 when the identifier is unknown, and for anything
/// that does not begin with UNA or UNB: XML, a refusal in words).
pub fn to_bytes(answer: &str) -> Vec<u8> {
    let head = if answer.starts_with("UNA") {
        answer.get(9..).unwrap_or_default()
    } else {
        answer
    };
    let charset = head
        .trim_start_matches(['\r', '\n'])
        .strip_prefix("UNB")
        .and_then(|rest| rest.get(1..5))
        .and_then(Charset::from_syntax_identifier)
        .unwrap_or(Charset::Utf8);
    let mut out = Vec::with_capacity(answer.len());
    if charset.encode(answer, &mut out).is_err() {
        out.clear();
        out.extend_from_slice(answer.as_bytes());
    }
    out
}

/// The answer's message reference and type in words, for header FTX.
fn answering(original: &Original) -> String {
    let mut text = format!(
        "answer to {} {} of interchange {}",
        if original.message_type.is_empty() {
            "message"
        } else {
            original.message_type.as_str()
        },
        original.message_reference,
        original.interchange_reference
    );
    if let Some(lrn) = &original.lrn {
        text.push_str(&format!(", LRN {lrn}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Revised Romanization, syllable by syllable: the first and last
    /// syllables of the block (가 ga, 힣 hit), double finals as they sound,
    /// place names spelt as the notice spells them where no sound change
    /// is involved, and everything that is not a Hangul syllable kept.
    #[test]
    fn hangul_is_romanized_syllable_by_syllable() {
        for (korean, latin) in [
            ("가", "ga"),
            ("힣", "hit"),
            ("서울", "seoul"),
            ("부산", "busan"),
            ("인천", "incheon"),
            ("제주", "jeju"),
            ("광주", "gwangju"),
            ("대전", "daejeon"),
            ("울산", "ulsan"),
            ("닭", "dak"),
            ("값", "gap"),
            ("의료기기", "uiryogigi"),
            ("식품의약품안전처", "sikpumuiyakpumanjeoncheo"),
            // No sound change between syllables: spelt out.
            ("독립", "dokrip"),
            ("label 라벨 ok, 4도!", "label rabel ok, 4do!"),
            ("ㄱ", "ㄱ"),
        ] {
            assert_eq!(romanize(korean), latin, "{korean}");
        }
        assert!(matches!(
            romanize("no Hangul"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    /// Answers go out in the repertoire their own UNB names; anything that
    /// is no EDIFACT interchange (a WCO RES, a refusal in words) as UTF-8,
    /// even when its text mentions a UNB.
    #[test]
    fn answers_are_encoded_in_the_repertoire_of_their_unb() {
        assert_eq!(
            to_bytes("UNA:+.? 'UNB+UNOC:3+ZOLLÄMT'"),
            b"UNA:+.? 'UNB+UNOC:3+ZOLL\xC4MT'"
        );
        assert_eq!(to_bytes("UNB+UNOC:3+Ä'"), b"UNB+UNOC:3+\xC4'");
        assert_eq!(to_bytes("UNB+UNOW:4+Ä'"), "UNB+UNOW:4+Ä'".as_bytes());
        let xml = "<Description>UNB+UNOC:3 sender ZOLLÄMT refused</Description>";
        assert_eq!(to_bytes(xml), xml.as_bytes());
        let words = "refused HUB201: UNB+UNOC sender Ä";
        assert_eq!(to_bytes(words), words.as_bytes());
    }

    #[test]
    fn segment_pointers_round_trip() {
        for text in ["CST:17:2:1", "BGM:2", "NAD:9:2"] {
            let p = SegmentPointer::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(p.to_string(), text);
        }
        for text in ["/goods/1", "cst:1", "CST", "CST:x", "CST:1:2:3:4"] {
            assert_eq!(SegmentPointer::parse(text), None, "{text}");
        }
    }

    #[test]
    fn text_wraps_at_spaces_and_splits_long_words() {
        assert_eq!(wrap_on("aa bb cc", 5, false), vec!["aa bb", " cc"]);
        // Joined without a separator, the lines are the text again.
        let text = "permit 01a2 refused by KMDIA: not registered as a medical device importer";
        for width in 3..40 {
            let lines = wrap_on(text, width, false);
            assert!(
                lines.iter().all(|l| l.chars().count() <= width),
                "{lines:?}"
            );
            assert_eq!(lines.concat(), text, "width {width}");
        }
        assert_eq!(wrap_on("abcdefgh", 3, false), vec!["abc", "def", "gh"]);
        assert_eq!(wrap_on("", 3, false), Vec::<String>::new());
    }
}
