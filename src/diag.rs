//! Diagnostics: every problem tradehub finds in an input is an [`Issue`] with a
//! stable [`Code`], a [`Severity`] and a [`Location`].
//!
//! Syntax codes are the numbers of the UN/EDIFACT service code list 0085
//! ("Syntax error, coded"), written `E00nn`, so that they can be copied into a
//! CONTRL acknowledgement unchanged. Codes that 0085 has no number for are the
//! project's own, grouped by prefix (`EDI` syntax engine limits and recovery).
//! Codes are never renumbered; docs/codes.md documents each of them and a test
//! keeps the two in step.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How serious an issue is. An input with any `Error` is rejected; warnings
/// are reported but do not reject it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal ),+ $(,)?) => {
        /// A stable issue code. `as_str` is the form users see and the form
        /// that is stored; it never changes once released.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[$doc])* $variant, )+
        }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            /// The stable text of the code, e.g. `E0029`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text,)+ }
            }

            /// Parses the stable text of a code.
            pub fn parse(text: &str) -> Option<Code> {
                match text { $($text => Some(Code::$variant),)+ _ => None }
            }
        }
    };
}

codes! {
    /// 0085 code 1: the UNA service string advice cannot be understood.
    UnaNotSupported = "E0001",
    /// 0085 code 2: syntax identifier or version not supported.
    SyntaxNotSupported = "E0002",
    /// 0085 code 7: the interchange is addressed (UNB S003) to someone
    /// other than this hub.
    RecipientNotActual = "E0007",
    /// 0085 code 12: a value does not conform to its specification.
    InvalidValue = "E0012",
    /// 0085 code 13: a mandatory segment, element or component is missing.
    Missing = "E0013",
    /// 0085 code 14: a value is not supported in this position.
    ValueNotSupported = "E0014",
    /// 0085 code 15: a segment, element or component is not supported in this position.
    NotSupportedInPosition = "E0015",
    /// 0085 code 16: too many data elements in a segment or components in a composite.
    TooManyConstituents = "E0016",
    /// 0085 code 19: invalid decimal notation.
    InvalidDecimalNotation = "E0019",
    /// 0085 code 20: a character advised in UNA is invalid as a service character.
    InvalidAsServiceCharacter = "E0020",
    /// 0085 code 21: a character is not in the repertoire of the syntax level.
    InvalidCharacter = "E0021",
    /// 0085 code 22: invalid service character (e.g. a release character at the end of input).
    InvalidServiceCharacter = "E0022",
    /// 0085 code 25: the interchange is a test (UNB 0035), which the hub
    /// does not process.
    TestIndicatorNotSupported = "E0025",
    /// 0085 code 26: duplicate interchange, group or message detected.
    Duplicate = "E0026",
    /// 0085 code 28: control references in header and trailer do not match.
    ReferencesDoNotMatch = "E0028",
    /// 0085 code 29: control count does not match the number of instances received.
    ControlCountMismatch = "E0029",
    /// 0085 code 30: functional groups and messages mixed at the same level.
    GroupsAndMessagesMixed = "E0030",
    /// 0085 code 31: more than one message type in a functional group.
    MixedMessageTypesInGroup = "E0031",
    /// 0085 code 32: the interchange or a group contains no messages.
    LowerLevelEmpty = "E0032",
    /// 0085 code 33: a segment occurs outside a message or group, or after UNZ.
    InvalidOccurrence = "E0033",
    /// 0085 code 35: too many segment repetitions.
    TooManySegmentRepetitions = "E0035",
    /// 0085 code 36: too many segment group repetitions.
    TooManyGroupRepetitions = "E0036",
    /// 0085 code 37: invalid type of characters (e.g. letters in a numeric element).
    InvalidCharacterType = "E0037",
    /// 0085 code 38: a decimal mark with no digit before it (`.5`); ISO
    /// 9735 wants at least one digit on each side of the mark.
    MissingDigitBeforeDecimal = "E0038",
    /// 0085 code 39: data element too long.
    TooLong = "E0039",
    /// 0085 code 40: data element too short.
    TooShort = "E0040",
    /// 0085 code 45: a separator directly before a segment terminator or
    /// another separator that ends an empty trailing constituent.
    TrailingSeparator = "E0045",
    /// Project code: a segment is longer than the configured maximum segment size.
    SegmentTooLarge = "EDI101",
    /// Project code: the input ends inside a segment (no segment terminator).
    UnterminatedSegment = "EDI102",
    /// Project code: bytes that are not part of any segment (a byte order mark,
    /// indentation, blank lines) were skipped.
    StrayBytes = "EDI103",
    /// Project code: the input is empty or is not an EDIFACT interchange at all.
    NotEdifact = "EDI104",
    /// Project code: a segment tag is not three (service: UN*) upper-case letters or digits.
    InvalidTag = "EDI105",
    /// Project code: too many issues; later ones were not recorded.
    TooManyIssues = "EDI106",
    /// Project code: the message's directory release (UNH S009) is not
    /// available, so its structure was not validated.
    DirectoryUnavailable = "SCH001",
    /// Project code: the message type is not defined in its release.
    UnknownMessageType = "SCH002",
    /// Project code: the message is not a UN (0051 `UN`) directory message,
    /// so no UNTDID structure applies.
    NotUnMessage = "SCH003",
    /// Project code: a service message (CONTRL, AUTACK, KEYMAN), whose
    /// structure ISO 9735 defines; checked for syntax only.
    ServiceMessage = "SCH004",
    /// Project code: an XML document is not well-formed (reported by the
    /// guard pass or by libxml2).
    XmlNotWellFormed = "XML001",
    /// Project code: an XML document does not conform to its WCO schema
    /// (libxml2's schema validity errors).
    XmlSchemaInvalid = "XML002",
    /// Project code: the document carries a document type declaration (DTD);
    /// refused so that no external entity is fetched and no entity expanded.
    XmlDtd = "XML003",
    /// Project code: the XML document is larger than the configured limit.
    XmlTooLarge = "XML004",
    /// Project code: elements are nested deeper than the configured limit.
    XmlTooDeep = "XML005",
    /// Project code: the document has more elements than the configured limit.
    XmlTooManyElements = "XML006",
    /// Project code: an element has too many attributes or an attribute value
    /// is longer than the configured limit.
    XmlAttributeTooLarge = "XML007",
    /// Project code: a run of character data is longer than the configured limit.
    XmlTextTooLarge = "XML008",
    /// Project code: the document is not UTF-8 (UTF-16, another declared
    /// encoding, or bytes that are not UTF-8).
    XmlEncoding = "XML009",
    /// Project code: the WCO schemas could not be found or compiled, so the
    /// document was not validated.
    XmlSchemaUnavailable = "XML010",
    /// Project code: more schema errors than the configured maximum; the rest
    /// were counted, not recorded.
    XmlTooManyIssues = "XML011",
    /// Project code: a well-formed WCO document that is not a declaration
    /// (e.g. a response) submitted to the hub, which takes declarations.
    XmlNotDeclaration = "XML012",
    /// Project code: an element or attribute name is longer than 256
    /// bytes, or the document uses more than 4096 distinct names (fixed
    /// limits of the guard pass).
    XmlNames = "XML013",
    /// Project code: a non-empty value of the message that no mapping rule
    /// read; reported so that nothing is dropped silently (warning).
    MappingUnmapped = "MAP001",
    /// Project code: a mapped value cannot be converted (not a decimal, a
    /// whole number or a date of its format).
    MappingValueInvalid = "MAP002",
    /// Project code: a code has no translation in the mapping file.
    MappingCodeUnknown = "MAP003",
    /// Project code: the mapped result is not a complete canonical object
    /// (a required field is missing or has the wrong type).
    MappingIncomplete = "MAP004",
    /// Project code: no mapping file exists for the message type and
    /// release, or it does not compile.
    MappingUnavailable = "MAP005",
    /// Project code: a canonical value cannot be written to the outbound
    /// message: the schema type of its element refuses it (length, digits,
    /// pattern, code list), the element cannot repeat or already holds
    /// another value, or its type is not one the writer can check.
    MappingUnwritable = "MAP006",
    /// Project code (business rule): a required party is missing (the
    /// declarant; the importer of an import, the exporter of an export).
    RuleParty = "RUL001",
    /// Project code (business rule): an HS code is missing or not 6 to 10 digits.
    RuleHsCode = "RUL002",
    /// Project code (business rule): a total differs from the sum of the goods
    /// items beyond the tolerance (value, mass, packages, item count).
    RuleTotals = "RUL003",
    /// Project code (business rule): not an ISO 4217 currency code.
    RuleCurrency = "RUL004",
    /// Project code (business rule): not an ISO 3166-1 alpha-2 country code.
    RuleCountry = "RUL005",
    /// Project code (business rule): a date after the time of checking.
    RuleFutureDate = "RUL006",
    /// Project code (business rule): more than 999 goods items, or items not
    /// numbered 1, 2, 3 … in order.
    RuleItems = "RUL007",
    /// Project code (business rule): an amendment or cancellation refers to
    /// an LRN that no live declaration of the sender has, or to one that can
    /// no longer change (cleared, released).
    RuleReference = "RUL008",
    /// Project code (business rule): an original declaration reuses an LRN
    /// of a live declaration of the same sender.
    RuleDuplicateLrn = "RUL009",
    /// Project code (business rule, warning): a passenger list's declared
    /// total of passengers or crew differs from the travellers it lists.
    RuleTravellerCount = "RUL010",
    /// Project code (business rule, warning): a cargo report places a
    /// consignment's goods in a container its equipment does not list.
    RuleEquipment = "RUL011",
    /// Project code (business rule): an amount, mass or volume of a
    /// declaration is negative.
    RuleNegative = "RUL012",
    /// Project code: the interchange sender (UNB S002) is not the
    /// authenticated partner that submitted it.
    WrongSender = "HUB201",
    /// Project code: an AMQP message whose sender cannot be identified (no
    /// `user_id` property, or one that is not a registered partner).
    UnknownSender = "HUB202",
    /// Project code: a submission from an account that acts for an agency
    /// or for customs: such accounts answer permit requests and release
    /// goods; they do not file declarations, manifests or lists.
    NotASender = "HUB203",
    /// Project code: the partner is suspended (`tradehub partner suspend`):
    /// its submissions and, for an agency's account, its decisions are
    /// refused until an operator reinstates it.
    PartnerSuspended = "HUB204",
    /// Project code: an agency refused a permit the declaration needs.
    PermitRefused = "HUB301",
    /// Project code: an agency did not answer a permit request in time.
    PermitExpired = "HUB302",
    /// Project code: an agency reply that cannot be taken (not a permit
    /// decision, or for a permit that does not exist); dead-lettered.
    PermitReplyInvalid = "HUB303",
    /// Project code: an agency decision for a permit already answered (or
    /// expired) that differs from the answer recorded; the first answer
    /// stands, and this one is dead-lettered with the reason so that the
    /// agency can see it was not taken.
    PermitAlreadyAnswered = "HUB304",
    /// Project code: the store refused to take a message for a reason that
    /// retrying cannot change (a constraint the message breaks, a fault in
    /// the pipeline); an AMQP delivery is dead-lettered with the reason
    /// instead of being requeued.
    StoreRefused = "HUB501",
    /// Project code: a file in a drop folder that cannot be read; moved to
    /// `failed/` with the reason when it can be moved.
    DropFileUnreadable = "HUB502",
    /// Project code: an AMQP message larger than the configured limit
    /// (`--max-body-bytes`); dead-lettered unread with the reason.
    TooLarge = "HUB413",
    /// Project code: an interchange with more messages than the hub takes
    /// in one (`--max-messages`); refused before any is mapped.
    TooManyMessages = "HUB414",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Code {
    /// The UN/EDIFACT 0085 number of a syntax code (`E0029` → 29), if it is one.
    pub fn syntax_error_number(self) -> Option<u16> {
        self.as_str().strip_prefix('E')?.parse().ok()
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Code::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown issue code {text:?}")))
    }
}

/// Where an issue is. Every field is optional; a producer fills in what it
/// knows. EDIFACT positions are 1-based as in CONTRL; byte offsets are 0-based.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// Interchange control reference (UNB 0020).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interchange: Option<String>,
    /// Functional group reference (UNG 0048).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Message reference number (UNH 0062).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Position of the segment in the interchange, UNA not counted, UNB = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<u32>,
    /// Position of the segment in its message, UNH = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_segment: Option<u32>,
    /// Segment tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Segment group path inside the message, e.g. `SG7/SG11`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_path: Option<String>,
    /// Data element position in the segment, 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<u16>,
    /// Repetition of the data element, 1-based (syntax version 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition: Option<u16>,
    /// Component position in the composite, 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<u16>,
    /// Byte offset in the input, 0-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Line in a text input (XML), 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Column in a text input (XML), 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// Element path in an XML document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// JSON pointer of the canonical field a business-rule finding is about
    /// (`/goods/1/hs_code`), kept when the finding is located in the
    /// message the field came from (`mapping::locate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For a mandatory segment or segment group that is not there: its tag
    /// or group (`SG7`). Such a finding is placed at the segment after the
    /// gap; CONTRL reports it at the segment before (0096).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

impl Location {
    /// A location at a byte offset only.
    pub fn at_offset(offset: u64) -> Self {
        Location {
            offset: Some(offset),
            ..Location::default()
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(v) = &self.interchange {
            parts.push(format!("interchange {v}"));
        }
        if let Some(v) = &self.group {
            parts.push(format!("group {v}"));
        }
        if let Some(v) = &self.message {
            parts.push(format!("message {v}"));
        }
        if let Some(v) = self.segment {
            let tag = self.tag.as_deref().unwrap_or("?");
            match self.message_segment {
                Some(m) => parts.push(format!("segment {v} ({tag}, #{m} in message)")),
                None => parts.push(format!("segment {v} ({tag})")),
            }
        } else if let Some(tag) = &self.tag {
            parts.push(format!("segment {tag}"));
        }
        if let Some(v) = &self.group_path {
            parts.push(format!("group {v}"));
        }
        if let Some(v) = self.element {
            match self.repetition {
                Some(r) if r > 1 => parts.push(format!("element {v} repetition {r}")),
                _ => parts.push(format!("element {v}")),
            }
        }
        if let Some(v) = self.component {
            parts.push(format!("component {v}"));
        }
        if let Some(v) = &self.path {
            parts.push(v.clone());
        }
        if let Some(v) = &self.field {
            parts.push(format!("field {v}"));
        }
        match (self.line, self.column) {
            (Some(l), Some(c)) => parts.push(format!("line {l} column {c}")),
            (Some(l), None) => parts.push(format!("line {l}")),
            _ => {}
        }
        if let Some(v) = self.offset {
            parts.push(format!("byte {v}"));
        }
        if parts.is_empty() {
            f.write_str("(whole input)")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// One problem found in an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub code: Code,
    pub severity: Severity,
    pub location: Location,
    pub message: String,
}

impl Issue {
    pub fn error(code: Code, location: Location, message: impl Into<String>) -> Self {
        Issue {
            code,
            severity: Severity::Error,
            location,
            message: message.into(),
        }
    }

    pub fn warning(code: Code, location: Location, message: impl Into<String>) -> Self {
        Issue {
            code,
            severity: Severity::Warning,
            location,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{sev} {}: {} [{}]",
            self.code, self.message, self.location
        )
    }
}

/// True when none of the issues is an error.
pub fn is_valid(issues: &[Issue]) -> bool {
    !issues.iter().any(Issue::is_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(
                seen.insert(code.as_str()),
                "duplicate code text {}",
                code.as_str()
            );
            assert_eq!(Code::parse(code.as_str()), Some(*code));
        }
    }

    #[test]
    fn syntax_codes_carry_their_0085_number() {
        assert_eq!(Code::ControlCountMismatch.syntax_error_number(), Some(29));
        assert_eq!(Code::Missing.syntax_error_number(), Some(13));
        assert_eq!(Code::SegmentTooLarge.syntax_error_number(), None);
    }

    #[test]
    fn issue_serialises_with_text_code_and_sparse_location() {
        let issue = Issue::error(
            Code::Missing,
            Location {
                segment: Some(3),
                tag: Some("UNT".into()),
                ..Location::default()
            },
            "UNT missing",
        );
        let json = serde_json::to_string(&issue).unwrap();
        assert_eq!(
            json,
            r#"{"code":"E0013","severity":"error","location":{"segment":3,"tag":"UNT"},"message":"UNT missing"}"#
        );
        let back: Issue = serde_json::from_str(&json).unwrap();
        assert_eq!(back, issue);
    }
}
