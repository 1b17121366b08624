//! Canonical declaration → WCO DEC (DEC-DMS:2): the inbound mapping
//! (`mappings/wco/DEC.toml`) read backwards. Each rule's `from` path says
//! where its canonical field is written (filters become the child they test,
//! `@name` an attribute, `codes` are inverted, `all` and `[[list]]` rules
//! repeat the deepest repeatable step); the vendored `WCO_DEC_2_DMS.xsd`
//! gives the element order (its `xs:sequence`s) and how often an element may
//! occur, and `WCO_DS/WCO_DEC_DS_2_DMS.xsd` the facets each value is held
//! against before it is written. A field mapped inbound is therefore written
//! outbound without new code.
//!
//! Nothing is dropped silently: a canonical value no rule writes is reported
//! (MAP001, warning), a value the schema would refuse, a second value for an
//! element that cannot repeat or that already holds another value is refused
//! and reported (MAP006), and so is a value no code of the mapping
//! translates to (MAP003). Nothing is invented either: an element the
//! schema requires is written only from the model — the one exception is the
//! `SequenceNumeric` a repeatable class requires, which is its position among
//! its siblings (the order the model keeps).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use rust_decimal::Decimal;
use serde_json::Value;

use super::{FieldRule, MappingError, MappingFile};
use crate::diag::{Code, Issue, Location};
use crate::model::Declaration;
use crate::xml::reader::{NS_DECLARATION, NS_METADATA};

/// Namespace of XML Schema itself.
const NS_XSD: &str = "http://www.w3.org/2001/XMLSchema";
/// Namespace of the DEC data types (`ds:` in WCO_DEC_2_DMS.xsd).
const NS_DECLARATION_DS: &str = "urn:wco:datamodel:WCO:Declaration_DS:DMS:2";
/// The WCO Data Model version the vendored schemas implement.
const DATA_MODEL_VERSION: &str = "3.6";
/// Unwritten values listed per declaration; the rest are counted.
const MAX_LISTED: usize = 50;

/// The WCO DEC writer for `mappings/wco/DEC.toml` and the vendored schemas;
/// compiled once per process.
pub fn load() -> Result<Arc<WcoOutMapping>, MappingError> {
    static LOADED: OnceLock<Result<Arc<WcoOutMapping>, MappingError>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let missing = |file: &str, message: &str| MappingError {
                file: file.to_owned(),
                line: 0,
                message: message.to_owned(),
            };
            let path = super::mapping_folders()
                .into_iter()
                .map(|dir| dir.join("wco/DEC.toml"))
                .find(|p| p.is_file())
                .ok_or_else(|| missing("mappings/wco/DEC.toml", "no WCO DEC mapping"))?;
            let schemas = crate::xml::find_schemas(None)
                .ok_or_else(|| missing("schemas/wco", "the WCO schemas were not found"))?;
            let name = path.display().to_string();
            let text =
                std::fs::read_to_string(&path).map_err(|e| missing(&name, &e.to_string()))?;
            WcoOutMapping::compile(&name, &text, &schemas).map(Arc::new)
        })
        .clone()
}

/// Writes one declaration as a MetaData-wrapped WCO DEC with the shipped
/// mapping ([`load`]). The error is fatal (no mapping or schema); problems
/// with single fields are the document's issues.
pub fn write_declaration(declaration: &Declaration) -> Result<DecDocument, MappingError> {
    let mut doc = load()?.write(declaration);
    check_function(declaration, &mut doc)?;
    Ok(doc)
}

/// Reads the written document's function back with the shipped WCO DEC
/// mapping (mappings/wco/DEC.toml): it must be the declaration's. Two
/// elements say it (FunctionCode, and TypeCode INV for HMRC's cancellation
/// request), and a TypeCode written for another field can change it: an
/// amendment whose own declaration type is INV would be read as a
/// cancellation. Such a document gets an error (MAP006) at `/function`.
fn check_function(declaration: &Declaration, doc: &mut DecDocument) -> Result<(), MappingError> {
    let reader = super::wco::load()?;
    let (value, _) = reader.apply(doc.xml.as_bytes());
    let read = value.get("function").and_then(Value::as_str);
    let wanted = serde_json::to_value(declaration.function).unwrap_or(Value::Null);
    let wanted = wanted.as_str();
    if read != wanted {
        doc.issues.push(Issue::error(
            Code::MappingUnwritable,
            Location {
                field: Some("/function".into()),
                ..Location::default()
            },
            format!(
                "the {} would be read back as {}: its FunctionCode and TypeCode say another \
                 function (TypeCode INV with FunctionCode 13 is HMRC's cancellation request)",
                wanted.unwrap_or("declaration"),
                read.unwrap_or("no function"),
            ),
        ));
    }
    Ok(())
}

/// A WCO declaration has no packaging level: every `Packaging` of a goods
/// item counts towards its packages. So only the packages of each item's
/// outermost level are written (those its total counts, see
/// `rules::outermost`); the inner ones are left out of `canonical` and
/// reported (MAP001), rather than written as more outer packages (10
/// cartons holding 200 boxes would read as 210 packages, and the
/// declaration's own total would no longer agree).
fn outer_packages_only(declaration: &Declaration, canonical: &mut Value, issues: &mut Vec<Issue>) {
    for (i, item) in declaration.goods.iter().enumerate() {
        let kept = crate::rules::outermost(&item.packages);
        let Some(list) = canonical
            .pointer_mut(&format!("/goods/{i}/packages"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        let mut left_out = Vec::new();
        for (j, p) in item.packages.iter().enumerate().rev() {
            if kept.iter().any(|k| std::ptr::eq(*k, p)) {
                continue;
            }
            if j < list.len() {
                list.remove(j);
            }
            left_out.push(Issue::warning(
                Code::MappingUnmapped,
                Location {
                    field: Some(format!("/goods/{i}/packages/{j}")),
                    ..Location::default()
                },
                format!(
                    "inner packages ({} {}, level {}) are not written: a WCO declaration has \
                     no packaging level, and would count them as the item's packages",
                    p.count.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                    p.kind.as_deref().unwrap_or("-"),
                    p.level.as_deref().unwrap_or("-")
                ),
            ));
        }
        // Removed from the last; reported in the order of the packages.
        issues.extend(left_out.into_iter().rev());
    }
}

/// A written WCO DEC document and what could not be written into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecDocument {
    /// The document: `<?xml …?>`, `md:MetaData` (data model 3.6, type DEC)
    /// around one `Declaration`, indented, UTF-8.
    pub xml: String,
    /// MAP006/MAP003 errors for values refused, MAP001 warnings for values
    /// no rule writes; each located by the canonical field (`field`, a JSON
    /// pointer) and, where it has one, the element path it was meant for.
    pub issues: Vec<Issue>,
}

/// A WCO mapping file compiled for writing: its rules resolved against the
/// element tree and data types of the DEC schema.
#[derive(Debug, Clone)]
pub struct WcoOutMapping {
    /// The mapping file's name, as given.
    pub name: String,
    fields: Vec<OutField>,
    lists: Vec<OutList>,
    constants: Vec<(String, Value)>,
    root: ElementDef,
    types: BTreeMap<String, ValueDef>,
}

/// One element of the DEC schema: where it may occur and how often.
#[derive(Debug, Clone)]
struct ElementDef {
    name: String,
    min: u32,
    /// `None`: unbounded.
    max: Option<u32>,
    /// The data type (`DeclarationFunctionCodeType`), without its prefix.
    type_name: Option<String>,
    /// In `xs:sequence` order.
    children: Vec<ElementDef>,
}

impl ElementDef {
    fn child(&self, name: &str) -> Option<(usize, &ElementDef)> {
        self.children
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == name)
    }

    fn repeats(&self) -> bool {
        self.max != Some(1)
    }

    fn allows(&self, count: usize) -> bool {
        self.max.is_none_or(|max| count <= max as usize)
    }
}

/// A DEC data type: its unqualified base type and facets.
#[derive(Debug, Clone, Default)]
struct ValueDef {
    /// `CodeType`, `IDType`, `TextType`, `AmountType`, … (UN/CEFACT
    /// unqualified data types).
    base: String,
    /// False when the type has element content (date/time types).
    simple: bool,
    min_len: Option<usize>,
    max_len: Option<usize>,
    len: Option<usize>,
    patterns: Vec<String>,
    enumeration: Vec<String>,
    total_digits: Option<u32>,
    fraction_digits: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    name: String,
    filter: Option<(String, String)>,
}

#[derive(Debug, Clone)]
struct OutField {
    /// Dotted canonical field, relative to the object (declaration or item).
    to: String,
    steps: Vec<Step>,
    attribute: Option<String>,
    codes: Option<BTreeMap<String, String>>,
    pass_other: bool,
    /// The rule reads only the codes it lists: a value none translates to
    /// is another rule's to write.
    skip_other: bool,
    all: bool,
    /// Other fields, each with the codes it writes to the element before
    /// which this one is not written (reported as MAP001).
    gives_way_to: BTreeMap<String, Vec<String>>,
    /// A text longer than the schema allows is cut to fit, with a warning
    /// (MAP001), not refused (MAP006).
    cut_to_fit: bool,
    /// A date: written as the `DateTimeString` child of the element
    /// `steps` name, its format code in this attribute.
    date_format: Option<String>,
}

#[derive(Debug, Clone)]
struct OutList {
    to: String,
    /// The repeating element, relative to the enclosing list's item (or to
    /// Declaration).
    group: Vec<Step>,
    fields: Vec<OutField>,
    /// Lists inside each item (a goods item's documents).
    lists: Vec<OutList>,
}

/// An element being written.
#[derive(Debug, Clone)]
struct Node {
    name: String,
    /// Position of its definition in the parent's sequence.
    order: usize,
    text: Option<String>,
    attributes: Vec<(String, String)>,
    children: Vec<Node>,
    /// Its namespace when it is not the DEC namespace (a `DateTimeString`
    /// is in the data types' namespace).
    namespace: Option<&'static str>,
    /// Which field wrote the text (`None`) or an attribute: a field gives
    /// way only to the value the field it names wrote.
    writers: Vec<(Option<String>, String)>,
}

impl Node {
    fn new(name: &str, order: usize) -> Node {
        Node {
            name: name.to_owned(),
            order,
            text: None,
            attributes: Vec::new(),
            children: Vec::new(),
            namespace: None,
            writers: Vec::new(),
        }
    }

    /// True when this node is an instance of `step`: same name, and the
    /// filter child (if any) holds the filter value.
    fn is(&self, step: &Step) -> bool {
        self.name == step.name
            && step.filter.as_ref().is_none_or(|(child, value)| {
                self.children
                    .iter()
                    .any(|c| &c.name == child && c.text.as_deref() == Some(value.as_str()))
            })
    }

    fn slot(&self, attribute: Option<&str>) -> Option<&str> {
        match attribute {
            Some(a) => self
                .attributes
                .iter()
                .find(|(k, _)| k == a)
                .map(|(_, v)| v.as_str()),
            None => self.text.as_deref(),
        }
    }

    /// The field that wrote the slot, when a field rule did.
    fn writer(&self, attribute: Option<&str>) -> Option<&str> {
        self.writers
            .iter()
            .find(|(a, _)| a.as_deref() == attribute)
            .map(|(_, field)| field.as_str())
    }

    fn set(&mut self, attribute: Option<&str>, value: String) {
        match attribute {
            Some(a) => self.attributes.push((a.to_owned(), value)),
            None => self.text = Some(value),
        }
    }
}

/// Where a value goes and where it came from, for issues.
#[derive(Debug, Clone)]
struct Place {
    /// JSON pointer of the canonical value.
    pointer: String,
    /// Element path it is written to (`/Declaration/…[2]/…/@currencyID`).
    path: String,
}

impl Place {
    fn location(&self) -> Location {
        Location {
            path: Some(self.path.clone()),
            field: Some(self.pointer.clone()),
            ..Location::default()
        }
    }
}

/// A value whose code several codes translate to: settled after the other
/// rules of the same object have written theirs.
#[derive(Debug)]
struct Pending<'m> {
    field: &'m OutField,
    candidates: Vec<String>,
    value: String,
    place: Place,
}

fn parse_path(text: &str) -> Result<(Vec<Step>, Option<String>), String> {
    let mut steps = Vec::new();
    let mut attribute = None;
    for raw in text.split('/') {
        if attribute.is_some() {
            return Err(format!("{text:?}: an attribute ends the path"));
        }
        if let Some(a) = raw.strip_prefix('@') {
            attribute = Some(a.to_owned());
            continue;
        }
        let (name, filter) = match raw.split_once('[') {
            Some((name, rest)) => {
                let (k, v) = rest
                    .strip_suffix(']')
                    .and_then(|inner| inner.split_once('='))
                    .ok_or_else(|| format!("{raw:?}: a filter is [Child=value]"))?;
                (name, Some((k.trim().to_owned(), v.trim().to_owned())))
            }
            None => (raw, None),
        };
        if name.is_empty() {
            return Err(format!("{text:?} has an empty step"));
        }
        steps.push(Step {
            name: name.to_owned(),
            filter,
        });
    }
    Ok((steps, attribute))
}

/// The definitions along `steps` from `base`, or the first step that is not
/// an element there.
fn resolve<'d>(base: &'d ElementDef, steps: &[Step]) -> Result<Vec<&'d ElementDef>, String> {
    let mut out = Vec::new();
    let mut def = base;
    for step in steps {
        def = def
            .child(&step.name)
            .map(|(_, d)| d)
            .ok_or_else(|| format!("{} has no element {}", def.name, step.name))?;
        out.push(def);
    }
    Ok(out)
}

impl WcoOutMapping {
    /// Compiles a WCO mapping file for writing. `schemas` is the WCO schema
    /// folder (`schemas/wco`, as [`crate::xml::find_schemas`] finds it). The
    /// file is first compiled as the inbound mapping (same checks, same
    /// errors); its target must be `declaration`.
    pub fn compile(name: &str, text: &str, schemas: &Path) -> Result<WcoOutMapping, MappingError> {
        let xsd = schemas.join("declaration/WCO_DEC_2_DMS.xsd");
        super::wco::WcoMapping::compile(name, text, &xsd)?;
        let file = MappingFile::parse(name, text)?;
        let whole = |message: String| MappingError {
            file: name.to_owned(),
            line: 1,
            message,
        };
        if file.target != "declaration" {
            return Err(whole(format!(
                "target {:?}: only declarations are written as WCO DEC",
                file.target
            )));
        }
        let xsd_text =
            std::fs::read_to_string(&xsd).map_err(|e| whole(format!("{}: {e}", xsd.display())))?;
        let root =
            read_elements(&xsd_text).map_err(|e| whole(format!("{}: {e}", xsd.display())))?;
        let ds = imported(&xsd_text, NS_DECLARATION_DS)
            .map(|location| xsd.parent().unwrap_or(schemas).join(location))
            .ok_or_else(|| whole(format!("{} imports no data types", xsd.display())))?;
        let ds_text =
            std::fs::read_to_string(&ds).map_err(|e| whole(format!("{}: {e}", ds.display())))?;
        let types = read_types(&ds_text).map_err(|e| whole(format!("{}: {e}", ds.display())))?;
        let mut mapping = WcoOutMapping {
            name: name.to_owned(),
            fields: Vec::new(),
            lists: Vec::new(),
            constants: Vec::new(),
            root,
            types,
        };
        let err = |rule: &FieldRule, message: String| MappingError {
            file: name.to_owned(),
            line: super::line_of(text, rule.from.span().start),
            message,
        };
        let field = |mapping: &WcoOutMapping,
                     base: &ElementDef,
                     rule: &FieldRule|
         -> Result<OutField, MappingError> {
            rule.edifact_only().map_err(|m| err(rule, m))?;
            let (mut steps, attribute) =
                parse_path(rule.from.get_ref()).map_err(|m| err(rule, m))?;
            // A date (checked inbound: `…/DateTimeString`, `@formatCode`)
            // is written into the date-time element the steps before name.
            let date_format = match (rule.kind, &rule.date_format) {
                (super::ValueType::Date, Some(format)) => {
                    steps.pop();
                    Some(format.get_ref().trim_start_matches('@').to_owned())
                }
                _ => None,
            };
            let defs = resolve(base, &steps).map_err(|m| err(rule, m))?;
            // A filter value is written as the child it tests: it must be one
            // the schema takes, or nothing written would ever be read back.
            for (step, def) in steps.iter().zip(&defs) {
                if let Some((child, value)) = &step.filter {
                    let checked = def
                        .child(child)
                        .ok_or_else(|| format!("{} has no element {child}", def.name))
                        .and_then(|(_, c)| mapping.check(c, None, value));
                    checked.map_err(|m| err(rule, format!("filter {child}={value}: {m}")))?;
                }
            }
            Ok(OutField {
                to: rule.to.get_ref().clone(),
                steps,
                attribute,
                codes: rule.codes.clone(),
                pass_other: rule.pass_other,
                skip_other: rule.skip_other,
                all: rule.all,
                gives_way_to: rule.gives_way_to.clone(),
                cut_to_fit: rule.cut_to_fit,
                date_format,
            })
        };
        if let Some(each) = file.each.first() {
            return Err(MappingError {
                file: name.to_owned(),
                line: super::line_of(text, each.to.span().start),
                message: "`each` lists are for EDIFACT mappings (occurrences of a composite)"
                    .into(),
            });
        }
        let root = mapping.root.clone();
        // A `read_only` rule is not written: the next for its field is.
        for rule in file.field.iter().filter(|r| !r.read_only) {
            let compiled = field(&mapping, &root, rule)?;
            gives_way_checked(&mapping.fields, &compiled).map_err(|m| err(rule, m))?;
            mapping.fields.push(compiled);
        }
        // A list and the lists inside its items, each relative to the
        // element of the enclosing item.
        // Errors name the line of the value at fault (`at`: a byte offset
        // in the file).
        fn compile_list(
            list: &super::ListRule,
            base: &ElementDef,
            field: &dyn Fn(&ElementDef, &FieldRule) -> Result<OutField, MappingError>,
            at: &dyn Fn(usize, String) -> MappingError,
        ) -> Result<OutList, MappingError> {
            let group_at = |m: String| at(list.group.span().start, m);
            let (group, _) = parse_path(list.group.get_ref()).map_err(group_at)?;
            let defs = resolve(base, &group).map_err(group_at)?;
            let Some(item) = defs.last() else {
                return Err(group_at(format!("list {} has no group", list.to.get_ref())));
            };
            let item = (*item).clone();
            let mut fields = Vec::new();
            for rule in list.field.iter().filter(|r| !r.read_only) {
                let compiled = field(&item, rule)?;
                if let Err(m) = gives_way_checked(&fields, &compiled) {
                    return Err(at(
                        rule.from.span().start,
                        format!("list {}: {m}", list.to.get_ref()),
                    ));
                }
                fields.push(compiled);
            }
            let lists = list
                .list
                .iter()
                .map(|inner| compile_list(inner, &item, field, at))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(OutList {
                to: list.to.get_ref().clone(),
                group,
                fields,
                lists,
            })
        }
        let field_of = |def: &ElementDef, rule: &FieldRule| field(&mapping, def, rule);
        let at = |offset: usize, message: String| MappingError {
            file: name.to_owned(),
            line: super::line_of(text, offset),
            message,
        };
        let mut lists = Vec::new();
        for list in &file.list {
            lists.push(compile_list(list, &root, &field_of, &at)?);
        }
        mapping.lists = lists;
        for c in &file.constant {
            mapping.constants.push((
                c.to.get_ref().clone(),
                serde_json::to_value(&c.value).unwrap_or(Value::Null),
            ));
        }
        Ok(mapping)
    }

    /// Writes one declaration. Values that cannot be written are left out
    /// and reported; the document is whatever could be written (validate it
    /// before sending it on: a required element the model has no value for
    /// is missing, not invented).
    pub fn write(&self, declaration: &Declaration) -> DecDocument {
        let mut issues = Vec::new();
        let mut canonical = match serde_json::to_value(declaration) {
            Ok(v) => v,
            Err(e) => {
                issues.push(Issue::error(
                    Code::MappingIncomplete,
                    Location::default(),
                    format!("the declaration cannot be read as canonical JSON: {e}"),
                ));
                Value::Null
            }
        };
        outer_packages_only(declaration, &mut canonical, &mut issues);
        let mut declaration_node = Node::new("Declaration", 0);
        self.apply(
            &self.fields,
            &self.root,
            &mut declaration_node,
            &canonical,
            &Place {
                pointer: String::new(),
                path: "/Declaration".into(),
            },
            &mut issues,
        );
        let top = Place {
            pointer: String::new(),
            path: "/Declaration".into(),
        };
        for list in &self.lists {
            self.apply_list(
                list,
                &mut declaration_node,
                &self.root,
                &canonical,
                &top,
                &mut issues,
            );
        }
        prune_empty(&mut declaration_node);
        fill_sequences(&mut declaration_node, &self.root);
        self.unwritten(&canonical, &mut issues);
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        xml.push_str(&format!(
            "<md:MetaData xmlns:md=\"{NS_METADATA}\" xmlns=\"{NS_DECLARATION}\">\n"
        ));
        xml.push_str(&format!(
            "  <md:WCODataModelVersionCode>{DATA_MODEL_VERSION}</md:WCODataModelVersionCode>\n"
        ));
        xml.push_str("  <md:WCOTypeName>DEC</md:WCOTypeName>\n");
        render(&declaration_node, 1, &mut xml);
        xml.push_str("</md:MetaData>\n");
        DecDocument { xml, issues }
    }

    /// Every item of a `[[list]]` of the canonical `object` (written at
    /// `base`, an element of definition `base_def`, at `at`) as a new
    /// instance of its group element, with the lists inside its items.
    fn apply_list(
        &self,
        list: &OutList,
        base: &mut Node,
        base_def: &ElementDef,
        object: &Value,
        at: &Place,
        issues: &mut Vec<Issue>,
    ) {
        let Some(Value::Array(items)) = lookup(object, &list.to) else {
            return;
        };
        let Ok(defs) = resolve(base_def, &list.group) else {
            return;
        };
        let Some(item_def) = defs.last() else {
            return;
        };
        let last = list.group.len().saturating_sub(1);
        let group_path = list
            .group
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join("/");
        let list_pointer = format!("{}/{}", at.pointer, list.to.replace('.', "/"));
        for (i, item) in items.iter().enumerate() {
            let place = Place {
                pointer: format!("{list_pointer}/{i}"),
                path: format!("{}/{group_path}{}", at.path, index_suffix(i)),
            };
            if !item_def.allows(i + 1) {
                issues.push(Issue::error(
                    Code::MappingUnwritable,
                    place.location(),
                    format!(
                        "{} items in {}, the schema allows {} {}: items from {} on are not written",
                        items.len(),
                        list.to,
                        item_def.max.unwrap_or(0),
                        item_def.name,
                        i + 1
                    ),
                ));
                break;
            }
            let Some(node) = walk(base, base_def, &list.group, Some((last, i)), true) else {
                continue;
            };
            self.apply(&list.fields, item_def, node, item, &place, issues);
            for inner in &list.lists {
                self.apply_list(inner, node, item_def, item, &place, issues);
            }
        }
    }

    /// Writes `fields` of the canonical `object` below `base` (an element
    /// of definition `def`); code translations that several codes share
    /// are settled after the others.
    fn apply(
        &self,
        fields: &[OutField],
        def: &ElementDef,
        base: &mut Node,
        object: &Value,
        at: &Place,
        issues: &mut Vec<Issue>,
    ) {
        let mut pending = Vec::new();
        // Several rules may write one field (HMRC's cancellation: TypeCode
        // INV and FunctionCode 13): a value one rule has no code for is an
        // error only when no rule for that field has one.
        let mut untranslated: Vec<(&str, Issue)> = Vec::new();
        let mut translated: std::collections::HashSet<&str> = std::collections::HashSet::new();
        // Rules that read one field in order of preference (the tariff code
        // as TSP, else HS): the value is written by the first only.
        let mut written: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for field in fields {
            let plain = field.codes.is_none() && !field.all;
            if plain && !written.insert(field.to.as_str()) {
                continue;
            }
            let Some(value) = lookup(object, &field.to) else {
                continue;
            };
            let values: Vec<&Value> = match (field.all, value) {
                (true, Value::Array(all)) => all.iter().collect(),
                (_, Value::Null) => continue,
                _ => vec![value],
            };
            let defs = match resolve(def, &field.steps) {
                Ok(defs) => defs,
                Err(_) => continue,
            };
            // The step that repeats for `all` values: the deepest repeatable one.
            let repeat = if field.all {
                defs.iter().rposition(|d| d.repeats())
            } else {
                None
            };
            for (i, value) in values.iter().enumerate() {
                let place = self.place(field, at, i, repeat);
                if field.date_format.is_some() {
                    let nth = repeat.map(|r| (r, i));
                    write_date(base, def, field, value, nth, &place, issues);
                    continue;
                }
                let Some(raw) = scalar(value) else {
                    issues.push(Issue::error(
                        Code::MappingUnwritable,
                        place.location(),
                        format!("{} is not a single value", field.to),
                    ));
                    continue;
                };
                let allowed = match repeat.and_then(|r| defs.get(r)) {
                    Some(d) => d.allows(i + 1),
                    None => i == 0,
                };
                if !allowed {
                    issues.push(Issue::error(
                        Code::MappingUnwritable,
                        place.location(),
                        format!(
                            "{} has {} values; {} can hold only {}: {raw:?} is not written",
                            field.to,
                            values.len(),
                            place.path,
                            i
                        ),
                    ));
                    continue;
                }
                let Some(leaf) = defs.last() else { continue };
                let candidates = match self.candidates(field, leaf, &raw, &place, issues) {
                    Ok(c) => c,
                    Err(issue) if issue.code == Code::MappingCodeUnknown => {
                        if !field.skip_other {
                            untranslated.push((field.to.as_str(), *issue));
                        }
                        continue;
                    }
                    Err(issue) => {
                        issues.push(*issue);
                        continue;
                    }
                };
                translated.insert(field.to.as_str());
                if let [only] = candidates.as_slice() {
                    let nth = repeat.map(|r| (r, i));
                    if let Some(node) = walk(base, def, &field.steps, nth, true) {
                        settle(
                            node,
                            field,
                            only.clone(),
                            std::slice::from_ref(only),
                            &raw,
                            &place,
                            issues,
                        );
                    }
                } else {
                    pending.push(Pending {
                        field,
                        candidates,
                        value: raw,
                        place,
                    });
                }
            }
        }
        issues.extend(
            untranslated
                .into_iter()
                .filter(|(to, _)| !translated.contains(to))
                .map(|(_, issue)| issue),
        );
        for p in pending {
            let attribute = p.field.attribute.as_deref();
            let written = walk(base, def, &p.field.steps, None, false)
                .filter(|node| node.slot(attribute).is_some());
            match written {
                // Another rule wrote the element: it must be one of the codes.
                Some(node) => settle(
                    node,
                    p.field,
                    String::new(),
                    &p.candidates,
                    &p.value,
                    &p.place,
                    issues,
                ),
                None => issues.push(Issue::error(
                    Code::MappingCodeUnknown,
                    p.place.location(),
                    format!(
                        "{} {:?}: the mapping translates {} codes to it ({}) and no other field says which; none is written",
                        p.field.to,
                        p.value,
                        p.candidates.len(),
                        shorten(&p.candidates)
                    ),
                )),
            }
        }
    }

    /// The element path and JSON pointer of value `i` of `field`.
    fn place(&self, field: &OutField, at: &Place, i: usize, repeat: Option<usize>) -> Place {
        let mut path = at.path.clone();
        for (k, step) in field.steps.iter().enumerate() {
            path.push('/');
            path.push_str(&step.name);
            if repeat == Some(k) {
                path.push_str(&index_suffix(i));
            }
        }
        if let Some(a) = &field.attribute {
            path.push_str("/@");
            path.push_str(a);
        }
        if field.date_format.is_some() {
            path.push('/');
            path.push_str(super::wco::DATE_TIME_STRING);
        }
        let mut pointer = format!("{}/{}", at.pointer, field.to.replace('.', "/"));
        if field.all {
            pointer.push_str(&format!("/{i}"));
        }
        Place { pointer, path }
    }

    /// The values that may be written for `raw` (the codes that translate
    /// to it, or `raw` itself) and that the schema takes; an issue when
    /// there is none.
    fn candidates(
        &self,
        field: &OutField,
        leaf: &ElementDef,
        raw: &str,
        place: &Place,
        issues: &mut Vec<Issue>,
    ) -> Result<Vec<String>, Box<Issue>> {
        let wanted: Vec<String> = match &field.codes {
            Some(codes) => {
                let mut c: Vec<String> = codes
                    .iter()
                    .filter(|(_, v)| v.as_str() == raw)
                    .map(|(k, _)| k.clone())
                    .collect();
                if field.pass_other && !codes.contains_key(raw) {
                    c.push(raw.to_owned());
                }
                if c.is_empty() {
                    return Err(Box::new(Issue::error(
                        Code::MappingCodeUnknown,
                        place.location(),
                        format!(
                            "no code of the mapping translates to {raw:?} ({})",
                            field.to
                        ),
                    )));
                }
                c
            }
            None => vec![raw.to_owned()],
        };
        let mut refused = None;
        let mut ok = Vec::new();
        for value in wanted {
            match self.check(leaf, field.attribute.as_deref(), &value) {
                Ok(()) => ok.push(value),
                Err(why) => {
                    refused.get_or_insert((value, why));
                }
            }
        }
        match (ok.is_empty(), refused) {
            (true, Some((value, why)))
                if field.cut_to_fit
                    && field.codes.is_none()
                    && let Some(cut) =
                        self.cut_to_fit(leaf, field.attribute.as_deref(), &value) =>
            {
                issues.push(Issue::warning(
                    Code::MappingUnmapped,
                    place.location(),
                    format!(
                        "{} {value:?} is written cut to {cut:?}: {why}; the rest is not carried",
                        field.to
                    ),
                ));
                Ok(vec![cut])
            }
            (true, Some((value, why))) => Err(Box::new(Issue::error(
                Code::MappingUnwritable,
                place.location(),
                format!("{} {value:?} cannot be written: {why}", field.to),
            ))),
            _ => Ok(ok),
        }
    }

    /// The longest start of `value` the type of `leaf` takes, ended at a
    /// space where the cut would fall inside a word (a name keeps whole
    /// words), trailing spaces dropped; `None` when no start is taken
    /// (the value is refused for something other than its length).
    fn cut_to_fit(
        &self,
        leaf: &ElementDef,
        attribute: Option<&str>,
        value: &str,
    ) -> Option<String> {
        let ends: Vec<usize> = value.char_indices().map(|(i, _)| i).skip(1).collect();
        let fits = |end: usize| {
            value
                .get(..end)
                .map(str::trim_end)
                .filter(|p| !p.is_empty() && self.check(leaf, attribute, p).is_ok())
        };
        let longest = ends.iter().rev().find_map(|&end| fits(end).map(|_| end))?;
        // Inside a word: back to the last space before it, if any.
        let inside_word = value
            .get(longest..)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| !c.is_whitespace());
        let end = match value.get(..longest).and_then(|p| p.rfind(' ')) {
            Some(space) if inside_word && fits(space).is_some() => space,
            _ => longest,
        };
        fits(end).map(str::to_owned)
    }

    /// Holds `value` against the type of `leaf` (or of its attribute).
    fn check(&self, leaf: &ElementDef, attribute: Option<&str>, value: &str) -> Result<(), String> {
        if let Some(bad) = value.chars().find(|&c| !is_xml_char(c)) {
            return Err(format!(
                "character U+{:04X} cannot be written in XML 1.0",
                u32::from(bad)
            ));
        }
        let def = leaf
            .type_name
            .as_deref()
            .and_then(|t| self.types.get(t))
            .ok_or_else(|| format!("{} has no simple data type", leaf.name))?;
        if let Some(a) = attribute {
            return check_attribute(&def.base, a, value);
        }
        if !def.simple {
            return Err(format!(
                "{} has element content; the writer writes values only",
                leaf.name
            ));
        }
        check_value(def, value)
    }

    /// MAP001 for every canonical value no rule writes.
    fn unwritten(&self, canonical: &Value, issues: &mut Vec<Issue>) {
        let mut covered: BTreeSet<String> = self.fields.iter().map(|f| f.to.clone()).collect();
        // The fields of a list's items, and of the lists inside them, as
        // dotted paths through the lists (`goods.documents.code`).
        fn cover(lists: &[OutList], prefix: &str, covered: &mut BTreeSet<String>) {
            for list in lists {
                let at = format!("{prefix}{}", list.to);
                for f in &list.fields {
                    covered.insert(format!("{at}.{}", f.to));
                }
                cover(&list.lists, &format!("{at}."), covered);
            }
        }
        cover(&self.lists, "", &mut covered);
        for (to, value) in &self.constants {
            if lookup(canonical, to) == Some(value) {
                covered.insert(to.clone());
            }
        }
        let mut found = Vec::new();
        leaves(canonical, "", "", &covered, &mut found);
        let file = Path::new(&self.name)
            .file_name()
            .map_or_else(|| self.name.clone(), |f| f.to_string_lossy().into_owned());
        let more = found.len().saturating_sub(MAX_LISTED);
        for (pointer, value) in found.into_iter().take(MAX_LISTED) {
            issues.push(Issue::warning(
                Code::MappingUnmapped,
                Location {
                    field: Some(pointer),
                    ..Location::default()
                },
                format!(
                    "value {value} has no element in the WCO DEC mapping ({file}); it is not written"
                ),
            ));
        }
        if more > 0 {
            issues.push(Issue::warning(
                Code::MappingUnmapped,
                Location::default(),
                format!("{more} further values are not written"),
            ));
        }
    }
}

/// A field may give way only to a field whose rule comes before it (rules
/// are written in order), writes the same element, and writes the codes
/// named.
fn gives_way_checked(before: &[OutField], this: &OutField) -> Result<(), String> {
    for (other, codes) in &this.gives_way_to {
        let writes = |f: &&OutField| {
            &f.to == other && f.steps == this.steps && f.attribute == this.attribute
        };
        let rules: Vec<&OutField> = before.iter().filter(writes).collect();
        if rules.is_empty() {
            return Err(format!(
                "{}: gives way to {other}, but no rule before it writes {other} to the same element",
                this.to
            ));
        }
        for code in codes {
            let written = rules
                .iter()
                .any(|f| f.codes.as_ref().is_some_and(|c| c.contains_key(code)));
            if !written {
                return Err(format!(
                    "{}: gives way to {other} {code:?}, which no rule before it writes",
                    this.to
                ));
            }
        }
    }
    Ok(())
}

/// Writes `candidate` into the slot of `node`, or checks that the value
/// already there is one of `allowed` (two rules write the same element).
fn settle(
    node: &mut Node,
    field: &OutField,
    candidate: String,
    allowed: &[String],
    raw: &str,
    place: &Place,
    issues: &mut Vec<Issue>,
) {
    let attribute = field.attribute.as_deref();
    let gives_way = |existing: &str| {
        node.writer(attribute)
            .and_then(|writer| field.gives_way_to.get(writer))
            .is_some_and(|codes| codes.iter().any(|c| c == existing))
    };
    match node.slot(attribute) {
        None => {
            node.set(attribute, candidate);
            node.writers
                .push((field.attribute.clone(), field.to.clone()));
        }
        Some(existing) if allowed.iter().any(|a| a == existing) => {}
        // The element holds a code another field wrote, one this field
        // gives way to (a cancellation request's TypeCode INV carries no
        // declaration type): this value is not in the document, and is
        // said so.
        Some(existing) if gives_way(existing) => {
            issues.push(Issue::warning(
                Code::MappingUnmapped,
                place.location(),
                format!(
                    "{} {raw:?} is not written: {} holds {existing:?}, written for another field, \
                     which carries no {}",
                    field.to, place.path, field.to
                ),
            ));
        }
        Some(existing) => {
            let (code, why) = if field.codes.is_some() {
                (
                    Code::MappingCodeUnknown,
                    format!("the mapping does not translate {existing:?} to {raw:?}"),
                )
            } else {
                (
                    Code::MappingUnwritable,
                    format!("{raw:?} cannot be written beside it"),
                )
            };
            issues.push(Issue::error(
                code,
                place.location(),
                format!(
                    "{} {raw:?}: {} already holds {existing:?} (written for another field) and {why}",
                    field.to, place.path
                ),
            ));
        }
    }
}

/// Writes a canonical date (a [`crate::model::Moment`]) as the
/// `DateTimeString` of the date-time element `field` names, its format
/// code in the attribute the field's `date_format` names, in the form the
/// DEC data types take (102, or 304 with its zone). A date-time without a
/// zone is written as its date, and the time left out is reported
/// (MAP001); a moment WCO cannot hold is refused (MAP006).
fn write_date(
    base: &mut Node,
    def: &ElementDef,
    field: &OutField,
    value: &Value,
    nth: Option<(usize, usize)>,
    place: &Place,
    issues: &mut Vec<Issue>,
) {
    let Some(format_attribute) = field.date_format.as_deref() else {
        return;
    };
    let written = serde_json::from_value::<crate::model::Moment>(value.clone())
        .map_err(|e| e.to_string())
        .and_then(|m| m.to_wco().map(|w| (m, w)).map_err(|e| e.to_string()));
    let (moment, wco) = match written {
        Ok(w) => w,
        Err(why) => {
            issues.push(Issue::error(
                Code::MappingUnwritable,
                place.location(),
                format!("{} cannot be written: {why}", field.to),
            ));
            return;
        }
    };
    let Some(node) = walk(base, def, &field.steps, nth, true) else {
        return;
    };
    if let Some(existing) = node
        .children
        .iter()
        .find(|c| c.name == super::wco::DATE_TIME_STRING)
    {
        issues.push(Issue::error(
            Code::MappingUnwritable,
            place.location(),
            format!(
                "{} {:?}: {} already holds {:?} (written for another field)",
                field.to,
                moment.iso,
                place.path,
                existing.text.as_deref().unwrap_or("")
            ),
        ));
        return;
    }
    if wco.time_left_out {
        issues.push(Issue::warning(
            Code::MappingUnmapped,
            place.location(),
            format!(
                "{} {:?}: the time of day is not written; a WCO DateTimeString takes a time \
                 only with its time zone, and this one has none (the date is written)",
                field.to, moment.iso
            ),
        ));
    }
    let mut string = Node::new(super::wco::DATE_TIME_STRING, 0);
    string.text = Some(wco.text);
    string
        .attributes
        .push((format_attribute.to_owned(), wco.format.to_owned()));
    string.namespace = Some(NS_DECLARATION_DS);
    node.children.push(string);
}

/// Walks `steps` down from `node` (of definition `def`), creating missing
/// elements when `create` is set; `nth` = (step, i) takes the i-th instance
/// of that step instead of the first.
fn walk<'n>(
    node: &'n mut Node,
    def: &ElementDef,
    steps: &[Step],
    nth: Option<(usize, usize)>,
    create: bool,
) -> Option<&'n mut Node> {
    let mut node = node;
    let mut def = def;
    for (k, step) in steps.iter().enumerate() {
        let (order, child_def) = def.child(&step.name)?;
        let want = match nth {
            Some((r, i)) if r == k => i,
            _ => 0,
        };
        let matching: Vec<usize> = node
            .children
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is(step))
            .map(|(i, _)| i)
            .collect();
        let index = match matching.get(want) {
            Some(&i) => i,
            None if create => {
                for _ in matching.len()..=want {
                    let mut fresh = Node::new(&step.name, order);
                    if let Some((child, value)) = &step.filter {
                        let (child_order, _) = child_def.child(child)?;
                        let mut test = Node::new(child, child_order);
                        test.text = Some(value.clone());
                        fresh.children.push(test);
                    }
                    node.children.push(fresh);
                }
                node.children.len().checked_sub(1)?
            }
            None => return None,
        };
        node = node.children.get_mut(index)?;
        def = child_def;
    }
    Some(node)
}

/// Gives every instance of a repeatable class that lacks the
/// `SequenceNumeric` its schema requires its position among its siblings.
fn fill_sequences(node: &mut Node, def: &ElementDef) {
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for child in &mut node.children {
        let Some((_, child_def)) = def.child(&child.name) else {
            continue;
        };
        let position = seen.entry(child.name.clone()).or_insert(0);
        *position += 1;
        if child_def.repeats()
            && let Some((order, sequence)) = child_def.child("SequenceNumeric")
            && sequence.min > 0
            && !child.children.iter().any(|c| c.name == "SequenceNumeric")
        {
            let mut numeric = Node::new("SequenceNumeric", order);
            numeric.text = Some(position.to_string());
            child.children.push(numeric);
        }
        fill_sequences(child, child_def);
    }
}

/// Removes the elements left with neither text nor children: an amount
/// whose value was refused (MAP006) while its currency attribute was set
/// would otherwise be written empty, which the schema refuses.
fn prune_empty(node: &mut Node) {
    node.children.retain_mut(|child| {
        prune_empty(child);
        child.text.is_some() || !child.children.is_empty()
    });
}

/// Appends `node` and its children, in schema order, indented two spaces
/// per level.
fn render(node: &Node, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    out.push_str(&indent);
    out.push('<');
    out.push_str(&node.name);
    if let Some(ns) = node.namespace {
        out.push_str(&format!(" xmlns=\"{ns}\""));
    }
    for (k, v) in &node.attributes {
        out.push_str(&format!(" {k}=\"{}\"", escape(v, true)));
    }
    if node.children.is_empty() {
        match &node.text {
            Some(text) => {
                out.push('>');
                out.push_str(&escape(text, false));
                out.push_str(&format!("</{}>\n", node.name));
            }
            None => out.push_str("/>\n"),
        }
        return;
    }
    out.push_str(">\n");
    let mut children: Vec<&Node> = node.children.iter().collect();
    children.sort_by_key(|c| c.order);
    for child in children {
        render(child, depth + 1, out);
    }
    out.push_str(&format!("{indent}</{}>\n", node.name));
}

/// Escapes markup characters, a carriage return (a parser would turn it
/// into a line feed) and, in attributes, tabs and line feeds (which
/// attribute normalisation would turn into spaces).
fn escape(value: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// `[n]` for the n-th (from the second) of same-named siblings, as element
/// paths elsewhere in tradehub write them.
fn index_suffix(i: usize) -> String {
    if i == 0 {
        String::new()
    } else {
        format!("[{}]", i + 1)
    }
}

fn shorten(values: &[String]) -> String {
    let mut text = values
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if values.len() > 5 {
        text.push_str(", …");
    }
    text
}

/// The value of a dotted field of a JSON object.
fn lookup<'a>(object: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .try_fold(object, |node, part| node.as_object()?.get(part))
}

/// A JSON leaf as text.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Canonical leaves (pointer, value as JSON) whose dotted field (list
/// indexes left out) is not in `covered`.
fn leaves(
    value: &Value,
    dotted: &str,
    pointer: &str,
    covered: &BTreeSet<String>,
    out: &mut Vec<(String, String)>,
) {
    if !dotted.is_empty() && covered.contains(dotted) {
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let d = if dotted.is_empty() {
                    k.clone()
                } else {
                    format!("{dotted}.{k}")
                };
                leaves(v, &d, &format!("{pointer}/{k}"), covered, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                leaves(v, dotted, &format!("{pointer}/{i}"), covered, out);
            }
        }
        Value::Null => {}
        leaf => out.push((pointer.to_owned(), leaf.to_string())),
    }
}

/// How a base type's value is read: `xs:token` (whitespace collapsed),
/// `xs:string`, or `xs:decimal`. The UN/CEFACT unqualified data types
/// (UnqualifiedDataType_6_DMS.xsd) the DEC types restrict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lexical {
    Token,
    Text,
    Decimal,
}

fn lexical(base: &str) -> Option<Lexical> {
    match base {
        "CodeType" => Some(Lexical::Token),
        "IDType" | "TextType" => Some(Lexical::Text),
        "AmountType" | "MeasureType" | "QuantityType" | "NumericType" => Some(Lexical::Decimal),
        _ => None,
    }
}

/// The attributes of the unqualified data types that mappings write:
/// `currencyID` (ISO 4217, `[A-Z]{3}`) and `unitCode` (1–5 characters).
fn check_attribute(base: &str, attribute: &str, value: &str) -> Result<(), String> {
    match (base, attribute) {
        ("AmountType", "currencyID") => {
            if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(())
            } else {
                Err("a currencyID is three capital letters ([A-Z]{3})".into())
            }
        }
        ("MeasureType" | "QuantityType", "unitCode") => {
            let n = value.chars().count();
            if (1..=5).contains(&n) {
                Ok(())
            } else {
                Err(format!("a unitCode has 1 to 5 characters, not {n}"))
            }
        }
        _ => Err(format!(
            "attribute {attribute} of {base} is not one the writer can check"
        )),
    }
}

/// XML whitespace (`\s` of XML Schema regular expressions).
fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Characters XML 1.0 allows (Char production).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// The value a token type validates: whitespace runs collapsed to one
/// space, none at either end.
fn collapse(value: &str) -> String {
    value
        .split(is_xml_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `[+-]? digits [. digits]` with at least one digit (xs:decimal).
fn is_decimal_lexical(value: &str) -> bool {
    let body = value.strip_prefix(['+', '-']).unwrap_or(value);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty())
}

fn check_value(def: &ValueDef, value: &str) -> Result<(), String> {
    let Some(lexical) = lexical(&def.base) else {
        return Err(format!("values of base type {} are not written", def.base));
    };
    let normal = match lexical {
        Lexical::Token => collapse(value),
        Lexical::Text | Lexical::Decimal => value.to_owned(),
    };
    if lexical == Lexical::Decimal {
        if !is_decimal_lexical(&normal) {
            return Err("not a decimal number".into());
        }
        let number: Decimal = normal
            .parse()
            .map_err(|_| "a decimal number too large to check".to_owned())?;
        let number = number.normalize();
        let digits = number
            .mantissa()
            .unsigned_abs()
            .checked_ilog10()
            .map_or(1, |d| d + 1);
        if def.total_digits.is_some_and(|t| digits > t)
            || def.fraction_digits.is_some_and(|f| number.scale() > f)
        {
            return Err(format!(
                "more digits than the schema allows ({} in all, {} after the point)",
                def.total_digits.map_or("any".into(), |t| t.to_string()),
                def.fraction_digits.map_or("any".into(), |f| f.to_string()),
            ));
        }
    }
    let chars = normal.chars().count();
    if def.len.is_some_and(|n| chars != n) {
        return Err(format!(
            "{chars} characters, the schema wants exactly {}",
            def.len.unwrap_or(0)
        ));
    }
    if def.max_len.is_some_and(|n| chars > n) {
        return Err(format!(
            "{chars} characters, the schema allows {}",
            def.max_len.unwrap_or(0)
        ));
    }
    if def.min_len.is_some_and(|n| chars < n) {
        return Err(format!(
            "{chars} characters, the schema wants at least {}",
            def.min_len.unwrap_or(0)
        ));
    }
    if !def.enumeration.is_empty() && !def.enumeration.contains(&normal) {
        return Err(format!("not one of {}", def.enumeration.join(", ")));
    }
    if !def.patterns.is_empty() {
        let mut unknown = None;
        let mut matched = false;
        for pattern in &def.patterns {
            match pattern_matches(pattern, &normal) {
                Some(true) => matched = true,
                Some(false) => {}
                None => unknown = Some(pattern),
            }
        }
        if !matched {
            return Err(match unknown {
                Some(p) => format!("the schema pattern {p} is not one the writer can check"),
                None => format!(
                    "does not match the schema pattern {}",
                    def.patterns.join(" | ")
                ),
            });
        }
    }
    Ok(())
}

/// The patterns of the DEC data types. `.` of XML Schema matches any
/// character but a line feed or carriage return. `None`: not a known one.
fn pattern_matches(pattern: &str, value: &str) -> Option<bool> {
    match pattern {
        ".*[^\\s].*" => {
            Some(!value.contains(['\n', '\r']) && value.chars().any(|c| !is_xml_space(c)))
        }
        "([0-9])*" => Some(value.bytes().all(|b| b.is_ascii_digit())),
        "([a-zA-Z])*" => Some(value.bytes().all(|b| b.is_ascii_alphabetic())),
        _ => None,
    }
}

/// Reads an attribute of a schema element.
fn attr(e: &quick_xml::events::BytesStart<'_>, key: &str) -> Option<String> {
    e.try_get_attribute(key)
        .ok()
        .flatten()
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}

fn unprefixed(name: &str) -> String {
    name.rsplit_once(':')
        .map_or(name, |(_, local)| local)
        .to_owned()
}

/// The element tree of the `Declaration` complex type of
/// WCO_DEC_2_DMS.xsd (anonymous nested types, `xs:sequence` only).
fn read_elements(xsd: &str) -> Result<ElementDef, String> {
    let mut reader = NsReader::from_str(xsd);
    let mut stack: Vec<ElementDef> = Vec::new();
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| e.to_string())?;
        let in_xsd = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == NS_XSD.as_bytes());
        match event {
            Event::Start(ref e) | Event::Empty(ref e) if in_xsd => {
                let start = matches!(event, Event::Start(_));
                match e.local_name().as_ref() {
                    b"complexType"
                        if start
                            && stack.is_empty()
                            && attr(e, "name").as_deref() == Some("Declaration") =>
                    {
                        stack.push(ElementDef {
                            name: "Declaration".into(),
                            min: 1,
                            max: Some(1),
                            type_name: None,
                            children: Vec::new(),
                        });
                    }
                    b"element" if !stack.is_empty() => {
                        let occurs = |key: &str| -> Result<Option<u32>, String> {
                            match attr(e, key) {
                                None => Ok(Some(1)),
                                Some(v) if v == "unbounded" => Ok(None),
                                Some(v) => v
                                    .parse()
                                    .map(Some)
                                    .map_err(|_| format!("{key}={v:?} is not a number")),
                            }
                        };
                        let def = ElementDef {
                            name: attr(e, "name").ok_or("an element without a name")?,
                            min: occurs("minOccurs")?.unwrap_or(1),
                            max: occurs("maxOccurs")?,
                            type_name: attr(e, "type").map(|t| unprefixed(&t)),
                            children: Vec::new(),
                        };
                        if start {
                            stack.push(def);
                        } else if let Some(parent) = stack.last_mut() {
                            parent.children.push(def);
                        }
                    }
                    _ => {}
                }
            }
            Event::End(ref e) if in_xsd => match e.local_name().as_ref() {
                b"element" if stack.len() > 1 => {
                    if let Some(done) = stack.pop()
                        && let Some(parent) = stack.last_mut()
                    {
                        parent.children.push(done);
                    }
                }
                b"complexType" if stack.len() == 1 => return stack.pop().ok_or_else(String::new),
                _ => {}
            },
            Event::Eof => return Err("no complex type Declaration".into()),
            _ => {}
        }
    }
}

/// The `schemaLocation` of the schema imported for `namespace`.
fn imported(xsd: &str, namespace: &str) -> Option<String> {
    let mut reader = NsReader::from_str(xsd);
    loop {
        match reader.read_event().ok()? {
            Event::Start(ref e) | Event::Empty(ref e)
                if e.local_name().as_ref() == b"import"
                    && attr(e, "namespace").as_deref() == Some(namespace) =>
            {
                return attr(e, "schemaLocation");
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// The named data types of WCO_DEC_DS_2_DMS.xsd with their facets.
fn read_types(xsd: &str) -> Result<BTreeMap<String, ValueDef>, String> {
    let mut reader = NsReader::from_str(xsd);
    let mut types = BTreeMap::new();
    // Depth of open schema elements; a named type at depth 1 is top level.
    let mut depth = 0usize;
    let mut current: Option<(String, ValueDef)> = None;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| e.to_string())?;
        let in_xsd = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == NS_XSD.as_bytes());
        match event {
            Event::Start(ref e) | Event::Empty(ref e) if in_xsd => {
                let start = matches!(event, Event::Start(_));
                let local = e.local_name();
                let local = local.as_ref();
                if depth == 1 && start && matches!(local, b"complexType" | b"simpleType") {
                    if let Some(name) = attr(e, "name") {
                        current = Some((
                            name,
                            ValueDef {
                                simple: true,
                                ..ValueDef::default()
                            },
                        ));
                    }
                } else if let Some((_, def)) = current.as_mut() {
                    let value = attr(e, "value").unwrap_or_default();
                    let number = || value.parse::<u32>().ok();
                    match local {
                        b"restriction" => {
                            def.base = attr(e, "base").map(|b| unprefixed(&b)).unwrap_or_default();
                        }
                        b"element" | b"choice" | b"sequence" => def.simple = false,
                        b"maxLength" => def.max_len = number().map(|n| n as usize),
                        b"minLength" => def.min_len = number().map(|n| n as usize),
                        b"length" => def.len = number().map(|n| n as usize),
                        b"totalDigits" => def.total_digits = number(),
                        b"fractionDigits" => def.fraction_digits = number(),
                        b"pattern" => def.patterns.push(value),
                        b"enumeration" => def.enumeration.push(value),
                        _ => {}
                    }
                }
                if start {
                    depth += 1;
                }
            }
            Event::End(_) if in_xsd => {
                depth = depth.saturating_sub(1);
                if depth == 1
                    && let Some((name, def)) = current.take()
                {
                    types.insert(name, def);
                }
            }
            Event::Eof => return Ok(types),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(base: &str) -> ValueDef {
        ValueDef {
            base: base.into(),
            simple: true,
            ..ValueDef::default()
        }
    }

    #[test]
    fn facets_of_the_dec_types() {
        let mut code = def("CodeType");
        code.max_len = Some(3);
        code.patterns.push(".*[^\\s].*".into());
        assert!(check_value(&code, "IMZ").is_ok());
        assert!(check_value(&code, " I  M ").is_ok(), "tokens collapse");
        assert!(check_value(&code, "IMZZ").is_err());
        assert!(check_value(&code, "   ").is_err());
        let mut text = def("TextType");
        text.patterns.push(".*[^\\s].*".into());
        assert!(
            check_value(&text, "two\nlines").is_err(),
            ". stops at a line feed"
        );
        let mut amount = def("AmountType");
        amount.total_digits = Some(16);
        amount.fraction_digits = Some(3);
        assert!(
            check_value(&amount, "125000.500").is_ok(),
            "trailing zeros do not count"
        );
        assert!(check_value(&amount, "0.0001").is_err());
        assert!(check_value(&amount, "1e5").is_err());
        let mut country = def("CodeType");
        country.len = Some(2);
        country.patterns.push("([a-zA-Z])*".into());
        assert!(check_value(&country, "GB").is_ok());
        assert!(check_value(&country, "G1").is_err());
        let mut odd = def("CodeType");
        odd.patterns.push("[A-Z]+".into());
        assert!(
            check_value(&odd, "A").is_err(),
            "unknown patterns are refused"
        );
        assert!(check_attribute("AmountType", "currencyID", "EUR").is_ok());
        assert!(check_attribute("AmountType", "currencyID", "eur").is_err());
        assert!(check_attribute("IDType", "schemeID", "x").is_err());
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a\r<&>\"", false), "a&#13;&lt;&amp;&gt;\"");
        assert_eq!(escape("a\"\n\t", true), "a&quot;&#10;&#9;");
    }

    #[test]
    fn paths_with_filters_and_attributes() {
        let (steps, attribute) =
            parse_path("Commodity/Classification[IdentificationTypeCode=TSP]/ID").unwrap();
        assert_eq!(steps.len(), 3);
        assert_eq!(
            steps[1].filter,
            Some(("IdentificationTypeCode".into(), "TSP".into()))
        );
        assert_eq!(attribute, None);
        let (_, attribute) = parse_path("InvoiceAmount/@currencyID").unwrap();
        assert_eq!(attribute.as_deref(), Some("currencyID"));
        assert!(parse_path("A/@b/C").is_err());
    }
}
