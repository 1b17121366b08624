//! The canonical model: exact decimals on the wire, JSON round trips, and
//! the published JSON Schema kept equal to the types.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::str::FromStr;

use rust_decimal::Decimal;
use tradehub::model::*;

fn declaration() -> Declaration {
    Declaration {
        kind: Some(DeclarationKind::Import),
        function: DeclarationFunction::Original,
        lrn: "LRN2026001".into(),
        mrn: None,
        type_code: Some("830".into()),
        issued: Some(Moment::from_edifact("202611241030", "203").unwrap()),
        declarant: Some(Party {
            id: Some("1234567890".into()),
            id_scheme: Some("KCS".into()),
            ..Party::default()
        }),
        submitter: None,
        importer: Some(Party {
            name: Some("HANBIT TRADING CO+ LTD".into()),
            ..Party::default()
        }),
        exporter: None,
        representative: None,
        seller: None,
        buyer: None,
        consignee: None,
        consignor: None,
        dispatch_country: None,
        destination_country: None,
        customs_office: Some("KRPUS".into()),
        transport: Some(Transport {
            border_mode: Some("1".into()),
            containers: vec!["HDMU1234567".into()],
            ..Transport::default()
        }),
        totals: Totals {
            invoice: Some(Amount {
                value: Decimal::from_str("125000.50").unwrap(),
                currency: "USD".into(),
            }),
            ..Totals::default()
        },
        documents: vec![],
        previous_documents: vec![],
        reason: None,
        changes: vec![],
        goods: vec![GoodsItem {
            sequence: 1,
            hs_code: Some("847989".into()),
            gross_mass_kg: Some(Decimal::from_str("1001.50").unwrap()),
            customs_value: Some(Amount {
                value: Decimal::from_str("0.10").unwrap(),
                currency: "USD".into(),
            }),
            ..GoodsItem::default()
        }],
    }
}

#[test]
fn amounts_are_exact_strings_and_round_trip() {
    let d = declaration();
    let json = serde_json::to_value(&d).unwrap();
    // Exact decimals travel as strings, trailing zeros kept.
    assert_eq!(json["totals"]["invoice"]["value"], "125000.50");
    assert_eq!(json["goods"][0]["gross_mass_kg"], "1001.50");
    assert_eq!(json["goods"][0]["customs_value"]["value"], "0.10");
    assert_eq!(json["issued"]["iso"], "2026-11-24T10:30");
    assert_eq!(json["issued"]["format"], "203");
    let back: Declaration = serde_json::from_value(json).unwrap();
    assert_eq!(back, d);
    // 0.1 + 0.2 is 0.3 here, unlike binary floats.
    let sum = Decimal::from_str("0.1").unwrap() + Decimal::from_str("0.2").unwrap();
    assert_eq!(sum.to_string(), "0.3");
}

#[test]
fn published_json_schema_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema/canonical.json");
    let actual = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        actual, expected,
        "docs/schema/canonical.json is stale: run UPDATE_EXPECT=1 cargo test --test model"
    );
    let schema: serde_json::Value = serde_json::from_str(&expected).unwrap();
    let defs = schema["$defs"].as_object().unwrap();
    for name in [
        "Declaration",
        "GoodsItem",
        "CargoReport",
        "PassengerList",
        "PermitRequest",
        "PermitDecision",
        "Moment",
    ] {
        assert!(defs.contains_key(name), "{name} missing from the schema");
    }
}

/// An agency's AMQP reply is read as strictly as its HTTP answer: a
/// misspelt field is refused (it was ignored, and a conditional grant's
/// terms or a refusal's reasons taken as absent), and so is an array.
#[test]
fn a_permit_reply_has_the_fields_of_a_decision_and_no_other() {
    let ok = PermitDecision::from_reply(
        br#"{"permit_id": "P1", "outcome": "conditional", "conditions": "keep cold"}"#,
    )
    .unwrap();
    assert_eq!(ok.outcome, PermitOutcome::Conditional);
    assert_eq!(ok.conditions.as_deref(), Some("keep cold"));
    let misspelt = PermitDecision::from_reply(
        br#"{"permit_id": "P1", "outcome": "conditional", "condtions": "keep cold"}"#,
    )
    .unwrap_err();
    assert!(
        misspelt.to_string().contains("unknown field `condtions`"),
        "{misspelt}"
    );
    let array = PermitDecision::from_reply(br#"["P1", "granted"]"#).unwrap_err();
    assert!(
        array.to_string().contains("expected a JSON object"),
        "{array}"
    );
}
