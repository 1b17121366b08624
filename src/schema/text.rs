//! Readers of the UN/EDIFACT directory text files, as UNECE publishes them:
//! the segment table of a message (EDMD/TRMD `XXXXXX_D.nnx`), the segment
//! directory (EDSD/TRSD, composites listed inline), the code list (UNCL,
//! one or several files) and the message index (EDMDI1/TRMDI1).
//!
//! The files are fixed-layout text in code page 437 (the box-drawing
//! characters of the segment tables are bytes above 0x7F). Layouts differ
//! slightly between releases (four- or five-digit positions, the repetition
//! column appears with D.99A, code values right-aligned in D.96B and
//! left-aligned later, long names wrapped onto a second line), and each
//! reader accepts all of them. Nothing here is typed by hand from the
//! directories: every structure comes from the files at run time.

use rustc_hash::FxHashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::{
    CodeList, Component, ElementDef, ElementKind, Format, FormatClass, MessageDef, Node,
    SegmentDef, Status,
};

/// Decodes code page 437 text (only the box-drawing characters the
/// directories use matter; other high bytes become U+FFFD).
pub fn cp437(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x00..=0x7F => b as char,
            0xB3 => '│',
            0xBF => '┐',
            0xC0 => '└',
            0xC1 => '┴',
            0xC2 => '┬',
            0xC3 => '├',
            0xC4 => '─',
            0xC5 => '┼',
            0xD9 => '┘',
            0xDA => '┌',
            _ => '\u{FFFD}',
        })
        .collect()
}

/// A problem in a directory file: which line and why. Reported when a
/// release is loaded, so that a damaged or unknown file is never read as an
/// empty structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct TextError {
    pub line: usize,
    pub reason: String,
}

fn err(line: usize, reason: impl Into<String>) -> TextError {
    TextError {
        line,
        reason: reason.into(),
    }
}

fn is_separator(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 10 && t.chars().all(|c| c == '-' || c == '─')
}

fn status(s: &str) -> Status {
    if s == "M" {
        Status::Mandatory
    } else {
        Status::Conditional
    }
}

static FORMAT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(an|a|n)(\.\.)?(\d+)$").unwrap_or_else(|_| unreachable()));

/// Never reached: the patterns in this file are constants checked by the
/// tests. Kept as a function so that no `unwrap` is needed at the call sites.
fn unreachable() -> Regex {
    Regex::new("$^").unwrap_or_else(|_| std::process::abort())
}

/// Parses a representation such as `an..35`, `n3` or `a..3`.
pub fn format(text: &str) -> Option<Format> {
    let caps = FORMAT.captures(text.trim())?;
    let class = match caps.get(1)?.as_str() {
        "a" => FormatClass::Alpha,
        "n" => FormatClass::Numeric,
        _ => FormatClass::AlphaNumeric,
    };
    let max: u16 = caps.get(3)?.as_str().parse().ok()?;
    let variable = caps.get(2).is_some();
    Some(Format {
        class,
        min: if variable { 0 } else { max },
        max,
    })
}

// ---------------------------------------------------------------------------
// Message segment tables

static TABLE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d{4,5})\s+(?:[+*#|X-]{1,3}\s+)?([A-Z][A-Z0-9]{2})\s+(.*?)\s+([MC])\s+(\d+)(.*)$",
    )
    .unwrap_or_else(|_| unreachable())
});
static GROUP_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{4,5})\s+(?:[+*#|X-]{1,3}\s+)?[─\-\s]*Segment group\s+(\d+)[─\-\s]*([MC])\s+(\d+)(.*)$")
        .unwrap_or_else(|_| unreachable())
});
static POSITION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4,5}\s+(?:[+*#|X-]{1,3}\s+)?(?:[A-Z][A-Z0-9]{2}\s|─|-{3,})")
        .unwrap_or_else(|_| unreachable())
});

/// Reads the segment table (section 4.3.1) of one message file.
pub fn message(kind: &str, text: &str) -> Result<MessageDef, TextError> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.contains("Segment table"))
        .ok_or_else(|| err(1, "no segment table (section 4.3.1) in the message file"))?;
    // Stack of open groups: (node, line) ; the root holds the message.
    let mut stack: Vec<Node> = vec![Node::Group {
        number: 0,
        status: Status::Mandatory,
        max: 1,
        children: Vec::new(),
    }];
    let mut i = start + 1;
    while i < lines.len() {
        let mut line = lines.get(i).copied().unwrap_or("").trim_end().to_owned();
        let number = i + 1;
        i += 1;
        if !POSITION.is_match(&line) {
            continue;
        }
        // A long name wraps: the status and repetition are on the next line.
        if !TABLE_LINE.is_match(&line)
            && !GROUP_LINE.is_match(&line)
            && let Some(next) = lines.get(i)
        {
            line = format!("{line} {}", next.trim());
            i += 1;
        }
        let (node, rest) = if let Some(c) = GROUP_LINE.captures(&line) {
            let number_text = c.get(2).map_or("", |m| m.as_str());
            let group = Node::Group {
                number: number_text
                    .parse()
                    .map_err(|_| err(number, "bad segment group number"))?,
                status: status(c.get(3).map_or("", |m| m.as_str())),
                max: c
                    .get(4)
                    .map_or("", |m| m.as_str())
                    .parse()
                    .map_err(|_| err(number, "bad repetition"))?,
                children: Vec::new(),
            };
            (group, c.get(5).map_or("", |m| m.as_str()).to_owned())
        } else if let Some(c) = TABLE_LINE.captures(&line) {
            let seg = Node::Segment {
                tag: c.get(2).map_or("", |m| m.as_str()).to_owned(),
                status: status(c.get(4).map_or("", |m| m.as_str())),
                max: c
                    .get(5)
                    .map_or("", |m| m.as_str())
                    .parse()
                    .map_err(|_| err(number, "bad repetition"))?,
            };
            (seg, c.get(6).map_or("", |m| m.as_str()).to_owned())
        } else {
            return Err(err(
                number,
                format!("unreadable segment table line {line:?}"),
            ));
        };
        // Groups close at the segment that ends them: box-drawing corners
        // (`┘`, `┴`) in most releases, `+` in those drawn in ASCII.
        let closes = match node {
            Node::Segment { .. } => rest
                .chars()
                .filter(|&c| c == '┘' || c == '┴' || c == '+')
                .count(),
            Node::Group { .. } => 0,
        };
        match node {
            Node::Group { .. } => stack.push(node),
            Node::Segment { .. } => {
                if let Some(Node::Group { children, .. }) = stack.last_mut() {
                    children.push(node);
                }
            }
        }
        for _ in 0..closes {
            if stack.len() < 2 {
                return Err(err(number, "a segment group closes that was never opened"));
            }
            if let Some(done) = stack.pop()
                && let Some(Node::Group { children, .. }) = stack.last_mut()
            {
                children.push(done);
            }
        }
    }
    if stack.len() != 1 {
        return Err(err(lines.len(), "a segment group is never closed"));
    }
    let Some(Node::Group { children, .. }) = stack.pop() else {
        return Err(err(lines.len(), "empty segment table"));
    };
    // Every group line of the table must have been read as a group.
    let announced = lines
        .iter()
        .skip(start + 1)
        .filter(|l| l.contains("Segment group") && POSITION.is_match(l) && !TABLE_LINE.is_match(l))
        .count();
    let def = MessageDef {
        kind: kind.to_owned(),
        nodes: children,
        profile: None,
        relaxations: Vec::new(),
    };
    if def.group_count() != announced {
        return Err(err(
            start + 1,
            format!(
                "the segment table announces {announced} segment groups but {} were read",
                def.group_count()
            ),
        ));
    }
    let children = def.nodes;
    if children.is_empty() {
        return Err(err(start + 1, "empty segment table"));
    }
    Ok(MessageDef {
        kind: kind.to_owned(),
        nodes: children,
        profile: None,
        relaxations: Vec::new(),
    })
}

static INDEX_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([+*#|XR-]{0,3})\s+([A-Z]{6})\s+\S").unwrap_or_else(|_| unreachable())
});

/// The message types listed in the index of messages by code (EDMDI1 /
/// TRMDI1), without those marked deleted (`-`).
pub fn message_index(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("1.1") {
            inside = true;
            continue;
        }
        if t.starts_with("1.2") || t.starts_with("2.") {
            if inside {
                break;
            }
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(c) = INDEX_LINE.captures(line) {
            let marks = c.get(1).map_or("", |m| m.as_str());
            if !marks.contains('-') {
                out.push(c.get(2).map_or("", |m| m.as_str()).to_owned());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Segment directory

static SEGMENT_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:[+*#|X-]{1,3}\s*)?([A-Z][A-Z0-9]{2})\s{2,}(\S.*?)\s*$")
        .unwrap_or_else(|_| unreachable())
});
static ELEMENT_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d{3})\s+(?:[+*#|X-]{1,3}\s*)?([A-Z]\d{3}|\d{4})\s+(.+?)\s+([MC])(?:\s+(\d+))?(?:\s+((?:an|a|n)(?:\.\.)?\d+))?\s*$",
    )
    .unwrap_or_else(|_| unreachable())
});
static ELEMENT_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{3}\s+(?:[+*#|X-]{1,3}\s*)?(?:[A-Z]\d{3}|\d{4})\s")
        .unwrap_or_else(|_| unreachable())
});
static COMPONENT_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s+(?:[+*#|X-]{1,3}\s+)?(\d{4})\s+(.+?)\s+([MC])\s+((?:an|a|n)(?:\.\.)?\d+)\s*$")
        .unwrap_or_else(|_| unreachable())
});
static COMPONENT_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s+(?:[+*#|X-]{1,3}\s+)?\d{4}\s+\S").unwrap_or_else(|_| unreachable())
});

/// Reads a segment directory (EDSD/TRSD) with its inline composites.
pub fn segments(text: &str) -> Result<FxHashMap<String, SegmentDef>, TextError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: FxHashMap<String, SegmentDef> = FxHashMap::default();
    let mut current: Option<SegmentDef> = None;
    let mut expect_header = false;
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let raw = lines.get(i).copied().unwrap_or("").trim_end();
        i += 1;
        if is_separator(raw) {
            if let Some(seg) = current.take() {
                out.insert(seg.tag.clone(), seg);
            }
            expect_header = true;
            continue;
        }
        if raw.trim().is_empty() {
            continue;
        }
        if expect_header {
            expect_header = false;
            if let Some(c) = SEGMENT_HEADER.captures(raw) {
                current = Some(SegmentDef {
                    tag: c.get(1).map_or("", |m| m.as_str()).to_owned(),
                    name: c.get(2).map_or("", |m| m.as_str()).to_owned(),
                    elements: Vec::new(),
                });
            }
            continue;
        }
        let Some(seg) = current.as_mut() else {
            continue;
        };
        if ELEMENT_START.is_match(raw) {
            let mut line = raw.to_owned();
            if !ELEMENT_LINE.is_match(&line)
                && let Some(next) = lines.get(i)
            {
                line = format!("{line} {}", next.trim());
                i += 1;
            }
            let c = ELEMENT_LINE
                .captures(&line)
                .ok_or_else(|| err(number, format!("unreadable element line {line:?}")))?;
            let id = c.get(2).map_or("", |m| m.as_str()).to_owned();
            let kind = match c.get(6) {
                Some(f) => ElementKind::Simple(
                    format(f.as_str()).ok_or_else(|| err(number, "bad representation"))?,
                ),
                None if id.starts_with(|ch: char| ch.is_ascii_uppercase()) => {
                    ElementKind::Composite(Vec::new())
                }
                None => {
                    return Err(err(
                        number,
                        format!("simple element {id} without a representation"),
                    ));
                }
            };
            seg.elements.push(ElementDef {
                id,
                name: c.get(3).map_or("", |m| m.as_str()).trim().to_owned(),
                status: status(c.get(4).map_or("", |m| m.as_str())),
                max: c.get(5).and_then(|m| m.as_str().parse().ok()).unwrap_or(1),
                kind,
                coded: false,
            });
            continue;
        }
        if COMPONENT_START.is_match(raw) {
            let Some(ElementDef {
                kind: ElementKind::Composite(components),
                ..
            }) = seg.elements.last_mut()
            else {
                continue;
            };
            let mut line = raw.to_owned();
            if !COMPONENT_LINE.is_match(&line)
                && let Some(next) = lines.get(i)
            {
                line = format!("{line} {}", next.trim());
                i += 1;
            }
            let c = COMPONENT_LINE
                .captures(&line)
                .ok_or_else(|| err(number, format!("unreadable component line {line:?}")))?;
            components.push(Component {
                id: c.get(1).map_or("", |m| m.as_str()).to_owned(),
                name: c.get(2).map_or("", |m| m.as_str()).trim().to_owned(),
                status: status(c.get(3).map_or("", |m| m.as_str())),
                format: format(c.get(4).map_or("", |m| m.as_str()))
                    .ok_or_else(|| err(number, "bad representation"))?,
                coded: false,
            });
        }
    }
    if let Some(seg) = current.take() {
        out.insert(seg.tag.clone(), seg);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Code lists

static CODE_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[+*#|X-]{0,3}\s*(\d{4})\s+(\S.*?)(?:\s+\[[A-Z]\])?\s*$")
        .unwrap_or_else(|_| unreachable())
});
static CODE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([+*#|X-]{0,3})(\s+)([A-Za-z0-9][A-Za-z0-9./\-]*)(?:\s+(\S.*?))?\s*$")
        .unwrap_or_else(|_| unreachable())
});

/// Reads a code list file (UNCL, or one part of it) into `out`: element
/// id → code values. Codes marked deleted (`-`) are left out.
pub fn code_lists(text: &str, out: &mut FxHashMap<String, CodeList>) {
    let mut current: Option<(String, CodeList)> = None;
    let mut expect_header = false;
    let mut in_codes = false;
    for raw in text.lines() {
        let line = raw.trim_end();
        if is_separator(line) {
            if let Some((id, list)) = current.take() {
                out.insert(id, list);
            }
            expect_header = true;
            in_codes = false;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        if expect_header {
            expect_header = false;
            if let Some(c) = CODE_HEADER.captures(line) {
                let id = c.get(1).map_or("", |m| m.as_str()).to_owned();
                current = Some((
                    id,
                    CodeList {
                        name: c.get(2).map_or("", |m| m.as_str()).to_owned(),
                        codes: Default::default(),
                    },
                ));
            }
            continue;
        }
        let Some((_, list)) = current.as_mut() else {
            continue;
        };
        let body = line.trim_start();
        if body.starts_with("Repr:") {
            in_codes = true;
            continue;
        }
        if body.starts_with("Desc:") || body.starts_with("Note:") {
            continue;
        }
        if !in_codes {
            continue;
        }
        let Some(c) = CODE_LINE.captures(line) else {
            continue;
        };
        let marks = c.get(1).map_or("", |m| m.as_str());
        let indent = marks.len() + c.get(2).map_or(0, |m| m.as_str().len());
        // Descriptions and wrapped names are indented further than codes
        // in every layout (codes end by column 9 in D.96B, start at column
        // 5 later; wrapped names start at column 10 or 11).
        if indent > 9 {
            continue;
        }
        if marks.contains('-') {
            continue;
        }
        list.codes
            .insert(c.get(3).map_or("", |m| m.as_str()).to_owned());
    }
    if let Some((id, list)) = current.take() {
        out.insert(id, list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_compile() {
        for re in [
            &FORMAT,
            &TABLE_LINE,
            &GROUP_LINE,
            &POSITION,
            &INDEX_LINE,
            &SEGMENT_HEADER,
            &ELEMENT_LINE,
            &ELEMENT_START,
            &COMPONENT_LINE,
            &COMPONENT_START,
            &CODE_HEADER,
            &CODE_LINE,
        ] {
            assert_ne!(re.as_str(), "$^");
        }
    }

    #[test]
    fn formats() {
        let f = format("an..35").unwrap();
        assert_eq!((f.class, f.min, f.max), (FormatClass::AlphaNumeric, 0, 35));
        let f = format("n3").unwrap();
        assert_eq!((f.class, f.min, f.max), (FormatClass::Numeric, 3, 3));
        let f = format("a..3").unwrap();
        assert_eq!((f.class, f.min, f.max), (FormatClass::Alpha, 0, 3));
        assert!(format("x..3").is_none());
    }
}
