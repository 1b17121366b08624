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
use std::sync::Arc;

use super::{
    Directories, ElementDef, ElementKind, Format, FormatClass, MessageDef, Node, Release,
    SegmentDef, Status, service,
};
use crate::diag::Code;

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
    /// Segment group number; 0 for segments and for the message itself.
    group: u16,
    is_group: bool,
    status: Status,
    max: u32,
    children: Vec<usize>,
}

impl Flat {
    pub(crate) fn new(def: &MessageDef) -> Flat {
        let mut flat = Flat {
            nodes: vec![FlatNode {
                tag: String::new(),
                key: [0; 3],
                group: 0,
                is_group: true,
                status: Status::Mandatory,
                max: 1,
                children: Vec::new(),
            }],
        };
        let children = flat.add(&def.nodes);
        if let Some(root) = flat.nodes.first_mut() {
            root.children = children;
        }
        flat
    }

    fn add(&mut self, nodes: &[Node]) -> Vec<usize> {
        let mut ids = Vec::with_capacity(nodes.len());
        for node in nodes {
            let id = self.nodes.len();
            self.nodes.push(FlatNode {
                tag: node.trigger().to_owned(),
                key: tag_key(node.trigger().as_bytes()),
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
            });
            if let Node::Group { children, .. } = node {
                let kids = self.add(children);
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

/// Validates one message, segment by segment.
#[derive(Debug)]
pub struct MessageValidator {
    /// The message's release and the directories its codes are compared
    /// with; `None` for ISO 9735 structures (envelope, CONTRL), which have
    /// no code lists.
    schema: Option<(Arc<Release>, Arc<Directories>)>,
    flat: Arc<Flat>,
    stack: Vec<Frame>,
    syntax_version: u8,
    decimal: char,
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
            flat,
            stack: vec![Frame {
                group: 0,
                pos: 0,
                count: 0,
            }],
            syntax_version,
            decimal,
            findings: Vec::new(),
        }
    }

    /// A validator for the envelope's service segments (UNB, UNG, UNE,
    /// UNZ), checked element by element against ISO 9735.
    pub fn envelope(syntax_version: u8, decimal: char) -> MessageValidator {
        MessageValidator {
            schema: None,
            flat: Arc::new(Flat { nodes: Vec::new() }),
            stack: Vec::new(),
            syntax_version,
            decimal,
            findings: Vec::new(),
        }
    }

    /// A validator for a service message whose structure ISO 9735 defines
    /// (CONTRL): segments from [`service`], no code lists.
    pub fn service_message(
        def: &Arc<MessageDef>,
        syntax_version: u8,
        decimal: char,
    ) -> MessageValidator {
        // A service table is a handful of nodes: flattened per message.
        let flat = Arc::new(Flat::new(def));
        MessageValidator::with_table(None, flat, syntax_version, decimal)
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
        });
    }

    /// Feeds the next segment of the message.
    pub fn segment<S: SegmentView + ?Sized>(&mut self, seg: &S) {
        // Tags that are not text cannot be in any table (the parser has
        // reported them already).
        let tag = std::str::from_utf8(seg.tag_bytes()).unwrap_or("\u{FFFD}");
        match self.find(tag) {
            Some(target) => self.commit(target, tag),
            None => {
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
                return;
            }
        }
        let def = match &self.schema {
            Some((release, _)) => release.definition(tag, self.syntax_version),
            None => service::segment(tag, self.syntax_version).map(Arc::new),
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

    fn find(&self, tag: &str) -> Option<Target> {
        // Another occurrence of the current segment while it may still
        // repeat; otherwise the next place for it (a later position, a new
        // repetition of an enclosing group); only when there is none, an
        // occurrence too many of the current segment.
        self.find_place(tag, false)
            .or_else(|| self.find_place(tag, true))
    }

    fn find_place(&self, tag: &str, beyond_max: bool) -> Option<Target> {
        let key = tag_key(tag.as_bytes());
        if tag.len() != 3 {
            return None;
        }
        for depth in (0..self.stack.len()).rev() {
            let frame = self.stack.get(depth)?;
            if frame.count > 0
                && let Some((_, node)) = self.flat.child(frame.group, frame.pos)
                && !node.is_group
                && node.tag == tag
                && (beyond_max || frame.count < node.max)
            {
                return Some(Target::Repeat(depth));
            }
            if beyond_max {
                continue;
            }
            let start = if frame.count > 0 {
                frame.pos + 1
            } else {
                frame.pos
            };
            let len = self.flat.node(frame.group)?.children.len();
            for pos in start..len {
                if let Some((_, node)) = self.flat.child(frame.group, pos)
                    && node.key == key
                {
                    return Some(Target::Enter(depth, pos));
                }
            }
            if depth > 0 && self.flat.node(frame.group)?.key == key {
                return Some(Target::RepeatGroup(depth));
            }
        }
        None
    }

    /// Reports mandatory children `from..to` of `group` as missing.
    fn report_missing(&mut self, group: usize, from: usize, to: usize) {
        let Some(node) = self.flat.node(group) else {
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
            let Some(child) = self.flat.node(id) else {
                continue;
            };
            // A missing UNT is the envelope's to report (E0013 there).
            if child.status != Status::Mandatory || !child.is_group && child.tag == "UNT" {
                continue;
            }
            let message = if child.is_group {
                format!(
                    "mandatory segment group {} (starting with {}) is missing",
                    child.group, child.tag
                )
            } else {
                format!("mandatory segment {} is missing", child.tag)
            };
            self.push(Code::Missing, false, (None, None, None), message);
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

    fn commit(&mut self, target: Target, tag: &str) {
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
                    .child(frame.group, frame.pos)
                    .map_or(u32::MAX, |(_, n)| n.max);
                if count > max {
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
                if let Some((id, node)) = self.flat.child(frame.group, pos)
                    && node.is_group
                {
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
                    let why = if digits == 0 && bad.is_none() {
                        "has no digits".to_owned()
                    } else {
                        format!("contains {ch:?}")
                    };
                    self.push(
                        Code::InvalidCharacterType,
                        false,
                        at,
                        format!("{id} ({name}) is numeric ({format}) but {value:?} {why}"),
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

/// A three-character tag as bytes (shorter or longer tags never match).
fn tag_key(tag: &[u8]) -> [u8; 3] {
    match tag {
        [a, b, c] => [*a, *b, *c],
        _ => [0; 3],
    }
}

fn pos16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}
