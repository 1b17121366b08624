//! The interchange envelope (ISO 9735): UNB/UNZ, optional UNG/UNE groups and
//! UNH/UNT messages, with their control counts and references checked, and
//! the interchange tree built from them.
//!
//! [`parse`] builds the whole tree from bytes; [`Parser`] streams any reader
//! and hands each message to a callback, keeping memory bounded by the
//! largest message (or, with no callback, by the largest segment).

use std::io::{self, Read};
use std::sync::Arc;

use serde::Serialize;

use super::charset::Charset;
use super::lexer::{LexProblem, Lexer, Limits, Next, RawSegment};
use super::segment::Segment;
use super::separators::Separators;
use super::text::MessageText;
use crate::diag::{Code, Issue, Location, Severity};
use crate::schema::validate::Finding;
use crate::schema::{Directories, MessageValidator, Unsplit};

/// A parsed interchange: the envelope fields and, when kept, its messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Interchange {
    /// The UNA service string advice, when present (`:+.? '`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub una: Option<String>,
    /// The separators in force.
    pub separators: Separators,
    /// UNB S001: syntax identifier (e.g. `UNOC`) and version (`3`).
    pub syntax_identifier: String,
    pub syntax_version: String,
    /// UNB S002/S003: sender and recipient identification and qualifier.
    pub sender: Party,
    pub recipient: Party,
    /// UNB S004 date (YYMMDD or CCYYMMDD) and time (HHMM).
    pub date: String,
    pub time: String,
    /// UNB 0020: interchange control reference.
    pub control_reference: String,
    /// UNB 0026: application reference.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub application_reference: String,
    /// UNB 0031: acknowledgement request (`1` = CONTRL requested).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub acknowledgement_request: String,
    /// UNB 0035: test indicator (`1` = test).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub test_indicator: String,
    /// The UNB segment as received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<Segment>,
    /// Functional groups (UNG..UNE), when the interchange uses them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    /// Messages that are not inside a group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    /// The UNZ segment as received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailer: Option<Segment>,
    /// Counts of what was received (always filled, even when messages are
    /// not kept).
    pub counts: Counts,
}

impl Interchange {
    /// Every kept message: those outside groups, then each group's.
    pub fn all_messages(&self) -> impl Iterator<Item = &Message> {
        self.messages
            .iter()
            .chain(self.groups.iter().flat_map(|g| g.messages.iter()))
    }
}

/// Sender or recipient of an interchange or group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Party {
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub qualifier: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub internal_id: String,
}

/// What an interchange contained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// All segments, UNA not counted.
    pub segments: u64,
    pub groups: u64,
    pub messages: u64,
    pub bytes: u64,
}

/// A functional group (UNG..UNE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Position of UNG in the interchange.
    pub position: u32,
    /// UNG 0048: group reference number.
    pub reference: String,
    /// UNG 0038: message group identification (the message type).
    pub message_type: String,
    pub header: Segment,
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailer: Option<Segment>,
}

/// A message (UNH..UNT).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Position of UNH in the interchange (UNB = 1).
    pub position: u32,
    /// UNH 0062: message reference number.
    pub reference: String,
    /// UNH S009: message type, version, release, controlling agency,
    /// association assigned code.
    pub message_type: String,
    pub version: String,
    pub release: String,
    pub agency: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub association_code: String,
    /// Reference of the group the message is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// UNH..UNT inclusive (empty when the parser does not keep segments).
    pub segments: Vec<Segment>,
    /// UNH..UNT inclusive as one decoded text (empty unless
    /// [`ParseOptions::message_text`]); what the mappings read.
    #[serde(skip)]
    pub text: MessageText,
    /// True when the message ended without UNT.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unterminated: bool,
    /// The interchange's decimal mark (UNA, or `.`); `None` for a message
    /// made by hand, whose decimals may use either mark.
    #[serde(skip)]
    pub decimal_mark: Option<char>,
}

impl Message {
    /// The directory this message claims, e.g. `D:96B:UN` → ("D", "96B").
    pub fn directory(&self) -> (&str, &str) {
        (&self.version, &self.release)
    }
}

/// Options of a parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    pub limits: Limits,
    /// Keep every message in the returned tree (with its segments, or,
    /// with `message_text` alone, its text).
    pub keep_messages: bool,
    /// Decode every segment of each message for the `on_message` callback
    /// (otherwise messages reach it without segments: UNH's fields are in
    /// the message itself).
    pub decode_messages: bool,
    /// Give each message its values as one [`MessageText`] (UNH..UNT),
    /// decoded while validating, without a `String` per component: what
    /// the mappings read.
    pub message_text: bool,
}

impl ParseOptions {
    /// Messages are given their segments (kept or decoded for the
    /// callback); kept messages with a text have only the text.
    fn keeps_segments(&self) -> bool {
        self.decode_messages || (self.keep_messages && !self.message_text)
    }
}

/// The result of parsing: the tree and every issue found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Parsed {
    pub interchange: Interchange,
    pub issues: Vec<Issue>,
    /// Issues beyond [`Limits::max_issues`] that were counted, not kept.
    pub dropped_issues: u64,
    /// Errors in total (kept or dropped).
    pub error_count: u64,
}

impl Parsed {
    /// True when no error was found.
    pub fn is_valid(&self) -> bool {
        self.error_count == 0
    }
}

/// Parses a whole interchange held in memory, keeping every message.
pub fn parse(input: &[u8]) -> Parsed {
    let options = ParseOptions {
        keep_messages: true,
        decode_messages: true,
        ..ParseOptions::default()
    };
    // Reading from a slice cannot fail.
    Parser::new(input, options)
        .run(|_, _| {})
        .unwrap_or_default()
}

/// Collects issues up to a limit, counting the rest.
#[derive(Debug)]
pub struct IssueSink {
    issues: Vec<Issue>,
    max: usize,
    dropped: u64,
    errors: u64,
}

impl IssueSink {
    fn new(max: usize) -> Self {
        IssueSink {
            issues: Vec::new(),
            max,
            dropped: 0,
            errors: 0,
        }
    }

    /// Records an issue (or only counts it once the limit is reached).
    pub fn push(&mut self, issue: Issue) {
        if issue.severity == Severity::Error {
            self.errors += 1;
        }
        if self.issues.len() < self.max {
            self.issues.push(issue);
        } else {
            self.dropped += 1;
        }
    }

    /// Records an issue at `at` among those recorded (at the end when
    /// fewer are), or only counts it once the limit is reached.
    fn insert(&mut self, at: usize, issue: Issue) {
        if issue.severity == Severity::Error {
            self.errors += 1;
        }
        if self.issues.len() < self.max {
            self.issues.insert(at.min(self.issues.len()), issue);
        } else if at < self.issues.len() {
            // Full: it takes its place and the last one recorded is only
            // counted, as it would have been.
            self.issues.insert(at, issue);
            self.issues.pop();
            self.dropped += 1;
        } else {
            self.dropped += 1;
        }
    }

    /// Errors recorded so far.
    pub fn error_count(&self) -> u64 {
        self.errors
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before UNB.
    Start,
    /// Inside the interchange, between messages or groups.
    Interchange,
    /// After UNZ.
    Done,
    /// The input is not EDIFACT; the rest is not looked at.
    Rejected,
}

/// Streams an interchange through the lexer and checks its envelope.
#[derive(Debug)]
pub struct Parser<R> {
    lexer: Lexer<R>,
    options: ParseOptions,
    sink: IssueSink,
    state: State,
    tree: Interchange,
    charset: Charset,
    /// The open group, if any.
    group: Option<Group>,
    /// Messages counted in the open group.
    group_messages: u64,
    /// The open message, if any, and how many segments it has so far.
    message: Option<Message>,
    message_segments: u32,
    /// Segments after UNZ.
    after_end: u64,
    /// Messages seen outside any group.
    loose_messages: u64,
    /// The message references (UNH 0062) seen so far, each with the
    /// position of its UNH: a reference must be unique in the interchange
    /// (at most [`MAX_REFERENCES_CHECKED`] are remembered).
    /// Message references seen (see [`reference_key`]) → UNH position.
    message_refs: rustc_hash::FxHashMap<u128, u32>,
    /// UNG 0048 of the groups so far, with the UNG's position.
    group_refs: rustc_hash::FxHashMap<String, u32>,
    last_position: u32,
    interchange_ref: Option<String>,
    /// Directories for structure validation; `None`: syntax only.
    directories: Option<Arc<Directories>>,
    /// The open message's validator, when it is being validated.
    validator: Option<MessageValidator>,
    /// The last finished validator and the UNH S009 it was made for
    /// (type, version, release, agency): reused, reset, by the next message
    /// of the same kind instead of looking its table up again.
    spare: Option<([String; 5], MessageValidator)>,
    /// The S009 of the open message's validator.
    validator_key: [String; 5],
    /// What the validator has left to do with the segment the lexer
    /// returns next, when it has been fed already: [`Unsplit::Done`] when
    /// only its findings are left to report.
    pending: Option<Unsplit>,
    /// The text buffer the next message starts with (the last one's,
    /// emptied, when messages are not kept).
    spare_text: MessageText,
    /// Six-digit UNB/UNG dates in syntax 4 (E0040), held until the end:
    /// where the sink stood when each was found, and the issue. They are
    /// warnings when every message turns out a passenger list (see
    /// [`PASSENGER_LIST_DATES`]), errors otherwise.
    short_dates: Vec<(usize, Issue)>,
    /// Whether every message so far is a PAXLST (`None` before the first).
    passenger_lists_only: Option<bool>,
}

/// Why a six-digit date of preparation is accepted in a syntax 4
/// interchange of passenger lists: the API guides (WCO/IATA/ICAO, and the
/// US CBP APIS guide that the corpus's CBP sample follows) date UNB and UNG
/// as YYMMDD with `UNOA:4`, and every real API interchange does.
const PASSENGER_LIST_DATES: &str = "accepted as YYMMDD (20YY) because every message of the \
     interchange is a PAXLST: the API guides (WCO/IATA/ICAO, US CBP APIS) date UNB and UNG \
     this way in syntax 4";

/// A message reference as a fixed-size key, so that remembering one costs
/// the same whatever its length: up to 15 bytes (0062 is an..14) the bytes
/// themselves with their length, exact; a longer one (invalid anyway) a
/// 64-bit hash of it, marked apart.
fn reference_key(reference: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let bytes = reference.as_bytes();
    if let Ok(length) = u8::try_from(bytes.len())
        && length <= 15
    {
        let mut key = [0u8; 16];
        if let Some(first) = key.first_mut() {
            *first = length;
        }
        for (slot, byte) in key.iter_mut().skip(1).zip(bytes) {
            *slot = *byte;
        }
        return u128::from_le_bytes(key);
    }
    let mut hasher = rustc_hash::FxHasher::default();
    bytes.hash(&mut hasher);
    0xFF | (u128::from(hasher.finish()) << 64)
}

/// How many message references an interchange's parse remembers to find a
/// reused one (memory stays bounded; a longer interchange is checked over
/// its first messages).
const MAX_REFERENCES_CHECKED: usize = 1 << 20;

impl<R: Read> Parser<R> {
    pub fn new(reader: R, options: ParseOptions) -> Self {
        Parser {
            lexer: Lexer::new(reader, options.limits),
            options,
            sink: IssueSink::new(options.limits.max_issues),
            state: State::Start,
            tree: Interchange::default(),
            charset: Charset::LevelA,
            group: None,
            group_messages: 0,
            message: None,
            message_segments: 0,
            after_end: 0,
            loose_messages: 0,
            message_refs: rustc_hash::FxHashMap::default(),
            group_refs: rustc_hash::FxHashMap::default(),
            last_position: 0,
            interchange_ref: None,
            directories: None,
            validator: None,
            spare: None,
            validator_key: Default::default(),
            pending: None,
            spare_text: MessageText::default(),
            short_dates: Vec::new(),
            passenger_lists_only: None,
        }
    }

    /// Validates every message's structure against its release in
    /// `directories` (segment table, segments, elements, code lists), in
    /// addition to the syntax. Messages whose release is not available are
    /// reported (SCH001) and never pass as valid.
    pub fn with_directories(mut self, directories: Arc<Directories>) -> Self {
        self.directories = Some(directories);
        self
    }

    /// Parses to the end. `on_message` sees each complete message (with its
    /// segments) and may add issues, e.g. from structure validation.
    pub fn run<F>(mut self, mut on_message: F) -> io::Result<Parsed>
    where
        F: FnMut(&Message, &mut IssueSink),
    {
        // Data segments are split only when someone reads them; when only
        // the validator does, it walks their bytes itself and has the lexer
        // split just the segments it cannot prove clean.
        let text_mode = self.options.message_text;
        self.lexer.split_data_segments(
            self.options.keeps_segments() || (text_mode && self.directories.is_none()),
        );
        self.lexer
            .defer_data_segments(!self.options.keeps_segments() && self.directories.is_some());
        let seps = self.lexer.start()?;
        self.tree.separators = seps;
        if let Some(una) = self.lexer.una() {
            self.tree.una = Some(
                una.get(3..)
                    .unwrap_or(&[])
                    .iter()
                    .map(|&b| b as char)
                    .collect(),
            );
        }
        self.flush_lexer_problems(None);
        let keep_segments = self.options.keeps_segments();
        // Someone reads the data segments' values.
        let reads_data = keep_segments || text_mode;
        loop {
            // Inside a message, in check mode, runs of plainly valid data
            // segments are only counted (the lexer proves them clean 64
            // bytes at a time); everything else goes segment by segment.
            if !reads_data
                && self.directories.is_none()
                && self.message.is_some()
                && self.state == State::Interchange
            {
                let skipped = self.lexer.skip_clean_data()?;
                if skipped > 0 {
                    self.tree.counts.segments += u64::from(skipped);
                    self.message_segments = self.message_segments.saturating_add(skipped);
                    self.last_position = self.lexer.position();
                }
            }
            // When validating in check mode, the data segments ahead that
            // take their place in the table, are plainly valid and leave no
            // finding are checked straight from the lexer's window, and only
            // counted. The segment that stops the run has been fed; what is
            // left to do with it waits for `next_segment` to return it.
            if !keep_segments
                && self.pending.is_none()
                && self.message.is_some()
                && self.state == State::Interchange
                && let Some(validator) = self.validator.as_mut()
            {
                let mut stopped = None;
                let message = &mut self.message;
                let accepted = self.lexer.accept_data(|tag, values| {
                    let Some(text) = message.as_mut().filter(|_| text_mode).map(|m| &mut m.text)
                    else {
                        let left = validator.unsplit_values(tag, values);
                        if left == Unsplit::Done && !validator.has_findings() {
                            return true;
                        }
                        // Seen again when `next_segment` returns it.
                        stopped = Some(left);
                        return false;
                    };
                    // The validator's walk of the values fills the
                    // message's text as it checks them.
                    let mark = text.mark();
                    let mut recorder = text.recorder();
                    let left = validator.unsplit_values_into(tag, values.clone(), &mut recorder);
                    let recorded = recorder.complete();
                    if left == Unsplit::Done && !validator.has_findings() {
                        if recorded {
                            return true;
                        }
                        // Not walked by the validator (it has no place in
                        // the table): a walk of its own.
                        text.rollback(mark);
                        if text.push_values(tag, values) {
                            return true;
                        }
                    }
                    // Seen again when `next_segment` returns it (split, it
                    // goes to the text then).
                    text.rollback(mark);
                    stopped = Some(left);
                    false
                })?;
                self.pending = stopped;
                if accepted > 0 {
                    self.tree.counts.segments += u64::from(accepted);
                    self.message_segments = self.message_segments.saturating_add(accepted);
                    self.last_position = self.lexer.position();
                }
            }
            let next = self.lexer.next_segment()?;
            match next {
                Next::End => {
                    // What the lexer found after the last segment (padding
                    // at the end, or too much of it).
                    self.flush_lexer_problems(None);
                    break;
                }
                Next::Oversized { position, .. } => {
                    self.last_position = position;
                    self.tree.counts.segments += 1;
                    if self.message.is_some() {
                        self.message_segments += 1;
                    }
                    let problems = self.lexer.take_problems();
                    self.report_problems(problems, position, None);
                }
                Next::Segment(raw) => {
                    let position = raw.position;
                    // Most segments: a data segment of an open message,
                    // lexed without a problem; only its table checks run.
                    if let &[a, b, c] = raw.tag()
                        && !keep_segments
                        && self.message.is_some()
                        && self.state == State::Interchange
                        && is_valid_tag(raw.tag())
                        && [a, b] != *b"UN"
                        && !raw.problems
                    {
                        let findings = match self.validator.as_mut() {
                            Some(validator) if !raw.is_split() => {
                                // The values go to the message's text
                                // first; one the walk cannot take is split
                                // (the validator's part waits in `pending`).
                                let walked = walk_into_text(
                                    &mut self.message,
                                    text_mode,
                                    raw.tag(),
                                    raw.values(),
                                );
                                let Ok(mark) = walked else {
                                    self.lexer.again_split();
                                    continue;
                                };
                                let left = match self.pending.take() {
                                    Some(left) => left,
                                    None => validator.unsplit_segment(&raw),
                                };
                                if left != Unsplit::Done {
                                    // The rest needs the segment split.
                                    take_back_text(&mut self.message, mark);
                                    self.pending = Some(left);
                                    self.lexer.again_split();
                                    continue;
                                }
                                validator.take_findings()
                            }
                            Some(validator) => feed_split(validator, self.pending.take(), &raw),
                            None if !raw.is_split() => {
                                self.lexer.again_split();
                                continue;
                            }
                            None => Vec::new(),
                        };
                        if text_mode
                            && raw.is_split()
                            && let Some(m) = self.message.as_mut()
                        {
                            m.text.push_raw(&raw, raw.charset);
                        }
                        // A valid tag: three upper-case letters or digits.
                        let tag = TagText::Short([a, b, c]);
                        self.last_position = position;
                        self.tree.counts.segments += 1;
                        self.message_segments = self.message_segments.saturating_add(1);
                        if !findings.is_empty() {
                            let in_message = self.message_segments;
                            self.report_findings(findings, position, Some(&tag), Some(in_message));
                        }
                        continue;
                    }
                    if !raw.is_split() {
                        // Deferred, and not a plain data segment of an
                        // open message: lexed again, split and checked.
                        self.lexer.again_split();
                        continue;
                    }
                    let mut findings = Vec::new();
                    if let Some(validator) = self.validator.as_mut()
                        && self.message.is_some()
                        && self.state == State::Interchange
                        && !matches!(raw.tag(), b"UNB" | b"UNG" | b"UNH" | b"UNE" | b"UNZ")
                    {
                        findings = feed_split(validator, self.pending.take(), &raw);
                    }
                    // The envelope's own segments, against ISO 9735.
                    let mut envelope_findings = Vec::new();
                    // A UNB or UNG: whether its date has six digits, and
                    // the syntax version it was checked by.
                    let mut short_date = None;
                    if self.directories.is_some()
                        && self.state != State::Rejected
                        && matches!(raw.tag(), b"UNB" | b"UNG" | b"UNE" | b"UNZ")
                    {
                        let version = if raw.tag() == b"UNB" {
                            match raw
                                .value_bytes(0, 0, 1)
                                .and_then(|v| v.first().copied())
                                .filter(u8::is_ascii_digit)
                                .map_or(4, |d| d - b'0')
                            {
                                // A version not supported (E0002) is read by
                                // the rules its date of preparation fits
                                // (YYMMDD: 1 to 3, CCYYMMDD: 4), so that the
                                // one mistake is reported once.
                                v @ 1..=4 => v,
                                _ if raw.value_bytes(3, 0, 0).is_some_and(|d| d.len() == 6) => 3,
                                _ => 4,
                            }
                        } else {
                            self.tree.syntax_version.parse().unwrap_or(4)
                        };
                        let decimal = char::from(self.tree.separators.decimal);
                        let mut checker = MessageValidator::envelope(version, decimal);
                        checker.envelope_segment(&raw);
                        envelope_findings = checker.take_findings();
                        if matches!(raw.tag(), b"UNB" | b"UNG") {
                            let six_digits = raw
                                .value_bytes(3, 0, 0)
                                .is_some_and(|d| d.len() == 6 && d.iter().all(u8::is_ascii_digit));
                            short_date = Some((six_digits, version));
                        }
                    }
                    self.last_position = position;
                    self.tree.counts.segments += 1;
                    let tag = TagText::of(raw.tag());
                    // The segment borrows the lexer: decode what is needed
                    // before anything else touches it. The envelope's
                    // segments are always decoded (the parser reads them);
                    // others only when someone reads them.
                    let keep = reads_data
                        || matches!(
                            raw.tag(),
                            b"UNB" | b"UNG" | b"UNH" | b"UNT" | b"UNE" | b"UNZ"
                        );
                    let step = Step::from_raw(&raw, raw.charset, keep);
                    let problems = self.lexer.take_problems();
                    if !findings.is_empty() {
                        // Counted as a message segment just after this.
                        let in_message = self.message_segments.saturating_add(1);
                        self.report_findings(findings, position, Some(&tag), Some(in_message));
                    }
                    let tag_text = if envelope_findings.is_empty() {
                        String::new()
                    } else {
                        tag.to_string()
                    };
                    self.segment(step, tag, position, problems, &mut on_message);
                    // The envelope checks already report missing parts.
                    let reported = |f: &Finding, issues: &[Issue]| {
                        f.code == Code::Missing
                            && issues.iter().rev().take(32).any(|i| {
                                i.code == Code::Missing
                                    && i.location.segment == Some(position)
                                    && i.location.element == f.element
                            })
                    };
                    if !envelope_findings.is_empty() {
                        envelope_findings.retain(|f| !reported(f, &self.sink.issues));
                    }
                    if let Some((six_digits, version)) = short_date {
                        self.hold_short_dates(
                            &mut envelope_findings,
                            six_digits,
                            version,
                            position,
                            &tag_text,
                        );
                    }
                    if !envelope_findings.is_empty() {
                        self.report_findings(envelope_findings, position, Some(&tag_text), None);
                    }
                }
            }
        }
        self.finish(&mut on_message);
        self.tree.counts.bytes = self.lexer.offset();
        Ok(Parsed {
            interchange: self.tree,
            issues: self.sink.issues,
            dropped_issues: self.sink.dropped,
            error_count: self.sink.errors,
        })
    }

    fn report_findings(
        &mut self,
        findings: Vec<Finding>,
        position: u32,
        tag: Option<&str>,
        in_message: Option<u32>,
    ) {
        for f in findings {
            let issue = self.finding_issue(f, position, tag, in_message);
            self.sink.push(issue);
        }
    }

    fn finding_issue(
        &self,
        f: Finding,
        position: u32,
        tag: Option<&str>,
        in_message: Option<u32>,
    ) -> Issue {
        let mut location = self.loc(position, tag.unwrap_or(""));
        if tag.is_none() {
            location.tag = None;
        }
        location.message_segment = in_message;
        location.group_path = (!f.group_path.is_empty()).then_some(f.group_path);
        location.element = f.element;
        location.repetition = f.repetition;
        location.component = f.component;
        location.missing = f.missing;
        if f.warning {
            Issue::warning(f.code, location, f.message)
        } else {
            Issue::error(f.code, location, f.message)
        }
    }

    /// Holds back the E0040 of a six-digit UNB/UNG date in syntax 4 (see
    /// [`PASSENGER_LIST_DATES`]); the other findings are left.
    fn hold_short_dates(
        &mut self,
        findings: &mut Vec<Finding>,
        six_digits: bool,
        version: u8,
        position: u32,
        tag: &str,
    ) {
        // A header after UNZ starts nothing the messages could vouch for.
        if version != 4 || !six_digits || self.state == State::Done {
            return;
        }
        // Each held one where it would have stood among those reported.
        let mut at = self.sink.issues.len();
        for f in std::mem::take(findings) {
            if f.code == Code::TooShort && f.element == Some(4) && f.component == Some(1) {
                let issue = self.finding_issue(f, position, Some(tag), None);
                self.short_dates.push((at, issue));
            } else {
                findings.push(f);
                at += 1;
            }
        }
    }

    /// The held six-digit dates, at the places they were found: warnings
    /// when the interchange's messages are all passenger lists.
    fn release_short_dates(&mut self) {
        let accepted = self.passenger_lists_only == Some(true);
        for (n, (at, mut issue)) in std::mem::take(&mut self.short_dates)
            .into_iter()
            .enumerate()
        {
            if accepted {
                issue.severity = Severity::Warning;
                issue.message = format!("{}; {PASSENGER_LIST_DATES}", issue.message);
            }
            self.sink.insert(at + n, issue);
        }
    }

    /// Looks up the message's release and type and starts its validator
    /// with the UNH segment.
    fn start_validation(&mut self, unh: &Segment, position: u32) {
        self.validator = self.validator_for(unh, position);
        let findings = match self.validator.as_mut() {
            Some(validator) => {
                validator.segment(unh);
                validator.take_findings()
            }
            // No segment table applies (another agency's message, a type
            // or release not in the directories, a service message the
            // hub does not read): the UNH is still ISO 9735's, checked
            // element by element as the envelope's segments are. Missing
            // parts are the UNH checks' own (`require`).
            None if self.directories.is_some() => {
                let syntax = self.tree.syntax_version.parse().unwrap_or(4);
                let decimal = char::from(self.tree.separators.decimal);
                let mut checker = MessageValidator::envelope(syntax, decimal);
                checker.envelope_segment(unh);
                let mut findings = checker.take_findings();
                findings.retain(|f| f.code != Code::Missing);
                findings
            }
            None => return,
        };
        if findings.is_empty() {
            return;
        }
        self.report_findings(findings, position, Some("UNH"), Some(1));
    }

    /// The validator for the message UNH opens, or `None` (reported when it
    /// is not for lack of directories or of the UNH's own parts).
    fn validator_for(&mut self, unh: &Segment, position: u32) -> Option<MessageValidator> {
        self.directories.as_ref()?;
        // Type, version, release, agency and the association assigned
        // code, which may name an implementation guide
        // (`crate::schema::PROFILES`).
        let key = [
            comp(unh, 1, 0),
            comp(unh, 1, 1),
            comp(unh, 1, 2),
            comp(unh, 1, 3),
            comp(unh, 1, 4),
        ];
        // The same kind of message as the last one: its validator again.
        if let Some((last, mut validator)) = self.spare.take()
            && last == key
        {
            validator.reset();
            self.validator_key = key;
            return Some(validator);
        }
        let validator = self.new_validator(&key, position);
        if validator.is_some() {
            self.validator_key = key;
        }
        validator
    }

    /// A validator for a message of S009 `key`, found in the directories.
    fn new_validator(&mut self, key: &[String; 5], position: u32) -> Option<MessageValidator> {
        let directories = self.directories.clone()?;
        let [kind, version, release, agency, association] = key;
        if kind.is_empty() || version.is_empty() || release.is_empty() {
            // Already reported as missing by the UNH checks.
            return None;
        }
        let mut loc = self.loc(position, "UNH");
        loc.message_segment = Some(1);
        loc.element = Some(2);
        let syntax: u8 = self.tree.syntax_version.parse().unwrap_or(4);
        let decimal = char::from(self.tree.separators.decimal);
        if kind == "CONTRL" {
            static CONTRL: std::sync::OnceLock<Arc<crate::schema::MessageDef>> =
                std::sync::OnceLock::new();
            let def = CONTRL.get_or_init(|| Arc::new(crate::schema::service::contrl()));
            // The service code list is syntax version 3's (UNSL of the
            // newest directory carrying one), found once per process and
            // directory set.
            let service_codes = (syntax < 4)
                .then(|| directories.service_code_release())
                .flatten();
            return Some(MessageValidator::service_message(
                def,
                syntax,
                decimal,
                service_codes,
            ));
        }
        if matches!(kind.as_str(), "AUTACK" | "KEYMAN") {
            loc.component = Some(1);
            self.sink.push(Issue::warning(
                Code::ServiceMessage,
                loc,
                format!("{kind} is a service message defined by ISO 9735, not by a UN/EDIFACT directory; only its syntax was checked"),
            ));
            return None;
        }
        if agency != "UN" {
            loc.component = Some(4);
            self.sink.push(Issue::warning(
                Code::NotUnMessage,
                loc,
                format!("message {kind} is controlled by agency {agency:?}, not UN: no UN/EDIFACT directory applies, so only its syntax was checked"),
            ));
            return None;
        }
        let name = format!("{version}{release}").to_ascii_uppercase();
        let found = match directories.release(&name) {
            Ok(found) => found,
            Err(e) => {
                loc.component = Some(2);
                self.error(
                    Code::DirectoryUnavailable,
                    loc,
                    format!("directory {name} could not be read ({e}); message {kind} was syntax-checked only"),
                );
                return None;
            }
        };
        let Some(rel) = found else {
            let available: Vec<&str> = directories.available().collect();
            // Pointed at the release (0054) when directories of its version
            // are there (`D:99Z`), else at the version (0052).
            let version_known = available.iter().any(|a| {
                a.get(..version.len())
                    .is_some_and(|v| v.eq_ignore_ascii_case(version))
            });
            loc.component = Some(if version_known { 3 } else { 2 });
            self.error(
                Code::DirectoryUnavailable,
                loc,
                format!(
                    "message {kind} is release {version}.{release}, whose directory is not available (available: {}); it was syntax-checked only and is not valid until validated",
                    if available.is_empty() { "none".to_owned() } else { available.join(", ") }
                ),
            );
            return None;
        };
        let def = match rel.message(kind) {
            Ok(Some(def)) => def,
            Ok(None) => {
                loc.component = Some(1);
                self.error(
                    Code::UnknownMessageType,
                    loc,
                    format!("message type {kind} is not defined in directory {name}"),
                );
                return None;
            }
            Err(e) => {
                loc.component = Some(1);
                self.error(
                    Code::DirectoryUnavailable,
                    loc,
                    format!("the segment table of {kind} in {name} could not be read: {e}"),
                );
                return None;
            }
        };
        let def = match def.profiled(association) {
            Some(profiled) => Arc::new(profiled),
            None => def,
        };
        Some(MessageValidator::new(
            rel,
            directories,
            &def,
            syntax,
            decimal,
        ))
    }

    /// Ends the open message's validation (mandatory parts never seen).
    /// `terminated`: the message ended with its UNT (reported there);
    /// otherwise the findings are placed at the segment that ended it,
    /// without a tag or message position of their own.
    fn finish_validation(&mut self, position: u32, terminated: bool) {
        let Some(mut validator) = self.validator.take() else {
            return;
        };
        validator.finish();
        let findings = validator.take_findings();
        self.spare = Some((std::mem::take(&mut self.validator_key), validator));
        if terminated {
            let in_message = self.message_segments;
            self.report_findings(findings, position, Some("UNT"), Some(in_message));
        } else {
            self.report_findings(findings, position, None, None);
        }
    }

    fn loc(&self, position: u32, tag: &str) -> Location {
        Location {
            interchange: self.interchange_ref.clone(),
            group: self.group.as_ref().map(|g| g.reference.clone()),
            message: self.message.as_ref().map(|m| m.reference.clone()),
            segment: Some(position),
            message_segment: self.message.as_ref().map(|_| self.message_segments),
            tag: Some(tag.to_owned()),
            ..Location::default()
        }
    }

    fn error(&mut self, code: Code, location: Location, message: impl Into<String>) {
        self.sink.push(Issue::error(code, location, message));
    }

    fn flush_lexer_problems(&mut self, position: Option<u32>) {
        let problems = self.lexer.take_problems();
        for p in problems {
            let mut location = Location::at_offset(p.offset);
            location.segment = position;
            location.tag = p.tag.map(str::to_owned);
            self.sink.push(problem_issue(p, location));
        }
    }

    fn report_problems(&mut self, problems: Vec<LexProblem>, position: u32, tag: Option<&str>) {
        if problems.is_empty() {
            return;
        }
        for p in problems {
            let mut location = self.loc(position, tag.unwrap_or(""));
            if tag.is_none() {
                location.tag = None;
            }
            location.offset = Some(p.offset);
            location.element = p.element;
            location.repetition = p.repetition.filter(|_| self.tree.syntax_version == "4");
            location.component = p.component;
            self.sink.push(problem_issue(p, location));
        }
    }

    fn segment<F>(
        &mut self,
        step: Step,
        tag: TagText,
        position: u32,
        problems: Vec<LexProblem>,
        on_message: &mut F,
    ) where
        F: FnMut(&Message, &mut IssueSink),
    {
        if self.state == State::Done {
            self.after_end += 1;
            if self.after_end == 1 {
                let loc = self.loc(position, &tag);
                self.error(
                    Code::InvalidOccurrence,
                    loc,
                    "data after the interchange trailer UNZ",
                );
            }
            self.report_problems(problems, position, Some(&tag));
            return;
        }
        let valid_tag = is_valid_tag(tag.bytes());
        if self.state == State::Start && !valid_tag {
            // The very first segment has no tag: this is not EDIFACT at all.
            let mut loc = self.loc(position, &tag);
            loc.offset = Some(0);
            let what = self.wide_input().unwrap_or_else(|| {
                if tag.starts_with("UNA") {
                    // (A UNA after the first is read as a segment, whose
                    // tag then holds the separators it advises.)
                    "a second UNA (service string advice) follows the first: only one may \
                     open the interchange, before UNB"
                        .into()
                } else {
                    "input does not start with UNA, UNB or a segment tag: not a UN/EDIFACT \
                     interchange"
                        .into()
                }
            });
            self.error(Code::NotEdifact, loc, what);
            self.state = State::Rejected;
            return;
        }
        if self.state == State::Rejected {
            return;
        }
        match tag.bytes() {
            b"UNB" => self.unb(step, position),
            b"UNG" => self.ung(step, position, on_message),
            b"UNE" => self.une(step, position, on_message),
            b"UNH" => self.unh(step, position, on_message),
            b"UNT" => {
                if self.message.is_some() {
                    self.message_segments += 1;
                }
                self.unt(step, position, on_message)
            }
            b"UNZ" => self.unz(step, position, on_message),
            _ => {
                if self.state == State::Start {
                    self.missing_unb(position);
                }
                if self.message.is_some() {
                    self.message_segments += 1;
                    if let Some(seg) = step.segment {
                        self.add_to_message(seg);
                    }
                } else {
                    let loc = self.loc(position, &tag);
                    self.error(
                        Code::InvalidOccurrence,
                        loc,
                        format!("segment {tag} outside a message (only UNG, UNE, UNH and UNZ may stand here)"),
                    );
                }
            }
        }
        if !valid_tag {
            let loc = self.loc(position, &tag);
            self.error(
                Code::InvalidTag,
                loc,
                format!(
                    "segment tag {:?} is not three upper-case letters or digits",
                    &*tag
                ),
            );
        }
        if !problems.is_empty() {
            self.report_problems(problems, position, Some(&tag));
        }
    }

    /// A message reference (UNH 0062) used by an earlier message of the
    /// interchange is an error (0085 code 26): the sender's answers, and the
    /// hub's records of the messages, are told apart by it.
    fn check_unique_reference(&mut self, reference: &str, position: u32) {
        if reference.is_empty() {
            return;
        }
        let key = reference_key(reference);
        match self.message_refs.get(&key) {
            Some(&first) => {
                let mut loc = self.loc(position, "UNH");
                loc.element = Some(1);
                let message = format!(
                    "message reference {reference:?} is used by an earlier message of this \
                     interchange (UNH at segment {first}); each message needs its own"
                );
                self.error(Code::Duplicate, loc, message);
            }
            None if self.message_refs.len() < MAX_REFERENCES_CHECKED => {
                self.message_refs.insert(key, position);
            }
            None => {}
        }
    }

    fn missing_unb(&mut self, position: u32) {
        self.state = State::Interchange;
        let loc = self.loc(position, "UNB");
        self.error(Code::Missing, loc, "interchange header UNB missing");
    }

    fn unb(&mut self, step: Step, position: u32) {
        if self.state != State::Start {
            let loc = self.loc(position, "UNB");
            self.error(
                Code::InvalidOccurrence,
                loc,
                "second interchange header UNB inside the interchange",
            );
            return;
        }
        self.state = State::Interchange;
        let Some(seg) = step.segment else { return };
        let t = &mut self.tree;
        t.syntax_identifier = comp(&seg, 0, 0);
        t.syntax_version = comp(&seg, 0, 1);
        t.sender = Party {
            id: comp(&seg, 1, 0),
            qualifier: comp(&seg, 1, 1),
            internal_id: comp(&seg, 1, 2),
        };
        t.recipient = Party {
            id: comp(&seg, 2, 0),
            qualifier: comp(&seg, 2, 1),
            internal_id: comp(&seg, 2, 2),
        };
        t.date = comp(&seg, 3, 0);
        t.time = comp(&seg, 3, 1);
        t.control_reference = comp(&seg, 4, 0);
        t.application_reference = comp(&seg, 6, 0);
        t.acknowledgement_request = comp(&seg, 8, 0);
        t.test_indicator = comp(&seg, 10, 0);
        if !t.control_reference.is_empty() {
            self.interchange_ref = Some(t.control_reference.clone());
        }
        let required: [(usize, usize, &str); 7] = [
            (0, 0, "syntax identifier (S001/0001)"),
            (0, 1, "syntax version number (S001/0002)"),
            (1, 0, "interchange sender identification (S002/0004)"),
            (2, 0, "interchange recipient identification (S003/0010)"),
            (3, 0, "date of preparation (S004/0017)"),
            (3, 1, "time of preparation (S004/0019)"),
            (4, 0, "interchange control reference (0020)"),
        ];
        self.require(&seg, position, "UNB", &required, &[0, 1, 2, 3]);
        let id = self.tree.syntax_identifier.clone();
        let version = self.tree.syntax_version.clone();
        if !id.is_empty() && Charset::from_syntax_identifier(&id).is_none() {
            let mut loc = self.loc(position, "UNB");
            loc.element = Some(1);
            loc.component = Some(1);
            self.error(
                Code::SyntaxNotSupported,
                loc,
                format!("syntax identifier {id:?} is not supported (UNOA..UNOL, UNOW, UNOY, IATA, IATB are)"),
            );
        }
        if !version.is_empty() && !matches!(version.as_str(), "1" | "2" | "3" | "4") {
            let mut loc = self.loc(position, "UNB");
            loc.element = Some(1);
            loc.component = Some(2);
            self.error(
                Code::SyntaxNotSupported,
                loc,
                format!("syntax version {version:?} is not 1, 2, 3 or 4"),
            );
        }
        let (date, time) = (self.tree.date.clone(), self.tree.time.clone());
        self.check_preparation(position, "UNB", &date, &time);
        self.check_unb_codes(&seg, position, version == "4");
        self.charset = self.lexer.charset();
        self.tree.separators = self.lexer.separators();
        self.tree.header = Some(seg);
    }

    /// UNB's coded service elements hold codes of their lists (ISO 9735
    /// service code lists of the syntax version, E0012): S005 0025
    /// reference qualifier, 0029 processing priority, 0031 acknowledgement
    /// request, 0035 test indicator. An unknown test indicator is an error:
    /// whether the interchange is live cannot be told. The others change
    /// nothing in how an interchange is processed, and senders in practice
    /// write codes outside the lists there (0031 `0` for "no
    /// acknowledgement", a priority `I`): a warning.
    fn check_unb_codes(&mut self, seg: &Segment, position: u32, v4: bool) {
        let checks: [(usize, usize, &str, &[&str]); 4] = [
            (
                5,
                1,
                "recipient reference qualifier (S005/0025)",
                &["AA", "BB"],
            ),
            (7, 0, "processing priority code (0029)", &["A"]),
            (
                8,
                0,
                "acknowledgement request (0031)",
                if v4 { &["1", "2"] } else { &["1"] },
            ),
            (
                10,
                0,
                "test indicator (0035)",
                if v4 {
                    &["1", "2", "3", "4", "5"]
                } else {
                    &["1", "5"]
                },
            ),
        ];
        // S001 0001 before syntax version 4: the list of versions 1 to 3
        // (0001 of UNSL D.97B) names UNOA to UNOF only; the later identifiers
        // (UNOG..UNOL, UNOW, UNOY) came with version 4's. Senders use them
        // with version 3 all the same (a UNOL:3 from practice is among the
        // corpus samples), and the repertoire they name is clear: a
        // warning, the interchange read in it. (IATA's own identifiers are
        // taken as their levels.)
        let id = comp(seg, 0, 0);
        let early = [
            "UNOA", "UNOB", "UNOC", "UNOD", "UNOE", "UNOF", "IATA", "IATB",
        ];
        if !v4
            && !id.is_empty()
            && !early.contains(&id.as_str())
            && crate::edifact::Charset::from_syntax_identifier(&id).is_some()
        {
            let mut loc = self.loc(position, "UNB");
            loc.element = Some(1);
            loc.component = Some(1);
            let message = format!(
                "syntax identifier {id:?} is of syntax version 4's list; that of versions 1 to 3 \
                 names UNOA to UNOF only (read as {id} all the same)"
            );
            self.sink
                .push(Issue::warning(Code::InvalidValue, loc, message));
        }
        for (element, component, what, codes) in checks {
            let value = comp(seg, element, component);
            if value.is_empty() || codes.contains(&value.as_str()) {
                continue;
            }
            let mut loc = self.loc(position, "UNB");
            loc.element = Some(element as u16 + 1);
            loc.component = (element == 5).then_some(component as u16 + 1);
            let message = format!(
                "{what} {value:?} is not a code of its list ({})",
                codes.join(", ")
            );
            if element == 10 {
                self.error(Code::InvalidValue, loc, message);
            } else {
                self.sink
                    .push(Issue::warning(Code::InvalidValue, loc, message));
            }
        }
    }

    /// UNB (and UNG) S004: a date and time that exist (E0012): 0017
    /// YYMMDD (CCYYMMDD in syntax 4), 0019 HHMM. Values of the wrong shape
    /// are the format checks' to report.
    fn check_preparation(&mut self, position: u32, tag: &str, date: &str, time: &str) {
        let digits = |v: &str, n: usize| v.len() == n && v.bytes().all(|b| b.is_ascii_digit());
        let number = |v: &str, at: std::ops::Range<usize>| -> u32 {
            v.get(at).and_then(|d| d.parse().ok()).unwrap_or(0)
        };
        let (year, month, day) = if digits(date, 6) {
            (
                2000 + number(date, 0..2),
                number(date, 2..4),
                number(date, 4..6),
            )
        } else if digits(date, 8) {
            (number(date, 0..4), number(date, 4..6), number(date, 6..8))
        } else {
            (0, 1, 1)
        };
        if !crate::model::is_day(year, month, day) {
            let mut loc = self.loc(position, tag);
            loc.element = Some(4);
            loc.component = Some(1);
            self.error(
                Code::InvalidValue,
                loc,
                format!("date of preparation {date:?} (S004/0017) is not a date"),
            );
        }
        if digits(time, 4) && (number(time, 0..2) > 23 || number(time, 2..4) > 59) {
            let mut loc = self.loc(position, tag);
            loc.element = Some(4);
            loc.component = Some(2);
            self.error(
                Code::InvalidValue,
                loc,
                format!("time of preparation {time:?} (S004/0019) is not a time of day (HHMM)"),
            );
        }
    }

    fn close_message<F>(&mut self, position: u32, on_message: &mut F, terminated: bool)
    where
        F: FnMut(&Message, &mut IssueSink),
    {
        if self.message.is_some() {
            self.finish_validation(position, terminated);
        }
        let Some(mut message) = self.message.take() else {
            return;
        };
        if !terminated {
            message.unterminated = true;
            let loc = Location {
                interchange: self.interchange_ref.clone(),
                group: message.group.clone(),
                message: Some(message.reference.clone()),
                segment: Some(position),
                tag: Some("UNT".into()),
                ..Location::default()
            };
            self.error(
                Code::Missing,
                loc,
                format!("message {} has no trailer UNT", message.reference),
            );
        }
        on_message(&message, &mut self.sink);
        self.tree.counts.messages += 1;
        if !self.options.keep_messages {
            // Its text buffer serves the next message, unless it grew
            // unusually large.
            if message.text.capacity_bytes() <= 1 << 20 {
                self.spare_text = message.text;
                self.spare_text.clear();
            }
            return;
        }
        match self.group.as_mut() {
            Some(group) => group.messages.push(message),
            None => self.tree.messages.push(message),
        }
    }

    fn close_group<F>(&mut self, position: u32, on_message: &mut F, trailer: Option<Segment>)
    where
        F: FnMut(&Message, &mut IssueSink),
    {
        self.close_message(position, on_message, false);
        let Some(mut group) = self.group.take() else {
            return;
        };
        if trailer.is_none() {
            let loc = Location {
                interchange: self.interchange_ref.clone(),
                group: Some(group.reference.clone()),
                segment: Some(position),
                tag: Some("UNE".into()),
                ..Location::default()
            };
            self.error(
                Code::Missing,
                loc,
                format!("group {} has no trailer UNE", group.reference),
            );
        }
        if self.group_messages == 0 {
            let loc = Location {
                interchange: self.interchange_ref.clone(),
                group: Some(group.reference.clone()),
                segment: Some(group.position),
                tag: Some("UNG".into()),
                ..Location::default()
            };
            self.error(
                Code::LowerLevelEmpty,
                loc,
                format!("group {} contains no message", group.reference),
            );
        }
        group.trailer = trailer;
        self.tree.counts.groups += 1;
        if self.options.keep_messages || self.tree.groups.len() < 10_000 {
            self.tree.groups.push(group);
        }
    }

    fn ung<F>(&mut self, step: Step, position: u32, on_message: &mut F)
    where
        F: FnMut(&Message, &mut IssueSink),
    {
        if self.state == State::Start {
            self.missing_unb(position);
        }
        if self.message.is_some() {
            self.close_message(position, on_message, false);
        }
        if self.group.is_some() {
            self.close_group(position, on_message, None);
        }
        if self.loose_messages > 0 {
            let loc = self.loc(position, "UNG");
            self.error(
                Code::GroupsAndMessagesMixed,
                loc,
                "functional group after messages outside groups",
            );
        }
        let seg = step
            .segment
            .unwrap_or_else(|| Segment::new("UNG", Vec::new()));
        let reference = comp(&seg, 4, 0);
        let message_type = comp(&seg, 0, 0);
        self.group_messages = 0;
        let (date, time) = (comp(&seg, 3, 0), comp(&seg, 3, 1));
        self.group = Some(Group {
            position,
            reference: reference.clone(),
            message_type,
            header: seg,
            messages: Vec::new(),
            trailer: None,
        });
        // Within the group, so that the CONTRL reports it on its UCF.
        self.check_preparation(position, "UNG", &date, &time);
        if reference.is_empty() {
            let mut loc = self.loc(position, "UNG");
            loc.element = Some(5);
            self.error(
                Code::Missing,
                loc,
                "UNG group reference number (0048) missing",
            );
        } else if let Some(&first) = self.group_refs.get(&reference) {
            // 0048 is unique within the interchange, as 0062 is: the
            // sender's answers (UCF) are told apart by it.
            let mut loc = self.loc(position, "UNG");
            loc.element = Some(5);
            let message = format!(
                "group reference {reference:?} is used by an earlier group of this interchange \
                 (UNG at segment {first}); each group needs its own"
            );
            self.error(Code::Duplicate, loc, message);
        } else if self.group_refs.len() < MAX_REFERENCES_CHECKED {
            self.group_refs.insert(reference, position);
        }
    }

    fn une<F>(&mut self, step: Step, position: u32, on_message: &mut F)
    where
        F: FnMut(&Message, &mut IssueSink),
    {
        if self.message.is_some() {
            self.close_message(position, on_message, false);
        }
        let Some(group) = self.group.as_ref() else {
            let loc = self.loc(position, "UNE");
            self.error(
                Code::InvalidOccurrence,
                loc,
                "group trailer UNE without a group header UNG",
            );
            return;
        };
        let reference = group.reference.clone();
        let (seg, count, trailer_ref) = step.trailer("UNE");
        let received = self.group_messages;
        self.check_count(
            position,
            "UNE",
            &count,
            received,
            "messages in the group",
            1,
        );
        self.check_reference(position, "UNE", &trailer_ref, &reference, "UNG", 2);
        self.close_group(position, on_message, Some(seg));
    }

    /// Adds a decoded segment to the open message: to its text and to its
    /// segments, as the options ask.
    fn add_to_message(&mut self, seg: Segment) {
        let options = self.options;
        if let Some(m) = self.message.as_mut() {
            if options.message_text {
                m.text.push_segment(&seg);
            }
            if options.keeps_segments() {
                m.segments.push(seg);
            }
        }
    }

    fn unh<F>(&mut self, step: Step, position: u32, on_message: &mut F)
    where
        F: FnMut(&Message, &mut IssueSink),
    {
        if self.state == State::Start {
            self.missing_unb(position);
        }
        if self.message.is_some() {
            self.close_message(position, on_message, false);
        }
        let seg = step
            .segment
            .unwrap_or_else(|| Segment::new("UNH", Vec::new()));
        let message = Message {
            position,
            reference: comp(&seg, 0, 0),
            message_type: comp(&seg, 1, 0),
            version: comp(&seg, 1, 1),
            release: comp(&seg, 1, 2),
            agency: comp(&seg, 1, 3),
            association_code: comp(&seg, 1, 4),
            group: self.group.as_ref().map(|g| g.reference.clone()),
            segments: Vec::new(),
            text: std::mem::take(&mut self.spare_text),
            unterminated: false,
            decimal_mark: Some(char::from(self.tree.separators.decimal)),
        };
        if self.group.is_none() {
            self.loose_messages += 1;
            if self.tree.counts.groups > 0 {
                let loc = self.loc(position, "UNH");
                self.error(
                    Code::GroupsAndMessagesMixed,
                    loc,
                    "message outside a functional group in an interchange that uses groups",
                );
            }
        } else {
            self.group_messages += 1;
        }
        let group_type = self
            .group
            .as_ref()
            .map(|g| g.message_type.clone())
            .unwrap_or_default();
        let passenger_list = message.message_type == "PAXLST";
        self.passenger_lists_only =
            Some(self.passenger_lists_only.unwrap_or(true) && passenger_list);
        self.message = Some(message);
        self.message_segments = 1;
        let required: [(usize, usize, &str); 5] = [
            (0, 0, "message reference number (0062)"),
            (1, 0, "message type (S009/0065)"),
            (1, 1, "message version number (S009/0052)"),
            (1, 2, "message release number (S009/0054)"),
            (1, 3, "controlling agency (S009/0051)"),
        ];
        self.require(&seg, position, "UNH", &required, &[1]);
        self.check_unique_reference(&comp(&seg, 0, 0), position);
        self.start_validation(&seg, position);
        let message_type = comp(&seg, 1, 0);
        if !group_type.is_empty() && !message_type.is_empty() && group_type != message_type {
            let mut loc = self.loc(position, "UNH");
            loc.element = Some(2);
            loc.component = Some(1);
            self.error(
                Code::MixedMessageTypesInGroup,
                loc,
                format!("message type {message_type} in a group of {group_type} messages"),
            );
        }
        self.add_to_message(seg);
    }

    fn unt<F>(&mut self, step: Step, position: u32, on_message: &mut F)
    where
        F: FnMut(&Message, &mut IssueSink),
    {
        let Some(message) = self.message.as_ref() else {
            let loc = self.loc(position, "UNT");
            self.error(
                Code::InvalidOccurrence,
                loc,
                "message trailer UNT without a message header UNH",
            );
            return;
        };
        let reference = message.reference.clone();
        let (seg, count, trailer_ref) = step.trailer("UNT");
        let received = u64::from(self.message_segments);
        self.check_count(
            position,
            "UNT",
            &count,
            received,
            "segments in the message (UNH to UNT)",
            1,
        );
        self.check_reference(position, "UNT", &trailer_ref, &reference, "UNH", 2);
        self.add_to_message(seg);
        self.close_message(position, on_message, true);
    }

    fn unz<F>(&mut self, step: Step, position: u32, on_message: &mut F)
    where
        F: FnMut(&Message, &mut IssueSink),
    {
        if self.state == State::Start {
            self.missing_unb(position);
        }
        if self.message.is_some() {
            self.close_message(position, on_message, false);
        }
        if self.group.is_some() {
            self.close_group(position, on_message, None);
        }
        let (seg, count, trailer_ref) = step.trailer("UNZ");
        let (received, what) = if self.tree.counts.groups > 0 {
            (
                self.tree.counts.groups,
                "functional groups in the interchange",
            )
        } else {
            (self.tree.counts.messages, "messages in the interchange")
        };
        self.check_count(position, "UNZ", &count, received, what, 1);
        let header_ref = self.tree.control_reference.clone();
        if self.tree.header.is_some() {
            self.check_reference(position, "UNZ", &trailer_ref, &header_ref, "UNB", 2);
        }
        self.tree.trailer = Some(seg);
        self.state = State::Done;
    }

    /// Reports each required (element, component) that is empty; `composites`
    /// lists the elements whose components are named in the location.
    fn require(
        &mut self,
        seg: &Segment,
        position: u32,
        tag: &str,
        required: &[(usize, usize, &str)],
        composites: &[usize],
    ) {
        for &(e, c, what) in required {
            if seg.get(e, c).is_none() {
                let mut loc = self.loc(position, tag);
                loc.element = Some(e as u16 + 1);
                loc.component = composites.contains(&e).then_some(c as u16 + 1);
                self.error(Code::Missing, loc, format!("{tag} {what} missing"));
            }
        }
    }

    fn check_count(
        &mut self,
        position: u32,
        tag: &str,
        count: &str,
        received: u64,
        what: &str,
        element: u16,
    ) {
        let mut loc = self.loc(position, tag);
        loc.element = Some(element);
        if count.is_empty() {
            self.error(Code::Missing, loc, format!("{tag} control count missing"));
            return;
        }
        // n..6 (n..10 in syntax 4): digits only; Rust's parse would take a
        // leading `+`.
        let digits = count.bytes().all(|b| b.is_ascii_digit());
        match count.parse::<u64>().ok().filter(|_| digits).ok_or(()) {
            Ok(n) if n == received => {}
            Ok(n) => self.error(
                Code::ControlCountMismatch,
                loc,
                format!("{tag} control count is {n} but {received} {what} were received"),
            ),
            Err(_) => self.error(
                Code::InvalidValue,
                loc,
                format!("{tag} control count {count:?} is not a number"),
            ),
        }
    }

    fn check_reference(
        &mut self,
        position: u32,
        tag: &str,
        trailer: &str,
        header: &str,
        header_tag: &str,
        element: u16,
    ) {
        let mut loc = self.loc(position, tag);
        loc.element = Some(element);
        if trailer.is_empty() {
            self.error(
                Code::Missing,
                loc,
                format!("{tag} control reference missing"),
            );
        } else if trailer != header {
            self.error(
                Code::ReferencesDoNotMatch,
                loc,
                format!("{tag} control reference {trailer:?} does not match {header_tag} reference {header:?}"),
            );
        }
    }

    /// Why input in a wide encoding (a UTF-16 or UTF-32 byte order mark
    /// first) is not an interchange, if it is such input.
    fn wide_input(&self) -> Option<String> {
        self.lexer.wide_encoding().map(|encoding| {
            format!(
                "input is {encoding} (it starts with a byte order mark): a UN/EDIFACT interchange is sent one byte a character in its syntax identifier's repertoire (UTF-8 for UNOW); re-save the file in that encoding"
            )
        })
    }

    fn finish<F>(&mut self, on_message: &mut F)
    where
        F: FnMut(&Message, &mut IssueSink),
    {
        self.release_short_dates();
        let end = self.last_position + 1;
        if self.state == State::Rejected {
            return;
        }
        if self.state == State::Start {
            let loc = Location {
                segment: Some(end),
                tag: Some("UNB".into()),
                offset: Some(self.lexer.offset()),
                ..Location::default()
            };
            let what = if let Some(wide) = self.wide_input() {
                wide
            } else if self.lexer.offset() == 0 && self.tree.counts.segments == 0 {
                "input is empty".into()
            } else if self.tree.counts.segments == 0 {
                "input holds no segment".into()
            } else {
                "interchange header UNB missing".into()
            };
            self.error(Code::NotEdifact, loc, what);
            return;
        }
        if self.state != State::Done {
            if self.message.is_some() {
                self.close_message(end, on_message, false);
            }
            if self.group.is_some() {
                self.close_group(end, on_message, None);
            }
            let mut loc = self.loc(end, "UNZ");
            loc.offset = Some(self.lexer.offset());
            self.error(Code::Missing, loc, "interchange trailer UNZ missing");
        }
        if self.tree.counts.messages == 0 && self.tree.counts.groups == 0 {
            let loc = Location {
                interchange: self.interchange_ref.clone(),
                segment: Some(1),
                tag: Some("UNB".into()),
                ..Location::default()
            };
            self.error(
                Code::LowerLevelEmpty,
                loc,
                "interchange contains no message",
            );
        }
        if self.after_end > 1 {
            let loc = Location {
                interchange: self.interchange_ref.clone(),
                ..Location::default()
            };
            self.sink.push(Issue::warning(
                Code::InvalidOccurrence,
                loc,
                format!("{} segments after UNZ in all", self.after_end),
            ));
        }
        if self.sink.dropped > 0 {
            let loc = Location {
                interchange: self.interchange_ref.clone(),
                ..Location::default()
            };
            let dropped = self.sink.dropped;
            self.sink.issues.push(Issue::warning(
                Code::TooManyIssues,
                loc,
                format!("{dropped} further issues were counted but not recorded"),
            ));
        }
    }
}

/// What the parser keeps of one segment.
struct Step {
    segment: Option<Segment>,
}

impl Step {
    /// A trailer segment (UNT, UNE, UNZ) with its control count and reference.
    fn trailer(self, tag: &str) -> (Segment, String, String) {
        let seg = self
            .segment
            .unwrap_or_else(|| Segment::new(tag, Vec::new()));
        let (count, reference) = (comp(&seg, 0, 0), comp(&seg, 1, 0));
        (seg, count, reference)
    }

    fn from_raw(raw: &RawSegment<'_>, charset: Charset, keep: bool) -> Step {
        Step {
            segment: keep.then(|| raw.to_segment(charset)),
        }
    }
}

fn comp(seg: &Segment, e: usize, c: usize) -> String {
    seg.get(e, c).unwrap_or("").to_owned()
}

/// A segment tag as shown in issues: kept inline when it is three ASCII
/// letters or digits (nearly always), escaped otherwise.
#[derive(Debug, Clone)]
enum TagText {
    Short([u8; 3]),
    Other(String),
}

impl TagText {
    /// The tag's bytes (no UTF-8 check needed to compare them).
    fn bytes(&self) -> &[u8] {
        match self {
            TagText::Short(bytes) => bytes,
            TagText::Other(text) => text.as_bytes(),
        }
    }

    fn of(raw: &[u8]) -> TagText {
        match raw {
            [a, b, c] if raw.iter().all(u8::is_ascii_alphanumeric) => TagText::Short([*a, *b, *c]),
            _ => TagText::Other(display_tag(raw)),
        }
    }
}

impl std::ops::Deref for TagText {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            TagText::Short(bytes) => std::str::from_utf8(bytes).unwrap_or("???"),
            TagText::Other(text) => text,
        }
    }
}

impl std::fmt::Display for TagText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// The tag as it will be shown: invalid bytes escaped, cut to 12 characters.
fn display_tag(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw.get(..12).unwrap_or(raw));
    let mut shown: String = text.escape_debug().collect();
    if raw.len() > 12 {
        shown.push('…');
    }
    shown
}

fn is_valid_tag(tag: &[u8]) -> bool {
    let ok = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    matches!(tag, &[a, b, c] if ok(a) && ok(b) && ok(c))
}

fn problem_issue(p: LexProblem, location: Location) -> Issue {
    let severity = if p.warning {
        Severity::Warning
    } else {
        Severity::Error
    };
    Issue {
        code: p.code,
        severity,
        location,
        message: p.detail,
    }
}

/// In text mode, adds an unsplit data segment's values (its walk) to the
/// open message's text and returns where the text stood before (to take
/// the segment back if it is seen again); `Err` when there is no walk or
/// it cannot take the segment, which must then be split. Outside text
/// mode, or without an open message, nothing is added.
fn walk_into_text(
    message: &mut Option<Message>,
    text_mode: bool,
    tag: &[u8],
    values: Option<crate::edifact::Values<'_>>,
) -> Result<Option<super::text::Mark>, ()> {
    let Some(m) = message.as_mut().filter(|_| text_mode) else {
        return Ok(None);
    };
    let mark = m.text.mark();
    if values.is_some_and(|values| m.text.push_values(tag, values)) {
        Ok(Some(mark))
    } else {
        Err(())
    }
}

/// Takes back from the open message's text what [`walk_into_text`] added.
fn take_back_text(message: &mut Option<Message>, mark: Option<super::text::Mark>) {
    if let (Some(mark), Some(m)) = (mark, message.as_mut()) {
        m.text.rollback(mark);
    }
}

/// Feeds a split segment to the validator, `pending` saying what it still
/// has to do with it when it was fed already (see [`Unsplit`]), and takes
/// its findings.
fn feed_split(
    validator: &mut MessageValidator,
    pending: Option<Unsplit>,
    raw: &crate::edifact::RawSegment<'_>,
) -> Vec<Finding> {
    match pending {
        None => validator.segment(raw),
        Some(Unsplit::Elements) => validator.placed_segment(raw),
        Some(Unsplit::Lexing | Unsplit::Done) => {}
    }
    validator.take_findings()
}
