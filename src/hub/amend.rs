//! Amendments and cancellations completed from the declaration they refer
//! to. HMRC's CDS sends an amendment as its changes only: the values that
//! change, and for each change (`Amendment`) `Pointer`s to the class and
//! data element it changes (the corpus sample TT_Add_Item Step 2 sets the
//! goods item count, 42A tag 228, and the package count, 42A tag 146, and
//! adds goods item 3, 42A/67A/68A sequence 3). Its additional messages
//! (TypeCode COR, INV) name no kind of declaration either. Here the
//! amendment is applied to the canonical form of the declaration it amends,
//! and the business rules judge the result; a change that cannot be applied
//! is refused (RUL008), never dropped.
//!
//! What a change may name:
//! - a data element of the declaration or of a class below it that does not
//!   repeat (`42A` + tag, `42A`/`67A`/importer class + tag): the canonical
//!   fields the mapping reads from that element take the amendment's
//!   values, or are removed when it has none;
//! - a goods item (`42A`/`67A`/`68A` with its sequence number): replaced by
//!   the amendment's item of that number, added when the declaration has
//!   none, removed when the amendment carries none;
//! - anything inside a goods item: the item is replaced by the amendment's
//!   item of that number, which must then be given whole.
//!
//! Other places (an additional document of the declaration, a repeated
//! party class, what the declaration is: its type and kind) are refused
//! with the pointer named. Values the amendment carries that no change
//! names are refused too: what they were meant to change is not known. A
//! change to an element the canonical model does not hold changes nothing
//! and is reported (MAP001).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::diag::{Code, Issue, Location};
use crate::mapping::Mapped;
use crate::model::Change;
use crate::xml::response::{Pointer, path_for_pointers};

/// The message-level fields an amendment states of itself (what it is, its
/// references, who sends it, why and what it changes): always its own.
const OWN: &[&str] = &[
    "function",
    "lrn",
    "mrn",
    "issued",
    "submitter",
    "reason",
    "changes",
];

/// What the declaration amended is, which a change cannot alter: its kind
/// and type (an amendment's TypeCode is its own message type, HMRC's COR)
/// and what the message itself is (its function, references).
const IDENTITY: &[&str] = &["kind", "type_code", "function", "lrn", "mrn"];

/// Whether a mapped declaration is an amendment or cancellation that needs
/// the declaration it refers to: it carries only changes, or no kind.
pub fn needs_prior(mapped: &Mapped) -> bool {
    let Some(canonical) = mapped
        .canonical
        .as_ref()
        .filter(|_| mapped.target == "declaration")
    else {
        return false;
    };
    let function = canonical.get("function").and_then(Value::as_str);
    matches!(function, Some("amendment" | "cancellation"))
        && (canonical.get("kind").is_none() || !changes(canonical).is_empty())
}

/// The changes with pointers: what makes an amendment partial.
fn changes(canonical: &Value) -> Vec<(usize, Change)> {
    canonical
        .get("changes")
        .and_then(|c| Vec::<Change>::deserialize(c).ok())
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter(|(_, c)| !c.pointers.is_empty())
        .collect()
}

/// `mapped` completed from `prior` (the canonical form of the declaration
/// it refers to) and judged whole: the amendment applied to it, or the
/// kind it left out taken from it, read into the canonical type (MAP004
/// when incomplete) and checked by the business rules. The issues are the
/// changes that could not be applied and the rules' findings.
pub fn complete(
    mapped: &Mapped,
    prior: &Value,
    settings: &crate::rules::RuleSettings,
) -> (Mapped, Vec<Issue>) {
    let (mut whole, mut issues) = merge(mapped, prior);
    if let Some(canonical) = whole.canonical.take() {
        match crate::mapping::typed(&whole.target, canonical) {
            Ok(typed) => whole.canonical = Some(typed),
            Err(e) => issues.push(Issue::error(
                Code::MappingIncomplete,
                Location::default(),
                format!("the amended declaration is incomplete: {e}"),
            )),
        }
    }
    issues.extend(crate::rules::check_whole_mapped(&whole, settings));
    (whole, issues)
}

/// The merge of [`complete`]: the errors are the changes that could not be
/// applied.
fn merge(mapped: &Mapped, prior: &Value) -> (Mapped, Vec<Issue>) {
    let mut out = mapped.clone();
    let Some(delta) = mapped.canonical.as_ref().and_then(Value::as_object) else {
        return (out, Vec::new());
    };
    let partial = mapped.canonical.as_ref().map(changes).unwrap_or_default();
    if partial.is_empty() {
        // Whole, but without a kind: the kind of the declaration it refers
        // to.
        if let (Some(Value::Object(object)), Some(kind)) = (&mut out.canonical, prior.get("kind"))
            && !object.contains_key("kind")
        {
            object.insert("kind".into(), kind.clone());
        }
        return (out, Vec::new());
    }
    let Some(prior) = prior.as_object() else {
        return (out, Vec::new());
    };
    let mut apply = Apply {
        delta,
        provenance: &mapped.provenance,
        merged: prior.clone(),
        located: BTreeMap::new(),
        // The amendment's type code is its own message type (HMRC's COR)
        // and names no kind; the declaration keeps its type and kind
        // (a different kind is refused below).
        applied: ["/type_code", "/kind"]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        items: Vec::new(),
        errors: Vec::new(),
    };
    for key in OWN {
        apply.take(key);
    }
    if let (Some(given), Some(kind)) = (delta.get("kind"), prior.get("kind"))
        && given != kind
    {
        apply.error_at(
            "/kind",
            format!(
                "the amendment says the declaration is {given}, the declaration amended is \
                 {kind}: an amendment of changes only cannot change the kind; send the whole \
                 declaration"
            ),
        );
    }
    if let Some(root) = mapped.provenance.get("") {
        apply.located.insert(String::new(), root.clone());
    }
    for (index, change) in &partial {
        apply.change(*index, change);
    }
    apply.locate_items();
    apply.unnamed();
    out.canonical = Some(Value::Object(apply.merged));
    out.provenance = apply.located;
    (out, apply.errors)
}

struct Apply<'a> {
    delta: &'a Map<String, Value>,
    provenance: &'a BTreeMap<String, Location>,
    merged: Map<String, Value>,
    /// The provenance of the merged declaration: of what the amendment gave.
    located: BTreeMap<String, Location>,
    /// JSON pointers of the amendment's values that a change named.
    applied: Vec<String>,
    /// The amendment's goods items applied: (index in it, sequence number).
    items: Vec<(usize, u32)>,
    errors: Vec<Issue>,
}

impl Apply<'_> {
    fn error(&mut self, change: usize, message: String) {
        self.error_at(&format!("/changes/{change}"), message);
    }

    /// RUL008 located at the amendment's value at `pointer` (or the nearest
    /// one that has a place).
    fn error_at(&mut self, pointer: &str, message: String) {
        let pointer = pointer.to_owned();
        let location = crate::mapping::nearest(self.provenance, &pointer)
            .cloned()
            .map(|l| Location {
                field: Some(pointer.clone()),
                ..l
            })
            .unwrap_or_else(|| Location {
                path: Some(pointer),
                ..Location::default()
            });
        self.errors
            .push(Issue::error(Code::RuleReference, location, message));
    }

    /// The merged declaration's `key` is the amendment's (or absent).
    fn take(&mut self, key: &str) {
        match self.delta.get(key) {
            Some(v) => {
                self.merged.insert(key.to_owned(), v.clone());
            }
            None => {
                self.merged.remove(key);
            }
        }
        self.applied.push(format!("/{key}"));
        self.locate(&format!("/{key}"), &format!("/{key}"));
    }

    /// Copies the provenance of the amendment's `from` (and below) to the
    /// merged declaration's `to`.
    fn locate(&mut self, from: &str, to: &str) {
        let below = format!("{from}/");
        for (key, location) in self.provenance.range(from.to_owned()..) {
            if key != from && !key.starts_with(&below) {
                break;
            }
            let moved = format!("{to}{}", key.get(from.len()..).unwrap_or_default());
            self.located.insert(moved, location.clone());
        }
    }

    fn change(&mut self, index: usize, change: &Change) {
        let pointers: Vec<Pointer> = change
            .pointers
            .iter()
            .map(|p| Pointer {
                sequence: p.sequence,
                document_section_code: p.section.clone(),
                tag_id: p.tag.clone(),
            })
            .collect();
        let written = change
            .pointers
            .iter()
            .map(|p| {
                let mut step = p.section.clone();
                if let Some(n) = p.sequence {
                    step.push_str(&format!("[{n}]"));
                }
                if let Some(tag) = &p.tag {
                    step.push_str(&format!(" tag {tag}"));
                }
                step
            })
            .collect::<Vec<_>>()
            .join("/");
        let Some(path) = path_for_pointers(&pointers) else {
            self.error(
                index,
                format!(
                    "change {}: pointer {written} names no class or data element of the WCO \
                     declaration",
                    index + 1
                ),
            );
            return;
        };
        let names: Vec<&str> = path.classes.iter().map(|c| c.name).collect();
        if names.first() != Some(&"Declaration") {
            self.error(
                index,
                format!(
                    "change {}: pointer {written} does not start at the declaration (42A)",
                    index + 1
                ),
            );
            return;
        }
        // The goods items' element is the WCO mapping's: without it the
        // change cannot be placed, which is the hub's fault, not the
        // sender's, and is said as such instead of reading every pointer as
        // one outside the goods items.
        let mapping = match crate::mapping::wco::load() {
            Ok(mapping) => mapping,
            Err(e) => {
                // MAP005, as for a document the hub cannot map: the cause
                // (with the file's path) is the operator's, in the log.
                tracing::error!(error = %e, "the WCO DEC mapping did not load; an amendment's pointers cannot be placed");
                self.errors.push(Issue::error(
                    Code::MappingUnavailable,
                    Location {
                        path: Some(format!("/changes/{index}")),
                        ..Location::default()
                    },
                    format!(
                        "change {}: pointer {written} cannot be placed: the hub's WCO DEC mapping \
                         is not available",
                        index + 1
                    ),
                ));
                return;
            }
        };
        let goods = mapping.list_element("goods").unwrap_or_default();
        let below: Vec<&str> = names.iter().skip(1).copied().collect();
        let goods_depth = goods.split('/').count();
        if !goods.is_empty()
            && below.len() >= goods_depth
            && below.iter().take(goods_depth).copied().eq(goods.split('/'))
        {
            let item = path.classes.get(goods_depth).and_then(|c| c.sequence);
            let whole = below.len() == goods_depth && path.element.is_none();
            match item {
                Some(sequence) => self.goods_item(index, sequence, whole),
                None => self.error(
                    index,
                    format!(
                        "change {}: pointer {written} names no goods item (68A needs its \
                         sequence number)",
                        index + 1
                    ),
                ),
            }
            return;
        }
        // A data element of the declaration or of a class that does not
        // repeat below it.
        let repeated = path.classes.iter().skip(1).find(|c| c.repeatable);
        let (Some(element), None) = (path.element, repeated) else {
            self.error(
                index,
                format!(
                    "change {}: pointer {written} names {}; an amendment of changes only may \
                     change the declaration's data elements and its goods items; send the whole \
                     declaration to change this",
                    index + 1,
                    match repeated {
                        Some(class) => format!("a repeated class ({})", class.name),
                        None => "a class, not a data element".to_owned(),
                    }
                ),
            );
            return;
        };
        let mut element_path: Vec<&str> = below;
        element_path.push(element);
        let element_path = element_path.join("/");
        let fields: Vec<String> = mapping
            .fields_from(&element_path)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let (identity, data): (Vec<String>, Vec<String>) = fields
            .into_iter()
            .partition(|f| IDENTITY.contains(&f.split('.').next().unwrap_or_default()));
        if data.is_empty() && !identity.is_empty() {
            self.error(
                index,
                format!(
                    "change {}: pointer {written} names {element_path}, which says what the \
                     declaration is ({}); an amendment cannot change it",
                    index + 1,
                    identity.join(", ")
                ),
            );
            return;
        }
        if data.is_empty() {
            // The canonical model does not hold this element: nothing of
            // it changes there (the message keeps the value, reported as
            // not mapped).
            let pointer = format!("/changes/{index}");
            let location = crate::mapping::nearest(self.provenance, &pointer)
                .cloned()
                .unwrap_or_default();
            self.errors.push(Issue::warning(
                Code::MappingUnmapped,
                Location {
                    field: Some(pointer),
                    ..location
                },
                format!(
                    "change {}: {element_path} is not held by the canonical model; the change \
                     is kept with the message but changes nothing of the declaration",
                    index + 1
                ),
            ));
            return;
        }
        for field in data {
            self.field(&field);
        }
    }

    /// The merged declaration's dotted `field` is the amendment's.
    fn field(&mut self, dotted: &str) {
        let parts: Vec<&str> = dotted.split('/').flat_map(|p| p.split('.')).collect();
        let pointer = format!("/{}", parts.join("/"));
        let value = self.delta_value(&parts);
        set(&mut self.merged, &parts, value);
        self.applied.push(pointer.clone());
        self.locate(&pointer, &pointer);
    }

    fn delta_value(&self, parts: &[&str]) -> Option<Value> {
        let (first, rest) = parts.split_first()?;
        let mut at = self.delta.get(*first)?;
        for part in rest {
            at = at.get(*part)?;
        }
        Some(at.clone())
    }

    /// Goods item `sequence`: replaced by, or added from, the amendment's;
    /// removed when the change names the whole item and the amendment
    /// carries none.
    fn goods_item(&mut self, index: usize, sequence: u32, whole: bool) {
        let number = |item: &Value| item.get("sequence").and_then(Value::as_u64);
        let given = self
            .delta
            .get("goods")
            .and_then(Value::as_array)
            .and_then(|items| {
                items
                    .iter()
                    .position(|i| number(i) == Some(u64::from(sequence)))
                    .map(|k| (k, items.get(k).cloned().unwrap_or(Value::Null)))
            });
        let goods = self
            .merged
            .entry("goods")
            .or_insert_with(|| Value::Array(Vec::new()));
        let Some(items) = goods.as_array_mut() else {
            return;
        };
        let existing = items
            .iter()
            .position(|i| number(i) == Some(u64::from(sequence)));
        match (given, existing) {
            (Some((k, item)), Some(at)) => {
                if let Some(slot) = items.get_mut(at) {
                    *slot = item;
                }
                self.item_located(k, sequence);
            }
            (Some((k, item)), None) => {
                let at = items
                    .iter()
                    .position(|i| number(i).is_some_and(|n| n > u64::from(sequence)))
                    .unwrap_or(items.len());
                items.insert(at, item);
                self.item_located(k, sequence);
            }
            (None, Some(at)) if whole => {
                items.remove(at);
            }
            (None, Some(_)) => self.error(
                index,
                format!(
                    "change {}: it changes goods item {sequence}, which the amendment does not \
                     carry (an item changed is given whole)",
                    index + 1
                ),
            ),
            (None, None) => self.error(
                index,
                format!(
                    "change {}: goods item {sequence} is neither in the declaration amended \
                     nor in the amendment",
                    index + 1
                ),
            ),
        }
    }

    /// The amendment's goods item `from` was applied: its provenance is
    /// moved to where its sequence number puts it once every change is.
    fn item_located(&mut self, from: usize, sequence: u32) {
        self.applied.push(format!("/goods/{from}"));
        self.items.push((from, sequence));
    }

    fn locate_items(&mut self) {
        let number = |item: &Value| item.get("sequence").and_then(Value::as_u64);
        let Some(items) = self.merged.get("goods").and_then(Value::as_array) else {
            return;
        };
        let places: Vec<(usize, usize)> = self
            .items
            .iter()
            .filter_map(|&(from, sequence)| {
                items
                    .iter()
                    .position(|i| number(i) == Some(u64::from(sequence)))
                    .map(|to| (from, to))
            })
            .collect();
        for (from, to) in places {
            self.locate(&format!("/goods/{from}"), &format!("/goods/{to}"));
        }
    }

    /// RUL008 for every value of the amendment no change named.
    fn unnamed(&mut self) {
        let mut leaves = Vec::new();
        for (key, value) in self.delta {
            leaves_of(value, format!("/{key}"), &mut leaves);
        }
        let applied: std::collections::HashSet<&str> =
            self.applied.iter().map(String::as_str).collect();
        let mut unnamed = Vec::new();
        for pointer in leaves {
            // Named when it, or an object or list holding it, was applied:
            // its ancestors are its prefixes at each `/`.
            let named = pointer
                .match_indices('/')
                .map(|(at, _)| pointer.get(..at).unwrap_or_default())
                .chain(std::iter::once(pointer.as_str()))
                .any(|prefix| applied.contains(prefix));
            if !named {
                unnamed.push(pointer);
            }
        }
        for pointer in unnamed {
            let location = self
                .provenance
                .get(&pointer)
                .cloned()
                .map(|l| Location {
                    field: Some(pointer.clone()),
                    ..l
                })
                .unwrap_or_else(|| Location {
                    path: Some(pointer.clone()),
                    ..Location::default()
                });
            self.errors.push(Issue::error(
                Code::RuleReference,
                location,
                format!(
                    "the amendment carries {pointer} but no change (Amendment/Pointer) names it, \
                     so what it should change is not known"
                ),
            ));
        }
    }
}

/// Sets (or, with `None`, removes) the value at `parts` of `object`,
/// creating objects on the way; an object left empty by a removal goes too.
fn set(object: &mut Map<String, Value>, parts: &[&str], value: Option<Value>) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    if rest.is_empty() {
        match value {
            Some(v) => {
                object.insert((*first).to_owned(), v);
            }
            None => {
                object.remove(*first);
            }
        }
        return;
    }
    if value.is_none() && !object.contains_key(*first) {
        return;
    }
    let child = object
        .entry((*first).to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(inner) = child {
        set(inner, rest, value);
        if inner.is_empty() {
            object.remove(*first);
        }
    }
}

/// The JSON pointers of the values (not objects, not lists) in `value`.
fn leaves_of(value: &Value, pointer: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                leaves_of(v, format!("{pointer}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                leaves_of(v, format!("{pointer}/{i}"), out);
            }
        }
        _ => out.push(pointer),
    }
}
