//! The streaming guard every XML document passes before anything else sees it:
//! one quick-xml pass with namespaces resolved that enforces the configured
//! limits, refuses DTDs (so no external entity is ever fetched and no entity is
//! ever expanded), checks the encoding and well-formedness, and reads the few
//! header fields the hub needs (which document it is, its function code and
//! references, how many goods items). It never builds a tree: memory is the
//! element stack, bounded by the depth limit.

use memchr::memchr_iter;
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use serde::{Deserialize, Serialize};

use crate::diag::{Code, Issue, Location};

/// Namespace of WCO DEC-DMS declarations.
pub const NS_DECLARATION: &str = "urn:wco:datamodel:WCO:DEC-DMS:2";
/// Namespace of WCO RES-DMS responses.
pub const NS_RESPONSE: &str = "urn:wco:datamodel:WCO:RES-DMS:2";
/// Namespace of the DocumentMetaData wrapper.
pub const NS_METADATA: &str = "urn:wco:datamodel:WCO:DocumentMetaData-DMS:2";

/// Limits on an XML document, checked before it is parsed any further.
/// Every one is a setting (`[xml]` in hub.toml, `--xml-*` flags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XmlLimits {
    /// Largest document accepted, in bytes.
    pub max_document_bytes: usize,
    /// Deepest element nesting accepted (the WCO schemas need about 12).
    pub max_depth: usize,
    /// Most elements in one document.
    pub max_elements: u64,
    /// Most attributes on one element.
    pub max_attributes: usize,
    /// Longest attribute value, in bytes.
    pub max_attribute_bytes: usize,
    /// Longest run of character data, in bytes.
    pub max_text_bytes: usize,
    /// Longest element or attribute name, in bytes (not a setting of the
    /// hub or the CLI: a fixed limit, like `max_names`).
    pub max_name_bytes: usize,
    /// Most distinct element and attribute names in one document (the WCO
    /// declaration schema has about 600; libxml2's name dictionary grows
    /// slower than linearly with more).
    pub max_names: usize,
    /// Most issues reported for one document; further ones are counted.
    pub max_issues: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits {
            max_document_bytes: 64 << 20,
            max_depth: 64,
            max_elements: 2_000_000,
            max_attributes: 64,
            max_attribute_bytes: 16 << 10,
            max_text_bytes: 1 << 20,
            max_name_bytes: 256,
            max_names: 4096,
            max_issues: 100,
        }
    }
}

/// What an XML document is, from its root (and, for a MetaData wrapper, the
/// wrapped element).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// A WCO DEC-DMS `Declaration`.
    Declaration,
    /// A WCO RES-DMS `Response`.
    Response,
    /// Anything else (wrong namespace, unknown root): validated against the
    /// declaration schema, which rejects it.
    Other,
}

/// The header of a document, read while it streams past.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentSummary {
    /// Declaration, response or other.
    pub kind: DocumentKind,
    /// True when the document is wrapped in DocumentMetaData `MetaData`.
    pub wrapped: bool,
    /// The root element as `{namespace}local`.
    pub root: String,
    /// `FunctionCode` of the declaration or response.
    pub function_code: Option<String>,
    /// `FunctionalReferenceID` (the LRN of a declaration).
    pub functional_reference_id: Option<String>,
    /// `TypeCode` of a declaration.
    pub type_code: Option<String>,
    /// `ID` of the declaration or response (an MRN once issued).
    pub id: Option<String>,
    /// Number of `GovernmentAgencyGoodsItem` elements.
    pub goods_items: u32,
    /// Number of elements read.
    pub elements: u64,
}

impl DocumentSummary {
    /// The summary of a document nothing was read of.
    pub fn empty() -> Self {
        DocumentSummary {
            kind: DocumentKind::Other,
            wrapped: false,
            root: String::new(),
            function_code: None,
            functional_reference_id: None,
            type_code: None,
            id: None,
            goods_items: 0,
            elements: 0,
        }
    }
}

/// The result of the guard pass.
#[derive(Debug, Clone)]
pub struct Scan {
    /// What was read of the header (as far as the document could be read).
    pub summary: DocumentSummary,
    /// Problems found, each located.
    pub issues: Vec<Issue>,
    /// True when a limit, a DTD or the encoding refused the document: it must
    /// not be handed to any other parser.
    pub refused: bool,
}

/// Tracks line and column of byte offsets, moving forward only.
struct Lines<'a> {
    doc: &'a [u8],
    counted_to: usize,
    line: u32,
    line_start: usize,
}

impl<'a> Lines<'a> {
    fn new(doc: &'a [u8]) -> Self {
        Lines {
            doc,
            counted_to: 0,
            line: 1,
            line_start: 0,
        }
    }

    /// Line and column (1-based, in bytes) of `pos`, which must not be before
    /// the last position asked for.
    fn at(&mut self, pos: usize) -> (u32, u32) {
        let pos = pos.min(self.doc.len());
        if pos > self.counted_to {
            let slice = self.doc.get(self.counted_to..pos).unwrap_or_default();
            for i in memchr_iter(b'\n', slice) {
                self.line += 1;
                self.line_start = self.counted_to + i + 1;
            }
            self.counted_to = pos;
        }
        (self.line, (pos.saturating_sub(self.line_start) + 1) as u32)
    }
}

/// Same-named children counted so far: (name, count).
/// Same-named children of an element counted so far: a short list while
/// the names are few, a hash map (randomly seeded: the names are the
/// sender's) once they are many, so that a document whose elements have
/// thousands of distinct children costs no more than a list per name.
#[derive(Debug, Default)]
struct Children {
    few: Vec<(Box<str>, u32)>,
    many: Option<std::collections::HashMap<Box<str>, u32>>,
}

/// Distinct names kept in a list before the counts move to a map.
const FEW_NAMES: usize = 16;

impl Children {
    /// One more child named `local`: its 1-based index among its
    /// same-named siblings.
    fn next(&mut self, local: &str) -> u32 {
        if let Some(many) = &mut self.many {
            let count = many.entry(local.into()).or_insert(0);
            *count += 1;
            return *count;
        }
        if let Some(entry) = self.few.iter_mut().find(|(name, _)| &**name == local) {
            entry.1 += 1;
            return entry.1;
        }
        if self.few.len() >= FEW_NAMES {
            let mut many: std::collections::HashMap<Box<str>, u32> = self.few.drain(..).collect();
            many.insert(local.into(), 1);
            self.many = Some(many);
            return 1;
        }
        self.few.push((local.into(), 1));
        1
    }

    /// How many children named `local` were counted.
    fn count(&self, local: &str) -> u32 {
        match &self.many {
            Some(many) => many.get(local).copied().unwrap_or(0),
            None => self
                .few
                .iter()
                .find(|(name, _)| &**name == local)
                .map_or(0, |(_, count)| *count),
        }
    }
}

/// One step of an element path: (element ordinal, local name, index).
type Step = (u64, Box<str>, u32);

/// One open element.
struct Open {
    /// Position of the element in document order (locating pass only).
    ordinal: u64,
    local: Box<str>,
    /// 1-based position among same-named siblings.
    index: u32,
    /// Same-named children seen so far.
    children: Children,
}

fn child_index(children: &mut Children, local: &str) -> u32 {
    children.next(local)
}

/// The element path of the open elements, `[n]` written from the second
/// same-named sibling on (the guard cannot know later siblings).
fn stack_path(stack: &[Open]) -> String {
    let mut path = String::new();
    for open in stack {
        path.push('/');
        path.push_str(&open.local);
        if open.index > 1 {
            path.push_str(&format!("[{}]", open.index));
        }
    }
    path
}

/// What is wrong with a name (qualified, as written) under the limits, if
/// anything: too long, or one distinct name too many. Records it.
fn name_problem(
    names: &mut std::collections::HashSet<Vec<u8>>,
    name: &[u8],
    limits: &XmlLimits,
) -> Option<String> {
    if name.len() > limits.max_name_bytes {
        let shown: String = String::from_utf8_lossy(name).chars().take(40).collect();
        return Some(format!(
            "name {shown}… is {} bytes long; the limit is {}",
            name.len(),
            limits.max_name_bytes
        ));
    }
    if !names.contains(name) {
        if names.len() >= limits.max_names {
            return Some(format!(
                "names: more than {} distinct element and attribute names",
                limits.max_names
            ));
        }
        names.insert(name.to_vec());
    }
    None
}

fn is_utf8_label(label: &[u8]) -> bool {
    let label = String::from_utf8_lossy(label).to_ascii_lowercase();
    matches!(label.trim(), "utf-8" | "utf8") || is_ascii_label(label.as_bytes())
}

/// An encoding label naming ASCII (a subset of UTF-8, as long as the
/// document holds no byte over 0x7F).
fn is_ascii_label(label: &[u8]) -> bool {
    let label = String::from_utf8_lossy(label).to_ascii_lowercase();
    matches!(label.trim(), "us-ascii" | "ascii")
}

/// The longest text kept of a header field the guard captures (the WCO
/// types allow at most 70 characters): a longer one is cut with `…`, so
/// that a flood in one element does not fill the summary and the output
/// that prints it.
const CAPTURED_MAX: usize = 256;

fn predefined(name: &[u8]) -> Option<char> {
    Some(match name {
        b"lt" => '<',
        b"gt" => '>',
        b"amp" => '&',
        b"apos" => '\'',
        b"quot" => '"',
        _ => return None,
    })
}

/// The header field an element's text is captured into, if any.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    FunctionCode,
    Reference,
    TypeCode,
    Id,
}

/// Runs the guard pass over a whole document held in memory.
pub fn scan(doc: &[u8], limits: &XmlLimits) -> Scan {
    let mut scan = Scan {
        summary: DocumentSummary::empty(),
        issues: Vec::new(),
        refused: false,
    };
    if doc.len() > limits.max_document_bytes {
        scan.refused = true;
        scan.issues.push(Issue::error(
            Code::XmlTooLarge,
            Location::at_offset(limits.max_document_bytes as u64),
            format!(
                "document of {} bytes exceeds the limit of {} bytes",
                doc.len(),
                limits.max_document_bytes
            ),
        ));
        return scan;
    }
    let mut lines = Lines::new(doc);
    let located = |lines: &mut Lines, pos: usize, path: Option<String>| {
        let (line, column) = lines.at(pos);
        Location {
            offset: Some(pos as u64),
            line: Some(line),
            column: Some(column),
            path,
            ..Default::default()
        }
    };
    let wide = crate::bom::byte_order_mark(doc)
        .filter(|m| m.is_wide())
        .map(|m| m.family());
    if let Some(encoding) = wide {
        scan.refused = true;
        scan.issues.push(Issue::error(
            Code::XmlEncoding,
            located(&mut lines, 0, None),
            format!("document is {encoding} (byte order mark); tradehub accepts UTF-8 XML only"),
        ));
        return scan;
    }
    if let Some(family) = crate::bom::unmarked_wide_xml(doc) {
        scan.refused = true;
        scan.issues.push(Issue::error(
            Code::XmlEncoding,
            located(&mut lines, 0, None),
            format!(
                "document looks like {family} without a byte order mark (NUL bytes beside its first '<'); tradehub accepts UTF-8 XML only"
            ),
        ));
        return scan;
    }
    if let Err(e) = std::str::from_utf8(doc) {
        scan.refused = true;
        let at = e.valid_up_to();
        scan.issues.push(Issue::error(
            Code::XmlEncoding,
            located(&mut lines, at, None),
            match e.error_len() {
                None => format!(
                    "the document ends inside a UTF-8 character at offset {at} (truncated?)"
                ),
                Some(_) => format!(
                    "byte 0x{:02X} at offset {at} is not UTF-8; tradehub accepts UTF-8 XML only",
                    doc.get(at).copied().unwrap_or(0)
                ),
            },
        ));
        return scan;
    }

    let mut reader = NsReader::from_reader(doc);
    {
        let config = reader.config_mut();
        config.check_comments = true;
        config.check_end_names = true;
        config.expand_empty_elements = false;
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut top_children = Children::default();
    let mut names: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    let mut root_seen = false;
    let mut root_closed = false;
    // Depth of the Declaration/Response element (1 bare, 2 wrapped).
    let mut document_depth: Option<usize> = None;
    let mut capturing: Option<(Field, String)> = None;
    let mut text_run = 0usize;

    loop {
        let before = reader.buffer_position() as usize;
        let event = match reader.read_resolved_event() {
            Ok((ns, event)) => {
                let namespace = match ns {
                    ResolveResult::Bound(ns) => {
                        Some(String::from_utf8_lossy(ns.as_ref()).into_owned())
                    }
                    _ => None,
                };
                (namespace, event)
            }
            Err(e) => {
                let pos = reader.error_position() as usize;
                let path = Some(stack_path(&stack)).filter(|p| !p.is_empty());
                scan.issues.push(Issue::error(
                    Code::XmlNotWellFormed,
                    located(&mut lines, pos, path),
                    format!("not well-formed: {e}"),
                ));
                return scan;
            }
        };
        let (namespace, event) = event;
        // The character data of one element, counted across the comments
        // and processing instructions between its pieces (which libxml2
        // joins into one value, at a cost that grows with the square of
        // the pieces): only an element boundary starts a new run. Comments
        // and instructions count too, so they are bounded as well.
        if matches!(event, Event::Start(_) | Event::Empty(_) | Event::End(_)) {
            text_run = 0;
        }
        match event {
            Event::DocType(_) => {
                scan.refused = true;
                scan.issues.push(Issue::error(
                    Code::XmlDtd,
                    located(&mut lines, before, None),
                    "document type declarations (DTDs) are refused: no DTD, external entity or entity expansion is processed",
                ));
                return scan;
            }
            Event::Decl(decl) => {
                // The text after a UTF-8 mark, if any (wide ones were
                // refused above).
                let text_from = crate::bom::byte_order_mark(doc).map_or(0, |m| m.bytes.len());
                if let Some(Ok(label)) = decl.encoding()
                    && is_ascii_label(&label)
                    && let Some(at) = doc
                        .iter()
                        .skip(text_from)
                        .position(|b| !b.is_ascii())
                        .map(|at| at + text_from)
                {
                    // UTF-8 read as ASCII: libxml2 stops at the first byte
                    // over 0x7F with a message about something else.
                    scan.refused = true;
                    scan.issues.push(Issue::error(
                        Code::XmlEncoding,
                        located(&mut lines, at, None),
                        format!(
                            "document declares encoding \"{}\" but byte 0x{:02X} at offset {at} is not ASCII; declare UTF-8",
                            String::from_utf8_lossy(&label),
                            doc.get(at).copied().unwrap_or(0)
                        ),
                    ));
                    return scan;
                }
                if let Some(Ok(label)) = decl.encoding()
                    && !is_utf8_label(&label)
                {
                    scan.refused = true;
                    scan.issues.push(Issue::error(
                        Code::XmlEncoding,
                        located(&mut lines, before, None),
                        format!(
                            "document declares encoding \"{}\"; tradehub accepts UTF-8 XML only",
                            String::from_utf8_lossy(&label)
                        ),
                    ));
                    return scan;
                }
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                let is_empty = matches!(event, Event::Empty(_));
                let local = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if root_closed || (stack.is_empty() && root_seen) {
                    scan.issues.push(Issue::error(
                        Code::XmlNotWellFormed,
                        located(&mut lines, before, None),
                        format!("not well-formed: element <{local}> after the end of the root element (extra content at the end of the document)"),
                    ));
                    return scan;
                }
                scan.summary.elements += 1;
                if scan.summary.elements > limits.max_elements {
                    scan.refused = true;
                    scan.issues.push(Issue::error(
                        Code::XmlTooManyElements,
                        located(&mut lines, before, Some(stack_path(&stack))),
                        format!("more than {} elements", limits.max_elements),
                    ));
                    return scan;
                }
                if stack.len() + 1 > limits.max_depth {
                    scan.refused = true;
                    scan.issues.push(Issue::error(
                        Code::XmlTooDeep,
                        located(&mut lines, before, Some(stack_path(&stack))),
                        format!("elements nested deeper than {} levels", limits.max_depth),
                    ));
                    return scan;
                }
                if let Some(problem) = name_problem(&mut names, start.name().as_ref(), limits) {
                    scan.refused = true;
                    scan.issues.push(Issue::error(
                        Code::XmlNames,
                        located(&mut lines, before, Some(stack_path(&stack))),
                        format!("element {problem}"),
                    ));
                    return scan;
                }
                let index = match stack.last_mut() {
                    Some(parent) => child_index(&mut parent.children, &local),
                    None => child_index(&mut top_children, &local),
                };
                // The element's own path (it is not open yet), for what is
                // wrong with its attributes; built only then (a path per
                // element costs depth times name length, every element).
                let here = || {
                    let mut path = stack_path(&stack);
                    path.push('/');
                    path.push_str(&local);
                    if index > 1 {
                        path.push_str(&format!("[{index}]"));
                    }
                    path
                };
                let mut attributes = 0usize;
                for attribute in start.attributes() {
                    match attribute {
                        Ok(attribute) => {
                            attributes += 1;
                            if let Some(problem) =
                                name_problem(&mut names, attribute.key.as_ref(), limits)
                            {
                                scan.refused = true;
                                scan.issues.push(Issue::error(
                                    Code::XmlNames,
                                    located(&mut lines, before, Some(here())),
                                    format!("attribute {problem}"),
                                ));
                                return scan;
                            }
                            let name = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
                            if attributes > limits.max_attributes {
                                scan.refused = true;
                                scan.issues.push(Issue::error(
                                    Code::XmlAttributeTooLarge,
                                    located(&mut lines, before, Some(here())),
                                    format!(
                                        "element <{local}> has more than {} attributes",
                                        limits.max_attributes
                                    ),
                                ));
                                return scan;
                            }
                            if attribute.value.len() > limits.max_attribute_bytes {
                                scan.refused = true;
                                scan.issues.push(Issue::error(
                                    Code::XmlAttributeTooLarge,
                                    located(&mut lines, before, Some(format!("{}/@{name}", here()))),
                                    format!(
                                        "attribute {name} of <{local}> is {} bytes long; the limit is {}",
                                        attribute.value.len(),
                                        limits.max_attribute_bytes
                                    ),
                                ));
                                return scan;
                            }
                        }
                        Err(e) => {
                            scan.issues.push(Issue::error(
                                Code::XmlNotWellFormed,
                                located(&mut lines, before, Some(here())),
                                format!("not well-formed: attribute of <{local}>: {e}"),
                            ));
                            return scan;
                        }
                    }
                }
                let depth = stack.len() + 1;
                let ns = namespace.as_deref().unwrap_or("");
                if depth == 1 {
                    root_seen = true;
                    scan.summary.root = format!("{{{ns}}}{local}");
                    match (ns, local.as_str()) {
                        (NS_METADATA, "MetaData") => scan.summary.wrapped = true,
                        (NS_DECLARATION, "Declaration") => {
                            scan.summary.kind = DocumentKind::Declaration;
                            document_depth = Some(1);
                        }
                        (NS_RESPONSE, "Response") => {
                            scan.summary.kind = DocumentKind::Response;
                            document_depth = Some(1);
                        }
                        _ => {}
                    }
                } else if depth == 2 && scan.summary.wrapped && document_depth.is_none() {
                    match (ns, local.as_str()) {
                        (NS_DECLARATION, "Declaration") => {
                            scan.summary.kind = DocumentKind::Declaration;
                            document_depth = Some(2);
                        }
                        (NS_RESPONSE, "Response") => {
                            scan.summary.kind = DocumentKind::Response;
                            document_depth = Some(2);
                        }
                        (NS_METADATA, _) => {}
                        _ => document_depth = Some(usize::MAX),
                    }
                } else if let Some(doc_depth) = document_depth
                    && depth == doc_depth.saturating_add(1)
                    && (ns == NS_DECLARATION || ns == NS_RESPONSE)
                {
                    let field = match local.as_str() {
                        "FunctionCode" => Some(Field::FunctionCode),
                        "FunctionalReferenceID" => Some(Field::Reference),
                        "TypeCode" => Some(Field::TypeCode),
                        "ID" => Some(Field::Id),
                        _ => None,
                    };
                    capturing = field.filter(|_| !is_empty).map(|f| (f, String::new()));
                }
                if ns == NS_DECLARATION && local == "GovernmentAgencyGoodsItem" {
                    scan.summary.goods_items = scan.summary.goods_items.saturating_add(1);
                }
                if !is_empty {
                    stack.push(Open {
                        ordinal: 0,
                        local: local.into(),
                        index,
                        children: Children::default(),
                    });
                } else if stack.is_empty() {
                    root_closed = true;
                }
            }
            Event::End(_) => {
                if let Some((field, text)) = capturing.take() {
                    let mut text = text.trim().to_owned();
                    if text.len() > CAPTURED_MAX {
                        text.truncate(text.floor_char_boundary(CAPTURED_MAX));
                        text.push('…');
                    }
                    let slot = match field {
                        Field::FunctionCode => &mut scan.summary.function_code,
                        Field::Reference => &mut scan.summary.functional_reference_id,
                        Field::TypeCode => &mut scan.summary.type_code,
                        Field::Id => &mut scan.summary.id,
                    };
                    if slot.is_none() {
                        *slot = Some(text);
                    }
                }
                stack.pop();
                if stack.is_empty() {
                    root_closed = true;
                }
            }
            Event::Text(text) => {
                text_run += text.len();
                if stack.is_empty() && text.iter().any(|b| !b.is_ascii_whitespace()) {
                    let message = if root_closed {
                        "not well-formed: text after the end of the root element (extra content at the end of the document)"
                    } else {
                        "not well-formed: text before the root element"
                    };
                    scan.issues.push(Issue::error(
                        Code::XmlNotWellFormed,
                        located(&mut lines, before, None),
                        message,
                    ));
                    return scan;
                }
                if let Some((_, captured)) = capturing.as_mut() {
                    captured.push_str(&String::from_utf8_lossy(&text));
                }
            }
            Event::CData(data) => {
                text_run += data.len();
                if stack.is_empty() {
                    scan.issues.push(Issue::error(
                        Code::XmlNotWellFormed,
                        located(&mut lines, before, None),
                        "not well-formed: CDATA outside the root element",
                    ));
                    return scan;
                }
                if let Some((_, captured)) = capturing.as_mut() {
                    captured.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::GeneralRef(reference) => {
                text_run += reference.len() + 2;
                let resolved = if reference.is_char_ref() {
                    reference.resolve_char_ref().ok().flatten()
                } else {
                    predefined(&reference)
                };
                let Some(ch) = resolved else {
                    scan.issues.push(Issue::error(
                        Code::XmlNotWellFormed,
                        located(&mut lines, before, Some(stack_path(&stack))),
                        format!(
                            "not well-formed: entity &{}; is not defined (only the five predefined entities and character references are)",
                            String::from_utf8_lossy(&reference)
                        ),
                    ));
                    return scan;
                };
                if let Some((_, captured)) = capturing.as_mut() {
                    captured.push(ch);
                }
            }
            Event::Comment(comment) => text_run += comment.len() + 7,
            Event::PI(pi) => text_run += pi.len() + 4,
            Event::Eof => {
                if !stack.is_empty() {
                    scan.issues.push(Issue::error(
                        Code::XmlNotWellFormed,
                        located(&mut lines, doc.len(), Some(stack_path(&stack))),
                        format!(
                            "not well-formed: the document ends inside <{}> (truncated?)",
                            stack.last().map(|o| &*o.local).unwrap_or("")
                        ),
                    ));
                } else if !root_seen {
                    scan.issues.push(Issue::error(
                        Code::XmlNotWellFormed,
                        located(&mut lines, doc.len(), None),
                        "not well-formed: the document has no root element",
                    ));
                }
                return scan;
            }
        }
        if text_run > limits.max_text_bytes {
            scan.refused = true;
            scan.issues.push(Issue::error(
                Code::XmlTextTooLarge,
                located(&mut lines, before, Some(stack_path(&stack))),
                format!("character data longer than {} bytes", limits.max_text_bytes),
            ));
            return scan;
        }
    }
}

/// An element a libxml2 schema message names: the line libxml2 gives (the
/// line its parser was at, anywhere from the element's start tag to its
/// end tag), its local name, the attribute at fault, and the value the
/// message quotes or the length it says the value has, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub line: u32,
    pub local: String,
    pub attribute: Option<String>,
    pub value: Option<String>,
    pub length: Option<usize>,
}

/// An element that may be a target: where it is and what it holds.
struct Candidate<'t> {
    ordinal: u64,
    /// Its local name (a target's, borrowed).
    local: &'t str,
    column: u32,
    start_line: u32,
    end_line: u32,
    /// The byte after its end tag (its start tag, when empty).
    end: usize,
    /// Its own text (not its children's, without leading whitespace), no
    /// longer than what may still be a value a target of its name quotes.
    text: String,
    /// The length of its own text in characters, all of it.
    text_chars: usize,
    /// The values of the attributes some target names.
    attributes: Vec<(Box<str>, String)>,
    /// Closed, and beyond every target of its name's line: dropped.
    dead: bool,
}

/// Elements kept as possible targets in one locating pass (a few dozen
/// bytes each, their text bounded by the quoted values).
const MAX_CANDIDATES: usize = 100_000;

/// Where the elements named by libxml2 are: each target's start-tag line
/// and column and its full element path, with `[n]` on every step that has
/// same-named siblings. Run only for invalid documents: one pass chooses
/// the elements, a second builds the paths of those chosen only, so memory
/// stays bounded by the targets, not by the document.
///
/// libxml2's streaming validation gives a line but no column, and the line
/// is where its parser was: on a document written on one line, or for a
/// value that runs over several lines, several elements of the name (or
/// none whose start tag is on that line) fit. An element fits a target
/// when its name is the target's and the line falls between its start and
/// end tags; of those, the one holding the quoted value (or a value of the
/// length the message gives) is preferred; and since libxml2 reports as it
/// reads, each error once the element it is about has been read, the
/// element taken is the first one ending after the element the previous
/// target was found at.
pub(crate) fn locate(doc: &[u8], targets: &[Target]) -> Vec<Option<(u32, u32, String)>> {
    if targets.is_empty() {
        return Vec::new();
    }
    let candidates = candidates(doc, targets);
    let mut previous_end = 0usize;
    let chosen: Vec<Option<&Candidate>> = targets
        .iter()
        .map(|target| {
            let found = choose(&candidates, target, previous_end)?;
            previous_end = found.end;
            Some(found)
        })
        .collect();
    let ordinals: Vec<u64> = chosen.iter().flatten().map(|c| c.ordinal).collect();
    let paths = paths_of(doc, &ordinals);
    chosen
        .into_iter()
        .map(|c| {
            let c = c?;
            let path = paths.get(&c.ordinal)?.clone();
            Some((c.start_line, c.column, path))
        })
        .collect()
}

/// The elements that may be targets, in document order.
fn candidates<'t>(doc: &[u8], targets: &'t [Target]) -> Vec<Candidate<'t>> {
    // Per name: the first and last line a target of that name is on, and
    // the longest text worth keeping.
    let mut by_name: rustc_hash::FxHashMap<&str, (u32, u32, usize)> = Default::default();
    for t in targets {
        // Room for the value with longer runs of whitespace than quoted
        // (libxml2 may quote it collapsed): what is longer than this
        // cannot be it.
        let keep = t.value.as_ref().map_or(0, |v| 2 * v.len() + 64);
        let entry = by_name
            .entry(t.local.as_str())
            .or_insert((t.line, t.line, keep));
        entry.0 = entry.0.min(t.line);
        entry.1 = entry.1.max(t.line);
        entry.2 = entry.2.max(keep);
    }
    let wanted_attribute = |local: &str, attribute: &str| {
        targets
            .iter()
            .any(|t| t.local == local && t.attribute.as_deref() == Some(attribute))
    };
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut reader = NsReader::from_reader(doc);
    let mut lines = Lines::new(doc);
    // Per open element, the candidate it is (if it is one).
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut ordinal = 0u64;
    loop {
        let before = reader.buffer_position() as usize;
        let event = match reader.read_resolved_event() {
            Ok((_, event)) => event,
            Err(_) => break,
        };
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                ordinal += 1;
                let end = reader.buffer_position() as usize;
                let local = start.local_name();
                let local = String::from_utf8_lossy(local.as_ref());
                let mut candidate = None;
                if let Some((name, (_, last, _))) = by_name.get_key_value(&*local)
                    && candidates.len() < MAX_CANDIDATES
                {
                    // The event can begin before the tag (with the
                    // whitespace before it): the element starts at its `<`.
                    let raw = doc.get(before..end).unwrap_or_default();
                    let lt = before + memchr::memchr(b'<', raw).unwrap_or(0);
                    let (start_line, column) = lines.at(lt);
                    if start_line <= *last {
                        let tag = doc.get(lt..end).unwrap_or_default();
                        let tag_end_line = start_line + memchr_iter(b'\n', tag).count() as u32;
                        let mut attributes = Vec::new();
                        for attribute in start.attributes().flatten() {
                            let name = String::from_utf8_lossy(attribute.key.local_name().as_ref())
                                .into_owned();
                            if wanted_attribute(&local, &name) {
                                let value = attribute
                                    .unescape_value()
                                    .map(|v| v.into_owned())
                                    .unwrap_or_default();
                                attributes.push((name.into(), value));
                            }
                        }
                        candidate = Some(candidates.len());
                        candidates.push(Candidate {
                            ordinal,
                            local: name,
                            column,
                            start_line,
                            end_line: tag_end_line,
                            end,
                            text: String::new(),
                            text_chars: 0,
                            attributes,
                            dead: false,
                        });
                    }
                }
                if empty {
                    if let Some(c) = candidate {
                        close(&mut candidates, c, &by_name);
                    }
                } else {
                    open.push(candidate);
                }
            }
            Event::Text(ref text) => {
                if let Some(Some(c)) = open.last() {
                    keep_text(
                        &mut candidates,
                        *c,
                        &String::from_utf8_lossy(text),
                        &by_name,
                    );
                }
            }
            Event::CData(ref data) => {
                if let Some(Some(c)) = open.last() {
                    keep_text(
                        &mut candidates,
                        *c,
                        &String::from_utf8_lossy(data),
                        &by_name,
                    );
                }
            }
            Event::GeneralRef(ref reference) => {
                if let Some(Some(c)) = open.last() {
                    let resolved = if reference.is_char_ref() {
                        reference.resolve_char_ref().ok().flatten()
                    } else {
                        predefined(reference)
                    };
                    if let Some(ch) = resolved {
                        keep_text(&mut candidates, *c, ch.encode_utf8(&mut [0; 4]), &by_name);
                    }
                }
            }
            Event::End(_) => {
                let end = reader.buffer_position() as usize;
                if let Some(Some(c)) = open.pop() {
                    let (end_line, _) = lines.at(end);
                    if let Some(candidate) = candidates.get_mut(c) {
                        candidate.end_line = end_line;
                        candidate.end = end;
                    }
                    close(&mut candidates, c, &by_name);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    candidates.retain(|c| !c.dead);
    candidates
}

/// A candidate whose element has ended: dropped when it ends before the
/// first line a target of its name is on (it can fit none), and with it
/// the dead ones at the end of the list, so that the list holds only
/// elements that may still be a target.
fn close(
    candidates: &mut Vec<Candidate<'_>>,
    at: usize,
    by_name: &rustc_hash::FxHashMap<&str, (u32, u32, usize)>,
) {
    if let Some(c) = candidates.get_mut(at)
        && by_name
            .get(c.local)
            .is_none_or(|(first, _, _)| c.end_line < *first)
    {
        c.dead = true;
    }
    while candidates.last().is_some_and(|c| c.dead) {
        candidates.pop();
    }
}

fn keep_text(
    candidates: &mut [Candidate<'_>],
    at: usize,
    text: &str,
    by_name: &rustc_hash::FxHashMap<&str, (u32, u32, usize)>,
) {
    if let Some(c) = candidates.get_mut(at) {
        c.text_chars += text.chars().count();
        let keep = by_name.get(c.local).map_or(0, |(_, _, k)| *k);
        // Leading whitespace (indentation) is not kept: it does not count
        // when the value is compared.
        let text = if c.text.is_empty() {
            text.trim_start()
        } else {
            text
        };
        if c.text.len() < keep {
            let room = keep - c.text.len();
            let cut = text.floor_char_boundary(room);
            c.text.push_str(text.get(..cut).unwrap_or(""));
        }
    }
}

/// The element a target is: of those of its name whose tags span its
/// line, preferably one holding the quoted value (or a value of the given
/// length), and of those the first ending after `previous_end` (where the
/// element the previous target was found at ends), else one ending there
/// (one element, two errors), else the first.
fn choose<'c, 't>(
    candidates: &'c [Candidate<'t>],
    target: &Target,
    previous_end: usize,
) -> Option<&'c Candidate<'t>> {
    let fits = |c: &&Candidate| {
        c.local == target.local && c.start_line <= target.line && target.line <= c.end_line
    };
    let holds = |c: &&Candidate| {
        let held = match &target.attribute {
            Some(name) => c
                .attributes
                .iter()
                .find(|(n, _)| **n == **name)
                .map(|(_, v)| (v.as_str(), v.chars().count())),
            None => Some((c.text.as_str(), c.text_chars)),
        };
        let Some((held, chars)) = held else {
            return false;
        };
        match (&target.value, target.length) {
            (Some(value), _) => held.split_whitespace().eq(value.split_whitespace()),
            (None, Some(length)) => chars == length || collapsed_chars(held) == length,
            (None, None) => false,
        }
    };
    let first = |keep: &dyn Fn(&&Candidate) -> bool| candidates.iter().filter(fits).find(keep);
    first(&|c| holds(c) && c.end > previous_end)
        .or_else(|| first(&|c| holds(c) && c.end == previous_end))
        .or_else(|| first(&|c| holds(c)))
        .or_else(|| first(&|c| c.end > previous_end))
        .or_else(|| first(&|c| c.end == previous_end))
        .or_else(|| first(&|_| true))
}

/// The element paths of the elements with the given ordinals (document
/// order numbers), `[n]` on every step that has same-named siblings.
fn paths_of(doc: &[u8], ordinals: &[u64]) -> rustc_hash::FxHashMap<u64, String> {
    let wanted: rustc_hash::FxHashSet<u64> = ordinals.iter().copied().collect();
    let mut chains: Vec<(u64, Vec<Step>)> = Vec::new();
    let mut interesting: rustc_hash::FxHashSet<u64> = Default::default();
    let mut final_counts: rustc_hash::FxHashMap<u64, Children> = Default::default();
    let mut reader = NsReader::from_reader(doc);
    let mut stack: Vec<Open> = Vec::new();
    let mut top = Children::default();
    let mut ordinal = 0u64;
    while let Ok((_, event)) = reader.read_resolved_event() {
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                ordinal += 1;
                let local: Box<str> = String::from_utf8_lossy(start.local_name().as_ref()).into();
                let index = match stack.last_mut() {
                    Some(parent) => child_index(&mut parent.children, &local),
                    None => child_index(&mut top, &local),
                };
                if wanted.contains(&ordinal) {
                    let mut chain: Vec<Step> = stack
                        .iter()
                        .map(|open| (open.ordinal, open.local.clone(), open.index))
                        .collect();
                    chain.push((ordinal, local.clone(), index));
                    for (o, _, _) in &chain {
                        interesting.insert(*o);
                    }
                    chains.push((ordinal, chain));
                }
                if !empty {
                    stack.push(Open {
                        ordinal,
                        local,
                        index,
                        children: Children::default(),
                    });
                }
            }
            Event::End(_) => {
                if let Some(open) = stack.pop()
                    && interesting.contains(&open.ordinal)
                {
                    final_counts.insert(open.ordinal, open.children);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    for open in stack.drain(..) {
        if interesting.contains(&open.ordinal) {
            final_counts.insert(open.ordinal, open.children);
        }
    }
    chains
        .into_iter()
        .map(|(ordinal, chain)| {
            let mut path = String::new();
            let mut parent_counts: Option<&Children> = Some(&top);
            for (o, local, index) in &chain {
                path.push('/');
                path.push_str(local);
                let siblings = parent_counts.map_or(1, |c| c.count(local).max(1));
                if siblings > 1 {
                    path.push_str(&format!("[{index}]"));
                }
                parent_counts = final_counts.get(o);
            }
            (ordinal, path)
        })
        .collect()
}

/// The length in characters of the text with each run of whitespace one
/// space, trimmed (how libxml2 measures a collapsed value).
fn collapsed_chars(text: &str) -> usize {
    let mut n = 0;
    for (i, word) in text.split_whitespace().enumerate() {
        n += word.chars().count() + usize::from(i > 0);
    }
    n
}

/// A document with every start tag that shares its line with earlier
/// markup moved to a line of its own, for libxml2 to validate: its schema
/// messages give a line only (no column), which in a document written on
/// one line (as machines write XML) names no element. Only whitespace in
/// element content is added, which XSD validation ignores.
pub(crate) struct Reflowed {
    pub bytes: Vec<u8>,
    /// Per line of `bytes` (0-based), the offset in the original document
    /// where it starts: each line is a contiguous run of the original.
    origins: Vec<usize>,
}

impl Reflowed {
    /// The original line and column (1-based, bytes) of a line and column
    /// of the reflowed document.
    pub fn original(&self, doc: &[u8], line: u32, column: u32) -> Option<(u32, u32)> {
        let start = *self.origins.get((line as usize).checked_sub(1)?)?;
        let offset = (start + (column.max(1) as usize - 1)).min(doc.len());
        let before = doc.get(..offset)?;
        let line = memchr_iter(b'\n', before).count() + 1;
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        Some((
            u32::try_from(line).ok()?,
            u32::try_from(offset - line_start + 1).ok()?,
        ))
    }
}

/// The document reflowed (see [`Reflowed`]) when some start tag follows
/// other markup on its line with only spaces between; `None` when every
/// start tag already begins its line (or the document cannot be read,
/// which the guard reports).
pub(crate) fn reflow(doc: &[u8]) -> Option<Reflowed> {
    let mut reader = quick_xml::Reader::from_reader(doc);
    reader.config_mut().expand_empty_elements = false;
    let mut cuts: Vec<usize> = Vec::new();
    loop {
        let before = reader.buffer_position() as usize;
        match reader.read_event() {
            Ok(Event::Start(_) | Event::Empty(_)) => {
                // Back over spaces and tabs: a '>' (markup) means the tag
                // shares its line; a line end or text means it does not,
                // or may not be moved.
                let mut i = before;
                while i > 0 && matches!(doc.get(i - 1), Some(b' ' | b'\t' | b'\r')) {
                    i -= 1;
                }
                if i > 0 && doc.get(i - 1) == Some(&b'>') {
                    cuts.push(before);
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if cuts.is_empty() {
        return None;
    }
    let mut bytes = Vec::with_capacity(doc.len() + cuts.len());
    let mut origins = vec![0usize];
    let mut from = 0usize;
    for cut in cuts {
        let run = doc.get(from..cut)?;
        for i in memchr_iter(b'\n', run) {
            origins.push(from + i + 1);
        }
        bytes.extend_from_slice(run);
        bytes.push(b'\n');
        origins.push(cut);
        from = cut;
    }
    let rest = doc.get(from..)?;
    for i in memchr_iter(b'\n', rest) {
        origins.push(from + i + 1);
    }
    bytes.extend_from_slice(rest);
    Some(Reflowed { bytes, origins })
}
