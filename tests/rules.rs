//! Business rules on canonical declarations: one case per rule code, each
//! asserting the code and the JSON pointer of the field; a clean declaration
//! passes; and `convert --to json` reports them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use tradehub::diag::Code;
use tradehub::model::Declaration;
use tradehub::rules::{RuleSettings, check};
use tradehub::timestamp::Timestamp;

fn clean() -> serde_json::Value {
    json!({
        "kind": "import",
        "function": "original",
        "lrn": "LRN1",
        "issued": {"iso": "2026-11-24T10:30", "format": "203"},
        "declarant": {"id": "1234567890"},
        "importer": {"id": "1234567890", "name": "HANBIT TRADING"},
        "dispatch_country": "CN",
        "totals": {
            "customs_value": {"value": "300.00", "currency": "USD"},
            "gross_mass_kg": "30.0",
            "items": 2
        },
        "goods": [
            {"sequence": 1, "hs_code": "847989", "origin": "CN", "gross_mass_kg": "10.0",
             "customs_value": {"value": "100.00", "currency": "USD"}},
            {"sequence": 2, "hs_code": "8517.62.0000", "origin": "KR", "gross_mass_kg": "20.0",
             "customs_value": {"value": "200.00", "currency": "USD"}}
        ]
    })
}

/// A rule finding: its code and the JSON pointer of the field.
type Finding = (Code, String);

fn findings(value: serde_json::Value) -> Vec<Finding> {
    let declaration: Declaration = serde_json::from_value(value).unwrap();
    let settings = RuleSettings::at(Timestamp::parse("2026-11-25T12:00").unwrap());
    check(&declaration, &settings)
        .into_iter()
        .map(|i| (i.code, i.location.path.unwrap_or_default()))
        .collect()
}

fn with(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<Finding> {
    let mut value = clean();
    edit(&mut value);
    findings(value)
}

#[test]
fn a_clean_declaration_passes() {
    assert_eq!(findings(clean()), vec![]);
}

#[test]
fn each_rule_reports_its_code_and_field() {
    let cases: Vec<(Vec<Finding>, (Code, &str))> = vec![
        (
            with(|v| {
                v.as_object_mut().unwrap().remove("declarant");
            }),
            (Code::RuleParty, "/declarant"),
        ),
        (
            with(|v| {
                v.as_object_mut().unwrap().remove("importer");
            }),
            (Code::RuleParty, "/importer"),
        ),
        (
            with(|v| v["goods"][1]["hs_code"] = json!("85176")),
            (Code::RuleHsCode, "/goods/1/hs_code"),
        ),
        (
            with(|v| v["goods"][0]["hs_code"] = json!("84798A")),
            (Code::RuleHsCode, "/goods/0/hs_code"),
        ),
        (
            with(|v| v["goods"][0]["hs_code"] = json!("..847989")),
            (Code::RuleHsCode, "/goods/0/hs_code"),
        ),
        (
            with(|v| v["goods"][0]["hs_code"] = json!("000000")),
            (Code::RuleHsCode, "/goods/0/hs_code"),
        ),
        (
            with(|v| v["goods"][0]["hs_code"] = json!("770000")),
            (Code::RuleHsCode, "/goods/0/hs_code"),
        ),
        (
            with(|v| v["totals"]["customs_value"]["value"] = json!("350.00")),
            (Code::RuleTotals, "/totals/customs_value/value"),
        ),
        (
            with(|v| v["totals"]["gross_mass_kg"] = json!("40")),
            (Code::RuleTotals, "/totals/gross_mass_kg"),
        ),
        (
            with(|v| v["totals"]["items"] = json!(3)),
            (Code::RuleTotals, "/totals/items"),
        ),
        (
            with(|v| v["goods"][0]["customs_value"]["currency"] = json!("XXY")),
            (Code::RuleCurrency, "/goods/0/customs_value/currency"),
        ),
        (
            with(|v| v["goods"][0]["customs_value"]["currency"] = json!("HRK")),
            (Code::RuleCurrency, "/goods/0/customs_value/currency"),
        ),
        (
            with(|v| v["goods"][0]["customs_value"]["currency"] = json!("XTS")),
            (Code::RuleCurrency, "/goods/0/customs_value/currency"),
        ),
        (
            with(|v| v["goods"][0]["customs_value"]["currency"] = json!("CLF")),
            (Code::RuleCurrency, "/goods/0/customs_value/currency"),
        ),
        (
            with(|v| v["goods"][0]["customs_value"]["currency"] = json!("USN")),
            (Code::RuleCurrency, "/goods/0/customs_value/currency"),
        ),
        (
            with(|v| v["goods"][0]["customs_value"]["currency"] = json!("ANG")),
            (Code::RuleCurrency, "/goods/0/customs_value/currency"),
        ),
        (
            with(|v| v["goods"][1]["origin"] = json!("ZZ")),
            (Code::RuleCountry, "/goods/1/origin"),
        ),
        (
            with(|v| v["dispatch_country"] = json!("CHN")),
            (Code::RuleCountry, "/dispatch_country"),
        ),
        (
            with(|v| v["issued"] = json!({"iso": "2027-01-02", "format": "102"})),
            (Code::RuleFutureDate, "/issued"),
        ),
        (
            with(|v| v["goods"][1]["sequence"] = json!(3)),
            (Code::RuleItems, "/goods/1/sequence"),
        ),
        (
            // Items −100 and 400 sum to the declared 300: the sign is
            // caught even where the totals agree.
            with(|v| {
                v["goods"][0]["customs_value"]["value"] = json!("-100.00");
                v["goods"][1]["customs_value"]["value"] = json!("400.00");
            }),
            (Code::RuleNegative, "/goods/0/customs_value/value"),
        ),
        (
            with(|v| v["importer"]["address"] = json!({"city": "SEOUL", "country": "ZZ"})),
            (Code::RuleCountry, "/importer/address/country"),
        ),
        (
            with(|v| v["seller"] = json!({"name": "S", "address": {"country": "KOR"}})),
            (Code::RuleCountry, "/seller/address/country"),
        ),
        (
            with(|v| v["transport"] = json!({"border_mode": "1", "nationality": "XX"})),
            (Code::RuleCountry, "/transport/nationality"),
        ),
    ];
    for (got, (code, pointer)) in cases {
        assert_eq!(
            got,
            vec![(code, pointer.to_owned())],
            "expected {code:?} at {pointer}"
        );
    }
}

/// Dates are judged as instants: with a time zone, converted to UTC; without
/// one, in the zone furthest ahead of UTC (UTC+14), so that a sender whose
/// local date is already tomorrow is not refused; a few minutes of clock
/// difference are allowed.
#[test]
fn future_dates_are_judged_across_time_zones() {
    let at = |iso: &str, format: &str, now: &str| {
        let mut value = clean();
        value["issued"] = json!({"iso": iso, "format": format});
        let declaration: Declaration = serde_json::from_value(value).unwrap();
        let settings = RuleSettings::at(Timestamp::parse(now).unwrap());
        check(&declaration, &settings)
            .into_iter()
            .map(|i| i.code)
            .collect::<Vec<_>>()
    };
    let future = vec![Code::RuleFutureDate];
    // Seoul, 03:00 on the 28th, is 18:00 UTC on the 27th: past at 20:00.
    assert_eq!(
        at("2026-11-28T03:00+09:00", "303", "2026-11-27T20:00"),
        vec![]
    );
    assert_eq!(
        at("2026-11-28T03:00:00+09:00", "304", "2026-11-27T17:00"),
        future
    );
    // Honolulu, 23:00 on the 27th, is 09:00 UTC on the 28th.
    assert_eq!(
        at("2026-11-27T23:00-10:00", "303", "2026-11-27T12:00"),
        future
    );
    assert_eq!(
        at("2026-11-27T23:00-10:00", "303", "2026-11-28T09:00"),
        vec![]
    );
    // No zone: a local time or date that has begun somewhere on Earth.
    assert_eq!(at("2026-11-28T03:00", "203", "2026-11-27T20:00"), vec![]);
    assert_eq!(at("2026-11-28", "102", "2026-11-27T10:00"), vec![]);
    assert_eq!(at("2026-11-28", "102", "2026-11-27T09:00"), future);
    assert_eq!(at("2026-11-29", "102", "2026-11-27T23:59"), future);
    // Clocks may differ by a few minutes.
    assert_eq!(
        at("2026-11-27T12:04:00+00:00", "304", "2026-11-27T12:00"),
        vec![]
    );
    assert_eq!(
        at("2026-11-27T12:06:00+00:00", "304", "2026-11-27T12:00"),
        future
    );
}

/// The documents a declaration declares cannot be issued after it is
/// checked either (an invoice dated next year), wherever they are: on the
/// declaration, among its previous documents, on a goods item. When they
/// expire may be in the future.
#[test]
fn documents_issued_in_the_future_are_found_where_they_are() {
    let got = with(|v| {
        let next_year = json!({"iso": "2027-11-01", "format": "102"});
        let last_year = json!({"iso": "2025-11-01", "format": "102"});
        v["documents"] = json!([
            {"code": "380", "reference": "INV-1", "issued": last_year},
            {"code": "380", "reference": "INV-2", "issued": next_year,
             "expires": next_year}
        ]);
        v["previous_documents"] = json!([{"code": "ABT", "reference": "X", "issued": next_year}]);
        v["goods"][1]["documents"] = json!([
            {"code": "861", "reference": "CO-1", "issued": last_year, "expires": next_year},
            {"code": "861", "reference": "CO-2", "issued": next_year}
        ]);
    });
    assert_eq!(
        got,
        vec![
            (Code::RuleFutureDate, "/documents/1/issued".to_owned()),
            (
                Code::RuleFutureDate,
                "/previous_documents/0/issued".to_owned()
            ),
            (
                Code::RuleFutureDate,
                "/goods/1/documents/1/issued".to_owned()
            ),
        ]
    );
}

/// The tolerance is the same either way round, and items that give a value
/// must not already exceed the total when others give none.
#[test]
fn totals_are_held_both_ways_and_when_values_are_missing() {
    // Items 100 + 200: 297.00 passes as 303.00 does (1% of the larger).
    for total in ["297.00", "303.00"] {
        assert_eq!(
            with(|v| v["totals"]["customs_value"]["value"] = json!(total)),
            vec![],
            "{total}"
        );
    }
    // The second item gives no value; the first alone is above the total.
    let got = with(|v| {
        v["goods"][1]
            .as_object_mut()
            .unwrap()
            .remove("customs_value");
        v["totals"]["customs_value"]["value"] = json!("50.00");
    });
    assert_eq!(
        got,
        vec![(Code::RuleTotals, "/totals/customs_value/value".to_owned())]
    );
    // … and below it, nothing can be said.
    let got = with(|v| {
        v["goods"][1]
            .as_object_mut()
            .unwrap()
            .remove("customs_value");
    });
    assert_eq!(got, vec![]);
    // The same for masses: item 1 alone weighs more than the total.
    let got = with(|v| {
        v["goods"][1]
            .as_object_mut()
            .unwrap()
            .remove("gross_mass_kg");
        v["totals"]["gross_mass_kg"] = json!("5.0");
    });
    assert_eq!(
        got,
        vec![(Code::RuleTotals, "/totals/gross_mass_kg".to_owned())]
    );
    let got = with(|v| {
        v["goods"][1]
            .as_object_mut()
            .unwrap()
            .remove("gross_mass_kg");
    });
    assert_eq!(got, vec![]);
}

/// The total packages count each item's outermost packaging (UN/EDIFACT
/// 7075, CUSDEC PAC C531): 10 cartons holding 200 pieces are 10 packages,
/// not 210 (which was RUL003 on a correct declaration). Packages with no
/// level count as outer; an item giving only inner packages counts those.
#[test]
fn total_packages_count_the_outermost_level_of_each_item() {
    let packed = |total: u32, first: serde_json::Value, second: serde_json::Value| {
        with(|v| {
            v["totals"]["packages"] = json!(total);
            v["goods"][0]["packages"] = first;
            v["goods"][1]["packages"] = second;
        })
    };
    let cartons = json!([
        {"count": 10, "kind": "CT", "level": "3"},
        {"count": 200, "kind": "PCE", "level": "1"}
    ]);
    let drums = json!([{"count": 2, "kind": "DR"}]);
    assert_eq!(packed(12, cartons.clone(), drums.clone()), vec![]);
    assert_eq!(
        packed(212, cartons.clone(), drums.clone()),
        vec![(Code::RuleTotals, "/totals/packages".to_owned())]
    );
    // Inner packages only: those are what the item gives.
    let pieces = json!([{"count": 200, "kind": "PCE", "level": "1"}]);
    assert_eq!(packed(202, pieces, drums.clone()), vec![]);
    // Intermediate above inner, no level beside outer.
    let boxes = json!([
        {"count": 4, "kind": "BX", "level": "2"},
        {"count": 40, "kind": "PCE", "level": "1"}
    ]);
    assert_eq!(packed(6, boxes, drums.clone()), vec![]);
    let mixed = json!([
        {"count": 3, "kind": "CT", "level": "3"},
        {"count": 1, "kind": "PK"},
        {"count": 9, "kind": "PCE", "level": "1"}
    ]);
    assert_eq!(packed(6, mixed, drums), vec![]);
}

/// Items valued in another currency than the total cannot be summed without
/// an exchange rate: a warning says the total was not compared (before, it
/// passed in silence).
#[test]
fn totals_in_another_currency_than_the_items_are_not_compared_and_say_so() {
    let mut value = clean();
    value["totals"]["customs_value"] = json!({"value": "100", "currency": "KRW"});
    value["goods"][1]["customs_value"]["currency"] = json!("EUR");
    let declaration: Declaration = serde_json::from_value(value).unwrap();
    let settings = RuleSettings::at(Timestamp::parse("2026-11-25T12:00").unwrap());
    let issues = check(&declaration, &settings);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].code, Code::RuleTotals);
    assert_eq!(issues[0].severity, tradehub::diag::Severity::Warning);
    assert_eq!(
        issues[0].location.path.as_deref(),
        Some("/totals/customs_value/currency")
    );
    assert!(
        issues[0].message.contains("item(s) 1, 2"),
        "{}",
        issues[0].message
    );
}

#[test]
fn totals_within_the_tolerance_pass() {
    // 1% of 300.00 is 3.00: 302.00 passes, 304.00 does not.
    assert_eq!(
        with(|v| v["totals"]["customs_value"]["value"] = json!("302.00")),
        vec![]
    );
    assert_eq!(
        with(|v| v["totals"]["customs_value"]["value"] = json!("304.00")),
        vec![(Code::RuleTotals, "/totals/customs_value/value".to_owned())]
    );
}

/// Amounts as large as a decimal holds: their sum does not fit, which is a
/// finding at the total, not an overflow (it panicked before).
#[test]
fn sums_too_large_to_compute_are_findings() {
    let huge = "70000000000000000000000000000";
    let got = with(|v| {
        v["goods"][0]["customs_value"]["value"] = json!(huge);
        v["goods"][1]["customs_value"]["value"] = json!(huge);
        v["goods"][0]["gross_mass_kg"] = json!(huge);
        v["goods"][1]["gross_mass_kg"] = json!(huge);
        v["totals"]["customs_value"]["value"] = json!(huge);
        v["totals"]["gross_mass_kg"] = json!(huge);
    });
    assert_eq!(
        got,
        vec![
            (Code::RuleTotals, "/totals/customs_value/value".to_owned()),
            (Code::RuleTotals, "/totals/gross_mass_kg".to_owned()),
        ]
    );
    // A total so large its tolerance or difference cannot be computed is
    // not equal to the sum either.
    let got = with(|v| {
        v["totals"]["customs_value"]["value"] = json!(format!("-{huge}"));
        v["goods"][0]["customs_value"]["value"] = json!(huge);
        v["goods"][1]["customs_value"]["value"] = json!("0");
    });
    assert_eq!(
        got,
        vec![
            (Code::RuleNegative, "/totals/customs_value/value".to_owned()),
            (Code::RuleTotals, "/totals/customs_value/value".to_owned())
        ]
    );
}

#[test]
fn convert_reports_rule_findings() {
    // The generated CUSDEC fixture is an export (BGM 830) that names an
    // importer but no exporter.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/edifact/ok/cusdec-d96b-unoc.edi");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(["convert", path.to_str().unwrap(), "--to", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Located at the message (no value names the missing party: UNH) and
    // by the canonical field.
    assert!(
        stderr.contains("RUL001: an export declaration needs the exporter [interchange")
            && stderr.contains("segment 2 (UNH, #1 in message), field /exporter]"),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json.as_array().unwrap().len(),
        2,
        "the canonical objects are printed all the same"
    );
}

/// A declaration that does not map whole (an amount without a currency:
/// MAP004) is still checked by the rules on the rest, so the sender hears
/// of every error at once: from `convert` and in the APERAK the hub would
/// send, each located at its segment. Totals are not compared (their sums
/// miss what was left out).
#[test]
fn an_incomplete_declaration_gets_every_finding_at_once() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(root.join("fixtures/edifact/ok/cusdec-d96b-medical-import.edi"))
            .unwrap();
    let edited = text
        .replacen("MOA+123:50001.25:USD'", "MOA+123:50001.25'", 1)
        .replacen("CST+2+847989'", "CST+2+84798A'", 1)
        .replacen("LOC+35+DE'", "LOC+35+QQ'", 1)
        // A total that differs from the items: not reported here.
        .replacen("MOA+39:125000.50:USD'", "MOA+39:1.00:USD'", 1);
    assert_eq!(edited.matches('\'').count(), text.matches('\'').count());
    assert_ne!(edited, text);
    let dir = std::env::temp_dir().join(format!(
        "tradehub-incomplete-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("incomplete.edi");
    std::fs::write(&path, &edited).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tradehub"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["convert", path.to_str().unwrap(), "--to", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "error MAP004: the mapped declaration is incomplete: missing field `currency` (at \
         /goods/0/statistical_value) [interchange 20261124002, message 1, segment 15 (MOA, #14 \
         in message), group SG30/SG33, element 1, component 3, field \
         /goods/0/statistical_value/currency]",
        "error RUL002: HS code \"84798A\" of goods item 2 is not 6 to 10 digits [interchange \
         20261124002, message 1, segment 16 (CST, #15 in message), group SG30, element 2, \
         component 1, field /goods/1/hs_code]",
        "error RUL005: \"QQ\" is not an ISO 3166-1 alpha-2 country code [interchange \
         20261124002, message 1, segment 5 (LOC, #4 in message), element 2, component 1, \
         field /dispatch_country]",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
    assert!(!stderr.contains("RUL003"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!([]),
        "no canonical object is printed"
    );

    // The APERAK: the three errors, each with its segment.
    let out = run(&[
        "ack",
        path.to_str().unwrap(),
        "--kind",
        "aperak",
        "--at",
        "2026-11-25T10:00",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let aperak = String::from_utf8_lossy(&out.stdout);
    let errors: Vec<&str> = aperak
        .split('\'')
        .filter(|s| s.starts_with("ERC+") || s.starts_with("RFF+ACW:1:"))
        .collect();
    assert_eq!(
        errors,
        [
            "ERC+MAP004::ZZZ",
            "RFF+ACW:1:14",
            "ERC+RUL002::ZZZ",
            "RFF+ACW:1:15",
            "ERC+RUL005::ZZZ",
            "RFF+ACW:1:4"
        ],
        "{aperak}"
    );
    assert!(
        aperak.contains("3 finding(s), 3 error(s); not accepted"),
        "{aperak}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Maps an EDIFACT fixture (with `from` replaced by `to`) and returns the
/// findings of its first message, as the hub computes them.
fn manifest_findings(fixture: &str, from: &str, to: &str) -> Vec<tradehub::diag::Issue> {
    manifest_findings_with(fixture, &[(from, to)])
}

/// [`manifest_findings`] with several replacements, in order.
fn manifest_findings_with(fixture: &str, edits: &[(&str, &str)]) -> Vec<tradehub::diag::Issue> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut bytes = std::fs::read_to_string(root.join(fixture)).unwrap();
    for (from, to) in edits {
        assert!(bytes.contains(from), "{from}");
        bytes = bytes.replacen(from, to, 1);
    }
    let (_, mapped) = tradehub::mapping::edifact::parse_and_map(
        bytes.as_bytes(),
        &tradehub::schema::Directories::global(),
    )
    .unwrap();
    let settings = RuleSettings::at(Timestamp::parse("2026-11-25T12:00").unwrap());
    tradehub::rules::check_mapped(&mapped[0], &settings)
}

/// RUL010: a passenger list whose declared total differs from the
/// travellers it lists gets a warning located at its CNT; the same list
/// with the right total gets none.
#[test]
fn a_passenger_list_total_that_differs_is_reported() {
    let fixture = "fixtures/edifact/corpus/gtas__apisMessage.txt";
    assert!(manifest_findings(fixture, "CNT+42:2'", "CNT+42:2'").is_empty());
    let findings = manifest_findings(fixture, "CNT+42:2'", "CNT+42:3'");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.code, Code::RuleTravellerCount);
    assert!(!f.is_error(), "a warning: the list is still taken");
    assert_eq!(f.location.field.as_deref(), Some("/passenger_count"));
    assert_eq!(f.location.tag.as_deref(), Some("CNT"));
    assert!(
        f.message.contains("declares 3 passengers but lists 2"),
        "{}",
        f.message
    );
}

/// A part of a list sent in parts (UNH S010) lists only its share of the
/// travellers the whole list declares: no RUL010 for it, and its part
/// number and status are mapped.
#[test]
fn a_part_of_a_passenger_list_is_not_held_to_the_whole_lists_total() {
    let fixture = "fixtures/edifact/corpus/gtas__apisMessage.txt";
    let part = manifest_findings(
        fixture,
        "PAXLST:D:05B:UN:IATA'",
        "PAXLST:D:05B:UN:IATA++2:C'",
    );
    let whole = manifest_findings(fixture, "CNT+42:2'", "CNT+42:3'");
    assert_eq!(whole.len(), 1, "{whole:#?}");
    let both = manifest_findings_with(
        fixture,
        &[
            ("PAXLST:D:05B:UN:IATA'", "PAXLST:D:05B:UN:IATA++2:C'"),
            ("CNT+42:2'", "CNT+42:3'"),
        ],
    );
    assert!(part.is_empty() && both.is_empty(), "{part:#?} {both:#?}");
    // A list in one part (`1:F`, first and final) lists every traveller:
    // held to its totals.
    let single = manifest_findings_with(
        fixture,
        &[
            ("PAXLST:D:05B:UN:IATA'", "PAXLST:D:05B:UN:IATA++1:F'"),
            ("CNT+42:2'", "CNT+42:3'"),
        ],
    );
    assert_eq!(single.len(), 1, "{single:#?}");
    assert_eq!(single[0].code, Code::RuleTravellerCount);
    // The final part of several is not.
    let last = manifest_findings_with(
        fixture,
        &[
            ("PAXLST:D:05B:UN:IATA'", "PAXLST:D:05B:UN:IATA++3:F'"),
            ("CNT+42:2'", "CNT+42:3'"),
        ],
    );
    assert!(last.is_empty(), "{last:#?}");
}

/// RUL011: a consignment whose goods are placed in a container the report's
/// equipment does not list gets a warning located at that SGP.
#[test]
fn a_container_missing_from_the_equipment_is_reported() {
    let fixture = "fixtures/edifact/ok/cuscar-d96b-sea-manifest.edi";
    assert!(manifest_findings(fixture, "SGP+HDMU7654321", "SGP+HDMU7654321").is_empty());
    let findings = manifest_findings(fixture, "SGP+HDMU7654321", "SGP+MSCU0000001");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.code, Code::RuleEquipment);
    assert!(!f.is_error());
    assert_eq!(f.location.tag.as_deref(), Some("SGP"));
    assert!(f.message.contains("MSCU0000001"), "{}", f.message);
}

/// Who counts as a passenger follows UNCL 3035: DDU is a passenger in
/// transit (not crew), so a list of FL and DDU matches a total of two; a
/// party that is not a traveller (COT, involved party) is reported as
/// unmapped and not counted.
#[test]
fn in_transit_passengers_count_as_passengers() {
    let fixture = "fixtures/edifact/corpus/gtas__apisMessage.txt";
    let cheryl = "NAD+FL+++CLARK:CHERYL'";
    assert!(manifest_findings(fixture, cheryl, "NAD+DDU+++CLARK:CHERYL'").is_empty());
    let findings = manifest_findings(fixture, cheryl, "NAD+COT+++CLARK:CHERYL'");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(
        findings[0]
            .message
            .contains("declares 2 passengers but lists 1")
    );
}
