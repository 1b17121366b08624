//! EDIFACT mappings: a mapping file compiled against its message's segment
//! table and segment directory, and applied to decoded messages.
//!
//! A message is first cut into its segment-group instances (the same
//! greedy placement the validator uses: each segment goes to the first
//! position, at or after the current one, in the current group or an
//! enclosing one, that carries its tag or its group's trigger), then every
//! rule picks its values from the instances its path names.

use std::collections::HashSet;

use rustc_hash::FxHashSet;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::{
    Constant, FieldRule, ListRule, MappingError, MappingFile, ValueType, schema_field, schema_type,
};
use crate::diag::{Code, Issue, Location};
use crate::edifact::{Message, Segment};
use crate::model::Moment;
use crate::schema::{ElementKind, MessageDef, Node, Release};

/// A position of a value in a segment (0-based element and component).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Pos {
    element: usize,
    component: usize,
}

/// One `[element=code|code]` condition on a segment.
#[derive(Debug, Clone)]
struct Filter {
    at: Pos,
    codes: Vec<String>,
}

/// A compiled path: groups, segment with its filters, and the value.
#[derive(Debug, Clone)]
struct PathSpec {
    groups: Vec<u16>,
    tag: String,
    filters: Vec<Filter>,
    value: Option<Pos>,
}

#[derive(Debug, Clone)]
struct CompiledField {
    to: String,
    from: PathSpec,
    kind: ValueType,
    date_format: Option<Pos>,
    default_format: Option<String>,
    codes: Option<std::collections::BTreeMap<String, String>>,
    pass_other: bool,
    all: bool,
    last: bool,
}

#[derive(Debug, Clone)]
struct CompiledList {
    to: String,
    groups: Vec<u16>,
    when: Vec<Filter>,
    constants: Vec<(String, Value)>,
    fields: Vec<CompiledField>,
    lists: Vec<CompiledList>,
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
    def: Arc<MessageDef>,
    /// Per segment tag, the positions of `ignore`d data elements.
    ignored: std::collections::HashMap<String, HashSet<Pos>>,
    constants: Vec<(String, Value)>,
    fields: Vec<CompiledField>,
    lists: Vec<CompiledList>,
}

/// Compiles in the context of one mapping file.
struct Compiler<'a> {
    name: &'a str,
    text: &'a str,
    release: &'a Release,
    syntax_version: u8,
    schema_root: Value,
}

impl Compiler<'_> {
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
        let def = self
            .release
            .definition(tag, self.syntax_version)
            .ok_or_else(|| {
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
        let def = self.release.definition(tag, self.syntax_version)?;
        let element = def.elements.get(at.element)?;
        match &element.kind {
            ElementKind::Simple(_) => Some(element.id.clone()),
            ElementKind::Composite(components) => {
                components.get(at.component).map(|c| c.id.clone())
            }
        }
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
                let at = self.position(tag, &element.trim().replace('.', "/"))?;
                let codes: Vec<String> = codes.split('|').map(|c| c.trim().to_owned()).collect();
                if let Some(id) = self.element_id(tag, at)
                    && let Some(list) = self.release.codes(&id)
                {
                    for code in &codes {
                        if !list.codes.contains(code) {
                            return Err(format!(
                                "{code:?} is not a code of {id} ({}) in {}",
                                list.name, self.release.name
                            ));
                        }
                    }
                }
                filters.push(Filter { at, codes });
            }
            rest = inner.1;
        }
        Ok((tag.to_owned(), filters))
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
        let mut groups = Vec::new();
        let mut i = 0;
        while let Some(step) = steps.get(i) {
            match step.strip_prefix("SG").and_then(|n| n.parse::<u16>().ok()) {
                Some(n) => groups.push(n),
                None => break,
            }
            i += 1;
        }
        let mut full: Vec<u16> = base.to_vec();
        full.extend(&groups);
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
        let value = if rest.is_empty() {
            if need_value {
                return Err(format!("{path:?} names a segment, not a data element"));
            }
            None
        } else {
            Some(self.position(&tag, &rest.join("/"))?)
        };
        Ok(PathSpec {
            groups,
            tag,
            filters,
            value,
        })
    }

    fn target_check(&self, schema: &Value, rule: &FieldRule) -> Result<(), MappingError> {
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
        Ok(())
    }

    fn field(
        &self,
        def: &MessageDef,
        schema: &Value,
        base: &[u16],
        rule: &FieldRule,
    ) -> Result<CompiledField, MappingError> {
        self.target_check(schema, rule)?;
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
        Ok(CompiledField {
            to: rule.to.get_ref().clone(),
            from,
            kind: rule.kind,
            date_format,
            default_format: rule.default_format.clone(),
            codes: rule.codes.clone(),
            pass_other: rule.pass_other,
            all: rule.all,
            last: rule.last,
        })
    }

    fn constants(
        &self,
        schema: &Value,
        constants: &[Constant],
    ) -> Result<Vec<(String, Value)>, MappingError> {
        constants
            .iter()
            .map(|c| {
                schema_field(&self.schema_root, schema, c.to.get_ref())
                    .map_err(|m| self.error(c.to.span(), m))?;
                let value = serde_json::to_value(&c.value)
                    .map_err(|e| self.error(c.to.span(), e.to_string()))?;
                Ok((c.to.get_ref().clone(), value))
            })
            .collect()
    }

    fn list(
        &self,
        def: &MessageDef,
        schema: &Value,
        base: &[u16],
        rule: &ListRule,
    ) -> Result<CompiledList, MappingError> {
        let node = schema_field(&self.schema_root, schema, rule.to.get_ref())
            .map_err(|m| self.error(rule.to.span(), m))?;
        if schema_type(node) != Some("array") {
            return Err(self.error(
                rule.to.span(),
                format!("{} is not a list in the canonical model", rule.to.get_ref()),
            ));
        }
        let items = node
            .get("items")
            .map(|i| super::resolve(&self.schema_root, i))
            .unwrap_or(node);
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
            to: rule.to.get_ref().clone(),
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
        };
        let target_schema = compiler
            .schema_root
            .get("properties")
            .and_then(|p| p.get(&file.target))
            .map(|t| super::resolve(&compiler.schema_root, t).clone())
            .ok_or_else(|| whole(format!("target {:?} is not a canonical type", file.target)))?;
        let constants = compiler.constants(&target_schema, &file.constant)?;
        let fields = file
            .field
            .iter()
            .map(|f| compiler.field(&def, &target_schema, &[], f))
            .collect::<Result<_, _>>()?;
        let lists = file
            .list
            .iter()
            .map(|l| compiler.list(&def, &target_schema, &[], l))
            .collect::<Result<_, _>>()?;
        let mut ignored: std::collections::HashMap<String, HashSet<Pos>> = Default::default();
        if !file.ignore.is_empty() {
            let mut tags = Vec::new();
            collect_tags(&def.nodes, &mut tags);
            for tag in tags {
                let Some(seg) = release.definition(&tag, syntax_version) else {
                    continue;
                };
                let mut set = HashSet::new();
                for (e, element) in seg.elements.iter().enumerate() {
                    match &element.kind {
                        ElementKind::Simple(_) if file.ignore.contains(&element.id) => {
                            set.insert(Pos {
                                element: e,
                                component: 0,
                            });
                        }
                        ElementKind::Composite(components) => {
                            for (c, k) in components.iter().enumerate() {
                                if file.ignore.contains(&k.id) {
                                    set.insert(Pos {
                                        element: e,
                                        component: c,
                                    });
                                }
                            }
                        }
                        ElementKind::Simple(_) => {}
                    }
                }
                ignored.insert(tag, set);
            }
        }
        Ok(EdifactMapping {
            name: name.to_owned(),
            ignored,
            message: file.message,
            release: file.release,
            target: file.target,
            def,
            constants,
            fields,
            lists,
        })
    }

    /// Maps one decoded message (UNH..UNT) to the target as JSON, with every
    /// problem and every value no rule read.
    pub fn apply(&self, message: &Message) -> (Value, Vec<Issue>) {
        let (value, issues, _) = self.run(message, false);
        (value, issues)
    }

    /// [`apply`](Self::apply), plus where each value came from: JSON
    /// pointer of the canonical field → location of the segment and
    /// element (see [`super::Mapped::provenance`]).
    pub fn apply_located(&self, message: &Message) -> (Value, Vec<Issue>, Provenance) {
        self.run(message, true)
    }

    /// Applies the rules; `locate`: also record each value's provenance
    /// (`apply` does without, which saves a map entry per value).
    fn run(&self, message: &Message, locate: bool) -> (Value, Vec<Issue>, Provenance) {
        let tree = Tree::build(&self.def, &message.segments);
        let mut run = Run {
            message,
            read: FxHashSet::default(),
            issues: Vec::new(),
            ignored: &self.ignored,
            group_paths: tree.group_paths(message.segments.len()),
            provenance: Provenance::new(),
            tracing: locate,
        };
        // The message as a whole: UNH.
        if locate {
            run.provenance.insert(String::new(), run.source(0, None));
        }
        let mut out = Map::new();
        for (to, value) in &self.constants {
            set(&mut out, to, value.clone());
        }
        for field in &self.fields {
            run.field(&tree, 0, field, "", &mut out);
        }
        for list in &self.lists {
            run.list(&tree, 0, list, "", &mut out);
        }
        run.unread();
        (Value::Object(out), run.issues, run.provenance)
    }
}

/// A message cut into segment-group instances.
struct Tree {
    instances: Vec<Instance>,
}

struct Instance {
    group: u16,
    /// Group path from the message level, e.g. `SG30/SG33`.
    path: String,
    /// Segments directly in this instance (indices into the message).
    segments: Vec<usize>,
    children: Vec<usize>,
}

struct Frame<'d> {
    nodes: &'d [Node],
    pos: usize,
    count: u32,
    instance: usize,
}

impl Tree {
    fn build(def: &MessageDef, segments: &[Segment]) -> Tree {
        let mut tree = Tree {
            instances: vec![Instance {
                group: 0,
                path: String::new(),
                segments: Vec::new(),
                children: Vec::new(),
            }],
        };
        let mut stack = vec![Frame {
            nodes: &def.nodes,
            pos: 0,
            count: 0,
            instance: 0,
        }];
        for (index, segment) in segments.iter().enumerate() {
            let tag = segment.tag.as_str();
            if let Some(instance) = Tree::place(&mut tree, &mut stack, tag)
                && let Some(inst) = tree.instances.get_mut(instance)
            {
                inst.segments.push(index);
            }
        }
        tree
    }

    /// Moves the stack to where `tag` goes; returns the instance it joins.
    fn place(tree: &mut Tree, stack: &mut Vec<Frame<'_>>, tag: &str) -> Option<usize> {
        for depth in (0..stack.len()).rev() {
            let frame = stack.get(depth)?;
            let (nodes, pos, count, instance) =
                (frame.nodes, frame.pos, frame.count, frame.instance);
            if count > 0 {
                match nodes.get(pos) {
                    Some(Node::Segment { tag: t, max, .. }) if t == tag && count < *max => {
                        stack.truncate(depth + 1);
                        if let Some(f) = stack.last_mut() {
                            f.count += 1;
                        }
                        return Some(instance);
                    }
                    Some(
                        node @ Node::Group {
                            max,
                            children,
                            number,
                            ..
                        },
                    ) if node.trigger() == tag && count < *max => {
                        stack.truncate(depth + 1);
                        if let Some(f) = stack.last_mut() {
                            f.count += 1;
                        }
                        return Some(Tree::open(tree, stack, instance, *number, children));
                    }
                    _ => {}
                }
            }
            let start = if count > 0 { pos + 1 } else { pos };
            for (p, node) in nodes.iter().enumerate().skip(start) {
                if node.trigger() != tag {
                    continue;
                }
                stack.truncate(depth + 1);
                if let Some(f) = stack.last_mut() {
                    f.pos = p;
                    f.count = 1;
                }
                return match node {
                    Node::Segment { .. } => Some(instance),
                    Node::Group {
                        number, children, ..
                    } => Some(Tree::open(tree, stack, instance, *number, children)),
                };
            }
        }
        None
    }

    fn open<'d>(
        tree: &mut Tree,
        stack: &mut Vec<Frame<'d>>,
        parent: usize,
        group: u16,
        children: &'d [Node],
    ) -> usize {
        let id = tree.instances.len();
        let path = match tree.instances.get(parent).map(|p| p.path.as_str()) {
            Some(p) if !p.is_empty() => format!("{p}/SG{group}"),
            _ => format!("SG{group}"),
        };
        tree.instances.push(Instance {
            group,
            path,
            segments: Vec::new(),
            children: Vec::new(),
        });
        if let Some(p) = tree.instances.get_mut(parent) {
            p.children.push(id);
        }
        stack.push(Frame {
            nodes: children,
            pos: 0,
            count: 1,
            instance: id,
        });
        id
    }

    /// The group path of every segment of the message (empty at the
    /// message level and for segments no group took).
    fn group_paths(&self, segments: usize) -> Vec<String> {
        let mut paths = vec![String::new(); segments];
        for instance in &self.instances {
            for seg in &instance.segments {
                if let Some(slot) = paths.get_mut(*seg) {
                    slot.clone_from(&instance.path);
                }
            }
        }
        paths
    }

    /// Instances reached from `from` through the group numbers.
    fn reach(&self, from: usize, groups: &[u16]) -> Vec<usize> {
        let mut current = vec![from];
        for number in groups {
            current = current
                .iter()
                .filter_map(|i| self.instances.get(*i))
                .flat_map(|inst| inst.children.iter().copied())
                .filter(|c| self.instances.get(*c).is_some_and(|i| i.group == *number))
                .collect();
        }
        current
    }
}

/// The state of one application of a mapping to a message.
struct Run<'m> {
    message: &'m Message,
    /// (segment, element, repetition, component) read by some rule.
    read: FxHashSet<(usize, usize, usize, usize)>,
    issues: Vec<Issue>,
    ignored: &'m std::collections::HashMap<String, HashSet<Pos>>,
    /// Group path per segment index.
    group_paths: Vec<String>,
    provenance: Provenance,
    /// False while reading values that do not reach the output (items of
    /// a list whose field already holds something else).
    tracing: bool,
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

impl Run<'_> {
    /// The value at a position, without marking it read.
    fn peek(&self, seg: usize, at: Pos) -> Option<&str> {
        self.message
            .segments
            .get(seg)?
            .element(at.element)?
            .repetitions()
            .first()?
            .get(at.component)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value at a position, marked read.
    fn value(&mut self, seg: usize, at: Pos) -> Option<String> {
        let v = self.peek(seg, at)?.to_owned();
        self.read.insert((seg, at.element, 0, at.component));
        Some(v)
    }

    /// True when every filter holds; the qualifiers of a segment that is
    /// selected count as read, those of one that is not do not.
    fn matches(&mut self, seg: usize, filters: &[Filter]) -> bool {
        let all = filters.iter().all(|f| {
            self.peek(seg, f.at)
                .is_some_and(|v| f.codes.iter().any(|c| c == v))
        });
        if all {
            for f in filters {
                self.read.insert((seg, f.at.element, 0, f.at.component));
            }
        }
        all
    }

    fn location(&self, seg: usize, at: Option<Pos>) -> Location {
        let tag = self.message.segments.get(seg).map(|s| s.tag.clone());
        Location {
            message: Some(self.message.reference.clone()),
            segment: Some(self.message.position + seg as u32),
            message_segment: Some(seg as u32 + 1),
            tag,
            element: at.map(|a| a.element as u16 + 1),
            component: at.map(|a| a.component as u16 + 1),
            ..Location::default()
        }
    }

    /// Where a value came from: [`location`](Self::location) plus the
    /// segment group path.
    fn source(&self, seg: usize, at: Option<Pos>) -> Location {
        let mut location = self.location(seg, at);
        location.group_path = self.group_paths.get(seg).filter(|p| !p.is_empty()).cloned();
        location
    }

    /// Records where the value at `pointer` came from, and its enclosing
    /// objects up to `prefix` (at the segment, unless they have a source
    /// already); the first value set wins, as in [`set`].
    fn trace(&mut self, prefix: &str, pointer: &str, seg: usize, at: Option<Pos>) {
        if !self.tracing || self.provenance.contains_key(pointer) {
            return;
        }
        let source = self.source(seg, at);
        let mut parent = pointer;
        while let Some(cut) = parent.rfind('/') {
            parent = parent.get(..cut).unwrap_or("");
            if parent.len() <= prefix.len() {
                break;
            }
            if !self.provenance.contains_key(parent) {
                let mut whole = source.clone();
                whole.element = None;
                whole.component = None;
                self.provenance.insert(parent.to_owned(), whole);
            }
        }
        self.provenance.insert(pointer.to_owned(), source);
    }

    /// The segments a path selects below `instance`, in message order.
    fn select(&mut self, tree: &Tree, instance: usize, path: &PathSpec) -> Vec<usize> {
        let mut found = Vec::new();
        for inst in tree.reach(instance, &path.groups) {
            let segments: Vec<usize> = tree
                .instances
                .get(inst)
                .map(|i| i.segments.clone())
                .unwrap_or_default();
            for seg in segments {
                if self
                    .message
                    .segments
                    .get(seg)
                    .is_some_and(|s| s.tag == path.tag)
                    && self.matches(seg, &path.filters)
                {
                    found.push(seg);
                }
            }
        }
        found
    }

    fn convert(&mut self, field: &CompiledField, seg: usize, raw: String) -> Option<Value> {
        let at = field.from.value;
        let raw = match &field.codes {
            Some(codes) => match codes.get(&raw) {
                Some(mapped) => mapped.clone(),
                None if field.pass_other => raw,
                None => {
                    let known: Vec<&str> = codes.keys().map(String::as_str).collect();
                    self.issues.push(Issue::error(
                        Code::MappingCodeUnknown,
                        self.location(seg, at),
                        format!(
                            "code {raw:?} for {} has no translation (mapped codes: {})",
                            field.to,
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
                format!("{raw:?} for {} is not {what}", field.to),
            ));
            None
        };
        match field.kind {
            ValueType::Text => Some(Value::String(raw)),
            ValueType::Decimal => match raw.replace(',', ".").parse::<Decimal>() {
                Ok(d) => Some(Value::String(d.to_string())),
                Err(_) => bad(self, "a decimal number"),
            },
            ValueType::Integer => match raw.parse::<u64>() {
                Ok(n) => Some(Value::from(n)),
                Err(_) => bad(self, "a whole number"),
            },
            ValueType::Boolean => match raw.as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => bad(self, "true or false"),
            },
            ValueType::Date => {
                let format = field
                    .date_format
                    .and_then(|p| self.value(seg, p))
                    .or_else(|| field.default_format.clone());
                let Some(format) = format else {
                    return bad(
                        self,
                        "a date with its 2379 format code (the format code is missing)",
                    );
                };
                match Moment::from_edifact(&raw, &format) {
                    Ok(m) => serde_json::to_value(m).ok(),
                    Err(e) => {
                        self.issues.push(Issue::error(
                            Code::MappingValueInvalid,
                            self.location(seg, at),
                            format!("{} : {e}", field.to),
                        ));
                        None
                    }
                }
            }
        }
    }

    fn field(
        &mut self,
        tree: &Tree,
        instance: usize,
        field: &CompiledField,
        prefix: &str,
        out: &mut Map<String, Value>,
    ) {
        let Some(at) = field.from.value else { return };
        let segments = self.select(tree, instance, &field.from);
        let target = pointer(prefix, &field.to);
        let unset = lookup_mut(out, &field.to).is_none();
        if field.all {
            let mut values = Vec::new();
            for seg in segments {
                if let Some(raw) = self.value(seg, at)
                    && let Some(v) = self.convert(field, seg, raw)
                {
                    if unset {
                        self.trace(prefix, &format!("{target}/{}", values.len()), seg, Some(at));
                    }
                    values.push(v);
                }
            }
            if !values.is_empty() {
                set(out, &field.to, Value::Array(values));
            }
            return;
        }
        let ordered: Box<dyn Iterator<Item = usize>> = if field.last {
            Box::new(segments.into_iter().rev())
        } else {
            Box::new(segments.into_iter())
        };
        for seg in ordered {
            if let Some(raw) = self.value(seg, at) {
                if let Some(v) = self.convert(field, seg, raw) {
                    if unset {
                        self.trace(prefix, &target, seg, Some(at));
                    }
                    set(out, &field.to, v);
                }
                return;
            }
        }
    }

    fn list(
        &mut self,
        tree: &Tree,
        instance: usize,
        list: &CompiledList,
        prefix: &str,
        out: &mut Map<String, Value>,
    ) {
        let mut items = Vec::new();
        let target = pointer(prefix, &list.to);
        // Items are appended to a list an earlier rule started.
        let first = match lookup_mut(out, &list.to) {
            Some(Value::Array(existing)) => Some(existing.len()),
            Some(_) => None,
            None => Some(0),
        };
        for inst in tree.reach(instance, &list.groups) {
            if !list.when.is_empty() {
                let trigger = tree
                    .instances
                    .get(inst)
                    .and_then(|i| i.segments.first().copied());
                match trigger {
                    Some(seg) if self.matches(seg, &list.when) => {}
                    _ => continue,
                }
            }
            let mut item = Map::new();
            for (to, value) in &list.constants {
                set(&mut item, to, value.clone());
            }
            // The item is where its group instance starts. When the field
            // already holds something that is not a list, `set` drops the
            // items, so nothing of them is traced.
            let tracing = self.tracing;
            self.tracing = tracing && first.is_some();
            let here = format!("{target}/{}", first.unwrap_or(0) + items.len());
            let trigger = tree
                .instances
                .get(inst)
                .and_then(|i| i.segments.first().copied());
            if let Some(seg) = trigger {
                self.trace(prefix, &here, seg, None);
            }
            for field in &list.fields {
                self.field(tree, inst, field, &here, &mut item);
            }
            for inner in &list.lists {
                self.list(tree, inst, inner, &here, &mut item);
            }
            self.tracing = tracing;
            items.push(Value::Object(item));
        }
        if !items.is_empty() {
            match lookup_mut(out, &list.to) {
                Some(Value::Array(existing)) => existing.extend(items),
                _ => set(out, &list.to, Value::Array(items)),
            }
        }
    }

    /// Every non-empty value of a data segment that no rule read (MAP001),
    /// at most 50 per message, then a count.
    fn unread(&mut self) {
        let mut reported = 0usize;
        let mut more = 0usize;
        for (s, segment) in self.message.segments.iter().enumerate() {
            if matches!(segment.tag.as_str(), "UNH" | "UNT" | "UNS") {
                continue;
            }
            let ignored = self.ignored.get(&segment.tag);
            for (e, element) in segment.elements.iter().enumerate() {
                for (r, rep) in element.repetitions().iter().enumerate() {
                    for (c, value) in rep.iter().enumerate() {
                        if value.is_empty()
                            || self.read.contains(&(s, e, r, c))
                            || ignored.is_some_and(|set| {
                                set.contains(&Pos {
                                    element: e,
                                    component: c,
                                })
                            })
                        {
                            continue;
                        }
                        if reported >= 50 {
                            more += 1;
                            continue;
                        }
                        reported += 1;
                        let location = self.location(
                            s,
                            Some(Pos {
                                element: e,
                                component: c,
                            }),
                        );
                        self.issues.push(Issue::warning(
                            Code::MappingUnmapped,
                            location,
                            format!("value {value:?} is not mapped to the canonical model"),
                        ));
                    }
                }
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

/// Sets a dotted field, creating objects on the way; the first value set
/// wins.
fn set(out: &mut Map<String, Value>, dotted: &str, value: Value) {
    let mut parts = dotted.split('.').peekable();
    let mut map = out;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            map.entry(part.to_owned()).or_insert(value);
            return;
        }
        let entry = map
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        match entry {
            Value::Object(inner) => map = inner,
            _ => return,
        }
    }
}

fn lookup_mut<'a>(out: &'a mut Map<String, Value>, dotted: &str) -> Option<&'a mut Value> {
    let mut parts = dotted.split('.');
    let first = parts.next()?;
    let mut node = out.get_mut(first)?;
    for part in parts {
        node = node.get_mut(part)?;
    }
    Some(node)
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

/// Maps every message of a parsed interchange (kept and decoded) through
/// the mapping of its type and release.
pub fn map_interchange(
    parsed: &crate::edifact::Parsed,
    directories: &crate::schema::Directories,
) -> Vec<super::Mapped> {
    let interchange = &parsed.interchange;
    let version: u8 = interchange.syntax_version.parse().unwrap_or(3);
    let messages = interchange
        .messages
        .iter()
        .chain(interchange.groups.iter().flat_map(|g| g.messages.iter()));
    let mut out = Vec::new();
    for message in messages {
        let name = format!("{}{}", message.version, message.release);
        let mut mapped = super::Mapped {
            message: message.reference.clone(),
            message_type: message.message_type.clone(),
            target: String::new(),
            canonical: None,
            issues: Vec::new(),
            provenance: Provenance::new(),
        };
        let here = Location {
            message: Some(message.reference.clone()),
            ..Location::default()
        };
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
        let (value, issues, mut provenance) = mapping.apply_located(message);
        for location in provenance.values_mut() {
            location.interchange = Some(interchange.control_reference.clone());
            location.group.clone_from(&message.group);
        }
        mapped.issues = issues;
        mapped.provenance = provenance;
        match super::typed(&mapping.target, value) {
            Ok(canonical) => mapped.canonical = Some(canonical),
            Err(e) => mapped.issues.push(Issue::error(
                Code::MappingIncomplete,
                here,
                format!("the mapped {} is incomplete: {e}", mapping.target),
            )),
        }
        out.push(mapped);
    }
    out
}

/// Parses an interchange held in memory (syntax and structure validation
/// against `directories`, every message kept and decoded) and maps each of
/// its messages.
pub fn parse_and_map(
    bytes: &[u8],
    directories: &Arc<crate::schema::Directories>,
) -> std::io::Result<(crate::edifact::Parsed, Vec<super::Mapped>)> {
    let options = crate::edifact::ParseOptions {
        keep_messages: true,
        decode_messages: true,
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
    set(out, dotted, value);
}
