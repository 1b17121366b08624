//! The object an EDIFACT mapping fills while it runs: a tree of nodes in
//! one vector, whose keys are the mapping's own field names and whose
//! texts are, where they can be, the message's values themselves.
//!
//! Building a `serde_json::Value` for every message cost a key `String`
//! and a B-tree insert per value, and as much again to drop it; a typed
//! canonical object was then deserialized from that tree and the tree
//! thrown away. A draft is deserialized into the typed model directly
//! ([`Draft::deserialize_into`]) and turned into JSON only when JSON is
//! asked for ([`Draft::into_value`]); both give what the JSON tree gave
//! (the first value set at a field wins, lists keep their order).

use std::borrow::Cow;
use std::cell::RefCell;

use serde::de::{self, DeserializeOwned, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A value a rule read: a text (borrowed from the message or the mapping
/// where it can be) or any other JSON value (numbers, booleans, dates,
/// constants).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Leaf<'a> {
    Text(Cow<'a, str>),
    Json(Value),
}

impl Leaf<'_> {
    fn to_value(&self) -> Value {
        match self {
            Leaf::Text(text) => Value::String(text.to_string()),
            Leaf::Json(value) => value.clone(),
        }
    }

    /// Equal as JSON values: a text equals a JSON string of the same text.
    fn same(&self, other: &Leaf<'_>) -> bool {
        match (self, other) {
            (Leaf::Text(a), Leaf::Text(b)) => a == b,
            (Leaf::Json(a), Leaf::Json(b)) => a == b,
            (Leaf::Text(a), Leaf::Json(Value::String(b)))
            | (Leaf::Json(Value::String(b)), Leaf::Text(a)) => a == b,
            _ => false,
        }
    }
}

/// The one copy of a field name, for the life of the process: field names
/// come from mapping files, which are compiled once each, so the set stays
/// as small as the canonical model. A draft compares names by address.
pub(crate) fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::OnceLock<std::sync::Mutex<rustc_hash::FxHashSet<&'static str>>> =
        std::sync::OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    let mut names = match names.lock() {
        Ok(names) => names,
        Err(poisoned) => poisoned.into_inner(),
    };
    match names.get(name) {
        Some(known) => known,
        None => {
            let owned: &'static str = Box::leak(name.to_owned().into_boxed_str());
            names.insert(owned);
            owned
        }
    }
}

/// A field name, [`intern`]ed.
pub(crate) type Key = &'static str;

#[derive(Debug)]
enum Node<'a> {
    /// Fields in the order they were set (no key twice).
    Object(Vec<(Key, usize)>),
    Array(Vec<usize>),
    Leaf(Leaf<'a>),
}

/// A canonical object under construction (node 0 is its root object).
#[derive(Debug)]
pub(crate) struct Draft<'a> {
    nodes: Vec<Node<'a>>,
}

/// The root object of a draft.
pub(crate) const ROOT: usize = 0;

impl<'a> Draft<'a> {
    pub(crate) fn new() -> Draft<'a> {
        let mut nodes = Vec::with_capacity(256);
        nodes.push(Node::Object(Vec::with_capacity(32)));
        Draft { nodes }
    }

    /// A new empty object, not yet placed anywhere.
    pub(crate) fn object(&mut self) -> usize {
        self.nodes.push(Node::Object(Vec::with_capacity(8)));
        self.nodes.len() - 1
    }

    fn leaf(&mut self, leaf: Leaf<'a>) -> usize {
        self.nodes.push(Node::Leaf(leaf));
        self.nodes.len() - 1
    }

    /// Nodes for a JSON value set whole (a constant): its objects and
    /// arrays become object and array nodes, so that later rules add to
    /// them as they would in the JSON tree.
    fn spread(&mut self, value: Value) -> usize {
        let node = match value {
            Value::Object(map) => Node::Object(
                map.into_iter()
                    .map(|(key, value)| (intern(&key), self.spread(value)))
                    .collect(),
            ),
            Value::Array(items) => {
                Node::Array(items.into_iter().map(|value| self.spread(value)).collect())
            }
            scalar => Node::Leaf(Leaf::Json(scalar)),
        };
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// The JSON value of a node (a copy).
    fn value_of(&self, id: usize) -> Value {
        match self.nodes.get(id) {
            Some(Node::Object(fields)) => Value::Object(
                fields
                    .iter()
                    .map(|(key, id)| ((*key).to_owned(), self.value_of(*id)))
                    .collect(),
            ),
            Some(Node::Array(items)) => {
                Value::Array(items.iter().map(|id| self.value_of(*id)).collect())
            }
            Some(Node::Leaf(leaf)) => leaf.to_value(),
            None => Value::Null,
        }
    }

    /// True when `id` is an object without fields.
    pub(crate) fn is_empty_object(&self, id: usize) -> bool {
        matches!(self.nodes.get(id), Some(Node::Object(fields)) if fields.is_empty())
    }

    fn child(&self, object: usize, key: Key) -> Option<usize> {
        match self.nodes.get(object)? {
            Node::Object(fields) => fields
                .iter()
                .find(|(k, _)| std::ptr::eq(*k, key))
                .map(|(_, id)| *id),
            _ => None,
        }
    }

    /// The node at a field given as its steps, below `object`.
    fn lookup(&self, object: usize, parts: &[Key]) -> Option<usize> {
        let mut node = object;
        for part in parts {
            node = self.child(node, part)?;
        }
        Some(node)
    }

    /// What is at a field: nothing, a list (its items), or something else
    /// (also when the way there passes through a value such as a date:
    /// a rule cannot add to it).
    pub(crate) fn at(&self, object: usize, parts: &[Key]) -> Held<'_> {
        let mut node = object;
        for part in parts {
            match self.nodes.get(node) {
                Some(Node::Object(_)) => match self.child(node, part) {
                    Some(id) => node = id,
                    None => return Held::Nothing,
                },
                Some(Node::Leaf(_)) => return Held::Other,
                Some(Node::Array(_)) | None => return Held::Nothing,
            }
        }
        match self.nodes.get(node) {
            None => Held::Nothing,
            Some(Node::Array(items)) => Held::List(items),
            Some(_) => Held::Other,
        }
    }

    /// The text a field holds, when it holds a text.
    pub(crate) fn text_at(&self, object: usize, parts: &[Key]) -> Option<&str> {
        let node = self.lookup(object, parts)?;
        match self.nodes.get(node)? {
            Node::Leaf(Leaf::Text(text)) => Some(text),
            Node::Leaf(Leaf::Json(Value::String(text))) => Some(text),
            _ => None,
        }
    }

    /// Where the items of the list field `parts` go: after those already
    /// there (0 for a new list); `None` when the field holds something
    /// else, so items would be dropped.
    pub(crate) fn list_start(&self, object: usize, parts: &[Key]) -> Option<usize> {
        match self.at(object, parts) {
            Held::Nothing => Some(0),
            Held::List(items) => Some(items.len()),
            Held::Other => None,
        }
    }

    /// True when `leaf` equals an item of the list `items`.
    pub(crate) fn holds(&self, items: &[usize], leaf: &Leaf<'_>) -> bool {
        items.iter().any(|id| match self.nodes.get(*id) {
            Some(Node::Leaf(l)) => l.same(leaf),
            // A JSON object or array, spread into nodes.
            Some(_) => self.value_of(*id) == leaf.to_value(),
            None => false,
        })
    }

    /// The object at the steps `path` below `object`, created on the way;
    /// `None` when a step holds something that is not an object.
    fn parent(&mut self, object: usize, path: &[Key]) -> Option<usize> {
        let mut node = object;
        for part in path {
            node = match self.child(node, part) {
                Some(id) if matches!(self.nodes.get(id), Some(Node::Object(_))) => id,
                Some(_) => return None,
                None => {
                    let id = self.object();
                    self.insert(node, part, id);
                    id
                }
            };
        }
        Some(node)
    }

    fn insert(&mut self, object: usize, key: Key, id: usize) {
        if let Some(Node::Object(fields)) = self.nodes.get_mut(object) {
            fields.push((key, id));
        }
    }

    /// Sets a field given as its steps to the node `make` builds, creating
    /// objects on the way; the first value set wins (`make` runs only
    /// when the field is free), and nothing is set under a non-object.
    fn set(&mut self, object: usize, parts: &[Key], make: impl FnOnce(&mut Self) -> usize) {
        let Some((last, path)) = parts.split_last() else {
            return;
        };
        let Some(parent) = self.parent(object, path) else {
            return;
        };
        if self.child(parent, last).is_none() {
            let id = make(self);
            self.insert(parent, last, id);
        }
    }

    /// Sets a field to the node `id` (see [`set`](Self::set)).
    pub(crate) fn put_node(&mut self, object: usize, parts: &[Key], id: usize) {
        self.set(object, parts, |_| id);
    }

    /// Sets a field to a JSON value set whole, a constant (see
    /// [`spread`](Self::spread) and [`set`](Self::set)).
    pub(crate) fn put_whole(&mut self, object: usize, parts: &[Key], value: Value) {
        self.set(object, parts, |draft| draft.spread(value));
    }

    /// Sets a field to a value (see [`set`](Self::set)).
    pub(crate) fn put(&mut self, object: usize, parts: &[Key], leaf: Leaf<'a>) {
        self.set(object, parts, |draft| draft.leaf(leaf));
    }

    /// Appends values to the list field `parts` (created when absent; a
    /// field holding something else keeps it).
    pub(crate) fn append_leaves(
        &mut self,
        object: usize,
        parts: &[Key],
        leaves: impl IntoIterator<Item = Leaf<'a>>,
    ) {
        let ids: Vec<usize> = leaves.into_iter().map(|leaf| self.leaf(leaf)).collect();
        self.append(object, parts, ids);
    }

    /// Appends nodes to the list field `parts` (created when absent; a
    /// field holding something else keeps it).
    pub(crate) fn append(&mut self, object: usize, parts: &[Key], items: Vec<usize>) {
        if items.is_empty() {
            return;
        }
        match self.lookup(object, parts) {
            Some(id) => {
                if let Some(Node::Array(existing)) = self.nodes.get_mut(id) {
                    existing.extend(items);
                }
            }
            None => {
                self.nodes.push(Node::Array(items));
                let id = self.nodes.len() - 1;
                self.put_node(object, parts, id);
            }
        }
    }

    /// The draft as a JSON object.
    pub(crate) fn into_value(mut self) -> Value {
        self.take(ROOT)
    }

    fn take(&mut self, id: usize) -> Value {
        let node = match self.nodes.get_mut(id) {
            Some(node) => std::mem::replace(node, Node::Array(Vec::new())),
            None => return Value::Null,
        };
        match node {
            Node::Object(fields) => {
                let map: Map<String, Value> = fields
                    .into_iter()
                    .map(|(key, id)| (key.to_owned(), self.take(id)))
                    .collect();
                Value::Object(map)
            }
            Node::Array(items) => Value::Array(items.into_iter().map(|id| self.take(id)).collect()),
            Node::Leaf(Leaf::Text(text)) => Value::String(text.into_owned()),
            Node::Leaf(Leaf::Json(value)) => value,
        }
    }

    /// The typed object the draft describes, as `serde_json::from_value`
    /// would read it from [`into_value`](Self::into_value) (same errors),
    /// an error with the JSON pointer of the object or value it is about.
    /// Of several errors, the one reported is the one the JSON tree gives
    /// (its maps are in name order): after a failure the fields are put
    /// in name order and read again (a success does not depend on it).
    pub(crate) fn deserialize_into<T: DeserializeOwned>(&mut self) -> Result<T, Incomplete> {
        if let Ok(typed) = self.read() {
            return Ok(typed);
        }
        for node in &mut self.nodes {
            if let Node::Object(fields) = node {
                fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
            }
        }
        self.read()
    }

    fn read<T: DeserializeOwned>(&self) -> Result<T, Incomplete> {
        let trail = RefCell::new(Vec::new());
        T::deserialize(At {
            draft: self,
            id: ROOT,
            trail: &trail,
        })
        .map_err(|error| {
            // The steps were recorded on the way out: innermost first.
            let mut pointer = String::new();
            for step in trail.borrow().iter().rev() {
                pointer.push('/');
                match step {
                    Step::Field(key) => {
                        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"))
                    }
                    Step::Item(index) => pointer.push_str(&index.to_string()),
                }
            }
            Incomplete {
                error,
                pointer,
                gaps: Vec::new(),
                rest: None,
            }
        })
    }
}

/// Why a draft is not the typed object asked for: serde's error, and the
/// JSON pointer of the object or value it is about (`/goods/2/duties/0`
/// for a duty without a field it needs; empty for the object itself).
#[derive(Debug)]
pub struct Incomplete {
    pub error: serde_json::Error,
    pub pointer: String,
    /// Every gap of the object, this one first (see [`super::gaps`]);
    /// empty when not looked for.
    pub gaps: Vec<super::Gap>,
    /// The object without its gaps, when they can be left out.
    pub rest: Option<super::Partial>,
}

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}", self.error)
        } else {
            write!(f, "{} (at {})", self.error, self.pointer)
        }
    }
}

/// One step of the way to where deserializing failed.
enum Step {
    Field(Key),
    Item(usize),
}

/// What a field of a draft holds.
pub(crate) enum Held<'d> {
    Nothing,
    List(&'d [usize]),
    Other,
}

/// A node of a draft, as a serde deserializer.
#[derive(Clone, Copy)]
struct At<'d, 'a> {
    draft: &'d Draft<'a>,
    id: usize,
    /// Where an error came from, recorded as it passes each level.
    trail: &'d RefCell<Vec<Step>>,
}

impl<'d, 'a> At<'d, 'a> {
    fn node(&self) -> Option<&'d Node<'a>> {
        self.draft.nodes.get(self.id)
    }
}

impl<'de> de::Deserializer<'de> for At<'de, '_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.node() {
            // As serde_json: entries the visitor leaves unread are an error.
            Some(Node::Object(fields)) => {
                let mut access = Fields {
                    draft: self.draft,
                    fields: fields.iter(),
                    value: None,
                    trail: self.trail,
                };
                let value = visitor.visit_map(&mut access)?;
                match access.fields.len() {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(
                        fields.len(),
                        &"fewer elements in map",
                    )),
                }
            }
            Some(Node::Array(items)) => {
                let mut access = Items {
                    draft: self.draft,
                    items: items.iter(),
                    next: 0,
                    trail: self.trail,
                };
                let value = visitor.visit_seq(&mut access)?;
                match access.items.len() {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(
                        items.len(),
                        &"fewer elements in array",
                    )),
                }
            }
            Some(Node::Leaf(Leaf::Text(text))) => visitor.visit_str(text),
            Some(Node::Leaf(Leaf::Json(value))) => {
                de::Deserializer::deserialize_any(value, visitor)
            }
            None => visitor.visit_unit(),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.node() {
            Some(Node::Leaf(Leaf::Json(Value::Null))) | None => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.node() {
            Some(Node::Leaf(Leaf::Text(text))) => {
                let text: &str = text;
                let unit: de::value::StrDeserializer<'_, serde_json::Error> =
                    text.into_deserializer();
                de::Deserializer::deserialize_enum(unit, name, variants, visitor)
            }
            Some(Node::Leaf(Leaf::Json(value))) => {
                de::Deserializer::deserialize_enum(value, name, variants, visitor)
            }
            // An object or array: as the JSON tree reads it.
            _ => de::Deserializer::deserialize_enum(
                self.draft.value_of(self.id),
                name,
                variants,
                visitor,
            ),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// Deserializes the node `id`, reached from its parent by `step`, which
/// is recorded in `trail` when it fails.
fn below<'de, S: de::DeserializeSeed<'de>>(
    draft: &'de Draft<'_>,
    trail: &'de RefCell<Vec<Step>>,
    id: usize,
    step: Step,
    seed: S,
) -> Result<S::Value, serde_json::Error> {
    seed.deserialize(At { draft, id, trail })
        .inspect_err(|_| trail.borrow_mut().push(step))
}

struct Fields<'d, 'a> {
    draft: &'d Draft<'a>,
    fields: std::slice::Iter<'d, (Key, usize)>,
    /// The field whose value is next.
    value: Option<(Key, usize)>,
    trail: &'d RefCell<Vec<Step>>,
}

impl<'de> MapAccess<'de> for Fields<'de, '_> {
    type Error = serde_json::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, id)) = self.fields.next() else {
            return Ok(None);
        };
        self.value = Some((key, *id));
        let key: de::value::StrDeserializer<'_, serde_json::Error> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let (key, id) = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value asked for before its key"))?;
        below(self.draft, self.trail, id, Step::Field(key), seed)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len())
    }
}

struct Items<'d, 'a> {
    draft: &'d Draft<'a>,
    items: std::slice::Iter<'d, usize>,
    /// The index of the next item.
    next: usize,
    trail: &'d RefCell<Vec<Step>>,
}

impl<'de> SeqAccess<'de> for Items<'de, '_> {
    type Error = serde_json::Error;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        let Some(id) = self.items.next() else {
            return Ok(None);
        };
        let index = self.next;
        self.next += 1;
        below(self.draft, self.trail, *id, Step::Item(index), seed).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Declaration;

    fn parts(dotted: &str) -> Vec<Key> {
        dotted.split('.').map(intern).collect()
    }

    #[test]
    fn first_value_wins_and_lists_append() {
        let (a, b, list) = (parts("a.b"), parts("a.c"), parts("items"));
        let deeper = parts("a.b.deeper");
        let mut draft = Draft::new();
        draft.put(ROOT, &a, Leaf::Text("one".into()));
        draft.put(ROOT, &a, Leaf::Text("two".into()));
        draft.put(ROOT, &b, Leaf::Json(Value::from(3)));
        draft.append_leaves(ROOT, &list, [Leaf::Text("x".into())]);
        draft.append_leaves(ROOT, &list, [Leaf::Text("y".into())]);
        // A value under a field that holds text is dropped.
        draft.put(ROOT, &deeper, Leaf::Text("lost".into()));
        assert_eq!(draft.list_start(ROOT, &list), Some(2));
        assert_eq!(draft.list_start(ROOT, &a), None);
        assert_eq!(
            draft.into_value(),
            serde_json::json!({"a": {"b": "one", "c": 3}, "items": ["x", "y"]})
        );
    }

    #[test]
    fn deserializes_as_the_json_tree_does() {
        let fields = [
            (parts("function"), Leaf::Text("original".into())),
            (parts("kind"), Leaf::Text("import".into())),
            (parts("lrn"), Leaf::Text("LRN-1".into())),
            (parts("declarant.name"), Leaf::Text("Broker".into())),
            (parts("totals.invoice.value"), Leaf::Text("12.50".into())),
            (parts("totals.invoice.currency"), Leaf::Text("EUR".into())),
        ];
        let goods = parts("goods");
        let seq = parts("sequence");
        let hs = parts("hs_code");
        let mut draft = Draft::new();
        for (to, leaf) in &fields {
            draft.put(ROOT, to, leaf.clone());
        }
        let item = draft.object();
        draft.put(item, &seq, Leaf::Json(Value::from(1)));
        draft.put(item, &hs, Leaf::Text("300490".into()));
        draft.append(ROOT, &goods, vec![item]);
        let direct = draft
            .deserialize_into::<Declaration>()
            .map(|d| serde_json::to_value(d).unwrap_or_default())
            .map_err(|e| e.error);
        let through_json = serde_json::from_value::<Declaration>(draft.into_value())
            .map(|d| serde_json::to_value(d).unwrap_or_default());
        // Both succeed (errors are the next test's), and agree.
        let direct = direct.unwrap();
        assert_eq!(direct["totals"]["invoice"]["value"], "12.50", "{direct}");
        assert_eq!(direct["goods"][0]["hs_code"], "300490", "{direct}");
        assert_eq!(direct, through_json.unwrap());
    }

    #[test]
    fn errors_read_as_those_of_the_json_tree() {
        // A missing required field, and a text where a number belongs.
        let kind = parts("kind");
        let mut draft = Draft::new();
        draft.put(ROOT, &kind, Leaf::Text("import".into()));
        let direct = draft
            .deserialize_into::<Declaration>()
            .err()
            .map(|e| e.error.to_string());
        let through_json = serde_json::from_value::<Declaration>(draft.into_value())
            .err()
            .map(|e| e.to_string());
        assert!(direct.is_some());
        assert_eq!(direct, through_json);
        // Located at the object that lacks the field: the root.
        let kind = parts("kind");
        let mut draft = Draft::new();
        draft.put(ROOT, &kind, Leaf::Text("import".into()));
        let error = draft.deserialize_into::<Declaration>().err();
        assert_eq!(error.as_ref().map(|e| e.pointer.as_str()), Some(""));

        let goods = parts("goods");
        let seq = parts("sequence");
        let mut draft = Draft::new();
        let item = draft.object();
        draft.put(item, &seq, Leaf::Text("one".into()));
        draft.append(ROOT, &goods, vec![item]);
        // Located at the value.
        let pointer = draft
            .deserialize_into::<Declaration>()
            .err()
            .map(|e| e.pointer);
        assert_eq!(pointer.as_deref(), Some("/goods/0/sequence"));
        let direct = draft
            .deserialize_into::<Declaration>()
            .err()
            .map(|e| e.error.to_string());
        let through_json = serde_json::from_value::<Declaration>(draft.into_value())
            .err()
            .map(|e| e.to_string());
        assert!(direct.is_some());
        assert_eq!(direct, through_json);
    }

    #[test]
    fn an_item_without_a_required_field_is_pointed_at() {
        let (goods, hs) = (parts("goods"), parts("hs_code"));
        let mut draft = Draft::new();
        let item = draft.object();
        draft.put(item, &hs, Leaf::Text("300490".into()));
        let second = draft.object();
        draft.put(second, &hs, Leaf::Text("300490".into()));
        draft.append(ROOT, &goods, vec![item, second]);
        // The root lacks its required fields too, but those are found
        // missing only at its end; its goods are read before that, and
        // the first item fails first.
        let error = draft.deserialize_into::<Declaration>().err();
        assert_eq!(error.as_ref().map(|e| e.pointer.as_str()), Some("/goods/0"));
        assert!(error.is_some_and(|e| e.error.to_string().contains("missing field `sequence`")),);
    }

    /// Of several errors the one the JSON tree meets first (its maps are
    /// in name order) is reported, whatever order the rules set fields in.
    #[test]
    fn of_several_errors_the_same_comes_first() {
        let (value, goods, hs) = (
            parts("totals.invoice.value"),
            parts("goods"),
            parts("hs_code"),
        );
        let mut draft = Draft::new();
        // Set first: an invoice amount without its currency; then a goods
        // item without its number ("goods" sorts before "totals").
        draft.put(ROOT, &value, Leaf::Text("10".into()));
        let item = draft.object();
        draft.put(item, &hs, Leaf::Text("300490".into()));
        draft.append(ROOT, &goods, vec![item]);
        let direct = draft.deserialize_into::<Declaration>().err();
        let through_json = serde_json::from_value::<Declaration>(draft.into_value()).err();
        assert_eq!(
            direct.as_ref().map(|e| e.error.to_string()),
            through_json.map(|e| e.to_string())
        );
        assert_eq!(direct.map(|e| e.pointer).as_deref(), Some("/goods/0"));
    }

    /// A JSON object set whole (a table constant) is seen into by later
    /// rules, as in the JSON tree: its fields stay, new ones join. A value
    /// such as a date is not: a rule for a field inside it finds it taken.
    #[test]
    fn a_json_object_set_whole_can_be_added_to() {
        let (place, inner, other) = (parts("a"), parts("a.b"), parts("a.c"));
        let mut draft = Draft::new();
        draft.put_whole(
            ROOT,
            &place,
            serde_json::json!({"b": "kept", "list": [1, 2]}),
        );
        // Still equal, as a whole, to the value it was set to.
        let whole = draft.lookup(ROOT, &place).unwrap_or(usize::MAX);
        let same = Leaf::Json(serde_json::json!({"b": "kept", "list": [1, 2]}));
        assert!(draft.holds(&[whole], &same));
        assert!(matches!(draft.at(ROOT, &inner), Held::Other));
        draft.put(ROOT, &inner, Leaf::Text("ignored".into()));
        draft.put(ROOT, &other, Leaf::Text("added".into()));
        let list = parts("a.list");
        assert_eq!(draft.list_start(ROOT, &list), Some(2));
        draft.append_leaves(ROOT, &list, [Leaf::Json(Value::from(3))]);
        let (date, iso) = (parts("d"), parts("d.iso"));
        draft.put(
            ROOT,
            &date,
            Leaf::Json(serde_json::json!({"iso": "2026-11-26"})),
        );
        assert!(matches!(draft.at(ROOT, &iso), Held::Other));
        assert_eq!(
            draft.into_value(),
            serde_json::json!({
                "a": {"b": "kept", "c": "added", "list": [1, 2, 3]},
                "d": {"iso": "2026-11-26"}
            })
        );
    }
}
