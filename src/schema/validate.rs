//! Structure validation of one message against its segment table and the
//! segment directory and code lists of its release.
//!
//! The validator is fed the message's segments one at a time (UNH first,
//! UNT last) and keeps only a stack of open segment groups, so memory does
//! not depend on the message size. Segments are matched greedily, as the
//! directories intend: a segment belongs to the first position, at or after
//! the current one in the current group or any enclosing group, whose tag
//! (or whose group's trigger segment) it carries. A segment that fits
//! nowhere is reported and skipped without moving, so one stray segment
//! yields one issue, not a cascade.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashSet;

use super::{
    Change, CodeList, Directories, ElementDef, ElementKind, Format, FormatClass, MessageDef, Node,
    Relaxation, Release, SegmentDef, Status, service,
};
use crate::diag::Code;
use crate::edifact::lexer::unescaped;
use crate::edifact::{RawSegment, Sep, ValueSink, Values};

/// Read access to one segment's values, implemented by the lexer's
/// borrowed segments and by decoded [`crate::edifact::Segment`]s.
pub trait SegmentView {
    fn tag_bytes(&self) -> &[u8];
    fn element_count(&self) -> usize;
    fn repetition_count(&self, e: usize) -> usize;
    fn component_count(&self, e: usize, r: usize) -> usize;
    /// The value of a component, release characters removed, decoded.
    fn value(&self, e: usize, r: usize, c: usize) -> Option<Cow<'_, str>>;
    /// The length in bytes of a component as written (0: empty), without
    /// decoding it.
    fn raw_len(&self, e: usize, r: usize, c: usize) -> Option<usize> {
        self.value(e, r, c).map(|v| v.len())
    }
    /// The segment as the lexer holds it, when it is one: only such
    /// segments (every data segment of a message) get the fast check.
    fn as_raw(&self) -> Option<&crate::edifact::RawSegment<'_>> {
        None
    }
}

impl SegmentView for crate::edifact::Segment {
    fn tag_bytes(&self) -> &[u8] {
        self.tag.as_bytes()
    }
    fn element_count(&self) -> usize {
        self.elements.len()
    }
    fn repetition_count(&self, e: usize) -> usize {
        self.elements.get(e).map_or(0, |el| el.repetitions().len())
    }
    fn component_count(&self, e: usize, r: usize) -> usize {
        self.elements
            .get(e)
            .and_then(|el| el.repetitions().get(r))
            .map_or(0, Vec::len)
    }
    fn value(&self, e: usize, r: usize, c: usize) -> Option<Cow<'_, str>> {
        self.elements
            .get(e)?
            .repetitions()
            .get(r)?
            .get(c)
            .map(|s| Cow::Borrowed(s.as_str()))
    }
}

impl SegmentView for crate::edifact::RawSegment<'_> {
    fn tag_bytes(&self) -> &[u8] {
        self.tag()
    }
    fn element_count(&self) -> usize {
        crate::edifact::RawSegment::element_count(self)
    }
    fn repetition_count(&self, e: usize) -> usize {
        crate::edifact::RawSegment::repetition_count(self, e)
    }
    fn component_count(&self, e: usize, r: usize) -> usize {
        self.components_in(e, r)
    }
    fn raw_len(&self, e: usize, r: usize, c: usize) -> Option<usize> {
        self.raw(e, r, c).map(<[u8]>::len)
    }
    fn as_raw(&self) -> Option<&crate::edifact::RawSegment<'_>> {
        Some(self)
    }
    fn value(&self, e: usize, r: usize, c: usize) -> Option<Cow<'_, str>> {
        let bytes = self.value_bytes(e, r, c)?;
        Some(match bytes {
            Cow::Borrowed(b) => self.charset.decode(b),
            Cow::Owned(b) => Cow::Owned(self.charset.decode(&b).into_owned()),
        })
    }
}

/// One problem the validator found. Positions are 1-based; `element`,
/// `repetition` and `component` are set when the problem is inside the
/// segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub code: Code,
    pub warning: bool,
    /// Segment group path where the problem lies, e.g. `SG6/SG7`.
    pub group_path: String,
    pub element: Option<u16>,
    pub repetition: Option<u16>,
    pub component: Option<u16>,
    pub message: String,
    /// What is missing, for a mandatory segment (its tag) or segment group
    /// (`SG7`) that is not there: the finding is placed at the segment
    /// after the gap.
    pub missing: Option<String>,
}

/// A message's segment table flattened into an arena, built once per
/// message definition.
#[derive(Debug)]
pub(crate) struct Flat {
    nodes: Vec<FlatNode>,
}

#[derive(Debug)]
struct FlatNode {
    /// The segment tag, or the group's trigger segment tag.
    tag: String,
    /// The same tag as bytes, for fast comparison (tags have three
    /// characters).
    key: [u8; 3],
    /// The tag has three characters (only then can a segment repeat it).
    keyed: bool,
    /// Segment group number; 0 for segments and for the message itself.
    group: u16,
    is_group: bool,
    status: Status,
    max: u32,
    children: Vec<usize>,
    /// The children as the table walk reads them, in order (scanned for
    /// the next place of a tag).
    kids: Vec<Kid>,
    /// `tails[i]`: the [`key_bit`]s of the keys of children `i..` (a key
    /// whose bit is not set is not among them: no scan needed).
    tails: Vec<u64>,
    /// `missing[i]`: how many of the first `i` children are reported when
    /// missing (mandatory, and not UNT).
    missing: Vec<u32>,
    /// The segment's checks, resolved on first use: for syntax version 4
    /// and later, and for versions below 4.
    plans: [OnceLock<Option<Arc<Plan>>>; 2],
    /// What an implementation guide changes in this segment, here
    /// ([`Change::Component`], [`Change::Positions`]).
    changes: Vec<Change>,
}

/// One child of a group, as the table walk compares it.
#[derive(Debug, Clone, Copy)]
struct Kid {
    /// The child's tag (a group's: its trigger segment's).
    key: [u8; 3],
    /// A segment with a three-character tag: a segment can repeat it.
    repeats: bool,
    is_group: bool,
    max: u32,
    /// The child's node.
    id: usize,
}

impl Flat {
    pub(crate) fn new(def: &MessageDef) -> Flat {
        let mut flat = Flat {
            nodes: vec![FlatNode {
                tag: String::new(),
                key: [0; 3],
                keyed: false,
                group: 0,
                is_group: true,
                status: Status::Mandatory,
                max: 1,
                children: Vec::new(),
                kids: Vec::new(),
                tails: Vec::new(),
                missing: Vec::new(),
                plans: Default::default(),
                changes: Vec::new(),
            }],
        };
        let children = flat.add(&def.nodes, 0, &def.relaxations);
        if let Some(root) = flat.nodes.first_mut() {
            root.children = children;
        }
        flat.index();
        flat
    }

    /// Fills in each group's child keys and missing counts.
    fn index(&mut self) {
        for id in 0..self.nodes.len() {
            let Some(node) = self.nodes.get(id) else {
                continue;
            };
            let mut kids = Vec::with_capacity(node.children.len());
            let mut missing = Vec::with_capacity(node.children.len() + 1);
            missing.push(0u32);
            let mut count = 0u32;
            for &child in &node.children {
                let Some(c) = self.nodes.get(child) else {
                    continue;
                };
                let reported = c.status == Status::Mandatory && (c.is_group || c.tag != "UNT");
                kids.push(Kid {
                    key: c.key,
                    repeats: !c.is_group && c.keyed,
                    is_group: c.is_group,
                    max: c.max,
                    id: child,
                });
                count += u32::from(reported);
                missing.push(count);
            }
            if let Some(node) = self.nodes.get_mut(id) {
                let mut tails = vec![0u64; kids.len() + 1];
                for (i, kid) in kids.iter().enumerate().rev() {
                    let after = tails.get(i + 1).copied().unwrap_or(0);
                    if let Some(t) = tails.get_mut(i) {
                        *t = after | key_bit(kid.key);
                    }
                }
                node.kids = kids;
                node.tails = tails;
                node.missing = missing;
            }
        }
    }

    fn add(&mut self, nodes: &[Node], group: u16, relaxations: &[Relaxation]) -> Vec<usize> {
        let mut ids = Vec::with_capacity(nodes.len());
        for node in nodes {
            let id = self.nodes.len();
            let changes = match node {
                Node::Segment { tag, .. } => relaxations
                    .iter()
                    .filter(|r| r.group == group && r.tag == tag)
                    .map(|r| r.change)
                    .filter(|c| matches!(c, Change::Component(..) | Change::Positions(_)))
                    .collect(),
                Node::Group { .. } => Vec::new(),
            };
            self.nodes.push(FlatNode {
                tag: node.trigger().to_owned(),
                key: tag_key(node.trigger().as_bytes()),
                keyed: node.trigger().len() == 3,
                group: match node {
                    Node::Group { number, .. } => *number,
                    Node::Segment { .. } => 0,
                },
                is_group: matches!(node, Node::Group { .. }),
                status: node.status(),
                max: match node {
                    Node::Segment { max, .. } | Node::Group { max, .. } => *max,
                },
                children: Vec::new(),
                kids: Vec::new(),
                tails: Vec::new(),
                missing: Vec::new(),
                plans: Default::default(),
                changes,
            });
            if let Node::Group {
                number, children, ..
            } = node
            {
                let kids = self.add(children, *number, relaxations);
                if let Some(n) = self.nodes.get_mut(id) {
                    n.children = kids;
                }
            }
            ids.push(id);
        }
        ids
    }

    fn node(&self, id: usize) -> Option<&FlatNode> {
        self.nodes.get(id)
    }

    fn child(&self, group: usize, pos: usize) -> Option<(usize, &FlatNode)> {
        let id = *self.node(group)?.children.get(pos)?;
        Some((id, self.node(id)?))
    }
}

/// The codes of one code list as a compact set of byte strings: codes of
/// up to seven bytes packed with their length into one integer, longer ones
/// kept as they are.
#[derive(Debug, Default)]
pub(crate) struct CodeSet {
    short: FxHashSet<u64>,
    long: FxHashSet<Box<[u8]>>,
}

impl CodeSet {
    pub(crate) fn new(list: &CodeList) -> CodeSet {
        let mut set = CodeSet::default();
        for code in &list.codes {
            match pack(code.as_bytes()) {
                Some(key) => {
                    set.short.insert(key);
                }
                None => {
                    set.long.insert(code.as_bytes().into());
                }
            }
        }
        set
    }

    #[inline]
    fn contains(&self, value: &[u8]) -> bool {
        match pack(value) {
            Some(key) => self.short.contains(&key),
            None => self.long.contains(value),
        }
    }
}

/// Up to seven bytes and their length in one integer (distinct byte
/// strings give distinct integers).
#[inline]
fn pack(bytes: &[u8]) -> Option<u64> {
    if bytes.len() > 7 {
        return None;
    }
    // Byte by byte: codes are short, and a copy of variable length would
    // be a call.
    let mut word = (bytes.len() as u64) << 56;
    for (i, &b) in bytes.iter().enumerate() {
        word |= u64::from(b) << (8 * i);
    }
    Some(word)
}

/// A segment definition as the validator's fast check reads it: for each
/// element and component the facts a value is checked against, code lists
/// as [`CodeSet`]s. Built once per release, tag and syntax version.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The definition the exact checks (and their messages) use.
    def: Arc<SegmentDef>,
    elements: Vec<ElementPlan>,
    /// One past the last mandatory element (0: none).
    required: usize,
}

#[derive(Debug)]
struct ElementPlan {
    mandatory: bool,
    /// Repetitions allowed.
    max: usize,
    kind: KindPlan,
}

#[derive(Debug)]
enum KindPlan {
    Simple(ValuePlan),
    Composite {
        components: Vec<ValuePlan>,
        /// Positions of code list responsible agency components (3055).
        agencies: Vec<usize>,
        /// One past the last mandatory component (0: none).
        required: usize,
    },
}

#[derive(Debug)]
struct ValuePlan {
    class: FormatClass,
    min: usize,
    max: usize,
    mandatory: bool,
    /// The code list the value must be in, when there is one to check.
    codes: Option<Arc<CodeSet>>,
    /// Checked against its code list even when the composite names an
    /// agency other than UN/ECE (3055 and 1131 themselves).
    own_list: bool,
    /// The code list responsible agency (3055).
    agency: bool,
}

impl ValuePlan {
    fn new(
        format: Format,
        status: Status,
        id: &str,
        coded: bool,
        codes: &dyn Fn(&str) -> Option<Arc<CodeSet>>,
    ) -> ValuePlan {
        ValuePlan {
            class: format.class,
            min: usize::from(format.min),
            max: usize::from(format.max),
            mandatory: status == Status::Mandatory,
            codes: if coded { codes(id) } else { None },
            own_list: id == "3055" || id == "1131",
            agency: id == "3055",
        }
    }

    /// True when `value` (release characters removed) passes the checks
    /// of [`MessageValidator::check_value`]; false when they would find
    /// something or the value is not ASCII.
    #[inline(always)]
    fn accepts(&self, value: &[u8], decimal: Option<u8>, lists: bool) -> bool {
        value.is_ascii() && self.accepts_ascii(value, decimal, lists)
    }

    /// [`ValuePlan::accepts`] for a value known to be ASCII.
    #[inline(always)]
    fn accepts_ascii(&self, value: &[u8], decimal: Option<u8>, lists: bool) -> bool {
        // The commonest class first, cheapest test first.
        let length = match self.class {
            FormatClass::AlphaNumeric => value.len(),
            FormatClass::Numeric => {
                let body = value.strip_prefix(b"-").unwrap_or(value);
                let mut marks = 0;
                let mut digits = 0;
                for &b in body {
                    if b.is_ascii_digit() {
                        digits += 1;
                    } else if Some(b) == decimal && marks == 0 {
                        marks += 1;
                    } else {
                        return false;
                    }
                }
                // ISO 9735: a digit on each side of a decimal mark.
                if digits == 0
                    || (marks > 0
                        && (body.first() == decimal.as_ref() || body.last() == decimal.as_ref()))
                {
                    return false;
                }
                digits
            }
            FormatClass::Alpha => {
                if value.iter().any(u8::is_ascii_digit) {
                    return false;
                }
                value.len()
            }
        };
        if length > self.max || length < self.min {
            return false;
        }
        match &self.codes {
            Some(codes) if lists => codes.contains(value),
            _ => true,
        }
    }
}

impl Plan {
    /// This plan with the segment changed as an implementation guide uses
    /// it (`changes`: components made conditional, a repeating element
    /// written as positions).
    fn relaxed(&self, changes: &[Change], codes: &dyn Fn(&str) -> Option<Arc<CodeSet>>) -> Plan {
        let mut def = (*self.def).clone();
        for change in changes {
            match *change {
                Change::Component(composite, component) => {
                    for element in def.elements.iter_mut().filter(|e| e.id == composite) {
                        if let ElementKind::Composite(components) = &mut element.kind {
                            for c in components.iter_mut().filter(|c| c.id == component) {
                                c.status = Status::Conditional;
                            }
                        }
                    }
                }
                Change::Positions(id) => def = def.with_positions(id),
                Change::Conditional | Change::Repeat(_) => {}
            }
        }
        Plan::new(Arc::new(def), codes)
    }

    /// `codes` gives the code set of a coded element (`None`: not
    /// checked).
    pub(crate) fn new(def: Arc<SegmentDef>, codes: &dyn Fn(&str) -> Option<Arc<CodeSet>>) -> Plan {
        let elements = def
            .elements
            .iter()
            .map(|ed| ElementPlan {
                mandatory: ed.status == Status::Mandatory,
                max: usize::from(ed.max.max(1)),
                kind: match &ed.kind {
                    ElementKind::Simple(format) => KindPlan::Simple(ValuePlan::new(
                        *format, ed.status, &ed.id, ed.coded, codes,
                    )),
                    ElementKind::Composite(components) => KindPlan::Composite {
                        components: components
                            .iter()
                            .map(|cd| ValuePlan::new(cd.format, cd.status, &cd.id, cd.coded, codes))
                            .collect(),
                        agencies: components
                            .iter()
                            .enumerate()
                            .filter(|(_, cd)| cd.id == "3055")
                            .map(|(c, _)| c)
                            .collect(),
                        required: required(components.iter().map(|cd| cd.status)),
                    },
                },
            })
            .collect();
        let required = required(def.elements.iter().map(|ed| ed.status));
        Plan {
            def,
            elements,
            required,
        }
    }

    /// The fast check: true only when the exact checks
    /// ([`MessageValidator::elements`]) would find nothing in `seg`. It
    /// walks the segment's components in order as the lexer stored them
    /// and gives up (false) on anything that is not plainly valid ASCII,
    /// leaving it to the exact checks.
    fn clean(
        &self,
        seg: &crate::edifact::RawSegment<'_>,
        decimal: Option<u8>,
        scratch: &mut Vec<u8>,
    ) -> bool {
        let n = seg.element_count();
        if n > self.elements.len() || n < self.required {
            return false;
        }
        for (ep, element) in self.elements.iter().zip(seg.elements()) {
            if element.repetition_count() > ep.max {
                return false;
            }
            let mut present = false;
            for comps in element.repetitions() {
                match &ep.kind {
                    KindPlan::Simple(vp) => {
                        let mut values = comps.iter();
                        let Some((stored, escaped)) = values.next() else {
                            continue;
                        };
                        if values.next().is_some() {
                            return false;
                        }
                        if stored.is_empty() {
                            continue;
                        }
                        present = true;
                        let value = unescaped(seg.release(), stored, escaped, scratch);
                        if !vp.accepts(value, decimal, true) {
                            return false;
                        }
                    }
                    KindPlan::Composite {
                        components,
                        agencies,
                        required,
                    } => {
                        if !comps.any_present() {
                            continue;
                        }
                        present = true;
                        // Components after the last one written are absent.
                        if comps.len() > components.len() || comps.len() < *required {
                            return false;
                        }
                        // A list of another agency than UN/ECE (3055 other
                        // than 6) is not checked against UNCL.
                        let mut foreign = false;
                        for &a in agencies {
                            if let Some((stored, escaped)) = comps.get(a) {
                                let value = unescaped(seg.release(), stored, escaped, scratch);
                                foreign |= !value.is_empty() && value != b"6";
                            }
                        }
                        for (vp, (stored, escaped)) in components.iter().zip(comps.iter()) {
                            let value = unescaped(seg.release(), stored, escaped, scratch);
                            if value.is_empty() {
                                if vp.mandatory {
                                    return false;
                                }
                                continue;
                            }
                            if !vp.accepts(value, decimal, !foreign || vp.own_list) {
                                return false;
                            }
                        }
                    }
                }
            }
            if !present && ep.mandatory {
                return false;
            }
        }
        true
    }

    /// The fast check of a segment the lexer did not split: the same
    /// answer as [`Plan::clean`] would give for it split, read in one walk
    /// over its bytes ([`Values`]). False also when the walk stops at
    /// anything the exact lexer must look at.
    /// Every value the walk takes goes to `sink` as well (whatever the
    /// answer: a caller that gets false drops what the sink took).
    fn scan<S: ValueSink>(
        &self,
        tag: &[u8],
        mut values: Values<'_>,
        decimal: Option<u8>,
        scratch: &mut Vec<u8>,
        sink: &mut S,
    ) -> bool {
        sink.begin(tag, &values);
        if values.is_empty() {
            return self.required == 0;
        }
        let mut e = 0usize;
        loop {
            let Some(ep) = self.elements.get(e) else {
                return false;
            };
            let mut reps = 0usize;
            let mut present = false;
            let end = loop {
                reps += 1;
                let (filled, sep) = match &ep.kind {
                    KindPlan::Simple(vp) => {
                        let Some((raw, escaped, sep)) = values.next_value() else {
                            return false;
                        };
                        let value = unescaped(values.release(), raw, escaped, scratch);
                        if sep == Sep::Component
                            || !value.is_empty() && !vp.accepts_ascii(value, decimal, true)
                        {
                            return false;
                        }
                        sink.value(raw, value, escaped, (e, reps - 1, 0));
                        (!value.is_empty(), sep)
                    }
                    KindPlan::Composite {
                        components,
                        required,
                        ..
                    } => {
                        // Whether the repetition has any value is known at
                        // its end: until then, what would fail only a
                        // written composite is remembered.
                        let mut c = 0usize;
                        let mut filled = false;
                        let mut failed = false;
                        let mut missing_code = false;
                        let mut foreign = false;
                        let sep = loop {
                            let Some((raw, escaped, sep)) = values.next_value() else {
                                return false;
                            };
                            let value = unescaped(values.release(), raw, escaped, scratch);
                            sink.value(raw, value, escaped, (e, reps - 1, c));
                            match components.get(c) {
                                Some(vp) if value.is_empty() => failed |= vp.mandatory,
                                Some(vp) => {
                                    filled = true;
                                    if !vp.accepts_ascii(value, decimal, false) {
                                        return false;
                                    }
                                    if let Some(codes) = &vp.codes
                                        && !codes.contains(value)
                                    {
                                        if vp.own_list {
                                            return false;
                                        }
                                        missing_code = true;
                                    }
                                    // A list of another agency than UN/ECE
                                    // (3055 other than 6) is not checked.
                                    foreign |= vp.agency && value != b"6";
                                }
                                None if value.is_empty() => failed = true,
                                None => return false,
                            }
                            c += 1;
                            if sep != Sep::Component {
                                break sep;
                            }
                        };
                        if filled && (failed || c < *required || missing_code && !foreign) {
                            return false;
                        }
                        (filled, sep)
                    }
                };
                present |= filled;
                if sep != Sep::Repetition {
                    break sep;
                }
            };
            if reps > ep.max || !present && ep.mandatory {
                return false;
            }
            e += 1;
            if end == Sep::End {
                sink.end(e);
                return e >= self.required;
            }
        }
    }
}

/// One past the position of the last mandatory entry (0: none).
fn required(statuses: impl Iterator<Item = Status>) -> usize {
    statuses
        .enumerate()
        .filter(|(_, s)| *s == Status::Mandatory)
        .last()
        .map_or(0, |(i, _)| i + 1)
}

/// An open segment group (or the message itself at the bottom).
#[derive(Debug, Clone, Copy)]
struct Frame {
    group: usize,
    /// Index of the current child.
    pos: usize,
    /// Occurrences of the current child so far (0: not yet seen).
    count: u32,
}

/// Where a segment goes.
enum Target {
    /// Another occurrence of the current segment of frame `depth`.
    Repeat(usize),
    /// Child `pos` of frame `depth` (a segment, or a group to open).
    Enter(usize, usize),
    /// A new repetition of the group of frame `depth`.
    RepeatGroup(usize),
}

/// What is left to do with a segment fed to
/// [`MessageValidator::unsplit_segment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsplit {
    /// Nothing: it is checked (its findings, if any, are ready).
    Done,
    /// It took its place in the table; its elements need the exact checks
    /// ([`MessageValidator::placed_segment`] with the segment split).
    Elements,
    /// It has no place in the table (reported); the lexer's own checks of
    /// its bytes are still due (the validator has nothing more to do).
    Lexing,
}

/// Validates one message, segment by segment.
#[derive(Debug)]
pub struct MessageValidator {
    /// The message's release and the directories its codes are compared
    /// with; `None` for ISO 9735 structures (envelope, CONTRL), which have
    /// no code lists.
    schema: Option<(Arc<Release>, Arc<Directories>)>,
    /// For ISO 9735 structures of syntax version 3 and below (CONTRL): the
    /// release whose service code list (UNSL) their [`SERVICE_CODED`]
    /// elements are checked against.
    service_codes: Option<Arc<Release>>,
    flat: Arc<Flat>,
    stack: Vec<Frame>,
    syntax_version: u8,
    decimal: char,
    /// The decimal mark as a byte, when it is ASCII (for the fast check).
    decimal_byte: Option<u8>,
    /// Use the fast check before the exact one (off only in tests that
    /// compare the two).
    fast: bool,
    /// Reused for values with release characters.
    scratch: Vec<u8>,
    findings: Vec<Finding>,
}

impl MessageValidator {
    /// A validator for one message of `def` in `release`.
    pub fn new(
        release: Arc<Release>,
        directories: Arc<Directories>,
        def: &Arc<MessageDef>,
        syntax_version: u8,
        decimal: char,
    ) -> MessageValidator {
        let flat = release.flat(def);
        MessageValidator::with_table(Some((release, directories)), flat, syntax_version, decimal)
    }

    fn with_table(
        schema: Option<(Arc<Release>, Arc<Directories>)>,
        flat: Arc<Flat>,
        syntax_version: u8,
        decimal: char,
    ) -> MessageValidator {
        MessageValidator {
            schema,
            service_codes: None,
            flat,
            stack: vec![Frame {
                group: 0,
                pos: 0,
                count: 0,
            }],
            syntax_version,
            decimal,
            decimal_byte: decimal.is_ascii().then_some(decimal as u8),
            fast: !exact_only(),
            scratch: Vec::new(),
            findings: Vec::new(),
        }
    }

    /// Ready for the next message of the same table: what the last one
    /// left behind is forgotten.
    pub fn reset(&mut self) {
        self.stack.clear();
        self.stack.push(Frame {
            group: 0,
            pos: 0,
            count: 0,
        });
        self.findings.clear();
    }

    /// A validator for the envelope's service segments (UNB, UNG, UNE,
    /// UNZ), checked element by element against ISO 9735.
    pub fn envelope(syntax_version: u8, decimal: char) -> MessageValidator {
        MessageValidator {
            schema: None,
            service_codes: None,
            flat: Arc::new(Flat { nodes: Vec::new() }),
            stack: Vec::new(),
            syntax_version,
            decimal,
            decimal_byte: decimal.is_ascii().then_some(decimal as u8),
            fast: !exact_only(),
            scratch: Vec::new(),
            findings: Vec::new(),
        }
    }

    /// A validator for a service message whose structure ISO 9735 defines
    /// (CONTRL): segments from [`service`]; below syntax version 4, the
    /// codes of its [`SERVICE_CODED`] elements from the service code list
    /// of `service_codes` (see [`Directories::service_code_release`]).
    pub fn service_message(
        def: &Arc<MessageDef>,
        syntax_version: u8,
        decimal: char,
        service_codes: Option<Arc<Release>>,
    ) -> MessageValidator {
        // A service table is a handful of nodes: flattened per message.
        let flat = Arc::new(Flat::new(def));
        let mut validator = MessageValidator::with_table(None, flat, syntax_version, decimal);
        validator.service_codes = service_codes.filter(|_| syntax_version < 4);
        validator
    }

    /// Checks the elements of one envelope segment.
    pub fn envelope_segment<S: SegmentView + ?Sized>(&mut self, seg: &S) {
        let tag = std::str::from_utf8(seg.tag_bytes()).unwrap_or("");
        if let Some(def) = service::segment(tag, self.syntax_version) {
            self.elements(seg, &def);
        }
    }

    fn release_name(&self) -> String {
        self.schema
            .as_ref()
            .map_or_else(|| "ISO 9735".to_owned(), |(r, _)| r.name.clone())
    }

    /// Findings since the last call.
    pub fn take_findings(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.findings)
    }

    fn group_path(&self) -> String {
        let mut parts = Vec::new();
        for frame in self.stack.iter().skip(1) {
            if let Some(n) = self.flat.node(frame.group) {
                parts.push(format!("SG{}", n.group));
            }
        }
        parts.join("/")
    }

    fn push(
        &mut self,
        code: Code,
        warning: bool,
        at: (Option<u16>, Option<u16>, Option<u16>),
        message: String,
    ) {
        let group_path = self.group_path();
        self.findings.push(Finding {
            code,
            warning,
            group_path,
            element: at.0,
            repetition: at.1,
            component: at.2,
            message,
            missing: None,
        });
    }

    /// Feeds the next segment of the message.
    pub fn segment<S: SegmentView + ?Sized>(&mut self, seg: &S) {
        let section = (seg.tag_bytes() == b"UNS")
            .then(|| seg.value(0, 0, 0).and_then(|v| v.bytes().next()))
            .flatten();
        if self.place(seg.tag_bytes(), section) {
            self.placed_segment(seg);
        }
    }

    /// Feeds the next segment of the message when the lexer did not split
    /// it (see [`crate::edifact::Lexer::defer_data_segments`]) and says
    /// what is left to do with it.
    pub fn unsplit_segment(&mut self, raw: &RawSegment<'_>) -> Unsplit {
        match raw.values() {
            Some(values) => self.unsplit_values(raw.tag(), values),
            // Split already: fed whole.
            None => {
                self.segment(raw);
                Unsplit::Done
            }
        }
    }

    /// [`MessageValidator::unsplit_segment`] for a segment given as its tag
    /// and [`Values`] (as [`crate::edifact::Lexer::accept_data`] hands
    /// them over).
    pub fn unsplit_values(&mut self, tag: &[u8], values: Values<'_>) -> Unsplit {
        self.unsplit_values_into(tag, values, &mut ())
    }

    /// [`MessageValidator::unsplit_values`], giving the values its check
    /// walks to `sink` too. The sink sees the whole segment when the answer
    /// is [`Unsplit::Done`] after the check walked it; it sees nothing when
    /// no check walked the segment (one with no place in the table, or with
    /// the fast checks off), and perhaps part of it for another answer.
    pub fn unsplit_values_into<S: ValueSink>(
        &mut self,
        tag: &[u8],
        mut values: Values<'_>,
        sink: &mut S,
    ) -> Unsplit {
        let section = (tag == b"UNS")
            .then(|| {
                values
                    .clone()
                    .next_value()
                    .and_then(|(v, _, _)| v.first().copied())
            })
            .flatten();
        if !self.place(tag, section) {
            // No place (reported): only the lexer's checks are left, and
            // a walk to the end shows there is nothing for them.
            while let Some((_, _, sep)) = values.next_value() {
                if sep == Sep::End {
                    return Unsplit::Done;
                }
            }
            return if values.is_empty() {
                Unsplit::Done
            } else {
                Unsplit::Lexing
            };
        }
        if !self.fast {
            return Unsplit::Elements;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let clean = self
            .plan_here(tag)
            .is_some_and(|plan| plan.scan(tag, values, self.decimal_byte, &mut scratch, sink));
        self.scratch = scratch;
        if clean {
            Unsplit::Done
        } else {
            Unsplit::Elements
        }
    }

    /// True when the segments fed so far left no finding.
    pub fn has_findings(&self) -> bool {
        !self.findings.is_empty()
    }

    /// The plan of the table position the last segment took (a group's
    /// place is its trigger segment's), resolved once per position.
    fn plan_here(&self, tag: &[u8]) -> Option<&Plan> {
        let v3 = usize::from(self.syntax_version < 4);
        let (_, node) = self
            .stack
            .last()
            .and_then(|f| self.flat.child(f.group, f.pos))
            .filter(|(_, node)| !node.is_group)?;
        node.plans
            .get(v3)?
            .get_or_init(|| {
                let tag = std::str::from_utf8(tag).unwrap_or("\u{FFFD}");
                let plan = plan(
                    self.schema.as_ref(),
                    self.service_codes.as_ref(),
                    tag,
                    self.syntax_version,
                )?;
                match (&self.schema, node.changes.is_empty()) {
                    (Some((release, _)), false) => Some(Arc::new(
                        plan.relaxed(&node.changes, &|id| release.code_set(id)),
                    )),
                    _ => Some(plan),
                }
            })
            .as_deref()
    }

    /// Places a segment in the table: true when it took a place; false
    /// when it has none (reported). `section` is a UNS segment's 0081
    /// (see [`MessageValidator::section_checked`]).
    fn place(&mut self, tag_bytes: &[u8], section: Option<u8>) -> bool {
        match self.find(tag_bytes) {
            Some(target) => {
                let (target, wrong_section) = match section {
                    Some(section @ (b'D' | b'S')) => self.section_checked(target, section),
                    // ISO 9735 gives 0081 two codes; any other is wrong
                    // wherever the UNS stands.
                    Some(other) => (
                        target,
                        Some(format!(
                            "UNS section identification (0081) '{}' is not D (header/detail) \
                             or S (detail/summary), the two codes ISO 9735 gives it",
                            other.escape_ascii()
                        )),
                    ),
                    None => (target, None),
                };
                self.commit(target, tag_bytes);
                if let Some(message) = wrong_section {
                    self.push(Code::InvalidValue, false, (Some(1), None, None), message);
                }
                true
            }
            None => {
                // Tags that are not text cannot be in any table (the parser
                // has reported them already).
                let tag = std::str::from_utf8(tag_bytes).unwrap_or("\u{FFFD}");
                let known = self
                    .schema
                    .as_ref()
                    .is_some_and(|(r, _)| r.segment(tag).is_some())
                    || service::segment(tag, self.syntax_version).is_some();
                let message = if known {
                    format!(
                        "segment {tag} is not allowed here (the segment table has no place for it after the segments before it)"
                    )
                } else {
                    format!(
                        "segment {tag} is not defined in directory {} nor allowed in this message",
                        self.release_name()
                    )
                };
                self.push(
                    Code::NotSupportedInPosition,
                    false,
                    (None, None, None),
                    message,
                );
                false
            }
        }
    }

    /// Checks the elements of a segment that took its place in the table
    /// (after [`MessageValidator::unsplit_segment`] answered
    /// [`Unsplit::Elements`]).
    pub fn placed_segment<S: SegmentView + ?Sized>(&mut self, seg: &S) {
        let tag_bytes = seg.tag_bytes();
        let mut scratch = std::mem::take(&mut self.scratch);
        let checked = self.plan_here(tag_bytes).map(|plan| {
            let clean = self.fast
                && seg
                    .as_raw()
                    .is_some_and(|raw| plan.clean(raw, self.decimal_byte, &mut scratch));
            // The definition only when the exact checks need it.
            (!clean).then(|| plan.def.clone())
        });
        self.scratch = scratch;
        if let Some(unclean) = checked {
            if let Some(def) = unclean {
                self.elements(seg, &def);
            }
            return;
        }
        let tag = std::str::from_utf8(tag_bytes).unwrap_or("\u{FFFD}");
        let def = match &self.schema {
            Some((release, _)) => release.definition(tag, self.syntax_version),
            None => {
                service_segment(tag, self.syntax_version, self.service_codes.as_ref()).map(Arc::new)
            }
        };
        match def {
            Some(def) => self.elements(seg, &def),
            None => {
                let message = format!(
                    "segment {tag} is not defined in the segment directory of {}",
                    self.release_name()
                );
                self.push(
                    Code::NotSupportedInPosition,
                    false,
                    (None, None, None),
                    message,
                );
            }
        }
    }

    /// Ends the message: mandatory segments and groups never seen.
    pub fn finish(&mut self) {
        while let Some(frame) = self.stack.last().copied() {
            let from = if frame.count > 0 {
                frame.pos + 1
            } else {
                frame.pos
            };
            self.report_missing(frame.group, from, usize::MAX);
            self.stack.pop();
        }
    }

    /// A UNS segment in a message whose table has two (header/detail and
    /// detail/summary, as CUSDEC's): its section identification (0081,
    /// ISO 9735: D header/detail, S detail/summary) says which one it is,
    /// where the table alone places it at the next UNS. A UNS D right
    /// after the UNS D is that segment repeated (E0035 here, and the
    /// detail section still open), not the summary's separator; any other
    /// UNS at the place of the other one keeps that place, and its 0081 is
    /// reported as the wrong value (E0012).
    fn section_checked(&self, target: Target, section: u8) -> (Target, Option<String>) {
        let Target::Enter(0, pos) = target else {
            return (target, None);
        };
        let Some(root) = self.flat.node(0) else {
            return (target, None);
        };
        let mut places = root
            .kids
            .iter()
            .enumerate()
            .filter(|(_, k)| k.key == *b"UNS" && !k.is_group)
            .map(|(i, _)| i);
        let (Some(first), Some(second), None) = (places.next(), places.next(), places.next())
        else {
            return (target, None);
        };
        let (expected, name) = match section {
            b'D' => (first, "D (header/detail)"),
            b'S' => (second, "S (detail/summary)"),
            _ => return (target, None),
        };
        if pos == expected || (pos != first && pos != second) {
            return (target, None);
        }
        let just_after_first = matches!(
            self.stack.as_slice(),
            [frame] if frame.pos == first && frame.count > 0
        );
        if section == b'D' && just_after_first {
            return (Target::Repeat(0), None);
        }
        let here = if pos == first {
            "D (header/detail)"
        } else {
            "S (detail/summary)"
        };
        let message = format!(
            "UNS section identification (0081) {name} where the segment table has the separation \
             {here}"
        );
        (target, Some(message))
    }

    fn find(&self, tag: &[u8]) -> Option<Target> {
        // Another occurrence of the current segment while it may still
        // repeat; otherwise the next place for it (a later position, a new
        // repetition of an enclosing group); only when there is none, an
        // occurrence too many of the current segment.
        self.find_place(tag, false)
            .or_else(|| self.find_place(tag, true))
    }

    fn find_place(&self, tag: &[u8], beyond_max: bool) -> Option<Target> {
        let &[a, b, c] = tag else {
            return None;
        };
        let key = [a, b, c];
        let bit = key_bit(key);
        for (depth, frame) in self.stack.iter().enumerate().rev() {
            let group = self.flat.node(frame.group)?;
            if frame.count > 0
                && let Some(kid) = group.kids.get(frame.pos)
                && kid.repeats
                && kid.key == key
                && (beyond_max || frame.count < kid.max)
            {
                return Some(Target::Repeat(depth));
            }
            if beyond_max {
                continue;
            }
            let start = frame.pos + usize::from(frame.count > 0);
            let maybe = group.tails.get(start).is_some_and(|t| t & bit != 0);
            if maybe
                && let Some(at) = group
                    .kids
                    .get(start..)
                    .and_then(|kids| kids.iter().position(|k| k.key == key))
            {
                return Some(Target::Enter(depth, start + at));
            }
            if depth > 0 && group.key == key {
                return Some(Target::RepeatGroup(depth));
            }
        }
        None
    }

    /// Reports mandatory children `from..to` of `group` as missing.
    #[inline]
    fn report_missing(&mut self, group: usize, from: usize, to: usize) {
        let Some(node) = self.flat.node(group) else {
            return;
        };
        let end = to.min(node.children.len());
        let before = |i: usize| node.missing.get(i).copied().unwrap_or(0);
        if from >= end || before(end) == before(from) {
            return;
        }
        self.report_missing_children(group, from, to);
    }

    /// [`report_missing`](Self::report_missing) once it is known that
    /// something is missing.
    #[cold]
    fn report_missing_children(&mut self, group: usize, from: usize, to: usize) {
        let flat = self.flat.clone();
        let Some(node) = flat.node(group) else {
            return;
        };
        let ids: Vec<usize> = node
            .children
            .iter()
            .copied()
            .skip(from)
            .take(to.saturating_sub(from))
            .collect();
        for id in ids {
            let Some(child) = flat.node(id) else {
                continue;
            };
            // A missing UNT is the envelope's to report (E0013 there).
            if child.status != Status::Mandatory || !child.is_group && child.tag == "UNT" {
                continue;
            }
            let (message, missing) = if child.is_group {
                (
                    format!(
                        "mandatory segment group {} (starting with {}) is missing",
                        child.group, child.tag
                    ),
                    format!("SG{}", child.group),
                )
            } else {
                // A tag the level has more than once (CUSDEC's two UNS, D
                // and S) says which of them is missing, or two findings
                // would read alike.
                let same: Vec<usize> = node
                    .children
                    .iter()
                    .copied()
                    .filter(|&c| {
                        flat.node(c)
                            .is_some_and(|n| !n.is_group && n.tag == child.tag)
                    })
                    .collect();
                let which = match same.iter().position(|&c| c == id) {
                    Some(i) if same.len() > 1 => format!(
                        " (the {} of the {} {} segments at this level)",
                        ordinal(i + 1),
                        same.len(),
                        child.tag
                    ),
                    _ => String::new(),
                };
                (
                    format!("mandatory segment {}{which} is missing", child.tag),
                    child.tag.to_string(),
                )
            };
            self.push(Code::Missing, false, (None, None, None), message);
            if let Some(last) = self.findings.last_mut() {
                last.missing = Some(missing);
            }
        }
    }

    /// Closes frames above `depth`, reporting what they miss.
    fn close_above(&mut self, depth: usize) {
        while self.stack.len() > depth + 1 {
            if let Some(frame) = self.stack.last().copied() {
                let from = if frame.count > 0 {
                    frame.pos + 1
                } else {
                    frame.pos
                };
                self.report_missing(frame.group, from, usize::MAX);
            }
            self.stack.pop();
        }
    }

    fn commit(&mut self, target: Target, tag: &[u8]) {
        match target {
            Target::Repeat(depth) => {
                self.close_above(depth);
                let Some(frame) = self.stack.last_mut() else {
                    return;
                };
                frame.count += 1;
                let count = frame.count;
                let max = self
                    .flat
                    .node(frame.group)
                    .and_then(|g| g.kids.get(frame.pos))
                    .map_or(u32::MAX, |k| k.max);
                if count > max {
                    let tag = String::from_utf8_lossy(tag);
                    self.push(
                        Code::TooManySegmentRepetitions,
                        false,
                        (None, None, None),
                        format!("segment {tag} occurs {count} times here; at most {max} allowed"),
                    );
                }
            }
            Target::Enter(depth, pos) => {
                self.close_above(depth);
                let Some(frame) = self.stack.last().copied() else {
                    return;
                };
                let from = if frame.count > 0 {
                    frame.pos + 1
                } else {
                    frame.pos
                };
                self.report_missing(frame.group, from, pos);
                if let Some(f) = self.stack.last_mut() {
                    f.pos = pos;
                    f.count = 1;
                }
                if let Some(kid) = self.flat.node(frame.group).and_then(|g| g.kids.get(pos))
                    && kid.is_group
                {
                    let id = kid.id;
                    self.stack.push(Frame {
                        group: id,
                        pos: 0,
                        count: 1,
                    });
                }
            }
            Target::RepeatGroup(depth) => {
                self.close_above(depth);
                if let Some(frame) = self.stack.last().copied() {
                    let from = if frame.count > 0 {
                        frame.pos + 1
                    } else {
                        frame.pos
                    };
                    self.report_missing(frame.group, from, usize::MAX);
                }
                if let Some(f) = self.stack.last_mut() {
                    f.pos = 0;
                    f.count = 1;
                }
                let Some(parent) = depth.checked_sub(1).and_then(|d| self.stack.get_mut(d)) else {
                    return;
                };
                parent.count += 1;
                let count = parent.count;
                let group = self.stack.last().map_or(0, |f| f.group);
                let (number, max) = self
                    .flat
                    .node(group)
                    .map_or((0, u32::MAX), |n| (n.group, n.max));
                if count > max {
                    // Reported at the level of the enclosing group.
                    let path = self.group_path();
                    self.findings.push(Finding {
                        code: Code::TooManyGroupRepetitions,
                        warning: false,
                        group_path: path,
                        element: None,
                        repetition: None,
                        component: None,
                        message: format!(
                            "segment group {number} occurs {count} times; at most {max} allowed"
                        ),
                        missing: None,
                    });
                }
            }
        }
    }

    fn elements<S: SegmentView + ?Sized>(&mut self, seg: &S, def: &SegmentDef) {
        let n = seg.element_count();
        let defined = def.elements.len();
        if n > defined {
            self.push(
                Code::TooManyConstituents,
                false,
                (Some(pos16(defined + 1)), None, None),
                format!(
                    "segment {} has {n} data elements; {} defines {defined}",
                    def.tag,
                    self.release_name()
                ),
            );
        }
        for (e, ed) in def.elements.iter().enumerate() {
            let reps = if e < n { seg.repetition_count(e) } else { 0 };
            let present = |r: usize| {
                (0..seg.component_count(e, r))
                    .any(|c| seg.raw_len(e, r, c).is_some_and(|len| len > 0))
            };
            if !(0..reps).any(present) {
                if ed.status == Status::Mandatory {
                    self.push(
                        Code::Missing,
                        false,
                        (Some(pos16(e + 1)), None, None),
                        format!("mandatory data element {} ({}) is missing", ed.id, ed.name),
                    );
                }
                continue;
            }
            let max = usize::from(ed.max.max(1));
            if reps > max {
                self.push(
                    Code::TooManySegmentRepetitions,
                    false,
                    (Some(pos16(e + 1)), Some(pos16(max + 1)), None),
                    format!(
                        "data element {} repeats {reps} times; at most {max} allowed",
                        ed.id
                    ),
                );
            }
            for r in (0..reps).filter(|&r| present(r)) {
                self.element(seg, e, r, ed);
            }
        }
    }

    fn element<S: SegmentView + ?Sized>(&mut self, seg: &S, e: usize, r: usize, ed: &ElementDef) {
        let rep = (self.syntax_version >= 4).then(|| pos16(r + 1));
        let comps = seg.component_count(e, r);
        match &ed.kind {
            ElementKind::Simple(format) => {
                if comps > 1 {
                    self.push(
                        Code::TooManyConstituents,
                        false,
                        (Some(pos16(e + 1)), rep, Some(2)),
                        format!(
                            "data element {} is simple but has {comps} components",
                            ed.id
                        ),
                    );
                }
                if let Some(value) = seg.value(e, r, 0) {
                    let at = (Some(pos16(e + 1)), rep, None);
                    self.check_value(&value, &ed.id, &ed.name, *format, at, ed.coded);
                }
            }
            ElementKind::Composite(components) => {
                if comps > components.len() {
                    self.push(
                        Code::TooManyConstituents,
                        false,
                        (Some(pos16(e + 1)), rep, Some(pos16(components.len() + 1))),
                        format!(
                            "composite {} has {comps} components; at most {} defined",
                            ed.id,
                            components.len()
                        ),
                    );
                }
                // A code list responsible agency other than UN/ECE (3055
                // code 6) means the codes of this composite come from that
                // agency's list (ISO 6346 container types, a national tariff),
                // not from UNCL.
                let foreign_codes = components.iter().enumerate().any(|(c, cd)| {
                    cd.id == "3055"
                        && seg
                            .value(e, r, c)
                            .is_some_and(|v| !v.is_empty() && v != "6")
                });
                for (c, cd) in components.iter().enumerate() {
                    let at = (Some(pos16(e + 1)), rep, Some(pos16(c + 1)));
                    match seg.value(e, r, c) {
                        Some(v) if !v.is_empty() => {
                            let lists =
                                cd.coded && (!foreign_codes || cd.id == "3055" || cd.id == "1131");
                            self.check_value(&v, &cd.id, &cd.name, cd.format, at, lists);
                        }
                        _ if cd.status == Status::Mandatory => {
                            self.push(
                                Code::Missing,
                                false,
                                at,
                                format!(
                                    "mandatory component {} ({}) of {} is missing",
                                    cd.id, cd.name, ed.id
                                ),
                            );
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    fn check_value(
        &mut self,
        value: &str,
        id: &str,
        name: &str,
        format: Format,
        at: (Option<u16>, Option<u16>, Option<u16>),
        code_lists: bool,
    ) {
        let length = match format.class {
            FormatClass::Numeric => {
                let body = value.strip_prefix('-').unwrap_or(value);
                let mut marks = 0;
                let mut digits = 0u32;
                let mut bad = None;
                for ch in body.chars() {
                    if ch.is_ascii_digit() {
                        digits += 1;
                    } else if ch == self.decimal && marks == 0 {
                        marks += 1;
                    } else {
                        bad = Some(ch);
                        break;
                    }
                }
                if let Some(ch) = bad.or((digits == 0).then_some('?')) {
                    let (code, why) = if digits == 0 && bad.is_none() {
                        (Code::InvalidCharacterType, "has no digits".to_owned())
                    } else if matches!(ch, '.' | ',') && ch != self.decimal {
                        // The other decimal mark than the interchange's
                        // (0085 code 19).
                        (
                            Code::InvalidDecimalNotation,
                            format!(
                                "uses {ch:?} as its decimal mark where the interchange's is {:?}",
                                self.decimal
                            ),
                        )
                    } else {
                        (Code::InvalidCharacterType, format!("contains {ch:?}"))
                    };
                    self.push(
                        code,
                        false,
                        at,
                        format!("{id} ({name}) is numeric ({format}) but {value:?} {why}"),
                    );
                    return;
                }
                // ISO 9735: at least one digit before and one after a
                // decimal mark.
                let bare = if marks == 0 {
                    None
                } else if body.starts_with(self.decimal) {
                    Some((Code::MissingDigitBeforeDecimal, "before"))
                } else if body.ends_with(self.decimal) {
                    Some((Code::InvalidCharacterType, "after"))
                } else {
                    None
                };
                if let Some((code, side)) = bare {
                    self.push(
                        code,
                        false,
                        at,
                        format!(
                            "{id} ({name}) is numeric ({format}) but {value:?} has no digit \
                             {side} its decimal mark"
                        ),
                    );
                    return;
                }
                // ISO 9735: the sign and the decimal mark do not count.
                digits as usize
            }
            FormatClass::Alpha => {
                if let Some(ch) = value.chars().find(char::is_ascii_digit) {
                    self.push(
                        Code::InvalidCharacterType,
                        false,
                        at,
                        format!("{id} ({name}) is alphabetic ({format}) but {value:?} contains the digit {ch}"),
                    );
                    return;
                }
                value.chars().count()
            }
            FormatClass::AlphaNumeric => value.chars().count(),
        };
        if length > usize::from(format.max) {
            self.push(
                Code::TooLong,
                false,
                at,
                format!(
                    "{id} ({name}) is {length} characters long; {format} allows {}",
                    format.max
                ),
            );
        } else if length < usize::from(format.min) {
            self.push(
                Code::TooShort,
                false,
                at,
                format!(
                    "{id} ({name}) is {length} characters long; {format} requires {}",
                    format.min
                ),
            );
        }
        if code_lists {
            self.code(value, id, name, at);
        }
    }

    fn code(
        &mut self,
        value: &str,
        id: &str,
        name: &str,
        at: (Option<u16>, Option<u16>, Option<u16>),
    ) {
        let Some((release, directories)) = &self.schema else {
            // A service message's element, against the service code list.
            if let Some(service) = &self.service_codes
                && let Some(list) = service.service_codes(id)
                && !list.codes.contains(value)
            {
                let message = format!(
                    "code {value:?} is not in the service code list of {id} ({name}) for syntax \
                     version {} (UNSL of {})",
                    self.syntax_version, service.name
                );
                self.push(Code::InvalidValue, false, at, message);
            }
            return;
        };
        if release
            .codes(id)
            .is_none_or(|list| list.codes.contains(value))
        {
            return;
        }
        let release = release.name.clone();
        let later = directories.later_than(&release).into_iter().find(|r| {
            directories
                .release(r)
                .ok()
                .flatten()
                .and_then(|rel| rel.codes(id).map(|l| l.codes.contains(value)))
                .unwrap_or(false)
        });
        match later {
            // 0085 code 14: a value the code list knows, but not in this
            // position — here, not in the message's release.
            Some(later) => self.push(
                Code::ValueNotSupported,
                true,
                at,
                format!("code {value:?} of {id} ({name}) is not in the {release} code list; it appears in the later release {later}"),
            ),
            None => self.push(
                Code::InvalidValue,
                false,
                at,
                format!("code {value:?} is not in the {release} code list of {id} ({name})"),
            ),
        }
    }
}

/// The service data elements of ISO 9735 structures whose codes are
/// checked against the service code list: those whose lists ISO 9735
/// closes (the action and the syntax error of CONTRL). The others that
/// UNSL lists name things that grew after it was published (message types,
/// directory releases, controlling agencies) and are not held against it.
pub const SERVICE_CODED: [&str; 2] = ["0083", "0085"];

/// Segment `tag` as ISO 9735 defines it ([`service`]), its
/// [`SERVICE_CODED`] elements marked coded when `service_codes` has their
/// list.
fn service_segment(
    tag: &str,
    syntax_version: u8,
    service_codes: Option<&Arc<Release>>,
) -> Option<SegmentDef> {
    let mut def = service::segment(tag, syntax_version)?;
    def.mark_coded(|id| {
        SERVICE_CODED.contains(&id) && service_codes.is_some_and(|r| r.service_codes(id).is_some())
    });
    Some(def)
}

/// The checks of segment `tag`: from the release's directory, or, for
/// ISO 9735 structures, from [`service`] (codes from `service_codes`).
fn plan(
    schema: Option<&(Arc<Release>, Arc<Directories>)>,
    service_codes: Option<&Arc<Release>>,
    tag: &str,
    syntax_version: u8,
) -> Option<Arc<Plan>> {
    match schema {
        Some((release, _)) => release.plan(tag, syntax_version),
        None => {
            let def = Arc::new(service_segment(tag, syntax_version, service_codes)?);
            Some(Arc::new(Plan::new(def, &|id| {
                let list = service_codes?.service_codes(id)?;
                Some(Arc::new(CodeSet::new(list)))
            })))
        }
    }
}

/// "first", "second", …, then "10th".
fn ordinal(n: usize) -> String {
    const WORDS: [&str; 9] = [
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
    ];
    n.checked_sub(1)
        .and_then(|i| WORDS.get(i))
        .map_or_else(|| format!("{n}th"), |w| (*w).to_owned())
}

/// A three-character tag as bytes (shorter or longer tags never match).
/// One of 64 bits for a tag key (a one-word filter of a set of tags).
fn key_bit(key: [u8; 3]) -> u64 {
    let word = u32::from_le_bytes([key[0], key[1], key[2], 0]);
    1u64 << (word.wrapping_mul(0x9E37_79B1) >> 26)
}

fn tag_key(tag: &[u8]) -> [u8; 3] {
    match tag {
        [a, b, c] => [*a, *b, *c],
        _ => [0; 3],
    }
}

fn pos16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Whether validators skip the fast check (only tests that compare the two
/// switch it, per thread).
fn exact_only() -> bool {
    #[cfg(test)]
    {
        tests::EXACT_ONLY.with(std::cell::Cell::get)
    }
    #[cfg(not(test))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    //! The fast check must never change a result: every fixture interchange
    //! and generated ones with random damage give exactly the same issues
    //! with and without it.

    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::cell::Cell;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, OnceLock};

    use proptest::prelude::*;

    use crate::edifact::{ParseOptions, Parsed, Parser, sample};
    use crate::schema::Directories;

    thread_local! {
        pub(super) static EXACT_ONLY: Cell<bool> = const { Cell::new(false) };
    }

    fn directories() -> Arc<Directories> {
        static DIRS: OnceLock<Arc<Directories>> = OnceLock::new();
        DIRS.get_or_init(|| {
            Arc::new(Directories::new(&[
                Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/untdid")
            ]))
        })
        .clone()
    }

    fn validate(data: &[u8], exact: bool) -> Parsed {
        EXACT_ONLY.with(|e| e.set(exact));
        let options = ParseOptions {
            keep_messages: false,
            decode_messages: false,
            ..ParseOptions::default()
        };
        let parsed = Parser::new(data, options)
            .with_directories(directories())
            .run(|_, _| {})
            .unwrap();
        EXACT_ONLY.with(|e| e.set(false));
        parsed
    }

    fn agree(data: &[u8]) -> Result<(), TestCaseError> {
        let fast = validate(data, false);
        let exact = validate(data, true);
        prop_assert_eq!(&fast.issues, &exact.issues);
        prop_assert_eq!(fast.error_count, exact.error_count);
        Ok(())
    }

    fn inputs(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                inputs(&path, out);
            } else if !name.starts_with("LICENSE")
                && ![".json", ".md", ".contrl"]
                    .iter()
                    .any(|x| name.ends_with(x))
            {
                out.push(path);
            }
        }
    }

    #[test]
    fn fast_check_agrees_on_every_fixture() {
        let mut files = Vec::new();
        inputs(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/edifact"),
            &mut files,
        );
        assert!(files.len() > 50, "{} fixture inputs", files.len());
        let mut issues = 0;
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let fast = validate(&data, false);
            let exact = validate(&data, true);
            assert_eq!(fast.issues, exact.issues, "{}", file.display());
            issues += exact.issues.len();
        }
        assert!(issues > 100, "the fixtures exercise the exact checks");
    }

    /// The generated interchange, in syntax version 3 (UNOC) or 4 (UNOY,
    /// with the space of the UNA as repetition separator).
    fn seed(v4: bool) -> Vec<u8> {
        let data = sample::interchange(12_000);
        if !v4 {
            return data;
        }
        let text = String::from_utf8(data).unwrap();
        text.replacen("UNOC:3", "UNOY:4", 1).into_bytes()
    }

    /// Bytes that break formats, lengths, codes and the structure: digits,
    /// letters, separators, the release character, non-ASCII, tags.
    const DAMAGE: &[u8] = b"0123456789.-AZaz+:'? *\xe9\xc3\xa9\x80UNSMOATAXCST";

    fn damaged(seed: &[u8], edits: &[(usize, usize, bool)]) -> Vec<u8> {
        let mut data = seed.to_vec();
        for &(at, pick, insert) in edits {
            let at = at % (data.len() + 1);
            let b = DAMAGE[pick % DAMAGE.len()];
            if insert || at == data.len() {
                data.insert(at, b);
            } else {
                data[at] = b;
            }
        }
        data
    }

    #[test]
    fn fast_check_agrees_on_clean_generated_interchanges() {
        for v4 in [false, true] {
            agree(&seed(v4)).unwrap();
        }
        assert!(validate(&seed(false), false).is_valid());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn fast_check_agrees_on_damaged_interchanges(
            v4 in any::<bool>(),
            edits in proptest::collection::vec((any::<usize>(), any::<usize>(), any::<bool>()), 1..12),
        ) {
            agree(&damaged(&seed(v4), &edits))?;
        }
    }
}
