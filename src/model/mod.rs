//! The canonical model: what a declaration, a cargo report, a passenger list
//! or a permit *is*, whatever format it arrived in. JSON is its wire and
//! storage form; docs/schema/canonical.json is its JSON Schema.
//!
//! Amounts, masses and quantities are exact decimals (serialised as strings);
//! dates keep the UN/EDIFACT 2379 format they were given in.

mod datetime;

pub(crate) use datetime::is_day;
pub use datetime::{DateError, Moment, WcoDateTime};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Import, export or transit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclarationKind {
    Import,
    Export,
    Transit,
}

/// What the declaration does to earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclarationFunction {
    Original,
    Amendment,
    Cancellation,
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// State, province or county: its code, as sent (UN/EDIFACT C819
    /// 3229; WCO CountrySubDivisionCode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The same subdivision's name, as sent (UN/EDIFACT C819 3228; WCO
    /// CountrySubDivisionName). A sender may give the code, the name or
    /// both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_name: Option<String>,
    /// ISO 3166-1 country code as the message gives it: alpha-2 in
    /// declarations and cargo reports (checked, RUL005), alpha-3 in
    /// passenger lists (the API guides use the travel documents' codes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The address as unstructured lines, when the sender gave it so
    /// (UN/EDIFACT C058 after its first line, the name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<String>,
}

/// A party: trader, broker, carrier, agency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Party {
    /// Identifier (e.g. business registration, EORI, TIN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Who issued the identifier (UN/EDIFACT 3055 or a scheme name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// Telephone, fax, e-mail and other communication numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
}

/// A communication number and its channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// UN/EDIFACT 3155 (e.g. TE telephone, FX telefax, EM electronic mail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// An amount of money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Amount {
    pub value: Decimal,
    /// ISO 4217.
    pub currency: String,
}

/// A measured quantity with its unit (UN/ECE Recommendation 20).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Quantity {
    pub value: Decimal,
    pub unit: String,
}

/// A document referred to: licence, certificate, invoice, previous declaration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Document {
    /// Document type code (UN/EDIFACT 1001 or the administration's list).
    /// Absent where the sender gave none: the WCO Data Model makes every
    /// part of a document optional, and a CUSDEC DOC may name its document
    /// in words only (C002 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The document's number or identifier, where the sender gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// What kind of reference `reference` is, where the sender gave it as
    /// a reference rather than as a document of a type (`code`): the
    /// UN/EDIFACT 1153 qualifier (CUSDEC SG1 RFF, e.g. ABT customs
    /// declaration number, AAM waybill number). 1153 is not 1001's list:
    /// the two are kept apart, and neither is written as the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_qualifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<Moment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// When the document expires (travel documents, licences).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Moment>,
    /// The code's category where the list splits codes so (WCO
    /// `AdditionalDocument/CategoryCode`, e.g. C certificate, N national
    /// document, Y exemption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Its name or a reason in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Status of the licence, permit or certificate (WCO
    /// `LPCOExemptionCode`, e.g. AC attached, XX exempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Packages of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Packages {
    /// Number of packages (absent where the declaration gives only the
    /// kind and marks, as for goods in bulk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Package type (UN/ECE Recommendation 21).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marks: Option<String>,
    /// Packaging level as coded (UN/EDIFACT 7075: 1 inner, 2 intermediate,
    /// 3 outer, 4 no packaging hierarchy); absent when the message gives
    /// none. Totals count the outermost level an item gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
}

/// A duty or tax on a goods item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DutyTax {
    /// Duty/tax type (e.g. customs duty, VAT, excise; UN/EDIFACT 5153, the
    /// WCO `DutyTaxFee/TypeCode`). A line may give only its preference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Duty regime or tariff preference claimed (WCO
    /// `DutyTaxFee/DutyRegimeCode`, e.g. 100 no preference in the EU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Amount>,
    /// Rate in percent, when ad valorem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    /// Duty/tax category (UN/EDIFACT 5305, e.g. `S` standard rate, `E`
    /// exempt, `Z` zero rated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// Transport of the goods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Transport {
    /// Mode at the border (UN/EDIFACT 8067: 1 sea, 4 air, 3 road, 2 rail, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub border_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inland_mode: Option<String>,
    /// Vessel, flight or vehicle identification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub means_id: Option<String>,
    /// ISO 3166-1 alpha-2 nationality of the means of transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<String>,
    /// Name of the vessel, aircraft or vehicle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub means_name: Option<String>,
    /// Voyage, flight or trip number (conveyance reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voyage: Option<String>,
    /// Carrier identification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
}

/// One goods item of a declaration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GoodsItem {
    /// 1..=999, unique in the declaration.
    pub sequence: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Commodity code: HS (6 digits) or a national extension (up to 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs_code: Option<String>,
    /// ISO 3166-1 alpha-2 country of origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Requested and previous customs procedure codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_mass_kg: Option<Decimal>,
    /// Net mass in kilograms: the goods without any packing (WCO 128,
    /// TDED 6048; UN/EDIFACT 6313 AAF net net weight, or N actual net
    /// weight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_mass_kg: Option<Decimal>,
    /// Gross volume in cubic metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_volume_m3: Option<Decimal>,
    /// The value declared for customs purposes (UN/EDIFACT MOA 5025 40,
    /// WCO `CustomsValueAmount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_value: Option<Amount>,
    /// The item's price as invoiced, the basis of a transaction value
    /// (WCO `InvoiceLine/ItemChargeAmount`, CDS DE 4/14; UN/EDIFACT MOA
    /// 5025 38 invoice item amount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_price: Option<Amount>,
    /// Statistical value (e.g. SAD box 46).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistical_value: Option<Amount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Packages>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<Document>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duties: Vec<DutyTax>,
}

/// Declaration-level totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Totals {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_value: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_mass_kg: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<u16>,
}

/// A customs declaration (import, export, transit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Declaration {
    /// Import, export or transit: required of an original. An amendment or
    /// cancellation may leave it out: it is the kind of the declaration it
    /// refers to, which the hub fills in (HMRC's CDS amendments and
    /// cancellation requests, WCO `FunctionCode` 13 with `TypeCode` COR or
    /// INV, have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<DeclarationKind>,
    pub function: DeclarationFunction,
    /// Local reference number given by the declarant.
    pub lrn: String,
    /// Movement reference number given by customs once accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrn: Option<String>,
    /// Type code as declared (e.g. UN/EDIFACT 1001 or the national type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<Moment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declarant: Option<Party>,
    /// The party that submitted the declaration when it is named apart
    /// from the declarant (WCO `Submitter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitter: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importer: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub representative: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer: Option<Party>,
    /// Who the goods are sent to (WCO 3/9; UN/EDIFACT 3035 CN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consignee: Option<Party>,
    /// Who sends the goods (WCO 3/7; UN/EDIFACT 3035 CZ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consignor: Option<Party>,
    /// Customs office of declaration (e.g. UN/LOCODE or national office code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_office: Option<String>,
    /// Country of dispatch/exportation (ISO 3166-1 alpha-2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_country: Option<String>,
    /// Country of destination (ISO 3166-1 alpha-2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    #[serde(default)]
    pub totals: Totals,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<Document>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_documents: Vec<Document>,
    /// Why an amendment or cancellation was sent, as the sender wrote it
    /// (WCO `AdditionalInformation` of type AES; UN/EDIFACT FTX 4451 ACD,
    /// "reason for a request").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The changes an amendment or cancellation states (WCO `Amendment`:
    /// a reason code, and `Pointer`s to what changes). An amendment whose
    /// changes have pointers carries only what changes, as HMRC's CDS
    /// sends amendments: the hub applies it to the declaration amended
    /// (docs/formats.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(default)]
    pub goods: Vec<GoodsItem>,
}

/// One change an amendment makes (WCO `Amendment`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    /// Why (WCO `ChangeReasonCode`, e.g. HMRC's 28 "amend weight or
    /// quantity").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// Where: the WCO classes from the declaration down to what changes,
    /// the last with the tag of the data element when one element changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pointers: Vec<ChangePointer>,
}

/// One step of a change's place (WCO `Pointer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChangePointer {
    /// The WCO class code (`DocumentSectionCode`: 42A declaration, 67A
    /// goods shipment, 68A goods item, ...).
    pub section: String,
    /// Which instance of the class (`SequenceNumeric`: a goods item's
    /// sequence number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u32>,
    /// The WCO tag of the data element (`TagID`, e.g. 228 goods item
    /// quantity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// What a canonical object must hold beyond what its type requires; the
/// mappings check it after reading the object (MAP004 otherwise).
pub trait Complete {
    /// What is missing, in the words of a missing field's
    /// deserialization error; `None` when nothing is.
    fn incomplete(&self) -> Option<String> {
        None
    }
}

impl Complete for Declaration {
    fn incomplete(&self) -> Option<String> {
        (self.kind.is_none() && self.function == DeclarationFunction::Original)
            .then(|| "missing field `kind`".to_owned())
    }
}

impl Complete for CargoReport {}

impl Complete for PassengerList {}

/// One consignment of a cargo report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Consignment {
    /// Bill of lading / air waybill number.
    pub transport_document: String,
    /// What kind of document `transport_document` numbers (UN/EDIFACT
    /// 1153, e.g. `BM` bill of lading, `AWB` air waybill), as the sender
    /// qualified it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_document_type: Option<String>,
    /// The master bill the consignment is listed under (CUSCAR: the
    /// document of its CNI); the same number as `transport_document` for
    /// a bill that is its own master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_bill: Option<String>,
    /// The master bill's consolidation item number (UN/EDIFACT 1490): its
    /// serial number in the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolidation_item: Option<u32>,
    /// UN/LOCODEs of the consignment's places of loading and discharge
    /// (those of its bill; the voyage's ports are the report's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_of_loading: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_of_discharge: Option<String>,
    /// UN/LOCODEs of the place the goods are despatched from and of their
    /// final destination (beyond the port of discharge), and the ISO
    /// 3166-1 country of destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_of_dispatch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_of_destination: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consignor: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consignee: Option<Party>,
    /// The party to notify of the goods' arrival (UN/EDIFACT 3035 N1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Party>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goods: Vec<GoodsItem>,
}

/// A piece of transport equipment the cargo report lists (container,
/// trailer, ULD) with its seals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Equipment {
    /// Equipment identification, e.g. the container number (ISO 6346).
    /// D.96B EQD gives it conditionally (C237): an unnumbered trailer or
    /// empty container has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Equipment qualifier (UN/EDIFACT 8053, e.g. `CN` container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Size and type (UN/EDIFACT 8155, e.g. the ISO 6346 code `45G1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_type: Option<String>,
    /// Seal numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seals: Vec<String>,
}

/// A cargo report (manifest) of a voyage or flight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CargoReport {
    pub reference: String,
    /// Document name code (UN/EDIFACT 1001, e.g. 785 cargo manifest, 85
    /// customs manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_code: Option<String>,
    /// Original, amendment or cancellation (UN/EDIFACT 1225).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<DeclarationFunction>,
    /// When the report was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<Moment>,
    /// Who reports the cargo: the carrier or its agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<Party>,
    /// Voyage or flight number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voyage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// UN/LOCODEs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_of_loading: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_of_discharge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival: Option<Moment>,
    /// The equipment on the voyage or flight, with size, type and seals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equipment: Vec<Equipment>,
    #[serde(default)]
    pub consignments: Vec<Consignment>,
}

/// A cargo status event (arrival, unloading, bonded in/out, release).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CargoEvent {
    /// Bill of lading, container or declaration reference the event is about.
    pub reference: String,
    /// Event code (e.g. `arrived`, `unloaded`, `bonded_in`, `bonded_out`, `released`).
    pub event: String,
    pub at: Moment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<Party>,
}

/// Crew member or passenger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Traveller {
    pub crew: bool,
    /// In transit: not entering the country (UN/EDIFACT 3035 DDU in
    /// transit passenger, DDT in transit crew member).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_transit: bool,
    pub surname: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<Moment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    /// ISO 3166-1 alpha-3 (travel documents use alpha-3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<String>,
    /// The document the traveller travels on: the first of `documents`
    /// that is not a visa.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub travel_document: Option<Document>,
    /// Every document the list gives for the traveller (PAXLST SG5), in
    /// message order: the travel document, visas, residence permits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<Document>,
    /// The traveller's address (PAXLST NAD C059, 3164, C819, 3251, 3207:
    /// in the API guides the address in the country of arrival).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// The traveller's communication numbers (PAXLST COM in segment group
    /// 4: telephone, e-mail), as the list gives them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    /// Whether the carrier verified the traveller's data (PAXLST GEI 4:
    /// C012 7365 173 verified, 174 not verified; D.11A codes the API guides
    /// use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Checked bag tags (PAXLST FTX BAG: the first tag number and how many
    /// consecutive numbers follow it, in the API guides).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bag_tags: Vec<BagTags>,
    /// Seat as assigned (PAXLST RFF SEA in the API guides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
    /// Number of checked bags (PAXLST MEA CT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baggage_pieces: Option<u16>,
    /// Total weight of the checked bags in kilograms (PAXLST MEA WT in
    /// KGM, or in LBR converted at 0.45359237 kg the pound; a weight in
    /// another unit is reported, not converted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baggage_weight_kg: Option<Decimal>,
    /// Port or place of embarkation (e.g. IATA airport code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embarkation: Option<String>,
    /// Port or place of debarkation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debarkation: Option<String>,
    /// Place of customs clearance (in transit: the first port of entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearance: Option<String>,
    /// Country of residence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residence_country: Option<String>,
    /// Place of birth, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_place: Option<String>,
    /// Country of birth, as coded (PAXLST LOC 180 C517 3225; ISO 3166
    /// alpha-3 in the API guides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_country: Option<String>,
    /// A crew member's function as coded (PAXLST EMP C948 9005; the API
    /// guides' codes, e.g. CR1 cockpit crew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crew_function: Option<String>,
    /// The traveller's references as the list gives them, each with its
    /// qualifier (UN/EDIFACT 1153, e.g. AVF passenger reservation number,
    /// ABO originator's reference, AEA government agency reference
    /// number, CR customer reference number).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// Reservation (PNR) locator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<String>,
}

/// A run of checked bag tags: the first tag number and how many tags,
/// numbered consecutively from it, the run has (1 when not given).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BagTags {
    pub first: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u16>,
}

/// A reference number with its qualifier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reference {
    /// What the number is (UN/EDIFACT 1153).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A passenger or crew list of a flight or voyage (PAXLST).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PassengerList {
    pub reference: String,
    /// What the list is (UN/EDIFACT 1001, e.g. 745 passenger list, 250
    /// crew list declaration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_type: Option<String>,
    /// The list's document identifier as sent (PAXLST BGM C106 1004).
    /// Advance passenger information guides put a code here that says
    /// what the list is about (a change of passenger data, say); the hub
    /// keeps it for the agencies and does not act on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    /// Who reported it (the airline's or agent's contact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<Party>,
    /// Carrier identification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// Flight or voyage number.
    pub journey: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departure_time: Option<Moment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_time: Option<Moment>,
    /// Each leg of the flight or voyage, in order, when the list gives
    /// them (PAXLST SG2: a TDT with its places and times). `journey`,
    /// `departure` and `arrival` above are the first leg's number, the
    /// first departure and the last arrival.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legs: Vec<JourneyLeg>,
    /// The totals the list declares (UN/EDIFACT CNT 6069 42 passengers,
    /// 41 crew), to compare with the travellers listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passenger_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crew_count: Option<u32>,
    /// What ties the parts of a list sent in parts together (UNH 0068,
    /// common access reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_access_reference: Option<String>,
    /// A list sent in parts (UN/EDIFACT UNH S010): this part's number; the
    /// declared totals are then those of the whole list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
    /// `first` or `final` for the first and last part (S010 0073).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_status: Option<String>,
    #[serde(default)]
    pub travellers: Vec<Traveller>,
}

/// One leg of a flight or voyage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JourneyLeg {
    /// Flight or voyage number of the leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journey: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// Where the leg departs from and arrives at (IATA airport codes or
    /// UN/LOCODEs, as the list gives them), and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departure_time: Option<Moment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_time: Option<Moment>,
}

/// A request to an agency to confirm a declaration's goods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PermitRequest {
    pub id: String,
    pub declaration_id: String,
    /// Agency code (routing key `permit.<CODE>`).
    pub agency: String,
    /// The rule that required it and the law behind the rule.
    pub rule: String,
    pub law: String,
    /// Goods item sequences concerned.
    pub goods: Vec<u16>,
    /// When the hub expects the answer (UTC, RFC 3339), after which the
    /// permit expires and the declaration is held. The hub may allow
    /// longer, never less: a request sent late has its due time moved on
    /// by the delay (the HTTP inbox shows the time in force).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
    pub declaration: Declaration,
}

/// An agency's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PermitOutcome {
    Granted,
    Refused,
    Conditional,
}

/// An agency's decision on a permit request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PermitDecision {
    pub permit_id: String,
    pub outcome: PermitOutcome,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Moment>,
}

impl PermitDecision {
    /// A decision as an agency sends it (an AMQP reply): a JSON object
    /// with the fields of a decision and no other, as over HTTP. A
    /// misspelt field (`condtions`) is refused rather than ignored, which
    /// would have taken a conditional grant's terms or a refusal's reasons
    /// as absent; so is an array, which serde would read field by field.
    pub fn from_reply(bytes: &[u8]) -> Result<PermitDecision, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Reply {
            permit_id: String,
            outcome: PermitOutcome,
            #[serde(default)]
            reasons: Vec<String>,
            #[serde(default)]
            conditions: Option<String>,
            #[serde(default)]
            decided_at: Option<Moment>,
        }
        let reply: Reply = json_object(bytes)?;
        Ok(PermitDecision {
            permit_id: reply.permit_id,
            outcome: reply.outcome,
            reasons: reply.reasons,
            conditions: reply.conditions,
            decided_at: reply.decided_at,
        })
    }
}

/// `T` read from JSON that must be an object (serde reads a struct from an
/// array too, its fields in order).
pub fn json_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_slice(bytes)?;
    if !value.is_object() {
        return Err(serde::de::Error::custom(format!(
            "expected a JSON object, found {}",
            match value {
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::Bool(_) => "a boolean",
                _ => "null",
            }
        )));
    }
    serde_json::from_value(value)
}

/// What customs answers a declarant (becomes CUSRES, APERAK or WCO RES).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Response {
    pub declaration_lrn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrn: Option<String>,
    /// received, accepted, rejected, cleared, held, released, …
    pub status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ResponseError>,
    /// The conditions the agencies attached to the permits they gave
    /// (decision `conditional`), one per permit, `AGENCY: conditions`: the
    /// declaration is cleared on those terms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    pub at: Moment,
}

/// One error of a response: a stable code and where it is (a segment and
/// element position for EDIFACT, an element path for XML). A warning
/// (`warning`: true) is told with an accepting answer and does not make
/// it one about errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResponseError {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
}

/// The JSON Schema of every canonical type, as published in docs/schema/.
pub fn json_schema() -> serde_json::Value {
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Canonical {
        declaration: Declaration,
        cargo_report: CargoReport,
        cargo_event: CargoEvent,
        passenger_list: PassengerList,
        permit_request: PermitRequest,
        permit_decision: PermitDecision,
        response: Response,
    }
    serde_json::to_value(schemars::schema_for!(Canonical)).unwrap_or_default()
}
