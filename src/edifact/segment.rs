//! Decoded segments: the owned, UTF-8 form of a segment that the interchange
//! tree, the writer and the structure validator work on.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// One data element of a segment: a simple element is one component, a
/// composite several. In syntax version 4 an element may repeat; every
/// element has at least one repetition and every repetition at least one
/// component (possibly empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Element {
    repetitions: Vec<Vec<String>>,
}

impl Element {
    /// A simple data element.
    pub fn simple(value: impl Into<String>) -> Self {
        Element {
            repetitions: vec![vec![value.into()]],
        }
    }

    /// A composite data element from its components (an empty list gives one
    /// empty component).
    pub fn composite<I, S>(components: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut comps: Vec<String> = components.into_iter().map(Into::into).collect();
        if comps.is_empty() {
            comps.push(String::new());
        }
        Element {
            repetitions: vec![comps],
        }
    }

    /// A repeated element from its repetitions; empty lists are normalised as
    /// in [`Element::composite`].
    pub fn repeated(repetitions: Vec<Vec<String>>) -> Self {
        let mut reps = repetitions;
        for r in &mut reps {
            if r.is_empty() {
                r.push(String::new());
            }
        }
        if reps.is_empty() {
            reps.push(vec![String::new()]);
        }
        Element { repetitions: reps }
    }

    /// All repetitions (at least one).
    pub fn repetitions(&self) -> &[Vec<String>] {
        &self.repetitions
    }

    /// Components of the first repetition.
    pub fn components(&self) -> &[String] {
        self.repetitions.first().map(Vec::as_slice).unwrap_or(&[])
    }

    /// Component `index` (0-based) of the first repetition, if present.
    pub fn component(&self, index: usize) -> Option<&str> {
        self.components().get(index).map(String::as_str)
    }

    /// The first component of the first repetition (the value of a simple element).
    pub fn value(&self) -> &str {
        self.component(0).unwrap_or("")
    }

    /// True when every component of every repetition is empty.
    pub fn is_empty(&self) -> bool {
        self.repetitions.iter().flatten().all(String::is_empty)
    }
}

impl Serialize for Element {
    /// A single repetition serialises as the array of its components; a
    /// repeated element as `{"repetitions": [[...], ...]}` (docs/formats.md).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let [only] = self.repetitions.as_slice() {
            let mut seq = s.serialize_seq(Some(only.len()))?;
            for c in only {
                seq.serialize_element(c)?;
            }
            seq.end()
        } else {
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry("repetitions", &self.repetitions)?;
            map.end()
        }
    }
}

/// A segment: tag and data elements, values decoded to UTF-8 with release
/// characters removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Segment {
    pub tag: String,
    pub elements: Vec<Element>,
}

impl Segment {
    pub fn new(tag: impl Into<String>, elements: Vec<Element>) -> Self {
        Segment {
            tag: tag.into(),
            elements,
        }
    }

    /// Element `index` (0-based), if present.
    pub fn element(&self, index: usize) -> Option<&Element> {
        self.elements.get(index)
    }

    /// Component `component` (0-based) of element `element` (0-based), first
    /// repetition; `None` when absent, `Some("")` never (empty counts as absent).
    pub fn get(&self, element: usize, component: usize) -> Option<&str> {
        self.element(element)?
            .component(component)
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_json_shapes() {
        let seg = Segment::new(
            "NAD",
            vec![
                Element::simple("CZ"),
                Element::composite(["ID", "", "9"]),
                Element::repeated(vec![vec!["A".into()], vec!["B".into(), "C".into()]]),
            ],
        );
        assert_eq!(
            serde_json::to_string(&seg).unwrap(),
            r#"{"tag":"NAD","elements":[["CZ"],["ID","","9"],{"repetitions":[["A"],["B","C"]]}]}"#
        );
        assert_eq!(seg.get(1, 2), Some("9"));
        assert_eq!(seg.get(1, 1), None);
        assert_eq!(seg.get(5, 0), None);
    }
}
