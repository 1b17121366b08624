//! A message's values decoded once into one buffer: what the mappings read.
//!
//! [`Segment`] gives every component its own `String`; a message of sixty
//! segments becomes hundreds of allocations. [`MessageText`] holds the same
//! values — tags, release characters removed, decoded to UTF-8 — in one
//! text buffer with a table of spans, built by the parser as it validates
//! (see [`crate::edifact::ParseOptions::message_text`]) or from decoded
//! segments ([`MessageText::from_segments`]). Empty components are not
//! stored: a reader sees them as absent, as [`Segment::get`] does.

use super::charset::Charset;
use super::lexer::{RawSegment, Sep, Values, unescaped};
use super::segment::Segment;

/// The values of one message (UNH to UNT), in order.
#[derive(Debug, Clone, Default)]
pub struct MessageText {
    text: String,
    segments: Vec<TextSegment>,
    values: Vec<TextValue>,
    /// Scratch for unescaping.
    scratch: Vec<u8>,
    /// A value could not be stored: its place or offset does not fit (see
    /// [`MessageText::is_complete`]).
    overflow: bool,
}

/// Equal when they hold the same segments with the same values in the
/// same places (however the text is laid out).
impl PartialEq for MessageText {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && (0..self.len()).all(|s| {
                self.tag(s) == other.tag(s)
                    && self.element_count(s) == other.element_count(s)
                    && self.values(s).eq(other.values(s))
            })
    }
}

impl Eq for MessageText {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TextSegment {
    /// The tag's span in the text.
    tag_start: u32,
    tag_end: u32,
    /// Index of the segment's first value in `values`.
    first_value: u32,
    /// Number of data elements (empty ones included).
    elements: u32,
}

/// One non-empty component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TextValue {
    start: u32,
    end: u32,
    /// Element, repetition and component as one number (see [`key`]), in
    /// increasing order within a segment.
    key: u64,
}

/// A value's place as one number that orders as the places do.
fn key(element: u16, repetition: u16, component: u16) -> u64 {
    (u64::from(element) << 32) | (u64::from(repetition) << 16) | u64::from(component)
}

/// A non-empty value of a segment with its place: 0-based element,
/// repetition and component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed<'a> {
    pub element: usize,
    pub repetition: usize,
    pub component: usize,
    pub value: &'a str,
}

/// Where a [`MessageText`] stood before a segment was added, to take the
/// segment back ([`MessageText::rollback`]).
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    text: usize,
    segments: usize,
    values: usize,
    overflow: bool,
}

/// A place as stored; beyond `u16` (no directory defines such places) it
/// is not stored and the text is marked incomplete.
fn place(n: usize) -> Option<u16> {
    u16::try_from(n).ok()
}

impl MessageText {
    /// The text of decoded segments.
    pub fn from_segments(segments: &[Segment]) -> MessageText {
        let mut text = MessageText::default();
        text.refill(segments);
        text
    }

    /// Becomes the text of decoded segments, reusing its memory.
    pub fn refill(&mut self, segments: &[Segment]) {
        self.clear();
        for segment in segments {
            self.push_segment(segment);
        }
    }

    /// Empties it, keeping its memory.
    pub fn clear(&mut self) {
        self.text.clear();
        self.segments.clear();
        self.values.clear();
        self.overflow = false;
    }

    /// False when some value could not be stored: an element, repetition
    /// or component beyond the 65,535th of its segment, or more than 4 GiB
    /// of text. Readers must then say the message was not read whole.
    pub fn is_complete(&self) -> bool {
        !self.overflow
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The bytes of memory it holds on to (for callers that reuse one).
    pub fn capacity_bytes(&self) -> usize {
        self.text.capacity()
            + self.segments.capacity() * std::mem::size_of::<TextSegment>()
            + self.values.capacity() * std::mem::size_of::<TextValue>()
            + self.scratch.capacity()
    }

    fn span(&self, start: u32, end: u32) -> &str {
        self.text.get(start as usize..end as usize).unwrap_or("")
    }

    /// The tag of segment `seg` (0-based, UNH is 0).
    pub fn tag(&self, seg: usize) -> Option<&str> {
        let s = self.segments.get(seg)?;
        Some(self.span(s.tag_start, s.tag_end))
    }

    /// Number of data elements of segment `seg`, empty ones included.
    pub fn element_count(&self, seg: usize) -> usize {
        self.segments.get(seg).map_or(0, |s| s.elements as usize)
    }

    fn value_range(&self, seg: usize) -> &[TextValue] {
        let Some(s) = self.segments.get(seg) else {
            return &[];
        };
        let end = self
            .segments
            .get(seg + 1)
            .map_or(self.values.len(), |n| n.first_value as usize);
        self.values.get(s.first_value as usize..end).unwrap_or(&[])
    }

    /// Component `component` of element `element` (0-based), first
    /// repetition; `None` when absent or empty.
    pub fn get(&self, seg: usize, element: usize, component: usize) -> Option<&str> {
        let wanted = key(place(element)?, 0, place(component)?);
        for v in self.value_range(seg) {
            if v.key >= wanted {
                return (v.key == wanted).then(|| self.span(v.start, v.end));
            }
        }
        None
    }

    /// Component `component` of repetition `repetition` (0-based) of
    /// element `element`; `None` when absent or empty. Repetitions exist
    /// from syntax version 4 on; before it every value is repetition 0.
    pub fn get_repeated(
        &self,
        seg: usize,
        element: usize,
        repetition: usize,
        component: usize,
    ) -> Option<&str> {
        let wanted = key(place(element)?, place(repetition)?, place(component)?);
        for v in self.value_range(seg) {
            if v.key >= wanted {
                return (v.key == wanted).then(|| self.span(v.start, v.end));
            }
        }
        None
    }

    /// How many repetitions of element `element` of segment `seg` hold a
    /// value: one more than the last repetition with a non-empty
    /// component, 0 when the element is empty.
    pub fn repetitions(&self, seg: usize, element: usize) -> usize {
        let Some(element) = place(element) else {
            return 0;
        };
        let from = key(element, 0, 0);
        let to = key(element.saturating_add(1), 0, 0);
        self.value_range(seg)
            .iter()
            .filter(|v| v.key >= from && (v.key < to || element == u16::MAX))
            .map(|v| ((v.key >> 16) & 0xFFFF) as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// The non-empty values of segment `seg`, in order.
    pub fn values(&self, seg: usize) -> impl Iterator<Item = Placed<'_>> + '_ {
        self.value_range(seg).iter().map(|v| Placed {
            element: (v.key >> 32) as usize,
            repetition: ((v.key >> 16) & 0xFFFF) as usize,
            component: (v.key & 0xFFFF) as usize,
            value: self.span(v.start, v.end),
        })
    }

    /// The places (0-based element, repetition and component) of the
    /// non-empty values of segment `seg`, in order: [`values`](Self::values)
    /// without the values.
    pub fn places(&self, seg: usize) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.value_range(seg).iter().map(|v| {
            (
                (v.key >> 32) as usize,
                ((v.key >> 16) & 0xFFFF) as usize,
                (v.key & 0xFFFF) as usize,
            )
        })
    }

    /// Where it stands now.
    pub fn mark(&self) -> Mark {
        Mark {
            text: self.text.len(),
            segments: self.segments.len(),
            values: self.values.len(),
            overflow: self.overflow,
        }
    }

    /// Takes back what was added since `mark`.
    pub fn rollback(&mut self, mark: Mark) {
        self.text.truncate(mark.text);
        self.segments.truncate(mark.segments);
        self.values.truncate(mark.values);
        self.overflow = mark.overflow;
    }

    fn open(&mut self, tag: &str) {
        let tag_start = self.text.len();
        self.text.push_str(tag);
        let (Ok(tag_start), Ok(tag_end), Ok(first_value)) = (
            u32::try_from(tag_start),
            u32::try_from(self.text.len()),
            u32::try_from(self.values.len()),
        ) else {
            self.overflow = true;
            return;
        };
        self.segments.push(TextSegment {
            tag_start,
            tag_end,
            first_value,
            elements: 0,
        });
    }

    fn set_elements(&mut self, elements: usize) {
        if let Some(s) = self.segments.last_mut() {
            s.elements = u32::try_from(elements).unwrap_or(u32::MAX);
        }
    }

    fn push_value(&mut self, value: &str, element: usize, repetition: usize, component: usize) {
        if value.is_empty() {
            return;
        }
        let start = self.text.len();
        self.text.push_str(value);
        self.record(start, self.text.len(), element, repetition, component);
    }

    /// Records the value at `start..end` of the text.
    fn record(
        &mut self,
        start: usize,
        end: usize,
        element: usize,
        repetition: usize,
        component: usize,
    ) {
        let (Some(element), Some(repetition), Some(component), Ok(start), Ok(end)) = (
            place(element),
            place(repetition),
            place(component),
            u32::try_from(start),
            u32::try_from(end),
        ) else {
            self.overflow = true;
            return;
        };
        self.values.push(TextValue {
            start,
            end,
            key: key(element, repetition, component),
        });
    }

    /// Adds a decoded segment.
    pub fn push_segment(&mut self, segment: &Segment) {
        self.open(&segment.tag);
        for (e, element) in segment.elements.iter().enumerate() {
            for (r, rep) in element.repetitions().iter().enumerate() {
                for (c, value) in rep.iter().enumerate() {
                    self.push_value(value, e, r, c);
                }
            }
        }
        self.set_elements(segment.elements.len());
    }

    /// Adds a segment the lexer split, decoding its values as
    /// [`RawSegment::to_segment`] does.
    pub fn push_raw(&mut self, raw: &RawSegment<'_>, charset: Charset) {
        self.open(&String::from_utf8_lossy(raw.tag()));
        let release = raw.release();
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut count = 0usize;
        for (e, element) in raw.elements().enumerate() {
            count = e + 1;
            for (r, comps) in element.repetitions().enumerate() {
                for (c, (stored, escaped)) in comps.iter().enumerate() {
                    let bytes = unescaped(release, stored, escaped, &mut scratch);
                    self.push_value(&charset.decode(bytes), e, r, c);
                }
            }
        }
        self.scratch = scratch;
        self.set_elements(count);
    }

    /// A sink that adds the segment another walk reads (see
    /// [`ValueSink`]); what it added is taken back with
    /// [`rollback`](Self::rollback) to a [`mark`](Self::mark) made before
    /// unless it is [`complete`](TextRecorder::complete).
    pub fn recorder(&mut self) -> TextRecorder<'_> {
        TextRecorder {
            text: self,
            walk: Walk::Idle,
        }
    }

    /// Adds an unsplit data segment from the walk of its values (plainly
    /// valid ASCII, see [`RawSegment::values`]). False, with nothing added,
    /// when the walk stops before the end: the segment must be split.
    pub fn push_values(&mut self, tag: &[u8], mut values: Values<'_>) -> bool {
        let mark = self.mark();
        let release = values.release();
        let mut scratch = std::mem::take(&mut self.scratch);
        // The walk of its own, taken as the validator's walk is.
        let mut recorder = self.recorder();
        recorder.begin(tag, &values);
        let (mut e, mut r, mut c) = (0usize, 0usize, 0usize);
        if !values.is_empty() {
            while let Some((raw, escaped, sep)) = values.next_value() {
                let value = unescaped(release, raw, escaped, &mut scratch);
                recorder.value(raw, value, escaped, (e, r, c));
                match sep {
                    Sep::Component => c += 1,
                    Sep::Repetition => {
                        r += 1;
                        c = 0;
                    }
                    Sep::Element => {
                        e += 1;
                        r = 0;
                        c = 0;
                    }
                    Sep::End => {
                        recorder.end(e + 1);
                        break;
                    }
                }
            }
        }
        let complete = recorder.complete();
        self.scratch = scratch;
        if !complete {
            self.rollback(mark);
        }
        complete
    }
}

/// Takes the values of an unsplit data segment as another walk over them
/// reads them (see [`Values`]), so that one walk serves two readers: the
/// structure validator's check of a segment fills the message's text as it
/// goes (see [`MessageText::recorder`]). `()` takes nothing.
pub trait ValueSink {
    /// The segment tagged `tag` starts; `values` is its walk, not begun.
    fn begin(&mut self, tag: &[u8], values: &Values<'_>);
    /// The next value: as stored (a slice of the walk's bytes), with release
    /// characters removed, whether it had any, and its 0-based element,
    /// repetition and component.
    fn value(&mut self, raw: &[u8], unescaped: &[u8], escaped: bool, place: (usize, usize, usize));
    /// The walk reached the segment's end after `elements` data elements.
    fn end(&mut self, elements: usize);
}

impl ValueSink for () {
    #[inline(always)]
    fn begin(&mut self, _: &[u8], _: &Values<'_>) {}
    #[inline(always)]
    fn value(&mut self, _: &[u8], _: &[u8], _: bool, _: (usize, usize, usize)) {}
    #[inline(always)]
    fn end(&mut self, _: usize) {}
}

/// Where a [`TextRecorder`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    Idle,
    /// Values are being taken: the segment's data elements were copied
    /// to the text from byte `base`; `origin` is their address in the walk.
    Taking {
        base: usize,
        origin: usize,
    },
    /// The segment is in the text, complete.
    Done,
    /// A value could not be taken; the segment must be taken back.
    Failed,
}

/// Adds the segment a walk reads to a [`MessageText`] (see [`ValueSink`]):
/// the validator's walk, or [`MessageText::push_values`]'s own.
#[derive(Debug)]
pub struct TextRecorder<'t> {
    text: &'t mut MessageText,
    walk: Walk,
}

impl TextRecorder<'_> {
    /// True when a whole segment was added: the walk began, took every
    /// value and reached the end.
    pub fn complete(&self) -> bool {
        self.walk == Walk::Done
    }
}

impl ValueSink for TextRecorder<'_> {
    fn begin(&mut self, tag: &[u8], values: &Values<'_>) {
        let Ok(tag) = std::str::from_utf8(tag) else {
            self.walk = Walk::Failed;
            return;
        };
        self.text.open(tag);
        if values.is_empty() {
            self.walk = Walk::Done;
            return;
        }
        // The data elements are copied whole (the walk returns ASCII
        // only); a value is the span of its bytes in that copy, or, with
        // release characters, its unescaped copy after it.
        let body = values.remaining();
        let Ok(body_text) = std::str::from_utf8(body) else {
            self.walk = Walk::Failed;
            return;
        };
        let base = self.text.text.len();
        self.text.text.push_str(body_text);
        self.walk = Walk::Taking {
            base,
            origin: body.as_ptr() as usize,
        };
    }

    #[inline]
    fn value(&mut self, raw: &[u8], unescaped: &[u8], escaped: bool, place: (usize, usize, usize)) {
        let Walk::Taking { base, origin } = self.walk else {
            return;
        };
        let (e, r, c) = place;
        if escaped {
            match std::str::from_utf8(unescaped) {
                Ok(value) => self.text.push_value(value, e, r, c),
                Err(_) => self.walk = Walk::Failed,
            }
        } else if !raw.is_empty() {
            let start = base + (raw.as_ptr() as usize).saturating_sub(origin);
            self.text.record(start, start + raw.len(), e, r, c);
        }
    }

    fn end(&mut self, elements: usize) {
        if let Walk::Taking { .. } = self.walk {
            self.text.set_elements(elements);
            self.walk = Walk::Done;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::edifact::lexer::{Lexer, Next};
    use crate::edifact::{Element, Limits};

    fn segments() -> Vec<Segment> {
        vec![
            Segment::new(
                "UNH",
                vec![Element::simple("1"), Element::composite(["CUSDEC", "D"])],
            ),
            Segment::new(
                "NAD",
                vec![
                    Element::simple("IM"),
                    Element::composite(["ID", "", "9"]),
                    Element::simple(""),
                    Element::repeated(vec![vec!["A".into()], vec!["B".into(), "C".into()]]),
                ],
            ),
            Segment::new("UNT", vec![Element::simple("3"), Element::simple("1")]),
        ]
    }

    /// A lexer that hands data segments over unsplit, as the parser's
    /// validating modes have it.
    fn deferring(input: &[u8]) -> Lexer<&[u8]> {
        let mut lexer = Lexer::new(input, Limits::default());
        lexer.split_data_segments(false);
        lexer.defer_data_segments(true);
        lexer.start().unwrap();
        lexer
    }

    #[test]
    fn reads_what_the_segments_hold() {
        let segs = segments();
        let text = MessageText::from_segments(&segs);
        assert_eq!(text.len(), 3);
        assert_eq!(text.tag(1), Some("NAD"));
        assert_eq!(text.element_count(1), 4);
        for (s, seg) in segs.iter().enumerate() {
            for e in 0..5 {
                for c in 0..4 {
                    assert_eq!(text.get(s, e, c), seg.get(e, c), "{s} {e} {c}");
                }
            }
        }
        let placed: Vec<(usize, usize, usize, &str)> = text
            .values(1)
            .map(|p| (p.element, p.repetition, p.component, p.value))
            .collect();
        assert_eq!(
            placed,
            vec![
                (0, 0, 0, "IM"),
                (1, 0, 0, "ID"),
                (1, 0, 2, "9"),
                (3, 0, 0, "A"),
                (3, 1, 0, "B"),
                (3, 1, 1, "C")
            ]
        );
        assert_eq!(text.tag(3), None);
        assert_eq!(text.get(3, 0, 0), None);
        assert!(text.is_complete());
        // One value changed, or one empty element more: not the same text.
        let mut other = segs.clone();
        other[1].elements[3] =
            Element::repeated(vec![vec!["A".into()], vec!["B".into(), "D".into()]]);
        assert_ne!(MessageText::from_segments(&other), text);
        let mut longer = segs.clone();
        longer[1].elements.push(Element::simple(""));
        assert_ne!(MessageText::from_segments(&longer), text);
    }

    /// The three ways in give the same text: decoded segments, split raw
    /// segments, the unsplit walk.
    #[test]
    fn raw_split_and_walked_agree_with_decoded() {
        let input = b"UNA:+.?*'UNB+UNOA:4+S+R+200101:1200+1'UNH+1+CUSDEC:D:96B:UN'NAD+IM+ID::9++A*B:C'FTX+AAA+++A?+B?:C'FTX+AAB+++X?'Y'FTX+AAC+++x'UNT+6+1'UNZ+1+1'";
        let mut split = Lexer::new(&input[..], Limits::default());
        split.split_data_segments(true);
        split.start().unwrap();
        let mut from_raw = MessageText::default();
        let mut decoded = Vec::new();
        while let Next::Segment(raw) = split.next_segment().unwrap() {
            from_raw.push_raw(&raw, raw.charset);
            decoded.push(raw.to_segment(raw.charset));
        }
        assert_eq!(from_raw, MessageText::from_segments(&decoded));

        let mut deferred = deferring(input);
        let mut walked = MessageText::default();
        let mut walks = 0;
        while let Next::Segment(raw) = deferred.next_segment().unwrap() {
            match raw.values() {
                Some(values) => {
                    if walked.push_values(raw.tag(), values) {
                        walks += 1;
                    } else {
                        // Not plainly valid to the walk: split.
                        deferred.again_split();
                    }
                }
                None => walked.push_raw(&raw, raw.charset),
            }
        }
        // NAD and the first two FTX; a lower-case letter is outside UNOA,
        // so the walk stopped at the third, which was split.
        assert_eq!(walks, 3);
        assert_eq!(walked.get(5, 3, 0), Some("x"));
        assert_eq!(walked, from_raw);
        assert_eq!(from_raw.get(2, 3, 1), Some("C").filter(|_| false));
        assert_eq!(
            from_raw
                .values(2)
                .last()
                .map(|p| (p.repetition, p.component, p.value)),
            Some((1, 1, "C"))
        );
        assert_eq!(from_raw.get(3, 3, 0), Some("A+B:C"));
        assert_eq!(from_raw.get(4, 3, 0), Some("X'Y"));
    }

    /// A value whose place does not fit is not stored, and the text says
    /// it is incomplete.
    #[test]
    fn places_beyond_what_is_stored_mark_the_text_incomplete() {
        let mut elements = vec![Element::simple(""); 70_000];
        elements.push(Element::simple("LAST"));
        let hostile = Segment::new("FTX", elements);
        let text = MessageText::from_segments(std::slice::from_ref(&hostile));
        assert!(!text.is_complete());
        assert_eq!(text.values(0).count(), 0);
        let mut cleared = text.clone();
        cleared.clear();
        assert!(cleared.is_complete());
        // Taken back, the segment leaves the text as it was.
        let mark = cleared.mark();
        cleared.push_segment(&hostile);
        assert!(!cleared.is_complete());
        cleared.rollback(mark);
        assert!(cleared.is_complete() && cleared.is_empty());
    }

    #[test]
    fn a_walk_that_stops_adds_nothing() {
        // A trailing component separator before the end stops the walk.
        let input = b"UNB+UNOA:3+S+R+200101:1200+1'UNH+1+X:D:96B:UN'NAD+IM:'UNT+3+1'UNZ+1+1'";
        let mut lexer = deferring(input);
        let mut text = MessageText::default();
        let mut walks = 0;
        while let Next::Segment(raw) = lexer.next_segment().unwrap() {
            if let Some(values) = raw.values() {
                let before = text.clone();
                assert!(!text.push_values(raw.tag(), values));
                assert_eq!(text, before);
                walks += 1;
            }
        }
        assert_eq!(walks, 1);
    }
}
