//! The agencies catalogue: which government bodies confirm import/export
//! requirements, and the AMQP queue each one reads permit requests from.
//!
//! The catalogue is read from TOML (`config/agencies.toml` by default) in two
//! steps: the text is deserialised into raw entries that remember where they
//! stand in the file, then every entry is checked. A checked catalogue is
//! immutable; each [`Agency`] in it has a well-formed code, the queue
//! `agency.<CODE>`, a name, at least one thing it confirms and valid HS
//! chapters. Problems name the entry's code and its line in the file.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Prefix of every agency queue name; the queue of agency `MFDS` is
/// `agency.MFDS`.
pub const QUEUE_PREFIX: &str = "agency.";

/// Shortest and longest agency code, in characters.
pub const CODE_LEN: std::ops::RangeInclusive<usize> = 2..=12;

/// A body that confirms import/export requirements, as listed in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agency {
    /// Stable upper-case id (`[A-Z0-9_]`, 2 to 12 characters), e.g. `MFDS`.
    pub code: String,
    /// English name.
    pub name: String,
    /// Korean name, where known.
    pub name_ko: Option<String>,
    /// AMQP queue the agency reads permit requests from: `agency.<code>`.
    pub queue: String,
    /// Where the agency is reached (a role mailbox or a public URL).
    pub contact: String,
    /// What the agency confirms, in plain words; never empty.
    pub confirms: Vec<String>,
    /// The Acts under which it confirms.
    pub laws: Vec<String>,
    /// Two-digit HS chapters (`01`–`97`) it typically confirms; may be empty.
    pub hs_chapters: Vec<String>,
    /// Which public source(s) document the entry (ids from the file header).
    pub source: String,
    /// `true` for a placeholder that stands for bodies the sources do not name.
    pub example: bool,
}

impl Agency {
    /// The AMQP routing key permit requests for this agency are published
    /// with: `permit.<code>`.
    pub fn routing_key(&self) -> String {
        format!("permit.{}", self.code)
    }
}

/// The checked list of agencies, in file order, with lookup by code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyCatalogue {
    agencies: Vec<Agency>,
    by_code: HashMap<String, usize>,
}

/// Why a catalogue could not be loaded. Entry problems carry the agency code
/// as written (possibly malformed) and the 1-based line of the entry's
/// `[[agency]]` header, or of the offending value where that is known.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogueError {
    /// The file could not be read.
    #[error("cannot read agencies catalogue {path}: {source}")]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The text is not TOML or does not have the catalogue's shape.
    #[error("agencies catalogue{}: {message}", at_line(*line))]
    Syntax {
        /// Line of the problem, where the parser knows it.
        line: Option<usize>,
        /// The parser's description.
        message: String,
    },
    /// Two entries have the same code.
    #[error("agency {code} (line {line}): duplicate code, first defined on line {first_line}")]
    DuplicateCode {
        /// The repeated code.
        code: String,
        /// Line of the second entry.
        line: usize,
        /// Line of the first entry with that code.
        first_line: usize,
    },
    /// The code is not 2–12 characters of `A-Z`, `0-9` and `_`.
    #[error("agency {code:?} (line {line}): code must be 2 to 12 characters of A-Z, 0-9 and _")]
    BadCode {
        /// The code as written.
        code: String,
        /// Line of the code.
        line: usize,
    },
    /// The code is the customs officers' role (`CUSTOMS`): an account
    /// acting for such an agency would be an officer.
    #[error(
        "agency {code:?} (line {line}): {code} is the customs officers' role, not an agency code: \
         an account acting for it would see every declaration and release goods"
    )]
    ReservedCode {
        /// The code as written.
        code: String,
        /// Line of the code.
        line: usize,
    },
    /// The queue is not `agency.<code>`.
    #[error("agency {code} (line {line}): queue {queue:?} must be \"agency.{code}\"")]
    BadQueue {
        /// The agency's code.
        code: String,
        /// The queue as written.
        queue: String,
        /// Line of the queue.
        line: usize,
    },
    /// The name is empty or blank.
    #[error("agency {code} (line {line}): name is empty")]
    EmptyName {
        /// The agency's code.
        code: String,
        /// Line of the name.
        line: usize,
    },
    /// `confirms` is empty or holds only blank strings.
    #[error("agency {code} (line {line}): confirms lists nothing")]
    EmptyConfirms {
        /// The agency's code.
        code: String,
        /// Line of the `confirms` value.
        line: usize,
    },
    /// An HS chapter is not two digits from `01` to `97`.
    #[error("agency {code} (line {line}): HS chapter {chapter:?} must be two digits from 01 to 97")]
    BadHsChapter {
        /// The agency's code.
        code: String,
        /// The chapter as written.
        chapter: String,
        /// Line of the `hs_chapters` value.
        line: usize,
    },
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

impl CatalogueError {
    /// Stable code of the problem, for logs and documentation; never
    /// renumbered.
    pub fn code(&self) -> &'static str {
        match self {
            CatalogueError::Io { .. } => "AGY001",
            CatalogueError::Syntax { .. } => "AGY002",
            CatalogueError::DuplicateCode { .. } => "AGY003",
            CatalogueError::BadCode { .. } => "AGY004",
            CatalogueError::BadQueue { .. } => "AGY005",
            CatalogueError::EmptyName { .. } => "AGY006",
            CatalogueError::EmptyConfirms { .. } => "AGY007",
            CatalogueError::BadHsChapter { .. } => "AGY008",
            CatalogueError::ReservedCode { .. } => "AGY009",
        }
    }

    /// The code of the agency entry the problem is in, if it is about one.
    pub fn agency(&self) -> Option<&str> {
        match self {
            CatalogueError::Io { .. } | CatalogueError::Syntax { .. } => None,
            CatalogueError::DuplicateCode { code, .. }
            | CatalogueError::BadCode { code, .. }
            | CatalogueError::ReservedCode { code, .. }
            | CatalogueError::BadQueue { code, .. }
            | CatalogueError::EmptyName { code, .. }
            | CatalogueError::EmptyConfirms { code, .. }
            | CatalogueError::BadHsChapter { code, .. } => Some(code),
        }
    }

    /// 1-based line in the catalogue file, where known.
    pub fn line(&self) -> Option<usize> {
        match self {
            CatalogueError::Io { .. } => None,
            CatalogueError::Syntax { line, .. } => *line,
            CatalogueError::DuplicateCode { line, .. }
            | CatalogueError::BadCode { line, .. }
            | CatalogueError::ReservedCode { line, .. }
            | CatalogueError::BadQueue { line, .. }
            | CatalogueError::EmptyName { line, .. }
            | CatalogueError::EmptyConfirms { line, .. }
            | CatalogueError::BadHsChapter { line, .. } => Some(*line),
        }
    }
}

/// The file as written: entries with their positions, before any check.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[serde(default)]
    agency: Vec<Spanned<RawAgency>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgency {
    code: Spanned<String>,
    name: Spanned<String>,
    #[serde(default)]
    name_ko: Option<String>,
    queue: Spanned<String>,
    contact: String,
    confirms: Spanned<Vec<String>>,
    #[serde(default)]
    laws: Vec<String>,
    #[serde(default)]
    hs_chapters: Option<Spanned<Vec<String>>>,
    source: String,
    #[serde(default)]
    example: bool,
}

/// Maps byte offsets in the text to 1-based line numbers.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { starts }
    }

    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset).max(1)
    }

    fn of(&self, span: Range<usize>) -> usize {
        self.line(span.start)
    }
}

fn is_valid_code(code: &str) -> bool {
    CODE_LEN.contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fn is_valid_chapter(chapter: &str) -> bool {
    let bytes = chapter.as_bytes();
    bytes.len() == 2
        && bytes.iter().all(u8::is_ascii_digit)
        && matches!(chapter.parse::<u8>(), Ok(1..=97))
}

impl AgencyCatalogue {
    /// Reads and checks the catalogue file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CatalogueError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogueError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Parses and checks catalogue text. On failure returns the first problem
    /// in file order; [`AgencyCatalogue::problems`] lists all of them.
    pub fn from_toml_str(text: &str) -> Result<Self, CatalogueError> {
        let (catalogue, problems) = Self::check(text)?;
        match problems.into_iter().next() {
            None => Ok(catalogue),
            Some(first) => Err(first),
        }
    }

    /// Every problem in catalogue text, in file order, so that an operator
    /// sees them all at once. Empty when the text loads.
    pub fn problems(text: &str) -> Vec<CatalogueError> {
        match Self::check(text) {
            Ok((_, problems)) => problems,
            Err(syntax) => vec![syntax],
        }
    }

    /// Parses `text` and checks every entry. A syntax error ends the check;
    /// entry problems are collected, and entries with none are kept.
    fn check(text: &str) -> Result<(Self, Vec<CatalogueError>), CatalogueError> {
        let lines = Lines::new(text);
        let raw: RawCatalogue = toml::from_str(text).map_err(|err| CatalogueError::Syntax {
            line: err.span().map(|span| lines.of(span)),
            message: err.message().to_owned(),
        })?;

        let mut problems = Vec::new();
        let mut agencies = Vec::with_capacity(raw.agency.len());
        let mut by_code: HashMap<String, usize> = HashMap::with_capacity(raw.agency.len());
        let mut first_line: HashMap<String, usize> = HashMap::new();

        for entry in raw.agency {
            let entry_line = lines.of(entry.span());
            let raw = entry.into_inner();
            let code = raw.code.get_ref().clone();
            let before = problems.len();

            if !is_valid_code(&code) {
                problems.push(CatalogueError::BadCode {
                    code: code.clone(),
                    line: lines.of(raw.code.span()),
                });
            } else if code == crate::hub::clearance::CUSTOMS_ROLE {
                problems.push(CatalogueError::ReservedCode {
                    code: code.clone(),
                    line: lines.of(raw.code.span()),
                });
            }
            if let Some(&first) = first_line.get(&code) {
                problems.push(CatalogueError::DuplicateCode {
                    code: code.clone(),
                    line: entry_line,
                    first_line: first,
                });
            } else {
                first_line.insert(code.clone(), entry_line);
            }
            if raw.queue.get_ref().as_str() != format!("{QUEUE_PREFIX}{code}") {
                problems.push(CatalogueError::BadQueue {
                    code: code.clone(),
                    queue: raw.queue.get_ref().clone(),
                    line: lines.of(raw.queue.span()),
                });
            }
            if raw.name.get_ref().trim().is_empty() {
                problems.push(CatalogueError::EmptyName {
                    code: code.clone(),
                    line: lines.of(raw.name.span()),
                });
            }
            if raw.confirms.get_ref().iter().all(|c| c.trim().is_empty()) {
                problems.push(CatalogueError::EmptyConfirms {
                    code: code.clone(),
                    line: lines.of(raw.confirms.span()),
                });
            }
            let hs_chapters = match raw.hs_chapters {
                Some(chapters) => {
                    let line = lines.of(chapters.span());
                    for chapter in chapters.get_ref() {
                        if !is_valid_chapter(chapter) {
                            problems.push(CatalogueError::BadHsChapter {
                                code: code.clone(),
                                chapter: chapter.clone(),
                                line,
                            });
                        }
                    }
                    chapters.into_inner()
                }
                None => Vec::new(),
            };

            if problems.len() == before {
                by_code.insert(code.clone(), agencies.len());
                agencies.push(Agency {
                    code,
                    name: raw.name.into_inner(),
                    name_ko: raw.name_ko,
                    queue: raw.queue.into_inner(),
                    contact: raw.contact,
                    confirms: raw.confirms.into_inner(),
                    laws: raw.laws,
                    hs_chapters,
                    source: raw.source,
                    example: raw.example,
                });
            }
        }

        Ok((AgencyCatalogue { agencies, by_code }, problems))
    }

    /// The agency with this code, if listed.
    pub fn get(&self, code: &str) -> Option<&Agency> {
        self.by_code
            .get(code)
            .and_then(|&index| self.agencies.get(index))
    }

    /// All agencies, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Agency> {
        self.agencies.iter()
    }

    /// Number of agencies.
    pub fn len(&self) -> usize {
        self.agencies.len()
    }

    /// Whether the catalogue lists no agency.
    pub fn is_empty(&self) -> bool {
        self.agencies.is_empty()
    }

    /// Every agency queue name (`agency.<CODE>`), in file order: the queues
    /// the hub declares at start-up.
    pub fn queues(&self) -> impl Iterator<Item = &str> + '_ {
        self.agencies.iter().map(|agency| agency.queue.as_str())
    }

    /// Number of agencies documented by a public source (`example = false`).
    pub fn documented(&self) -> usize {
        self.agencies
            .iter()
            .filter(|agency| !agency.example)
            .count()
    }
}

impl<'a> IntoIterator for &'a AgencyCatalogue {
    type Item = &'a Agency;
    type IntoIter = std::slice::Iter<'a, Agency>;

    fn into_iter(self) -> Self::IntoIter {
        self.agencies.iter()
    }
}
