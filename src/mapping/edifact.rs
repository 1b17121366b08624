//! EDIFACT mappings: a mapping file compiled against its message's segment
//! table and segment directory, and applied to decoded messages.
//!
//! A message is first cut into its segment-group instances (the same
//! greedy placement the validator uses: each segment goes to the first
//! position, at or after the current one, in the current group or an
//! enclosing one, that carries its tag or its group's trigger), then every
//! rule picks its values from the instances its path names.

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::draft::{Draft, Held, Incomplete, Key, Leaf, ROOT, intern};
use super::{
    Constant, EachRule, FieldRule, ListRule, MappingError, MappingFile, ValueType, schema_field,
    schema_type,
};
use crate::diag::{Code, Issue, Location};
use crate::edifact::{Message, MessageText};
use crate::schema::{ElementKind, MessageDef, Node, Release};

/// A position of a value in a segment (0-based element and component).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Pos {
    element: usize,
    component: usize,
}

/// One `[element=code|code]` condition on a segment, or with `!=` its
/// negation: the value is absent or none of the codes.
#[derive(Debug, Clone, PartialEq)]
struct Filter {
    at: Pos,
    codes: Vec<String>,
    negate: bool,
}

impl Filter {
    fn holds(&self, value: Option<&str>) -> bool {
        let listed = value.is_some_and(|v| self.codes.iter().any(|c| c == v));
        listed != self.negate
    }
}

/// Which instances of a group a path step takes (see
/// [`PathSpec::group_filters`]).
#[derive(Debug, Clone, PartialEq, Default)]
struct GroupStep {
    filters: Vec<Filter>,
    /// Only one instance (of those passing the filters).
    nth: Option<Nth>,
}

/// The one instance of a group a step takes: `SG5#1` (1-based) or
/// `SG2#last`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Nth {
    At(usize),
    Last,
}

impl GroupStep {
    fn is_plain(&self) -> bool {
        self.filters.is_empty() && self.nth.is_none()
    }
}

/// A compiled path: groups, segment with its filters, and the value.
#[derive(Debug, Clone)]
struct PathSpec {
    /// Group levels to go up from the instance the path is read in
    /// (`../` steps) before following `groups`.
    up: usize,
    groups: Vec<u16>,
    /// Per group step, which of its instances are taken: those whose
    /// trigger segment passes the filters (`SG4[8051=20]`: the transport
    /// stage whose TDT is main carriage), and of those only the n-th
    /// (`SG5#1`); everything for a plain step.
    group_filters: Vec<GroupStep>,
    tag: String,
    /// `tag` as a [`tag_code`].
    tag_code: u32,
    filters: Vec<Filter>,
    value: Option<Pos>,
    /// Further occurrences of the value's data element, after `value`,
    /// when the path names a range (`C108/4440#1-5`).
    more: Vec<Pos>,
    /// Paths that select the same segments (same levels up, groups, tag
    /// and filters) share this number (see [`number_selections`]).
    selection: usize,
    /// Its selection in the mapping's [`SelectionIndex`], when it has one.
    indexed: Option<usize>,
}

impl PathSpec {
    /// The value's position and, for a range, the further occurrences, in
    /// order.
    fn positions(&self) -> impl Iterator<Item = Pos> + '_ {
        self.value.into_iter().chain(self.more.iter().copied())
    }
}

/// A dotted target field, split once: `to` as written, its steps, and
/// its JSON pointer steps (`/a/b`, escaped), to append to a prefix.
#[derive(Debug, Clone)]
struct Target {
    to: String,
    parts: Vec<Key>,
    pointer: String,
}

impl Target {
    fn new(to: &str) -> Target {
        Target {
            to: to.to_owned(),
            parts: to.split('.').map(intern).collect(),
            pointer: pointer("", to),
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledField {
    to: Target,
    from: PathSpec,
    /// The path as the mapping file writes it (`BGM/C106/1004`), to say
    /// where a missing value is read from.
    source: String,
    kind: ValueType,
    date_format: Option<Pos>,
    default_format: Option<String>,
    /// Dates: a two-digit year is the latest not after today.
    past: bool,
    /// Dates: a two-digit year is the nearest this year.
    near: bool,
    codes: Option<std::collections::BTreeMap<String, String>>,
    pass_other: bool,
    /// Codes not in `codes` that give no value (see [`super::FieldRule`]).
    skip_codes: Vec<String>,
    skip_other: bool,
    all: bool,
    /// With `all`: repeated values are kept once.
    distinct: bool,
    last: bool,
    /// The occurrences of a range joined with this into one text.
    join: Option<String>,
    /// With `join`: of every segment selected, not only the first, with
    /// this between the segments' texts.
    join_segments: Option<String>,
    /// Integers: the largest the canonical field holds (its JSON Schema
    /// `maximum`, or what its `format` says: uint16 65535, …); a larger
    /// value is refused (MAP002), not left to fail the whole object.
    max: u64,
    /// Decimals: multiplied by this (a unit conversion).
    factor: Option<Decimal>,
}

#[derive(Debug, Clone)]
struct CompiledList {
    to: Target,
    groups: Vec<u16>,
    when: Vec<Filter>,
    constants: Vec<(Target, Value)>,
    fields: Vec<CompiledField>,
    lists: Vec<CompiledList>,
    each: Vec<CompiledEach>,
}

/// A list of the occurrences of a repeating composite (see
/// [`super::EachRule`]).
#[derive(Debug, Clone)]
struct CompiledEach {
    to: Target,
    /// The segments, as a field path without a value.
    path: PathSpec,
    /// The element positions of the composite's occurrences (several
    /// before syntax version 4, where a repeating element takes one
    /// position per occurrence; one from version 4 on).
    positions: Vec<usize>,
    /// Fields read from each occurrence: their value position names the
    /// component (its element is the first occurrence's).
    fields: Vec<CompiledField>,
}

/// A mapping file checked against its message structure and compiled for
/// one syntax version (which decides element positions: before version 4 a
/// repeating data element takes several positions).
#[derive(Debug, Clone)]
pub struct EdifactMapping {
    /// The mapping file's name, for messages.
    pub name: String,
    pub message: String,
    pub release: String,
    pub target: String,
    table: Table,
    /// Per segment tag (as a [`tag_code`]), per element, per component:
    /// whether the data element there is `ignore`d.
    ignored: FxHashMap<u32, Vec<Vec<bool>>>,
    /// Per segment tag (as a [`tag_code`]), per element: whether it is a
    /// simple data element, whose locations name no component (S011).
    simple: FxHashMap<u32, Vec<bool>>,
    constants: Vec<(Target, Value)>,
    fields: Vec<CompiledField>,
    lists: Vec<CompiledList>,
    /// `each` lists read from the message level.
    each: Vec<CompiledEach>,
    /// The selections of the rules' paths, found in one walk over a
    /// message's segments.
    index: SelectionIndex,
}

/// A path's selection as the index finds it: the segments tagged
/// `tag_code` in the instances whose group path from the message level is
/// `path` (see [`pack`]), that pass `filters`, and whose instances at the
/// filtered group steps have triggers that pass theirs; each is listed
/// under the instance `below` group levels above its own (the one the
/// selection is made from).
#[derive(Debug, Clone, PartialEq)]
struct IndexedSelection {
    tag_code: u32,
    path: u64,
    depth: u8,
    below: usize,
    steps: Vec<GroupStep>,
    filters: Vec<Filter>,
}

/// The selections of a mapping's paths, each filled for a message by one
/// walk over its segments ([`SelectionIndex::fill`]) instead of a walk of
/// the group instances per rule: a rule whose selection is empty costs a
/// lookup. Paths the index cannot take (an instance number, `SG5#1`, or
/// groups nested deeper than [`MAX_DEPTH`]) keep the walk.
#[derive(Debug, Clone, Default)]
struct SelectionIndex {
    selections: Vec<IndexedSelection>,
    /// Per segment tag (as a [`tag_code`]), the selections of that tag.
    by_tag: FxHashMap<u32, Vec<usize>>,
}

/// The deepest group nesting an instance's packed path holds.
const MAX_DEPTH: usize = 4;

/// Group numbers from the message level packed into one number, 16 bits
/// a level from the top (so paths of the same depth are equal exactly
/// when their numbers are); none when deeper than [`MAX_DEPTH`].
fn pack(groups: &[u16]) -> Option<u64> {
    if groups.len() > MAX_DEPTH {
        return None;
    }
    Some(
        groups
            .iter()
            .enumerate()
            .fold(0u64, |path, (depth, g)| pack_below(path, depth, *g)),
    )
}

/// A packed path of `depth` groups (below [`MAX_DEPTH`]) with `group`
/// added under them.
fn pack_below(path: u64, depth: usize, group: u16) -> u64 {
    path | (u64::from(group) << (48 - 16 * depth))
}

/// True when segment `seg` of `text` passes every filter.
fn passes(text: &MessageText, seg: usize, filters: &[Filter]) -> bool {
    filters
        .iter()
        .all(|f| f.holds(text.get(seg, f.at.element, f.at.component)))
}

impl SelectionIndex {
    /// Indexes the paths of a scope's rules (`scope`: the groups from the
    /// message level to the instances its rules are read in) and of its
    /// lists', recording in each path its selection.
    fn add_scope(
        &mut self,
        scope: &[u16],
        fields: &mut [CompiledField],
        lists: &mut [CompiledList],
        each: &mut [CompiledEach],
    ) {
        for field in fields {
            self.add(scope, &mut field.from);
        }
        for each in each {
            self.add(scope, &mut each.path);
        }
        for list in lists {
            let mut inner = scope.to_vec();
            inner.extend(&list.groups);
            self.add_scope(&inner, &mut list.fields, &mut list.lists, &mut list.each);
        }
    }

    fn add(&mut self, scope: &[u16], path: &mut PathSpec) {
        path.indexed = None;
        let Some(base) = scope.len().checked_sub(path.up) else {
            return;
        };
        let mut full = scope.get(..base).unwrap_or(&[]).to_vec();
        full.extend(&path.groups);
        let Some(packed) = pack(&full) else {
            return;
        };
        if path.group_filters.iter().any(|step| step.nth.is_some())
            || path.group_filters.len() > path.groups.len()
        {
            return;
        }
        let selection = IndexedSelection {
            tag_code: path.tag_code,
            path: packed,
            depth: u8::try_from(full.len()).unwrap_or(u8::MAX),
            below: path.groups.len(),
            steps: path.group_filters.clone(),
            filters: path.filters.clone(),
        };
        let id = match self.selections.iter().position(|s| *s == selection) {
            Some(id) => id,
            None => {
                self.by_tag
                    .entry(selection.tag_code)
                    .or_default()
                    .push(self.selections.len());
                self.selections.push(selection);
                self.selections.len() - 1
            }
        };
        path.indexed = Some(id);
    }

    /// Fills `entries` (one list per selection) with the message's
    /// selected segments: (instance selected from, segment), in message
    /// order. Nothing is marked read: a run marks what it selects.
    fn fill(&self, tree: &Tree, text: &MessageText, entries: &mut Vec<Vec<(usize, usize)>>) {
        entries.resize_with(self.selections.len(), Vec::new);
        for list in entries.iter_mut() {
            list.clear();
        }
        for (seg, info) in tree.segments.iter().enumerate() {
            let Some(candidates) = self.by_tag.get(&info.tag) else {
                continue;
            };
            let Some((owner, instance)) = info
                .owner
                .and_then(|o| tree.instances.get(o).map(|i| (o, i)))
            else {
                continue;
            };
            for &id in candidates {
                let Some(selection) = self.selections.get(id) else {
                    continue;
                };
                if selection.depth != instance.depth
                    || selection.path != instance.path
                    || !passes(text, seg, &selection.filters)
                {
                    continue;
                }
                let steps_hold = selection.steps.iter().enumerate().all(|(j, step)| {
                    step.filters.is_empty()
                        || tree
                            .step_trigger(owner, selection.below, j)
                            .is_some_and(|trigger| passes(text, trigger, &step.filters))
                });
                if !steps_hold {
                    continue;
                }
                if let (Some(from), Some(list)) =
                    (tree.ancestor(owner, selection.below), entries.get_mut(id))
                {
                    list.push((from, seg));
                }
            }
        }
    }
}

/// Compiles in the context of one mapping file.
struct Compiler<'a> {
    name: &'a str,
    text: &'a str,
    release: &'a Release,
    syntax_version: u8,
    schema_root: Value,
    /// Later releases read for codes written `CODE@RELEASE`, by name.
    later: std::cell::RefCell<FxHashMap<String, Arc<Release>>>,
    /// The message type mapped (for the guides' segment changes).
    message: String,
}

impl Compiler<'_> {
    /// Segment `tag` as the mapping reads it: the directory's definition
    /// for the syntax version, with the repeating elements an
    /// implementation guide of the message writes as positions expanded
    /// ([`crate::schema::Change::Positions`]; PAXLST COM under IATA), so
    /// that a value the validator let through has a place.
    fn definition(&self, tag: &str) -> Option<Arc<crate::schema::SegmentDef>> {
        let def = self.release.definition(tag, self.syntax_version)?;
        let changes = crate::schema::position_changes(&self.message, tag);
        if changes.is_empty() {
            return Some(def);
        }
        let mut expanded = (*def).clone();
        for id in changes {
            expanded = expanded.with_positions(id);
        }
        Some(Arc::new(expanded))
    }

    fn error(&self, span: std::ops::Range<usize>, message: String) -> MappingError {
        MappingError {
            file: self.name.to_owned(),
            line: super::line_of(self.text, span.start),
            message,
        }
    }

    /// The nodes of the group reached by `groups` from `level`.
    fn level<'n>(&self, mut level: &'n [Node], groups: &[u16]) -> Result<&'n [Node], String> {
        for number in groups {
            level = level
                .iter()
                .find_map(|n| match n {
                    Node::Group {
                        number: g,
                        children,
                        ..
                    } if g == number => Some(children.as_slice()),
                    _ => None,
                })
                .ok_or_else(|| {
                    let here: Vec<String> = level
                        .iter()
                        .filter_map(|n| match n {
                            Node::Group { number, .. } => Some(format!("SG{number}")),
                            Node::Segment { .. } => None,
                        })
                        .collect();
                    format!(
                        "segment group SG{number} is not at this level of the {} segment table (groups here: {})",
                        self.release.name,
                        if here.is_empty() { "none".to_owned() } else { here.join(", ") }
                    )
                })?;
        }
        Ok(level)
    }

    /// Resolves `C082/3039`, `1004`, `3039#2` in a segment to a position.
    fn position(&self, tag: &str, element_path: &str) -> Result<Pos, String> {
        let def = self.definition(tag).ok_or_else(|| {
            format!(
                "segment {tag} is not in the segment directory of {}",
                self.release.name
            )
        })?;
        let mut parts = element_path.split('/');
        let first = parts.next().unwrap_or("");
        let second = parts.next();
        if parts.next().is_some() {
            return Err(format!(
                "{element_path:?}: at most an element and a component"
            ));
        }
        let (id, nth) = split_occurrence(first)?;
        let (element, edef) = def
            .elements
            .iter()
            .enumerate()
            .filter(|(_, e)| e.id == id)
            .nth(nth)
            .ok_or_else(|| {
                let ids: Vec<&str> = def.elements.iter().map(|e| e.id.as_str()).collect();
                format!(
                    "segment {tag} has no data element {first} (it has {})",
                    ids.join(", ")
                )
            })?;
        match (&edef.kind, second) {
            (ElementKind::Simple(_), None) => Ok(Pos {
                element,
                component: 0,
            }),
            (ElementKind::Simple(_), Some(c)) => Err(format!(
                "{id} in {tag} is a simple data element; it has no component {c}"
            )),
            (ElementKind::Composite(components), Some(c)) => {
                let (cid, cnth) = split_occurrence(c)?;
                let component = components
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| k.id == cid)
                    .nth(cnth)
                    .map(|(i, _)| i)
                    .ok_or_else(|| {
                        let ids: Vec<&str> = components.iter().map(|k| k.id.as_str()).collect();
                        format!(
                            "composite {id} of {tag} has no component {c} (it has {})",
                            ids.join(", ")
                        )
                    })?;
                Ok(Pos { element, component })
            }
            (ElementKind::Composite(_), None) => Err(format!(
                "{id} in {tag} is a composite: name one of its components ({id}/…)"
            )),
        }
    }

    /// The data element id at a position, for code-list checks.
    fn element_id(&self, tag: &str, at: Pos) -> Option<String> {
        let def = self.definition(tag)?;
        let element = def.elements.get(at.element)?;
        match &element.kind {
            ElementKind::Simple(_) => Some(element.id.clone()),
            ElementKind::Composite(components) => {
                components.get(at.component).map(|c| c.id.clone())
            }
        }
    }

    /// True when the composite holding a position has a code list
    /// responsible agency (3055) component.
    fn names_agency(&self, tag: &str, at: Pos) -> bool {
        self.definition(tag).is_some_and(|def| {
            match def.elements.get(at.element).map(|e| &e.kind) {
                Some(ElementKind::Composite(components)) => {
                    components.iter().any(|c| c.id == "3055")
                }
                _ => false,
            }
        })
    }

    /// `TAG[filter,filter]` → tag and filters, each code checked against
    /// the release's code list for its element.
    fn segment_step(&self, step: &str) -> Result<(String, Vec<Filter>), String> {
        let (tag, rest) = match step.find('[') {
            Some(i) => (step.get(..i).unwrap_or(""), step.get(i..).unwrap_or("")),
            None => (step, ""),
        };
        if tag.len() != 3
            || !tag
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(format!("{step:?} is not a segment tag"));
        }
        let mut filters = Vec::new();
        let mut rest = rest;
        while !rest.is_empty() {
            let inner = rest
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .ok_or_else(|| format!("{step:?}: a filter is written [ELEMENT=CODE|CODE]"))?;
            for condition in inner.0.split(',') {
                let (element, codes) = condition
                    .split_once('=')
                    .ok_or_else(|| format!("{step:?}: a filter is written [ELEMENT=CODE|CODE]"))?;
                let (element, negate) = match element.trim().strip_suffix('!') {
                    Some(element) => (element.trim(), true),
                    None => (element.trim(), false),
                };
                let at = self.position(tag, &element.replace('.', "/"))?;
                let mut wanted: Vec<String> = Vec::new();
                for written in codes.split('|').map(str::trim) {
                    // `~CODE`: another agency's code, on purpose. Only a
                    // composite with a code list agency (3055) may carry
                    // one (PAXLST DOC: IATA's P passport, V visa), which
                    // the validator does not check either; any other code
                    // must be in the release's list, so a typo is caught.
                    let (code, foreign) = match written.strip_prefix('~') {
                        Some(code) => (code.trim(), true),
                        None => (written, false),
                    };
                    let list = self
                        .element_id(tag, at)
                        .and_then(|id| self.release.codes(&id).map(|list| (id, list)));
                    // `CODE@D11A`: a code a later directory adds, which an
                    // implementation guide uses (PAXLST RFF SEA, the seat):
                    // it must be in that release's list of the element, and
                    // not in this one's.
                    if let Some((code, later)) = code.split_once('@') {
                        if foreign {
                            return Err(format!(
                                "{step:?}: ~{code}@{later}: a code is either another agency's \
                                 (~) or a later release's (@), not both"
                            ));
                        }
                        let code = code.trim();
                        self.later_code(step, tag, at, code, later.trim())?;
                        wanted.push(code.to_owned());
                        continue;
                    }
                    if foreign {
                        if !self.names_agency(tag, at) {
                            return Err(format!(
                                "{step:?}: ~{code} marks another agency's code, but the element is \
                                 not in a composite with a code list agency (3055)"
                            ));
                        }
                        if let Some((id, list)) = &list
                            && list.codes.contains(code)
                        {
                            return Err(format!(
                                "{step:?}: {code:?} is a code of {id} ({}) in {}: write it without ~",
                                list.name, self.release.name
                            ));
                        }
                    } else if let Some((id, list)) = &list
                        && !list.codes.contains(code)
                    {
                        let hint = if self.names_agency(tag, at) {
                            " (another agency's code is written ~CODE)"
                        } else {
                            ""
                        };
                        return Err(format!(
                            "{code:?} is not a code of {id} ({}) in {}{hint}",
                            list.name, self.release.name
                        ));
                    }
                    wanted.push(code.to_owned());
                }
                filters.push(Filter {
                    at,
                    codes: wanted,
                    negate,
                });
            }
            rest = inner.1;
        }
        Ok((tag.to_owned(), filters))
    }

    /// Checks `code@later` of a filter: `later` is a release after this
    /// one (in the hub's directories or beside this one) whose code list of
    /// the element has `code`, which this release's list does not.
    fn later_code(
        &self,
        step: &str,
        tag: &str,
        at: Pos,
        code: &str,
        later: &str,
    ) -> Result<(), String> {
        let here = &self.release.name;
        if crate::schema::release_order(later) <= crate::schema::release_order(here) {
            return Err(format!(
                "{step:?}: {code}@{later} names a release that is not later than {here}"
            ));
        }
        let Some(id) = self.element_id(tag, at) else {
            return Err(format!(
                "{step:?}: {code}@{later}: the element is not coded"
            ));
        };
        if let Some(list) = self.release.codes(&id)
            && list.codes.contains(code)
        {
            return Err(format!(
                "{step:?}: {code:?} is a code of {id} ({}) in {here}: write it without @{later}",
                list.name
            ));
        }
        let cached = self.later.borrow().get(later).cloned();
        let named = match cached {
            Some(release) => Some(release),
            None => {
                // In the hub's own directories (opened once a process),
                // else beside this release (read for this file: a folder
                // that cannot be read is as one without it).
                let opened = crate::schema::Directories::global()
                    .release(later)
                    .ok()
                    .flatten()
                    .or_else(|| self.release.sibling(later).ok().flatten().map(Arc::new));
                if let Some(opened) = &opened {
                    self.later
                        .borrow_mut()
                        .insert(later.to_owned(), opened.clone());
                }
                opened
            }
        };
        let has = |release: &Release| {
            release
                .codes(&id)
                .is_some_and(|list| list.codes.contains(code))
        };
        match named {
            Some(release) if has(&release) => Ok(()),
            Some(_) => Err(format!(
                "{step:?}: {code:?} is not a code of {id} in {later} either"
            )),
            // The release named is not available: a later one that is
            // vouches for the code; with none later available it cannot
            // be checked here (the validator holds every message's codes
            // against the directories it has).
            None => {
                let directories = crate::schema::Directories::global();
                let later_ones = directories.later_than(here);
                let vouched = later_ones.iter().any(|name| {
                    directories
                        .release(name)
                        .ok()
                        .flatten()
                        .is_some_and(|release| has(&release))
                });
                if vouched || later_ones.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "{step:?}: {code}@{later}: {later} is not available, and {code:?} is \
                         not a code of {id} in any later release that is ({})",
                        later_ones.join(", ")
                    ))
                }
            }
        }
    }

    /// Compiles `SG6/NAD[3035=IM]/C082/3039` relative to `base` groups.
    fn path(
        &self,
        def: &MessageDef,
        base: &[u16],
        path: &str,
        need_value: bool,
    ) -> Result<PathSpec, String> {
        let steps: Vec<&str> = path.split('/').collect();
        let up = steps.iter().take_while(|s| **s == "..").count();
        if up > base.len() {
            return Err(format!(
                "{path:?} goes up {up} group level(s) from a place {} deep in the segment table",
                base.len()
            ));
        }
        let mut groups = Vec::new();
        let mut group_filter_texts = Vec::new();
        let mut group_nth = Vec::new();
        let mut i = up;
        while let Some(step) = steps.get(i) {
            let (name, filter) = match step.find('[') {
                Some(at) => (step.get(..at).unwrap_or(""), step.get(at..).unwrap_or("")),
                None => (*step, ""),
            };
            // `SG5#1`: only the first instance of the group; `SG2#last`
            // only the last.
            let (name, nth) = match name.split_once('#') {
                Some((name, n)) => match n.parse::<usize>() {
                    Ok(n) if n >= 1 && name.starts_with("SG") => (name, Some(Nth::At(n))),
                    _ if n == "last" && name.starts_with("SG") => (name, Some(Nth::Last)),
                    _ => {
                        return Err(format!(
                            "{step:?}: an instance of a group is written SGn#k, k from 1, or SGn#last"
                        ));
                    }
                },
                None => (name, None),
            };
            match name.strip_prefix("SG").and_then(|n| n.parse::<u16>().ok()) {
                Some(n) => {
                    groups.push(n);
                    group_filter_texts.push(filter);
                    group_nth.push(nth);
                }
                None => break,
            }
            i += 1;
        }
        let mut full: Vec<u16> = base.get(..base.len() - up).unwrap_or_default().to_vec();
        let above = full.len();
        full.extend(&groups);
        // A group step's filters are conditions on its trigger segment
        // (the first of the group), checked like a segment's.
        let mut group_filters = Vec::with_capacity(groups.len());
        for (k, text) in group_filter_texts.iter().enumerate() {
            if text.is_empty() {
                group_filters.push(GroupStep {
                    filters: Vec::new(),
                    nth: group_nth.get(k).copied().flatten(),
                });
                continue;
            }
            let group_level =
                self.level(&def.nodes, full.get(..above + k + 1).unwrap_or_default())?;
            let Some(trigger) = group_level.iter().find_map(|n| match n {
                Node::Segment { tag, .. } => Some(tag.as_str()),
                Node::Group { .. } => None,
            }) else {
                return Err(format!(
                    "{path:?}: the group has no trigger segment to filter on"
                ));
            };
            let (_, filters) = self.segment_step(&format!("{trigger}{text}"))?;
            group_filters.push(GroupStep {
                filters,
                nth: group_nth.get(k).copied().flatten(),
            });
        }
        let level = self.level(&def.nodes, &full)?;
        let Some(step) = steps.get(i) else {
            return Err(format!("{path:?} names no segment"));
        };
        let (tag, filters) = self.segment_step(step)?;
        if !level
            .iter()
            .any(|n| matches!(n, Node::Segment { tag: t, .. } if *t == tag))
        {
            let here: Vec<&str> = level
                .iter()
                .filter_map(|n| match n {
                    Node::Segment { tag, .. } => Some(tag.as_str()),
                    Node::Group { .. } => None,
                })
                .collect();
            return Err(format!(
                "segment {tag} is not at this level of the {} {} segment table (segments here: {})",
                self.release.name,
                def.kind,
                here.join(", ")
            ));
        }
        let rest: Vec<&str> = steps.get(i + 1..).unwrap_or_default().to_vec();
        let (value, more) = if rest.is_empty() {
            if need_value {
                return Err(format!("{path:?} names a segment, not a data element"));
            }
            (None, Vec::new())
        } else {
            let mut all = self.positions(&tag, &rest.join("/"))?.into_iter();
            (all.next(), all.collect())
        };
        Ok(PathSpec {
            up,
            groups,
            group_filters,
            tag_code: tag_code(&tag),
            tag,
            filters,
            value,
            more,
            selection: 0,
            indexed: None,
        })
    }

    /// [`position`](Self::position), or the positions of a range of
    /// occurrences written on the last step: `C108/4440#1-5` (first to
    /// fifth), `C058/3124#2-` (second to last).
    fn positions(&self, tag: &str, element_path: &str) -> Result<Vec<Pos>, String> {
        match super::expand_range(element_path, |path| self.position(tag, path))? {
            Some(all) => Ok(all),
            None => Ok(vec![self.position(tag, element_path)?]),
        }
    }

    /// Checks that `rule`'s field can hold its type of value; returns the
    /// largest integer it holds.
    fn target_check(&self, schema: &Value, rule: &FieldRule) -> Result<u64, MappingError> {
        rule.check_options()
            .and_then(|()| rule.wco_only())
            .map_err(|m| self.error(rule.to.span(), m))?;
        let node = schema_field(&self.schema_root, schema, rule.to.get_ref())
            .map_err(|m| self.error(rule.to.span(), m))?;
        let found = schema_type(node).unwrap_or("object");
        let want: &[&str] = match (rule.kind, rule.all) {
            (_, true) => &["array"],
            (ValueType::Text, _) => &["string"],
            (ValueType::Decimal, _) => &["string", "number"],
            (ValueType::Integer, _) => &["integer"],
            (ValueType::Date, _) => &["object"],
            (ValueType::Boolean, _) => &["boolean"],
        };
        if !want.contains(&found) {
            return Err(self.error(
                rule.to.span(),
                format!(
                    "{} is {found} in the canonical model; a {:?} value cannot go there",
                    rule.to.get_ref(),
                    rule.kind
                ),
            ));
        }
        let by_format = match node.get("format").and_then(Value::as_str) {
            Some("uint8") => u64::from(u8::MAX),
            Some("uint16") => u64::from(u16::MAX),
            Some("uint32") => u64::from(u32::MAX),
            _ => u64::MAX,
        };
        let max = node
            .get("maximum")
            .and_then(Value::as_u64)
            .map_or(by_format, |m| m.min(by_format));
        Ok(max)
    }

    fn field(
        &self,
        def: &MessageDef,
        schema: &Value,
        base: &[u16],
        rule: &FieldRule,
    ) -> Result<CompiledField, MappingError> {
        let max = self.target_check(schema, rule)?;
        let from = self
            .path(def, base, rule.from.get_ref(), true)
            .map_err(|m| self.error(rule.from.span(), m))?;
        let date_format = match (&rule.date_format, rule.kind) {
            (Some(path), ValueType::Date) => Some(
                self.position(&from.tag, path.get_ref())
                    .map_err(|m| self.error(path.span(), m))?,
            ),
            (None, ValueType::Date) => {
                return Err(self.error(
                    rule.from.span(),
                    "a date needs date_format, the path of its 2379 code".into(),
                ));
            }
            (Some(path), _) => {
                return Err(self.error(
                    path.span(),
                    "date_format is only for type = \"date\"".into(),
                ));
            }
            (None, _) => None,
        };
        match (from.more.is_empty(), rule.all || rule.join.is_some()) {
            (false, false) => {
                return Err(self.error(
                    rule.from.span(),
                    "a range of occurrences needs `all = true` (a list of them) or `join` \
                     (one text of them)"
                        .into(),
                ));
            }
            (true, _) if rule.join.is_some() => {
                return Err(self.error(
                    rule.from.span(),
                    "`join` needs a range of occurrences to join, e.g. C108/4440#1-5".into(),
                ));
            }
            _ => {}
        }
        Ok(CompiledField {
            to: Target::new(rule.to.get_ref()),
            source: rule.from.get_ref().clone(),
            from,
            kind: rule.kind,
            date_format,
            default_format: rule.default_format.clone(),
            past: rule.past,
            near: rule.near,
            codes: rule.codes.clone(),
            pass_other: rule.pass_other,
            skip_codes: rule.skip_codes.clone(),
            skip_other: rule.skip_other,
            all: rule.all,
            distinct: rule.distinct,
            last: rule.last,
            join: rule.join.clone(),
            join_segments: rule.join_segments.clone(),
            max,
            factor: rule.factor,
        })
    }

    fn constants(
        &self,
        schema: &Value,
        constants: &[Constant],
    ) -> Result<Vec<(Target, Value)>, MappingError> {
        constants
            .iter()
            .map(|c| {
                schema_field(&self.schema_root, schema, c.to.get_ref())
                    .map_err(|m| self.error(c.to.span(), m))?;
                let value = serde_json::to_value(&c.value)
                    .map_err(|e| self.error(c.to.span(), e.to_string()))?;
                Ok((Target::new(c.to.get_ref()), value))
            })
            .collect()
    }

    /// The schema of the items of the list field `to` of `schema`; an
    /// error when it is not a list.
    fn list_items<'s>(
        &'s self,
        schema: &'s Value,
        to: &toml::Spanned<String>,
    ) -> Result<&'s Value, MappingError> {
        let node = schema_field(&self.schema_root, schema, to.get_ref())
            .map_err(|m| self.error(to.span(), m))?;
        if schema_type(node) != Some("array") {
            return Err(self.error(
                to.span(),
                format!("{} is not a list in the canonical model", to.get_ref()),
            ));
        }
        Ok(node
            .get("items")
            .map(|i| super::resolve(&self.schema_root, i))
            .unwrap_or(node))
    }

    fn list(
        &self,
        def: &MessageDef,
        schema: &Value,
        base: &[u16],
        rule: &ListRule,
    ) -> Result<CompiledList, MappingError> {
        let items = self.list_items(schema, &rule.to)?;
        let mut groups = Vec::new();
        for step in rule.group.get_ref().split('/') {
            let n = step
                .strip_prefix("SG")
                .and_then(|n| n.parse::<u16>().ok())
                .ok_or_else(|| {
                    self.error(
                        rule.group.span(),
                        format!("{step:?} is not a segment group (SGn)"),
                    )
                })?;
            groups.push(n);
        }
        let mut full = base.to_vec();
        full.extend(&groups);
        let level = self
            .level(&def.nodes, &full)
            .map_err(|m| self.error(rule.group.span(), m))?;
        let when = match &rule.when {
            Some(when) => {
                let (tag, filters) = self
                    .segment_step(when.get_ref())
                    .map_err(|m| self.error(when.span(), m))?;
                let trigger = level.first().map(Node::trigger).unwrap_or("");
                if tag != trigger {
                    return Err(self.error(
                        when.span(),
                        format!("the group's trigger segment is {trigger}, not {tag}"),
                    ));
                }
                filters
            }
            None => Vec::new(),
        };
        Ok(CompiledList {
            to: Target::new(rule.to.get_ref()),
            groups,
            when,
            constants: self.constants(items, &rule.constant)?,
            fields: rule
                .field
                .iter()
                .map(|f| self.field(def, items, &full, f))
                .collect::<Result<_, _>>()?,
            lists: rule
                .list
                .iter()
                .map(|l| self.list(def, items, &full, l))
                .collect::<Result<_, _>>()?,
            each: rule
                .each
                .iter()
                .map(|e| self.each(def, items, &full, e))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Compiles an `each` list of the item whose schema is `schema`, at
    /// the level of the `base` groups.
    fn each(
        &self,
        def: &MessageDef,
        schema: &Value,
        base: &[u16],
        rule: &EachRule,
    ) -> Result<CompiledEach, MappingError> {
        let items = self.list_items(schema, &rule.to)?;
        let from = rule.from.get_ref();
        let at_from = |m: String| self.error(rule.from.span(), m);
        let (segment, element) = from.rsplit_once('/').ok_or_else(|| {
            at_from(format!(
                "{from:?}: write the segment and the composite, e.g. GID/C213"
            ))
        })?;
        let path = self.path(def, base, segment, false).map_err(at_from)?;
        let seg_def = self.definition(&path.tag).ok_or_else(|| {
            at_from(format!(
                "segment {} is not in the segment directory",
                path.tag
            ))
        })?;
        let positions: Vec<usize> = seg_def
            .elements
            .iter()
            .enumerate()
            .filter(|(_, e)| e.id == element && matches!(e.kind, ElementKind::Composite(_)))
            .map(|(i, _)| i)
            .collect();
        if positions.is_empty() {
            return Err(at_from(format!(
                "segment {} has no composite {element}",
                path.tag
            )));
        }
        let mut fields = Vec::new();
        for f in &rule.field {
            if f.all
                || f.last
                || f.distinct
                || f.join.is_some()
                || f.date_format.is_some()
                || f.kind == ValueType::Date
            {
                return Err(self.error(
                    f.to.span(),
                    "a field of an `each` list reads one component of one occurrence: no \
                     all, last, distinct, join or dates"
                        .into(),
                ));
            }
            let max = self.target_check(items, f)?;
            let component = format!("{element}/{}", f.from.get_ref());
            let value = self
                .position(&path.tag, &component)
                .map_err(|m| self.error(f.from.span(), m))?;
            fields.push(CompiledField {
                to: Target::new(f.to.get_ref()),
                source: format!("{}/{component}", rule.from.get_ref()),
                from: PathSpec {
                    value: Some(value),
                    ..path.clone()
                },
                kind: f.kind,
                date_format: None,
                default_format: None,
                past: false,
                near: false,
                codes: f.codes.clone(),
                pass_other: f.pass_other,
                skip_codes: f.skip_codes.clone(),
                skip_other: f.skip_other,
                all: false,
                distinct: false,
                last: false,
                join: None,
                join_segments: None,
                max,
                factor: f.factor,
            });
        }
        Ok(CompiledEach {
            to: Target::new(rule.to.get_ref()),
            path,
            positions,
            fields,
        })
    }
}

/// Every segment tag of a segment table.
fn collect_tags(nodes: &[Node], out: &mut Vec<String>) {
    for node in nodes {
        match node {
            Node::Segment { tag, .. } => {
                if !out.contains(tag) {
                    out.push(tag.clone());
                }
            }
            Node::Group { children, .. } => collect_tags(children, out),
        }
    }
}

/// What makes two paths select the same segments: levels up, groups, tag
/// and filters.
type SelectionKey = (usize, Vec<u16>, Vec<GroupStep>, String, Vec<Filter>);

/// Numbers the paths of `fields`, of `each` lists and of the fields of
/// `lists` so that paths selecting the same segments share a number: a run
/// selects them once for consecutive fields.
fn number_selections(
    fields: &mut [CompiledField],
    lists: &mut [CompiledList],
    each: &mut [CompiledEach],
    seen: &mut Vec<SelectionKey>,
) {
    for field in fields {
        number_selection(&mut field.from, seen);
    }
    for each in each {
        number_selection(&mut each.path, seen);
    }
    for list in lists {
        number_selections(&mut list.fields, &mut list.lists, &mut list.each, seen);
    }
}

/// The number of `path`'s selection: that of an earlier path with the same
/// groups, tag and filters, or a new one.
fn number_selection(path: &mut PathSpec, seen: &mut Vec<SelectionKey>) {
    let known = seen
        .iter()
        .position(|(up, groups, group_filters, tag, filters)| {
            *up == path.up
                && *groups == path.groups
                && *group_filters == path.group_filters
                && *tag == path.tag
                && *filters == path.filters
        });
    path.selection = known.unwrap_or_else(|| {
        seen.push((
            path.up,
            path.groups.clone(),
            path.group_filters.clone(),
            path.tag.clone(),
            path.filters.clone(),
        ));
        seen.len() - 1
    });
}

/// `3039#2` → ("3039", 1): the second occurrence.
fn split_occurrence(id: &str) -> Result<(&str, usize), String> {
    match id.split_once('#') {
        None => Ok((id, 0)),
        Some((id, n)) => match n.parse::<usize>() {
            Ok(n) if n >= 1 => Ok((id, n - 1)),
            _ => Err(format!("{id}#{n}: the occurrence is a number from 1")),
        },
    }
}

impl EdifactMapping {
    /// The paths (as the mapping file writes them) of the rules of the
    /// message's own fields that set the field at `pointer` or a value
    /// below it, in rule order, each once.
    fn sources_of(&self, pointer: &str) -> Vec<&str> {
        let below = format!("{pointer}/");
        let mut sources: Vec<&str> = Vec::new();
        for field in &self.fields {
            let to = field.to.pointer.as_str();
            if (to == pointer || to.starts_with(&below)) && !sources.contains(&&*field.source) {
                sources.push(&field.source);
            }
        }
        sources
    }

    /// Checks `file` (its text `text`, named `name` in errors) against the
    /// message structure of `release` and the canonical model.
    pub fn compile(
        name: &str,
        text: &str,
        release: &Release,
        syntax_version: u8,
    ) -> Result<EdifactMapping, MappingError> {
        let file = MappingFile::parse(name, text)?;
        let whole = |message: String| MappingError {
            file: name.to_owned(),
            line: 1,
            message,
        };
        if file.format != "edifact" {
            return Err(whole(format!(
                "format {:?} is not an EDIFACT mapping",
                file.format
            )));
        }
        if !file
            .release
            .replace('.', "")
            .eq_ignore_ascii_case(&release.name.replace('.', ""))
        {
            return Err(whole(format!(
                "the file maps release {} but {} was given",
                file.release, release.name
            )));
        }
        let def = release
            .message(&file.message)
            .map_err(|e| whole(e.to_string()))?
            .ok_or_else(|| whole(format!("{} has no message {}", release.name, file.message)))?;
        let schema_root = crate::model::json_schema();
        let compiler = Compiler {
            name,
            text,
            release,
            syntax_version,
            schema_root,
            later: std::cell::RefCell::default(),
            message: file.message.clone(),
        };
        let target_schema = compiler
            .schema_root
            .get("properties")
            .and_then(|p| p.get(&file.target))
            .map(|t| super::resolve(&compiler.schema_root, t).clone())
            .ok_or_else(|| whole(format!("target {:?} is not a canonical type", file.target)))?;
        let constants = compiler.constants(&target_schema, &file.constant)?;
        let mut fields: Vec<CompiledField> = file
            .field
            .iter()
            .map(|f| compiler.field(&def, &target_schema, &[], f))
            .collect::<Result<_, _>>()?;
        let mut lists: Vec<CompiledList> = file
            .list
            .iter()
            .map(|l| compiler.list(&def, &target_schema, &[], l))
            .collect::<Result<_, _>>()?;
        let mut each: Vec<CompiledEach> = file
            .each
            .iter()
            .map(|e| compiler.each(&def, &target_schema, &[], e))
            .collect::<Result<_, _>>()?;
        number_selections(&mut fields, &mut lists, &mut each, &mut Vec::new());
        let mut index = SelectionIndex::default();
        index.add_scope(&[], &mut fields, &mut lists, &mut each);
        // Per segment of the message: which elements are simple (for
        // locations) and, when the file ignores some, which places are.
        let mut simple: FxHashMap<u32, Vec<bool>> = FxHashMap::default();
        let mut ignored: FxHashMap<u32, Vec<Vec<bool>>> = FxHashMap::default();
        let mut tags = Vec::new();
        collect_tags(&def.nodes, &mut tags);
        for tag in tags {
            let Some(seg) = compiler.definition(&tag) else {
                continue;
            };
            let kinds = seg
                .elements
                .iter()
                .map(|element| matches!(element.kind, ElementKind::Simple(_)))
                .collect();
            simple.insert(tag_code(&tag), kinds);
            if !file.ignore.is_empty() {
                let set = seg
                    .elements
                    .iter()
                    .map(|element| match &element.kind {
                        ElementKind::Simple(_) => vec![file.ignore.contains(&element.id)],
                        ElementKind::Composite(components) => components
                            .iter()
                            .map(|k| file.ignore.contains(&k.id))
                            .collect(),
                    })
                    .collect();
                ignored.insert(tag_code(&tag), set);
            }
        }
        Ok(EdifactMapping {
            name: name.to_owned(),
            ignored,
            simple,
            message: file.message,
            release: file.release,
            target: file.target,
            // Placed in the table as every implementation guide of the
            // message uses it (`schema::PROFILES`: PAXLST RFF repeated in
            // segment group 4 under IATA), so that no segment the
            // validator let through is left out.
            table: Table::new(&def.with_all_profiles()),
            constants,
            fields,
            lists,
            each,
            index,
        })
    }

    /// Maps one decoded message (UNH..UNT) to the target as JSON, with every
    /// problem and every value no rule read.
    pub fn apply(&self, message: &Message) -> (Value, Vec<Issue>) {
        let (value, issues, _) =
            self.run(message, Trace::Off, &|draft: Draft<'_>| draft.into_value());
        (value, issues)
    }

    /// [`apply`](Self::apply), plus where each value came from: JSON
    /// pointer of the canonical field → location of the segment and
    /// element (see [`super::Mapped::provenance`]).
    pub fn apply_located(&self, message: &Message) -> (Value, Vec<Issue>, Provenance) {
        self.run(message, Trace::All, &|draft: Draft<'_>| draft.into_value())
    }

    /// [`apply`](Self::apply) into the typed canonical object `T` (what
    /// the mapping's target names), read from the mapped values directly
    /// rather than from a JSON tree: the result, or the error
    /// `serde_json::from_value` would give for the JSON of `apply` with
    /// the JSON pointer of what it is about.
    pub fn apply_typed<T: serde::de::DeserializeOwned>(
        &self,
        message: &Message,
    ) -> (Result<T, Incomplete>, Vec<Issue>) {
        let (typed, issues, _) = self.run(message, Trace::Off, &|mut draft: Draft<'_>| {
            draft.deserialize_into::<T>()
        });
        (typed, issues)
    }

    /// [`apply_typed`](Self::apply_typed) with each value's provenance
    /// (as [`apply_located`](Self::apply_located)).
    pub fn apply_typed_located<T: serde::de::DeserializeOwned>(
        &self,
        message: &Message,
    ) -> (Result<T, Incomplete>, Vec<Issue>, Provenance) {
        self.run(message, Trace::All, &|mut draft: Draft<'_>| {
            draft.deserialize_into::<T>()
        })
    }

    /// [`apply_located`](Self::apply_located), read into the typed model
    /// of the mapping's target and written back as its canonical JSON (as
    /// [`super::typed`] does with the JSON of `apply_located`, without
    /// building that JSON first); an error says what is missing or wrong.
    pub fn canonical_located(
        &self,
        message: &Message,
    ) -> (Result<Value, Incomplete>, Vec<Issue>, Provenance) {
        self.canonical_traced(message, Trace::All)
    }

    /// [`canonical_located`](Self::canonical_located) with the provenance
    /// `trace` asks for.
    fn canonical_traced(
        &self,
        message: &Message,
        trace: Trace,
    ) -> (Result<Value, Incomplete>, Vec<Issue>, Provenance) {
        use crate::model::{CargoReport, Complete, Declaration, PassengerList};
        fn again<T: serde::de::DeserializeOwned + serde::Serialize + Complete>(
            mut draft: Draft<'_>,
        ) -> Result<Value, Incomplete> {
            let typed: T = match draft.deserialize_into() {
                Ok(typed) => typed,
                Err(mut e) => {
                    // Every gap, and what the rules can still read.
                    (e.gaps, e.rest) = super::gaps_of::<T>(draft.into_value());
                    return Err(e);
                }
            };
            if let Some(missing) = typed.incomplete() {
                // Its gap (the object's own) and itself for the rules.
                let (gaps, rest) = serde_json::to_value(&typed)
                    .map(super::gaps_of::<T>)
                    .unwrap_or_default();
                return Err(Incomplete {
                    gaps,
                    error: serde::de::Error::custom(missing),
                    pointer: String::new(),
                    rest,
                });
            }
            serde_json::to_value(typed).map_err(|error| Incomplete {
                error,
                pointer: String::new(),
                gaps: Vec::new(),
                rest: None,
            })
        }
        match self.target.as_str() {
            "declaration" => self.run(message, trace, &again::<Declaration>),
            "cargo_report" => self.run(message, trace, &again::<CargoReport>),
            "passenger_list" => self.run(message, trace, &again::<PassengerList>),
            other => {
                let (_, issues, provenance) = self.apply_located(message);
                let error = serde::de::Error::custom(format!("{other:?} is not a canonical type"));
                let incomplete = Incomplete {
                    error,
                    pointer: String::new(),
                    gaps: Vec::new(),
                    rest: None,
                };
                (Err(incomplete), issues, provenance)
            }
        }
    }

    /// Applies the rules and hands the filled draft to `finish`; `locate`:
    /// also record each value's provenance (`apply` does without, which
    /// saves a map entry per value).
    fn run<R>(
        &self,
        message: &Message,
        locate: Trace,
        finish: &dyn Fn(Draft<'_>) -> R,
    ) -> (R, Vec<Issue>, Provenance) {
        let reused = SCRATCH.try_with(|cell| {
            cell.try_borrow_mut()
                .ok()
                .map(|mut scratch| self.run_in(message, locate, &mut scratch, true, finish))
        });
        match reused {
            Ok(Some(result)) => result,
            _ => self.run_in(message, locate, &mut Scratch::default(), true, finish),
        }
    }

    /// One application; `indexed`: with the selections of the
    /// [`SelectionIndex`] (the same result, found faster; without it, the
    /// group instances are walked for every rule, as tests compare).
    fn run_in<R>(
        &self,
        message: &Message,
        locate: Trace,
        scratch: &mut Scratch,
        indexed: bool,
        finish: &dyn Fn(Draft<'_>) -> R,
    ) -> (R, Vec<Issue>, Provenance) {
        // The parser's text of the message, or one made from its segments.
        let mut own_text = std::mem::take(&mut scratch.text);
        let text = if message.text.is_empty() {
            own_text.refill(&message.segments);
            &own_text
        } else {
            &message.text
        };
        scratch.tree.build(&self.table, text, &mut scratch.stack);
        let mut entries = std::mem::take(&mut scratch.entries);
        if indexed {
            self.index.fill(&scratch.tree, text, &mut entries);
        }
        scratch.read.clear();
        scratch.read.resize(scratch.tree.elements, 0);
        let mut run = Run {
            message,
            text,
            tree: &scratch.tree,
            read: std::mem::take(&mut scratch.read),
            read_far: FxHashSet::default(),
            repetition: 0,
            issues: std::mem::take(&mut scratch.issues),
            ignored: &self.ignored,
            simple: &self.simple,
            provenance: Provenance::new(),
            tracing: locate != Trace::Off,
            found: std::mem::take(&mut scratch.found),
            selected: None,
            paths: std::mem::take(&mut scratch.paths),
            reached: std::mem::take(&mut scratch.reached),
            deferred: Vec::new(),
            entries: indexed.then_some(entries.as_slice()),
            expected: Vec::new(),
        };
        if !text.is_complete() {
            run.issues.push(Issue::error(
                Code::MappingIncomplete,
                Location {
                    message: Some(message.reference.clone()),
                    ..Location::default()
                },
                "the message has values beyond what can be mapped (a segment with more than \
                 65,535 elements or components, or over 4 GiB of values); those values are \
                 not mapped",
            ));
        }
        // The message as a whole: UNH.
        if locate != Trace::Off {
            let unh = run.source(0, None);
            run.provenance.insert(String::new(), unh);
        }
        let mut out = Draft::new();
        for (to, value) in &self.constants {
            out.put_whole(ROOT, &to.parts, value.clone());
        }
        // The JSON pointer of the object being filled, while tracing.
        let mut prefix = String::new();
        for field in &self.fields {
            run.field(0, field, &mut prefix, &mut out, ROOT);
        }
        // The message's own fields only: lists and their items untraced.
        if locate == Trace::Top {
            run.tracing = false;
        }
        for list in &self.lists {
            run.list(0, list, &mut prefix, &mut out, ROOT);
        }
        for each in &self.each {
            run.each(0, each, &mut prefix, &mut out, ROOT);
        }
        run.unread(&out);
        // The issues in a vector of their size; the buffers are kept for
        // the next message.
        let mut issues: Vec<Issue> = run.issues.drain(..).collect();
        super::cap_issues(
            &mut issues,
            Location {
                message: Some(message.reference.clone()),
                ..Location::default()
            },
        );
        let Run {
            issues: buffer,
            read,
            found,
            mut paths,
            reached,
            mut provenance,
            expected,
            ..
        } = run;
        // Where a value no rule set would have come from, for what the
        // object lacks (never in place of a value's own provenance).
        for (pointer, source) in expected {
            provenance.entry(pointer).or_insert(source);
        }
        scratch.reached = reached;
        paths.clear();
        scratch.paths = paths;
        scratch.issues = buffer;
        scratch.read = read;
        scratch.found = found;
        let result = finish(out);
        scratch.entries = entries;
        scratch.text = own_text;
        scratch.trim();
        (result, issues, provenance)
    }
}

/// Which provenance a mapping run records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trace {
    /// None.
    Off,
    /// The message's own fields (its references, parties, totals: what
    /// the hub's findings about a message name), not its lists.
    Top,
    /// Every value.
    All,
}

/// Buffers of [`EdifactMapping::apply`], kept per thread between messages
/// (the mapping runs once per message, so allocations add up).
#[derive(Default)]
struct Scratch {
    tree: Tree,
    stack: Vec<Frame>,
    read: Vec<u64>,
    found: Vec<usize>,
    issues: Vec<Issue>,
    paths: Vec<Option<String>>,
    reached: Vec<Vec<usize>>,
    /// The text of a message given as decoded segments.
    text: MessageText,
    /// Per indexed selection, what it selects (see [`SelectionIndex::fill`]).
    entries: Vec<Vec<(usize, usize)>>,
}

impl Scratch {
    /// Gives back the memory of an unusually large message.
    fn trim(&mut self) {
        const KEEP: usize = 1 << 14;
        if self.tree.segments.capacity() > KEEP
            || self.tree.instances.capacity() > KEEP
            || self.read.capacity() > KEEP
            || self.found.capacity() > KEEP
            || self.paths.capacity() > KEEP
            || self.reached.iter().any(|r| r.capacity() > KEEP)
            || self.entries.iter().any(|e| e.capacity() > KEEP)
            || self.text.capacity_bytes() > KEEP * 64
            || self.issues.capacity() > 256
        {
            *self = Scratch::default();
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// A 0-based place as the 1-based number of a location (the largest for
/// one beyond what a location holds).
fn place(index: usize) -> u16 {
    u16::try_from(index.saturating_add(1)).unwrap_or(u16::MAX)
}

/// A segment tag as a number, for comparisons without string compares:
/// the length and bytes of a tag of at most three bytes (so distinct
/// tags have distinct codes); `u32::MAX` for a longer tag, which no rule
/// names (rule tags are three characters).
/// A segment tag's bit in an instance's tag filter ([`Instance::tags`]):
/// one of 64, from a multiplicative hash of its code.
fn tag_bit(code: u32) -> u64 {
    1u64 << (code.wrapping_mul(0x9E37_79B1) >> 26)
}

fn tag_code(tag: &str) -> u32 {
    let bytes = tag.as_bytes();
    if bytes.len() > 3 {
        return u32::MAX;
    }
    bytes
        .iter()
        .fold(bytes.len() as u32, |code, b| (code << 8) | u32::from(*b))
}

/// A segment table compiled for placing segments: per level (0 is the
/// message level), its nodes with their trigger tags as [`tag_code`]s.
#[derive(Debug, Clone)]
struct Table {
    levels: Vec<Vec<TableNode>>,
}

#[derive(Debug, Clone, Copy)]
struct TableNode {
    /// The segment's tag, or the tag of the group's trigger segment. A
    /// tag longer than three characters (not in a directory) gets a code
    /// no segment of a message has.
    trigger: u32,
    max: u32,
    /// For a group: its number and the level of its children.
    group: Option<(u16, usize)>,
}

impl Table {
    fn new(def: &MessageDef) -> Table {
        let mut table = Table { levels: Vec::new() };
        table.add(&def.nodes);
        table
    }

    /// Adds the level of `nodes` (and, first, the levels of its groups);
    /// returns its index.
    fn add(&mut self, nodes: &[Node]) -> usize {
        let index = self.levels.len();
        self.levels.push(Vec::new());
        let level = nodes
            .iter()
            .map(|node| {
                let (max, group) = match node {
                    Node::Segment { max, .. } => (*max, None),
                    Node::Group {
                        number,
                        max,
                        children,
                        ..
                    } => (*max, Some((*number, self.add(children)))),
                };
                let trigger = match tag_code(node.trigger()) {
                    u32::MAX => u32::MAX - 1,
                    code => code,
                };
                TableNode {
                    trigger,
                    max,
                    group,
                }
            })
            .collect();
        if let Some(slot) = self.levels.get_mut(index) {
            *slot = level;
        }
        index
    }

    /// Moves the stack to where the segment tagged `tag` goes (the first
    /// position, at or after the current one, in the current group or an
    /// enclosing one, that carries its tag or its group's trigger); returns
    /// the instance it joins.
    fn place(&self, tree: &mut Tree, stack: &mut Vec<Frame>, tag: u32) -> Option<usize> {
        for depth in (0..stack.len()).rev() {
            let frame = *stack.get(depth)?;
            let nodes = self.levels.get(frame.level)?;
            if frame.count > 0
                && let Some(node) = nodes.get(frame.pos)
                && node.trigger == tag
                && frame.count < node.max
            {
                stack.truncate(depth + 1);
                if let Some(f) = stack.last_mut() {
                    f.count += 1;
                }
                return Some(tree.enter(stack, frame.instance, node));
            }
            let start = if frame.count > 0 {
                frame.pos + 1
            } else {
                frame.pos
            };
            for (p, node) in nodes.iter().enumerate().skip(start) {
                if node.trigger != tag {
                    continue;
                }
                stack.truncate(depth + 1);
                if let Some(f) = stack.last_mut() {
                    f.pos = p;
                    f.count = 1;
                }
                return Some(tree.enter(stack, frame.instance, node));
            }
        }
        None
    }
}

/// A position in the segment table while placing segments.
#[derive(Debug, Clone, Copy)]
struct Frame {
    level: usize,
    pos: usize,
    count: u32,
    instance: usize,
}

/// A message cut into segment-group instances (instance 0 is the message
/// level). The segments and the children of an instance are linked
/// lists, in message order.
#[derive(Default)]
struct Tree {
    segments: Vec<SegmentInfo>,
    instances: Vec<Instance>,
    /// Number of data elements in the message.
    elements: usize,
}

struct SegmentInfo {
    tag: u32,
    /// The instance that took the segment (none for a segment out of
    /// place).
    owner: Option<usize>,
    /// The next segment of the same instance.
    next: Option<usize>,
    /// Index of the segment's first data element among all of the message.
    first_element: usize,
}

struct Instance {
    group: u16,
    /// The tags of the segments in the instance and its groups, as a
    /// filter ([`tag_bit`]): a tag whose bit is not set is not there, so a
    /// selection of that tag from here finds nothing without a walk.
    tags: u64,
    /// None at the message level.
    parent: Option<usize>,
    /// Its group path from the message level, [`pack`]ed, and its depth
    /// (`u64::MAX` and `u8::MAX` below [`MAX_DEPTH`]).
    path: u64,
    depth: u8,
    first_segment: Option<usize>,
    last_segment: Option<usize>,
    first_child: Option<usize>,
    last_child: Option<usize>,
    next_sibling: Option<usize>,
}

impl Instance {
    fn new(group: u16, parent: Option<usize>) -> Instance {
        Instance {
            group,
            tags: 0,
            parent,
            path: 0,
            depth: 0,
            first_segment: None,
            last_segment: None,
            first_child: None,
            last_child: None,
            next_sibling: None,
        }
    }
}

impl Tree {
    /// Cuts `segments` into instances, in place of what the tree held.
    fn build(&mut self, table: &Table, text: &MessageText, stack: &mut Vec<Frame>) {
        let tree = self;
        tree.segments.clear();
        tree.segments.reserve(text.len());
        tree.instances.clear();
        tree.instances.push(Instance::new(0, None));
        tree.elements = 0;
        stack.clear();
        stack.push(Frame {
            level: 0,
            pos: 0,
            count: 0,
            instance: 0,
        });
        for index in 0..text.len() {
            let tag = tag_code(text.tag(index).unwrap_or(""));
            let owner = table.place(tree, stack, tag);
            tree.segments.push(SegmentInfo {
                tag,
                owner,
                next: None,
                first_element: tree.elements,
            });
            tree.elements += text.element_count(index);
            // The tag is in its instance and every enclosing one.
            let bit = tag_bit(tag);
            let mut up = owner;
            while let Some(i) = up.and_then(|i| tree.instances.get_mut(i)) {
                i.tags |= bit;
                up = i.parent;
            }
            let Some(instance) = owner.and_then(|i| tree.instances.get_mut(i)) else {
                continue;
            };
            let last = instance.last_segment.replace(index);
            if instance.first_segment.is_none() {
                instance.first_segment = Some(index);
            }
            if let Some(info) = last.and_then(|l| tree.segments.get_mut(l)) {
                info.next = Some(index);
            }
        }
    }

    /// The instance a segment at `node` of the frame's level joins: the
    /// frame's own, or, for a group, a new one (whose frame is pushed).
    fn enter(&mut self, stack: &mut Vec<Frame>, parent: usize, node: &TableNode) -> usize {
        let Some((group, level)) = node.group else {
            return parent;
        };
        let id = self.instances.len();
        let mut instance = Instance::new(group, Some(parent));
        if let Some(p) = self.instances.get(parent) {
            let depth = usize::from(p.depth);
            (instance.path, instance.depth) = if depth < MAX_DEPTH {
                (pack_below(p.path, depth, group), p.depth + 1)
            } else {
                (u64::MAX, u8::MAX)
            };
        }
        self.instances.push(instance);
        if let Some(p) = self.instances.get_mut(parent) {
            let last = p.last_child.replace(id);
            if p.first_child.is_none() {
                p.first_child = Some(id);
            }
            if let Some(sibling) = last.and_then(|l| self.instances.get_mut(l)) {
                sibling.next_sibling = Some(id);
            }
        }
        stack.push(Frame {
            level,
            pos: 0,
            count: 1,
            instance: id,
        });
        id
    }

    /// The trigger segment of the instance a path's group step `step`
    /// (0-based) reached on the way to a segment of `owner`, `below` group
    /// levels under the instance the path starts from.
    fn step_trigger(&self, owner: usize, below: usize, step: usize) -> Option<usize> {
        let up = below.checked_sub(step + 1)?;
        self.instances.get(self.ancestor(owner, up)?)?.first_segment
    }

    /// The instance `up` levels above `instance` (itself for 0).
    fn ancestor(&self, mut instance: usize, up: usize) -> Option<usize> {
        for _ in 0..up {
            instance = self.instances.get(instance)?.parent?;
        }
        Some(instance)
    }

    fn tag(&self, segment: usize) -> u32 {
        self.segments.get(segment).map_or(u32::MAX, |s| s.tag)
    }

    /// Whether `instance` or a group in it may hold a segment whose
    /// [`tag_bit`] is `bit` (false: it certainly holds none).
    fn may_hold(&self, instance: usize, bit: u64) -> bool {
        self.instances
            .get(instance)
            .is_some_and(|i| i.tags & bit != 0)
    }

    /// Segments directly in an instance, in message order.
    fn segments_of(&self, instance: usize) -> impl Iterator<Item = usize> + '_ {
        let first = self.instances.get(instance).and_then(|i| i.first_segment);
        std::iter::successors(first, |s| self.segments.get(*s).and_then(|i| i.next))
    }

    fn children_of(&self, instance: usize) -> impl Iterator<Item = usize> + '_ {
        let first = self.instances.get(instance).and_then(|i| i.first_child);
        std::iter::successors(first, |c| {
            self.instances.get(*c).and_then(|i| i.next_sibling)
        })
    }

    /// Calls `f` with every instance reached from `from` through the group
    /// numbers, in message order, leaving out those that hold no segment
    /// whose [`tag_bit`] is `bit`.
    fn visit(&self, from: usize, groups: &[u16], bit: u64, f: &mut impl FnMut(usize)) {
        match groups.split_first() {
            None => f(from),
            Some((number, rest)) => {
                for child in self.children_of(from) {
                    if self
                        .instances
                        .get(child)
                        .is_some_and(|i| i.group == *number && i.tags & bit != 0)
                    {
                        self.visit(child, rest, bit, f);
                    }
                }
            }
        }
    }
}

/// The state of one application of a mapping to a message.
struct Run<'a> {
    message: &'a Message,
    /// The message's values.
    text: &'a MessageText,
    tree: &'a Tree,
    /// Per data element of the message (see [`SegmentInfo::first_element`]),
    /// a bit per component of its first repetition that some rule read;
    /// components from the 64th on, and further repetitions (syntax
    /// version 4), are in `read_far` as (segment, element, repetition,
    /// component).
    read: Vec<u64>,
    read_far: FxHashSet<(usize, usize, usize, usize)>,
    /// The repetition (0-based) of the element being read by an `each`
    /// list, for locations; 0 otherwise.
    repetition: usize,
    issues: Vec<Issue>,
    ignored: &'a FxHashMap<u32, Vec<Vec<bool>>>,
    simple: &'a FxHashMap<u32, Vec<bool>>,
    provenance: Provenance,
    /// False while reading values that do not reach the output (items of
    /// a list whose field already holds something else).
    tracing: bool,
    /// The buffer of [`select`](Self::select), reused, and the instance
    /// and path number it holds the selection of.
    found: Vec<usize>,
    selected: Option<(usize, usize)>,
    /// Per instance, its group path once built (while tracing).
    paths: Vec<Option<String>>,
    /// Buffers for the instances a list reaches, one per nesting level.
    reached: Vec<Vec<usize>>,
    /// Rules that took nothing because an earlier rule set their field:
    /// instance, rule, object and value position (see `agrees`).
    deferred: Vec<(usize, &'a CompiledField, usize, Pos)>,
    /// The indexed selections of the message (see [`SelectionIndex`]),
    /// when the run uses them. Such a run skips the rules that select
    /// nothing, so it does not record those rules as `deferred`: asked
    /// later whether they agree, they would have selected nothing again,
    /// and so read nothing. What it reads, reports and gives is what the
    /// walk of the group instances does.
    entries: Option<&'a [Vec<(usize, usize)>]>,
    /// While tracing: where a single value would have come from when its
    /// rule selected a segment that does not give it (`BGM` without
    /// C106/1004), by JSON pointer, first rule first. What no rule sets is
    /// located there (see [`Run::expect`]).
    expected: Vec<(String, Location)>,
}

/// A numeric value as ISO 9735 writes one: an optional minus sign, digits,
/// and at most one decimal mark (the interchange's; either `.` or `,` when
/// it is not known) with digits on both sides. No plus sign, exponent,
/// digit grouping or space: `1,500` in an interchange whose mark is `.` is
/// not fifteen hundred, nor 1.5, but an error.
fn edifact_decimal(raw: &str, mark: Option<char>) -> Option<Decimal> {
    let body = raw.strip_prefix('-').unwrap_or(raw);
    let is_mark = |c: char| match mark {
        Some(m) => c == m,
        None => c == '.' || c == ',',
    };
    let (whole, fraction) = match body.find(is_mark) {
        Some(at) => (body.get(..at)?, Some(body.get(at + 1..)?)),
        None => (body, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !fraction.is_none_or(digits) {
        return None;
    }
    let sign = if raw.starts_with('-') { "-" } else { "" };
    let text = match fraction {
        Some(fraction) => format!("{sign}{whole}.{fraction}"),
        None => format!("{sign}{whole}"),
    };
    text.parse::<Decimal>().ok()
}

/// True when `raw` is a decimal that [`Decimal`] reads and writes back
/// unchanged: digits, without a leading zero unless it is the only one
/// before the point, then maybe a point and digits; 18 digits at most, so
/// nothing is rounded.
fn plain_decimal(raw: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (whole, fraction) = match raw.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (raw, None),
    };
    digits(whole)
        && (whole == "0" || !whole.starts_with('0'))
        && fraction.is_none_or(digits)
        && whole.len() + fraction.map_or(0, str::len) <= 18
}

/// The MAP001 message for a value: `value "…" is not mapped to the
/// canonical model`, the value quoted as `{:?}` does.
fn unmapped(value: &str) -> String {
    // Printable ASCII other than a quote or a backslash is not escaped.
    if value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        let mut message = String::with_capacity(value.len() + 45);
        message.push_str("value \"");
        message.push_str(value);
        message.push_str("\" is not mapped to the canonical model");
        message
    } else {
        format!("value {value:?} is not mapped to the canonical model")
    }
}

/// The position of the last `/` of a pointer.
fn last_slash(pointer: &str) -> Option<usize> {
    pointer.bytes().rposition(|b| b == b'/')
}

/// Appends a number in decimal (as `write!` would, without its machinery).
fn push_number(out: &mut String, n: usize) {
    if n >= 10 {
        push_number(out, n / 10);
    }
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// JSON pointer of a canonical value → where in the message it came from.
pub type Provenance = std::collections::BTreeMap<String, Location>;

/// `prefix` + `/` + the dotted field as pointer steps.
pub(crate) fn pointer(prefix: &str, dotted: &str) -> String {
    let mut out = String::from(prefix);
    for part in dotted.split('.') {
        out.push('/');
        // RFC 6901 escaping; model field names never need it, but a
        // mapping file could name anything the schema allows.
        if part.contains(['~', '/']) {
            out.push_str(&part.replace('~', "~0").replace('/', "~1"));
        } else {
            out.push_str(part);
        }
    }
    out
}

impl<'a> Run<'a> {
    /// The value at a position, without marking it read.
    fn peek(&self, seg: usize, at: Pos) -> Option<&'a str> {
        let text: &'a MessageText = self.text;
        text.get(seg, at.element, at.component)
    }

    /// Where the read bits of an element of a segment are, if it has it.
    fn slot(&self, seg: usize, element: usize) -> Option<usize> {
        let count = self.text.element_count(seg);
        let first = self.tree.segments.get(seg)?.first_element;
        (element < count).then_some(first + element)
    }

    fn mark(&mut self, seg: usize, at: Pos) {
        let bits = self
            .slot(seg, at.element)
            .and_then(|slot| self.read.get_mut(slot));
        match bits {
            Some(bits) if at.component < 64 => *bits |= 1 << at.component,
            _ => {
                self.read_far.insert((seg, at.element, 0, at.component));
            }
        }
    }

    /// The value at a position of a repetition of its element (syntax
    /// version 4), marked read.
    fn repeated_value(&mut self, seg: usize, at: Pos, repetition: usize) -> Option<&'a str> {
        if repetition == 0 {
            return self.value(seg, at);
        }
        let text: &'a MessageText = self.text;
        let v = text.get_repeated(seg, at.element, repetition, at.component)?;
        self.read_far
            .insert((seg, at.element, repetition, at.component));
        Some(v)
    }

    /// The value at a position, marked read.
    fn value(&mut self, seg: usize, at: Pos) -> Option<&'a str> {
        let v = self.peek(seg, at)?;
        self.mark(seg, at);
        Some(v)
    }

    /// True when every filter holds; the qualifiers of a segment that is
    /// selected count as read, those of one that is not do not.
    fn matches(&mut self, seg: usize, filters: &[Filter]) -> bool {
        let all = passes(self.text, seg, filters);
        if all {
            self.mark_filters(seg, filters);
        }
        all
    }

    /// Marks read the qualifiers of a segment that passes `filters`.
    fn mark_filters(&mut self, seg: usize, filters: &[Filter]) {
        for f in filters {
            if self.peek(seg, f.at).is_some() {
                self.mark(seg, f.at);
            }
        }
    }

    /// The segments the index lists for `path` from `instance` (the
    /// instance the path's groups start from), if the run has the index
    /// and the path is in it.
    fn indexed(&self, instance: usize, path: &PathSpec) -> Option<&'a [(usize, usize)]> {
        let entries: &'a [Vec<(usize, usize)>] = self.entries?;
        let list = entries.get(path.indexed?)?;
        let start = list.partition_point(|(from, _)| *from < instance);
        let rest = list.get(start..)?;
        let end = rest.partition_point(|(from, _)| *from == instance);
        rest.get(..end)
    }

    /// True when the run has the index and `path` selects nothing from
    /// `instance` by it, so that the rule can be skipped: it would read
    /// nothing.
    fn selects_nothing(&self, instance: usize, path: &PathSpec) -> bool {
        self.entries.is_some()
            && path.indexed.is_some()
            && self
                .tree
                .ancestor(instance, path.up)
                .and_then(|from| self.indexed(from, path))
                .is_none_or(<[_]>::is_empty)
    }

    fn location(&self, seg: usize, at: Option<Pos>) -> Location {
        let tag = self.text.tag(seg).map(str::to_owned);
        // A simple data element has no components: its place is the
        // element alone, as in CONTRL's S011.
        let kinds = tag.as_deref().and_then(|t| self.simple.get(&tag_code(t)));
        let simple = |a: &Pos| {
            kinds
                .and_then(|kinds| kinds.get(a.element))
                .copied()
                .unwrap_or(false)
        };
        Location {
            message: Some(self.message.reference.clone()),
            segment: Some(self.message.position + seg as u32),
            message_segment: Some(u32::try_from(seg + 1).unwrap_or(u32::MAX)),
            tag,
            element: at.map(|a| place(a.element)),
            repetition: (at.is_some() && self.repetition > 0)
                .then(|| u16::try_from(self.repetition + 1).unwrap_or(u16::MAX)),
            component: at.filter(|a| !simple(a)).map(|a| place(a.component)),
            ..Location::default()
        }
    }

    /// Where a value came from: [`location`](Self::location) plus the
    /// segment group path.
    fn source(&mut self, seg: usize, at: Option<Pos>) -> Location {
        let mut location = self.location(seg, at);
        location.group_path = self.group_path(seg);
        location
    }

    /// The group path of a segment, e.g. `SG30/SG33` (none at the message
    /// level and for a segment no group took).
    fn group_path(&mut self, seg: usize) -> Option<String> {
        let instance = self.tree.segments.get(seg)?.owner?;
        self.instance_path(instance)
            .filter(|p| !p.is_empty())
            .cloned()
    }

    /// The group path of an instance, built once.
    fn instance_path(&mut self, instance: usize) -> Option<&String> {
        let tree = self.tree;
        if self.paths.len() < tree.instances.len() {
            self.paths.resize(tree.instances.len(), None);
        }
        if self.paths.get(instance)?.is_none() {
            let inst = tree.instances.get(instance)?;
            let path = match inst.parent {
                None => String::new(),
                Some(parent) => {
                    let mut path = self.instance_path(parent).cloned().unwrap_or_default();
                    if !path.is_empty() {
                        path.push('/');
                    }
                    path.push_str("SG");
                    push_number(&mut path, usize::from(inst.group));
                    path
                }
            };
            *self.paths.get_mut(instance)? = Some(path);
        }
        self.paths.get(instance)?.as_ref()
    }

    /// Records where the value at `pointer` came from, and its enclosing
    /// objects down to the first `prefix` bytes of the pointer (at the
    /// segment, unless they have a source already); the first value set
    /// wins, as in [`set`].
    fn trace(&mut self, prefix: usize, pointer: &str, seg: usize, at: Option<Pos>) {
        if !self.tracing {
            return;
        }
        let source = self.source(seg, at);
        match self.provenance.entry(pointer.to_owned()) {
            Entry::Occupied(_) => return,
            Entry::Vacant(slot) => {
                slot.insert(source);
            }
        }
        // The enclosing objects without a source yet point at the segment.
        let mut whole: Option<Location> = None;
        let mut parent = pointer;
        while let Some(cut) = last_slash(parent) {
            parent = parent.get(..cut).unwrap_or("");
            if parent.len() <= prefix {
                break;
            }
            if self.provenance.contains_key(parent) {
                continue;
            }
            if whole.is_none() {
                whole = self.provenance.get(pointer).map(|source| Location {
                    element: None,
                    component: None,
                    ..source.clone()
                });
            }
            if let Some(whole) = &whole {
                self.provenance.insert(parent.to_owned(), whole.clone());
            }
        }
    }

    /// The segments a path selects below `instance`, in message order (in
    /// the reused buffer: give it back to `self.found`).
    fn select(&mut self, instance: usize, path: &PathSpec) -> Vec<usize> {
        let mut found = std::mem::take(&mut self.found);
        // The same selection as the field before: the same segments (the
        // qualifiers are read already).
        let selection = Some((instance, path.selection));
        if self.selected == selection {
            return found;
        }
        self.selected = selection;
        found.clear();
        let tree = self.tree;
        let Some(instance) = tree.ancestor(instance, path.up) else {
            return found;
        };
        let filtered_steps = path.group_filters.iter().any(|s| !s.filters.is_empty());
        if let Some(listed) = self.indexed(instance, path) {
            for &(_, seg) in listed {
                self.mark_filters(seg, &path.filters);
                if filtered_steps {
                    self.mark_steps(seg, path);
                }
                found.push(seg);
            }
            return found;
        }
        let bit = tag_bit(path.tag_code);
        if !tree.may_hold(instance, bit) {
            return found;
        }
        if path.group_filters.iter().all(GroupStep::is_plain) {
            tree.visit(instance, &path.groups, bit, &mut |inst| {
                for seg in tree.segments_of(inst) {
                    if tree.tag(seg) == path.tag_code && self.matches(seg, &path.filters) {
                        found.push(seg);
                    }
                }
            });
        } else {
            let mut reached = Vec::new();
            self.visit_filtered(instance, &path.groups, &path.group_filters, &mut reached);
            for inst in reached {
                for seg in tree.segments_of(inst) {
                    if tree.tag(seg) == path.tag_code && self.matches(seg, &path.filters) {
                        if filtered_steps {
                            self.mark_steps(seg, path);
                        }
                        found.push(seg);
                    }
                }
            }
        }
        found
    }

    /// Marks read the qualifiers of the triggers of the filtered group
    /// steps on the way to a segment selected for `path`: a trigger's
    /// qualifiers count as read where the path selects a segment below it
    /// (a CUX under the MOA that says what it is about), as a selected
    /// segment's own do; a trigger with nothing selected below it reads as
    /// any segment no rule selects.
    fn mark_steps(&mut self, seg: usize, path: &PathSpec) {
        let tree = self.tree;
        let Some(owner) = tree.segments.get(seg).and_then(|s| s.owner) else {
            return;
        };
        for (j, step) in path.group_filters.iter().enumerate() {
            if let Some(trigger) = tree.step_trigger(owner, path.groups.len(), j) {
                self.mark_filters(trigger, &step.filters);
            }
        }
    }

    /// The instances `groups` reach from `from`, each group step's
    /// instances only when their trigger segment passes its filters (not
    /// marked read here: see [`mark_steps`](Self::mark_steps)).
    fn visit_filtered(
        &mut self,
        from: usize,
        groups: &[u16],
        steps: &[GroupStep],
        reached: &mut Vec<usize>,
    ) {
        let Some((number, rest)) = groups.split_first() else {
            reached.push(from);
            return;
        };
        let plain = GroupStep::default();
        let (step, rest_steps) = match steps.split_first() {
            Some((first, others)) => (first, others),
            None => (&plain, &[][..]),
        };
        let tree = self.tree;
        let mut taken = 0;
        let mut last = None;
        for child in tree.children_of(from) {
            let Some(instance) = tree.instances.get(child).filter(|i| i.group == *number) else {
                continue;
            };
            if !step.filters.is_empty() {
                let Some(trigger) = instance.first_segment else {
                    continue;
                };
                if !passes(self.text, trigger, &step.filters) {
                    continue;
                }
            }
            taken += 1;
            match step.nth {
                None => self.visit_filtered(child, rest, rest_steps, reached),
                Some(Nth::At(n)) if n == taken => {
                    self.visit_filtered(child, rest, rest_steps, reached);
                    break;
                }
                Some(Nth::At(_)) => {}
                Some(Nth::Last) => last = Some(child),
            }
        }
        if let Some(child) = last {
            self.visit_filtered(child, rest, rest_steps, reached);
        }
    }

    /// Converts the value `raw` read at `at` of segment `seg` as `field`
    /// says.
    fn convert(
        &mut self,
        field: &'a CompiledField,
        seg: usize,
        at: Option<Pos>,
        raw: Cow<'a, str>,
    ) -> Option<Leaf<'a>> {
        let raw = match &field.codes {
            Some(codes) => match codes.get(&*raw) {
                Some(mapped) => Cow::Borrowed(mapped.as_str()),
                None if field.pass_other => raw,
                None if field.skip_other || field.skip_codes.iter().any(|c| *c == *raw) => {
                    return None;
                }
                None => {
                    let known: Vec<&str> = codes.keys().map(String::as_str).collect();
                    self.issues.push(Issue::error(
                        Code::MappingCodeUnknown,
                        self.location(seg, at),
                        format!(
                            "code {raw:?} for {} has no translation (mapped codes: {})",
                            field.to.to,
                            known.join(", ")
                        ),
                    ));
                    return None;
                }
            },
            None => raw,
        };
        let bad = |run: &mut Self, what: &str| {
            run.issues.push(Issue::error(
                Code::MappingValueInvalid,
                run.location(seg, at),
                format!("{raw:?} for {} is not {what}", field.to.to),
            ));
            None
        };
        match field.kind {
            ValueType::Text => Some(Leaf::Text(raw)),
            // As it would be written back.
            ValueType::Decimal if field.factor.is_some() => {
                let converted = edifact_decimal(&raw, self.message.decimal_mark)
                    .zip(field.factor)
                    .and_then(|(d, f)| d.checked_mul(f));
                match converted {
                    Some(d) => Some(Leaf::Text(Cow::Owned(d.normalize().to_string()))),
                    None => bad(self, "a decimal number that converts within range"),
                }
            }
            ValueType::Decimal
                if self.message.decimal_mark.is_none_or(|m| m == '.') && plain_decimal(&raw) =>
            {
                Some(Leaf::Text(raw))
            }
            ValueType::Decimal => match edifact_decimal(&raw, self.message.decimal_mark) {
                Some(d) => Some(Leaf::Text(Cow::Owned(d.to_string()))),
                None => bad(
                    self,
                    &match self.message.decimal_mark {
                        Some(mark) => {
                            format!("a decimal number (digits, {mark:?} as the decimal mark)")
                        }
                        None => "a decimal number".to_owned(),
                    },
                ),
            },
            ValueType::Integer => match raw.parse::<u64>() {
                Ok(n) if n <= field.max => Some(Leaf::Json(Value::from(n))),
                Ok(_) => bad(self, &format!("a whole number up to {}", field.max)),
                Err(_) => bad(self, "a whole number"),
            },
            ValueType::Boolean => match &*raw {
                "true" => Some(Leaf::Json(Value::Bool(true))),
                "false" => Some(Leaf::Json(Value::Bool(false))),
                _ => bad(self, "true or false"),
            },
            ValueType::Date => {
                let format = field
                    .date_format
                    .and_then(|p| self.value(seg, p))
                    .or(field.default_format.as_deref());
                let Some(format) = format else {
                    return bad(
                        self,
                        "a date with its 2379 format code (the format code is missing)",
                    );
                };
                match super::read_date(&raw, format, field.past, field.near) {
                    Ok(m) => serde_json::to_value(m).ok().map(Leaf::Json),
                    Err(e) => {
                        self.issues.push(Issue::error(
                            Code::MappingValueInvalid,
                            self.location(seg, at),
                            format!("{} : {e}", field.to.to),
                        ));
                        None
                    }
                }
            }
        }
    }

    /// Applies a field rule in `instance` to the object `obj` of `out`;
    /// `prefix` is the pointer of `obj` while tracing.
    fn field(
        &mut self,
        instance: usize,
        field: &'a CompiledField,
        prefix: &mut String,
        out: &mut Draft<'a>,
        obj: usize,
    ) {
        let Some(at) = field.from.value else { return };
        // With the index, a rule that selects nothing does nothing (see
        // `entries`).
        if !field.all && self.selects_nothing(instance, &field.from) {
            return;
        }
        // A single value an earlier rule has set stays (the first value
        // set wins), so this rule reads nothing: what only it would read
        // is reported as unmapped, not taken and dropped. A list an
        // earlier rule started is appended to.
        let earlier: &[usize] = match out.at(obj, &field.to.parts) {
            Held::Nothing => &[],
            Held::List(existing) if field.all => existing,
            Held::List(_) => return,
            Held::Other => {
                // Whether its value says the same is asked only if the
                // message has values left unread (see `agrees`).
                self.deferred.push((instance, field, obj, at));
                return;
            }
        };
        let segments = self.select(instance, &field.from);
        let base = prefix.len();
        if field.all {
            let mut values: Vec<Leaf<'a>> = Vec::new();
            for &seg in &segments {
                // Each occurrence of a range, in order.
                for at in field.from.positions() {
                    let Some(raw) = self.value(seg, at) else {
                        continue;
                    };
                    let Some(v) = self.convert(field, seg, Some(at), Cow::Borrowed(raw)) else {
                        continue;
                    };
                    // Read all the same; only the first of equal values
                    // is kept, also against those an earlier rule put in
                    // the list.
                    if field.distinct && (values.contains(&v) || out.holds(earlier, &v)) {
                        continue;
                    }
                    if self.tracing {
                        prefix.push_str(&field.to.pointer);
                        prefix.push('/');
                        push_number(prefix, earlier.len() + values.len());
                        self.trace(base, prefix, seg, Some(at));
                        prefix.truncate(base);
                    }
                    values.push(v);
                }
            }
            out.append_leaves(obj, &field.to.parts, values);
        } else if let Some(separator) = &field.join {
            // The first (or last) segment with any of the occurrences: the
            // present ones joined, located at the first of them.
            let has_any = |run: &Self, seg: usize| {
                field.from.positions().any(|at| run.peek(seg, at).is_some())
            };
            let hit = if field.last {
                segments.iter().rev().find(|seg| has_any(self, **seg))
            } else {
                segments.iter().find(|seg| has_any(self, **seg))
            };
            if hit.is_none() {
                self.expect(field, &segments, at, prefix);
            }
            if let Some(&seg) = hit {
                // One occurrence present is taken as it is; only several
                // are copied together. With `join_segments`, those of the
                // segments after it too.
                let mut text: Option<Cow<'a, str>> = None;
                let mut first = None;
                let joined_segments: Vec<usize> = if field.join_segments.is_some() {
                    segments.iter().copied().filter(|s| *s >= seg).collect()
                } else {
                    vec![seg]
                };
                for (n, &each) in joined_segments.iter().enumerate() {
                    let mut between = if n == 0 {
                        separator.as_str()
                    } else {
                        field.join_segments.as_deref().unwrap_or(separator)
                    };
                    for at in field.from.positions() {
                        let Some(raw) = self.value(each, at) else {
                            continue;
                        };
                        match &mut text {
                            None => {
                                text = Some(raw.into());
                                first = Some(at);
                            }
                            Some(joined) => {
                                let joined = joined.to_mut();
                                joined.push_str(between);
                                joined.push_str(raw);
                            }
                        }
                        between = separator;
                    }
                }
                if let Some(text) = text
                    && let Some(v) = self.convert(field, seg, first, text)
                {
                    if self.tracing {
                        prefix.push_str(&field.to.pointer);
                        self.trace(base, prefix, seg, first);
                        prefix.truncate(base);
                    }
                    out.put(obj, &field.to.parts, v);
                }
            }
        } else {
            // The first (or last) segment with the value; the others are
            // not read.
            let mut read = |seg: &usize| self.value(*seg, at).map(|raw| (*seg, raw));
            let hit = if field.last {
                segments.iter().rev().find_map(&mut read)
            } else {
                segments.iter().find_map(&mut read)
            };
            match hit {
                Some((seg, raw)) => {
                    if let Some(v) = self.convert(field, seg, Some(at), Cow::Borrowed(raw)) {
                        if self.tracing {
                            prefix.push_str(&field.to.pointer);
                            self.trace(base, prefix, seg, Some(at));
                            prefix.truncate(base);
                        }
                        out.put(obj, &field.to.parts, v);
                    }
                }
                None => self.expect(field, &segments, at, prefix),
            }
        }
        self.found = segments;
    }

    /// Notes, while tracing, where the single value of `field` would have
    /// been read in the first (or, with `last`, the last) of the
    /// `segments` it selected, none of which gives it: a value the
    /// canonical object then lacks is located there, at the element,
    /// rather than at the message as a whole.
    fn expect(&mut self, field: &CompiledField, segments: &[usize], at: Pos, prefix: &str) {
        if !self.tracing {
            return;
        }
        let seg = if field.last {
            segments.last()
        } else {
            segments.first()
        };
        // The first rule for a pointer wins when they are merged.
        if let Some(&seg) = seg {
            let pointer = format!("{prefix}{}", field.to.pointer);
            let source = self.source(seg, Some(at));
            self.expected.push((pointer, source));
        }
    }

    /// A rule whose field an earlier rule has set takes nothing; but the
    /// value it would have taken, when it says the same as the field holds
    /// (a CUX currency agreeing with the one its MOA gives), is no value
    /// left unmapped: it is marked read. A value that differs stays
    /// unread, and so reported (MAP001). Only plain texts are compared.
    fn agrees(
        &mut self,
        instance: usize,
        field: &'a CompiledField,
        out: &Draft<'a>,
        obj: usize,
        at: Pos,
    ) {
        if field.all
            || field.join.is_some()
            || field.codes.is_some()
            || field.kind != ValueType::Text
        {
            return;
        }
        let Some(held) = out.text_at(obj, &field.to.parts) else {
            return;
        };
        let segments = self.select(instance, &field.from);
        let peek = |seg: &usize| self.peek(*seg, at).map(|raw| (*seg, raw));
        let hit = if field.last {
            segments.iter().rev().find_map(peek)
        } else {
            segments.iter().find_map(peek)
        };
        if let Some((seg, raw)) = hit
            && raw == held
        {
            self.mark(seg, at);
        }
        self.found = segments;
    }

    /// Applies a list rule in `instance` to the object `obj` of `out`;
    /// `prefix` is the pointer of `obj` while tracing.
    fn list(
        &mut self,
        instance: usize,
        list: &'a CompiledList,
        prefix: &mut String,
        out: &mut Draft<'a>,
        obj: usize,
    ) {
        // Items are appended to a list an earlier rule started.
        let first = out.list_start(obj, &list.to.parts);
        let tree = self.tree;
        let mut reached = self.reached.pop().unwrap_or_default();
        tree.visit(instance, &list.groups, u64::MAX, &mut |inst| {
            reached.push(inst)
        });
        let mut items = Vec::with_capacity(reached.len());
        let base = prefix.len();
        for &inst in &reached {
            let trigger = tree.segments_of(inst).next();
            if !list.when.is_empty() {
                match trigger {
                    Some(seg) if self.matches(seg, &list.when) => {}
                    _ => continue,
                }
            }
            let item = out.object();
            for (to, value) in &list.constants {
                out.put_whole(item, &to.parts, value.clone());
            }
            // The item is where its group instance starts. When the field
            // already holds something that is not a list, the items are
            // dropped, so nothing of them is traced.
            let tracing = self.tracing;
            self.tracing = tracing && first.is_some();
            if self.tracing {
                prefix.push_str(&list.to.pointer);
                prefix.push('/');
                push_number(prefix, first.unwrap_or(0) + items.len());
                if let Some(seg) = trigger {
                    self.trace(base, prefix, seg, None);
                }
            }
            for field in &list.fields {
                self.field(inst, field, prefix, out, item);
            }
            for inner in &list.lists {
                self.list(inst, inner, prefix, out, item);
            }
            for each in &list.each {
                self.each(inst, each, prefix, out, item);
            }
            prefix.truncate(base);
            self.tracing = tracing;
            items.push(item);
        }
        reached.clear();
        self.reached.push(reached);
        out.append(obj, &list.to.parts, items);
    }

    /// Applies an `each` list in `instance` to the object `obj` of `out`:
    /// one object per occurrence of the composite, in each selected
    /// segment, that holds a mapped value; `prefix` is the pointer of
    /// `obj` while tracing.
    fn each(
        &mut self,
        instance: usize,
        each: &'a CompiledEach,
        prefix: &mut String,
        out: &mut Draft<'a>,
        obj: usize,
    ) {
        // Objects are appended to a list an earlier rule started; when the
        // field holds something else they are dropped, so not traced.
        let first = out.list_start(obj, &each.to.parts);
        let segments = self.select(instance, &each.path);
        let base = prefix.len();
        let mut items = Vec::new();
        let text = self.text;
        for &seg in &segments {
            // Before syntax version 4 each occurrence has its own position;
            // from version 4 on they are repetitions of one.
            let occurrences = each.positions.iter().flat_map(|&element| {
                (0..text.repetitions(seg, element).max(1)).map(move |r| (element, r))
            });
            for (element, repetition) in occurrences {
                self.repetition = repetition;
                let item = out.object();
                for field in &each.fields {
                    let Some(component) = field.from.value.map(|p| p.component) else {
                        continue;
                    };
                    let at = Pos { element, component };
                    let Some(raw) = self.repeated_value(seg, at, repetition) else {
                        continue;
                    };
                    let Some(v) = self.convert(field, seg, Some(at), Cow::Borrowed(raw)) else {
                        continue;
                    };
                    if self.tracing && first.is_some() {
                        prefix.push_str(&each.to.pointer);
                        prefix.push('/');
                        push_number(prefix, first.unwrap_or(0) + items.len());
                        prefix.push_str(&field.to.pointer);
                        self.trace(base, prefix, seg, Some(at));
                        prefix.truncate(base);
                    }
                    out.put(item, &field.to.parts, v);
                }
                if !out.is_empty_object(item) {
                    items.push(item);
                }
            }
        }
        self.repetition = 0;
        self.found = segments;
        out.append(obj, &each.to.parts, items);
    }

    /// True when the value at element `e`, repetition `r`, component `c`
    /// of segment `s` (`info`, its tag's `ignored` places) was read by no
    /// rule and is not ignored.
    fn left_unread(
        &self,
        (s, info, ignored): (usize, &SegmentInfo, Option<&Vec<Vec<bool>>>),
        e: usize,
        r: usize,
        c: usize,
    ) -> bool {
        // Field rules read first repetitions, `each` lists every
        // repetition of their composite.
        let read = match self.read.get(info.first_element + e) {
            Some(bits) if r == 0 && c < 64 => bits & (1 << c) != 0,
            _ => self.read_far.contains(&(s, e, r, c)),
        };
        !read
            && !ignored
                .and_then(|i| i.get(e))
                .and_then(|i| i.get(c))
                .is_some_and(|i| *i)
    }

    /// Every non-empty value of a data segment that no rule read (MAP001),
    /// at most 50 per message, then a count. At the first such value, the
    /// rules that took nothing because their field was set (`deferred`)
    /// are asked whether their value says the same (see `agrees`): most
    /// messages leave nothing unread and never pay for it; values before
    /// that one were all read, and stay so.
    fn unread(&mut self, out: &Draft<'a>) {
        let mut reported = 0usize;
        let mut more = 0usize;
        let text = self.text;
        let tree = self.tree;
        for (s, info) in tree.segments.iter().enumerate() {
            let segment = (s, info, self.ignored.get(&info.tag));
            for (i, (e, r, c)) in text.places(s).enumerate() {
                if !counts(info.tag, e) || !self.left_unread(segment, e, r, c) {
                    continue;
                }
                if !self.deferred.is_empty() {
                    for (instance, field, obj, at) in std::mem::take(&mut self.deferred) {
                        self.agrees(instance, field, out, obj, at);
                    }
                    if !self.left_unread(segment, e, r, c) {
                        continue;
                    }
                }
                if reported >= 50 {
                    more += 1;
                    continue;
                }
                reported += 1;
                self.repetition = r;
                let location = self.location(
                    s,
                    Some(Pos {
                        element: e,
                        component: c,
                    }),
                );
                self.repetition = 0;
                let value = text.values(s).nth(i).map_or("", |p| p.value);
                self.issues.push(Issue::warning(
                    Code::MappingUnmapped,
                    location,
                    unmapped(value),
                ));
            }
        }
        if more > 0 {
            self.issues.push(Issue::warning(
                Code::MappingUnmapped,
                Location {
                    message: Some(self.message.reference.clone()),
                    ..Location::default()
                },
                format!("{more} further values are not mapped"),
            ));
        }
    }
}

/// Whether element `element` of a segment tagged `tag` (a [`tag_code`])
/// is content a rule is expected to read. UNT and UNS carry nothing of the
/// message's content, nor do UNH's reference and type; the rest of UNH
/// does (0068 common access reference, S010 status of the transfer: part
/// 10 of a list sent in parts, the last), so what no rule reads of it
/// counts too.
fn counts(tag: u32, element: usize) -> bool {
    tag != tag_code("UNS") && tag != tag_code("UNT") && (tag != tag_code("UNH") || element >= 2)
}

/// Sets a field given as its steps, creating objects on the way; the
/// first value set wins, and a key is allocated only when it is inserted.
fn put(out: &mut Map<String, Value>, parts: &[String], value: Value) {
    let Some((last, path)) = parts.split_last() else {
        return;
    };
    let mut map = out;
    for part in path {
        if !map.contains_key(part.as_str()) {
            map.insert(part.clone(), Value::Object(Map::new()));
        }
        match map.get_mut(part.as_str()) {
            Some(Value::Object(inner)) => map = inner,
            _ => return,
        }
    }
    if let serde_json::map::Entry::Vacant(slot) = map.entry(last.clone()) {
        slot.insert(value);
    }
}

type Cached = Result<Arc<EdifactMapping>, MappingError>;
type CacheKey = (std::path::PathBuf, String, u8);
type Cache = std::sync::Mutex<std::collections::HashMap<CacheKey, Cached>>;

/// Compiled mappings, per file, release and syntax version, for the process.
fn cache() -> &'static Cache {
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The compiled mapping for a message type and release, loaded once.
pub fn mapping_for(
    message_type: &str,
    release: &Release,
    syntax_version: u8,
) -> Result<Arc<EdifactMapping>, MappingError> {
    let short = release.name.replace('.', "");
    let Some(path) = super::find_edifact(message_type, &short) else {
        return Err(MappingError {
            file: format!("mappings/edifact/{short}/{message_type}.toml"),
            line: 0,
            message: format!("no mapping for {message_type} {}", release.name),
        });
    };
    let key = (path.clone(), release.name.clone(), syntax_version);
    if let Ok(map) = cache().lock()
        && let Some(found) = map.get(&key)
    {
        return found.clone();
    }
    let name = path.display().to_string();
    let compiled = match std::fs::read_to_string(&path) {
        Ok(text) => EdifactMapping::compile(&name, &text, release, syntax_version).map(Arc::new),
        Err(e) => Err(MappingError {
            file: name,
            line: 0,
            message: e.to_string(),
        }),
    };
    if let Ok(mut map) = cache().lock() {
        map.insert(key, compiled.clone());
    }
    compiled
}

/// Maps every message of a parsed interchange (kept, with their segments or text) through
/// the mapping of its type and release.
pub fn map_interchange(
    parsed: &crate::edifact::Parsed,
    directories: &crate::schema::Directories,
) -> Vec<super::Mapped> {
    map_messages(parsed, directories, Trace::All, None)
}

/// [`map_interchange`] recording the provenance of each message's own
/// fields only (its references, parties, totals), not of its lists' items:
/// what findings about a message as a whole name. A message whose
/// canonical object cannot be built is traced whole. Provenance is most
/// of what mapping a large interchange holds (and a third of the mapping's
/// work), and most messages never need it; [`trace_message`] records the
/// rest for one that does (a rule finding about a goods item, an
/// amendment applied to its declaration).
pub fn map_interchange_top(
    parsed: &crate::edifact::Parsed,
    directories: &crate::schema::Directories,
) -> Vec<super::Mapped> {
    map_messages(parsed, directories, Trace::Top, None)
}

/// Records the whole provenance of `mapped`, message `index` of `parsed`
/// (in [`crate::edifact::Interchange::all_messages`] order, as
/// [`map_interchange_top`] returns them): maps it again, tracing every
/// value. The mapping is deterministic, so the canonical object and issues
/// are the ones `mapped` holds already; only its provenance is replaced.
pub fn trace_message(
    mapped: &mut super::Mapped,
    parsed: &crate::edifact::Parsed,
    directories: &crate::schema::Directories,
    index: usize,
) {
    if let Some(again) = map_message(parsed, directories, index) {
        mapped.provenance = again.provenance;
    }
}

/// Message `index` of `parsed` (in
/// [`crate::edifact::Interchange::all_messages`] order) mapped alone, with
/// the provenance of every value; none when there is no such message.
pub fn map_message(
    parsed: &crate::edifact::Parsed,
    directories: &crate::schema::Directories,
    index: usize,
) -> Option<super::Mapped> {
    map_messages(parsed, directories, Trace::All, Some(index)).pop()
}

fn map_messages(
    parsed: &crate::edifact::Parsed,
    directories: &crate::schema::Directories,
    trace: Trace,
    only: Option<usize>,
) -> Vec<super::Mapped> {
    let interchange = &parsed.interchange;
    let version: u8 = interchange.syntax_version.parse().unwrap_or(3);
    let mut out = Vec::new();
    for (index, message) in interchange.all_messages().enumerate() {
        if only.is_some_and(|only| only != index) {
            continue;
        }
        let name = format!("{}{}", message.version, message.release);
        let mut mapped = super::Mapped {
            message: message.reference.clone(),
            message_type: message.message_type.clone(),
            target: String::new(),
            canonical: None,
            issues: Vec::new(),
            provenance: Provenance::new(),
            partial: None,
        };
        let here = Location {
            message: Some(message.reference.clone()),
            ..Location::default()
        };
        if message.message_type.is_empty() {
            mapped.issues.push(Issue::error(
                Code::MappingUnavailable,
                here,
                "the message has no type (UNH S009/0065 is empty), so no mapping applies"
                    .to_owned(),
            ));
            out.push(mapped);
            continue;
        }
        // The mappings are of UN/EDIFACT directory messages; another
        // agency's CUSDEC (an EANCOM or a national subset under its own
        // code) has its own structure, which they cannot read.
        if message.agency != "UN" {
            mapped.issues.push(Issue::error(
                Code::MappingUnavailable,
                here,
                format!(
                    "message {} is controlled by agency {:?}, not UN (UNH S009/0051): the \
                     mappings read UN/EDIFACT directory messages only, so it cannot be mapped",
                    message.message_type, message.agency
                ),
            ));
            out.push(mapped);
            continue;
        }
        let release = match directories.release(&name) {
            Ok(Some(release)) => release,
            Ok(None) | Err(_) => {
                mapped.issues.push(Issue::error(
                    Code::MappingUnavailable,
                    here,
                    format!(
                        "directory {name} is not available, so {} cannot be mapped",
                        message.message_type
                    ),
                ));
                out.push(mapped);
                continue;
            }
        };
        let mapping = match mapping_for(&message.message_type, &release, version) {
            Ok(mapping) => mapping,
            Err(e) => {
                mapped
                    .issues
                    .push(Issue::error(Code::MappingUnavailable, here, e.to_string()));
                out.push(mapped);
                continue;
            }
        };
        mapped.target = mapping.target.clone();
        let (mut canonical, mut issues, mut provenance) = mapping.canonical_traced(message, trace);
        // An object that cannot be built: its error is located through the
        // whole provenance.
        if canonical.is_err() && trace != Trace::All {
            (canonical, issues, provenance) = mapping.canonical_traced(message, Trace::All);
        }
        for location in provenance.values_mut() {
            location.interchange = Some(interchange.control_reference.clone());
            location.group.clone_from(&message.group);
        }
        mapped.issues = issues;
        mapped.provenance = provenance;
        match canonical {
            Ok(canonical) => mapped.canonical = Some(canonical),
            Err(e) => {
                // Each gap at the segment that opened the object it is
                // about (or its nearest enclosing one), the pointer as the
                // field; a value's own location is kept whole (its element
                // and component), an object's is its segment. What is
                // left without them goes to the business rules.
                let gaps: Vec<super::Gap> = if e.gaps.is_empty() {
                    vec![super::Gap {
                        pointer: e.pointer.clone(),
                        why: e.error.to_string(),
                    }]
                } else {
                    e.gaps
                };
                let what = format!("the mapped {}", mapping.target);
                let mut found =
                    super::gap_issues(&gaps, &mapped.provenance, &here, &what, mapped.issues.len());
                // A field of the message's own that none of its rules
                // found a segment for: say where the mapping reads it.
                for (issue, gap) in found.iter_mut().zip(&gaps) {
                    let Some(pointer) = gap.missing_pointer() else {
                        continue;
                    };
                    let sources = mapping.sources_of(&pointer);
                    if issue.location.segment.is_none() && !sources.is_empty() {
                        issue.message.push_str(&format!(
                            "; the mapping reads it from {}, which the message does not give",
                            sources.join(" or ")
                        ));
                    }
                }
                mapped.issues.extend(found);
                mapped.partial = e.rest;
            }
        }
        out.push(mapped);
    }
    out
}

/// Parses an interchange held in memory (syntax and structure validation
/// against `directories`, every message kept with its text) and maps each of
/// its messages.
pub fn parse_and_map(
    bytes: &[u8],
    directories: &Arc<crate::schema::Directories>,
) -> std::io::Result<(crate::edifact::Parsed, Vec<super::Mapped>)> {
    let options = crate::edifact::ParseOptions {
        keep_messages: true,
        message_text: true,
        ..crate::edifact::ParseOptions::default()
    };
    let parsed = crate::edifact::Parser::new(bytes, options)
        .with_directories(directories.clone())
        .run(|_, _| {})?;
    let mapped = map_interchange(&parsed, directories);
    Ok((parsed, mapped))
}

/// Sets a dotted field of a JSON object (the first value set wins); shared
/// with the WCO mappings.
pub(crate) fn set_value(out: &mut Map<String, Value>, dotted: &str, value: Value) {
    let parts: Vec<String> = dotted.split('.').map(str::to_owned).collect();
    put(out, &parts, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_tags_are_known_by_their_codes() {
        assert!(!counts(tag_code("UNS"), 0));
        assert!(!counts(tag_code("UNT"), 1));
        assert!(!counts(tag_code("UNH"), 1));
        assert!(counts(tag_code("UNH"), 2));
        assert!(counts(tag_code("NAD"), 0));
    }

    /// The EDIFACT fixture messages a mapping reads and the messages of a
    /// generated interchange: (where from, message decoded, syntax version).
    fn mapped_messages(
        directories: &Arc<crate::schema::Directories>,
    ) -> Vec<(String, Message, u8)> {
        use crate::edifact::{ParseOptions, Parser};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut paths = Vec::new();
        let mut dirs = vec![root.join("fixtures/edifact")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "edi") {
                    paths.push(path);
                }
            }
        }
        paths.sort();
        let mut inputs: Vec<(String, Vec<u8>)> = paths
            .iter()
            .filter_map(|p| Some((p.display().to_string(), std::fs::read(p).ok()?)))
            .collect();
        inputs.push((
            "generated".into(),
            crate::edifact::sample::interchange(40_000),
        ));
        let mut out = Vec::new();
        for (path, bytes) in &inputs {
            let options = ParseOptions {
                keep_messages: true,
                decode_messages: true,
                ..ParseOptions::default()
            };
            let Ok(parsed) = Parser::new(&bytes[..], options)
                .with_directories(directories.clone())
                .run(|_, _| {})
            else {
                continue;
            };
            let version: u8 = parsed.interchange.syntax_version.parse().unwrap_or(3);
            for message in parsed.interchange.all_messages() {
                out.push((path.clone(), message.clone(), version));
            }
        }
        out
    }

    fn directories() -> Arc<crate::schema::Directories> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        Arc::new(crate::schema::Directories::new(&[
            root.join("schemas/untdid")
        ]))
    }

    /// The mapping of a message, if one reads it.
    fn mapping_of(
        directories: &crate::schema::Directories,
        message: &Message,
        version: u8,
    ) -> Option<(Arc<EdifactMapping>, Arc<Release>)> {
        let name = format!("{}{}", message.version, message.release);
        let release = directories.release(&name).ok().flatten()?;
        let mapping = mapping_for(&message.message_type, &release, version).ok()?;
        Some((mapping, release))
    }

    /// Maps `message` with and without the index and asserts the two
    /// agree; whether values were left unread.
    fn compare(
        mapping: &EdifactMapping,
        message: &Message,
        scratch: &mut Scratch,
        what: &str,
    ) -> bool {
        let json = |draft: Draft<'_>| draft.into_value();
        let with = mapping.run_in(message, Trace::All, scratch, true, &json);
        let without = mapping.run_in(message, Trace::All, &mut Scratch::default(), false, &json);
        assert_eq!(with, without, "{what}");
        with.1.iter().any(|i| i.code == Code::MappingUnmapped)
    }

    /// A run with the selection index gives what a run that walks the
    /// group instances gives (value, issues, provenance), for every
    /// EDIFACT fixture message a mapping reads, for a generated
    /// interchange, and for 59 mutations of each (many of which leave
    /// values unread, so that rules an earlier one took the field of are
    /// asked whether they agree).
    #[test]
    fn the_index_selects_what_the_walk_selects() {
        use crate::edifact::sample::Mutator;
        let directories = directories();
        let (mut compared, mut originals, mut unread, mut indexed_paths) = (0u64, 0u64, 0u64, 0);
        let mut indexed = Scratch::default();
        for (path, message, version) in &mapped_messages(&directories) {
            let Some((mapping, _)) = mapping_of(&directories, message, *version) else {
                continue;
            };
            indexed_paths = indexed_paths.max(mapping.index.selections.len());
            let mut mutator = Mutator::new(compared);
            for k in 0..60 {
                let changed;
                let message = if k == 0 {
                    message
                } else {
                    changed = mutator.mutate(message);
                    &changed
                };
                let what = format!("{path} {} #{k}", message.reference);
                unread += u64::from(compare(&mapping, message, &mut indexed, &what));
                originals += u64::from(k == 0);
                compared += 1;
            }
        }
        assert!(originals >= 60, "{originals} messages mapped");
        assert!(compared >= 4000, "{compared} messages compared");
        assert!(
            unread * 3 > compared,
            "{unread} of {compared} with values unread"
        );
        assert!(indexed_paths >= 40, "{indexed_paths} selections indexed");
    }

    /// A small deterministic generator.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, bound: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % bound.max(1)
        }
    }

    /// Segments in the order of a segment table, so that the messages
    /// have many group structures: each group taken 0 to 3 times and each
    /// segment 0 to 2 times (a group's trigger once; never more than the
    /// table allows), each a copy of a fixture segment of its tag or a
    /// made-up one; and now and then a segment out of place.
    fn table_shaped(
        nodes: &[Node],
        pool: &FxHashMap<String, Vec<crate::edifact::Segment>>,
        rng: &mut Lcg,
        out: &mut Vec<crate::edifact::Segment>,
        in_group: bool,
    ) {
        use crate::edifact::{Element, Segment};
        const CODES: &[&str] = &[
            "", "39", "40", "38", "123", "2", "9", "5", "11", "20", "AAA", "USD", "x", "AAE",
            "KGM", "G", "N", "CN", "DT", "IM", "EX", "27", "22", "830", "929", "137", "203",
            "12.50",
        ];
        let segment = |tag: &str, rng: &mut Lcg| match pool.get(tag) {
            Some(copies) if !copies.is_empty() && rng.next(3) > 0 => {
                copies.get(rng.next(copies.len())).cloned()
            }
            _ => {
                let elements = (0..1 + rng.next(5))
                    .map(|_| {
                        Element::composite(
                            (0..1 + rng.next(4))
                                .map(|_| CODES.get(rng.next(CODES.len())).copied().unwrap_or(""))
                                .collect::<Vec<_>>(),
                        )
                    })
                    .collect();
                Some(Segment::new(tag, elements))
            }
        };
        for (i, node) in nodes.iter().enumerate() {
            match node {
                Node::Segment { tag, max, .. } => {
                    if tag == "UNH" || tag == "UNT" {
                        continue;
                    }
                    let n = if i == 0 && in_group {
                        1
                    } else {
                        rng.next(3).min(*max as usize)
                    };
                    for _ in 0..n {
                        out.extend(segment(tag, rng));
                    }
                    if rng.next(40) == 0 {
                        let tags = [
                            "MOA", "CUX", "LOC", "DTM", "RFF", "NAD", "XYZ", "TDT", "CNI",
                        ];
                        let tag = tags.get(rng.next(tags.len())).copied().unwrap_or("XYZ");
                        out.extend(segment(tag, rng));
                    }
                }
                Node::Group { max, children, .. } => {
                    for _ in 0..rng.next(4).min(*max as usize) {
                        table_shaped(children, pool, rng, out, true);
                    }
                }
            }
        }
    }

    /// The same comparison on messages built to the segment table of
    /// each mapped message type and release (from the fixtures' segments),
    /// whose group instances nest and repeat as fixtures rarely do.
    #[test]
    fn the_index_selects_what_the_walk_selects_in_any_group_structure() {
        let directories = directories();
        let messages = mapped_messages(&directories);
        let mut pool: FxHashMap<String, Vec<crate::edifact::Segment>> = FxHashMap::default();
        for (_, message, _) in &messages {
            for segment in &message.segments {
                pool.entry(segment.tag.clone())
                    .or_default()
                    .push(segment.clone());
            }
        }
        let mut kinds: Vec<(String, String, String, u8)> = Vec::new();
        let mut rng = Lcg(12345);
        let (mut compared, mut unread) = (0u64, 0u64);
        let mut indexed = Scratch::default();
        for (_, base, version) in &messages {
            let kind = (
                base.message_type.clone(),
                base.version.clone(),
                base.release.clone(),
                *version,
            );
            if kinds.contains(&kind) {
                continue;
            }
            let Some((mapping, release)) = mapping_of(&directories, base, *version) else {
                continue;
            };
            let Ok(Some(def)) = release.message(&base.message_type) else {
                continue;
            };
            kinds.push(kind);
            for n in 0..150 {
                let mut segments: Vec<crate::edifact::Segment> =
                    base.segments.first().cloned().into_iter().collect();
                table_shaped(&def.nodes, &pool, &mut rng, &mut segments, false);
                segments.extend(base.segments.last().cloned());
                let mut message = base.clone();
                message.segments = segments;
                let what = format!(
                    "{} {}{} v{version} #{n}",
                    base.message_type, base.version, base.release
                );
                unread += u64::from(compare(&mapping, &message, &mut indexed, &what));
                compared += 1;
            }
        }
        // CUSDEC, CUSCAR and both PAXLST releases, in their syntax versions.
        assert!(kinds.len() >= 5, "{kinds:?}");
        assert!(
            unread * 2 > compared,
            "{unread} of {compared} with values unread"
        );
    }

    /// A path through a filtered group step reads the qualifiers of the
    /// step's trigger where it selects a segment below it, as the walk
    /// does, also where no other rule reads them (here the MOA of SG8,
    /// whose amount no rule takes); where it selects nothing, it reads
    /// none, whatever else the message holds.
    #[test]
    fn the_index_reads_the_triggers_of_filtered_steps() {
        use crate::edifact::{ParseOptions, Parser};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let directories = Arc::new(crate::schema::Directories::new(&[
            root.join("schemas/untdid")
        ]));
        let release = directories.release("D96B").unwrap().unwrap();
        let file = r#"
format = "edifact"
message = "CUSDEC"
release = "D96B"
target = "declaration"
ignore = ["1131", "3055"]

[[field]]
to = "lrn"
from = "BGM/C106/1004"

[[field]]
to = "totals.invoice.currency"
from = "SG8[C516.5025=39]/SG9/CUX[C504#1.6347=2]/C504#1/6345"
"#;
        let mapping = EdifactMapping::compile("test.toml", file, &release, 3).unwrap();
        // With the CUX, and without it (the path then selects nothing,
        // and the MOA it passes through is read by no rule).
        let head =
            "UNA:+.? 'UNB+UNOC:3+A:ZZZ+B:ZZZ+261124:1030+R1'UNH+1+CUSDEC:D:96B:UN'BGM++LRN1'";
        // The segments with values left unread: the MOA 40 (no step the
        // path takes), the MOA 39 when nothing is selected below it, and a
        // CUX under the MOA 40 (its currency and qualifier).
        let cases: [(&str, Option<&str>, &[u32]); 3] = [
            (
                "MOA+39'CUX+2:USD'MOA+40'UNS+D'UNS+S'UNT+8+1'",
                Some("USD"),
                &[5],
            ),
            ("MOA+39'MOA+40'UNS+D'UNS+S'UNT+7+1'", None, &[3, 4]),
            (
                "MOA+39'MOA+40'CUX+2:EUR'UNS+D'UNS+S'UNT+8+1'",
                None,
                &[3, 4, 5, 5],
            ),
        ];
        for (body, currency, expected) in cases {
            let edi = format!("{head}{body}UNZ+1+R1'");
            let options = ParseOptions {
                keep_messages: true,
                decode_messages: true,
                ..ParseOptions::default()
            };
            let parsed = Parser::new(edi.as_bytes(), options).run(|_, _| {}).unwrap();
            let message = parsed.interchange.all_messages().next().unwrap();
            let json = |draft: Draft<'_>| draft.into_value();
            let with = mapping.run_in(message, Trace::All, &mut Scratch::default(), true, &json);
            let without =
                mapping.run_in(message, Trace::All, &mut Scratch::default(), false, &json);
            assert_eq!(with, without);
            assert_eq!(
                with.0
                    .pointer("/totals/invoice/currency")
                    .and_then(Value::as_str),
                currency
            );
            let unread: Vec<u32> = with
                .1
                .iter()
                .filter(|i| i.code == Code::MappingUnmapped)
                .filter_map(|i| i.location.message_segment)
                .collect();
            assert_eq!(unread, expected, "{:?}", with.1);
        }
    }

    #[test]
    fn decimals_are_read_as_iso_9735_writes_them() {
        let read =
            |raw: &str, mark: Option<char>| edifact_decimal(raw, mark).map(|d| d.to_string());
        assert_eq!(read("1500", Some('.')).as_deref(), Some("1500"));
        assert_eq!(read("-12.50", Some('.')).as_deref(), Some("-12.50"));
        assert_eq!(read("12,50", Some(',')).as_deref(), Some("12.50"));
        assert_eq!(read("12,50", None).as_deref(), Some("12.50"));
        for wrong in [
            "1,500", "1_000", "1E5", "1e+5", "+1", "1.", ".5", "1.2.3", "1 000", "", "-", "--1",
            "9E27", "0x10", "1.5,0",
        ] {
            assert_eq!(read(wrong, Some('.')), None, "{wrong}");
        }
        assert_eq!(read("1.5", Some(',')), None);
        assert_eq!(read("1.500,25", None), None);
    }

    #[test]
    fn plain_decimals_read_back_unchanged() {
        let alphabet = ['0', '1', '9', '.', ',', '-', '+', ' ', 'e', '_'];
        let mut strings = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..5 {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            strings.extend(last.iter().cloned());
        }
        strings.extend(
            [
                "123456789012345678",
                "12345678901234567.8",
                "0.12345678901234567",
                "1234567890123456789",
                "0.000000000000000000",
                "99999999999999999.9",
            ]
            .map(String::from),
        );
        let mut plain = 0;
        for s in &strings {
            if plain_decimal(s) {
                plain += 1;
                let back = s.parse::<Decimal>().map(|d| d.to_string());
                assert_eq!(back.as_deref(), Ok(s.as_str()), "{s:?}");
            }
        }
        assert!(plain > 400);
        assert!(!plain_decimal("1234567890123456789"));
        assert!(!plain_decimal("01"));
        assert!(!plain_decimal("1."));
        assert!(!plain_decimal("-1"));
    }

    #[test]
    fn unmapped_message_quotes_as_debug() {
        for value in [
            "",
            "KGM",
            "a b",
            "12,5",
            "say \"hi\"",
            "back\\slash",
            "tab\there",
            "né",
            "\u{301}x",
            "~/&'",
            "\u{7f}",
            "line\n",
        ] {
            assert_eq!(
                unmapped(value),
                format!("value {value:?} is not mapped to the canonical model")
            );
        }
    }
}
