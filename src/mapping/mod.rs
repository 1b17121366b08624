//! Declarative mappings from messages into the canonical model: one TOML
//! file per (format, message, release) under `mappings/`, read at run time
//! and checked, when loaded, against the message structure of the official
//! directory (every group, segment, element, component and qualifier code
//! must exist) and against the canonical model's JSON Schema (every target
//! field must exist and take the value's type). A path that cannot exist is
//! an error naming its line in the file.
//!
//! Architecture invariant: nothing in a message is dropped silently — every
//! non-empty value no mapping rule read is reported (MAP001).

mod draft;
pub use draft::Incomplete;
pub mod edifact;
pub mod edifact_out;
pub mod wco;
pub mod wco_out;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// A mapping file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    /// `edifact` (WCO XML mappings will use `wco`).
    pub format: String,
    /// Message type, e.g. `CUSDEC`.
    pub message: String,
    /// Directory release, e.g. `D96B`.
    pub release: String,
    /// Canonical type produced: `declaration`, `cargo_report`, `passenger_list`.
    pub target: String,
    /// Data elements that qualify a code rather than carry data (e.g. 1131
    /// code list qualifier, 3055 responsible agency): not reported as
    /// unmapped. Declared here, so nothing is dropped silently.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Fields set to a constant.
    #[serde(default)]
    pub constant: Vec<Constant>,
    /// Fields read from the message level.
    #[serde(default)]
    pub field: Vec<FieldRule>,
    /// Repeating groups that become lists.
    #[serde(default)]
    pub list: Vec<ListRule>,
    /// Lists made of the occurrences of a repeating composite of a segment
    /// read from the message level (EDIFACT, inbound only), e.g. the
    /// communication numbers of a PAXLST's reporting party (COM C076).
    #[serde(default)]
    pub each: Vec<EachRule>,
}

/// A field given a fixed value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constant {
    pub to: Spanned<String>,
    pub value: toml::Value,
}

/// How a value is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    /// Text as received.
    #[default]
    Text,
    /// An exact decimal (the UNA decimal mark is already `.` after decoding
    /// when the message used `,`; both are accepted).
    Decimal,
    /// A non-negative integer.
    Integer,
    /// A date with its 2379 format, read from `date_format`.
    Date,
    /// `true` or `false` (usually after a code translation).
    Boolean,
}

/// One field read from a path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// Dotted field of the target, e.g. `declarant.id`.
    pub to: Spanned<String>,
    /// Read, never written: the writers (`convert --to xml`, `--to
    /// edifact`) write the field by the next rule that reads it (WCO: the
    /// tariff code is read as TSP, HMRC's commodity code, first, but
    /// written as HS, the code list the canonical field holds).
    #[serde(default)]
    pub read_only: bool,
    /// Path in the message: `SG6/NAD[3035=IM]/C082/3039`.
    pub from: Spanned<String>,
    #[serde(default, rename = "type")]
    pub kind: ValueType,
    /// For dates: the path, in the same segment, of the 2379 format code
    /// (e.g. `C507/2379`).
    #[serde(default)]
    pub date_format: Option<Spanned<String>>,
    /// For dates: the 2379 format assumed when the message gives none
    /// (e.g. `101` where an implementation guide fixes YYMMDD).
    #[serde(default)]
    pub default_format: Option<String>,
    /// For dates that cannot lie in the future (a birth date): a
    /// two-digit year (2379 formats 101, 201) is the latest that is not
    /// after the day of mapping, instead of the fixed pivot (YY < 50 is
    /// 20YY).
    #[serde(default)]
    pub past: bool,
    /// For dates as likely past as future (a document's expiry): a
    /// two-digit year is the one nearest the year of mapping, instead of
    /// the fixed pivot.
    #[serde(default)]
    pub near: bool,
    /// WCO: the unit the value is in (`KGM`); a value whose element gives
    /// another `unitCode` is refused (MAP002), not taken as this unit.
    #[serde(default)]
    pub unit: Option<String>,
    /// Take the last occurrence instead of the first.
    #[serde(default)]
    pub last: bool,
    /// Code translation: received code → canonical value. A code not listed
    /// is an error (MAP003), unless `pass_other` is set.
    #[serde(default)]
    pub codes: Option<BTreeMap<String, String>>,
    /// Keep codes not in `codes` as received.
    #[serde(default)]
    pub pass_other: bool,
    /// Codes that give this rule no value, and no error: the field is left
    /// to another rule, or to none (e.g. the WCO declaration type `INV`, a
    /// cancellation request, names no kind of declaration).
    #[serde(default)]
    pub skip_codes: Vec<String>,
    /// Codes not in `codes` give this rule no value, and no error: the rule
    /// reads only the codes it lists (another rule gives the field
    /// otherwise). The WCO writer writes it back for the values its codes
    /// translate (a value no rule of the field translates is the error);
    /// the CUSDEC writer does not write it back.
    #[serde(default)]
    pub skip_other: bool,
    /// WCO writer: other fields, each with the codes before which this one
    /// gives way (`{ function = ["INV"] }`). When that field's rule, which
    /// must come earlier in the file and write the same element, wrote one
    /// of them there (HMRC's cancellation request: `TypeCode` INV, written
    /// for the function), this field's value is not written and is
    /// reported as a value the document cannot carry (MAP001, a warning),
    /// not as a conflict (MAP003, MAP006). The same code written by any
    /// other rule is still a conflict. Reading ignores it.
    #[serde(default, deserialize_with = "gives_way_table")]
    pub gives_way_to: BTreeMap<String, Vec<String>>,
    /// WCO writer: a text longer than the schema allows (a CUSDEC name or
    /// street of two joined 35-character lines in a 70-character element)
    /// is written cut to the allowed length, at a space where one ends the
    /// last whole word, and reported with its full value (MAP001, a
    /// warning) instead of refusing the document (MAP006). A value refused
    /// for anything else (a character, a pattern) is still MAP006. Reading
    /// ignores it.
    #[serde(default)]
    pub cut_to_fit: bool,
    /// Every occurrence into a list of values (the target must be a list
    /// of strings), instead of the first.
    #[serde(default)]
    pub all: bool,
    /// With `all`: each value once, in the order first seen (e.g. the
    /// containers of a consignment whose goods items share one).
    #[serde(default)]
    pub distinct: bool,
    /// EDIFACT: the occurrences a range in `from` names (e.g.
    /// `FTX[4451=AAA]/C108/4440#1-5`, a text written as five lines of
    /// one composite) joined into one text with this between them.
    #[serde(default)]
    pub join: Option<String>,
    /// With `join`: the occurrences of every segment the rule selects, in
    /// message order, not only the first's, this between one segment's text
    /// and the next (a text sent as several segments: CUSCAR's FTX AAA
    /// repeats in a goods item).
    #[serde(default)]
    pub join_segments: Option<String>,
    /// EDIFACT, decimals: the value is multiplied by this exact decimal
    /// (a weight in pounds, LBR, read as kilograms: `factor =
    /// "0.45359237"`, the international pound). The writer does not write
    /// such a rule back.
    #[serde(default)]
    pub factor: Option<rust_decimal::Decimal>,
}

/// A date value of a message in its 2379 `format`; with `past` (a rule's
/// `past = true`), a two-digit year is the latest one not after today;
/// with `near`, the one nearest this year.
pub(crate) fn read_date(
    raw: &str,
    format: &str,
    past: bool,
    near: bool,
) -> Result<crate::model::Moment, crate::model::DateError> {
    let today = || crate::timestamp::Timestamp::now().ymd();
    if past {
        crate::model::Moment::from_edifact_past(raw, format, today())
    } else if near {
        crate::model::Moment::from_edifact_near(raw, format, today())
    } else {
        crate::model::Moment::from_edifact(raw, format)
    }
}

impl FieldRule {
    /// Options that only mean something together; the error says which
    /// (the caller places it at the rule's line).
    pub(crate) fn check_options(&self) -> Result<(), String> {
        if self.distinct && !self.all {
            return Err(format!(
                "{}: `distinct` keeps each of several values once; it needs `all = true`",
                self.to.get_ref()
            ));
        }
        if self.join_segments.is_some() && self.join.is_none() {
            return Err(format!(
                "{}: `join_segments` joins the occurrences of every segment; it needs `join`",
                self.to.get_ref()
            ));
        }
        if self.join.is_some() && (self.all || self.codes.is_some() || self.kind != ValueType::Text)
        {
            return Err(format!(
                "{}: `join` makes one text of several occurrences; it goes without `all`, \
                 `codes` and types other than text",
                self.to.get_ref()
            ));
        }
        if self.factor.is_some() && (self.kind != ValueType::Decimal || self.codes.is_some()) {
            return Err(format!(
                "{}: `factor` multiplies a number; it needs `type = \"decimal\"` and no `codes`",
                self.to.get_ref()
            ));
        }
        if (self.past || self.near) && self.kind != ValueType::Date {
            return Err(format!(
                "{}: `past` and `near` are about two-digit years of dates; they need `type = \"date\"`",
                self.to.get_ref()
            ));
        }
        if self.past && self.near {
            return Err(format!(
                "{}: a two-digit year is either `past` or `near`, not both",
                self.to.get_ref()
            ));
        }
        let skips = self.skip_other || !self.skip_codes.is_empty();
        match &self.codes {
            None if skips => {
                return Err(format!(
                    "{}: `skip_codes` and `skip_other` are about the codes of `codes`, \
                     which this rule has not",
                    self.to.get_ref()
                ));
            }
            Some(_) if self.skip_other && self.pass_other => {
                return Err(format!(
                    "{}: codes not in `codes` are either kept (`pass_other`) or skipped \
                     (`skip_other`), not both",
                    self.to.get_ref()
                ));
            }
            Some(codes) => {
                if let Some(code) = self.skip_codes.iter().find(|c| codes.contains_key(*c)) {
                    return Err(format!(
                        "{}: code {code:?} is both translated (`codes`) and skipped \
                         (`skip_codes`)",
                        self.to.get_ref()
                    ));
                }
            }
            None => {}
        }
        Ok(())
    }

    /// Options only EDIFACT mappings (read in and, backwards, written)
    /// know: an error for the WCO mapping files, so that none is ignored
    /// silently.
    /// Options only the WCO mappings know: an error for EDIFACT mapping
    /// files (there the unit is a qualifier: `MEA[C174.6411=KGM]`).
    pub(crate) fn wco_only(&self) -> Result<(), String> {
        if self.unit.is_some() {
            return Err(format!(
                "{}: `unit` is for WCO mappings (in EDIFACT, filter on the unit's qualifier)",
                self.to.get_ref()
            ));
        }
        if !self.gives_way_to.is_empty() {
            return Err(format!(
                "{}: `gives_way_to` is for the WCO writer (DEC.toml)",
                self.to.get_ref()
            ));
        }
        if self.cut_to_fit {
            return Err(format!(
                "{}: `cut_to_fit` is for the WCO writer (DEC.toml)",
                self.to.get_ref()
            ));
        }
        Ok(())
    }

    pub(crate) fn edifact_only(&self) -> Result<(), String> {
        if self.join.is_some() {
            return Err(format!(
                "{}: `join` is for EDIFACT mappings (occurrences of one composite)",
                self.to.get_ref()
            ));
        }
        if self.factor.is_some() {
            return Err(format!(
                "{}: `factor` is for EDIFACT mappings (a WCO measure names its unit: `unit`)",
                self.to.get_ref()
            ));
        }
        Ok(())
    }
}

/// A repeating group mapped to a list of objects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRule {
    /// The list field of the target, e.g. `goods`.
    pub to: Spanned<String>,
    /// The group path, relative to the enclosing level, e.g. `SG30`.
    pub group: Spanned<String>,
    /// Only the instances whose trigger segment carries this qualifier,
    /// written like a segment filter: `DOC[C002.1001=380]`.
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    #[serde(default)]
    pub constant: Vec<Constant>,
    #[serde(default)]
    pub field: Vec<FieldRule>,
    #[serde(default)]
    pub list: Vec<ListRule>,
    /// Lists made of the occurrences of a repeating data element of one
    /// segment of the item (EDIFACT, inbound only).
    #[serde(default)]
    pub each: Vec<EachRule>,
}

/// The occurrences of a repeating composite of one segment as a list of
/// objects, e.g. the package counts and kinds of a CUSCAR goods item (GID
/// C213, three times in D.96B): one object per occurrence that holds a
/// mapped value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EachRule {
    /// The list field of the item, e.g. `packages`.
    pub to: Spanned<String>,
    /// The segment (with filters, as in a field path) and the repeating
    /// composite: `GID/C213`.
    pub from: Spanned<String>,
    /// Fields of each object; their `from` names a component of the
    /// composite, e.g. `7224`.
    #[serde(default)]
    pub field: Vec<FieldRule>,
}

/// Why a mapping file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    pub file: String,
    /// 1-based line of the offending value (0 when the file has no line).
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for MappingError {
    /// `file:line: message`, or `file: message` when no line applies (a
    /// file that is missing or cannot be read).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file, self.message),
            line => write!(f, "{}:{line}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for MappingError {}

/// Resolves a range of occurrences written on the last step of an element
/// path (`C108/4440#1-5`: first to fifth; `C058/3124#2-`: second to last)
/// with `at`, given the path of each occurrence (`C108/4440#3`); `None`
/// when the path names no range. An open range ends where `at` fails; a
/// closed one must exist whole; a range names two occurrences at least.
/// Shared by the inbound compiler and the EDIFACT writer.
pub(crate) fn expand_range<T>(
    element_path: &str,
    mut at: impl FnMut(&str) -> Result<T, String>,
) -> Result<Option<Vec<T>>, String> {
    let (head, last) = match element_path.rsplit_once('/') {
        Some((head, last)) => (Some(head), last),
        None => (None, element_path),
    };
    let Some((id, (from, to))) = last
        .split_once('#')
        .and_then(|(id, range)| Some((id, range.split_once('-')?)))
    else {
        return Ok(None);
    };
    let bad = || format!("{last}: a range of occurrences is written #FROM-TO or #FROM-, from 1");
    let from: usize = from.parse().ok().filter(|n| *n >= 1).ok_or_else(bad)?;
    let to: Option<usize> = match to {
        "" => None,
        to => Some(to.parse().ok().filter(|n| *n > from).ok_or_else(bad)?),
    };
    let path = |n: usize| match head {
        Some(head) => format!("{head}/{id}#{n}"),
        None => format!("{id}#{n}"),
    };
    let mut found = vec![at(&path(from))?];
    let mut n = from + 1;
    while to.is_none_or(|to| n <= to) {
        match at(&path(n)) {
            Ok(one) => found.push(one),
            Err(_) if to.is_some() => {
                return Err(format!(
                    "{last}: {id} occurs {} times here, not {}",
                    n - 1,
                    to.unwrap_or(n)
                ));
            }
            Err(_) => break,
        }
        n += 1;
    }
    if found.len() < 2 {
        return Err(format!(
            "{last}: {id} occurs once here from #{from} on, so the range names one occurrence"
        ));
    }
    Ok(Some(found))
}

/// `gives_way_to` is a table of fields and their codes. A list of codes
/// alone, the form before the field was named, is refused with what to
/// write instead (a type error would not say).
fn gives_way_table<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    struct Table;
    impl<'de> serde::de::Visitor<'de> for Table {
        type Value = BTreeMap<String, Vec<String>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(r#"a table of fields, each with its codes: { function = ["INV"] }"#)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(serde::de::Error::custom(
                r#"gives_way_to names the field given way to with its codes, e.g. gives_way_to = { function = ["INV"] }; a list of codes alone (the earlier form) does not say whose codes they are"#,
            ))
        }
    }
    d.deserialize_any(Table)
}

/// Line (1-based) of a byte offset in `text`; configuration and mapping
/// files use it to name the line of an error.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |t| t.matches('\n').count() + 1)
}

impl MappingFile {
    /// Parses a mapping file (not yet checked against any structure).
    pub fn parse(name: &str, text: &str) -> Result<MappingFile, MappingError> {
        toml::from_str(text).map_err(|e| MappingError {
            file: name.to_owned(),
            line: e.span().map_or(0, |s| line_of(text, s.start)),
            message: e.message().to_owned(),
        })
    }
}

/// Where mapping files are looked for: `mappings/` of the working directory,
/// then the one in the source tree; `TRADEHUB_MAPPINGS` first when set.
pub fn mapping_folders() -> Vec<PathBuf> {
    let mut folders = Vec::new();
    if let Some(dir) = std::env::var_os("TRADEHUB_MAPPINGS") {
        folders.push(PathBuf::from(dir));
    }
    folders.push(PathBuf::from("mappings"));
    folders.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings"));
    folders
}

/// The mapping file for an EDIFACT message, e.g. `edifact/D96B/CUSDEC.toml`.
pub fn find_edifact(message: &str, release: &str) -> Option<PathBuf> {
    let rel = Path::new("edifact")
        .join(release)
        .join(format!("{message}.toml"));
    mapping_folders()
        .into_iter()
        .map(|dir| dir.join(&rel))
        .find(|p| p.is_file())
}

/// The JSON Schema node of a dotted field below `schema` (an object schema
/// of the canonical model), following `$ref`, nullable `anyOf` and arrays
/// for list fields.
pub(crate) fn schema_field<'a>(
    root: &'a serde_json::Value,
    schema: &'a serde_json::Value,
    dotted: &str,
) -> Result<&'a serde_json::Value, String> {
    let mut node = resolve(root, schema);
    let mut walked = String::new();
    for part in dotted.split('.') {
        let props = node
            .get("properties")
            .and_then(|p| p.as_object())
            .ok_or_else(|| format!("{walked} is not an object in the canonical model"))?;
        let next = props.get(part).ok_or_else(|| {
            let known: Vec<&str> = props.keys().map(String::as_str).collect();
            format!(
                "the canonical model has no field {part:?}{} (fields: {})",
                if walked.is_empty() {
                    String::new()
                } else {
                    format!(" in {walked}")
                },
                known.join(", ")
            )
        })?;
        node = resolve(root, next);
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(part);
    }
    Ok(node)
}

/// Follows `$ref` and drops the `null` branch of an optional.
pub(crate) fn resolve<'a>(
    root: &'a serde_json::Value,
    mut node: &'a serde_json::Value,
) -> &'a serde_json::Value {
    for _ in 0..16 {
        if let Some(reference) = node.get("$ref").and_then(|r| r.as_str()) {
            let name = reference.rsplit('/').next().unwrap_or("");
            match root.get("$defs").and_then(|d| d.get(name)) {
                Some(target) => node = target,
                None => return node,
            }
            continue;
        }
        if let Some(branches) = node
            .get("anyOf")
            .or_else(|| node.get("oneOf"))
            .and_then(|a| a.as_array())
            && let Some(branch) = branches
                .iter()
                .find(|b| b.get("type").and_then(|t| t.as_str()) != Some("null"))
        {
            node = branch;
            continue;
        }
        return node;
    }
    node
}

/// The schema's type name of a node (`string`, `integer`, `object`, `array`),
/// taking the non-null one of a `["string", "null"]` pair.
pub(crate) fn schema_type(node: &serde_json::Value) -> Option<&str> {
    match node.get("type")? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Array(types) => types
            .iter()
            .filter_map(|t| t.as_str())
            .find(|t| *t != "null"),
        _ => None,
    }
}

/// The most issues one message's mapping records; past that, one more
/// issue (EDI106) says how many were left out.
pub const MAX_MAPPING_ISSUES: usize = 1000;

/// Keeps a message's mapping issues to [`MAX_MAPPING_ISSUES`]: the first
/// ones in order, with the errors kept before warnings when both would not
/// fit, and one EDI106 issue at `at` counting the rest. That issue is an
/// error when an error was left out, so whoever asks whether the message
/// mapped cleanly gets the same answer as from the full list. A damaged
/// message of many values then costs a bounded report (stored with the
/// declaration, printed by `convert`), not one issue per value.
pub(crate) fn cap_issues(issues: &mut Vec<crate::diag::Issue>, at: crate::diag::Location) {
    use crate::diag::{Code, Issue};
    if issues.len() <= MAX_MAPPING_ISSUES {
        return;
    }
    let errors = issues.iter().filter(|i| i.is_error()).count();
    let mut kept_warnings = MAX_MAPPING_ISSUES.saturating_sub(errors);
    let mut kept_errors = MAX_MAPPING_ISSUES;
    let mut left_errors = 0usize;
    let mut left_warnings = 0usize;
    issues.retain(|i| {
        let room = if i.is_error() {
            &mut kept_errors
        } else {
            &mut kept_warnings
        };
        if *room > 0 {
            *room -= 1;
            true
        } else {
            if i.is_error() {
                left_errors += 1;
            } else {
                left_warnings += 1;
            }
            false
        }
    });
    let detail = format!(
        "{} further mapping issue(s) not recorded ({left_errors} error(s), \
         {left_warnings} warning(s))",
        left_errors + left_warnings
    );
    issues.push(if left_errors > 0 {
        Issue::error(Code::TooManyIssues, at, detail)
    } else {
        Issue::warning(Code::TooManyIssues, at, detail)
    });
}

/// The result of mapping one message.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Mapped {
    /// The message reference (UNH 0062) or document reference.
    pub message: String,
    /// The message type, e.g. `CUSDEC`.
    pub message_type: String,
    /// The canonical type produced (`declaration`, …).
    pub target: String,
    /// The canonical object; `None` when it could not be built.
    pub canonical: Option<serde_json::Value>,
    /// Problems and unmapped values.
    pub issues: Vec<crate::diag::Issue>,
    /// Where each canonical value came from: JSON pointer (`/goods/0/hs_code`,
    /// `/declarant`, `` for the whole object) → the location of the value
    /// (EDIFACT: message, segment, tag, group path, element, component; WCO:
    /// the element path). Objects and list items point at the segment or
    /// element their first value came from. A single value the object
    /// lacks, whose rule selected a segment that does not give it, points
    /// at where it would have been read (EDIFACT), so that what is said of
    /// its absence is located there. Not part of the golden JSON.
    #[serde(skip)]
    pub provenance: BTreeMap<String, crate::diag::Location>,
    /// When `canonical` could not be built: what is left of the object
    /// once its incomplete parts (each reported, MAP004) are left out, for
    /// the business rules, so that a sender learns of every error at once.
    /// `None` when it is whole, or when a gap cannot be left out.
    #[serde(skip)]
    pub partial: Option<Partial>,
}

/// A mapped object that does not make a whole canonical object, without
/// the parts that keep it from being one.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    /// The typed object without its gaps, in canonical form.
    pub rest: serde_json::Value,
    /// The JSON pointers of what was left out (see [`Gap`]).
    pub left_out: Vec<String>,
}

/// A part of a mapped object that keeps it from being a whole canonical
/// object: the JSON pointer of the object or value it is about
/// (`/goods/2/customs_value` for an amount without its currency; empty for
/// the object itself) and why, in serde's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub pointer: String,
    pub why: String,
}

impl Gap {
    /// The field of its object that the object lacks, when that is the
    /// gap (serde's `missing field `name``).
    pub fn missing_field(&self) -> Option<&str> {
        missing_field(&self.why)
    }

    /// The JSON pointer of the field the object lacks, when that is the
    /// gap.
    pub fn missing_pointer(&self) -> Option<String> {
        self.missing_field()
            .map(|field| format!("{}/{}", self.pointer, escape_pointer(field)))
    }
}

/// The field serde says is missing (`missing field `name``), if that is
/// what `why` says.
fn missing_field(why: &str) -> Option<&str> {
    why.strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

/// A field name as a step of a JSON pointer (RFC 6901: `~` and `/`
/// escaped).
fn escape_pointer(field: &str) -> String {
    field.replace('~', "~0").replace('/', "~1")
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}", self.why)
        } else {
            write!(f, "{} (at {})", self.why, self.pointer)
        }
    }
}

/// At most this many gaps are looked for in one object: each costs a
/// deserialization of the whole object.
const MAX_GAPS: usize = 32;

/// Every gap of the mapped object `value` of canonical type `target`, each
/// found after leaving out those before it, and what is left: the typed
/// object without them, in canonical form (no gaps: the object is whole).
/// What is left is `None` when a gap cannot be left out: the object as a
/// whole (but for a field only the typed object's own check misses, such
/// as an original declaration's kind), an item of a list (leaving it out
/// would renumber those after it, and so misplace what the rules say of
/// them), or more than [`MAX_GAPS`]. A gap that is only the consequence of
/// leaving out another (the object that now lacks the value left out of
/// it) is left out, or ends the search, unreported.
pub fn gaps(target: &str, value: serde_json::Value) -> (Vec<Gap>, Option<Partial>) {
    use crate::model::{CargoReport, Declaration, PassengerList};
    match target {
        "declaration" => gaps_of::<Declaration>(value),
        "cargo_report" => gaps_of::<CargoReport>(value),
        "passenger_list" => gaps_of::<PassengerList>(value),
        other => (
            vec![Gap {
                pointer: String::new(),
                why: format!("{other:?} is not a canonical type"),
            }],
            None,
        ),
    }
}

/// [`gaps`] of an object of the canonical type `T`.
pub(crate) fn gaps_of<
    T: serde::de::DeserializeOwned + serde::Serialize + crate::model::Complete,
>(
    mut value: serde_json::Value,
) -> (Vec<Gap>, Option<Partial>) {
    let mut found: Vec<Gap> = Vec::new();
    let mut left_out: Vec<String> = Vec::new();
    for _ in 0..MAX_GAPS {
        match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(typed) => {
                if let Some(missing) = typed.incomplete() {
                    found.push(Gap {
                        pointer: String::new(),
                        why: missing,
                    });
                }
                let rest = serde_json::to_value(typed).ok();
                return (found, rest.map(|rest| Partial { rest, left_out }));
            }
            Err(e) => {
                let pointer = json_pointer(e.path());
                let why = e.into_inner().to_string();
                let removed = pointer
                    .as_deref()
                    .is_some_and(|pointer| leave_out(&mut value, pointer));
                let pointer = pointer.unwrap_or_default();
                // Its own gap, unless it is the field just left out
                // (a value in error, then missing from its object).
                let consequence = missing_field(&why).is_some_and(|field| {
                    left_out.contains(&format!("{pointer}/{}", escape_pointer(field)))
                });
                if !consequence {
                    found.push(Gap {
                        pointer: pointer.clone(),
                        why,
                    });
                }
                if !removed {
                    return (found, None);
                }
                left_out.push(pointer);
            }
        }
    }
    (found, None)
}

/// The JSON pointer of a serde path; `None` when a step is not one of an
/// object's fields or a list's items.
fn json_pointer(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"))
            }
            Segment::Unknown => return None,
        }
    }
    Some(pointer)
}

/// Removes the field `pointer` names from its object; false, with nothing
/// removed, when it names the whole value, an item of a list or nothing.
fn leave_out(value: &mut serde_json::Value, pointer: &str) -> bool {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return false;
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(serde_json::Value::Object(fields)) => fields.remove(&key).is_some(),
        _ => false,
    }
}

/// The MAP004 errors of `gaps` in a mapped `what` (`the mapped
/// declaration`): each at the message value its pointer came from, or at
/// the segment of the nearest object that has one (the pointer as the
/// field), or at `whole` for the object itself. After `reported` issues
/// of the same message, only as many as fit the bound of a message's
/// report (see [`cap_issues`]), and at least the first.
pub fn gap_issues(
    gaps: &[Gap],
    provenance: &BTreeMap<String, crate::diag::Location>,
    whole: &crate::diag::Location,
    what: &str,
    reported: usize,
) -> Vec<crate::diag::Issue> {
    use crate::diag::{Code, Issue, Location};
    let room = MAX_MAPPING_ISSUES.saturating_sub(reported).max(1);
    gaps.iter()
        .take(room)
        .map(|gap| {
            // A field missing from its object: where its rule would have
            // read it, when the rule found its segment (the segment, the
            // element), or where the first value below it came from.
            if let Some(at) = gap.missing_pointer() {
                let below = format!("{at}/");
                let source = provenance.get(&at).or_else(|| {
                    provenance
                        .range(below.clone()..)
                        .next()
                        .filter(|(key, _)| key.starts_with(&below))
                        .map(|(_, source)| source)
                });
                if let Some(source) = source {
                    let location = Location {
                        field: Some(at),
                        ..source.clone()
                    };
                    return Issue::error(
                        Code::MappingIncomplete,
                        location,
                        format!("{what} is incomplete: {gap}"),
                    );
                }
            }
            let exact = provenance.get(&gap.pointer);
            let location = match nearest(provenance, &gap.pointer) {
                _ if gap.pointer.is_empty() => whole.clone(),
                Some(source) if exact.is_some() => Location {
                    field: Some(gap.pointer.clone()),
                    ..source.clone()
                },
                Some(source) => Location {
                    field: Some(gap.pointer.clone()),
                    element: None,
                    repetition: None,
                    component: None,
                    ..source.clone()
                },
                None => Location {
                    field: Some(gap.pointer.clone()),
                    ..whole.clone()
                },
            };
            Issue::error(
                Code::MappingIncomplete,
                location,
                format!("{what} is incomplete: {gap}"),
            )
        })
        .collect()
}

/// Points business-rule findings (whose `path` is a JSON pointer into the
/// canonical object, as `rules::check` writes them) at the message values
/// they are about: the location becomes the provenance of the pointer, or of
/// its nearest ancestor that has one (a missing `/goods/2/hs_code` → the
/// segment that opened goods item 3), and the pointer moves to
/// `Location::field`, so nothing is lost. Other issues, and findings whose
/// pointer has no provenance at all, are left as they are.
pub fn locate(
    issues: &mut [crate::diag::Issue],
    provenance: &BTreeMap<String, crate::diag::Location>,
) {
    for issue in issues.iter_mut() {
        let loc = &issue.location;
        let is_rule = issue.code.as_str().starts_with("RUL");
        let only_path = loc.segment.is_none() && loc.tag.is_none() && loc.field.is_none();
        let Some(pointer) = loc
            .path
            .clone()
            .filter(|p| is_rule && only_path && (p.is_empty() || p.starts_with('/')))
        else {
            continue;
        };
        if let Some(source) = nearest(provenance, &pointer) {
            let mut located = source.clone();
            located.field = Some(pointer);
            issue.location = located;
        }
    }
}

/// The provenance of a JSON pointer, or of its nearest ancestor that has
/// one.
pub(crate) fn nearest<'p>(
    provenance: &'p BTreeMap<String, crate::diag::Location>,
    pointer: &str,
) -> Option<&'p crate::diag::Location> {
    let mut at = pointer;
    loop {
        if let Some(source) = provenance.get(at) {
            return Some(source);
        }
        at = at.get(..at.rfind('/')?)?;
    }
}

/// Checks a mapped JSON value against the canonical type and returns it in
/// its canonical form (the typed value serialised again).
pub fn typed(target: &str, value: serde_json::Value) -> Result<serde_json::Value, String> {
    use crate::model::{CargoReport, Complete, Declaration, PassengerList};
    fn again<T: serde::de::DeserializeOwned + serde::Serialize + Complete>(
        value: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let typed: T = serde_json::from_value(value).map_err(|e| e.to_string())?;
        if let Some(missing) = typed.incomplete() {
            return Err(missing);
        }
        serde_json::to_value(typed).map_err(|e| e.to_string())
    }
    match target {
        "declaration" => again::<Declaration>(value),
        "cargo_report" => again::<CargoReport>(value),
        "passenger_list" => again::<PassengerList>(value),
        other => Err(format!("{other:?} is not a canonical type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Code, Issue, Location};

    /// Every gap of an object is found, each after leaving out those
    /// before it; what is left is the typed object without them. A gap
    /// that only follows from leaving out one below it is not reported
    /// again; one that cannot be left out (a list item, the object itself)
    /// ends the search with nothing left for the rules.
    #[test]
    fn gaps_are_found_one_after_another_and_left_out() {
        let base = serde_json::json!({
            "kind": "import", "function": "original", "lrn": "L1",
            "totals": {"invoice": {"currency": "USD"}},
            "goods": [
                {"sequence": 1, "customs_value": {"value": "1.00"}},
                {"sequence": 2, "statistical_value": {"value": "x", "currency": "USD"},
                 "hs_code": "847989"}
            ]
        });
        let (found, partial) = gaps("declaration", base.clone());
        let pointers: Vec<&str> = found.iter().map(|g| g.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/goods/0/customs_value",
                "/goods/1/statistical_value/value",
                "/totals/invoice"
            ],
            "{found:?}"
        );
        assert!(
            found[0].why.contains("missing field `currency`"),
            "{found:?}"
        );
        assert!(found[2].why.contains("missing field `value`"), "{found:?}");
        let partial = partial.expect("every gap could be left out");
        assert_eq!(
            partial.left_out,
            [
                "/goods/0/customs_value",
                "/goods/1/statistical_value/value",
                "/goods/1/statistical_value",
                "/totals/invoice"
            ]
        );
        assert_eq!(partial.rest["goods"][1]["hs_code"], "847989");
        assert!(partial.rest["goods"][0].get("customs_value").is_none());
        assert!(partial.rest["totals"].get("invoice").is_none());
        assert_eq!(
            found[0].to_string(),
            format!("{} (at /goods/0/customs_value)", found[0].why)
        );

        // A whole object: no gaps, and the object in canonical form.
        let mut whole = base.clone();
        whole["goods"][0]["customs_value"]["currency"] = "USD".into();
        whole["goods"][1]["statistical_value"]["value"] = "2".into();
        whole["totals"]["invoice"]["value"] = "3".into();
        let (gaps_of_whole, rest) = gaps("declaration", whole.clone());
        assert!(gaps_of_whole.is_empty(), "{gaps_of_whole:?}");
        let typed: crate::model::Declaration = serde_json::from_value(whole).unwrap();
        assert_eq!(rest.unwrap().rest, serde_json::to_value(typed).unwrap());

        // A list item without its sequence cannot be left out (those after
        // it would be renumbered): the search ends there.
        let mut item = base.clone();
        item["goods"][0]["customs_value"]["currency"] = "USD".into();
        item["goods"][1].as_object_mut().unwrap().remove("sequence");
        let (gaps_of_item, rest) = gaps("declaration", item);
        let pointers: Vec<&str> = gaps_of_item.iter().map(|g| g.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/goods/1/statistical_value/value", "/goods/1"],
            "{gaps_of_item:?}"
        );
        assert!(rest.is_none());

        // Nor can the object itself; an original declaration without its
        // kind is read whole all the same (only its own check misses it).
        let mut root = base.clone();
        root.as_object_mut().unwrap().remove("lrn");
        let (gaps_of_root, rest) = gaps("declaration", root);
        // (After the gaps of its fields: its own come last.)
        assert_eq!(gaps_of_root.len(), 4, "{gaps_of_root:?}");
        assert_eq!(gaps_of_root[3].pointer, "");
        assert_eq!(gaps_of_root[3].why, "missing field `lrn`");
        assert!(rest.is_none());
        let mut kind = serde_json::json!({"function": "original", "lrn": "L1", "totals": {}});
        let (gaps_of_kind, rest) = gaps("declaration", kind.clone());
        assert_eq!(gaps_of_kind.len(), 1);
        assert_eq!(gaps_of_kind[0].why, "missing field `kind`");
        assert_eq!(rest.unwrap().rest["lrn"], "L1");
        kind["kind"] = "import".into();
        assert!(gaps("declaration", kind).0.is_empty());
        assert_eq!(gaps("nothing", serde_json::json!({})).0.len(), 1);

        // A value in error in an object that also lacks a field: the value
        // is said once (not again as the missing field it becomes), and the
        // object is left out whole; what else it lacked cannot be found
        // (serde names the first missing field only).
        let bad = serde_json::json!({
            "kind": "import", "function": "original", "lrn": "L1",
            "totals": {"invoice": {"value": "abc"}}
        });
        let (found, rest) = gaps("declaration", bad);
        let said: Vec<(&str, bool)> = found
            .iter()
            .map(|g| {
                (
                    g.pointer.as_str(),
                    g.why.starts_with("missing field `currency`"),
                )
            })
            .collect();
        assert_eq!(said, [("/totals/invoice/value", false)], "{found:?}");
        assert!(rest.unwrap().rest["totals"].get("invoice").is_none());
        // A value in error whose leaving out ends the search (a list item's
        // sequence, the object's function): said once.
        let bad = serde_json::json!({
            "kind": "import", "function": "bogus", "lrn": "L1", "totals": {}
        });
        let (found, rest) = gaps("declaration", bad);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pointer, "/function");
        assert!(rest.is_none());
    }

    /// However many gaps, at most `MAX_GAPS` are looked for.
    #[test]
    fn the_search_for_gaps_is_bounded() {
        let goods: Vec<serde_json::Value> = (1..=100)
            .map(|n| serde_json::json!({"sequence": n, "customs_value": {"value": "1"}}))
            .collect();
        let value = serde_json::json!({
            "kind": "import", "function": "original", "lrn": "L1", "totals": {},
            "goods": goods
        });
        let (found, rest) = gaps("declaration", value);
        assert_eq!(found.len(), MAX_GAPS);
        assert!(rest.is_none());
    }

    /// Gaps are reported within the bound of a message's report, the first
    /// always.
    #[test]
    fn gap_issues_fit_the_report() {
        let gaps: Vec<Gap> = (0..5)
            .map(|n| Gap {
                pointer: format!("/goods/{n}/customs_value"),
                why: "missing field `currency`".into(),
            })
            .collect();
        let whole = Location::default();
        let what = "the mapped declaration";
        let all = gap_issues(&gaps, &BTreeMap::new(), &whole, what, 0);
        assert_eq!(all.len(), 5);
        assert_eq!(
            all[2].location.field.as_deref(),
            Some("/goods/2/customs_value")
        );
        assert_eq!(
            all[2].message,
            "the mapped declaration is incomplete: missing field `currency` (at /goods/2/customs_value)"
        );
        assert_eq!(
            gap_issues(
                &gaps,
                &BTreeMap::new(),
                &whole,
                what,
                MAX_MAPPING_ISSUES - 2
            )
            .len(),
            2
        );
        assert_eq!(
            gap_issues(
                &gaps,
                &BTreeMap::new(),
                &whole,
                what,
                MAX_MAPPING_ISSUES + 1
            )
            .len(),
            1
        );
    }

    /// Warnings filling the cap and errors after them: the errors are
    /// kept (in their place among the warnings that still fit), and the
    /// count says which severities were left out.
    #[test]
    fn capped_issues_keep_errors_before_warnings() {
        let warn =
            |n: usize| Issue::warning(Code::MappingUnmapped, Location::default(), format!("w{n}"));
        let err = |n: usize| {
            Issue::error(
                Code::MappingValueInvalid,
                Location::default(),
                format!("e{n}"),
            )
        };
        let mut issues: Vec<Issue> = (0..MAX_MAPPING_ISSUES).map(warn).collect();
        issues.extend((0..3).map(err));
        cap_issues(&mut issues, Location::default());
        assert_eq!(issues.len(), MAX_MAPPING_ISSUES + 1);
        assert_eq!(issues.iter().filter(|i| i.is_error()).count(), 3);
        assert_eq!(
            issues[MAX_MAPPING_ISSUES - 4].message,
            format!("w{}", MAX_MAPPING_ISSUES - 4)
        );
        assert_eq!(issues[MAX_MAPPING_ISSUES - 3].message, "e0");
        let last = &issues[MAX_MAPPING_ISSUES];
        assert_eq!(last.code, Code::TooManyIssues);
        assert!(!last.is_error(), "only warnings were left out");
        assert_eq!(
            last.message,
            "3 further mapping issue(s) not recorded (0 error(s), 3 warning(s))"
        );

        // At the cap nothing changes.
        let mut exact: Vec<Issue> = (0..MAX_MAPPING_ISSUES).map(err).collect();
        cap_issues(&mut exact, Location::default());
        assert_eq!(exact.len(), MAX_MAPPING_ISSUES);
        assert!(exact.iter().all(|i| i.code == Code::MappingValueInvalid));
    }

    fn at(tag: &str, segment: u32, element: Option<u16>) -> Location {
        Location {
            message: Some("1".into()),
            message_segment: Some(segment),
            tag: Some(tag.into()),
            element,
            ..Location::default()
        }
    }

    fn finding(code: Code, pointer: &str) -> Issue {
        Issue::error(
            code,
            Location {
                path: Some(pointer.into()),
                ..Location::default()
            },
            "x",
        )
    }

    #[test]
    fn findings_take_the_provenance_of_their_field_or_nearest_ancestor() {
        let provenance: BTreeMap<String, Location> = [
            ("", at("UNH", 1, None)),
            ("/goods", at("CST", 11, None)),
            ("/goods/1", at("CST", 15, None)),
            ("/goods/1/hs_code", at("CST", 15, Some(2))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut issues = vec![
            finding(Code::RuleHsCode, "/goods/1/hs_code"),
            finding(Code::RuleCountry, "/goods/1/origin"),
            finding(Code::RuleParty, "/exporter"),
            finding(Code::RuleItems, "/goods/7/sequence"),
            // Not a rule finding, not a pointer: left alone.
            finding(Code::XmlSchemaInvalid, "/goods/1"),
            finding(Code::RuleParty, "Declaration/Exporter"),
        ];
        let before = issues.clone();
        locate(&mut issues, &provenance);
        /// Tag, position in the message, element, canonical field.
        type Place<'a> = (Option<&'a str>, Option<u32>, Option<u16>, Option<&'a str>);
        let got: Vec<Place<'_>> = issues
            .iter()
            .map(|i| {
                let l = &i.location;
                (
                    l.tag.as_deref(),
                    l.message_segment,
                    l.element,
                    l.field.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got.get(..4),
            Some(
                &[
                    (Some("CST"), Some(15), Some(2), Some("/goods/1/hs_code")),
                    (Some("CST"), Some(15), None, Some("/goods/1/origin")),
                    (Some("UNH"), Some(1), None, Some("/exporter")),
                    (Some("CST"), Some(11), None, Some("/goods/7/sequence")),
                ][..]
            )
        );
        assert_eq!(issues.get(4..), before.get(4..));
        // Located once, a finding is not moved again.
        let again = issues.clone();
        locate(&mut issues, &provenance);
        assert_eq!(issues, again);
    }

    #[test]
    fn without_provenance_findings_keep_their_pointer() {
        let mut issues = vec![finding(Code::RuleHsCode, "/goods/0/hs_code")];
        let before = issues.clone();
        locate(&mut issues, &BTreeMap::new());
        assert_eq!(issues, before);
    }
}
