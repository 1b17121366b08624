//! WCO DEC mappings: a mapping file (`format = "wco"`) checked against the
//! element paths of the vendored WCO_DEC_2_DMS.xsd and applied to a
//! declaration while it streams past. Leaves of one goods item are held
//! only until the item ends, so a declaration of 999 items never sits in
//! memory as a tree.
//!
//! Paths are relative to `Declaration`: `GoodsShipment/Importer/ID`; a step
//! may carry a filter on a child's value, `Classification[IdentificationTypeCode=TSP]/ID`;
//! a final `@name` reads an attribute (`InvoiceAmount/@currencyID`).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::{FieldRule, ListRule, MappingError, MappingFile, ValueType, schema_field, schema_type};
use crate::diag::{Code, Issue, Location};
use crate::xml::reader::NS_DECLARATION;

/// The WCO DEC mapping (`mappings/wco/DEC.toml`) compiled against the
/// vendored DEC schema; loaded once per process.
pub fn load() -> Result<std::sync::Arc<WcoMapping>, MappingError> {
    static LOADED: std::sync::OnceLock<Result<std::sync::Arc<WcoMapping>, MappingError>> =
        std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let missing = |file: String, message: String| MappingError {
                file,
                line: 0,
                message,
            };
            let path = super::mapping_folders()
                .into_iter()
                .map(|dir| dir.join("wco/DEC.toml"))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    missing("mappings/wco/DEC.toml".into(), "no WCO DEC mapping".into())
                })?;
            let xsd = crate::xml::find_schemas(None)
                .map(|dir| dir.join("declaration/WCO_DEC_2_DMS.xsd"))
                .ok_or_else(|| {
                    missing(
                        "schemas/wco".into(),
                        "the WCO schemas were not found".into(),
                    )
                })?;
            let name = path.display().to_string();
            let text =
                std::fs::read_to_string(&path).map_err(|e| missing(name.clone(), e.to_string()))?;
            WcoMapping::compile(&name, &text, &xsd).map(std::sync::Arc::new)
        })
        .clone()
}

/// Every element path of the DEC schema, `Declaration/...`.
pub fn schema_paths(xsd: &str) -> Result<HashSet<String>, String> {
    let mut reader = NsReader::from_str(xsd);
    let mut stack: Vec<String> = Vec::new();
    let mut paths = HashSet::new();
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let start = matches!(event, Event::Start(_));
                let name = e
                    .try_get_attribute("name")
                    .ok()
                    .flatten()
                    .map(|a| String::from_utf8_lossy(&a.value).into_owned());
                match e.local_name().as_ref() {
                    b"element" if !stack.is_empty() => {
                        let Some(name) = name else { continue };
                        let path = format!("{}/{name}", stack.join("/"));
                        paths.insert(path);
                        if start {
                            stack.push(name);
                        }
                    }
                    b"complexType"
                        if stack.is_empty() && name.as_deref() == Some("Declaration") =>
                    {
                        stack.push("Declaration".into());
                        paths.insert("Declaration".into());
                    }
                    _ => {}
                }
            }
            Event::End(ref e) => match e.local_name().as_ref() {
                b"element" if stack.len() > 1 => {
                    stack.pop();
                }
                b"complexType" if stack.len() == 1 => {
                    stack.pop();
                }
                _ => {}
            },
            Event::Eof => return Ok(paths),
            _ => {}
        }
    }
}

/// The child of a WCO date-time element (UN/CEFACT `DateTimeType`, in the
/// DEC data types' namespace) holding the date and, as `formatCode`, its
/// 2379 format.
pub(crate) const DATE_TIME_STRING: &str = "DateTimeString";

#[derive(Debug, Clone)]
struct Step {
    name: String,
    filter: Option<(String, String)>,
}

#[derive(Debug, Clone)]
struct XmlPath {
    steps: Vec<Step>,
    attribute: Option<String>,
}

#[derive(Debug, Clone)]
struct XmlField {
    to: String,
    from: XmlPath,
    kind: ValueType,
    codes: Option<std::collections::BTreeMap<String, String>>,
    pass_other: bool,
    /// Codes not in `codes` that give no value (see [`super::FieldRule`]).
    skip_codes: Vec<String>,
    skip_other: bool,
    /// The `unitCode` the value must have when it gives one.
    unit: Option<String>,
    all: bool,
    /// With `all`: repeated values are kept once.
    distinct: bool,
    /// For a date: the attribute of the value's element that holds its
    /// 2379 format (`formatCode` of a WCO `DateTimeString`).
    date_format: Option<String>,
    /// For a date: the format when the element gives none.
    default_format: Option<String>,
    /// For a date: a two-digit year is the latest one not after today.
    past: bool,
    near: bool,
}

#[derive(Debug, Clone)]
struct XmlList {
    to: String,
    /// The repeating element, relative to the enclosing list item (or to
    /// Declaration at the top).
    element: Vec<String>,
    fields: Vec<XmlField>,
    /// Lists inside each item (e.g. a goods item's documents), read from
    /// the item's values when it ends.
    lists: Vec<XmlList>,
}

/// A compiled WCO mapping.
#[derive(Debug, Clone)]
pub struct WcoMapping {
    pub name: String,
    pub target: String,
    constants: Vec<(String, Value)>,
    fields: Vec<XmlField>,
    lists: Vec<XmlList>,
    /// Element paths below `Declaration` (e.g.
    /// `GoodsShipment/GovernmentAgencyGoodsItem/Packaging/SequenceNumeric`)
    /// whose values are not reported as unmapped (the file's `ignore`).
    ignored: HashSet<String>,
}

impl WcoMapping {
    /// The canonical fields (dotted, e.g. `totals.invoice.value`) the
    /// message-level rules read from the element at `path` below
    /// `Declaration` (`InvoiceAmount`, `GoodsShipment/Importer/ID`),
    /// its value or an attribute.
    pub fn fields_from(&self, path: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|f| {
                f.from.steps.len() == path.split('/').count()
                    && f.from
                        .steps
                        .iter()
                        .zip(path.split('/'))
                        .all(|(step, name)| step.name == name)
            })
            .map(|f| f.to.as_str())
            .collect()
    }

    /// The element path below `Declaration` of the message-level list
    /// mapped to `to` (`goods` → `GoodsShipment/GovernmentAgencyGoodsItem`).
    pub fn list_element(&self, to: &str) -> Option<String> {
        self.lists
            .iter()
            .find(|l| l.to == to)
            .map(|l| l.element.join("/"))
    }
}

fn parse_path(text: &str) -> Result<XmlPath, String> {
    let mut steps = Vec::new();
    let mut attribute = None;
    for raw in text.split('/') {
        if let Some(a) = raw.strip_prefix('@') {
            attribute = Some(a.to_owned());
            continue;
        }
        if attribute.is_some() {
            return Err(format!("{text:?}: an attribute ends the path"));
        }
        let (name, filter) = match raw.split_once('[') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("{raw:?}: a filter is [Child=value]"))?;
                let (k, v) = inner
                    .split_once('=')
                    .ok_or_else(|| format!("{raw:?}: a filter is [Child=value]"))?;
                (name, Some((k.trim().to_owned(), v.trim().to_owned())))
            }
            None => (raw, None),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!("{raw:?} is not an element name"));
        }
        steps.push(Step {
            name: name.to_owned(),
            filter,
        });
    }
    Ok(XmlPath { steps, attribute })
}

impl WcoMapping {
    /// Checks a WCO mapping file against the DEC schema's element paths
    /// (from `xsd`, WCO_DEC_2_DMS.xsd) and the canonical model.
    pub fn compile(name: &str, text: &str, xsd: &Path) -> Result<WcoMapping, MappingError> {
        let file = MappingFile::parse(name, text)?;
        let whole = |message: String| MappingError {
            file: name.to_owned(),
            line: 1,
            message,
        };
        if file.format != "wco" || file.message != "DEC" {
            return Err(whole(format!(
                "{}/{} is not a WCO DEC mapping",
                file.format, file.message
            )));
        }
        let xsd_text =
            std::fs::read_to_string(xsd).map_err(|e| whole(format!("{}: {e}", xsd.display())))?;
        let paths = schema_paths(&xsd_text).map_err(whole)?;
        let root = crate::model::json_schema();
        let target = root
            .get("properties")
            .and_then(|p| p.get(&file.target))
            .map(|t| super::resolve(&root, t).clone())
            .ok_or_else(|| whole(format!("target {:?} is not a canonical type", file.target)))?;
        let err = |span: std::ops::Range<usize>, message: String| MappingError {
            file: name.to_owned(),
            line: super::line_of(text, span.start),
            message,
        };
        let field =
            |schema: &Value, base: &[String], rule: &FieldRule| -> Result<XmlField, MappingError> {
                rule.check_options()
                    .and_then(|()| rule.edifact_only())
                    .map_err(|m| err(rule.to.span(), m))?;
                let node = schema_field(&root, schema, rule.to.get_ref())
                    .map_err(|m| err(rule.to.span(), m))?;
                let found = schema_type(node).unwrap_or("object");
                let fits = match (rule.kind, rule.all) {
                    (_, true) => found == "array",
                    (ValueType::Text, _) => found == "string",
                    (ValueType::Decimal, _) => found == "string" || found == "number",
                    (ValueType::Integer, _) => found == "integer",
                    (ValueType::Boolean, _) => found == "boolean",
                    (ValueType::Date, _) => found == "object",
                };
                if !fits {
                    return Err(err(
                        rule.to.span(),
                        format!(
                            "{} is {found} in the canonical model; a {:?} value cannot go there",
                            rule.to.get_ref(),
                            rule.kind
                        ),
                    ));
                }
                let from = parse_path(rule.from.get_ref()).map_err(|m| err(rule.from.span(), m))?;
                // A WCO date is a DateTimeString: its format code is an
                // attribute of the same element.
                let date_format = match (&rule.date_format, rule.kind) {
                    (Some(path), ValueType::Date) => match path.get_ref().strip_prefix('@') {
                        Some(a)
                            if !a.is_empty()
                                && a.bytes().all(|b| b.is_ascii_alphanumeric())
                                && from.attribute.is_none() =>
                        {
                            Some(a.to_owned())
                        }
                        _ => {
                            return Err(err(
                                path.span(),
                                "a WCO date's date_format names an attribute of the element \
                                 holding the date (`@formatCode`)"
                                    .into(),
                            ));
                        }
                    },
                    (None, ValueType::Date) if rule.default_format.is_none() => {
                        return Err(err(
                            rule.from.span(),
                            "a date needs date_format, the attribute holding its 2379 code \
                             (`@formatCode`)"
                                .into(),
                        ));
                    }
                    (Some(path), _) => {
                        return Err(err(
                            path.span(),
                            "date_format is only for type = \"date\"".into(),
                        ));
                    }
                    (None, _) => None,
                };
                let mut walked: Vec<String> = vec!["Declaration".into()];
                walked.extend(base.iter().cloned());
                // A date is the `DateTimeString` of a date-time element, a
                // child its data type (WCO_DS) gives, not the DEC schema.
                let element_steps = match (rule.kind, from.steps.split_last()) {
                    (ValueType::Date, Some((last, rest)))
                        if last.name == DATE_TIME_STRING && last.filter.is_none() =>
                    {
                        rest
                    }
                    (ValueType::Date, _) => {
                        return Err(err(
                            rule.from.span(),
                            format!(
                                "a WCO date is read from the {DATE_TIME_STRING} of a date-time \
                                 element (`IssueDateTime/{DATE_TIME_STRING}`)"
                            ),
                        ));
                    }
                    _ => from.steps.as_slice(),
                };
                for step in element_steps {
                    walked.push(step.name.clone());
                    let here = walked.join("/");
                    if !paths.contains(&here) {
                        return Err(err(
                            rule.from.span(),
                            format!("{here} is not an element of the WCO DEC schema"),
                        ));
                    }
                    if let Some((child, _)) = &step.filter {
                        let filter_path = format!("{here}/{child}");
                        if !paths.contains(&filter_path) {
                            return Err(err(
                                rule.from.span(),
                                format!("{filter_path} is not an element of the WCO DEC schema"),
                            ));
                        }
                    }
                }
                Ok(XmlField {
                    to: rule.to.get_ref().clone(),
                    from,
                    kind: rule.kind,
                    codes: rule.codes.clone(),
                    pass_other: rule.pass_other,
                    skip_codes: rule.skip_codes.clone(),
                    skip_other: rule.skip_other,
                    unit: rule.unit.clone(),
                    all: rule.all,
                    distinct: rule.distinct,
                    date_format,
                    default_format: rule.default_format.clone(),
                    past: rule.past,
                    near: rule.near,
                })
            };
        if let Some(each) = file.each.first() {
            return Err(err(
                each.to.span(),
                "`each` lists are for EDIFACT mappings (occurrences of a composite)".into(),
            ));
        }
        let fields = file
            .field
            .iter()
            .map(|f| field(&target, &[], f))
            .collect::<Result<Vec<_>, _>>()?;
        let mut lists = Vec::new();
        for list in &file.list {
            lists.push(compile_list(
                list,
                &root,
                &target,
                &paths,
                &field,
                &err,
                &[],
            )?);
        }
        let mut constants = Vec::new();
        for c in &file.constant {
            schema_field(&root, &target, c.to.get_ref()).map_err(|m| err(c.to.span(), m))?;
            constants.push((
                c.to.get_ref().clone(),
                serde_json::to_value(&c.value).unwrap_or(Value::Null),
            ));
        }
        // `ignore`: element paths below Declaration whose values carry
        // nothing the model holds (a position the list order keeps).
        let mut ignored = HashSet::new();
        for entry in &file.ignore {
            let here = format!("Declaration/{entry}");
            if !paths.contains(&here) {
                let at = text.find(entry.as_str()).unwrap_or(0);
                return Err(err(
                    at..at,
                    format!("ignore: {here} is not an element of the WCO DEC schema"),
                ));
            }
            ignored.insert(entry.clone());
        }
        Ok(WcoMapping {
            name: name.to_owned(),
            target: file.target,
            constants,
            fields,
            lists,
            ignored,
        })
    }

    /// Maps one WCO declaration (wrapped or bare).
    pub fn apply(&self, document: &[u8]) -> (Value, Vec<Issue>) {
        let (value, issues, _) = self.apply_located(document);
        (value, issues)
    }

    /// [`apply`](Self::apply), plus where each value came from: JSON
    /// pointer of the canonical field → a location whose `path` is the
    /// element path (`/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[2]/…`,
    /// the form `xml::response::pointers_for_path` reads).
    pub fn apply_located(
        &self,
        document: &[u8],
    ) -> (Value, Vec<Issue>, BTreeMap<String, Location>) {
        let mut run = XmlRun {
            ignored: &self.ignored,
            issues: Vec::new(),
            out: Map::new(),
            reported: 0,
            more: 0,
            prefix: String::new(),
            provenance: BTreeMap::new(),
        };
        run.provenance.insert(
            String::new(),
            Location {
                path: Some(render(&[], None)),
                ..Location::default()
            },
        );
        for (to, value) in &self.constants {
            super::edifact::set_value(&mut run.out, to, value.clone());
        }
        let mut reader = NsReader::from_reader(document);
        // (local name, index) from Declaration down.
        let mut stack: Vec<OpenElement> = Vec::new();
        let mut header: Vec<Leaf> = Vec::new();
        let mut item: Option<OpenItem> = None;
        let mut items: Vec<Vec<Value>> = vec![Vec::new(); self.lists.len()];
        let mut text = String::new();
        let mut inside = false;
        while let Ok((ns, event)) = reader.read_resolved_event() {
            let in_dec =
                matches!(ns, ResolveResult::Bound(n) if n.as_ref() == NS_DECLARATION.as_bytes());
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                    if !inside {
                        if in_dec && local == "Declaration" {
                            inside = true;
                            stack.push((local, 1, Vec::new()));
                        }
                        continue;
                    }
                    let index = match stack.last_mut() {
                        Some((_, _, children)) => bump(children, &local),
                        None => 1,
                    };
                    stack.push((local, index, Vec::new()));
                    let path: Vec<(String, u32)> = stack
                        .iter()
                        .skip(1)
                        .map(|(n, i, _)| (n.clone(), *i))
                        .collect();
                    if item.is_none()
                        && let Some(l) = self.lists.iter().position(|l| names(&path) == l.element)
                    {
                        item = Some((l, Vec::new(), path.clone()));
                    }
                    for attribute in e.attributes().flatten() {
                        let key = String::from_utf8_lossy(attribute.key.local_name().as_ref())
                            .into_owned();
                        if attribute.key.as_ref().starts_with(b"xmlns") {
                            continue;
                        }
                        let value = attribute
                            .unescape_value()
                            .map(|v| v.into_owned())
                            .unwrap_or_default();
                        push_leaf(&mut item, &mut header, &path, Some(key), value);
                    }
                    text.clear();
                    if matches!(event, Event::Empty(_)) {
                        self.close(&mut stack, &mut item, &mut items, &mut run);
                    }
                }
                Event::Text(t) if inside => {
                    text.push_str(&t.decode().map(|c| c.into_owned()).unwrap_or_default());
                }
                // Character data written as CDATA is the same text.
                Event::CData(data) if inside => {
                    text.push_str(&String::from_utf8_lossy(&data));
                }
                Event::GeneralRef(r) if inside => {
                    if let Ok(Some(ch)) = r.resolve_char_ref() {
                        text.push(ch);
                    } else {
                        text.push(match &*r {
                            b"lt" => '<',
                            b"gt" => '>',
                            b"amp" => '&',
                            b"apos" => '\'',
                            _ => '"',
                        });
                    }
                }
                Event::End(_) if inside => {
                    let value = text.trim().to_owned();
                    text.clear();
                    if stack
                        .last()
                        .is_some_and(|(_, _, children)| children.is_empty())
                        && !value.is_empty()
                    {
                        let path: Vec<(String, u32)> = stack
                            .iter()
                            .skip(1)
                            .map(|(n, i, _)| (n.clone(), *i))
                            .collect();
                        push_leaf(&mut item, &mut header, &path, None, value);
                    }
                    if stack.len() == 1 {
                        break;
                    }
                    self.close(&mut stack, &mut item, &mut items, &mut run);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        for field in &self.fields {
            run.field(field, &[], &mut header);
        }
        for (list, values) in self.lists.iter().zip(items) {
            if !values.is_empty() {
                super::edifact::set_value(&mut run.out, &list.to, Value::Array(values));
            }
        }
        run.unread(&header);
        if run.more > 0 {
            run.issues.push(Issue::warning(
                Code::MappingUnmapped,
                Location::default(),
                format!("{} further values are not mapped", run.more),
            ));
        }
        super::cap_issues(
            &mut run.issues,
            Location {
                path: Some(render(&[], None)),
                ..Location::default()
            },
        );
        (Value::Object(run.out), run.issues, run.provenance)
    }

    fn close(
        &self,
        stack: &mut Vec<OpenElement>,
        item: &mut Option<OpenItem>,
        items: &mut [Vec<Value>],
        run: &mut XmlRun,
    ) {
        let depth = stack.len();
        stack.pop();
        let ends_item = item
            .as_ref()
            .is_some_and(|(_, _, path)| path.len() + 1 == depth);
        if ends_item && let Some((l, mut leaves, path)) = item.take() {
            let Some(list) = self.lists.get(l) else {
                return;
            };
            let index = items.get(l).map_or(0, Vec::len);
            // The whole item has been read: what no rule took is reported.
            let object = run.item(list, index, &path, &mut leaves, true);
            if let Some(slot) = items.get_mut(l) {
                slot.push(object);
            }
        }
    }
}

/// Compiles a list whose element path is relative to `base` (the enclosing
/// list's element, empty at the top).
fn compile_list(
    list: &ListRule,
    root: &Value,
    target: &Value,
    paths: &HashSet<String>,
    field: &FieldCompiler<'_>,
    err: &dyn Fn(std::ops::Range<usize>, String) -> MappingError,
    base: &[String],
) -> Result<XmlList, MappingError> {
    let node = schema_field(root, target, list.to.get_ref()).map_err(|m| err(list.to.span(), m))?;
    if schema_type(node) != Some("array") {
        return Err(err(
            list.to.span(),
            format!("{} is not a list in the canonical model", list.to.get_ref()),
        ));
    }
    let items = node
        .get("items")
        .map(|i| super::resolve(root, i))
        .unwrap_or(node);
    let element: Vec<String> = list.group.get_ref().split('/').map(str::to_owned).collect();
    let mut absolute: Vec<String> = base.to_vec();
    absolute.extend(element.iter().cloned());
    let full = format!("Declaration/{}", absolute.join("/"));
    if !paths.contains(&full) {
        return Err(err(
            list.group.span(),
            format!("{full} is not an element of the WCO DEC schema"),
        ));
    }
    if !list.constant.is_empty() || list.when.is_some() || !list.each.is_empty() {
        return Err(err(
            list.to.span(),
            "WCO lists take fields and lists only (no constants, when or each)".into(),
        ));
    }
    let fields = list
        .field
        .iter()
        .map(|f| field(items, &absolute, f))
        .collect::<Result<Vec<_>, _>>()?;
    let lists = list
        .list
        .iter()
        .map(|inner| compile_list(inner, root, items, paths, field, err, &absolute))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(XmlList {
        to: list.to.get_ref().clone(),
        element,
        fields,
        lists,
    })
}

/// Compiles one field rule relative to a list's element path.
type FieldCompiler<'a> =
    dyn Fn(&Value, &[String], &FieldRule) -> Result<XmlField, MappingError> + 'a;

/// An element path below Declaration: (local name, index among same-named
/// siblings) per step.
type Indexed = Vec<(String, u32)>;
/// An open element: name, index, same-named children counted so far.
type OpenElement = (String, u32, Indexed);
/// The list item being read: which list, its leaves, its path.
type OpenItem = (usize, Vec<Leaf>, Indexed);

/// One value of the document: its indexed element path below Declaration,
/// the attribute if it is one, and whether a rule read it.
#[derive(Debug, Clone)]
struct Leaf {
    path: Vec<(String, u32)>,
    attribute: Option<String>,
    value: String,
    read: bool,
}

fn bump(children: &mut Vec<(String, u32)>, local: &str) -> u32 {
    if let Some(entry) = children.iter_mut().find(|(n, _)| n == local) {
        entry.1 += 1;
        return entry.1;
    }
    children.push((local.to_owned(), 1));
    1
}

fn names(path: &[(String, u32)]) -> Vec<String> {
    path.iter().map(|(n, _)| n.clone()).collect()
}

fn push_leaf(
    item: &mut Option<OpenItem>,
    header: &mut Vec<Leaf>,
    path: &[(String, u32)],
    attribute: Option<String>,
    value: String,
) {
    let leaf = Leaf {
        path: path.to_vec(),
        attribute,
        value,
        read: false,
    };
    match item {
        Some((_, leaves, _)) => leaves.push(leaf),
        None => header.push(leaf),
    }
}

/// The indices of the values around `at` whose path starts with `prefix`:
/// the run of the element at `prefix` that holds value `at`.
fn within<'l>(
    leaves: &'l [Leaf],
    at: usize,
    prefix: &'l [(String, u32)],
) -> impl Iterator<Item = usize> + 'l {
    let inside = move |j: &usize| leaves.get(*j).is_some_and(|l| l.path.starts_with(prefix));
    let before = (0..at).rev().take_while(inside);
    let after = (at..leaves.len()).take_while(inside);
    before.chain(after)
}

struct XmlRun<'m> {
    /// The mapping's `ignore` paths.
    ignored: &'m HashSet<String>,
    issues: Vec<Issue>,
    out: Map<String, Value>,
    /// JSON pointer of `out` in the canonical object (`` or `/goods/3`).
    prefix: String,
    /// JSON pointer → element path of the value.
    provenance: BTreeMap<String, Location>,
    /// Unmapped values reported so far in the document, and those beyond
    /// the 50 reported.
    reported: usize,
    more: usize,
}

impl XmlRun<'_> {
    /// The lists inside the item at `base`: one object per instance of
    /// each list's element among the item's values, in document order.
    fn lists(&mut self, lists: &[XmlList], base: &[(String, u32)], leaves: &mut [Leaf]) {
        for list in lists {
            let depth = base.len() + list.element.len();
            // The values of one instance are one run of the item's values:
            // an element's content is contiguous in document order. Each
            // instance is read from its own run only (reading every
            // instance from all the values made many instances quadratic).
            let mut instances: Vec<(Indexed, std::ops::Range<usize>)> = Vec::new();
            for (i, leaf) in leaves.iter().enumerate() {
                let Some(key) = leaf.path.get(..depth) else {
                    continue;
                };
                if !(leaf.path.starts_with(base)
                    && key
                        .get(base.len()..)
                        .is_some_and(|rel| rel.iter().map(|(n, _)| n).eq(&list.element)))
                {
                    continue;
                }
                match instances.last_mut() {
                    Some((last, run)) if last.as_slice() == key => run.end = i + 1,
                    _ => instances.push((key.to_vec(), i..i + 1)),
                }
            }
            let objects: Vec<Value> = instances
                .into_iter()
                .enumerate()
                .filter_map(|(index, (key, run))| {
                    let own = leaves.get_mut(run)?;
                    Some(self.item(list, index, &key, own, false))
                })
                .collect();
            if !objects.is_empty() && lookup(&self.out, &list.to).is_none() {
                super::edifact::set_value(&mut self.out, &list.to, Value::Array(objects));
            }
        }
    }

    /// Item `index` of `list`, the element at `path`: the object its
    /// fields and inner lists make of `leaves`, its issues, provenance (the
    /// list is where its first item is) and counts taken into this run;
    /// with `unread`, the item's values no rule took are reported (the
    /// leaves of a list's item are all its own only at the top).
    fn item(
        &mut self,
        list: &XmlList,
        index: usize,
        path: &[(String, u32)],
        leaves: &mut [Leaf],
        unread: bool,
    ) -> Value {
        let list_pointer = super::edifact::pointer(&self.prefix, &list.to);
        let mut object = XmlRun {
            ignored: self.ignored,
            issues: Vec::new(),
            out: Map::new(),
            reported: self.reported,
            more: self.more,
            prefix: format!("{list_pointer}/{index}"),
            provenance: BTreeMap::new(),
        };
        object.provenance.insert(
            object.prefix.clone(),
            Location {
                path: Some(render(path, None)),
                ..Location::default()
            },
        );
        for field in &list.fields {
            object.field(field, path, leaves);
        }
        object.lists(&list.lists, path, leaves);
        if unread {
            object.unread(leaves);
        }
        self.issues.append(&mut object.issues);
        if let Some(first) = object.provenance.get(&object.prefix).cloned() {
            self.provenance.entry(list_pointer).or_insert(first);
        }
        // Entry by entry: `BTreeMap::append` rebuilds the whole map, which
        // made a document of many list items quadratic.
        self.provenance
            .extend(std::mem::take(&mut object.provenance));
        self.reported = object.reported;
        self.more = object.more;
        Value::Object(object.out)
    }

    fn field(&mut self, field: &XmlField, base: &[(String, u32)], leaves: &mut [Leaf]) {
        let want: Vec<&str> = field.from.steps.iter().map(|s| s.name.as_str()).collect();
        let mut values = Vec::new();
        let mut read = Vec::new();
        for (i, leaf) in leaves.iter().enumerate() {
            let rel = match leaf.path.get(base.len()..) {
                Some(rel) if leaf.path.starts_with(base) => rel,
                _ => continue,
            };
            if rel.len() != want.len()
                || rel.iter().zip(&want).any(|((n, _), w)| n != w)
                || leaf.attribute != field.from.attribute
            {
                continue;
            }
            // Filters: a sibling leaf under the filtered step with the value.
            let mut ok = true;
            for (k, step) in field.from.steps.iter().enumerate() {
                let Some((child, expected)) = &step.filter else {
                    continue;
                };
                let prefix = leaf.path.get(..base.len() + k + 1).unwrap_or_default();
                // The filtered element's values are one run around this
                // one (an element's content is contiguous): searched there
                // only, not through the whole document.
                let found = within(leaves, i, prefix).find(|&j| {
                    leaves.get(j).is_some_and(|other| {
                        other.attribute.is_none()
                            && other.path.len() == prefix.len() + 1
                            && other.path.last().is_some_and(|(n, _)| n == child)
                            && other.value == *expected
                    })
                });
                match found {
                    Some(j) => read.push(j),
                    None => ok = false,
                }
            }
            // A unit the rule wants: the element's `unitCode`, when given,
            // must be it (a mass in tonnes is not one in kilograms).
            if ok && let Some(unit) = &field.unit {
                let given = within(leaves, i, &leaf.path).find(|&j| {
                    leaves.get(j).is_some_and(|other| {
                        other.path == leaf.path && other.attribute.as_deref() == Some("unitCode")
                    })
                });
                if let Some(j) = given {
                    read.push(j);
                    let code = leaves.get(j).map(|l| l.value.as_str()).unwrap_or_default();
                    if code != unit {
                        self.issues.push(Issue::error(
                            Code::MappingValueInvalid,
                            Location {
                                path: Some(render(&leaf.path, Some("unitCode"))),
                                ..Location::default()
                            },
                            format!(
                                "{:?} for {} is in {code:?}; the canonical field is in {unit:?}, \
                                 and the value is not converted",
                                leaf.value, field.to
                            ),
                        ));
                        read.push(i);
                        ok = false;
                    }
                }
            }
            // A date's format code: the attribute the rule names, on the
            // same element.
            let mut format = field.default_format.clone();
            if ok && let Some(attribute) = &field.date_format {
                let given = within(leaves, i, &leaf.path).find(|&j| {
                    leaves.get(j).is_some_and(|other| {
                        other.path == leaf.path
                            && other.attribute.as_deref() == Some(attribute.as_str())
                    })
                });
                if let Some(j) = given {
                    read.push(j);
                    format = leaves.get(j).map(|l| l.value.clone());
                }
            }
            if ok {
                values.push((i, leaf.value.clone(), leaf.path.clone(), format));
                if !field.all {
                    break;
                }
            }
        }
        let mut converted = Vec::new();
        let target = super::edifact::pointer(&self.prefix, &field.to);
        let unset = lookup(&self.out, &field.to).is_none();
        for (i, raw, path, format) in values {
            read.push(i);
            if let Some(v) = self.convert(field, raw, &path, format.as_deref()) {
                // Read all the same; only the first of equal values is
                // kept.
                if field.distinct && converted.contains(&v) {
                    continue;
                }
                if unset {
                    let at = if field.all {
                        format!("{target}/{}", converted.len())
                    } else {
                        target.clone()
                    };
                    self.trace(
                        &at,
                        render(&path, field.from.attribute.as_deref()),
                        render(&path, None),
                    );
                }
                converted.push(v);
            }
        }
        for j in read {
            if let Some(leaf) = leaves.get_mut(j) {
                leaf.read = true;
            }
        }
        if field.all {
            if !converted.is_empty() {
                super::edifact::set_value(&mut self.out, &field.to, Value::Array(converted));
            }
        } else if let Some(v) = converted.into_iter().next() {
            super::edifact::set_value(&mut self.out, &field.to, v);
        }
    }

    /// Records the path of the value at `pointer` (an element or an
    /// attribute), and `element` (the element holding it) for its enclosing
    /// objects below the run's prefix that have none yet. The first value
    /// set wins.
    fn trace(&mut self, pointer: &str, path: String, element: String) {
        if self.provenance.contains_key(pointer) {
            return;
        }
        let mut parent = pointer;
        while let Some(cut) = parent.rfind('/') {
            parent = parent.get(..cut).unwrap_or("");
            if parent.len() <= self.prefix.len() {
                break;
            }
            self.provenance
                .entry(parent.to_owned())
                .or_insert_with(|| Location {
                    path: Some(element.clone()),
                    ..Location::default()
                });
        }
        self.provenance.insert(
            pointer.to_owned(),
            Location {
                path: Some(path),
                ..Location::default()
            },
        );
    }

    fn convert(
        &mut self,
        field: &XmlField,
        raw: String,
        path: &[(String, u32)],
        format: Option<&str>,
    ) -> Option<Value> {
        let location = Location {
            path: Some(render(path, None)),
            ..Location::default()
        };
        let raw = match &field.codes {
            Some(codes) => match codes.get(&raw) {
                Some(mapped) => mapped.clone(),
                None if field.pass_other => raw,
                None if field.skip_other || field.skip_codes.contains(&raw) => return None,
                None => {
                    self.issues.push(Issue::error(
                        Code::MappingCodeUnknown,
                        location,
                        format!("code {raw:?} for {} has no translation", field.to),
                    ));
                    return None;
                }
            },
            None => raw,
        };
        let bad = |what: &str| {
            Issue::error(
                Code::MappingValueInvalid,
                location.clone(),
                format!("{raw:?} for {} is not {what}", field.to),
            )
        };
        match field.kind {
            ValueType::Text => Some(Value::String(raw)),
            ValueType::Decimal => match raw.parse::<Decimal>() {
                Ok(d) => Some(Value::String(d.to_string())),
                Err(_) => {
                    self.issues.push(bad("a decimal number"));
                    None
                }
            },
            // The schema's counts are xs:decimal with no fraction digits, so
            // `1.0` and `+1` are valid ways to write 1.
            ValueType::Integer => match whole_number(&raw) {
                Some(n) => Some(Value::from(n)),
                None => {
                    self.issues.push(bad("a whole number"));
                    None
                }
            },
            ValueType::Boolean => match raw.as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => {
                    self.issues.push(bad("true or false"));
                    None
                }
            },
            ValueType::Date => {
                let Some(format) = format else {
                    self.issues.push(bad(
                        "a date with its 2379 format code (the format code is missing)",
                    ));
                    return None;
                };
                match super::read_date(&raw, format, field.past, field.near) {
                    Ok(m) => serde_json::to_value(m).ok(),
                    Err(e) => {
                        self.issues.push(Issue::error(
                            Code::MappingValueInvalid,
                            location,
                            format!("{}: {e}", field.to),
                        ));
                        None
                    }
                }
            }
        }
    }

    /// MAP001 for every value no rule read: at most 50 per document, the
    /// rest counted.
    fn unread(&mut self, leaves: &[Leaf]) {
        let ignored = |leaf: &Leaf| {
            leaf.attribute.is_none()
                && !self.ignored.is_empty()
                && self.ignored.contains(&names(&leaf.path).join("/"))
        };
        for leaf in leaves.iter().filter(|l| !l.read && !ignored(l)) {
            if self.reported >= 50 {
                self.more += 1;
                continue;
            }
            self.reported += 1;
            self.issues.push(Issue::warning(
                Code::MappingUnmapped,
                Location {
                    path: Some(render(&leaf.path, leaf.attribute.as_deref())),
                    ..Location::default()
                },
                format!(
                    "value {:?} is not mapped to the canonical model",
                    leaf.value
                ),
            ));
        }
    }
}

/// The value of a dotted field, if set.
fn lookup<'a>(out: &'a Map<String, Value>, dotted: &str) -> Option<&'a Value> {
    let mut parts = dotted.split('.');
    let mut node = out.get(parts.next()?)?;
    for part in parts {
        node = node.get(part)?;
    }
    Some(node)
}

/// `/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[2]/…`, `[n]` from 2.
fn render(path: &[(String, u32)], attribute: Option<&str>) -> String {
    let mut out = String::from("/Declaration");
    for (name, index) in path {
        out.push('/');
        out.push_str(name);
        if *index > 1 {
            out.push_str(&format!("[{index}]"));
        }
    }
    if let Some(a) = attribute {
        out.push_str("/@");
        out.push_str(a);
    }
    out
}

/// A whole number written as an xs:decimal (`7`, `+7`, `007`, `7.0`, `7.`),
/// not negative and within `u64`.
fn whole_number(raw: &str) -> Option<u64> {
    if let Ok(n) = raw.parse::<u64>() {
        return Some(n);
    }
    let d = raw
        .strip_prefix('+')
        .unwrap_or(raw)
        .parse::<Decimal>()
        .ok()?;
    if (d.is_sign_negative() && !d.is_zero()) || !d.fract().is_zero() {
        return None;
    }
    rust_decimal::prelude::ToPrimitive::to_u64(&d.trunc())
}
