//! The streaming lexer: cuts a byte stream into segments and each segment
//! into elements, repetitions and components, without copying values.
//!
//! Input is any [`BufRead`] (a `&[u8]` is one); memory is bounded by the
//! largest segment, and a segment longer than [`Limits::max_segment_bytes`]
//! is skipped with [`Code::SegmentTooLarge`] instead of being buffered.

use std::borrow::Cow;
use std::io;

use memchr::{memchr, memchr2};

use super::charset::Charset;
use super::scan::Scanner;
use super::segment::{Element, Segment};
use super::separators::{Separators, UnaProblem};
use crate::diag::Code;

/// Size limits of the syntax engine. Defaults suit real interchanges with
/// room to spare; the hub reads them from its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest segment accepted, in bytes, terminator excluded.
    pub max_segment_bytes: usize,
    /// How many issues are recorded before the rest are only counted.
    pub max_issues: usize,
}

/// How far past [`Limits::max_segment_bytes`] an oversized segment is
/// skipped, looking for its terminator, before the lexer stops reading.
const SKIP_FACTOR: usize = 64;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_segment_bytes: 256 * 1024,
            max_issues: 1000,
        }
    }
}

/// A problem the lexer found below the level of the envelope. The parser
/// turns these into located [`crate::diag::Issue`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexProblem {
    pub code: Code,
    /// Byte offset of the problem in the input.
    pub offset: u64,
    /// 1-based element, repetition and component, when inside a segment.
    pub element: Option<u16>,
    pub repetition: Option<u16>,
    pub component: Option<u16>,
    pub detail: String,
    /// Tolerated deviation (reported as a warning, not an error).
    pub warning: bool,
    /// The service segment it is in, where the lexer knows it (UNA).
    pub tag: Option<&'static str>,
}

impl LexProblem {
    fn at(code: Code, offset: u64, detail: impl Into<String>) -> Self {
        let warning = code == Code::StrayBytes;
        LexProblem {
            code,
            offset,
            element: None,
            repetition: None,
            component: None,
            detail: detail.into(),
            warning,
            tag: None,
        }
    }
}

/// Where one component lies in a segment body, and whether it contains
/// release characters that must be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
    escaped: bool,
}

/// The split of one segment body, reused from segment to segment.
#[derive(Debug, Default)]
struct Spans {
    comps: Vec<Span>,
    /// Index in `comps` of the first component of each repetition.
    reps: Vec<u32>,
    /// Index in `reps` of the first repetition of each element.
    elems: Vec<u32>,
}

// Byte classes for the split loop.
const DATA: u8 = 0;
const COMPONENT: u8 = 1;
const ELEMENT: u8 = 2;
const REPETITION: u8 = 3;
const RELEASE: u8 = 4;
const INVALID: u8 = 5;
/// The segment terminator: inside a body it can only stand released.
const TERMINATOR: u8 = 6;

/// One segment as the lexer sees it: raw bytes plus the positions of its
/// constituents. Borrowed from the [`Lexer`] until the next call.
#[derive(Debug)]
pub struct RawSegment<'a> {
    body: &'a [u8],
    tag_end: usize,
    spans: &'a Spans,
    release: Option<u8>,
    /// The lexer's byte classes for ASCII, for [`RawSegment::values`].
    classes: &'a [u8; 256],
    /// The segment was split into spans (see [`Lexer::defer_data_segments`]).
    split: bool,
    /// The repertoire values are decoded with.
    pub charset: Charset,
    /// Byte offset of the segment's first byte in the input.
    pub offset: u64,
    /// Position in the interchange, UNA not counted, first segment = 1.
    pub position: u32,
    /// The lexer has problems to report (taken with
    /// [`Lexer::take_problems`]), of this segment or before it.
    pub problems: bool,
}

impl<'a> RawSegment<'a> {
    /// The segment tag as written (may be invalid; the parser checks it).
    pub fn tag(&self) -> &'a [u8] {
        self.body.get(..self.tag_end).unwrap_or(&[])
    }

    /// The raw body, terminator excluded.
    pub fn bytes(&self) -> &'a [u8] {
        self.body
    }

    pub fn tag_is(&self, tag: &[u8]) -> bool {
        self.tag() == tag
    }

    /// Number of data elements after the tag.
    pub fn element_count(&self) -> usize {
        self.spans.elems.len()
    }

    /// Number of repetitions of element `e` (0-based).
    pub fn repetition_count(&self, e: usize) -> usize {
        let Some(&first) = self.spans.elems.get(e) else {
            return 0;
        };
        let next = self
            .spans
            .elems
            .get(e + 1)
            .copied()
            .unwrap_or(self.spans.reps.len() as u32);
        (next - first) as usize
    }

    fn rep_comps(&self, e: usize, r: usize) -> &'a [Span] {
        let spans: &'a Spans = self.spans;
        let Some(&first_rep) = spans.elems.get(e) else {
            return &[];
        };
        let rep_index = first_rep as usize + r;
        let rep_end = spans
            .elems
            .get(e + 1)
            .copied()
            .unwrap_or(spans.reps.len() as u32) as usize;
        if rep_index >= rep_end {
            return &[];
        }
        let Some(&first_comp) = spans.reps.get(rep_index) else {
            return &[];
        };
        let end_comp = spans
            .reps
            .get(rep_index + 1)
            .copied()
            .unwrap_or(spans.comps.len() as u32);
        spans
            .comps
            .get(first_comp as usize..end_comp as usize)
            .unwrap_or(&[])
    }

    /// Number of components of element `e`, first repetition.
    pub fn component_count(&self, e: usize) -> usize {
        self.rep_comps(e, 0).len()
    }

    /// Number of components of repetition `r` of element `e`.
    pub fn components_in(&self, e: usize, r: usize) -> usize {
        self.rep_comps(e, r).len()
    }

    /// The raw bytes of a component, release characters still in place.
    pub fn raw(&self, e: usize, r: usize, c: usize) -> Option<&'a [u8]> {
        let span = self.rep_comps(e, r).get(c)?;
        self.body.get(span.start as usize..span.end as usize)
    }

    /// The components of repetition `r` of element `e` as written.
    pub fn components(&self, e: usize, r: usize) -> RawComponents<'a> {
        RawComponents {
            body: self.body,
            spans: self.rep_comps(e, r),
        }
    }

    /// The raw bytes of a component and whether they hold release
    /// characters (see [`RawSegment::unescape`]); `None` when the component
    /// is absent.
    pub fn stored(&self, e: usize, r: usize, c: usize) -> Option<(&'a [u8], bool)> {
        self.components(e, r).get(c)
    }

    /// Appends `raw` (a component's raw bytes) to `out` with release
    /// characters removed: a release character stands for the byte after
    /// it; one at the very end stands for nothing.
    pub fn unescape(&self, raw: &[u8], out: &mut Vec<u8>) {
        unescape(self.release, raw, out);
    }

    /// The release character values are written with, if any.
    pub fn release(&self) -> Option<u8> {
        self.release
    }

    /// The bytes of a component with release characters removed; `None`
    /// when the component is absent.
    pub fn value_bytes(&self, e: usize, r: usize, c: usize) -> Option<Cow<'a, [u8]>> {
        let (raw, escaped) = self.stored(e, r, c)?;
        if !escaped {
            return Some(Cow::Borrowed(raw));
        }
        self.release?;
        let mut out = Vec::with_capacity(raw.len());
        self.unescape(raw, &mut out);
        Some(Cow::Owned(out))
    }

    /// A component decoded to text (`""` when absent), first repetition.
    pub fn text(&self, e: usize, c: usize, charset: Charset) -> String {
        self.value_bytes(e, 0, c)
            .map(|b| charset.decode(&b).into_owned())
            .unwrap_or_default()
    }

    /// The whole segment decoded to an owned [`Segment`], walking its
    /// stored components once in order.
    pub fn to_segment(&self, charset: Charset) -> Segment {
        let tag = String::from_utf8_lossy(self.tag()).into_owned();
        let mut scratch = Vec::new();
        let mut elements = Vec::with_capacity(self.element_count());
        for element in self.elements() {
            let mut reps = Vec::with_capacity(element.repetition_count().max(1));
            for comps in element.repetitions() {
                let mut values = Vec::with_capacity(comps.len().max(1));
                for (stored, escaped) in comps.iter() {
                    let bytes = unescaped(self.release, stored, escaped, &mut scratch);
                    values.push(charset.decode(bytes).into_owned());
                }
                reps.push(values);
            }
            // Empty lists are normalised by the element.
            elements.push(Element::repeated(reps));
        }
        Segment { tag, elements }
    }
}

impl<'a> RawSegment<'a> {
    /// False for a data segment the lexer handed over unchecked (see
    /// [`Lexer::defer_data_segments`]): it has no spans, so its element
    /// accessors see no elements.
    pub fn is_split(&self) -> bool {
        self.split
    }

    /// The values of an unsplit segment, walked straight from its bytes;
    /// `None` for a split one. The walk stops (`None` from
    /// [`Values::next_value`]) at anything that is not plainly valid
    /// printable ASCII: a byte outside the repertoire or above 0x7F, a
    /// release character, a separator before a data element separator or
    /// at the end. Values it returns are exactly the components
    /// [`Lexer::again_split`] would find, and such a segment has no syntax
    /// problem.
    pub fn values(&self) -> Option<Values<'a>> {
        if self.split {
            return None;
        }
        Some(Values::after_tag(
            self.body,
            self.tag_end,
            self.classes,
            self.release,
        ))
    }
}

/// Appends `raw` to `out` with release characters removed (see
/// [`RawSegment::unescape`]).
pub fn unescape(release: Option<u8>, raw: &[u8], out: &mut Vec<u8>) {
    let Some(release) = release else {
        out.extend_from_slice(raw);
        return;
    };
    out.reserve(raw.len());
    let mut rest = raw;
    while let Some(at) = memchr(release, rest) {
        out.extend_from_slice(rest.get(..at).unwrap_or(&[]));
        if let Some(&released) = rest.get(at + 1) {
            out.push(released);
        }
        rest = rest.get(at + 2..).unwrap_or(&[]);
    }
    out.extend_from_slice(rest);
}

/// A value's bytes: as written, or, when it holds release characters
/// (`escaped`), without them (`release` the interchange's) in `scratch`.
#[inline]
pub fn unescaped<'v>(
    release: Option<u8>,
    raw: &'v [u8],
    escaped: bool,
    scratch: &'v mut Vec<u8>,
) -> &'v [u8] {
    if !escaped {
        return raw;
    }
    scratch.clear();
    unescape(release, raw, scratch);
    scratch
}

/// How [`Lexer::accept_in_window`] stopped.
#[derive(Debug, Clone, Copy)]
struct Accepted {
    accepted: u32,
    /// The last segment accepted ended with its terminator, so one line
    /// end may follow.
    after_terminator: bool,
    /// It stopped at the end of the window, inside a segment or a line end.
    needs_input: bool,
}

/// What ends a value walked by [`Values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sep {
    Component,
    Repetition,
    Element,
    /// The end of the segment.
    End,
}

/// The values of an unsplit [`RawSegment`], in order (see
/// [`RawSegment::values`]).
#[derive(Debug, Clone)]
pub struct Values<'a> {
    /// The bytes after the last separator; `None` once the end was
    /// returned or when the segment has no data elements at all.
    rest: Option<&'a [u8]>,
    classes: &'a [u8; 256],
    release: Option<u8>,
    /// The separator before the value to come.
    after: Sep,
}

impl<'a> Values<'a> {
    /// The values of segment `body` whose tag ends at `tag_end` (where its
    /// first data element separator stands, or at the end).
    fn after_tag(
        body: &'a [u8],
        tag_end: usize,
        classes: &'a [u8; 256],
        release: Option<u8>,
    ) -> Values<'a> {
        Values {
            rest: body.get(tag_end + 1..),
            classes,
            release,
            after: Sep::Element,
        }
    }

    /// True when the segment has no data elements (only its tag).
    pub fn is_empty(&self) -> bool {
        self.rest.is_none()
    }

    /// The bytes not walked yet: before the walk, all of the segment's
    /// data elements (the values it returns are slices of them).
    pub fn remaining(&self) -> &'a [u8] {
        self.rest.unwrap_or(&[])
    }

    /// The next value (raw bytes, plainly valid ASCII), whether it holds
    /// release characters (each before a service character: see
    /// [`Values::unescape`]), and what ends it; `None` when the walk must
    /// stop: the segment needs the exact lexer (or the end was already
    /// returned).
    #[inline(always)]
    pub fn next_value(&mut self) -> Option<(&'a [u8], bool, Sep)> {
        let rest = self.rest?;
        let mut k = 0usize;
        let mut escaped = false;
        while let Some(&b) = rest.get(k) {
            let class = self.classes[b as usize];
            if class == DATA {
                k += 1;
                continue;
            }
            let sep = match class {
                COMPONENT => Sep::Component,
                REPETITION => Sep::Repetition,
                ELEMENT => Sep::Element,
                RELEASE => {
                    // Only a service character may be released.
                    let next = rest.get(k + 1)?;
                    if !matches!(
                        self.classes[*next as usize],
                        COMPONENT | ELEMENT | REPETITION | RELEASE | TERMINATOR
                    ) {
                        return None;
                    }
                    escaped = true;
                    k += 2;
                    continue;
                }
                _ => return None,
            };
            // An empty trailing component or repetition before a data
            // element separator is a (reported) syntax problem.
            if k == 0 && sep == Sep::Element && self.after != Sep::Element {
                return None;
            }
            self.after = sep;
            self.rest = rest.get(k + 1..);
            return Some((rest.get(..k)?, escaped, sep));
        }
        // A separator right before the end is a syntax problem too.
        if k == 0 {
            return None;
        }
        self.rest = None;
        Some((rest, escaped, Sep::End))
    }

    /// The release character values are written with, if any.
    pub fn release(&self) -> Option<u8> {
        self.release
    }
}

/// One data element of a [`RawSegment`]: its repetitions in order, each
/// as its components (see [`RawSegment::elements`]).
#[derive(Debug, Clone, Copy)]
pub struct RawElement<'a> {
    body: &'a [u8],
    /// Index in `comps` of the first component of each repetition.
    reps: &'a [u32],
    /// Index in `comps` one past the last repetition's last component.
    end: u32,
    comps: &'a [Span],
}

impl<'a> RawElement<'a> {
    pub fn repetition_count(&self) -> usize {
        self.reps.len()
    }

    /// The repetitions' components, in order.
    pub fn repetitions(&self) -> impl Iterator<Item = RawComponents<'a>> + use<'a> {
        let (body, reps, end, comps) = (self.body, self.reps, self.end, self.comps);
        reps.iter().enumerate().map(move |(i, &start)| {
            let stop = reps.get(i + 1).copied().unwrap_or(end);
            RawComponents {
                body,
                spans: comps.get(start as usize..stop as usize).unwrap_or(&[]),
            }
        })
    }
}

impl<'a> RawSegment<'a> {
    /// The data elements in order, walked without looking each one up
    /// (for code that visits every constituent once: decoding, the
    /// validator's fast check).
    pub fn elements(&self) -> impl Iterator<Item = RawElement<'a>> + use<'a> {
        let spans: &'a Spans = self.spans;
        let body = self.body;
        let total_reps = spans.reps.len() as u32;
        let total_comps = spans.comps.len() as u32;
        spans.elems.iter().enumerate().map(move |(e, &first)| {
            let next = spans.elems.get(e + 1).copied().unwrap_or(total_reps);
            RawElement {
                body,
                reps: spans.reps.get(first as usize..next as usize).unwrap_or(&[]),
                end: spans
                    .reps
                    .get(next as usize)
                    .copied()
                    .unwrap_or(total_comps),
                comps: &spans.comps,
            }
        })
    }
}

/// The components of one repetition of a [`RawSegment`], as written.
#[derive(Debug, Clone, Copy)]
pub struct RawComponents<'a> {
    body: &'a [u8],
    spans: &'a [Span],
}

impl<'a> RawComponents<'a> {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Component `c`'s raw bytes and whether they hold release characters.
    pub fn get(&self, c: usize) -> Option<(&'a [u8], bool)> {
        let span = self.spans.get(c)?;
        let raw = self.body.get(span.start as usize..span.end as usize)?;
        Some((raw, span.escaped))
    }

    /// True when any component is not empty.
    pub fn any_present(&self) -> bool {
        self.spans.iter().any(|s| s.end > s.start)
    }

    /// Each component's raw bytes and whether they hold release
    /// characters, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], bool)> + use<'a> {
        let body = self.body;
        self.spans.iter().map(move |span| {
            (
                body.get(span.start as usize..span.end as usize)
                    .unwrap_or(&[]),
                span.escaped,
            )
        })
    }
}

/// How many bytes one read asks the underlying reader for.
const READ_BLOCK: usize = 64 * 1024;

/// Cuts a byte stream into [`RawSegment`]s.
#[derive(Debug)]
pub struct Lexer<R> {
    reader: R,
    limits: Limits,
    seps: Separators,
    classes: [u8; 256],
    /// `classes` with every byte above 0x7F out ([`Values`] walks only
    /// ASCII).
    ascii_classes: [u8; 256],
    charset: Charset,
    utf8: bool,
    /// Read-ahead window; `buf[lo..hi]` is unread, reads land at `hi`.
    buf: Vec<u8>,
    lo: usize,
    hi: usize,
    /// Stream offset of `buf[lo]`.
    offset: u64,
    /// Bytes of the segment last returned, consumed on the next call.
    pending_consume: usize,
    /// The last segment ended with a terminator, so one line end may follow.
    after_terminator: bool,
    eof: bool,
    spans: Spans,
    position: u32,
    problems: Vec<LexProblem>,
    una: Option<[u8; 9]>,
    /// The input starts with a UTF-16 or UTF-32 byte order mark: the
    /// encoding it names (the interchange is then refused, saying so).
    wide_encoding: Option<&'static str>,
    syntax: Option<(String, u8)>,
    /// Split data segments into element spans (service segments always are).
    split_data: bool,
    /// Hand data segments over unchecked and unsplit (see
    /// [`Lexer::defer_data_segments`]).
    defer_data: bool,
    /// Length of the body of the segment last returned, when
    /// [`Lexer::again_split`] asked for it once more.
    again: Option<usize>,
    /// The block scanner for the current separators and repertoire, when
    /// they suit it (see [`Lexer::skip_clean_data`]).
    scanner: Option<Scanner>,
}

/// What [`Lexer::next_segment`] found.
#[derive(Debug)]
pub enum Next<'a> {
    /// A segment (possibly unterminated at the end of input: see
    /// [`Code::UnterminatedSegment`] among the problems).
    Segment(RawSegment<'a>),
    /// A segment longer than the limit, skipped up to its terminator.
    Oversized {
        offset: u64,
        position: u32,
        length: u64,
    },
    /// End of input.
    End,
}

impl<R: io::Read> Lexer<R> {
    /// A lexer with level A defaults until [`Lexer::start`] reads the
    /// preamble (byte order mark, UNA).
    pub fn new(reader: R, limits: Limits) -> Self {
        let mut lexer = Lexer {
            reader,
            limits,
            seps: Separators::LEVEL_A,
            classes: [DATA; 256],
            ascii_classes: [INVALID; 256],
            charset: Charset::LevelA,
            utf8: false,
            buf: Vec::new(),
            lo: 0,
            hi: 0,
            offset: 0,
            pending_consume: 0,
            after_terminator: false,
            eof: false,
            spans: Spans::default(),
            position: 0,
            problems: Vec::new(),
            una: None,
            wide_encoding: None,
            syntax: None,
            split_data: true,
            defer_data: false,
            again: None,
            scanner: None,
        };
        lexer.rebuild_classes();
        lexer
    }

    pub fn separators(&self) -> Separators {
        self.seps
    }

    pub fn charset(&self) -> Charset {
        self.charset
    }

    /// The UNA segment, if the interchange had one.
    pub fn una(&self) -> Option<[u8; 9]> {
        self.una
    }

    /// The wide encoding a byte order mark at the start of the input names
    /// (`UTF-16LE`, `UTF-16BE`, `UTF-32LE`, `UTF-32BE`), if any. ISO 9735
    /// character repertoires are sent one byte a character (UTF-8 for UNOW),
    /// so such input is not an interchange as sent.
    pub fn wide_encoding(&self) -> Option<&'static str> {
        self.wide_encoding
    }

    /// Bytes read so far (the offset just after the last segment returned).
    pub fn offset(&self) -> u64 {
        self.offset + self.pending_consume as u64
    }

    /// Problems found since the last call, for the parser to locate.
    pub fn take_problems(&mut self) -> Vec<LexProblem> {
        std::mem::take(&mut self.problems)
    }

    /// Whether data segments (tags not starting with `UN`) are split into
    /// element and component spans. When not, their element accessors see
    /// no elements, but every syntax check still runs and any problem is
    /// located exactly as with splitting. Default: split.
    pub fn split_data_segments(&mut self, split: bool) {
        self.split_data = split;
    }

    /// When on (and data segments are not split), data segments are
    /// returned without any check of their bytes and without spans
    /// ([`RawSegment::is_split`] false): the caller either proves one
    /// plainly valid by walking [`RawSegment::values`] or asks for it again,
    /// split and checked, with [`Lexer::again_split`]. Default: off.
    pub fn defer_data_segments(&mut self, defer: bool) {
        self.defer_data = defer;
    }

    /// The next call of [`Lexer::next_segment`] returns the segment just
    /// returned once more, split into spans with every syntax check run
    /// (for a deferred segment its caller could not prove clean).
    pub fn again_split(&mut self) {
        let consumed = self.pending_consume;
        // The body is what the segment consumes before its terminator.
        let body_len = if self.after_terminator {
            consumed.saturating_sub(1)
        } else {
            consumed
        };
        self.again = Some(body_len);
    }

    /// Switches separators (the repetition separator becomes active once UNB
    /// shows syntax version 4) and the repertoire checked from now on.
    pub fn configure(&mut self, seps: Separators, charset: Charset) {
        self.seps = seps;
        self.charset = charset;
        self.utf8 = charset == Charset::Utf8;
        self.rebuild_classes();
    }

    fn rebuild_classes(&mut self) {
        self.scanner = Scanner::new(self.seps, self.charset);
        let rep = self.charset.repertoire();
        for (class, allowed) in self.classes.iter_mut().zip(rep) {
            *class = if allowed { DATA } else { INVALID };
        }
        let seps = self.seps;
        let mut set = |b: u8, class: u8| {
            if let Some(slot) = self.classes.get_mut(b as usize) {
                *slot = class;
            }
        };
        set(seps.terminator, TERMINATOR);
        set(seps.component, COMPONENT);
        set(seps.element, ELEMENT);
        if let Some(r) = seps.repetition {
            set(r, REPETITION);
        }
        if let Some(r) = seps.release {
            set(r, RELEASE);
        }
        self.ascii_classes = self.classes;
        for class in self.ascii_classes.iter_mut().skip(0x80) {
            *class = INVALID;
        }
    }

    /// Reads more input into the window. Returns false at end of input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        // Make room at the end: move the unread bytes to the front, or grow.
        if self.buf.len() - self.hi < READ_BLOCK / 2 {
            if self.lo > 0 {
                self.buf.copy_within(self.lo..self.hi, 0);
                self.hi -= self.lo;
                self.lo = 0;
            }
            if self.buf.len() - self.hi < READ_BLOCK / 2 {
                let grown = (self.buf.len() * 2).max(READ_BLOCK);
                self.buf.resize(grown, 0);
            }
        }
        let n = loop {
            match self
                .reader
                .read(self.buf.get_mut(self.hi..).unwrap_or(&mut []))
            {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.hi += n;
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// Reads no more: what is buffered is dropped and the input ends here.
    fn stop(&mut self) {
        let rest = self.unread().len();
        self.advance(rest);
        self.eof = true;
    }

    fn unread(&self) -> &[u8] {
        self.buf.get(self.lo..self.hi).unwrap_or(&[])
    }

    /// Ensures at least `n` unread bytes unless the input ends first.
    fn want(&mut self, n: usize) -> io::Result<()> {
        while self.unread().len() < n && self.fill()? {}
        Ok(())
    }

    fn advance(&mut self, n: usize) {
        let n = n.min(self.hi - self.lo);
        self.lo += n;
        self.offset += n as u64;
    }

    /// Reads the preamble: a byte order mark or leading white space (both
    /// reported) and the UNA service string advice. Returns the separators
    /// the interchange declares (level A defaults, or level B defaults when
    /// the first segment is `UNB` followed by IS3).
    pub fn start(&mut self) -> io::Result<Separators> {
        self.want(4)?;
        let mark = crate::bom::byte_order_mark(self.unread());
        self.wide_encoding = mark.filter(|m| m.is_wide()).map(|m| m.encoding);
        if let Some(utf8) = mark.filter(|m| !m.is_wide()) {
            self.problems.push(LexProblem::at(
                Code::StrayBytes,
                0,
                "UTF-8 byte order mark before the interchange skipped; ISO 9735 has none",
            ));
            self.advance(utf8.bytes.len());
        }
        self.skip_between()?;
        self.want(9)?;
        let head = self.unread();
        let starts_una = head.starts_with(b"UNA");
        let level_b = head.starts_with(b"UNB") && head.get(3) == Some(&Separators::LEVEL_B.element);
        let una = head.get(..9).and_then(|h| <[u8; 9]>::try_from(h).ok());
        if starts_una {
            let Some(una) = una else {
                self.problems.push(LexProblem {
                    tag: Some("UNA"),
                    ..LexProblem::at(
                        Code::UnaNotSupported,
                        self.offset,
                        "UNA service string advice is shorter than 9 characters",
                    )
                });
                let n = self.unread().len();
                self.advance(n);
                return Ok(self.seps);
            };
            let [_, _, _, c1, c2, c3, c4, c5, c6] = una;
            let chars = [c1, c2, c3, c4, c5, c6];
            let (seps, problems) = Separators::from_una(chars);
            for (i, problem) in problems {
                let (code, what) = match problem {
                    UnaProblem::DecimalMark => (
                        Code::InvalidDecimalNotation,
                        "the decimal mark must be '.' or ','",
                    ),
                    UnaProblem::InvalidServiceCharacter => (
                        Code::InvalidAsServiceCharacter,
                        "a letter, digit, space or control character cannot be a separator",
                    ),
                    UnaProblem::Duplicate => (
                        Code::InvalidAsServiceCharacter,
                        "the same character is advised for two purposes",
                    ),
                };
                let ch = chars.get(i).copied().unwrap_or(0);
                self.problems.push(LexProblem {
                    tag: Some("UNA"),
                    ..LexProblem::at(
                        code,
                        self.offset + 3 + i as u64,
                        format!("UNA character {} ({}): {what}", i + 1, show_byte(ch)),
                    )
                });
            }
            self.una = Some(una);
            self.seps = seps;
            self.advance(9);
            self.after_terminator = true;
        } else if level_b {
            self.seps = Separators::LEVEL_B;
        }
        self.rebuild_classes();
        Ok(self.seps)
    }

    /// Skips what may stand between segments: one line end right after a
    /// terminator silently; any other white space, blank lines or a DOS
    /// end-of-file mark with a [`Code::StrayBytes`] warning.
    fn skip_between(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.after_terminator) {
            self.want(2)?;
            let line_end = match self.unread() {
                [b'\r', b'\n', ..] => 2,
                [b'\n' | b'\r', ..] => 1,
                _ => 0,
            };
            // A terminator that is itself CR or LF is a segment, not a line end.
            if line_end > 0 && self.unread().first() != Some(&self.seps.terminator) {
                self.advance(line_end);
            }
        }
        let start = self.offset;
        let mut skipped = 0u64;
        let terminator = self.seps.terminator;
        loop {
            self.want(1)?;
            let run = self
                .unread()
                .iter()
                .take_while(|&&b| {
                    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x1A | 0) && b != terminator
                })
                .count();
            if run == 0 {
                break;
            }
            self.advance(run);
            skipped += run as u64;
            // Nothing between segments may be longer than a segment: more
            // is no interchange's padding (`/dev/zero`, a stream of blanks),
            // and the rest is not read, which would never end.
            if skipped > self.limits.max_segment_bytes as u64 {
                self.problems.push(LexProblem::at(
                    Code::NotEdifact,
                    start,
                    format!(
                        "more than {} bytes of white space or padding between segments (the \
                         limit of a segment); the rest of the input, from byte {}, was not read",
                        self.limits.max_segment_bytes, self.offset
                    ),
                ));
                self.stop();
                return Ok(());
            }
        }
        if skipped > 0 {
            self.problems.push(LexProblem::at(
                Code::StrayBytes,
                start,
                format!("{skipped} byte(s) of white space or padding between segments skipped"),
            ));
        }
        Ok(())
    }

    /// The next segment, or the end of input.
    pub fn next_segment(&mut self) -> io::Result<Next<'_>> {
        // Problems nobody collects (a caller using the lexer alone) stay bounded.
        if self.problems.len() > self.limits.max_issues {
            self.problems.truncate(self.limits.max_issues);
        }
        if let Some(body_len) = self.again.take() {
            // The segment last returned, again, split (nothing consumed yet).
            let body = self.buf.get(self.lo..self.lo + body_len).unwrap_or(&[]);
            let tag_end = split(
                body,
                self.offset,
                &self.classes,
                self.utf8,
                &mut self.spans,
                &mut self.problems,
            );
            return Ok(Next::Segment(self.segment(body_len, tag_end, true)));
        }
        let consumed = std::mem::take(&mut self.pending_consume);
        self.advance(consumed);
        self.skip_between()?;
        self.want(1)?;
        if self.unread().is_empty() {
            return Ok(Next::End);
        }
        self.position += 1;
        let seg_offset = self.offset;
        let term = self.seps.terminator;
        let release = self.seps.release;
        let max = self.limits.max_segment_bytes;
        // Scan for the terminator, stepping over released characters.
        let mut from = 0usize;
        let found: Option<usize> = loop {
            match terminator_in(self.unread(), from, term, release) {
                Ok(at) => break Some(at),
                Err(scanned) => from = scanned,
            }
            if from > max {
                return self.skip_oversized(seg_offset, from);
            }
            if !self.fill()? {
                break None;
            }
        };
        let body_len = match found {
            Some(at) => at,
            None => self.unread().len(),
        };
        if body_len > max {
            return self.skip_oversized(seg_offset, body_len);
        }
        match found {
            Some(at) => {
                self.pending_consume = at + 1;
                self.after_terminator = true;
            }
            None => {
                self.pending_consume = body_len;
                let dangling = release.is_some() && self.unread().last().copied() == release && {
                    // An odd run of release characters at the very end
                    // releases nothing.
                    let run = self
                        .unread()
                        .iter()
                        .rev()
                        .take_while(|&&b| Some(b) == release)
                        .count();
                    run % 2 == 1
                };
                if dangling {
                    self.problems.push(LexProblem::at(
                        Code::InvalidServiceCharacter,
                        seg_offset + body_len as u64 - 1,
                        "release character at the end of the input releases nothing",
                    ));
                }
                self.problems.push(LexProblem::at(
                    Code::UnterminatedSegment,
                    seg_offset + body_len as u64,
                    "input ends inside a segment: segment terminator missing",
                ));
            }
        }
        if self.position == 1 {
            self.configure_from_unb(body_len);
        }
        let lo = self.lo;
        let body = self.buf.get(lo..lo + body_len).unwrap_or(&[]);
        let service = body.starts_with(b"UN");
        let deferred = self.defer_data && !self.split_data && !service;
        let tag_end = if deferred {
            // Checked by the caller (see `defer_data_segments`); the tag
            // ends where `split` would end it.
            self.spans.comps.clear();
            self.spans.reps.clear();
            self.spans.elems.clear();
            memchr(self.seps.element, body).unwrap_or(body.len())
        } else if self.split_data || service {
            split(
                body,
                seg_offset,
                &self.classes,
                self.utf8,
                &mut self.spans,
                &mut self.problems,
            )
        } else {
            check_unsplit(
                body,
                seg_offset,
                &self.classes,
                self.utf8,
                &mut self.spans,
                &mut self.problems,
            )
        };
        // Nothing is consumed before the next call: the segment starts at
        // `seg_offset`, the window's first unread byte.
        Ok(Next::Segment(self.segment(body_len, tag_end, !deferred)))
    }

    /// The segment whose body is the first `body_len` unread bytes, with
    /// the spans and problems the lexer holds for it.
    fn segment(&self, body_len: usize, tag_end: usize, split: bool) -> RawSegment<'_> {
        RawSegment {
            body: self.buf.get(self.lo..self.lo + body_len).unwrap_or(&[]),
            tag_end,
            spans: &self.spans,
            release: self.seps.release,
            classes: &self.ascii_classes,
            split,
            charset: self.charset,
            offset: self.offset,
            position: self.position,
            problems: !self.problems.is_empty(),
        }
    }

    /// Segments returned or skipped so far (the position of the last one).
    pub fn position(&self) -> u32 {
        self.position
    }

    /// In check mode (data segments not split), consumes the run of data
    /// segments ahead that are plainly valid, 64 bytes at a time with the
    /// block [`Scanner`], and returns how many it consumed. A segment is
    /// consumed only when the scanner proves that [`Lexer::next_segment`]
    /// would return it with no problem: a tag of three upper-case letters or
    /// digits not starting with `UN`, only printable characters of the
    /// repertoire, release characters only before service characters, no
    /// separator before a data element separator or the terminator, within
    /// the size limit, and at most one line end after it. It stops before
    /// anything else (a service segment, anything unusual, the end of the
    /// input), where `next_segment` goes on exactly as if this had not been
    /// called. Does nothing when data segments are split or the separators
    /// do not suit the scanner.
    pub fn skip_clean_data(&mut self) -> io::Result<u32> {
        if self.split_data {
            return Ok(0);
        }
        let Some(mut scanner) = self.scanner.take() else {
            return Ok(0);
        };
        let consumed = std::mem::take(&mut self.pending_consume);
        self.advance(consumed);
        let mut total = 0u32;
        let result = loop {
            if self.after_terminator {
                if let Err(e) = self.want(2) {
                    break Err(e);
                }
                let line_end = match self.unread() {
                    [b'\r', b'\n', ..] => 2,
                    [b'\n' | b'\r', ..] => 1,
                    _ => 0,
                };
                self.advance(line_end);
                self.after_terminator = false;
            }
            scanner.reset();
            let (n, unclean) = self.scan_run(&mut scanner);
            total = total.saturating_add(n);
            if unclean || n == 0 {
                break Ok(());
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.scanner = Some(scanner);
        self.position = self.position.saturating_add(total);
        result.map(|()| total)
    }

    /// With deferred data segments ([`Lexer::defer_data_segments`]): hands
    /// the data segments ahead to `accept`, one at a time, as their tag and
    /// [`Values`], and consumes each it accepts (true). Returns how many.
    /// `accept` answers true only when the walk reached the end of the
    /// segment's values, which proves the segment free of syntax problems.
    /// Stops, consuming nothing more, before the first segment `accept`
    /// refuses or that [`Lexer::next_segment`] must see: a tag that is not
    /// three upper-case letters or digits or starts with `UN`, anything but
    /// one line end between segments, a segment over the size limit or cut
    /// off by the end of the input. `next_segment` then goes on exactly as
    /// if this had not been called.
    pub fn accept_data(
        &mut self,
        mut accept: impl FnMut(&[u8], Values<'_>) -> bool,
    ) -> io::Result<u32> {
        if !self.defer_data || self.split_data || self.again.is_some() {
            return Ok(0);
        }
        let consumed = std::mem::take(&mut self.pending_consume);
        self.advance(consumed);
        let mut count = 0u32;
        loop {
            let (used, outcome) = self.accept_in_window(&mut accept);
            count += outcome.accepted;
            self.position += outcome.accepted;
            self.advance(used);
            self.after_terminator = outcome.after_terminator;
            // Only a segment cut off by the end of the window reads more.
            if !outcome.needs_input || self.unread().len() > self.limits.max_segment_bytes {
                return Ok(count);
            }
            let before = self.unread().len();
            if !self.fill()? || self.unread().len() == before {
                return Ok(count);
            }
        }
    }

    /// [`Lexer::accept_data`] within the bytes already read: how many of
    /// them it consumed, and how it stopped.
    fn accept_in_window(
        &self,
        accept: &mut impl FnMut(&[u8], Values<'_>) -> bool,
    ) -> (usize, Accepted) {
        let window = self.unread();
        let (term, element, release) = (self.seps.terminator, self.seps.element, self.seps.release);
        let max = self.limits.max_segment_bytes;
        let mut at = 0usize;
        let mut outcome = Accepted {
            accepted: 0,
            after_terminator: self.after_terminator,
            needs_input: false,
        };
        loop {
            let rest = window.get(at..).unwrap_or(&[]);
            if outcome.after_terminator {
                let line_end = match rest {
                    [b'\r', b'\n', ..] => 2,
                    // The window ends before the line end can be told.
                    [] | [b'\r'] if !self.eof => {
                        outcome.needs_input = true;
                        return (at, outcome);
                    }
                    [b'\n' | b'\r', ..] => 1,
                    _ => 0,
                };
                // A terminator that is itself CR or LF is a segment.
                if line_end > 0 && rest.first() != Some(&term) {
                    at += line_end;
                }
                outcome.after_terminator = false;
                continue;
            }
            // The terminator, stepping over released characters.
            let end = match terminator_in(rest, 0, term, release) {
                Ok(end) if end <= max => end,
                Ok(_) => return (at, outcome),
                Err(_) => {
                    outcome.needs_input = !self.eof;
                    return (at, outcome);
                }
            };
            let body = rest.get(..end).unwrap_or(&[]);
            if !plain_data_tag(body, element) {
                return (at, outcome);
            }
            let values = Values::after_tag(body, 3, &self.ascii_classes, release);
            if !accept(body.get(..3).unwrap_or(&[]), values) {
                return (at, outcome);
            }
            at += end + 1;
            outcome.accepted += 1;
            outcome.after_terminator = true;
        }
    }

    /// Consumes the plainly valid data segments that lie wholly in the
    /// window. Returns how many, and whether it stopped at a segment that
    /// needs the exact lexer (rather than at the end of the window).
    fn scan_run(&mut self, scanner: &mut Scanner) -> (u32, bool) {
        let window = self.buf.get(self.lo..self.hi).unwrap_or(&[]);
        let max = self.limits.max_segment_bytes;
        let element = self.seps.element;
        let eof = self.eof;
        let mut seg_start = 0usize;
        // Attention bits of the open segment in earlier blocks.
        let mut dirty = false;
        let mut count = 0u32;
        let mut base = 0usize;
        let mut unclean = false;
        let mut partial_line_end = false;
        'blocks: while base < window.len() {
            let rest = window.get(base..).unwrap_or(&[]);
            let block = match rest.get(..64).and_then(|b| <&[u8; 64]>::try_from(b).ok()) {
                Some(full) => scanner.next_block(full),
                None => {
                    let mut padded = [0u8; 64];
                    if let Some(head) = padded.get_mut(..rest.len()) {
                        head.copy_from_slice(rest);
                    }
                    scanner.next_block(&padded)
                }
            };
            let valid = if rest.len() >= 64 {
                u64::MAX
            } else {
                (1u64 << rest.len()) - 1
            };
            let mut terminators = block.terminators & valid;
            while terminators != 0 {
                let bit = terminators.trailing_zeros() as usize;
                let end = base + bit;
                let from = seg_start.saturating_sub(base);
                let span = (u64::MAX << from) & (u64::MAX >> (63 - bit));
                let clean = !dirty
                    && block.attention & span == 0
                    && window
                        .get(seg_start..end)
                        .is_some_and(|body| body.len() <= max && plain_data_tag(body, element));
                if !clean {
                    unclean = true;
                    break 'blocks;
                }
                count += 1;
                // One line end may follow the terminator; when the window
                // ends before it can be told, `next_segment` decides.
                let next = end + 1;
                seg_start = match (window.get(next), window.get(next + 1)) {
                    (Some(b'\r'), Some(b'\n')) => next + 2,
                    (None, _) | (Some(b'\r'), None) if !eof => {
                        seg_start = next;
                        partial_line_end = true;
                        break 'blocks;
                    }
                    (Some(b'\r' | b'\n'), _) => next + 1,
                    _ => next,
                };
                dirty = false;
                terminators &= terminators - 1;
            }
            if seg_start < base + 64 {
                let from = seg_start.saturating_sub(base);
                dirty |= block.attention & valid & (u64::MAX << from) != 0;
            }
            base += 64;
        }
        self.advance(seg_start);
        if partial_line_end {
            self.after_terminator = true;
        }
        (count, unclean)
    }

    /// Reads the syntax identifier and version from UNB S001 before the UNB
    /// is split, so that the repertoire and the repetition separator of
    /// syntax version 4 apply to the whole interchange, UNB included.
    fn configure_from_unb(&mut self, body_len: usize) {
        let body = self.buf.get(self.lo..self.lo + body_len).unwrap_or(&[]);
        let seps = self.seps;
        let Some(rest) = body
            .strip_prefix(b"UNB")
            .and_then(|r| r.strip_prefix(&[seps.element]))
        else {
            return;
        };
        let s001 = rest.split(|&b| b == seps.element).next().unwrap_or(&[]);
        let mut parts = s001.split(|&b| b == seps.component);
        let id = parts.next().unwrap_or(&[]);
        let version = parts.next().unwrap_or(&[]);
        let id = std::str::from_utf8(id).unwrap_or("");
        self.syntax = Some((id.to_owned(), version.first().copied().unwrap_or(0)));
        // An unsupported identifier is reported by the parser; Latin-1 keeps
        // every byte readable meanwhile.
        let charset = Charset::from_syntax_identifier(id).unwrap_or(Charset::Iso8859(1));
        let mut new = seps;
        if version == b"4" {
            new.repetition = match (self.una, charset) {
                (Some(_), _) => seps.repetition,
                (None, Charset::LevelB) if seps == Separators::LEVEL_B => Some(0x1E),
                (None, _) => Some(b'*'),
            };
        } else {
            new.repetition = None;
        }
        self.configure(new, charset);
    }

    /// The syntax identifier and version byte found in UNB S001, if any.
    pub fn syntax(&self) -> Option<(&str, u8)> {
        self.syntax.as_ref().map(|(id, v)| (id.as_str(), *v))
    }

    /// Discards an oversized segment up to its terminator without keeping it.
    fn skip_oversized(&mut self, seg_offset: u64, scanned: usize) -> io::Result<Next<'_>> {
        let term = self.seps.terminator;
        let release = self.seps.release;
        // Skipped to its terminator so that the rest is checked, but not
        // without end: a segment this much over the limit is no segment
        // (a stream without terminators), and the rest is not read.
        let give_up = self.limits.max_segment_bytes.saturating_mul(SKIP_FACTOR) as u64;
        // `scanned` never ends between a release character and the byte it
        // releases (the scan stops on the release character itself).
        let drop = scanned.min(self.unread().len());
        self.advance(drop);
        let mut ended = false;
        loop {
            match terminator_in(self.unread(), 0, term, release) {
                Ok(at) => {
                    self.advance(at + 1);
                    self.after_terminator = true;
                    ended = true;
                    break;
                }
                // Never past a release character whose byte is still to come.
                Err(scanned) => self.advance(scanned),
            }
            if self.offset - seg_offset > give_up {
                break;
            }
            if !self.fill()? {
                let rest = self.unread().len();
                self.advance(rest);
                ended = true;
                break;
            }
        }
        let length = self.offset - seg_offset;
        let detail = if ended {
            format!(
                "segment of {length} bytes exceeds the limit of {} bytes and was skipped",
                self.limits.max_segment_bytes
            )
        } else {
            let at = self.offset;
            self.stop();
            format!(
                "segment without a terminator in its first {length} bytes ({SKIP_FACTOR} times \
                 the limit of {} bytes); the rest of the input, from byte {at}, was not read",
                self.limits.max_segment_bytes
            )
        };
        self.problems
            .push(LexProblem::at(Code::SegmentTooLarge, seg_offset, detail));
        Ok(Next::Oversized {
            offset: seg_offset,
            position: self.position,
            length,
        })
    }
}

/// True when segment `body` (terminator excluded) starts with the tag of a
/// data segment the fast paths may take: three upper-case letters or
/// digits, not `UN`, followed by a data element separator or nothing.
fn plain_data_tag(body: &[u8], element: u8) -> bool {
    match body {
        [a, b, c, rest @ ..] => {
            [a, b, c]
                .iter()
                .all(|t| t.is_ascii_uppercase() || t.is_ascii_digit())
                && [*a, *b] != *b"UN"
                && rest.first().is_none_or(|&sep| sep == element)
        }
        _ => false,
    }
}

/// The position of the first unreleased terminator in `window` at or after
/// `from`, or how far the window was searched when it holds none.
#[inline]
fn terminator_in(
    window: &[u8],
    mut from: usize,
    term: u8,
    release: Option<u8>,
) -> Result<usize, usize> {
    loop {
        let rest = window.get(from..).unwrap_or(&[]);
        let hit = match release {
            Some(r) => memchr2(term, r, rest),
            None => memchr(term, rest),
        };
        let Some(j) = hit else {
            return Err(window.len());
        };
        let at = from + j;
        if window.get(at) == Some(&term) {
            return Ok(at);
        }
        // A release character: it and the byte it releases are skipped.
        if at + 1 >= window.len() {
            return Err(at);
        }
        from = at + 2;
    }
}

/// Checks a segment without recording spans: fast scans for what `split`
/// would report (characters outside the repertoire, release characters
/// before ordinary characters, trailing separators, invalid UTF-8). When a
/// scan finds anything, the segment is split after all, so that problems are
/// located exactly as `split` locates them. Returns the length of the tag.
fn check_unsplit(
    body: &[u8],
    offset: u64,
    classes: &[u8; 256],
    utf8: bool,
    spans: &mut Spans,
    problems: &mut Vec<LexProblem>,
) -> usize {
    // One pass over the byte classes (segments are short: a tight loop beats
    // several vector scans). Anything unusual — a character outside the
    // repertoire, a release character, a separator before an element
    // separator or at the end, bad UTF-8 — sends the segment to `split`,
    // which reports it exactly.
    let mut tag_end = None;
    let mut prev = ELEMENT;
    let mut unusual = false;
    for (i, &b) in body.iter().enumerate() {
        let class = classes[b as usize];
        match class {
            DATA => {}
            ELEMENT => {
                if tag_end.is_none() {
                    tag_end = Some(i);
                } else if prev == COMPONENT || prev == REPETITION {
                    unusual = true;
                    break;
                }
            }
            COMPONENT | REPETITION => {}
            _ => {
                unusual = true;
                break;
            }
        }
        prev = class;
    }
    if unusual
        || matches!(prev, COMPONENT | REPETITION) && !body.is_empty()
        || prev == ELEMENT && !body.is_empty()
        || utf8 && std::str::from_utf8(body).map_or(true, |t| outside_utf8_repertoire(t).is_some())
    {
        return split(body, offset, classes, utf8, spans, problems);
    }
    spans.comps.clear();
    spans.reps.clear();
    spans.elems.clear();
    tag_end.unwrap_or(body.len())
}

/// Splits a segment body into spans; records invalid characters. Returns the
/// length of the tag.
fn split(
    body: &[u8],
    offset: u64,
    classes: &[u8; 256],
    utf8: bool,
    spans: &mut Spans,
    problems: &mut Vec<LexProblem>,
) -> usize {
    spans.comps.clear();
    spans.reps.clear();
    spans.elems.clear();
    let len = body.len();
    let mut i = 0usize;
    // The tag runs to the first data element separator.
    let mut tag_end = len;
    while i < len {
        let b = body.get(i).copied().unwrap_or(0);
        match classes.get(b as usize).copied().unwrap_or(INVALID) {
            ELEMENT => {
                tag_end = i;
                break;
            }
            INVALID | COMPONENT | REPETITION | RELEASE => {
                // Reported by the parser as an invalid tag.
            }
            _ => {}
        }
        i += 1;
    }
    if tag_end < len {
        let mut elem: u16 = 1;
        let mut rep: u16 = 1;
        let mut comp: u16 = 1;
        let mut start = tag_end + 1;
        let mut escaped = false;
        let mut prev_sep = true;
        let mut trailing_reported = false;
        spans.elems.push(0);
        spans.reps.push(0);
        i = start;
        while i < len {
            // Fast path: a run of ordinary data bytes (most of any segment).
            let run = body
                .get(i..)
                .unwrap_or(&[])
                .iter()
                .position(|&b| classes[b as usize] != DATA)
                .unwrap_or(len - i);
            if run > 0 {
                prev_sep = false;
                i += run;
                if i >= len {
                    break;
                }
            }
            let b = body.get(i).copied().unwrap_or(0);
            let class = classes[b as usize];
            match class {
                DATA | TERMINATOR => {
                    prev_sep = false;
                    i += 1;
                }
                RELEASE => {
                    escaped = true;
                    prev_sep = false;
                    if let Some(&next) = body.get(i + 1) {
                        let next_class = classes.get(next as usize).copied().unwrap_or(INVALID);
                        if next_class == INVALID && !utf8_continuation(utf8, next) {
                            problems.push(invalid_char(
                                offset + i as u64 + 1,
                                next,
                                elem,
                                rep,
                                comp,
                            ));
                        } else if next_class == DATA || utf8_continuation(utf8, next) {
                            problems.push(LexProblem {
                                code: Code::InvalidServiceCharacter,
                                offset: offset + i as u64,
                                element: Some(elem),
                                repetition: Some(rep),
                                component: Some(comp),
                                detail: format!(
                                    "release character before {}, which is not a service character; taken literally",
                                    show_byte(next)
                                ),
                                warning: true,
                                tag: None,
                            });
                        }
                    }
                    i += 2;
                }
                INVALID => {
                    // One issue per component: the first offending byte.
                    let seen = problems.last().is_some_and(|p| {
                        p.code == Code::InvalidCharacter
                            && p.offset >= offset
                            && (p.element, p.repetition, p.component)
                                == (Some(elem), Some(rep), Some(comp))
                    });
                    if !(seen || utf8 && b >= 0x80) {
                        problems.push(invalid_char(offset + i as u64, b, elem, rep, comp));
                    }
                    prev_sep = false;
                    i += 1;
                }
                sep => {
                    spans.comps.push(Span {
                        start: start as u32,
                        end: i as u32,
                        escaped,
                    });
                    escaped = false;
                    // The places stop at their largest (as the element's
                    // does): a segment of 65,536 separators is reported,
                    // never an overflow.
                    match sep {
                        COMPONENT => comp = comp.saturating_add(1),
                        REPETITION => {
                            rep = rep.saturating_add(1);
                            comp = 1;
                            spans.reps.push(spans.comps.len() as u32);
                        }
                        _ => {
                            let prev = body.get(i.wrapping_sub(1)).copied();
                            let prev_class = prev.and_then(|p| classes.get(p as usize).copied());
                            if matches!(prev_class, Some(COMPONENT) | Some(REPETITION))
                                && !released_at(body, i - 1, classes)
                                && !trailing_reported
                            {
                                problems.push(trailing(offset + i as u64 - 1, elem));
                                trailing_reported = true;
                            }
                            elem = elem.saturating_add(1);
                            rep = 1;
                            comp = 1;
                            spans.reps.push(spans.comps.len() as u32);
                            spans.elems.push(spans.reps.len() as u32 - 1);
                        }
                    }
                    prev_sep = true;
                    i += 1;
                    start = i;
                }
            }
        }
        spans.comps.push(Span {
            start: start.min(len) as u32,
            end: len as u32,
            escaped,
        });
        if prev_sep && len > 0 && !trailing_reported {
            problems.push(trailing(offset + len as u64 - 1, elem));
        }
    }
    let text = if utf8 {
        Some(std::str::from_utf8(body))
    } else {
        None
    };
    match text {
        Some(Err(e)) => {
            let at = e.valid_up_to();
            let b = body.get(at).copied().unwrap_or(0);
            problems.push(LexProblem::at(
                Code::InvalidCharacter,
                offset + at as u64,
                format!(
                    "byte {} does not start a valid UTF-8 sequence",
                    show_byte(b)
                ),
            ));
        }
        Some(Ok(text)) => {
            if let Some((at, c)) = outside_utf8_repertoire(text) {
                problems.push(LexProblem::at(
                    Code::InvalidCharacter,
                    offset + at as u64,
                    format!(
                        "character U+{:04X} is a control character or a noncharacter, not in the repertoire (ISO 9735 repertoires hold graphic characters and space)",
                        c as u32
                    ),
                ));
            }
        }
        None => {}
    }
    tag_end
}

/// The first character of a segment's `text` (read as UTF-8) that no
/// UN/EDIFACT repertoire holds although its bytes pass the byte table
/// (which lets every byte of a multi-byte sequence through), with its byte
/// offset: a C1 control (U+0080 to U+009F) or the noncharacters U+FFFE
/// and U+FFFF. (C0 controls and DEL are refused by the byte table.) What
/// [`Charset::encode`] refuses to write is refused when read.
fn outside_utf8_repertoire(text: &str) -> Option<(usize, char)> {
    if text.is_ascii() {
        return None;
    }
    text.char_indices()
        .find(|(_, c)| c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}'))
}

fn utf8_continuation(utf8: bool, b: u8) -> bool {
    utf8 && b >= 0x80
}

/// True when the byte at `i` is preceded by an odd run of release characters.
fn released_at(body: &[u8], i: usize, classes: &[u8; 256]) -> bool {
    let run = body
        .get(..i)
        .unwrap_or(&[])
        .iter()
        .rev()
        .take_while(|&&b| classes.get(b as usize).copied() == Some(RELEASE))
        .count();
    run % 2 == 1
}

fn invalid_char(offset: u64, b: u8, elem: u16, rep: u16, comp: u16) -> LexProblem {
    LexProblem {
        code: Code::InvalidCharacter,
        offset,
        element: Some(elem),
        repetition: Some(rep),
        component: Some(comp),
        detail: format!(
            "character {} is not in the repertoire of the syntax level (first such character of the component)",
            show_byte(b)
        ),
        warning: false,
        tag: None,
    }
}

fn trailing(offset: u64, elem: u16) -> LexProblem {
    LexProblem {
        code: Code::TrailingSeparator,
        offset,
        element: Some(elem),
        repetition: None,
        component: None,
        detail: "separator before the segment terminator or data element separator: empty trailing constituents must be omitted".into(),
        warning: true,
        tag: None,
    }
}

pub(crate) fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("0x{b:02X}")
    }
}
