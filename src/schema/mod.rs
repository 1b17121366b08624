//! Message structures from the official UN/EDIFACT directories, and
//! validation of messages against them.
//!
//! The UNECE directory zips (UNTDID) are read as published — nested zips of
//! code page 437 text — at run time: a release is opened on first use (its
//! segment directory and code lists parsed once), each message's segment
//! table on first use of that message, and everything is cached and shared
//! across threads. Nothing derived from the directories is stored in the
//! project (the UN licence forbids distributing a modified directory).
//!
//! - [`Directories`]: where the zips are and which releases they hold.
//! - [`Release`]: one release (D.96B, D.01B, …): segments, code lists,
//!   messages.
//! - [`validate`]: the validator that walks a message's segments through
//!   its segment table and checks every element.
//! - [`service`]: the service segments ISO 9735 defines (not part of any
//!   directory).

pub mod service;
pub mod text;
pub mod validate;

use std::collections::{BTreeMap, HashMap};

use rustc_hash::{FxHashMap, FxHashSet};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use zip::ZipArchive;

pub use validate::{MessageValidator, Unsplit};

/// Mandatory or conditional, as the directories write `M` and `C`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Mandatory,
    Conditional,
}

/// Character class of a data element representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormatClass {
    /// `a`: alphabetic (no digits).
    Alpha,
    /// `n`: numeric (digits, a decimal mark, a leading minus sign).
    Numeric,
    /// `an`: any character of the repertoire.
    AlphaNumeric,
}

/// A representation such as `an..35` (min 0, max 35) or `n3` (exactly 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Format {
    pub class: FormatClass,
    pub min: u16,
    pub max: u16,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let class = match self.class {
            FormatClass::Alpha => "a",
            FormatClass::Numeric => "n",
            FormatClass::AlphaNumeric => "an",
        };
        if self.min == self.max {
            write!(f, "{class}{}", self.max)
        } else {
            write!(f, "{class}..{}", self.max)
        }
    }
}

/// A component data element of a composite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub id: String,
    pub name: String,
    pub status: Status,
    pub format: Format,
    /// The release has a code list for this element (set by
    /// [`Release::definition`]).
    pub coded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElementKind {
    Simple(Format),
    Composite(Vec<Component>),
}

/// A data element position in a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementDef {
    /// `C002`, `S009` or `1225`.
    pub id: String,
    pub name: String,
    pub status: Status,
    /// Maximum repetitions (syntax version 4; 1 before D.99A).
    pub max: u16,
    pub kind: ElementKind,
    /// The release has a code list for this (simple) element (set by
    /// [`Release::definition`]).
    pub coded: bool,
}

/// A segment as the segment directory defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentDef {
    pub tag: String,
    pub name: String,
    pub elements: Vec<ElementDef>,
}

/// One entry of a message's segment table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Segment {
        tag: String,
        status: Status,
        max: u32,
    },
    Group {
        number: u16,
        status: Status,
        max: u32,
        children: Vec<Node>,
    },
}

impl Node {
    /// The tag that starts this node: the segment's, or the group's first
    /// (trigger) segment's.
    pub fn trigger(&self) -> &str {
        match self {
            Node::Segment { tag, .. } => tag,
            Node::Group { children, .. } => children.first().map_or("", Node::trigger),
        }
    }

    pub fn status(&self) -> Status {
        match self {
            Node::Segment { status, .. } | Node::Group { status, .. } => *status,
        }
    }
}

/// A message's segment table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDef {
    pub kind: String,
    pub nodes: Vec<Node>,
    /// The implementation profile applied to the directory's table, if any
    /// (see [`PROFILES`]).
    pub profile: Option<String>,
    /// The relaxations applied (those that change a segment's status or
    /// repetitions are in `nodes` already; those that change its elements,
    /// a component or positions, are applied where the validator checks
    /// the segment).
    pub relaxations: Vec<Relaxation>,
}

/// Where a published implementation guide, named in UNH S009 0057
/// (association assigned code), uses a segment differently from the
/// directory's table (as conditional where the table makes it mandatory,
/// repeated where the table allows it once, a component left out, a
/// repeating element written as positions: see [`Change`]), the hub
/// validates messages naming that guide against the table as the guide
/// uses it. Nothing else changes; the table itself is always the
/// directory's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relaxation {
    /// Message type (UNH 0065).
    pub message: &'static str,
    /// Association assigned code (UNH 0057).
    pub association: &'static str,
    /// The segment group (its number in the table) and the tag of the
    /// segment changed there.
    pub group: u16,
    pub tag: &'static str,
    /// What the guide changes.
    pub change: Change,
    /// The guide, and why.
    pub source: &'static str,
}

/// How a [`Relaxation`] changes a segment of the directory's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Mandatory in the table, conditional in the guide.
    Conditional,
    /// Repeated up to this many times in the guide (never fewer than the
    /// table allows).
    Repeat(u32),
    /// A component of a composite of the segment, mandatory in the
    /// segment directory, conditional in the guide (composite and
    /// component ids).
    Component(&'static str, &'static str),
    /// The segment's last data element, which repeats, written as
    /// consecutive element positions as before syntax version 4, also in
    /// a version 4 message (see [`SegmentDef::with_positions`]).
    Positions(&'static str),
}

/// The repeating elements that some guide of `message` writes as
/// positions in segment `tag` ([`Change::Positions`]): a mapping reads
/// them wherever the message puts them.
pub fn position_changes(message: &str, tag: &str) -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = PROFILES
        .iter()
        .filter(|r| r.message == message && r.tag == tag)
        .filter_map(|r| match r.change {
            Change::Positions(id) => Some(id),
            _ => None,
        })
        .collect();
    // Each element once, though several groups (PAXLST COM in SG1 and SG4)
    // or guides name it.
    ids.sort_unstable();
    ids.dedup();
    ids
}

impl SegmentDef {
    /// Marks each data element and component coded when `coded` says its
    /// id has a code list to check.
    pub(crate) fn mark_coded(&mut self, coded: impl Fn(&str) -> bool) {
        for element in &mut self.elements {
            element.coded = coded(&element.id);
            if let ElementKind::Composite(components) = &mut element.kind {
                for c in components {
                    c.coded = coded(&c.id);
                }
            }
        }
    }

    /// This definition with its last data element, when it is `id` and
    /// repeats N times, written as N consecutive positions: the first
    /// keeps its status and its repetitions, the others are conditional
    /// and do not repeat (a sender may use either form). Any other
    /// element is left as it is: expanding one in the middle would move
    /// the positions of those after it.
    pub fn with_positions(&self, id: &str) -> SegmentDef {
        let mut def = self.clone();
        if let Some(last) = def
            .elements
            .last()
            .filter(|e| e.id == id && e.max > 1)
            .cloned()
        {
            for _ in 1..last.max {
                let mut more = last.clone();
                more.status = Status::Conditional;
                more.max = 1;
                def.elements.push(more);
            }
        }
        def
    }
}

/// The profiles the hub knows.
pub const PROFILES: &[Relaxation] = &[
    Relaxation {
        message: "PAXLST",
        association: "IATA",
        group: 2,
        tag: "DTM",
        change: Change::Conditional,
        source: "WCO/IATA/ICAO Guidelines on Advance Passenger Information: the PAXLST \
                 of the guide (UNH PAXLST:D:02B:UN:IATA, D:05B likewise) dates each leg \
                 in segment group 3 (LOC, DTM) and sends no DTM beside the TDT of segment \
                 group 2, which the D.02B and D.05B tables make mandatory (the D.21B \
                 table makes it conditional)",
    },
    Relaxation {
        message: "PAXLST",
        association: "IATA",
        group: 4,
        tag: "RFF",
        change: Change::Repeat(99_999),
        source: "WCO/IATA/ICAO Guidelines on Advance Passenger Information: a traveller's \
                 references each come in their own RFF of segment group 4 (AVF reservation \
                 number, ABO unique passenger reference, SEA seat, AEA government agency \
                 reference, CR customer reference), which the D.02B and D.05B tables allow \
                 once; the D.11A and D.21B tables repeat it up to 99999 times, as here",
    },
    Relaxation {
        message: "PAXLST",
        association: "IATA",
        group: 4,
        tag: "MEA",
        change: Change::Component("C174", "6411"),
        source: "WCO/IATA/ICAO Guidelines on Advance Passenger Information: a traveller's \
                 number of checked bags is MEA+CT++:N, a count with no measurement unit, \
                 while the D.02B and D.05B segment directories make C174 6411 mandatory; \
                 the D.21B directory makes it conditional, as here",
    },
    Relaxation {
        message: "PAXLST",
        association: "IATA",
        group: 1,
        tag: "COM",
        change: Change::Positions("C076"),
        source: "WCO/IATA/ICAO Guidelines on Advance Passenger Information: the reporting \
                 party's telephone and fax are written COM+number:TE+number:FX, one C076 per \
                 element position as before syntax version 4, in interchanges of syntax \
                 version 4 (UNOA:4), where the D.02B and D.05B directories give COM one \
                 position with C076 repeated up to 3 times",
    },
    Relaxation {
        message: "PAXLST",
        association: "IATA",
        group: 4,
        tag: "COM",
        change: Change::Positions("C076"),
        source: "WCO/IATA/ICAO Guidelines on Advance Passenger Information: a traveller's \
                 telephone numbers, written as the reporting party's (segment group 1)",
    },
];

impl MessageDef {
    /// This table as the implementation guide `association` uses it, when
    /// [`PROFILES`] has relaxations for it; `None` when it has none.
    pub fn profiled(&self, association: &str) -> Option<MessageDef> {
        let def = self.relaxed(|r| r.association == association)?;
        Some(MessageDef {
            profile: Some(association.to_owned()),
            ..def
        })
    }

    /// This table with the relaxations of every guide in [`PROFILES`] for
    /// its message applied (itself when there are none): a table every
    /// message valid under the directory's table or a guide's fits, which
    /// a mapping places the segments of any of them in.
    ///
    /// Its `profile` stays `None`: it is no guide's table, and must never
    /// be cached or used as the validator's (a mapping's placement only).
    pub fn with_all_profiles(&self) -> MessageDef {
        self.relaxed(|_| true).unwrap_or_else(|| self.clone())
    }

    fn relaxed(&self, take: impl Fn(&Relaxation) -> bool) -> Option<MessageDef> {
        let relaxations: Vec<&Relaxation> = PROFILES
            .iter()
            .filter(|r| r.message == self.kind && take(r))
            .collect();
        if relaxations.is_empty() {
            return None;
        }
        fn relax(nodes: &mut [Node], group: u16, relaxations: &[&Relaxation]) {
            for node in nodes {
                match node {
                    Node::Segment { tag, status, max } => {
                        for r in relaxations
                            .iter()
                            .filter(|r| r.group == group && r.tag == tag)
                        {
                            match r.change {
                                Change::Conditional => *status = Status::Conditional,
                                Change::Repeat(n) => *max = (*max).max(n),
                                Change::Component(..) | Change::Positions(_) => {}
                            }
                        }
                    }
                    Node::Group {
                        number, children, ..
                    } => relax(children, *number, relaxations),
                }
            }
        }
        let mut def = self.clone();
        relax(&mut def.nodes, 0, &relaxations);
        def.relaxations = relaxations.into_iter().copied().collect();
        Some(def)
    }

    /// Number of segment positions (segments, not groups) in the table.
    pub fn segment_positions(&self) -> usize {
        fn count(nodes: &[Node]) -> usize {
            nodes
                .iter()
                .map(|n| match n {
                    Node::Segment { .. } => 1,
                    Node::Group { children, .. } => count(children),
                })
                .sum()
        }
        count(&self.nodes)
    }

    /// Number of segment groups in the table.
    pub fn group_count(&self) -> usize {
        fn count(nodes: &[Node]) -> usize {
            nodes
                .iter()
                .map(|n| match n {
                    Node::Segment { .. } => 0,
                    Node::Group { children, .. } => 1 + count(children),
                })
                .sum()
        }
        count(&self.nodes)
    }
}

/// The code values of one coded data element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeList {
    pub name: String,
    pub codes: FxHashSet<String>,
}

/// Why a directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a readable zip: {reason}")]
    Zip { path: String, reason: String },
    #[error("{path}: {what} not found in the directory zip")]
    Missing { path: String, what: String },
    #[error("{path}: {file}: {source}")]
    Text {
        path: String,
        file: String,
        source: text::TextError,
    },
}

/// One directory release, opened from its official zip.
#[derive(Debug)]
pub struct Release {
    /// `D96B`, `D01B`, … (version and release as in UNH S009).
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    segments: FxHashMap<String, SegmentDef>,
    codes: FxHashMap<String, CodeList>,
    /// The service code list (UNSL) the directories of D.95B to D.97B
    /// carry, empty in the others: the codes of the service data elements
    /// (0083, 0085, …) as syntax version 3 defines them.
    service_codes: FxHashMap<String, CodeList>,
    /// Segment definitions as applied to an interchange, by (tag, whether
    /// the syntax version is below 4): see [`Release::definition`].
    applied: [RwLock<FxHashMap<String, Arc<SegmentDef>>>; 2],
    /// The same prepared for the validator's fast check, by the same key.
    plans: [RwLock<FxHashMap<String, Arc<validate::Plan>>>; 2],
    /// Code lists as compact sets for the fast check, built on first use.
    code_sets: RwLock<FxHashMap<String, Arc<validate::CodeSet>>>,
    index: Vec<String>,
    /// Message type → file name in the message zip.
    message_files: BTreeMap<String, String>,
    messages_zip: Mutex<ZipArchive<Cursor<Vec<u8>>>>,
    messages: RwLock<HashMap<String, Arc<MessageDef>>>,
    /// The same tables flattened for the validator, by message type.
    flats: RwLock<FxHashMap<String, Arc<validate::Flat>>>,
}

fn zip_error(path: &Path, e: impl std::fmt::Display) -> DirectoryError {
    DirectoryError::Zip {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn base_name(entry: &str) -> &str {
    entry.rsplit('/').next().unwrap_or(entry)
}

/// Reads every entry of `archive` whose base name satisfies `want`, with
/// its base name.
fn read_entries<R: Read + std::io::Seek>(
    archive: &mut ZipArchive<R>,
    path: &Path,
    want: impl Fn(&str) -> bool,
) -> Result<Vec<(String, Vec<u8>)>, DirectoryError> {
    let names: Vec<String> = entry_names(archive)
        .into_iter()
        .filter(|n| !n.ends_with('/') && want(base_name(n)))
        .collect();
    let mut out = Vec::new();
    for name in names {
        let mut file = archive.by_name(&name).map_err(|e| zip_error(path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| zip_error(path, e))?;
        out.push((base_name(&name).to_owned(), bytes));
    }
    Ok(out)
}

/// The entry names of a zip archive.
fn entry_names<R: Read + std::io::Seek>(archive: &ZipArchive<R>) -> Vec<String> {
    archive
        .file_names()
        .filter_map(Result::ok)
        .map(|n| n.into_owned())
        .collect()
}

fn open_zip(bytes: Vec<u8>, path: &Path) -> Result<ZipArchive<Cursor<Vec<u8>>>, DirectoryError> {
    ZipArchive::new(Cursor::new(bytes)).map_err(|e| zip_error(path, e))
}

/// The service code lists (UNSL) of a directory zip; empty when it has
/// none.
fn service_code_lists(
    outer: &mut ZipArchive<Cursor<Vec<u8>>>,
    path: &Path,
) -> Result<FxHashMap<String, CodeList>, DirectoryError> {
    let mut lists = FxHashMap::default();
    let unsl_zip = read_entries(outer, path, |n| n.eq_ignore_ascii_case("unsl.zip"))?;
    let Some((_, bytes)) = unsl_zip.into_iter().next() else {
        return Ok(lists);
    };
    let mut unsl = open_zip(bytes, path)?;
    for (_, bytes) in read_entries(&mut unsl, path, |n| {
        n.to_ascii_uppercase().starts_with("UNSL")
    })? {
        text::code_lists(&text::cp437(&bytes), &mut lists);
    }
    if lists.is_empty() {
        return Err(DirectoryError::Missing {
            path: path.display().to_string(),
            what: "the service code lists in UNSL.ZIP".into(),
        });
    }
    Ok(lists)
}

impl Release {
    /// The release `name` from the folder this one was read from, when it
    /// is there (`Ok(None)` when it is not): for a code a later directory
    /// adds, which a mapping may name (`SEA@D11A`).
    pub fn sibling(&self, name: &str) -> Result<Option<Release>, DirectoryError> {
        let Some(folder) = self.path.parent() else {
            return Ok(None);
        };
        let entries = match std::fs::read_dir(folder) {
            Ok(entries) => entries,
            Err(source) => {
                return Err(DirectoryError::Io {
                    path: folder.display().to_string(),
                    source,
                });
            }
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            if release_name(&file.to_string_lossy()).as_deref() == Some(name) {
                return Release::open(name, &entry.path()).map(Some);
            }
        }
        Ok(None)
    }

    /// Opens a release from the official zip at `path`.
    pub fn open(name: &str, path: &Path) -> Result<Release, DirectoryError> {
        let bytes = std::fs::read(path).map_err(|source| DirectoryError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut outer = open_zip(bytes, path)?;
        let inner = |archive: &mut ZipArchive<Cursor<Vec<u8>>>, stems: &[&str]| {
            let found = read_entries(archive, path, |n| {
                let lower = n.to_ascii_lowercase();
                stems.iter().any(|s| lower == format!("{s}.zip"))
            })?;
            let (_, bytes) = found
                .into_iter()
                .next()
                .ok_or_else(|| DirectoryError::Missing {
                    path: path.display().to_string(),
                    what: format!("{}.ZIP", stems.join(".ZIP or ").to_ascii_uppercase()),
                })?;
            open_zip(bytes, path)
        };
        let mut messages_zip = inner(&mut outer, &["edmd", "trmd"])?;
        let mut segments_zip = inner(&mut outer, &["edsd", "trsd"])?;
        let mut codes_zip = inner(&mut outer, &["uncl"])?;
        let text_error = |file: &str, source| DirectoryError::Text {
            path: path.display().to_string(),
            file: file.to_owned(),
            source,
        };

        let segment_files = read_entries(&mut segments_zip, path, |n| {
            let upper = n.to_ascii_uppercase();
            (upper.starts_with("EDSD.") || upper.starts_with("TRSD.")) && upper.len() == 8
        })?;
        let (segment_file, segment_bytes) =
            segment_files
                .into_iter()
                .next()
                .ok_or_else(|| DirectoryError::Missing {
                    path: path.display().to_string(),
                    what: "the segment directory (EDSD/TRSD)".into(),
                })?;
        let segments = text::segments(&text::cp437(&segment_bytes))
            .map_err(|e| text_error(&segment_file, e))?;

        let mut codes = FxHashMap::default();
        let code_files = read_entries(&mut codes_zip, path, |n| {
            n.to_ascii_uppercase().starts_with("UNCL")
        })?;
        if code_files.is_empty() {
            return Err(DirectoryError::Missing {
                path: path.display().to_string(),
                what: "the code list (UNCL)".into(),
            });
        }
        for (_, bytes) in code_files {
            text::code_lists(&text::cp437(&bytes), &mut codes);
        }

        // The service code list, where the directory has one. Only CONTRL
        // needs it: one that cannot be read leaves the release's messages
        // as they were (logged), it does not take the release away.
        let service_codes = service_code_lists(&mut outer, path).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "the directory's service code list (UNSL) cannot be read; CONTRL codes are not checked against it");
            FxHashMap::default()
        });

        let index_files = read_entries(&mut messages_zip, path, |n| {
            let upper = n.to_ascii_uppercase();
            upper.starts_with("EDMDI1.") || upper.starts_with("TRMDI1.")
        })?;
        let index = index_files
            .first()
            .map(|(_, b)| text::message_index(&text::cp437(b)))
            .unwrap_or_default();
        let message_files = entry_names(&messages_zip)
            .into_iter()
            .filter_map(|n| {
                let base = base_name(&n);
                let (kind, rest) = base.split_once('_')?;
                let ok = kind.len() == 6
                    && kind.bytes().all(|b| b.is_ascii_uppercase())
                    && rest.len() == 5
                    && rest.starts_with(|c: char| c.is_ascii_uppercase());
                ok.then(|| (kind.to_owned(), n.clone()))
            })
            .collect();
        Ok(Release {
            name: name.to_owned(),
            path: path.to_owned(),
            segments,
            codes,
            service_codes,
            index,
            message_files,
            messages_zip: Mutex::new(messages_zip),
            messages: RwLock::new(HashMap::new()),
            flats: Default::default(),
            applied: Default::default(),
            plans: Default::default(),
            code_sets: Default::default(),
        })
    }

    /// The message types this release defines (batch messages).
    pub fn message_types(&self) -> impl Iterator<Item = &str> {
        self.message_files.keys().map(String::as_str)
    }

    /// The message types the release's own index lists.
    pub fn index(&self) -> &[String] {
        &self.index
    }

    pub fn segment(&self, tag: &str) -> Option<&SegmentDef> {
        self.segments.get(tag)
    }

    /// A segment's definition as an interchange of `syntax_version` must
    /// follow it (service segments from ISO 9735, the others from the
    /// segment directory), cached for all messages. Before syntax version 4
    /// there is no repetition separator: an element the directory lets
    /// repeat N times takes N consecutive positions (the first with the
    /// element's status, the others conditional).
    pub fn definition(&self, tag: &str, syntax_version: u8) -> Option<Arc<SegmentDef>> {
        let v3 = syntax_version < 4;
        let cache = self.applied.get(usize::from(v3))?;
        if let Ok(map) = cache.read()
            && let Some(def) = map.get(tag)
        {
            return Some(def.clone());
        }
        let mut def = match service::segment(tag, syntax_version) {
            Some(def) => def,
            None => self.segment(tag)?.clone(),
        };
        def.mark_coded(|id| self.codes.contains_key(id));
        if v3 {
            let mut expanded = Vec::with_capacity(def.elements.len());
            for element in def.elements {
                let times = element.max.max(1);
                for i in 0..times {
                    let mut e = element.clone();
                    e.max = 1;
                    if i > 0 {
                        e.status = Status::Conditional;
                    }
                    expanded.push(e);
                }
            }
            def.elements = expanded;
        }
        let def = Arc::new(def);
        if let Ok(mut map) = cache.write() {
            map.insert(tag.to_owned(), def.clone());
        }
        Some(def)
    }

    /// [`Release::definition`] prepared for the validator, cached.
    pub(crate) fn plan(&self, tag: &str, syntax_version: u8) -> Option<Arc<validate::Plan>> {
        let cache = self.plans.get(usize::from(syntax_version < 4))?;
        if let Ok(map) = cache.read()
            && let Some(plan) = map.get(tag)
        {
            return Some(plan.clone());
        }
        let def = self.definition(tag, syntax_version)?;
        let plan = Arc::new(validate::Plan::new(def, &|id| self.code_set(id)));
        if let Ok(mut map) = cache.write() {
            map.insert(tag.to_owned(), plan.clone());
        }
        Some(plan)
    }

    /// The code list of a data element as a compact set, cached.
    pub(crate) fn code_set(&self, element: &str) -> Option<Arc<validate::CodeSet>> {
        if let Ok(map) = self.code_sets.read()
            && let Some(set) = map.get(element)
        {
            return Some(set.clone());
        }
        let set = Arc::new(validate::CodeSet::new(self.codes(element)?));
        if let Ok(mut map) = self.code_sets.write() {
            map.insert(element.to_owned(), set.clone());
        }
        Some(set)
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The code list of a data element, when the release has one.
    pub fn codes(&self, element: &str) -> Option<&CodeList> {
        self.codes.get(element)
    }

    /// The service code list (UNSL) of a service data element, when the
    /// release carries one (D.95B to D.97B).
    pub fn service_codes(&self, element: &str) -> Option<&CodeList> {
        self.service_codes.get(element)
    }

    pub fn code_list_count(&self) -> usize {
        self.codes.len()
    }

    /// A message table of this release flattened for validation, built
    /// once per message type and shared.
    pub(crate) fn flat(&self, def: &MessageDef) -> Arc<validate::Flat> {
        let key = match &def.profile {
            Some(profile) => format!("{}:{profile}", def.kind),
            None => def.kind.clone(),
        };
        if let Ok(cache) = self.flats.read()
            && let Some(flat) = cache.get(&key)
        {
            return flat.clone();
        }
        let flat = Arc::new(validate::Flat::new(def));
        if let Ok(mut cache) = self.flats.write() {
            cache.insert(key, flat.clone());
        }
        flat
    }

    /// A message's segment table, read on first use and cached. `Ok(None)`
    /// when the release has no such message.
    pub fn message(&self, kind: &str) -> Result<Option<Arc<MessageDef>>, DirectoryError> {
        if let Ok(cache) = self.messages.read()
            && let Some(def) = cache.get(kind)
        {
            return Ok(Some(def.clone()));
        }
        let Some(file) = self.message_files.get(kind) else {
            return Ok(None);
        };
        let bytes = {
            let mut zip = self
                .messages_zip
                .lock()
                .map_err(|_| zip_error(&self.path, "message zip lock poisoned"))?;
            let mut entry = zip.by_name(file).map_err(|e| zip_error(&self.path, e))?;
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| zip_error(&self.path, e))?;
            bytes
        };
        let def =
            text::message(kind, &text::cp437(&bytes)).map_err(|source| DirectoryError::Text {
                path: self.path.display().to_string(),
                file: base_name(file).to_owned(),
                source,
            })?;
        let def = Arc::new(def);
        if let Ok(mut cache) = self.messages.write() {
            cache.insert(kind.to_owned(), def.clone());
        }
        Ok(Some(def))
    }
}

/// A release opened once, or the reason it could not be.
type ReleaseCell = Arc<OnceLock<Result<Arc<Release>, String>>>;

/// The directory releases available to this process: the official zips in
/// a list of folders, each opened on first use and then shared.
#[derive(Debug, Default)]
pub struct Directories {
    /// Release name → zip path (the first folder that has it wins).
    available: BTreeMap<String, PathBuf>,
    opened: RwLock<HashMap<String, ReleaseCell>>,
    /// The name of the release [`Directories::service_code_release`]
    /// found, once looked for.
    service_codes: OnceLock<Option<String>>,
}

/// Recognises an official directory zip name: `d96b.zip`, `D01B.ZIP`.
pub(crate) fn release_name(file: &str) -> Option<String> {
    let lower = file.to_ascii_lowercase();
    let stem = lower.strip_suffix(".zip")?;
    let b = stem.as_bytes();
    let ok = b.len() == 4
        && b.first() == Some(&b'd')
        && b.get(1..3)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
        && b.get(3).is_some_and(u8::is_ascii_lowercase);
    ok.then(|| stem.to_ascii_uppercase())
}

impl Directories {
    /// The releases found in `folders` (earlier folders take precedence).
    /// Folders that do not exist are skipped.
    pub fn new(folders: &[PathBuf]) -> Directories {
        let mut available = BTreeMap::new();
        for folder in folders {
            let Ok(entries) = std::fs::read_dir(folder) else {
                continue;
            };
            let mut found: Vec<(String, PathBuf)> = entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = release_name(&e.file_name().to_string_lossy())?;
                    Some((name, e.path()))
                })
                .collect();
            found.sort();
            for (name, path) in found {
                available.entry(name).or_insert(path);
            }
        }
        Directories {
            available,
            opened: RwLock::new(HashMap::new()),
            service_codes: OnceLock::new(),
        }
    }

    /// The default folders: `TRADEHUB_DIRECTORIES` (a path list), then the
    /// vendored `schemas/untdid` of the working directory and of the source
    /// tree the binary was built from.
    pub fn default_folders() -> Vec<PathBuf> {
        let mut folders = Directories::env_folders();
        folders.push(PathBuf::from("schemas/untdid"));
        folders.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/untdid"));
        folders
    }

    /// The folders the `TRADEHUB_DIRECTORIES` path list names.
    pub fn env_folders() -> Vec<PathBuf> {
        std::env::var_os("TRADEHUB_DIRECTORIES")
            .map(|list| std::env::split_paths(&list).collect())
            .unwrap_or_default()
    }

    /// The process-wide set from [`Directories::default_folders`].
    pub fn global() -> Arc<Directories> {
        static GLOBAL: OnceLock<Arc<Directories>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| Arc::new(Directories::new(&Directories::default_folders())))
            .clone()
    }

    /// Names of the available releases, e.g. `D96B`.
    pub fn available(&self) -> impl Iterator<Item = &str> {
        self.available.keys().map(String::as_str)
    }

    /// A release, opened on first use. `Ok(None)` when it is not available;
    /// an error when its zip cannot be read (reported once, then cached).
    pub fn release(&self, name: &str) -> Result<Option<Arc<Release>>, String> {
        let Some(path) = self.available.get(name) else {
            return Ok(None);
        };
        let cell = {
            let found = self
                .opened
                .read()
                .ok()
                .and_then(|map| map.get(name).cloned());
            match found {
                Some(cell) => cell,
                None => {
                    let mut map = self
                        .opened
                        .write()
                        .map_err(|_| "directory cache lock poisoned".to_owned())?;
                    map.entry(name.to_owned()).or_default().clone()
                }
            }
        };
        cell.get_or_init(|| {
            Release::open(name, path)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map(Some)
    }

    /// The newest available release that carries the service code list
    /// (UNSL), found once: its lists are those of syntax version 3.
    pub fn service_code_release(&self) -> Option<Arc<Release>> {
        let name = self.service_codes.get_or_init(|| {
            let mut names: Vec<(&String, &PathBuf)> = self.available.iter().collect();
            names.sort_by_key(|(n, _)| std::cmp::Reverse(release_order(n)));
            // Only the zip's listing is read to choose; the release chosen
            // is opened.
            names.into_iter().find_map(|(name, path)| {
                let file = std::fs::File::open(path).ok()?;
                let archive = ZipArchive::new(std::io::BufReader::new(file)).ok()?;
                entry_names(&archive)
                    .iter()
                    .any(|n| base_name(n).eq_ignore_ascii_case("unsl.zip"))
                    .then(|| name.clone())
            })
        });
        let release = self.release(name.as_deref()?).ok().flatten()?;
        (!release.service_codes.is_empty()).then_some(release)
    }

    /// Later releases than `name` that are available (for telling a code
    /// from a later release apart from an unknown one).
    pub fn later_than(&self, name: &str) -> Vec<String> {
        let key = release_order(name);
        let mut later: Vec<String> = self
            .available
            .keys()
            .filter(|n| release_order(n) > key)
            .cloned()
            .collect();
        later.sort_by_key(|n| release_order(n));
        later
    }
}

/// Chronological order of release names: D93A < D99B < D00A < D21B.
pub fn release_order(name: &str) -> (u16, u8) {
    let year: u16 = name.get(1..3).and_then(|y| y.parse().ok()).unwrap_or(0);
    let full = if year >= 90 { 1900 + year } else { 2000 + year };
    let letter = name.as_bytes().get(3).copied().unwrap_or(0);
    (full, letter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_names() {
        assert_eq!(release_name("d96b.zip").as_deref(), Some("D96B"));
        assert_eq!(release_name("D01B.ZIP").as_deref(), Some("D01B"));
        assert_eq!(release_name("d96.zip"), None);
        assert_eq!(release_name("LICENAGR.TXT"), None);
        assert!(release_order("D99B") < release_order("D00A"));
        assert!(release_order("D96A") < release_order("D96B"));
    }
}
