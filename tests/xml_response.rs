//! The WCO RES writer: one response of every supported function, validated
//! against the official response schema (libxml2) and read back with
//! quick-xml; refusals name the field; and the Pointer tables agree with
//! every element path of the vendored WCO DEC schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::str::FromStr;

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use rust_decimal::Decimal;
use tradehub::model::{Amount, Quantity};
use tradehub::timestamp::Timestamp;
use tradehub::xml::response::*;

const MD: &str = "urn:wco:datamodel:WCO:DocumentMetaData-DMS:2";
const RES: &str = "urn:wco:datamodel:WCO:RES-DMS:2";
const DS: &str = "urn:wco:datamodel:WCO:Response_DS:DMS:2";

/// Text with every character XML escapes, for the round trip.
const AWKWARD: &str = "Weight <1kg> & \"net\" isn't gross";

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn gbp(value: &str) -> Amount {
    Amount {
        value: Decimal::from_str(value).unwrap(),
        currency: "GBP".into(),
    }
}

fn pointers(path: &str) -> Vec<Pointer> {
    let (chain, unmapped) = pointers_for_path(path);
    assert!(unmapped.is_empty(), "{path}: {unmapped:?}");
    chain
}

fn declaration(lrn: &str) -> DeclarationRef {
    DeclarationRef {
        lrn: Some(lrn.into()),
        mrn: Some("26GB1A2B3C4D5E6F70".into()),
        version_id: Some("1".into()),
        ..DeclarationRef::default()
    }
}

fn accepted() -> WcoResponse {
    let mut r = WcoResponse::new(
        ResponseFunction::Accepted,
        "0ea063cb553449ee9ce0a49303cfb361",
        at("2026-11-24T10:30:05"),
    );
    r.declaration = DeclarationRef {
        accepted: Some(at("2026-11-24T10:30:00")),
        ..declaration("LRN-2026-0001")
    };
    r
}

fn received() -> WcoResponse {
    let mut r = WcoResponse::new(
        ResponseFunction::Received,
        "e575484fec264a6f87f4022935b5c27f",
        at("2026-11-24T10:29:59"),
    );
    r.declaration = declaration("LRN-2026-0001");
    r
}

fn rejected() -> WcoResponse {
    let mut r = WcoResponse::new(
        ResponseFunction::Rejected,
        "561fb99741a94910913f9bd1e4d4055e",
        at("2026-11-24T10:31:00"),
    );
    r.errors = vec![
        ResponseError {
            validation_code: "CDS12005".into(),
            description: Some(AWKWARD.into()),
            pointers: pointers("/Declaration/AuthorisationHolder[2]/ID"),
        },
        ResponseError {
            validation_code: "CDS10020".into(),
            description: None,
            pointers: pointers(
                "/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[3]/Commodity/Classification[2]/ID",
            ),
        },
        ResponseError {
            validation_code: "CDS12050".into(),
            description: Some("LPCO exemption code missing".into()),
            pointers: pointers(
                "/MetaData/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[12]/AdditionalDocument[2]/LPCOExemptionCode",
            ),
        },
    ];
    r.declaration = DeclarationRef {
        lrn: Some("LRN&<2026>\"7\"".into()),
        mrn: None,
        rejected: Some(at("2026-11-24T10:31:00")),
        version_id: Some("1".into()),
        ..DeclarationRef::default()
    };
    r
}

fn documents_required() -> WcoResponse {
    let mut r = WcoResponse::new(
        ResponseFunction::DocumentsRequired,
        "450a2ae1589b40cb9db92fef786e8777",
        at("2026-11-24T11:00:00"),
    );
    r.additional_information = vec![AdditionalInformation {
        statement_code: Some("ACA".into()),
        statement_description: Some("Upload the invoice & packing list".into()),
        limit: Some(at("2026-12-08T11:00:00")),
        statement_type_code: Some("ACA".into()),
        pointers: pointers(
            "/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[2]/AdditionalDocument[1]",
        ),
    }];
    r.declaration = declaration("LRN-2026-0002");
    r
}

fn cleared() -> WcoResponse {
    let mut r = WcoResponse::new(
        ResponseFunction::Cleared,
        "4831a83581024290a37b199bae092d1d",
        at("2026-11-24T12:00:00"),
    );
    r.additional_information = vec![AdditionalInformation {
        statement_code: Some("A2".into()),
        statement_type_code: Some("AFB".into()),
        ..AdditionalInformation::default()
    }];
    r.declaration = DeclarationRef {
        version_id: Some("2".into()),
        ..declaration("LRN-2026-0001")
    };
    r
}

fn tax_assessment() -> WcoResponse {
    let mut r = WcoResponse::new(
        ResponseFunction::TaxAssessment,
        "026dbf69ad164b92868f5df716955cad",
        at("2026-11-24T10:30:10"),
    );
    r.statuses = vec![Status {
        name_code: "4".into(),
        ..Status::default()
    }];
    r.tax = Some(TaxAssessment {
        bank_reference_id: Some("CITIGB2LLON".into()),
        bank_account_id: Some("GB25CITI08320011963155".into()),
        payments: vec![Payment {
            reference_id: Some("PAY-2026-0001".into()),
            assessed: Some(gbp("2393.40")),
            due: Some(at("2026-12-15T00:00:00")),
            payable: Some(gbp("2393.40")),
            guarantee_references: vec!["GUARANTEE-17".into()],
        }],
        items: vec![
            ItemAssessment {
                sequence: 1,
                duties: vec![
                    DutyTaxFee {
                        ad_valorem_base: Some(gbp("10000.00")),
                        deduction: Some(gbp("0.00")),
                        duty_regime_code: Some("100".into()),
                        rate: Some(Decimal::from_str("2.70").unwrap()),
                        type_code: Some("A00".into()),
                        assessed: Some(gbp("270.00")),
                        payable: Some(gbp("270.00")),
                        ..DutyTaxFee::default()
                    },
                    DutyTaxFee {
                        ad_valorem_base: Some(gbp("10270.00")),
                        duty_regime_code: Some("100".into()),
                        rate: Some(Decimal::from_str("20.00").unwrap()),
                        type_code: Some("B00".into()),
                        assessed: Some(gbp("2054.00")),
                        payable: Some(gbp("2054.00")),
                        ..DutyTaxFee::default()
                    },
                ],
            },
            ItemAssessment {
                sequence: 2,
                duties: vec![DutyTaxFee {
                    specific_base: Some(Quantity {
                        value: Decimal::from_str("34.5").unwrap(),
                        unit: "KGM".into(),
                    }),
                    rate: Some(Decimal::from_str("2.0").unwrap()),
                    type_code: Some("A00".into()),
                    assessed: Some(gbp("69.40")),
                    ..DutyTaxFee::default()
                }],
            },
        ],
    });
    r.declaration = DeclarationRef {
        lrn: Some("IM08a_PHYCTL_002".into()),
        mrn: Some("26GB1Q3RTK463FGVR4".into()),
        version_id: Some("1".into()),
        ..DeclarationRef::default()
    };
    r
}

fn samples() -> Vec<(&'static str, WcoResponse)> {
    vec![
        ("01-accepted", accepted()),
        ("02-received", received()),
        ("03-rejected", rejected()),
        ("06-documents-required", documents_required()),
        ("09-cleared", cleared()),
        ("13-tax-assessment", tax_assessment()),
    ]
}

/// An element read back: namespace, local name, attributes, text.
#[derive(Debug, Default)]
struct Node {
    ns: String,
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn all(&self, name: &str) -> Vec<&Node> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    fn get(&self, path: &str) -> &Node {
        path.split('/').fold(self, |node, name| {
            node.children
                .iter()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("no {name} in {}", node.name))
        })
    }

    fn has(&self, name: &str) -> bool {
        self.children.iter().any(|c| c.name == name)
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn walk<'a>(&'a self, into: &mut Vec<&'a Node>) {
        into.push(self);
        for child in &self.children {
            child.walk(into);
        }
    }
}

/// Parses a document with quick-xml's namespace reader, resolving entities.
fn parse(xml: &str) -> Node {
    let mut reader = NsReader::from_str(xml);
    let mut stack = vec![Node::default()];
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap();
        let ns = match ns {
            ResolveResult::Bound(Namespace(uri)) => String::from_utf8(uri.to_vec()).unwrap(),
            _ => String::new(),
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let mut node = Node {
                    ns,
                    name: String::from_utf8(e.local_name().as_ref().to_vec()).unwrap(),
                    ..Node::default()
                };
                for attribute in e.attributes() {
                    let attribute = attribute.unwrap();
                    let key = String::from_utf8(attribute.key.as_ref().to_vec()).unwrap();
                    if !key.starts_with("xmlns") {
                        node.attributes
                            .push((key, attribute.unescape_value().unwrap().into_owned()));
                    }
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(node);
                } else {
                    stack.last_mut().unwrap().children.push(node);
                }
            }
            Event::End(_) => {
                let node = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(node);
            }
            Event::Text(t) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r.decode().unwrap())
                        .unwrap()
                        .to_owned(),
                };
                stack.last_mut().unwrap().text.push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements");
    stack.pop().unwrap().children.pop().unwrap()
}

/// (sequence, code, tag) of each Pointer child.
fn chain(node: &Node) -> Vec<(Option<u32>, String, Option<String>)> {
    node.all("Pointer")
        .iter()
        .map(|p| {
            let sequence = p
                .has("SequenceNumeric")
                .then(|| p.get("SequenceNumeric").text.parse().unwrap());
            let tag = p.has("TagID").then(|| p.get("TagID").text.clone());
            (sequence, p.get("DocumentSectionCode").text.clone(), tag)
        })
        .collect()
}

fn step(
    sequence: Option<u32>,
    code: &str,
    tag: Option<&str>,
) -> (Option<u32>, String, Option<String>) {
    (sequence, code.to_owned(), tag.map(str::to_owned))
}

#[test]
fn every_function_is_written_and_reads_back() {
    let validator = tradehub::xml::XmlValidator::new(None, tradehub::xml::XmlLimits::default());
    for (name, response) in samples() {
        let xml = write(&response).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Every response the writer produces is valid against the official
        // response schema (libxml2, as xmllint).
        let report = validator.validate(xml.as_bytes(), name);
        assert!(report.valid, "{name}: {:#?}\n{xml}", report.issues);
        assert_eq!(
            report.summary.kind,
            tradehub::xml::DocumentKind::Response,
            "{name}"
        );
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<md:MetaData "),
            "{name}"
        );

        let root = parse(&xml);
        assert_eq!(
            (root.ns.as_str(), root.name.as_str()),
            (MD, "MetaData"),
            "{name}"
        );
        assert_eq!(root.get("WCODataModelVersionCode").text, "3.6");
        assert_eq!(root.get("WCOTypeName").text, "RES");
        let res = root.get("Response");
        let mut nodes = Vec::new();
        res.walk(&mut nodes);
        for node in nodes {
            let expected = if node.name == "DateTimeString" {
                DS
            } else {
                RES
            };
            assert_eq!(node.ns, expected, "{name}: {}", node.name);
            if node.name == "DateTimeString" {
                assert_eq!(node.attribute("formatCode"), Some("304"));
                assert_eq!(node.text.len(), 15, "{name}: {}", node.text);
                assert!(node.text.starts_with("20") && node.text.ends_with('Z'));
            }
        }
        // Schema order of the first children.
        let names: Vec<&str> = res
            .children
            .iter()
            .map(|c| c.name.as_str())
            .take(3)
            .collect();
        assert_eq!(
            names,
            ["FunctionCode", "FunctionalReferenceID", "IssueDateTime"],
            "{name}"
        );
        assert_eq!(
            res.children.last().map(|c| c.name.as_str()),
            Some("Declaration"),
            "{name}"
        );
        assert_eq!(
            res.get("FunctionCode").text,
            format!("{:02}", response.function.code())
        );
        assert_eq!(res.get("FunctionCode").text, &name[..2]);
        assert_eq!(
            res.get("FunctionalReferenceID").text,
            response.functional_reference_id
        );
        assert_eq!(
            res.get("IssueDateTime/DateTimeString").text,
            format!(
                "{}{:02}{:02}{:02}Z",
                response.issued.edifact_date(true),
                response.issued.hour,
                response.issued.minute,
                response.issued.second
            )
        );
        let declaration = res.get("Declaration");
        if let Some(lrn) = &response.declaration.lrn {
            assert_eq!(&declaration.get("FunctionalReferenceID").text, lrn);
        }
    }
}

#[test]
fn accepted_carries_mrn_and_acceptance_first() {
    let root = parse(&write(&accepted()).unwrap());
    let declaration = root.get("Response/Declaration");
    let names: Vec<&str> = declaration
        .children
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "AcceptanceDateTime",
            "FunctionalReferenceID",
            "ID",
            "VersionID"
        ]
    );
    assert_eq!(declaration.get("ID").text, "26GB1A2B3C4D5E6F70");
    assert_eq!(
        declaration.get("AcceptanceDateTime/DateTimeString").text,
        "20261124103000Z"
    );
}

#[test]
fn rejected_errors_carry_pointer_chains_in_order() {
    let xml = write(&rejected()).unwrap();
    assert!(
        xml.contains("Weight &lt;1kg&gt; &amp; &quot;net&quot; isn&apos;t gross"),
        "{xml}"
    );
    let response = parse(&xml);
    let response = response.get("Response");
    let errors = response.all("Error");
    assert_eq!(errors.len(), 3);
    let codes: Vec<&str> = errors
        .iter()
        .map(|e| e.get("ValidationCode").text.as_str())
        .collect();
    assert_eq!(codes, ["CDS12005", "CDS10020", "CDS12050"]);
    // Description comes before ValidationCode; escaped text reads back intact.
    assert_eq!(errors[0].children[0].name, "Description");
    assert_eq!(errors[0].get("Description").text, AWKWARD);
    assert!(!errors[1].has("Description"));
    assert_eq!(
        chain(errors[0]),
        [step(None, "42A", None), step(Some(2), "17C", Some("R144"))]
    );
    assert_eq!(
        chain(errors[1]),
        [
            step(None, "42A", None),
            step(None, "67A", None),
            step(Some(3), "68A", None),
            step(None, "23A", None),
            step(Some(2), "21A", Some("145")),
        ]
    );
    assert_eq!(
        chain(errors[2]),
        [
            step(None, "42A", None),
            step(None, "67A", None),
            step(Some(12), "68A", None),
            step(Some(2), "02A", Some("360")),
        ]
    );
    // Inside a Pointer, SequenceNumeric precedes DocumentSectionCode precedes TagID.
    let last = errors[2].all("Pointer")[3];
    let names: Vec<&str> = last.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["SequenceNumeric", "DocumentSectionCode", "TagID"]);
    let declaration = response.get("Declaration");
    assert_eq!(
        declaration.get("FunctionalReferenceID").text,
        "LRN&<2026>\"7\""
    );
    assert!(!declaration.has("ID"));
    assert_eq!(
        declaration.get("RejectionDateTime/DateTimeString").text,
        "20261124103100Z"
    );
}

#[test]
fn documents_required_carries_the_statement_and_its_limit() {
    let root = parse(&write(&documents_required()).unwrap());
    let info = root.get("Response/AdditionalInformation");
    let names: Vec<&str> = info.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "StatementCode",
            "StatementDescription",
            "LimitDateTime",
            "StatementTypeCode",
            "Pointer",
            "Pointer",
            "Pointer",
            "Pointer"
        ]
    );
    assert_eq!(
        info.get("StatementDescription").text,
        "Upload the invoice & packing list"
    );
    assert_eq!(
        info.get("LimitDateTime/DateTimeString").text,
        "20261208110000Z"
    );
    assert_eq!(
        chain(info),
        [
            step(None, "42A", None),
            step(None, "67A", None),
            step(Some(2), "68A", None),
            step(Some(1), "02A", None)
        ]
    );
}

#[test]
fn tax_assessment_carries_bank_status_and_duties_per_item() {
    let root = parse(&write(&tax_assessment()).unwrap());
    let response = root.get("Response");
    let names: Vec<&str> = response.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "FunctionCode",
            "FunctionalReferenceID",
            "IssueDateTime",
            "Bank",
            "Status",
            "Declaration"
        ]
    );
    assert_eq!(response.get("Bank/ReferenceID").text, "CITIGB2LLON");
    assert_eq!(response.get("Bank/ID").text, "GB25CITI08320011963155");
    assert_eq!(response.get("Status/NameCode").text, "4");
    let payment = response.get("Declaration/DutyTaxFee/Payment");
    let names: Vec<&str> = payment.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ReferenceID",
            "TaxAssessedAmount",
            "DueDateTime",
            "PaymentAmount",
            "ObligationGuarantee"
        ]
    );
    assert_eq!(
        payment.get("ObligationGuarantee/ReferenceID").text,
        "GUARANTEE-17"
    );
    let items = response
        .get("Declaration/GoodsShipment")
        .all("GovernmentAgencyGoodsItem");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].get("SequenceNumeric").text, "1");
    assert_eq!(items[1].get("SequenceNumeric").text, "2");
    let duties = items[0].get("Commodity").all("DutyTaxFee");
    assert_eq!(duties.len(), 2);
    let names: Vec<&str> = duties[0].children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "AdValoremTaxBaseAmount",
            "DeductAmount",
            "DutyRegimeCode",
            "TaxRateNumeric",
            "TypeCode",
            "Payment"
        ]
    );
    assert_eq!(duties[0].get("AdValoremTaxBaseAmount").text, "10000.00");
    assert_eq!(
        duties[0]
            .get("AdValoremTaxBaseAmount")
            .attribute("currencyID"),
        Some("GBP")
    );
    assert_eq!(duties[1].get("TypeCode").text, "B00");
    assert_eq!(duties[1].get("Payment/TaxAssessedAmount").text, "2054.00");
    let specific = items[1].get("Commodity/DutyTaxFee/SpecificTaxBaseQuantity");
    assert_eq!(
        (specific.text.as_str(), specific.attribute("unitCode")),
        ("34.5", Some("KGM"))
    );
}

#[test]
fn refusals_name_the_field_and_the_reason() {
    let mut r = rejected();
    r.errors[1].validation_code = "CDS100200".into();
    let e = write(&r).unwrap_err();
    assert_eq!(e.field, "/MetaData/Response/Error[2]/ValidationCode");
    assert_eq!(e.kind, WriteErrorKind::TooLong { max: 8, found: 9 });

    let mut r = rejected();
    r.errors[2].pointers[2].sequence = Some(100_000);
    let e = write(&r).unwrap_err();
    assert_eq!(
        e.field,
        "/MetaData/Response/Error[3]/Pointer[3]/SequenceNumeric"
    );
    assert!(
        matches!(
            e.kind,
            WriteErrorKind::Digits {
                total: 5,
                fraction: 0,
                ..
            }
        ),
        "{e}"
    );

    let mut r = rejected();
    r.errors[0].pointers[0].document_section_code = " ".into();
    let e = write(&r).unwrap_err();
    assert_eq!(
        e.field,
        "/MetaData/Response/Error[1]/Pointer[1]/DocumentSectionCode"
    );
    assert_eq!(e.kind, WriteErrorKind::Blank);

    let mut r = rejected();
    r.errors[0].description = Some("bell \u{7}".into());
    let e = write(&r).unwrap_err();
    assert_eq!(e.field, "/MetaData/Response/Error[1]/Description");
    assert_eq!(e.kind, WriteErrorKind::Character('\u{7}'));

    let mut r = accepted();
    r.issued = at("1999-12-31T23:59:59");
    let e = write(&r).unwrap_err();
    assert_eq!(e.field, "/MetaData/Response/IssueDateTime");
    assert_eq!(e.kind, WriteErrorKind::Date(r.issued));

    let mut r = accepted();
    r.function = ResponseFunction::Other(100);
    assert_eq!(
        write(&r).unwrap_err().field,
        "/MetaData/Response/FunctionCode"
    );
    r.function = ResponseFunction::Other(14);
    assert!(
        write(&r)
            .unwrap()
            .contains("<res:FunctionCode>14</res:FunctionCode>")
    );

    let mut r = accepted();
    r.functional_reference_id = "x".repeat(36);
    assert_eq!(
        write(&r).unwrap_err().kind,
        WriteErrorKind::TooLong { max: 35, found: 36 }
    );

    let mut r = tax_assessment();
    let tax = r.tax.as_mut().unwrap();
    tax.items[0].duties[1].assessed = Some(Amount {
        value: Decimal::from_str("2054.00").unwrap(),
        currency: "gbp".into(),
    });
    let e = write(&r).unwrap_err();
    assert_eq!(
        e.field,
        "/MetaData/Response/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[1]/Commodity/DutyTaxFee[2]/Payment/TaxAssessedAmount/@currencyID"
    );
    assert_eq!(e.kind, WriteErrorKind::Pattern("[A-Z]{3}"));

    let mut r = tax_assessment();
    r.tax.as_mut().unwrap().payments[0].payable = Some(gbp("1.2345"));
    let e = write(&r).unwrap_err();
    assert_eq!(
        e.field,
        "/MetaData/Response/Declaration/DutyTaxFee[1]/Payment/PaymentAmount"
    );
    assert!(e.to_string().contains("3 after the point"), "{e}");
}

/// One element declaration of the schema, with its ancestors.
#[derive(Debug, Clone)]
struct SchemaElement {
    name: String,
    wcoid: Option<String>,
    repeatable: bool,
    has_children: bool,
}

/// Every element path of the WCO DEC schema: (ancestors and self).
fn schema_paths(xsd: &str) -> Vec<Vec<SchemaElement>> {
    let mut reader = NsReader::from_str(xsd);
    let mut stack: Vec<SchemaElement> = Vec::new();
    let mut paths = Vec::new();
    let mut root_code = None;
    let mut in_wcoid = false;
    loop {
        let (_, event) = reader.read_resolved_event().unwrap();
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = e.local_name();
                let attr = |name: &str| {
                    e.try_get_attribute(name)
                        .unwrap()
                        .map(|a| a.unescape_value().unwrap().into_owned())
                };
                match local.as_ref() {
                    b"element" => {
                        if let Some(parent) = stack.last_mut() {
                            parent.has_children = true;
                        }
                        let element = SchemaElement {
                            name: attr("name").unwrap(),
                            wcoid: None,
                            repeatable: attr("maxOccurs").is_some_and(|m| m != "1"),
                            has_children: false,
                        };
                        if matches!(event, Event::Start(_)) {
                            stack.push(element);
                        } else {
                            let mut path = stack.clone();
                            path.push(element);
                            paths.push(path);
                        }
                    }
                    // The root element's content is the named type Declaration.
                    b"complexType"
                        if stack.is_empty() && attr("name").as_deref() == Some("Declaration") =>
                    {
                        stack.push(SchemaElement {
                            name: "Declaration".into(),
                            wcoid: root_code.clone(),
                            repeatable: false,
                            has_children: false,
                        });
                    }
                    b"WCOID" => in_wcoid = matches!(event, Event::Start(_)),
                    _ => {}
                }
            }
            Event::Text(t) if in_wcoid => {
                if let Some(top) = stack.last_mut()
                    && top.wcoid.is_none()
                    && !top.has_children
                {
                    top.wcoid = Some(t.decode().unwrap().trim().to_owned());
                }
            }
            Event::End(ref e) => match e.local_name().as_ref() {
                b"WCOID" => in_wcoid = false,
                b"element" => {
                    let path = stack.clone();
                    let element = stack.pop().unwrap();
                    if stack.is_empty() {
                        // The global Declaration element: only its code.
                        root_code = element.wcoid;
                    } else {
                        paths.push(path);
                    }
                }
                b"complexType" if stack.len() == 1 => {
                    paths.push(stack.clone());
                    stack.pop();
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    paths
}

#[test]
fn pointer_tables_match_every_path_of_the_dec_schema() {
    let xsd_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/wco/declaration/WCO_DEC_2_DMS.xsd");
    let xsd = std::fs::read_to_string(&xsd_path).unwrap();
    let paths = schema_paths(&xsd);
    assert!(paths.len() > 400, "only {} element paths read", paths.len());
    let mut without_tag = Vec::new();
    for path in &paths {
        let text: String = path.iter().map(|e| format!("/{}", e.name)).collect();
        let (chain, unmapped) = pointers_for_path(&text);
        let Some((last, ancestors)) = path.split_last() else {
            continue;
        };
        let mut expected: Vec<Pointer> = ancestors
            .iter()
            .chain(last.has_children.then_some(last))
            .map(|e| Pointer {
                sequence: e.repeatable.then_some(1),
                document_section_code: e.wcoid.clone().unwrap(),
                tag_id: None,
            })
            .collect();
        if last.has_children {
            assert!(unmapped.is_empty(), "{text}: {unmapped:?}");
        } else if let Some(tag) = &last.wcoid {
            assert!(unmapped.is_empty(), "{text}: {unmapped:?}");
            expected.last_mut().unwrap().tag_id = Some(tag.clone());
        } else {
            assert_eq!(unmapped, std::slice::from_ref(&last.name), "{text}");
            without_tag.push(text.clone());
        }
        assert_eq!(chain, expected, "{text}");
    }
    // The one data element of the schema without a WCOID.
    assert_eq!(
        without_tag,
        [
            "/Declaration/GoodsShipment/GovernmentAgencyGoodsItem/Commodity/Classification/IdentificationTypeCode"
        ]
    );
}
