//! Canonical model → UN/EDIFACT: an inbound EDIFACT mapping file (e.g.
//! `mappings/edifact/D96B/CUSDEC.toml`) read backwards. Each rule's `from`
//! path says where its canonical field is written: the segment groups and
//! segment it names, its filters as the qualifier codes of that segment
//! (the first code listed), the data element and component of its value;
//! `codes` are inverted, dates are written with their 2379 format, `all`
//! and `[[list]]` rules repeat the segment or the group. Which segments
//! follow which, and how often they may occur, is the message's segment
//! table in the official directory (`crate::schema`), and every value is
//! held against its data element's format and code list before it is
//! written. A field mapped inbound is therefore written outbound without
//! new code.
//!
//! Nothing is dropped silently: a canonical value no rule writes is
//! reported (MAP001, warning); a value no code of the mapping translates to,
//! or that several translate to with nothing else deciding, is reported
//! (MAP003); a value its data element refuses (format, length, code list,
//! repertoire), a second value for a position that holds another one, a
//! segment whose mandatory data element no rule fills, and an occurrence
//! beyond the segment table's maximum are refused and reported (MAP006).
//! Nothing is invented either: a segment is written only from the model,
//! except the section control (UNS) the segment table requires.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::{FieldRule, ListRule, MappingError, MappingFile, ValueType};
use crate::diag::{Code, Issue, Location};
use crate::edifact::{Charset, Element, Segment, Separators, writer};
use crate::model::Moment;
use crate::schema::{ElementKind, Format, FormatClass, MessageDef, Node, Release, Status};
use crate::timestamp::Timestamp;

/// Syntax version the messages are written in (no repetition separator:
/// a repeating data element takes consecutive positions, as the inbound
/// mapping compiled for version 3 reads them).
const SYNTAX_VERSION: u8 = 3;

/// A position in a segment (0-based element and component), with what the
/// directory says of the data element there.
#[derive(Debug, Clone)]
struct Slot {
    element: usize,
    component: usize,
    /// Data element id, e.g. `1004`.
    id: String,
    name: String,
    format: Format,
}

/// A qualifier the path's filter requires: the codes allowed at a slot.
#[derive(Debug, Clone)]
struct Qualifier {
    slot: Slot,
    codes: Vec<String>,
}

/// Where a rule writes: groups below the enclosing level, the segment with
/// its qualifiers, and the slot of the value.
#[derive(Debug, Clone)]
struct Target {
    groups: Vec<u16>,
    tag: String,
    qualifiers: Vec<Qualifier>,
    /// The segment is the trigger of the last group of `groups`.
    triggers_group: bool,
    value: Slot,
    /// The further occurrences of a range (`C108/4440#1-5`), after
    /// `value`: a joined text is written across them.
    more: Vec<Slot>,
    /// UNH/UNT: written by the envelope, not by rules.
    service: bool,
}

impl Target {
    /// Segments with the same tag and qualifiers are the same segment.
    fn key(&self) -> String {
        let mut key = self.tag.clone();
        for q in &self.qualifiers {
            key.push_str(&format!(
                "[{}.{}={}]",
                q.slot.element,
                q.slot.component,
                q.codes.join("|")
            ));
        }
        key
    }
}

#[derive(Debug, Clone)]
struct OutField {
    to: String,
    target: Target,
    kind: ValueType,
    date_format: Option<Slot>,
    /// Canonical value → the codes that translate to it (in the file's
    /// sorted order).
    inverse: Option<BTreeMap<String, Vec<String>>>,
    /// The forward table, to check a code another rule already wrote.
    codes: Option<BTreeMap<String, String>>,
    pass_other: bool,
    /// Codes of its place it leaves to a later rule for the field
    /// (`skip_codes`: CUSDEC's 960 in BGM 1001 says no direction).
    yields_to: Vec<String>,
    all: bool,
    /// What the inbound mapping joins the occurrences of a range with:
    /// the text is cut into them again (see [`split_joined`]).
    join: Option<String>,
}

#[derive(Debug, Clone)]
struct OutList {
    to: String,
    groups: Vec<u16>,
    /// The trigger tag `when` names, and its qualifiers.
    when_tag: String,
    when: Vec<Qualifier>,
    constants: Vec<(String, Value)>,
    fields: Vec<OutField>,
    lists: Vec<OutList>,
}

/// An inbound EDIFACT mapping file compiled for writing: the message
/// structure of its release, and each rule as a place to write.
#[derive(Debug, Clone)]
pub struct OutboundMapping {
    /// The mapping file's name, for messages.
    pub name: String,
    /// Message type, e.g. `CUSDEC`.
    pub message: String,
    /// Release as UNH S009 writes it: version `D`, release `96B`.
    pub release: String,
    /// The canonical type written (`declaration`, …).
    pub target: String,
    def: Arc<MessageDef>,
    release_dir: Arc<Release>,
    constants: Vec<(String, Value)>,
    fields: Vec<OutField>,
    lists: Vec<OutList>,
}

/// Who sends the interchange, to whom, under which reference and when.
/// The caller supplies it, so that writing stays pure and reproducible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// UNB sender identification (S002/0004).
    pub sender: String,
    /// UNB recipient identification (S003/0010).
    pub recipient: String,
    /// Interchange control reference (UNB 0020), at most 14 characters.
    pub reference: String,
    /// Date and time of preparation (UNB S004).
    pub prepared: Timestamp,
}

/// An interchange written from the model: its bytes, and every value that
/// could not be written (MAP001, MAP003, MAP006).
#[derive(Debug, Clone)]
pub struct Written {
    pub bytes: Vec<u8>,
    pub issues: Vec<Issue>,
}

/// A filter as written: the element path (`C507/2005`) and its codes.
type Filter = (String, Vec<String>);

/// Splits `TAG[ELEMENT=CODE|CODE,COMPOSITE.ELEMENT=CODE]…` into the tag and
/// its filters.
fn split_filters(step: &str) -> Result<(&str, Vec<Filter>), String> {
    let (tag, mut rest) = match step.find('[') {
        Some(i) => (step.get(..i).unwrap_or(""), step.get(i..).unwrap_or("")),
        None => (step, ""),
    };
    let mut filters = Vec::new();
    while !rest.is_empty() {
        let (inner, after) = rest
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .ok_or_else(|| format!("{step:?}: a filter is written [ELEMENT=CODE|CODE]"))?;
        for condition in inner.split(',') {
            let (element, codes) = condition
                .split_once('=')
                .ok_or_else(|| format!("{step:?}: a filter is written [ELEMENT=CODE|CODE]"))?;
            if element.trim_end().ends_with('!') {
                return Err(format!(
                    "{step:?}: a filter with != names no code to write, so the writer cannot use it"
                ));
            }
            filters.push((
                element.trim().replace('.', "/"),
                codes.split('|').map(|c| c.trim().to_owned()).collect(),
            ));
        }
        rest = after;
    }
    Ok((tag, filters))
}

/// Cuts `text` into at most `lines` pieces of at most `max` characters
/// that the inbound `join` puts back together: with no separator, at every
/// `max` characters; with one, at separators, as many words to a piece as
/// fit (a separator between two pieces is the join's). `Err` when the
/// text does not fit.
fn split_joined(
    text: &str,
    separator: &str,
    max: usize,
    lines: usize,
) -> Result<Vec<String>, String> {
    let too_long = || {
        format!(
            "it is {} characters long; {lines} occurrences of at most {max} hold less",
            text.chars().count()
        )
    };
    let mut pieces: Vec<String> = Vec::new();
    if separator.is_empty() {
        let chars: Vec<char> = text.chars().collect();
        for chunk in chars.chunks(max.max(1)) {
            pieces.push(chunk.iter().collect());
        }
    } else {
        let mut current = String::new();
        let mut current_len = 0usize;
        let separator_len = separator.chars().count();
        for (i, word) in text.split(separator).enumerate() {
            let word_len = word.chars().count();
            if i == 0 {
                current.push_str(word);
                current_len = word_len;
            } else if current_len + separator_len + word_len <= max {
                current.push_str(separator);
                current.push_str(word);
                current_len += separator_len + word_len;
            } else {
                pieces.push(std::mem::take(&mut current));
                current.push_str(word);
                current_len = word_len;
            }
            if current_len > max {
                return Err(format!(
                    "{:?} is longer than the {max} characters of one occurrence",
                    word
                ));
            }
        }
        pieces.push(current);
    }
    // An empty text is one empty piece, which its data element refuses.
    if pieces.is_empty() {
        pieces.push(String::new());
    }
    // An empty occurrence is not read back (nor the separator beside it):
    // a cut that would need one (separators where a line ends) is refused.
    if pieces.len() > 1 && pieces.iter().any(String::is_empty) {
        return Err(format!(
            "it has {separator:?} where a line of {max} characters would end, so its lines \
             would not read back the same"
        ));
    }
    if pieces.len() > lines {
        return Err(too_long());
    }
    Ok(pieces)
}

/// `3039#2` → ("3039", 1).
fn occurrence(id: &str) -> (&str, usize) {
    match id.split_once('#') {
        Some((id, n)) => (id, n.parse::<usize>().unwrap_or(1).saturating_sub(1)),
        None => (id, 0),
    }
}

/// The nodes of the group reached through `groups` from `level`.
fn level<'n>(mut level: &'n [Node], groups: &[u16]) -> Option<&'n [Node]> {
    for number in groups {
        level = level.iter().find_map(|n| match n {
            Node::Group {
                number: g,
                children,
                ..
            } if g == number => Some(children.as_slice()),
            _ => None,
        })?;
    }
    Some(level)
}

/// The rules of one level the writer writes back. Left out: a rule for a
/// field an earlier plain rule (no codes, not `all`) already names: the
/// first rule for a field writes it, so a later one is a preference of
/// reading only (the reference currency of a CUX where the MOA gives none)
/// and may use paths the writer does not take, such as filters on a group
/// step. A rule that reads only some codes (`skip_other`) is kept: it
/// writes its field when the rules before it did not (the direction of a
/// single administrative document, C002 1000, when BGM 1001 holds 960).
/// A rule with a `factor` (pounds read as kilograms) is never written
/// back.
fn written_back(rules: &[FieldRule]) -> impl Iterator<Item = &FieldRule> {
    rules.iter().enumerate().filter_map(move |(i, rule)| {
        let earlier_plain = rules.get(..i).unwrap_or_default().iter().any(|e| {
            e.to.get_ref() == rule.to.get_ref()
                && e.codes.is_none()
                && !e.all
                && !e.skip_other
                && !e.read_only
        });
        // A converted value (`factor`) is written back by the rule that
        // reads it unconverted, if any; a `read_only` rule by the next.
        (!earlier_plain && rule.factor.is_none() && !rule.read_only).then_some(rule)
    })
}

/// Compiles in the context of one mapping file.
struct Compiler<'a> {
    name: &'a str,
    text: &'a str,
    release: &'a Release,
    def: &'a MessageDef,
}

impl Compiler<'_> {
    fn error(&self, span: std::ops::Range<usize>, message: String) -> MappingError {
        MappingError {
            file: self.name.to_owned(),
            line: super::line_of(self.text, span.start),
            message,
        }
    }

    /// `C082/3039`, `1004`, `C246#2/7361` in a segment → its slot.
    fn slot(&self, tag: &str, element_path: &str) -> Result<Slot, String> {
        let def = self
            .release
            .definition(tag, SYNTAX_VERSION)
            .ok_or_else(|| format!("segment {tag} is not in {}", self.release.name))?;
        let mut parts = element_path.split('/');
        let (id, nth) = occurrence(parts.next().unwrap_or(""));
        let component = parts.next();
        let (element, edef) = def
            .elements
            .iter()
            .enumerate()
            .filter(|(_, e)| e.id == id)
            .nth(nth)
            .ok_or_else(|| format!("segment {tag} has no data element {element_path}"))?;
        match (&edef.kind, component) {
            (ElementKind::Simple(format), None) => Ok(Slot {
                element,
                component: 0,
                id: edef.id.clone(),
                name: edef.name.clone(),
                format: *format,
            }),
            (ElementKind::Composite(components), Some(c)) => {
                let (cid, cnth) = occurrence(c);
                components
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| k.id == cid)
                    .nth(cnth)
                    .map(|(i, k)| Slot {
                        element,
                        component: i,
                        id: k.id.clone(),
                        name: k.name.clone(),
                        format: k.format,
                    })
                    .ok_or_else(|| format!("composite {id} of {tag} has no component {c}"))
            }
            _ => Err(format!("{element_path:?} does not name a value of {tag}")),
        }
    }

    /// [`slot`](Self::slot), or for a range of occurrences on the last
    /// step (`C108/4440#1-5`, `C058/3124#2-`) its first slot and the others
    /// (the inbound compiler has checked the range).
    fn slots(&self, tag: &str, element_path: &str) -> Result<(Slot, Vec<Slot>), String> {
        match super::expand_range(element_path, |path| self.slot(tag, path))? {
            Some(mut all) if !all.is_empty() => {
                let first = all.remove(0);
                Ok((first, all))
            }
            _ => Ok((self.slot(tag, element_path)?, Vec::new())),
        }
    }

    fn qualifiers(&self, tag: &str, filters: &[Filter]) -> Result<Vec<Qualifier>, String> {
        filters
            .iter()
            .map(|(path, codes)| {
                Ok(Qualifier {
                    slot: self.slot(tag, path)?,
                    codes: codes.clone(),
                })
            })
            .collect()
    }

    /// `SG6/NAD[3035=IM]/C082/3039` relative to `base`.
    fn target(&self, base: &[u16], path: &str) -> Result<Target, String> {
        let steps: Vec<&str> = path.split('/').collect();
        let mut groups = Vec::new();
        let mut i = 0;
        while let Some(n) = steps
            .get(i)
            .and_then(|s| s.strip_prefix("SG"))
            .and_then(|n| n.parse::<u16>().ok())
        {
            groups.push(n);
            i += 1;
        }
        let step = steps
            .get(i)
            .ok_or_else(|| format!("{path:?} names no segment"))?;
        let (tag, filters) = split_filters(step)?;
        let rest = steps.get(i + 1..).unwrap_or_default().join("/");
        let (value, more) = self.slots(tag, &rest)?;
        let mut full = base.to_vec();
        full.extend(&groups);
        let triggers_group = !groups.is_empty()
            && level(&self.def.nodes, &full)
                .and_then(|nodes| nodes.first())
                .is_some_and(|n| n.trigger() == tag);
        Ok(Target {
            groups,
            tag: tag.to_owned(),
            qualifiers: self.qualifiers(tag, &filters)?,
            triggers_group,
            value,
            more,
            service: matches!(tag, "UNH" | "UNT" | "UNS"),
        })
    }

    fn field(&self, base: &[u16], rule: &FieldRule) -> Result<OutField, MappingError> {
        let target = self
            .target(base, rule.from.get_ref())
            .map_err(|m| self.error(rule.from.span(), m))?;
        if !target.more.is_empty() && rule.join.is_none() {
            return Err(self.error(
                rule.from.span(),
                "the writer cuts a text into a range of occurrences only when the rule \
                 joins them (`join`); a range collected with `all` is not written"
                    .into(),
            ));
        }
        let date_format = match &rule.date_format {
            Some(path) => Some(
                self.slot(&target.tag, path.get_ref())
                    .map_err(|m| self.error(path.span(), m))?,
            ),
            None => None,
        };
        let inverse = rule.codes.as_ref().map(|codes| {
            let mut inverse: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (code, canonical) in codes {
                inverse
                    .entry(canonical.clone())
                    .or_default()
                    .push(code.clone());
            }
            inverse
        });
        Ok(OutField {
            to: rule.to.get_ref().clone(),
            target,
            kind: rule.kind,
            date_format,
            inverse,
            codes: rule.codes.clone(),
            pass_other: rule.pass_other,
            yields_to: rule.skip_codes.clone(),
            all: rule.all,
            join: rule.join.clone(),
        })
    }

    /// `each` lists (at the message level or in a list item) are read
    /// inbound only: a file with one is refused for writing at its line.
    fn no_each(&self, each: &[super::EachRule]) -> Result<(), MappingError> {
        match each.first() {
            Some(each) => Err(self.error(
                each.to.span(),
                "`each` lists are read inbound only; nothing writes them back to EDIFACT".into(),
            )),
            None => Ok(()),
        }
    }

    fn list(&self, base: &[u16], rule: &ListRule) -> Result<OutList, MappingError> {
        self.no_each(&rule.each)?;
        let mut groups = Vec::new();
        for step in rule.group.get_ref().split('/') {
            let n = step
                .strip_prefix("SG")
                .and_then(|n| n.parse::<u16>().ok())
                .ok_or_else(|| {
                    self.error(
                        rule.group.span(),
                        format!("{step:?} is not a segment group"),
                    )
                })?;
            groups.push(n);
        }
        let mut full = base.to_vec();
        full.extend(&groups);
        let (when_tag, when) = match &rule.when {
            Some(when) => {
                let (tag, filters) =
                    split_filters(when.get_ref()).map_err(|m| self.error(when.span(), m))?;
                let qualifiers = self
                    .qualifiers(tag, &filters)
                    .map_err(|m| self.error(when.span(), m))?;
                (tag.to_owned(), qualifiers)
            }
            None => (String::new(), Vec::new()),
        };
        Ok(OutList {
            to: rule.to.get_ref().clone(),
            groups,
            when_tag,
            when,
            constants: constants(&rule.constant),
            fields: written_back(&rule.field)
                .map(|f| self.field(&full, f))
                .collect::<Result<_, _>>()?,
            lists: rule
                .list
                .iter()
                .map(|l| self.list(&full, l))
                .collect::<Result<_, _>>()?,
        })
    }
}

fn constants(constants: &[super::Constant]) -> Vec<(String, Value)> {
    constants
        .iter()
        .filter_map(|c| Some((c.to.get_ref().clone(), serde_json::to_value(&c.value).ok()?)))
        .collect()
}

impl OutboundMapping {
    /// Compiles an inbound mapping file for writing. The file is first
    /// checked as inbound mappings are (every path, code and target field
    /// against the directory and the model; errors name the line), so a
    /// file that maps in also writes out.
    pub fn compile(
        name: &str,
        text: &str,
        release: Arc<Release>,
    ) -> Result<OutboundMapping, MappingError> {
        super::edifact::EdifactMapping::compile(name, text, &release, SYNTAX_VERSION)?;
        let file = MappingFile::parse(name, text)?;
        let whole = |message: String| MappingError {
            file: name.to_owned(),
            line: 1,
            message,
        };
        let def = release
            .message(&file.message)
            .map_err(|e| whole(e.to_string()))?
            .ok_or_else(|| whole(format!("{} has no message {}", release.name, file.message)))?;
        let compiler = Compiler {
            name,
            text,
            release: &release,
            def: &def,
        };
        compiler.no_each(&file.each)?;
        let fields = written_back(&file.field)
            .map(|f| compiler.field(&[], f))
            .collect::<Result<_, _>>()?;
        let lists = file
            .list
            .iter()
            .map(|l| compiler.list(&[], l))
            .collect::<Result<_, _>>()?;
        let short = release.name.replace('.', "");
        Ok(OutboundMapping {
            name: name.to_owned(),
            message: file.message.clone(),
            release: short,
            target: file.target.clone(),
            constants: constants(&file.constant),
            fields,
            lists,
            def,
            release_dir: release,
        })
    }

    /// The mapping of `message_type` in `release` (its inbound mapping
    /// file under `mappings/edifact/`), compiled once per process.
    pub fn load(
        message_type: &str,
        release: Arc<Release>,
    ) -> Result<Arc<OutboundMapping>, MappingError> {
        type Cache = std::sync::Mutex<
            BTreeMap<(String, String), Result<Arc<OutboundMapping>, MappingError>>,
        >;
        static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
        let short = release.name.replace('.', "");
        let key = (message_type.to_owned(), short.clone());
        let cache = CACHE.get_or_init(Default::default);
        if let Ok(map) = cache.lock()
            && let Some(found) = map.get(&key)
        {
            return found.clone();
        }
        let compiled = match super::find_edifact(message_type, &short) {
            None => Err(MappingError {
                file: format!("mappings/edifact/{short}/{message_type}.toml"),
                line: 0,
                message: format!("no mapping for {message_type} {}", release.name),
            }),
            Some(path) => {
                let name = path.display().to_string();
                match std::fs::read_to_string(&path) {
                    Ok(text) => OutboundMapping::compile(&name, &text, release).map(Arc::new),
                    Err(e) => Err(MappingError {
                        file: name,
                        line: 0,
                        message: e.to_string(),
                    }),
                }
            }
        };
        if let Ok(mut map) = cache.lock() {
            map.insert(key, compiled.clone());
        }
        compiled
    }

    /// The mapping file as messages name it, whatever folder it came from.
    fn file(&self) -> String {
        format!("mappings/edifact/{}/{}.toml", self.release, self.message)
    }

    /// The body of one message (UNH … UNT) for a canonical object of the
    /// mapping's target type, with every value that could not be written.
    /// `reference` is the message reference (UNH 0062).
    pub fn message(
        &self,
        canonical: &Value,
        reference: &str,
        charset: Charset,
    ) -> (Vec<Segment>, Vec<Issue>) {
        let mut run = Run {
            mapping: self,
            charset,
            instances: vec![Instance::new(Vec::new(), None)],
            reference: reference.to_owned(),
            issues: Vec::new(),
            written: BTreeSet::new(),
            lists_written: BTreeSet::new(),
            refused: BTreeSet::new(),
        };
        let empty = serde_json::Map::new();
        let object = canonical.as_object().unwrap_or(&empty);
        for (to, value) in &self.constants {
            if lookup(object, to) == Some(value) {
                run.written.insert(super::edifact::pointer("", to));
            }
        }
        for field in &self.fields {
            run.field(0, object, "", field);
        }
        for list in &self.lists {
            run.list(0, object, "", list);
        }
        run.complete();
        let mut body = vec![Segment::new(
            "UNH",
            vec![
                Element::simple(reference),
                Element::composite([
                    self.message.as_str(),
                    self.release.get(..1).unwrap_or("D"),
                    self.release.get(1..).unwrap_or(""),
                    "UN",
                ]),
            ],
        )];
        let mut sections = 0usize;
        run.emit(&self.def.nodes, 0, &mut body, &mut sections);
        body.push(Segment::new(
            "UNT",
            vec![
                Element::simple((body.len() + 1).to_string()),
                Element::simple(reference),
            ],
        ));
        run.unwritten(canonical);
        (body, run.issues)
    }
}

/// The value at a dotted field of a JSON object.
fn lookup<'v>(object: &'v serde_json::Map<String, Value>, dotted: &str) -> Option<&'v Value> {
    let mut parts = dotted.split('.');
    let mut node = object.get(parts.next()?)?;
    for part in parts {
        node = node.get(part)?;
    }
    Some(node).filter(|v| !v.is_null())
}

/// One segment being written: its values per element and component.
#[derive(Debug, Clone)]
struct Draft {
    tag: String,
    key: String,
    values: Vec<Vec<String>>,
    /// Slots holding a qualifier's first code, which a rule may still
    /// replace with another code of the same filter.
    soft: Vec<(usize, usize, Vec<String>)>,
    /// JSON pointers of the canonical values written into it.
    pointers: Vec<String>,
    emitted: bool,
}

impl Draft {
    fn get(&self, element: usize, component: usize) -> Option<&str> {
        self.values
            .get(element)
            .and_then(|e| e.get(component))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn put(&mut self, element: usize, component: usize, value: &str) {
        while self.values.len() <= element {
            self.values.push(Vec::new());
        }
        if let Some(e) = self.values.get_mut(element) {
            while e.len() <= component {
                e.push(String::new());
            }
            if let Some(c) = e.get_mut(component) {
                value.clone_into(c);
            }
        }
    }
}

/// A segment-group instance being written (index 0: the message level).
#[derive(Debug, Clone)]
struct Instance {
    group: u16,
    /// Group numbers from the message level down to this instance.
    path: Vec<u16>,
    /// The trigger segment's key, once a rule wrote it.
    key: Option<String>,
    drafts: Vec<Draft>,
    children: Vec<usize>,
    dropped: bool,
}

impl Instance {
    fn new(path: Vec<u16>, key: Option<String>) -> Instance {
        Instance {
            group: path.last().copied().unwrap_or(0),
            path,
            key,
            drafts: Vec::new(),
            children: Vec::new(),
            dropped: false,
        }
    }
}

/// The state of writing one message.
struct Run<'m> {
    mapping: &'m OutboundMapping,
    /// The message reference (UNH 0062), for locations.
    reference: String,
    charset: Charset,
    instances: Vec<Instance>,
    issues: Vec<Issue>,
    /// Pointers of canonical values written (or equal to a constant).
    written: BTreeSet<String>,
    /// The list fields an `all` rule has written (a later rule for the
    /// same list leaves it).
    lists_written: BTreeSet<String>,
    /// Pointers of values refused and already reported.
    refused: BTreeSet<String>,
}

fn located(pointer: &str, tag: Option<&str>, slot: Option<&Slot>, message: &str) -> Location {
    Location {
        message: Some(message.to_owned()),
        tag: tag.map(str::to_owned),
        element: slot.map(|s| s.element as u16 + 1),
        component: slot.map(|s| s.component as u16 + 1),
        field: Some(pointer.to_owned()),
        ..Location::default()
    }
}

impl Run<'_> {
    fn refuse(
        &mut self,
        code: Code,
        pointer: &str,
        target: Option<(&str, &Slot)>,
        message: String,
    ) {
        self.refused.insert(pointer.to_owned());
        let location = located(
            pointer,
            target.map(|t| t.0),
            target.map(|t| t.1),
            &self.reference,
        );
        self.issues.push(Issue::warning(code, location, message));
    }

    /// The child instance of `parent` a value of group `group` goes into.
    fn child(&mut self, parent: usize, group: u16, key: Option<&str>, fresh: bool) -> usize {
        let children: Vec<usize> = self
            .instances
            .get(parent)
            .map(|p| p.children.clone())
            .unwrap_or_default();
        let same = |inst: &Instance| inst.group == group && !inst.dropped;
        if !fresh {
            let found = children.iter().copied().find(|c| {
                self.instances.get(*c).is_some_and(|i| {
                    same(i)
                        && match key {
                            Some(k) => i.key.as_deref() == Some(k),
                            None => true,
                        }
                })
            });
            if let Some(found) = found {
                return found;
            }
        }
        // A group opened by a rule that did not write its trigger is taken
        // by the first rule that does.
        if let Some(k) = key
            && let Some(open) = children.iter().copied().find(|c| {
                self.instances
                    .get(*c)
                    .is_some_and(|i| same(i) && i.key.is_none())
            })
        {
            if let Some(i) = self.instances.get_mut(open) {
                i.key = Some(k.to_owned());
            }
            return open;
        }
        let id = self.instances.len();
        let mut path = self
            .instances
            .get(parent)
            .map(|p| p.path.clone())
            .unwrap_or_default();
        path.push(group);
        self.instances
            .push(Instance::new(path, key.map(str::to_owned)));
        if let Some(p) = self.instances.get_mut(parent) {
            p.children.push(id);
        }
        id
    }

    /// The instance and draft segment a value of `target` goes into.
    fn draft(&mut self, base: usize, target: &Target, fresh: bool) -> (usize, usize) {
        let mut at = base;
        let key = target.key();
        let last = target.groups.len().saturating_sub(1);
        for (i, group) in target.groups.iter().enumerate() {
            at = if i == last && target.triggers_group {
                self.child(at, *group, Some(&key), fresh)
            } else {
                self.child(at, *group, None, false)
            };
        }
        let reuse = !fresh || target.triggers_group;
        let existing = self.instances.get(at).and_then(|inst| {
            inst.drafts
                .iter()
                .position(|d| reuse && d.key == key && d.tag == target.tag)
        });
        if let Some(d) = existing {
            return (at, d);
        }
        let mut draft = Draft {
            tag: target.tag.clone(),
            key,
            values: Vec::new(),
            soft: Vec::new(),
            pointers: Vec::new(),
            emitted: false,
        };
        for q in &target.qualifiers {
            if let Some(first) = q.codes.first() {
                draft.put(q.slot.element, q.slot.component, first);
                draft
                    .soft
                    .push((q.slot.element, q.slot.component, q.codes.clone()));
            }
        }
        let inst = self.instances.get_mut(at);
        let index = inst.as_ref().map_or(0, |i| i.drafts.len());
        if let Some(inst) = inst {
            inst.drafts.push(draft);
        }
        (at, index)
    }

    /// Checks a value against its data element: format class, length,
    /// code list, repertoire. `Err` says why it cannot be written.
    fn admissible(&self, value: &str, slot: &Slot) -> Result<(), String> {
        let format = slot.format;
        let length = match format.class {
            FormatClass::Numeric => {
                let body = value.strip_prefix('-').unwrap_or(value);
                let mut marks = 0;
                let mut digits = 0usize;
                for ch in body.chars() {
                    if ch.is_ascii_digit() {
                        digits += 1;
                    } else if ch == '.' && marks == 0 {
                        marks += 1;
                    } else {
                        return Err(format!("is not numeric ({format})"));
                    }
                }
                if digits == 0 {
                    return Err(format!("is not numeric ({format})"));
                }
                digits
            }
            FormatClass::Alpha => {
                if value.chars().any(|c| c.is_ascii_digit()) {
                    return Err(format!("is alphabetic ({format}) but has digits"));
                }
                value.chars().count()
            }
            FormatClass::AlphaNumeric => value.chars().count(),
        };
        if length > usize::from(format.max) || length < usize::from(format.min) {
            return Err(format!(
                "is {length} characters long; {format} allows {}..{}",
                format.min, format.max
            ));
        }
        if let Some(list) = self.mapping.release_dir.codes(&slot.id)
            && !list.codes.contains(value)
        {
            return Err(format!(
                "is not in its code list in {}",
                self.mapping.release_dir.name
            ));
        }
        if let Err(ch) = self.charset.encode(value, &mut Vec::new()) {
            return Err(format!(
                "has {ch:?}, outside the repertoire {}",
                self.charset.syntax_identifier()
            ));
        }
        Ok(())
    }

    /// Writes `value` at `slot` of a draft; false (and reported) when the
    /// slot holds something else.
    fn put(
        &mut self,
        at: (usize, usize),
        slot: &Slot,
        value: &str,
        pointer: &str,
        field: &str,
    ) -> bool {
        let Some(draft) = self
            .instances
            .get_mut(at.0)
            .and_then(|i| i.drafts.get_mut(at.1))
        else {
            return false;
        };
        let tag = draft.tag.clone();
        match draft.get(slot.element, slot.component).map(str::to_owned) {
            Some(old) if old == value => {
                draft
                    .soft
                    .retain(|s| (s.0, s.1) != (slot.element, slot.component));
            }
            Some(old) => {
                let soft = draft
                    .soft
                    .iter()
                    .position(|s| (s.0, s.1) == (slot.element, slot.component));
                match soft {
                    Some(i)
                        if draft
                            .soft
                            .get(i)
                            .is_some_and(|s| s.2.iter().any(|c| c == value)) =>
                    {
                        draft.soft.remove(i);
                        draft.put(slot.element, slot.component, value);
                    }
                    _ => {
                        self.refuse(
                            Code::MappingUnwritable,
                            pointer,
                            Some((&tag, slot)),
                            format!(
                                "{field} {value:?} cannot be written: {tag} {} ({}) already holds {old:?}",
                                slot.id, slot.name
                            ),
                        );
                        return false;
                    }
                }
            }
            None => draft.put(slot.element, slot.component, value),
        }
        if let Some(draft) = self
            .instances
            .get_mut(at.0)
            .and_then(|i| i.drafts.get_mut(at.1))
        {
            draft.pointers.push(pointer.to_owned());
        }
        true
    }

    /// The text a canonical value is written as, or `None` (reported).
    fn text(
        &mut self,
        field: &OutField,
        at: Option<(usize, usize)>,
        value: &Value,
        pointer: &str,
    ) -> Option<String> {
        let tag = field.target.tag.as_str();
        let slot = &field.target.value;
        let raw = match (field.kind, value) {
            (ValueType::Date, _) => {
                let moment = serde_json::from_value::<Moment>(value.clone())
                    .map_err(|e| e.to_string())
                    .and_then(|m| m.to_edifact().map_err(|e| e.to_string()));
                match moment {
                    Ok(text) => text,
                    Err(e) => {
                        self.refuse(
                            Code::MappingUnwritable,
                            pointer,
                            Some((tag, slot)),
                            format!("{} cannot be written: {e}", field.to),
                        );
                        return None;
                    }
                }
            }
            (_, Value::String(s)) => s.clone(),
            (_, Value::Number(n)) => n.to_string(),
            (_, Value::Bool(b)) => b.to_string(),
            _ => {
                self.refuse(
                    Code::MappingUnwritable,
                    pointer,
                    Some((tag, slot)),
                    format!("{} is not a single value", field.to),
                );
                return None;
            }
        };
        let Some(inverse) = &field.inverse else {
            return Some(raw);
        };
        // A code another rule already wrote here decides, when it
        // translates to this value.
        let present = at.and_then(|at| self.held(at, slot)).map(str::to_owned);
        if let (Some(code), Some(codes)) = (&present, &field.codes)
            && codes.get(code) == Some(&raw)
        {
            return Some(code.clone());
        }
        match inverse.get(&raw).map(Vec::as_slice) {
            Some([one]) => Some(one.clone()),
            Some([first, ..]) => {
                let all = inverse.get(&raw).map(|c| c.join(", ")).unwrap_or_default();
                self.issues.push(Issue::warning(
                    Code::MappingCodeUnknown,
                    located(pointer, Some(tag), Some(slot), &self.reference),
                    format!(
                        "{} {raw:?}: the codes {all} of {} all translate to it and no other field says which; {first} written",
                        field.to, slot.id
                    ),
                ));
                Some(first.clone())
            }
            _ if field.pass_other => Some(raw),
            _ => {
                self.refuse(
                    Code::MappingCodeUnknown,
                    pointer,
                    Some((tag, slot)),
                    format!(
                        "{} {raw:?}: no code of {} in {} translates to it",
                        field.to,
                        slot.id,
                        self.mapping.file()
                    ),
                );
                None
            }
        }
    }

    fn write_one(
        &mut self,
        base: usize,
        field: &OutField,
        value: &Value,
        pointer: &str,
        fresh: bool,
    ) {
        let target = &field.target;
        if target.service {
            return;
        }
        // Where it would go, to let a code already there decide.
        let at = self.draft(base, target, fresh);
        // A code there that the rule skips inbound says nothing of this
        // field: a later rule for it writes it.
        if self
            .held(at, &target.value)
            .is_some_and(|held| field.yields_to.iter().any(|c| c == held))
        {
            return;
        }
        let Some(text) = self.text(field, Some(at), value, pointer) else {
            return;
        };
        if let Some(separator) = &field.join {
            self.write_joined(at, field, &text, separator, pointer);
            return;
        }
        if let Err(why) = self.admissible(&text, &target.value) {
            self.refuse(
                Code::MappingUnwritable,
                pointer,
                Some((&target.tag, &target.value)),
                format!(
                    "{} {text:?} cannot be written to {} {} ({}): it {why}",
                    field.to, target.tag, target.value.id, target.value.name
                ),
            );
            return;
        }
        if !self.put(at, &target.value, &text, pointer, &field.to) {
            return;
        }
        if let (ValueType::Date, Some(format_slot)) = (field.kind, &field.date_format)
            && let Some(format) = value.get("format").and_then(Value::as_str)
        {
            let format = format.to_owned();
            self.put(at, format_slot, &format, pointer, &field.to);
        }
        self.written.insert(pointer.to_owned());
    }

    /// What the draft segment at `at` holds at `slot`.
    fn held(&self, at: (usize, usize), slot: &Slot) -> Option<&str> {
        self.instances
            .get(at.0)?
            .drafts
            .get(at.1)?
            .get(slot.element, slot.component)
    }

    /// Writes a text the inbound mapping joins from a range of
    /// occurrences: cut again into them (see [`split_joined`]), each piece
    /// held against its data element.
    fn write_joined(
        &mut self,
        at: (usize, usize),
        field: &OutField,
        text: &str,
        separator: &str,
        pointer: &str,
    ) {
        let target = &field.target;
        let slots: Vec<&Slot> = std::iter::once(&target.value).chain(&target.more).collect();
        let max = usize::from(target.value.format.max);
        let refused = |why: String| {
            format!(
                "{} cannot be written to {} {} ({}): {why}",
                field.to, target.tag, target.value.id, target.value.name
            )
        };
        let pieces = match split_joined(text, separator, max, slots.len()) {
            Ok(pieces) => pieces,
            Err(why) => {
                let message = refused(why);
                self.refuse(
                    Code::MappingUnwritable,
                    pointer,
                    Some((&target.tag, &target.value)),
                    message,
                );
                return;
            }
        };
        // Every piece is checked, and every position free (or holding the
        // same), before any is written: the text goes in whole or not at all.
        for (slot, piece) in slots.iter().zip(&pieces) {
            let why = match self.held(at, slot).filter(|old| old != piece) {
                Some(old) => Some(format!("{} ({}) already holds {old:?}", slot.id, slot.name)),
                None => self
                    .admissible(piece, slot)
                    .err()
                    .map(|why| format!("its part {piece:?} {why}")),
            };
            if let Some(why) = why {
                let message = refused(why);
                self.refuse(
                    Code::MappingUnwritable,
                    pointer,
                    Some((&target.tag, slot)),
                    message,
                );
                return;
            }
        }
        for (slot, piece) in slots.iter().zip(&pieces) {
            if !self.put(at, slot, piece, pointer, &field.to) {
                return;
            }
        }
        self.written.insert(pointer.to_owned());
    }

    fn field(
        &mut self,
        base: usize,
        object: &serde_json::Map<String, Value>,
        prefix: &str,
        field: &OutField,
    ) {
        let Some(value) = lookup(object, &field.to) else {
            return;
        };
        let pointer = super::edifact::pointer(prefix, &field.to);
        // The first rule for a field writes it, as the first value read
        // wins inbound; for a list (inbound, each rule appends) the first
        // `all` rule writes it whole, as it cannot tell whose items are
        // whose.
        if self.written.contains(&pointer) || self.refused.contains(&pointer) {
            return;
        }
        if field.all {
            if !self.lists_written.insert(pointer.clone()) {
                return;
            }
            if let Value::Array(items) = value {
                for (i, item) in items.iter().enumerate() {
                    self.write_one(base, field, item, &format!("{pointer}/{i}"), true);
                }
            }
            return;
        }
        self.write_one(base, field, value, &pointer, false);
    }

    fn list(
        &mut self,
        base: usize,
        object: &serde_json::Map<String, Value>,
        prefix: &str,
        list: &OutList,
    ) {
        let Some(Value::Array(items)) = lookup(object, &list.to) else {
            return;
        };
        let pointer = super::edifact::pointer(prefix, &list.to);
        let last = list.groups.len().saturating_sub(1);
        for (n, item) in items.iter().enumerate() {
            let here = format!("{pointer}/{n}");
            let Some(item) = item.as_object() else {
                continue;
            };
            let mut at = base;
            for (i, group) in list.groups.iter().enumerate() {
                at = self.child(at, *group, None, i == last);
            }
            for (to, value) in &list.constants {
                if lookup(item, to) == Some(value) {
                    self.written.insert(super::edifact::pointer(&here, to));
                }
            }
            for field in &list.fields {
                self.field(at, item, &here, field);
            }
            for inner in &list.lists {
                self.list(at, item, &here, inner);
            }
            // The item's trigger carries the codes `when` requires.
            if !list.when.is_empty()
                && let Some(d) = self
                    .instances
                    .get_mut(at)
                    .and_then(|i| i.drafts.iter_mut().find(|d| d.tag == list.when_tag))
            {
                for q in &list.when {
                    if d.get(q.slot.element, q.slot.component).is_none()
                        && let Some(first) = q.codes.first()
                    {
                        d.put(q.slot.element, q.slot.component, first);
                    }
                }
            }
        }
    }

    /// Drops what cannot be written: segments missing a mandatory value
    /// (and the group instance whose trigger it is), instances without
    /// their trigger. Every value dropped is reported.
    fn complete(&mut self) {
        for index in 1..self.instances.len() {
            let Some(inst) = self.instances.get(index) else {
                continue;
            };
            if inst.dropped {
                continue;
            }
            let group = inst.group;
            let above = inst
                .path
                .get(..inst.path.len().saturating_sub(1))
                .unwrap_or_default();
            let trigger = level(&self.mapping.def.nodes, above)
                .and_then(|nodes| {
                    nodes.iter().find_map(|n| match n {
                        Node::Group { number, .. } if *number == group => {
                            Some(n.trigger().to_owned())
                        }
                        _ => None,
                    })
                })
                .unwrap_or_default();
            self.check_drafts(index);
            let has_trigger = self
                .instances
                .get(index)
                .is_some_and(|i| i.drafts.iter().any(|d| d.tag == trigger));
            if !has_trigger {
                self.drop_instance(
                    index,
                    &format!("segment group SG{group} would have no {trigger}, its first segment"),
                );
            }
        }
        self.check_drafts(0);
    }

    /// Removes the drafts of an instance that miss a mandatory value.
    fn check_drafts(&mut self, index: usize) {
        let drafts = match self.instances.get(index) {
            Some(i) => i.drafts.clone(),
            None => return,
        };
        let mut keep = Vec::new();
        for draft in drafts {
            // Only qualifiers, no value of the model: nothing to write.
            if draft.pointers.is_empty() {
                continue;
            }
            match self.missing(&draft) {
                None => keep.push(draft),
                Some(why) => {
                    for pointer in &draft.pointers {
                        self.refuse(
                            Code::MappingUnwritable,
                            pointer,
                            None,
                            format!("segment {} cannot be written: {why}", draft.tag),
                        );
                        if let Some(l) = self.issues.last_mut() {
                            l.location.tag = Some(draft.tag.clone());
                        }
                        self.written.remove(pointer);
                    }
                }
            }
        }
        if let Some(i) = self.instances.get_mut(index) {
            i.drafts = keep;
        }
    }

    /// Why a draft is incomplete: its first mandatory data element or
    /// component without a value.
    fn missing(&self, draft: &Draft) -> Option<String> {
        let def = self
            .mapping
            .release_dir
            .definition(&draft.tag, SYNTAX_VERSION)?;
        for (e, element) in def.elements.iter().enumerate() {
            let given: Vec<bool> = draft
                .values
                .get(e)
                .map(|c| c.iter().map(|v| !v.is_empty()).collect())
                .unwrap_or_default();
            let any = given.iter().any(|g| *g);
            match &element.kind {
                ElementKind::Simple(_) => {
                    if element.status == Status::Mandatory && !any {
                        return Some(format!(
                            "its mandatory data element {} ({}) has no value (no rule of the mapping gives one)",
                            element.id, element.name
                        ));
                    }
                }
                ElementKind::Composite(components) => {
                    if !any && element.status == Status::Conditional {
                        continue;
                    }
                    // A mandatory composite whose components are all
                    // conditional (DOC C002) still needs one of them.
                    if !any {
                        return Some(format!(
                            "its mandatory composite {} ({}) has no value (no rule of the mapping gives one)",
                            element.id, element.name
                        ));
                    }
                    for (c, component) in components.iter().enumerate() {
                        if component.status == Status::Mandatory
                            && !given.get(c).copied().unwrap_or(false)
                        {
                            return Some(format!(
                                "the mandatory component {} ({}) of {} has no value (no rule of the mapping gives one)",
                                component.id, component.name, element.id
                            ));
                        }
                    }
                }
            }
        }
        None
    }

    fn drop_instance(&mut self, index: usize, why: &str) {
        let mut stack = vec![index];
        while let Some(i) = stack.pop() {
            let Some(inst) = self.instances.get_mut(i) else {
                continue;
            };
            if inst.dropped {
                continue;
            }
            inst.dropped = true;
            stack.extend(inst.children.iter().copied());
            let drafts = std::mem::take(&mut inst.drafts);
            for draft in drafts {
                for pointer in &draft.pointers {
                    self.refuse(
                        Code::MappingUnwritable,
                        pointer,
                        None,
                        format!("{} cannot be written: {why}", draft.tag),
                    );
                    if let Some(l) = self.issues.last_mut() {
                        l.location.tag = Some(draft.tag.clone());
                    }
                    self.written.remove(pointer);
                }
            }
        }
    }

    /// Writes an instance's segments and groups in segment-table order.
    fn emit(&mut self, nodes: &[Node], index: usize, out: &mut Vec<Segment>, sections: &mut usize) {
        for node in nodes {
            match node {
                Node::Segment { tag, max, status } => match tag.as_str() {
                    "UNH" | "UNT" => {}
                    "UNS" => {
                        // ISO 9735: the first section control separates
                        // header and detail (D), the second detail and
                        // summary (S).
                        if *status == Status::Mandatory {
                            let code = if *sections == 0 { "D" } else { "S" };
                            *sections += 1;
                            out.push(Segment::new("UNS", vec![Element::simple(code)]));
                        }
                    }
                    _ => {
                        let mut count = 0u32;
                        let drafts = self
                            .instances
                            .get(index)
                            .map(|i| i.drafts.len())
                            .unwrap_or(0);
                        for d in 0..drafts {
                            let Some(draft) = self
                                .instances
                                .get_mut(index)
                                .and_then(|i| i.drafts.get_mut(d))
                            else {
                                continue;
                            };
                            if draft.emitted || draft.tag != *tag {
                                continue;
                            }
                            if count >= *max {
                                continue;
                            }
                            draft.emitted = true;
                            count += 1;
                            out.push(segment(draft));
                        }
                    }
                },
                Node::Group {
                    number,
                    max,
                    children,
                    ..
                } => {
                    let mine: Vec<usize> = self
                        .instances
                        .get(index)
                        .map(|i| i.children.clone())
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|c| {
                            self.instances
                                .get(*c)
                                .is_some_and(|i| i.group == *number && !i.dropped)
                        })
                        .collect();
                    for (n, child) in mine.into_iter().enumerate() {
                        if n as u64 >= u64::from(*max) {
                            self.drop_instance(
                                child,
                                &format!("segment group SG{number} may occur at most {max} times"),
                            );
                            continue;
                        }
                        self.emit(children, child, out, sections);
                    }
                }
            }
        }
        // Segments the table had no room for.
        let left: Vec<Draft> = self
            .instances
            .get(index)
            .map(|i| i.drafts.iter().filter(|d| !d.emitted).cloned().collect())
            .unwrap_or_default();
        for draft in left {
            for pointer in &draft.pointers {
                self.refuse(
                    Code::MappingUnwritable,
                    pointer,
                    None,
                    format!(
                        "{} cannot be written: the segment table allows no more of it here",
                        draft.tag
                    ),
                );
                if let Some(l) = self.issues.last_mut() {
                    l.location.tag = Some(draft.tag.clone());
                }
                self.written.remove(pointer);
            }
        }
    }

    /// Reports every canonical value that no rule wrote (MAP001).
    fn unwritten(&mut self, canonical: &Value) {
        let mut leaves = Vec::new();
        collect_leaves(canonical, String::new(), &mut leaves);
        for (pointer, value) in leaves {
            let covered = |set: &BTreeSet<String>| {
                let mut at = pointer.as_str();
                loop {
                    if set.contains(at) {
                        return true;
                    }
                    match at.rfind('/') {
                        Some(cut) => at = at.get(..cut).unwrap_or(""),
                        None => return false,
                    }
                }
            };
            if covered(&self.written) || covered(&self.refused) {
                continue;
            }
            self.issues.push(Issue::warning(
                Code::MappingUnmapped,
                located(&pointer, None, None, &self.reference),
                format!(
                    "canonical value {value} has no place in {} {}: no rule of {} writes it",
                    self.mapping.message,
                    self.mapping.release,
                    self.mapping.file()
                ),
            ));
        }
    }
}

/// Every scalar of a JSON value with its pointer.
fn collect_leaves(value: &Value, pointer: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                collect_leaves(
                    v,
                    format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_leaves(v, format!("{pointer}/{i}"), out);
            }
        }
        Value::Null => {}
        other => out.push((pointer, other.to_string())),
    }
}

/// A draft as a segment: trailing empty components and elements dropped.
fn segment(draft: &Draft) -> Segment {
    let mut elements: Vec<Element> = draft
        .values
        .iter()
        .map(|components| {
            let mut components = components.clone();
            while components.last().is_some_and(String::is_empty) {
                components.pop();
            }
            if components.is_empty() {
                Element::simple("")
            } else {
                Element::composite(components)
            }
        })
        .collect();
    while elements.last().is_some_and(Element::is_empty) {
        elements.pop();
    }
    Segment::new(draft.tag.clone(), elements)
}

/// A whole interchange around message bodies (UNH … UNT each): UNA with
/// `seps`, UNB of `syntax_identifier` (UNOC when it is not one tradehub
/// knows) in syntax version `version` (3, or 4 with its CCYYMMDD date),
/// UNZ. The sender and recipient must fit UNB (an..35 in the repertoire):
/// [`declaration_to_cusdec`] sees to it.
pub fn interchange(
    envelope: &Envelope,
    syntax_identifier: &str,
    version: u8,
    seps: &Separators,
    messages: &[Vec<Segment>],
) -> Result<Vec<u8>, writer::WriteError> {
    let (id, charset) = match Charset::from_syntax_identifier(syntax_identifier) {
        Some(c) => (syntax_identifier, c),
        None => ("UNOC", Charset::Iso8859(1)),
    };
    let reference: String = envelope.reference.chars().take(14).collect();
    let at = &envelope.prepared;
    let mut segments = vec![Segment::new(
        "UNB",
        vec![
            Element::composite([id.to_owned(), version.to_string()]),
            Element::simple(&envelope.sender),
            Element::simple(&envelope.recipient),
            Element::composite([at.edifact_date(version >= 4), at.edifact_time()]),
            Element::simple(&reference),
        ],
    )];
    for message in messages {
        segments.extend(message.iter().cloned());
    }
    segments.push(Segment::new(
        "UNZ",
        vec![
            Element::simple(messages.len().to_string()),
            Element::simple(&reference),
        ],
    ));
    let mut out = seps.una().to_vec();
    writer::write_segments(&segments, seps, charset, &mut out)?;
    Ok(out)
}

/// A canonical declaration as a D.96B CUSDEC in its own interchange (UNOC,
/// level A separators), through `mappings/edifact/D96B/CUSDEC.toml` read
/// backwards; the message reference is the interchange reference.
pub fn declaration_to_cusdec(
    declaration: &crate::model::Declaration,
    envelope: &Envelope,
    directories: &crate::schema::Directories,
) -> Result<Written, MappingError> {
    let unavailable = |message: String| MappingError {
        file: "mappings/edifact/D96B/CUSDEC.toml".into(),
        line: 0,
        message,
    };
    let release = directories
        .release("D96B")
        .map_err(unavailable)?
        .ok_or_else(|| unavailable("directory D.96B is not available".into()))?;
    let mapping = OutboundMapping::load("CUSDEC", release)?;
    let canonical = serde_json::to_value(declaration).map_err(|e| unavailable(e.to_string()))?;
    let reference: String = envelope.reference.chars().take(14).collect();
    let reference = if reference.is_empty() {
        "1".to_owned()
    } else {
        reference
    };
    // UNOC (ISO 8859-1, syntax version 3) when every text fits it; else
    // UNOW (UTF-8), which syntax version 4 gives, so that names in Polish,
    // Greek or Korean are written rather than dropped.
    let latin1 = |text: &str| text.chars().all(|c| u32::from(c) <= 0xFF);
    let (syntax, version, seps, charset) = if all_texts(&canonical, &latin1) {
        ("UNOC", 3, Separators::LEVEL_A, Charset::Iso8859(1))
    } else {
        ("UNOW", 4, Separators::LEVEL_A_V4, Charset::Utf8)
    };
    let (body, mut issues) = mapping.message(&canonical, &reference, charset);
    // The sender is the declarant's identifier when UNB can carry it
    // (an..35 in the repertoire), else the hub's name, said.
    use crate::ack::contrl::HUB_ID;
    let mut envelope = envelope.clone();
    let fits = |id: &str| {
        // (Both repertoires' encoders refuse control characters.)
        !id.is_empty() && id.chars().count() <= 35 && charset.encode(id, &mut Vec::new()).is_ok()
    };
    for (what, id) in [
        ("sender", &mut envelope.sender),
        ("recipient", &mut envelope.recipient),
    ] {
        if !fits(id) {
            issues.push(Issue::warning(
                Code::MappingUnwritable,
                Location::default(),
                format!(
                    "UNB {what} {id:?} cannot be written (an..35 in {syntax}); {HUB_ID} written instead"
                ),
            ));
            *id = HUB_ID.to_owned();
        }
    }
    let bytes = interchange(&envelope, syntax, version, &seps, &[body])
        .map_err(|e| unavailable(format!("the CUSDEC cannot be written: {e}")))?;
    Ok(Written { bytes, issues })
}

/// True when every string of `value` satisfies `ok`.
fn all_texts(value: &Value, ok: &dyn Fn(&str) -> bool) -> bool {
    match value {
        Value::String(s) => ok(s),
        Value::Array(items) => items.iter().all(|v| all_texts(v, ok)),
        Value::Object(map) => map.iter().all(|(k, v)| ok(k) && all_texts(v, ok)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::split_joined;

    #[test]
    fn joined_text_is_cut_where_the_join_puts_it_back() {
        // No separator: every `max` characters.
        let cut = split_joined("ABCDEFGHIJ", "", 4, 5).unwrap();
        assert_eq!(cut, ["ABCD", "EFGH", "IJ"]);
        assert_eq!(cut.concat(), "ABCDEFGHIJ");
        // Characters, not bytes.
        assert_eq!(split_joined("ÄÖÜ", "", 2, 5).unwrap(), ["ÄÖ", "Ü"]);
        // A separator: as many words to a piece as fit.
        let cut = split_joined("ONE TWO THREE FOUR", " ", 9, 5).unwrap();
        assert_eq!(cut, ["ONE TWO", "THREE", "FOUR"]);
        assert_eq!(cut.join(" "), "ONE TWO THREE FOUR");
        // Too many pieces, or a word longer than a piece: refused.
        assert!(split_joined("ABCDEFGHIJ", "", 4, 2).is_err());
        assert!(split_joined("ONE ENORMOUSWORD", " ", 5, 5).is_err());
        // Separators where a line ends would leave an empty line, which is
        // not read back: refused rather than written otherwise.
        assert!(split_joined("ABCD  EFGH", " ", 4, 5).is_err());
        assert!(split_joined("ABCD ", " ", 4, 5).is_err());
        assert!(split_joined(" ABCD", " ", 4, 5).is_err());
        // Doubled, leading and trailing separators inside a line are kept.
        let cut = split_joined(" AB  C ", " ", 4, 5).unwrap();
        assert_eq!(cut.join(" "), " AB  C ");
        assert!(cut.iter().all(|p| !p.is_empty() && p.chars().count() <= 4));
        // An empty text is one empty piece (its data element says no).
        assert_eq!(split_joined("", "", 70, 5).unwrap(), [""]);
    }
}
