//! WCO Data Model RES (response) documents: a typed response, the writer that
//! turns it into a MetaData-wrapped XML document valid against the WCO
//! RES-DMS:2 schema (`schemas/wco/notification/entry.xsd`), and the mapping
//! from an element path of a WCO DEC declaration to a RES `Pointer` chain.
//!
//! The writer checks every value against the facet of its schema type
//! (lengths, digits, date pattern, currency pattern, XML 1.0 characters)
//! and refuses a response it cannot write validly, naming the field; it
//! never writes a document the schema would reject.

use std::borrow::Cow;

use rust_decimal::Decimal;

use crate::model::{Amount, Quantity};
use crate::timestamp::Timestamp;

/// Namespace of the MetaData wrapper.
const NS_METADATA: &str = "urn:wco:datamodel:WCO:DocumentMetaData-DMS:2";
/// Namespace of the Response and its children.
const NS_RESPONSE: &str = "urn:wco:datamodel:WCO:RES-DMS:2";
/// Namespace of `DateTimeString` inside response date/time elements.
const NS_RESPONSE_DS: &str = "urn:wco:datamodel:WCO:Response_DS:DMS:2";
/// The WCO Data Model version the schemas implement.
const DATA_MODEL_VERSION: &str = "3.6";
/// `SequenceNumeric` is `n..5` (totalDigits 5).
const MAX_SEQUENCE: u32 = 99_999;

/// What a response says about the declaration: the WCO `Response/FunctionCode`
/// (UN/EDIFACT 1225 as profiled by the administration), written as two digits.
/// The named codes are those of HMRC's CDS notifications (DMSACC 01, DMSRCV 02,
/// DMSREJ 03, DMSDOC 06, DMSCLE 09, DMSTAX 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseFunction {
    /// `01`: the declaration was accepted (the response carries the MRN and
    /// usually the acceptance date).
    Accepted,
    /// `02`: the declaration was received and is being processed.
    Received,
    /// `03`: the declaration was rejected; the response carries `Error`s.
    Rejected,
    /// `05`: the goods are under control (held for a physical or
    /// documentary examination).
    UnderControl,
    /// `06`: documents are required before the declaration can proceed
    /// (`AdditionalInformation` says which and by when).
    DocumentsRequired,
    /// `07`: the declaration was amended.
    Amended,
    /// `08`: the goods are released.
    Released,
    /// `09`: the goods are cleared (released).
    Cleared,
    /// `10`: the declaration was cancelled (invalidated).
    Cancelled,
    /// `13`: tax assessment: duties and taxes per goods item, payment details.
    TaxAssessment,
    /// Any other two-digit function code (0–99) an administration uses.
    Other(u8),
}

impl ResponseFunction {
    /// The numeric function code (written as two digits, e.g. `03`).
    pub fn code(self) -> u8 {
        match self {
            ResponseFunction::Accepted => 1,
            ResponseFunction::Received => 2,
            ResponseFunction::Rejected => 3,
            ResponseFunction::UnderControl => 5,
            ResponseFunction::DocumentsRequired => 6,
            ResponseFunction::Amended => 7,
            ResponseFunction::Released => 8,
            ResponseFunction::Cleared => 9,
            ResponseFunction::Cancelled => 10,
            ResponseFunction::TaxAssessment => 13,
            ResponseFunction::Other(code) => code,
        }
    }

    /// The function a numeric code stands for; unnamed codes are `Other`.
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => ResponseFunction::Accepted,
            2 => ResponseFunction::Received,
            3 => ResponseFunction::Rejected,
            5 => ResponseFunction::UnderControl,
            6 => ResponseFunction::DocumentsRequired,
            7 => ResponseFunction::Amended,
            8 => ResponseFunction::Released,
            9 => ResponseFunction::Cleared,
            10 => ResponseFunction::Cancelled,
            13 => ResponseFunction::TaxAssessment,
            other => ResponseFunction::Other(other),
        }
    }
}

/// One WCO response (`res:Response`) about one declaration.
///
/// The schema's `Amendment`, `AppealOffice`, `ContactOffice` and the copy of
/// the declaration (`dec:Declaration`) are not modelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WcoResponse {
    /// What the response says (`FunctionCode`).
    pub function: ResponseFunction,
    /// The response's own identifier (`FunctionalReferenceID`, an..35).
    pub functional_reference_id: String,
    /// When the response was issued (`IssueDateTime`).
    pub issued: Timestamp,
    /// Statements to the declarant (`AdditionalInformation`), e.g. the
    /// documents required and the date they are due by.
    pub additional_information: Vec<AdditionalInformation>,
    /// Why the declaration was rejected or queried (`Error`), in order.
    pub errors: Vec<ResponseError>,
    /// Status codes (`Status`).
    pub statuses: Vec<Status>,
    /// Duties and taxes assessed and where to pay them (function 13): the
    /// `Bank` of the response and the `DutyTaxFee`s under its `Declaration`.
    pub tax: Option<TaxAssessment>,
    /// The declaration responded to (`Declaration`, required by the schema).
    pub declaration: DeclarationRef,
}

impl WcoResponse {
    /// A response with no statements, errors, statuses or tax data and an
    /// empty declaration reference.
    pub fn new(
        function: ResponseFunction,
        functional_reference_id: impl Into<String>,
        issued: Timestamp,
    ) -> Self {
        WcoResponse {
            function,
            functional_reference_id: functional_reference_id.into(),
            issued,
            additional_information: Vec::new(),
            errors: Vec::new(),
            statuses: Vec::new(),
            tax: None,
            declaration: DeclarationRef::default(),
        }
    }
}

/// The declaration a response is about (`res:Declaration`). Which dates are
/// given follows the function: acceptance for accepted, rejection for
/// rejected, cancellation for a cancelled declaration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclarationRef {
    /// The trader's reference, LRN (`FunctionalReferenceID`, an..35).
    pub lrn: Option<String>,
    /// The customs reference, MRN (`ID`, an..70).
    pub mrn: Option<String>,
    /// `AcceptanceDateTime`.
    pub accepted: Option<Timestamp>,
    /// `CancellationDateTime`.
    pub cancelled: Option<Timestamp>,
    /// `RejectionDateTime`.
    pub rejected: Option<Timestamp>,
    /// The declaration version responded to (`VersionID`, an..9).
    pub version_id: Option<String>,
}

/// A statement to the declarant (`AdditionalInformation`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdditionalInformation {
    /// `StatementCode` (an..17).
    pub statement_code: Option<String>,
    /// `StatementDescription` (free text, an..512).
    pub statement_description: Option<String>,
    /// When the action asked for is due (`LimitDateTime`).
    pub limit: Option<Timestamp>,
    /// `StatementTypeCode` (UN/EDIFACT 4451, an..3).
    pub statement_type_code: Option<String>,
    /// What in the declaration the statement is about.
    pub pointers: Vec<Pointer>,
}

/// One error found in the declaration (`Error`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseError {
    /// The error code (`ValidationCode`, an..8, e.g. `CDS12005`); not blank.
    pub validation_code: String,
    /// Human-readable text (`Description`, an..512).
    pub description: Option<String>,
    /// Where the error is: one pointer per class from the declaration down,
    /// as [`pointers_for_path`] builds them.
    pub pointers: Vec<Pointer>,
}

/// One step of a location in a declaration (`Pointer`): a WCO Data Model
/// class, which occurrence of it, and on the last step the data element.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Pointer {
    /// Which occurrence of a repeatable class, from 1 (`SequenceNumeric`,
    /// n..5).
    pub sequence: Option<u32>,
    /// The WCO class code, e.g. `42A` Declaration, `68A` goods item
    /// (`DocumentSectionCode`, an..3); not blank.
    pub document_section_code: String,
    /// The WCO data element tag, e.g. `R144` (`TagID`, an..4).
    pub tag_id: Option<String>,
}

/// A status of the declaration (`Status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// The status code (`NameCode`, an..3); not blank.
    pub name_code: String,
    /// `EffectiveDateTime`.
    pub effective: Option<Timestamp>,
    /// `ReleaseDateTime`.
    pub released: Option<Timestamp>,
    /// What in the declaration the status is about.
    pub pointers: Vec<Pointer>,
}

/// Duties and taxes assessed on a declaration and how to pay them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaxAssessment {
    /// The bank to pay to, e.g. its BIC (`Bank/ReferenceID`, an..17).
    pub bank_reference_id: Option<String>,
    /// The account to pay to, e.g. an IBAN (`Bank/ID`, an..35).
    pub bank_account_id: Option<String>,
    /// Declaration-level payments (`Declaration/DutyTaxFee/Payment`).
    pub payments: Vec<Payment>,
    /// Per goods item duties (`Declaration/GoodsShipment/
    /// GovernmentAgencyGoodsItem`).
    pub items: Vec<ItemAssessment>,
}

/// A payment due for the declaration as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payment {
    /// `ReferenceID` (an..35).
    pub reference_id: Option<String>,
    /// `TaxAssessedAmount` (n..16,3).
    pub assessed: Option<Amount>,
    /// `DueDateTime`.
    pub due: Option<Timestamp>,
    /// The amount paid or to be paid (`PaymentAmount`, n..16,3).
    pub payable: Option<Amount>,
    /// Guarantees the payment is secured by (`ObligationGuarantee/
    /// ReferenceID`, an..35 each).
    pub guarantee_references: Vec<String>,
}

/// The duties and taxes assessed on one goods item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemAssessment {
    /// The goods item's `SequenceNumeric` in the declaration (1–99999).
    pub sequence: u32,
    /// One entry per duty or tax (`Commodity/DutyTaxFee`).
    pub duties: Vec<DutyTaxFee>,
}

/// One duty, tax or fee on a goods item (`DutyTaxFee`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DutyTaxFee {
    /// The tax base when ad valorem (`AdValoremTaxBaseAmount`, n..16,3).
    pub ad_valorem_base: Option<Amount>,
    /// `DeductAmount` (n..16,3).
    pub deduction: Option<Amount>,
    /// `DutyRegimeCode` (an..3).
    pub duty_regime_code: Option<String>,
    /// The tax base when specific (`SpecificTaxBaseQuantity`, n..16,6; unit
    /// 1–5 characters).
    pub specific_base: Option<Quantity>,
    /// `TaxRateNumeric`.
    pub rate: Option<Decimal>,
    /// The duty or tax type, e.g. `A00` customs duty, `B00` VAT (`TypeCode`,
    /// an..3).
    pub type_code: Option<String>,
    /// `Payment/TaxAssessedAmount` (n..16,3).
    pub assessed: Option<Amount>,
    /// The amount paid or to be paid (`Payment/PaymentAmount`, n..16,3).
    pub payable: Option<Amount>,
}

/// Why a response cannot be written as a schema-valid document: the first
/// value found that its schema type rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct WriteError {
    /// The element (or `element/@attribute`) path in the document that would
    /// have been written, e.g. `/MetaData/Response/Error[2]/ValidationCode`.
    pub field: String,
    /// What is wrong with the value.
    pub kind: WriteErrorKind,
}

/// What is wrong with a value the writer refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteErrorKind {
    /// Longer than the schema type allows (characters, after the whitespace
    /// collapsing the type applies).
    #[error("{found} characters, the schema allows {max}")]
    TooLong { max: usize, found: usize },
    /// Empty or only whitespace where a value is required.
    #[error("blank")]
    Blank,
    /// A character XML 1.0 cannot carry, even escaped.
    #[error("character U+{:04X} cannot be written in XML 1.0", u32::from(*.0))]
    Character(char),
    /// Not a time the schema's `20YYMMDD[HHMMSSZ]` pattern can express (the
    /// year must be 2000–2099).
    #[error("{0} cannot be written as a 20YYMMDDHHMMSSZ date/time")]
    Date(Timestamp),
    /// More digits than the schema type allows.
    #[error(
        "{value} has more digits than the schema allows ({total} in all, {fraction} after the point)"
    )]
    Digits {
        value: Decimal,
        total: u32,
        fraction: u32,
    },
    /// Does not match the schema pattern given.
    #[error("does not match the schema pattern {0}")]
    Pattern(&'static str),
}

/// Turns the element path of a data element or class in a WCO DEC
/// declaration, e.g.
/// `/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[3]/Commodity/Classification/ID`,
/// into the RES `Pointer` chain that locates it: one pointer per WCO class
/// on the path (`42A`, `67A`, `68A` with sequence 3, `23A`, `21A` with
/// sequence 1), the last one carrying the data element's tag (`145`).
///
/// - `[n]` becomes the pointer's `SequenceNumeric` (the position among the
///   same-named siblings, 1–99999). A repeatable class written without an
///   index is taken as the only one (sequence 1), as HMRC's notifications
///   do for goods items; a class that cannot repeat gets no sequence.
/// - A leading `MetaData` step (the wrapper) and a trailing attribute step
///   (`@currencyID`: a pointer cannot address an attribute, the element
///   carrying it is pointed to instead) are skipped; namespace prefixes
///   (`dec:`) are ignored.
/// - A path ending at a class gets no tag.
///
/// Returns the chain and the steps (as written) that could not be mapped:
/// the first step that is not a class or data element of the class before
/// it, has a malformed or out-of-range index, or is a data element without
/// a WCO tag (`Classification/IdentificationTypeCode`), and every step after
/// it. The chain then stops at the deepest class that was mapped, so it
/// still points at the enclosing part of the declaration; the caller decides
/// whether that is precise enough. An empty path gives nothing.
pub fn pointers_for_path(path: &str) -> (Vec<Pointer>, Vec<String>) {
    let trimmed = path.trim();
    let body = trimmed.strip_prefix('/').unwrap_or(trimmed);
    if body.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mut steps: Vec<&str> = body.split('/').collect();
    if steps.len() > 1 && steps.last().is_some_and(|s| s.starts_with('@')) {
        steps.pop();
    }
    // The DateTimeString of a date-time element is its value, not a data
    // element of its own: the pointer names the date-time element.
    if steps.len() > 1 && steps.last() == Some(&crate::mapping::wco::DATE_TIME_STRING) {
        steps.pop();
    }
    if steps.first().and_then(|s| parse_step(s)) == Some(("MetaData", None)) {
        steps.remove(0);
    }
    let mut pointers: Vec<Pointer> = Vec::new();
    let mut class = ""; // the table's name for "above the declaration"
    for (at, step) in steps.iter().enumerate() {
        let last = at + 1 == steps.len();
        let Some((name, index)) = parse_step(step) else {
            return (pointers, unmapped(steps.get(at..).unwrap_or_default()));
        };
        if last
            && index.is_none_or(|n| n == 1)
            && let Some(tag) = data_element_tag(class, name)
            && let Some(pointer) = pointers.last_mut()
        {
            pointer.tag_id = Some(tag.to_owned());
            continue;
        }
        let Some((child, code, repeatable)) = child_class(class, name) else {
            return (pointers, unmapped(steps.get(at..).unwrap_or_default()));
        };
        pointers.push(Pointer {
            sequence: index.or(repeatable.then_some(1)),
            document_section_code: code.to_owned(),
            tag_id: None,
        });
        class = child;
    }
    (pointers, Vec::new())
}

/// The reverse of [`pointers_for_path`]: the classes a chain of pointers
/// names from the top (each with its sequence number and whether it can
/// repeat where it is) and, when the last pointer has a tag, the data
/// element's name. `None` when a class code is not a class under the one
/// before it, a tag is not one of its class, or a pointer before the last
/// has a tag.
pub fn path_for_pointers(pointers: &[Pointer]) -> Option<PointedPath> {
    let mut classes = Vec::new();
    let mut class = "";
    let mut element = None;
    for (at, pointer) in pointers.iter().enumerate() {
        let code = pointer.document_section_code.trim();
        let &(_, child, _, repeatable) = CLASSES
            .iter()
            .find(|(parent, _, c, _)| *parent == class && *c == code)?;
        classes.push(PointedClass {
            name: child,
            sequence: pointer.sequence,
            repeatable,
        });
        class = child;
        if let Some(tag) = pointer.tag_id.as_deref().map(str::trim) {
            if at + 1 != pointers.len() {
                return None;
            }
            element = Some(
                TAGS.iter()
                    .find(|(c, _, t)| *c == class && *t == tag)
                    .map(|&(_, name, _)| name)?,
            );
        }
    }
    Some(PointedPath { classes, element })
}

/// What a chain of pointers names (see [`path_for_pointers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointedPath {
    /// From the top: `Declaration`, `GoodsShipment`, ….
    pub classes: Vec<PointedClass>,
    /// The data element of the last class, when a tag names one.
    pub element: Option<&'static str>,
}

/// One class of a [`PointedPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointedClass {
    pub name: &'static str,
    pub sequence: Option<u32>,
    /// Whether the class can occur more than once where it is.
    pub repeatable: bool,
}

/// `Name`, `prefix:Name`, `Name[n]` → (local name, index); `None` when the
/// step is empty or its index is not 1–99999.
fn parse_step(step: &str) -> Option<(&str, Option<u32>)> {
    let (name, index) = match step.split_once('[') {
        None => (step, None),
        Some((name, rest)) => {
            let digits = rest.strip_suffix(']')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u32 = digits.parse().ok()?;
            if n == 0 || n > MAX_SEQUENCE {
                return None;
            }
            (name, Some(n))
        }
    };
    let local = name.rsplit_once(':').map_or(name, |(_, local)| local);
    (!local.is_empty()).then_some((local, index))
}

fn unmapped(steps: &[&str]) -> Vec<String> {
    steps.iter().map(|s| (*s).to_owned()).collect()
}

/// The class `name` directly inside class `parent` ("" for the top):
/// (its name, its WCO class code, whether it can repeat there).
fn child_class(parent: &str, name: &str) -> Option<(&'static str, &'static str, bool)> {
    CLASSES
        .iter()
        .find(|(p, c, _, _)| *p == parent && *c == name)
        .map(|&(_, child, code, repeatable)| (child, code, repeatable))
}

/// The WCO tag of data element `name` of class `class`.
fn data_element_tag(class: &str, name: &str) -> Option<&'static str> {
    TAGS.iter()
        .find(|(c, e, _)| *c == class && *e == name)
        .map(|&(_, _, tag)| tag)
}

// The two tables below are the `WCOID` annotations of the WCO DEC-DMS:2
// schema, `schemas/wco/declaration/WCO_DEC_2_DMS.xsd` (HMRC's
// hmrc/customs-declarations, public/api/conf/3.0/schemas/wco/declaration/,
// commit 3d05836938860de81b209559afe8d793725b9462), extracted by walking its
// element tree: a class element's WCOID is its WCO Data Model class code,
// which RES uses as `DocumentSectionCode` (42A Declaration, 67A
// GoodsShipment, 68A GovernmentAgencyGoodsItem, 23A Commodity, 21A
// Classification, ...); a data element's WCOID is its tag (`TagID`, e.g. R144
// AuthorisationHolder/ID). A class has the same code under every parent and
// a (class, element) pair the same tag wherever the class occurs. HMRC's
// notifications use the same codes: 03_DMSREJ of hmrc/customs-declarations
// points 42A, 17C + R144; the test notifications of its export service point
// 42A, 67A, 68A (sequence 1), 02A (sequence 2) + 360.
// tests/xml_response.rs checks both tables against the vendored schema.

/// (parent class, child class, WCO class code, repeatable under that parent).
const CLASSES: &[(&str, &str, &str, bool)] = &[
    ("", "Declaration", "42A", false),
    ("AdditionalDocument", "Submitter", "17B", false),
    ("AdditionalDocument", "WriteOff", "22C", false),
    ("AdditionalInformation", "Pointer", "97A", true),
    ("Agent", "Address", "04A", false),
    ("Amendment", "Pointer", "97A", true),
    ("Authentication", "Authenticator", "12A", false),
    ("Buyer", "Address", "04A", false),
    ("Buyer", "Communication", "25A", false),
    ("Buyer", "Contact", "34A", false),
    ("Carrier", "Address", "04A", false),
    ("Carrier", "Communication", "25A", false),
    ("Commodity", "Classification", "21A", true),
    ("Commodity", "DangerousGoods", "12C", true),
    ("Commodity", "DutyTaxFee", "50A", true),
    ("Commodity", "GoodsMeasure", "65A", false),
    ("Commodity", "InvoiceLine", "79A", false),
    ("Commodity", "TransportEquipment", "31B", true),
    ("Consignee", "Address", "04A", false),
    ("Consignment", "ArrivalTransportMeans", "10A", false),
    ("Consignment", "Carrier", "18A", false),
    ("Consignment", "ConsignmentItem", "29A", true),
    ("Consignment", "Consignor", "30A", false),
    ("Consignment", "DepartureTransportMeans", "46A", false),
    ("Consignment", "Freight", "62A", false),
    ("Consignment", "GoodsLocation", "64A", false),
    ("Consignment", "Itinerary", "81A", true),
    ("Consignment", "LoadingLocation", "83A", false),
    ("Consignment", "TransportEquipment", "31B", true),
    ("ConsignmentItem", "Consignor", "30A", false),
    ("ConsignmentItem", "Freight", "62A", false),
    ("Consignor", "Address", "04A", false),
    ("CustomsValuation", "ChargeDeduction", "58B", true),
    ("Declarant", "Address", "04A", false),
    ("Declarant", "Communication", "25A", false),
    ("Declarant", "Contact", "34A", false),
    ("Declaration", "AdditionalDocument", "02A", true),
    ("Declaration", "AdditionalInformation", "03A", true),
    ("Declaration", "Agent", "05A", false),
    ("Declaration", "Amendment", "06A", true),
    ("Declaration", "Authentication", "61B", false),
    ("Declaration", "AuthorisationHolder", "17C", true),
    ("Declaration", "BorderTransportMeans", "15A", false),
    ("Declaration", "Consignment", "28A", false),
    ("Declaration", "CurrencyExchange", "40A", true),
    ("Declaration", "Declarant", "57B", false),
    ("Declaration", "ExitOffice", "56A", false),
    ("Declaration", "Exporter", "57A", false),
    ("Declaration", "GoodsShipment", "67A", false),
    ("Declaration", "ObligationGuarantee", "90A", true),
    ("Declaration", "PresentationOffice", "15C", false),
    ("Declaration", "Submitter", "17B", false),
    ("Declaration", "SupervisingOffice", "97B", false),
    ("DutyTaxFee", "Payment", "94A", false),
    ("Exporter", "Address", "04A", false),
    ("Exporter", "Communication", "25A", false),
    ("Exporter", "Contact", "34A", false),
    ("GoodsLocation", "Address", "04A", false),
    ("GoodsShipment", "AEOMutualRecognitionParty", "16C", true),
    ("GoodsShipment", "Buyer", "16A", false),
    ("GoodsShipment", "Consignee", "27A", false),
    ("GoodsShipment", "Consignment", "28A", false),
    ("GoodsShipment", "Consignor", "30A", false),
    ("GoodsShipment", "CustomsValuation", "41A", false),
    ("GoodsShipment", "Destination", "99B", false),
    ("GoodsShipment", "DomesticDutyTaxParty", "55B", true),
    ("GoodsShipment", "ExportCountry", "95B", false),
    ("GoodsShipment", "GovernmentAgencyGoodsItem", "68A", true),
    ("GoodsShipment", "Importer", "74A", false),
    ("GoodsShipment", "Invoice", "78A", false),
    ("GoodsShipment", "Payer", "56B", false),
    ("GoodsShipment", "PreviousDocument", "99A", true),
    ("GoodsShipment", "Seller", "09B", false),
    ("GoodsShipment", "Surety", "19B", false),
    ("GoodsShipment", "TradeTerms", "22B", false),
    ("GoodsShipment", "UCR", "35B", false),
    ("GoodsShipment", "Warehouse", "43B", false),
    (
        "GovernmentAgencyGoodsItem",
        "AEOMutualRecognitionParty",
        "16C",
        true,
    ),
    (
        "GovernmentAgencyGoodsItem",
        "AdditionalDocument",
        "02A",
        true,
    ),
    (
        "GovernmentAgencyGoodsItem",
        "AdditionalInformation",
        "03A",
        true,
    ),
    ("GovernmentAgencyGoodsItem", "Buyer", "16A", false),
    ("GovernmentAgencyGoodsItem", "Commodity", "23A", false),
    ("GovernmentAgencyGoodsItem", "Consignee", "27A", false),
    ("GovernmentAgencyGoodsItem", "Consignor", "30A", false),
    (
        "GovernmentAgencyGoodsItem",
        "CustomsValuation",
        "41A",
        false,
    ),
    ("GovernmentAgencyGoodsItem", "Destination", "99B", false),
    (
        "GovernmentAgencyGoodsItem",
        "DomesticDutyTaxParty",
        "55B",
        true,
    ),
    ("GovernmentAgencyGoodsItem", "ExportCountry", "95B", false),
    (
        "GovernmentAgencyGoodsItem",
        "GovernmentProcedure",
        "70A",
        true,
    ),
    ("GovernmentAgencyGoodsItem", "Origin", "92A", true),
    ("GovernmentAgencyGoodsItem", "Packaging", "93A", true),
    ("GovernmentAgencyGoodsItem", "PreviousDocument", "99A", true),
    ("GovernmentAgencyGoodsItem", "Seller", "09B", false),
    ("GovernmentAgencyGoodsItem", "UCR", "35B", false),
    (
        "GovernmentAgencyGoodsItem",
        "ValuationAdjustment",
        "39B",
        false,
    ),
    ("Importer", "Address", "04A", false),
    ("Importer", "Communication", "25A", false),
    ("Importer", "Contact", "34A", false),
    ("ObligationGuarantee", "GuaranteeOffice", "14C", false),
    ("Payer", "Address", "04A", false),
    ("Seller", "Address", "04A", false),
    ("Seller", "Communication", "25A", false),
    ("Seller", "Contact", "34A", false),
    ("Submitter", "Address", "04A", false),
    ("Surety", "Address", "04A", false),
    ("TransportEquipment", "Seal", "44B", true),
];

/// (class, data element, WCO tag).
const TAGS: &[(&str, &str, &str)] = &[
    ("AEOMutualRecognitionParty", "ID", "R143"),
    ("AEOMutualRecognitionParty", "RoleCode", "R005"),
    ("AdditionalDocument", "CategoryCode", "D031"),
    ("AdditionalDocument", "EffectiveDateTime", "276"),
    ("AdditionalDocument", "ID", "D005"),
    ("AdditionalDocument", "LPCOExemptionCode", "360"),
    ("AdditionalDocument", "Name", "D028"),
    ("AdditionalDocument", "TypeCode", "D006"),
    ("AdditionalInformation", "StatementCode", "226"),
    ("AdditionalInformation", "StatementDescription", "225"),
    ("AdditionalInformation", "StatementTypeCode", "369"),
    ("Address", "CityName", "241"),
    ("Address", "CountryCode", "242"),
    ("Address", "CountrySubDivisionCode", "244"),
    ("Address", "CountrySubDivisionName", "243"),
    ("Address", "Line", "239"),
    ("Address", "PostcodeID", "245"),
    ("Address", "TypeCode", "410"),
    ("Agent", "FunctionCode", "102"),
    ("Agent", "ID", "R004"),
    ("Agent", "Name", "R003"),
    ("Amendment", "ChangeReasonCode", "099"),
    ("ArrivalTransportMeans", "ID", "T002"),
    ("ArrivalTransportMeans", "IdentificationTypeCode", "T034"),
    ("ArrivalTransportMeans", "ModeCode", "T020"),
    ("ArrivalTransportMeans", "Name", "T001"),
    ("ArrivalTransportMeans", "TypeCode", "T008"),
    ("Authentication", "Authentication", "104"),
    ("Authenticator", "Name", "R007"),
    ("AuthorisationHolder", "CategoryCode", "R145"),
    ("AuthorisationHolder", "ID", "R144"),
    ("BorderTransportMeans", "ID", "T006"),
    ("BorderTransportMeans", "IdentificationTypeCode", "T018"),
    ("BorderTransportMeans", "ModeCode", "T022"),
    ("BorderTransportMeans", "Name", "T005"),
    (
        "BorderTransportMeans",
        "RegistrationNationalityCode",
        "T014",
    ),
    ("BorderTransportMeans", "TypeCode", "T010"),
    ("Buyer", "ID", "R010"),
    ("Buyer", "Name", "R009"),
    ("Carrier", "ID", "R012"),
    ("Carrier", "Name", "R011"),
    ("ChargeDeduction", "ChargesTypeCode", "371"),
    ("ChargeDeduction", "OtherChargeDeductionAmount", "181"),
    ("Classification", "ID", "145"),
    ("Commodity", "Description", "137"),
    ("Communication", "ID", "240"),
    ("Communication", "TypeCode", "253"),
    ("Consignee", "ID", "R015"),
    ("Consignee", "Name", "R014"),
    ("Consignment", "ContainerCode", "096"),
    ("ConsignmentItem", "SequenceNumeric", "006"),
    ("Consignor", "ID", "R021"),
    ("Consignor", "Name", "R020"),
    ("Contact", "Name", "246"),
    ("CurrencyExchange", "CurrencyTypeCode", "135"),
    ("CurrencyExchange", "RateNumeric", "118"),
    ("CustomsValuation", "FreightChargeAmount", "117"),
    ("CustomsValuation", "MethodCode", "122"),
    ("DangerousGoods", "UNDGID", "506"),
    ("Declarant", "ID", "R123"),
    ("Declarant", "Name", "R124"),
    ("Declaration", "AcceptanceDateTime", "023"),
    ("Declaration", "DeclarationOfficeID", "065"),
    ("Declaration", "FunctionCode", "017"),
    ("Declaration", "FunctionalReferenceID", "D026"),
    ("Declaration", "GoodsItemQuantity", "228"),
    ("Declaration", "ID", "D014"),
    ("Declaration", "InvoiceAmount", "109"),
    ("Declaration", "IssueDateTime", "D011"),
    ("Declaration", "IssueLocationID", "D012"),
    ("Declaration", "LoadingListQuantity", "013"),
    ("Declaration", "SpecificCircumstancesCodeCode", "504"),
    ("Declaration", "TotalGrossMassMeasure", "131"),
    ("Declaration", "TotalPackageQuantity", "146"),
    ("Declaration", "TypeCode", "D013"),
    ("DepartureTransportMeans", "ID", "T004"),
    ("DepartureTransportMeans", "IdentificationTypeCode", "T029"),
    ("DepartureTransportMeans", "ModeCode", "T021"),
    ("DepartureTransportMeans", "Name", "T003"),
    ("DepartureTransportMeans", "TypeCode", "T009"),
    ("Destination", "CountryCode", "465"),
    ("Destination", "RegionID", "477"),
    ("DomesticDutyTaxParty", "ID", "R119"),
    ("DomesticDutyTaxParty", "RoleCode", "R005"),
    ("DutyTaxFee", "AdValoremTaxBaseAmount", "116"),
    ("DutyTaxFee", "DeductAmount", "111"),
    ("DutyTaxFee", "DutyRegimeCode", "164"),
    ("DutyTaxFee", "QuotaOrderID", "401"),
    ("DutyTaxFee", "SpecificTaxBaseQuantity", "129"),
    ("DutyTaxFee", "TaxRateNumeric", "115"),
    ("DutyTaxFee", "TypeCode", "113"),
    ("ExitOffice", "ID", "G005"),
    ("ExportCountry", "ID", "062"),
    ("Exporter", "ID", "R032"),
    ("Exporter", "Name", "R031"),
    ("Freight", "PaymentMethodCode", "098"),
    ("GoodsLocation", "ID", "L017"),
    ("GoodsLocation", "Name", "L016"),
    ("GoodsLocation", "TypeCode", "L110"),
    ("GoodsMeasure", "GrossMassMeasure", "126"),
    ("GoodsMeasure", "NetNetWeightMeasure", "128"),
    ("GoodsMeasure", "TariffQuantity", "130"),
    ("GoodsShipment", "ExitDateTime", "024"),
    ("GoodsShipment", "TransactionNatureCode", "103"),
    ("GovernmentAgencyGoodsItem", "CustomsValueAmount", "108"),
    ("GovernmentAgencyGoodsItem", "SequenceNumeric", "006"),
    ("GovernmentAgencyGoodsItem", "StatisticalValueAmount", "114"),
    ("GovernmentAgencyGoodsItem", "TransactionNatureCode", "103"),
    ("GovernmentProcedure", "CurrentCode", "166"),
    ("GovernmentProcedure", "PreviousCode", "161"),
    ("GuaranteeOffice", "ID", "G014"),
    ("Importer", "ID", "R038"),
    ("Importer", "Name", "R037"),
    ("Invoice", "ID", "D016"),
    ("Invoice", "IssueDateTime", "D015"),
    ("InvoiceLine", "ItemChargeAmount", "112"),
    ("Itinerary", "RoutingCountryCode", "064"),
    ("Itinerary", "SequenceNumeric", "006"),
    ("LoadingLocation", "ID", "L010"),
    ("LoadingLocation", "Name", "L009"),
    ("ObligationGuarantee", "AccessCode", "499"),
    ("ObligationGuarantee", "AmountAmount", "492"),
    ("ObligationGuarantee", "ID", "D014"),
    ("ObligationGuarantee", "ReferenceID", "100"),
    ("ObligationGuarantee", "SecurityDetailsCode", "101"),
    ("Origin", "CountryCode", "063"),
    ("Origin", "RegionID", "066"),
    ("Origin", "TypeCode", "501"),
    ("Packaging", "HeightMeasure", "402"),
    ("Packaging", "LengthMeasure", "367"),
    ("Packaging", "MarksNumbersID", "142"),
    ("Packaging", "PackingMaterialDescription", "344"),
    ("Packaging", "QuantityQuantity", "144"),
    ("Packaging", "SequenceNumeric", "006"),
    ("Packaging", "TypeCode", "141"),
    ("Packaging", "VolumeMeasure", "395"),
    ("Packaging", "WidthMeasure", "368"),
    ("Payer", "ID", "R121"),
    ("Payer", "Name", "R120"),
    ("Payment", "MethodCode", "107"),
    ("Payment", "PaymentAmount", "378"),
    ("Payment", "TaxAssessedAmount", "120"),
    ("Pointer", "DocumentSectionCode", "375"),
    ("Pointer", "SequenceNumeric", "006"),
    ("Pointer", "TagID", "381"),
    ("PresentationOffice", "ID", "G015"),
    ("PreviousDocument", "CategoryCode", "D031"),
    ("PreviousDocument", "ID", "D018"),
    ("PreviousDocument", "LineNumeric", "171"),
    ("PreviousDocument", "TypeCode", "D019"),
    ("Seal", "ID", "165"),
    ("Seal", "SequenceNumeric", "006"),
    ("Seller", "ID", "R051"),
    ("Seller", "Name", "R050"),
    ("Submitter", "ID", "R059"),
    ("Submitter", "Name", "R058"),
    ("Submitter", "RoleCode", "R005"),
    ("SupervisingOffice", "ID", "G012"),
    ("Surety", "ID", "R055"),
    ("Surety", "Name", "R054"),
    ("TradeTerms", "ConditionCode", "090"),
    ("TradeTerms", "CountryRelationshipCode", "106"),
    ("TradeTerms", "Description", "089"),
    ("TradeTerms", "LocationID", "L002"),
    ("TradeTerms", "LocationName", "L001"),
    ("TransportEquipment", "ID", "159"),
    ("TransportEquipment", "SequenceNumeric", "006"),
    ("UCR", "ID", "016"),
    ("UCR", "TraderAssignedReferenceID", "009"),
    ("ValuationAdjustment", "AdditionCode", "188"),
    ("Warehouse", "ID", "L019"),
    ("Warehouse", "TypeCode", "L112"),
    ("WriteOff", "AmountAmount", "503"),
    ("WriteOff", "QuantityQuantity", "502"),
];

/// Writes the response as a MetaData-wrapped WCO RES document
/// (`<?xml version="1.0" encoding="UTF-8"?>`, `md:WCODataModelVersionCode`
/// 3.6, `md:WCOTypeName` RES, one `res:Response`). Every text and attribute
/// value is escaped; dates are written as `DateTimeString formatCode="304"`
/// `YYYYMMDDHHMMSSZ` (UTC). Refuses, naming the first offending field, any
/// value the schema would reject.
pub fn write(response: &WcoResponse) -> Result<String, WriteError> {
    let mut doc = Doc::default();
    doc.out
        .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    doc.out.push_str(&format!(
        "<md:MetaData xmlns:md=\"{NS_METADATA}\" xmlns:res=\"{NS_RESPONSE}\" xmlns:ds=\"{NS_RESPONSE_DS}\">\n"
    ));
    doc.stack.push(("md:MetaData", "MetaData".to_owned()));
    doc.text("md:WCODataModelVersionCode", DATA_MODEL_VERSION, TOKEN)?;
    doc.text("md:WCOTypeName", "RES", TEXT)?;
    doc.open("res:Response", None);
    write_response(&mut doc, response)?;
    doc.close();
    doc.close();
    Ok(doc.out)
}

fn write_response(doc: &mut Doc, r: &WcoResponse) -> Result<(), WriteError> {
    let code = r.function.code();
    doc.checked("res:FunctionCode", digits(Decimal::from(code), 2, 0))?;
    doc.text("res:FunctionCode", &format!("{code:02}"), TOKEN)?;
    doc.text(
        "res:FunctionalReferenceID",
        &r.functional_reference_id,
        id(35),
    )?;
    doc.datetime("res:IssueDateTime", &r.issued)?;
    for (i, info) in r.additional_information.iter().enumerate() {
        doc.open("res:AdditionalInformation", Some(i));
        doc.optional(
            "res:StatementCode",
            info.statement_code.as_deref(),
            token(17),
        )?;
        doc.optional(
            "res:StatementDescription",
            info.statement_description.as_deref(),
            text(512),
        )?;
        if let Some(limit) = &info.limit {
            doc.datetime("res:LimitDateTime", limit)?;
        }
        doc.optional(
            "res:StatementTypeCode",
            info.statement_type_code.as_deref(),
            token(3),
        )?;
        write_pointers(doc, &info.pointers)?;
        doc.close();
    }
    if let Some(tax) = &r.tax
        && (tax.bank_reference_id.is_some() || tax.bank_account_id.is_some())
    {
        doc.open("res:Bank", None);
        doc.optional(
            "res:ReferenceID",
            tax.bank_reference_id.as_deref(),
            token(17),
        )?;
        doc.optional("res:ID", tax.bank_account_id.as_deref(), token(35))?;
        doc.close();
    }
    for (i, error) in r.errors.iter().enumerate() {
        doc.open("res:Error", Some(i));
        doc.optional("res:Description", error.description.as_deref(), text(512))?;
        doc.text("res:ValidationCode", &error.validation_code, id(8))?;
        write_pointers(doc, &error.pointers)?;
        doc.close();
    }
    for (i, status) in r.statuses.iter().enumerate() {
        doc.open("res:Status", Some(i));
        if let Some(effective) = &status.effective {
            doc.datetime("res:EffectiveDateTime", effective)?;
        }
        doc.text("res:NameCode", &status.name_code, id(3))?;
        if let Some(released) = &status.released {
            doc.datetime("res:ReleaseDateTime", released)?;
        }
        write_pointers(doc, &status.pointers)?;
        doc.close();
    }
    write_declaration(doc, &r.declaration, r.tax.as_ref())
}

fn write_pointers(doc: &mut Doc, pointers: &[Pointer]) -> Result<(), WriteError> {
    for (i, pointer) in pointers.iter().enumerate() {
        doc.open("res:Pointer", Some(i));
        if let Some(sequence) = pointer.sequence {
            doc.number("res:SequenceNumeric", sequence)?;
        }
        doc.text(
            "res:DocumentSectionCode",
            &pointer.document_section_code,
            id(3),
        )?;
        doc.optional("res:TagID", pointer.tag_id.as_deref(), token(4))?;
        doc.close();
    }
    Ok(())
}

fn write_declaration(
    doc: &mut Doc,
    d: &DeclarationRef,
    tax: Option<&TaxAssessment>,
) -> Result<(), WriteError> {
    doc.open("res:Declaration", None);
    if let Some(accepted) = &d.accepted {
        doc.datetime("res:AcceptanceDateTime", accepted)?;
    }
    if let Some(cancelled) = &d.cancelled {
        doc.datetime("res:CancellationDateTime", cancelled)?;
    }
    doc.optional("res:FunctionalReferenceID", d.lrn.as_deref(), id(35))?;
    doc.optional("res:ID", d.mrn.as_deref(), id(70))?;
    if let Some(rejected) = &d.rejected {
        doc.datetime("res:RejectionDateTime", rejected)?;
    }
    doc.optional("res:VersionID", d.version_id.as_deref(), token(9))?;
    if let Some(tax) = tax {
        for (i, payment) in tax.payments.iter().enumerate() {
            doc.open("res:DutyTaxFee", Some(i));
            doc.open("res:Payment", None);
            doc.optional(
                "res:ReferenceID",
                payment.reference_id.as_deref(),
                token(35),
            )?;
            if let Some(assessed) = &payment.assessed {
                doc.amount("res:TaxAssessedAmount", assessed)?;
            }
            if let Some(due) = &payment.due {
                doc.datetime("res:DueDateTime", due)?;
            }
            if let Some(payable) = &payment.payable {
                doc.amount("res:PaymentAmount", payable)?;
            }
            for (g, reference) in payment.guarantee_references.iter().enumerate() {
                doc.open("res:ObligationGuarantee", Some(g));
                doc.text("res:ReferenceID", reference, token(35))?;
                doc.close();
            }
            doc.close();
            doc.close();
        }
        if !tax.items.is_empty() {
            doc.open("res:GoodsShipment", None);
            for (i, item) in tax.items.iter().enumerate() {
                doc.open("res:GovernmentAgencyGoodsItem", Some(i));
                doc.number("res:SequenceNumeric", item.sequence)?;
                if !item.duties.is_empty() {
                    doc.open("res:Commodity", None);
                    for (t, duty) in item.duties.iter().enumerate() {
                        doc.open("res:DutyTaxFee", Some(t));
                        write_duty(doc, duty)?;
                        doc.close();
                    }
                    doc.close();
                }
                doc.close();
            }
            doc.close();
        }
    }
    doc.close();
    Ok(())
}

fn write_duty(doc: &mut Doc, duty: &DutyTaxFee) -> Result<(), WriteError> {
    if let Some(base) = &duty.ad_valorem_base {
        doc.amount("res:AdValoremTaxBaseAmount", base)?;
    }
    if let Some(deduction) = &duty.deduction {
        doc.amount("res:DeductAmount", deduction)?;
    }
    doc.optional(
        "res:DutyRegimeCode",
        duty.duty_regime_code.as_deref(),
        token(3),
    )?;
    if let Some(quantity) = &duty.specific_base {
        doc.quantity("res:SpecificTaxBaseQuantity", quantity)?;
    }
    if let Some(rate) = duty.rate {
        doc.text("res:TaxRateNumeric", &rate.to_string(), TOKEN)?;
    }
    doc.optional("res:TypeCode", duty.type_code.as_deref(), token(3))?;
    if duty.assessed.is_some() || duty.payable.is_some() {
        doc.open("res:Payment", None);
        if let Some(assessed) = &duty.assessed {
            doc.amount("res:TaxAssessedAmount", assessed)?;
        }
        if let Some(payable) = &duty.payable {
            doc.amount("res:PaymentAmount", payable)?;
        }
        doc.close();
    }
    Ok(())
}

/// How a text value is held against its schema type.
#[derive(Debug, Clone, Copy)]
struct Facet {
    /// Longest value allowed, in characters (`usize::MAX`: no limit).
    max: usize,
    /// `xs:token`-derived: whitespace is collapsed before the length counts.
    token: bool,
    /// Blank is refused (the model requires a value, the schema would not).
    required: bool,
}

const TOKEN: Facet = token(usize::MAX);
const TEXT: Facet = text(usize::MAX);

const fn token(max: usize) -> Facet {
    Facet {
        max,
        token: true,
        required: false,
    }
}

const fn text(max: usize) -> Facet {
    Facet {
        max,
        token: false,
        required: false,
    }
}

/// A required identifier or code.
const fn id(max: usize) -> Facet {
    Facet {
        max,
        token: true,
        required: true,
    }
}

/// The document being written and the open elements (tag, path label).
#[derive(Debug, Default)]
struct Doc {
    out: String,
    stack: Vec<(&'static str, String)>,
}

impl Doc {
    fn indent(&mut self) {
        for _ in 0..self.stack.len() {
            self.out.push_str("  ");
        }
    }

    /// Opens `tag`; `index` (0-based) is the occurrence among its
    /// repeated siblings, for error paths.
    fn open(&mut self, tag: &'static str, index: Option<usize>) {
        self.indent();
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push_str(">\n");
        let label = match index {
            Some(i) => format!("{}[{}]", local(tag), i + 1),
            None => local(tag).to_owned(),
        };
        self.stack.push((tag, label));
    }

    fn close(&mut self) {
        if let Some((tag, _)) = self.stack.pop() {
            self.indent();
            self.out.push_str("</");
            self.out.push_str(tag);
            self.out.push_str(">\n");
        }
    }

    /// The path of child `tag` of the open element.
    fn field(&self, tag: &str) -> String {
        let mut path = String::new();
        for (_, label) in &self.stack {
            path.push('/');
            path.push_str(label);
        }
        path.push('/');
        path.push_str(local(tag));
        path
    }

    fn checked<T>(&self, tag: &str, result: Result<T, WriteErrorKind>) -> Result<T, WriteError> {
        result.map_err(|kind| WriteError {
            field: self.field(tag),
            kind,
        })
    }

    /// `<tag attr="value">text</tag>`, both escaped, on one line.
    fn element(&mut self, tag: &str, attribute: Option<(&str, &str)>, content: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(tag);
        if let Some((name, value)) = attribute {
            self.out.push(' ');
            self.out.push_str(name);
            self.out.push_str("=\"");
            self.out.push_str(&escape(value));
            self.out.push('"');
        }
        self.out.push('>');
        self.out.push_str(&escape(content));
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push_str(">\n");
    }

    fn text(&mut self, tag: &str, value: &str, facet: Facet) -> Result<(), WriteError> {
        self.checked(tag, check(value, facet))?;
        self.element(tag, None, value);
        Ok(())
    }

    fn optional(&mut self, tag: &str, value: Option<&str>, facet: Facet) -> Result<(), WriteError> {
        match value {
            Some(value) => self.text(tag, value, facet),
            None => Ok(()),
        }
    }

    fn number(&mut self, tag: &str, value: u32) -> Result<(), WriteError> {
        self.checked(tag, digits(Decimal::from(value), 5, 0))?;
        self.element(tag, None, &value.to_string());
        Ok(())
    }

    /// An amount: n..16,3 with an optional `currencyID` of pattern [A-Z]{3}.
    fn amount(&mut self, tag: &str, amount: &Amount) -> Result<(), WriteError> {
        self.checked(tag, digits(amount.value, 16, 3))?;
        let currency = amount.currency.as_str();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(WriteError {
                field: format!("{}/@currencyID", self.field(tag)),
                kind: WriteErrorKind::Pattern("[A-Z]{3}"),
            });
        }
        self.element(
            tag,
            Some(("currencyID", currency)),
            &amount.value.to_string(),
        );
        Ok(())
    }

    /// A quantity: n..16,6 with a `unitCode` of 1–5 characters.
    fn quantity(&mut self, tag: &str, quantity: &Quantity) -> Result<(), WriteError> {
        self.checked(tag, digits(quantity.value, 16, 6))?;
        let unit_field = || format!("{}/@unitCode", self.field(tag));
        check(
            &quantity.unit,
            Facet {
                max: 5,
                token: false,
                required: true,
            },
        )
        .map_err(|kind| WriteError {
            field: unit_field(),
            kind,
        })?;
        self.element(
            tag,
            Some(("unitCode", &quantity.unit)),
            &quantity.value.to_string(),
        );
        Ok(())
    }

    /// `<tag><ds:DateTimeString formatCode="304">YYYYMMDDHHMMSSZ</…></tag>`.
    fn datetime(&mut self, tag: &'static str, time: &Timestamp) -> Result<(), WriteError> {
        let value = self.checked(tag, format_304(time))?;
        self.open(tag, None);
        self.element("ds:DateTimeString", Some(("formatCode", "304")), &value);
        self.close();
        Ok(())
    }
}

fn local(tag: &str) -> &str {
    tag.rsplit_once(':').map_or(tag, |(_, local)| local)
}

/// Escapes `<`, `>`, `&`, `'`, `"` (quick-xml) and a carriage return, which a
/// parser would otherwise turn into a line feed.
fn escape(value: &str) -> Cow<'_, str> {
    let escaped = quick_xml::escape::escape(value);
    if escaped.contains('\r') {
        Cow::Owned(escaped.replace('\r', "&#13;"))
    } else {
        escaped
    }
}

/// XML whitespace (`xs:token` collapses exactly these).
fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Characters XML 1.0 allows (Char production; Rust chars are never
/// surrogates).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

fn check(value: &str, facet: Facet) -> Result<(), WriteErrorKind> {
    if let Some(bad) = value.chars().find(|&c| !is_xml_char(c)) {
        return Err(WriteErrorKind::Character(bad));
    }
    if facet.required && value.chars().all(is_xml_space) {
        return Err(WriteErrorKind::Blank);
    }
    let found = if facet.token {
        let words = value.split(is_xml_space).filter(|w| !w.is_empty());
        let (count, chars) = words.fold((0usize, 0usize), |(n, len), w| {
            (n + 1, len + w.chars().count())
        });
        chars + count.saturating_sub(1)
    } else {
        value.chars().count()
    };
    if found > facet.max {
        return Err(WriteErrorKind::TooLong {
            max: facet.max,
            found,
        });
    }
    Ok(())
}

/// `totalDigits`/`fractionDigits`, counted on the value (trailing zeros after
/// the point do not count, as in XML Schema).
fn digits(value: Decimal, total: u32, fraction: u32) -> Result<(), WriteErrorKind> {
    let normal = value.normalize();
    let count = normal
        .mantissa()
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |d| d + 1);
    if normal.scale() > fraction || count > total {
        return Err(WriteErrorKind::Digits {
            value,
            total,
            fraction,
        });
    }
    Ok(())
}

/// Format 304 as the schema's pattern `(20\d{6})(\d{6}(Z|[-+]\d\d))?` allows
/// it: `YYYYMMDDHHMMSSZ`, years 2000–2099.
fn format_304(t: &Timestamp) -> Result<String, WriteErrorKind> {
    let valid = (2000..=2099).contains(&t.year)
        && (1..=12).contains(&t.month)
        && (1..=31).contains(&t.day)
        && t.hour < 24
        && t.minute < 60
        && t.second < 60;
    if !valid {
        return Err(WriteErrorKind::Date(*t));
    }
    Ok(format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer(sequence: Option<u32>, code: &str, tag: Option<&str>) -> Pointer {
        Pointer {
            sequence,
            document_section_code: code.to_owned(),
            tag_id: tag.map(str::to_owned),
        }
    }

    #[test]
    fn goods_item_path_with_index() {
        let (chain, unmapped) = pointers_for_path(
            "/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[3]/Commodity/Classification/ID",
        );
        assert!(unmapped.is_empty());
        assert_eq!(
            chain,
            vec![
                pointer(None, "42A", None),
                pointer(None, "67A", None),
                pointer(Some(3), "68A", None),
                pointer(None, "23A", None),
                pointer(Some(1), "21A", Some("145")),
            ]
        );
    }

    #[test]
    fn header_data_elements_as_in_hmrc_samples() {
        // 03_DMSREJ: 42A, then 17C with R144.
        let (chain, unmapped) = pointers_for_path("/Declaration/AuthorisationHolder/ID");
        assert!(unmapped.is_empty());
        assert_eq!(
            chain,
            vec![
                pointer(None, "42A", None),
                pointer(Some(1), "17C", Some("R144"))
            ]
        );
        // TT1_EX_v2.01 rejected: 42A with D026.
        let (chain, _) = pointers_for_path("/Declaration/FunctionalReferenceID");
        assert_eq!(chain, vec![pointer(None, "42A", Some("D026"))]);
        // A date: the date-time element, whose value its DateTimeString is.
        let (chain, unmapped) = pointers_for_path("/Declaration/IssueDateTime/DateTimeString");
        assert_eq!(chain, vec![pointer(None, "42A", Some("D011"))]);
        assert!(unmapped.is_empty(), "{unmapped:?}");
        // A class and a data element of the same name.
        let (chain, _) = pointers_for_path("/Declaration/Authentication/Authentication");
        assert_eq!(
            chain,
            vec![
                pointer(None, "42A", None),
                pointer(None, "61B", Some("104"))
            ]
        );
    }

    #[test]
    fn wrapper_prefixes_and_attributes_are_skipped() {
        let (chain, unmapped) = pointers_for_path(
            "/MetaData/dec:Declaration/dec:GoodsShipment/dec:GovernmentAgencyGoodsItem[2]/dec:Commodity/dec:DutyTaxFee[4]/dec:Payment/dec:PaymentAmount/@currencyID",
        );
        assert!(unmapped.is_empty(), "{unmapped:?}");
        let codes: Vec<(&str, Option<u32>)> = chain
            .iter()
            .map(|p| (p.document_section_code.as_str(), p.sequence))
            .collect();
        assert_eq!(
            codes,
            [
                ("42A", None),
                ("67A", None),
                ("68A", Some(2)),
                ("23A", None),
                ("50A", Some(4)),
                ("94A", None)
            ]
        );
        assert_eq!(chain.last().and_then(|p| p.tag_id.as_deref()), Some("378"));
    }

    #[test]
    fn path_ending_at_a_class_has_no_tag() {
        let (chain, unmapped) =
            pointers_for_path("Declaration/GoodsShipment/GovernmentAgencyGoodsItem[12]");
        assert!(unmapped.is_empty());
        assert_eq!(
            chain,
            vec![
                pointer(None, "42A", None),
                pointer(None, "67A", None),
                pointer(Some(12), "68A", None)
            ]
        );
    }

    #[test]
    fn unknown_names_are_returned_and_the_chain_stops_before_them() {
        let (chain, unmapped) = pointers_for_path("/Declaration/GoodsShipment/Foo[2]/Commodity/ID");
        assert_eq!(
            chain,
            vec![pointer(None, "42A", None), pointer(None, "67A", None)]
        );
        assert_eq!(unmapped, ["Foo[2]", "Commodity", "ID"]);

        // A class where it cannot occur: Commodity is not a child of Declaration.
        let (chain, unmapped) = pointers_for_path("/Declaration/Commodity/Description");
        assert_eq!(chain, vec![pointer(None, "42A", None)]);
        assert_eq!(unmapped, ["Commodity", "Description"]);

        // An unknown data element.
        let (chain, unmapped) = pointers_for_path("/Declaration/GoodsShipment/Colour");
        assert_eq!(chain.len(), 2);
        assert_eq!(unmapped, ["Colour"]);

        // A data element without a WCO tag.
        let (chain, unmapped) = pointers_for_path(
            "/Declaration/GoodsShipment/GovernmentAgencyGoodsItem/Commodity/Classification/IdentificationTypeCode",
        );
        assert_eq!(
            chain.last().map(|p| p.document_section_code.as_str()),
            Some("21A")
        );
        assert_eq!(chain.last().and_then(|p| p.tag_id.clone()), None);
        assert_eq!(unmapped, ["IdentificationTypeCode"]);

        // Not a declaration at all.
        let (chain, unmapped) = pointers_for_path("/Response/Error");
        assert!(chain.is_empty());
        assert_eq!(unmapped, ["Response", "Error"]);
    }

    #[test]
    fn malformed_steps_are_unmapped() {
        for (path, bad) in [
            (
                "/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[0]",
                "GovernmentAgencyGoodsItem[0]",
            ),
            (
                "/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[x]",
                "GovernmentAgencyGoodsItem[x]",
            ),
            (
                "/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[2",
                "GovernmentAgencyGoodsItem[2",
            ),
            (
                "/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[100000]",
                "GovernmentAgencyGoodsItem[100000]",
            ),
            ("/Declaration//GoodsShipment", ""),
            ("/Declaration/@id/GoodsShipment", "@id"),
        ] {
            let (chain, unmapped) = pointers_for_path(path);
            assert!(!chain.is_empty(), "{path}");
            assert_eq!(unmapped.first().map(String::as_str), Some(bad), "{path}");
        }
        // A data element written with an index other than 1 cannot repeat.
        let (_, unmapped) = pointers_for_path("/Declaration/FunctionalReferenceID[2]");
        assert_eq!(unmapped, ["FunctionalReferenceID[2]"]);
    }

    #[test]
    fn empty_path_gives_nothing() {
        for path in ["", "/", "  ", "/MetaData"] {
            assert_eq!(
                pointers_for_path(path),
                (Vec::new(), Vec::new()),
                "{path:?}"
            );
        }
    }

    #[test]
    fn facets() {
        assert_eq!(check("  a   b ", token(3)), Ok(()));
        assert_eq!(
            check("abcd", token(3)),
            Err(WriteErrorKind::TooLong { max: 3, found: 4 })
        );
        assert_eq!(check(" \t", id(3)), Err(WriteErrorKind::Blank));
        assert_eq!(
            check("a\u{1}", TEXT),
            Err(WriteErrorKind::Character('\u{1}'))
        );
        assert_eq!(check("é€😀", text(3)), Ok(()));
        assert!(digits(Decimal::new(12_345, 3), 16, 3).is_ok());
        assert!(digits(Decimal::new(123_450_000, 7), 16, 3).is_ok()); // 12.3450000
        assert!(digits(Decimal::new(12_345, 4), 16, 3).is_err());
        assert!(digits(Decimal::from(99_999u32), 5, 0).is_ok());
        assert!(digits(Decimal::from(100_000u32), 5, 0).is_err());
        assert!(digits(Decimal::ZERO, 5, 0).is_ok());
        let t = Timestamp::from_unix(1_795_516_200);
        assert_eq!(format_304(&t).as_deref(), Ok("20261124103000Z"));
        let old = Timestamp::from_unix(0);
        assert_eq!(format_304(&old), Err(WriteErrorKind::Date(old)));
        assert_eq!(escape("a\r<&\"'>"), "a&#13;&lt;&amp;&quot;&apos;&gt;");
    }

    #[test]
    fn function_codes_round_trip() {
        for code in 0..=99u8 {
            assert_eq!(ResponseFunction::from_code(code).code(), code);
        }
        assert_eq!(
            ResponseFunction::from_code(13),
            ResponseFunction::TaxAssessment
        );
    }
}
