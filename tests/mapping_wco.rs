//! WCO DEC → canonical declaration: the mapping file compiles against the
//! vendored DEC schema; every valid corpus declaration maps to its golden
//! canonical JSON with its unmapped values listed; mistakes name their line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use tradehub::diag::Code;
use tradehub::mapping::typed;
use tradehub::mapping::wco::{WcoMapping, load};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn xsd() -> std::path::PathBuf {
    root().join("schemas/wco/declaration/WCO_DEC_2_DMS.xsd")
}

#[test]
fn corpus_declarations_map_to_their_golden_json() {
    let mapping = load().unwrap();
    let expected =
        std::fs::read_to_string(root().join("fixtures/wco/corpus/expected.tsv")).unwrap();
    let mut failures = Vec::new();
    let mut mapped = 0;
    for line in expected.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, schema, verdict) = (cols[0], cols[1], cols[2]);
        if verdict != "valid" || schema.contains("notification") {
            continue;
        }
        let bytes = std::fs::read(root().join("fixtures/wco/corpus").join(file)).unwrap();
        let (value, issues) = mapping.apply(&bytes);
        let canonical = typed("declaration", value.clone());
        let got = serde_json::json!({
            "canonical": canonical.as_ref().ok(),
            "incomplete": canonical.as_ref().err(),
            "issues": issues,
        });
        if canonical.is_ok() {
            mapped += 1;
        }
        let name = file.trim_start_matches("valid/").trim_end_matches(".xml");
        let path = root()
            .join("fixtures/mapping/wco")
            .join(format!("{name}.json"));
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
            continue;
        }
        let want: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_default())
                .unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{name}: differs from {} (UPDATE_EXPECT=1)",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        mapped >= 15,
        "most corpus declarations map completely ({mapped})"
    );
}

#[test]
fn goods_items_map_in_order_with_their_classification() {
    let mapping = load().unwrap();
    let bytes =
        std::fs::read(root().join("fixtures/wco/corpus/valid/crafted-many-items.xml")).unwrap();
    let (value, issues) = mapping.apply(&bytes);
    let d = typed("declaration", value).unwrap();
    let goods = d["goods"].as_array().unwrap();
    assert_eq!(goods.len(), 120);
    assert_eq!(goods[119]["sequence"], 120);
    assert!(
        goods
            .iter()
            .all(|g| g["hs_code"].as_str().is_some_and(|h| h.len() >= 8))
    );
    // A goods item's documents (a list inside the goods list), each with
    // its category, code, number and name.
    assert_eq!(
        goods[0]["documents"][0],
        serde_json::json!({
            "category": "C", "code": "506", "reference": "XIDPO1108656",
            "name": "DPO authorisation"
        })
    );
    // Unmapped values are located by their element path; 50 are listed
    // for the whole document, the rest counted.
    assert_eq!(
        issues[0].location.path.as_deref(),
        Some(
            "/Declaration/GoodsShipment/GovernmentAgencyGoodsItem/AdditionalInformation/StatementCode"
        )
    );
    assert_eq!(issues.len(), 51);
    assert!(
        issues[50]
            .message
            .ends_with("further values are not mapped")
    );
}

/// A Harmonized System code classified as UNCL 7143 HS (other
/// administrations) is the goods item's HS code as HMRC's TSP is.
#[test]
fn a_classification_of_type_hs_is_the_hs_code() {
    let mapping = load().unwrap();
    let text = std::fs::read_to_string(
        root().join("fixtures/wco/corpus/valid/hmrc__TT_IM001d__TT_IM001d.xml"),
    )
    .unwrap();
    let tsp = "<IdentificationTypeCode>TSP</IdentificationTypeCode>";
    assert_eq!(text.matches(tsp).count(), 3);
    let hs = text.replace(tsp, "<IdentificationTypeCode>HS</IdentificationTypeCode>");
    let read = |bytes: &[u8]| {
        let (value, issues) = mapping.apply(bytes);
        let d = typed("declaration", value).unwrap();
        let codes: Vec<String> = d["goods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["hs_code"].as_str().unwrap_or("").to_owned())
            .collect();
        (
            codes,
            issues
                .into_iter()
                .filter(|i| i.message.contains("\"HS\""))
                .count(),
        )
    };
    let (from_tsp, _) = read(text.as_bytes());
    let (from_hs, unread) = read(hs.as_bytes());
    assert_eq!(from_tsp, ["85109000", "85101000", "85102000"]);
    assert_eq!((from_hs, unread), (from_tsp, 0));
}

#[test]
fn mapping_mistakes_name_their_line() {
    let head =
        "format = \"wco\"\nmessage = \"DEC\"\nrelease = \"DEC-DMS:2\"\ntarget = \"declaration\"\n";
    let cases: &[(&str, &str)] = &[
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"GoodsShipment/Nonsense\"\n",
            "Declaration/GoodsShipment/Nonsense is not an element",
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"Commodity[Nope=1]/ID\"\n",
            "is not an element",
        ),
        (
            "[[field]]\nto = \"nope\"\nfrom = \"FunctionalReferenceID\"\n",
            "no field \"nope\"",
        ),
        (
            "[[list]]\nto = \"goods\"\ngroup = \"GoodsShipment/NotAnItem\"\n",
            "is not an element",
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"FunctionalReferenceID\"\ndistinct = true\n",
            "needs `all = true`",
        ),
        // Joining occurrences of a composite is for EDIFACT: refused, not
        // ignored.
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"FunctionalReferenceID\"\njoin = \" \"\n",
            "`join` is for EDIFACT mappings",
        ),
        (
            "[[field]]\nto = \"totals.gross_mass_kg\"\nfrom = \"TotalGrossMassMeasure\"\ntype = \"decimal\"\nfactor = \"0.45359237\"\n",
            "`factor` is for EDIFACT mappings",
        ),
        (
            "[[each]]\nto = \"declarant.contacts\"\nfrom = \"Declarant/Contact\"\n",
            "`each` lists are for EDIFACT mappings",
        ),
        (
            "ignore = [\"GoodsShipment/Packaging/Nope\"]\n",
            "ignore: Declaration/GoodsShipment/Packaging/Nope is not an element",
        ),
    ];
    for (body, fragment) in cases {
        let err = WcoMapping::compile("dec.toml", &format!("{head}\n{body}"), &xsd()).unwrap_err();
        assert!(err.message.contains(fragment), "{body}: {err}");
        assert!(
            (6..=8).contains(&err.line),
            "{body}: line {} ({err})",
            err.line
        );
    }
}

#[test]
fn an_untranslated_function_code_is_reported() {
    let mapping = load().unwrap();
    let text = std::fs::read_to_string(
        root().join("fixtures/wco/corpus/valid/hmrc__TT_IM001d__TT_IM001d.xml"),
    )
    .unwrap();
    let bytes = text.replacen(
        "<FunctionCode>9</FunctionCode>",
        "<FunctionCode>11</FunctionCode>",
        1,
    );
    let (value, issues) = mapping.apply(bytes.as_bytes());
    let issue = issues
        .iter()
        .find(|i| i.code == Code::MappingCodeUnknown)
        .unwrap();
    assert_eq!(
        issue.location.path.as_deref(),
        Some("/Declaration/FunctionCode")
    );
    assert!(
        typed("declaration", value).is_err(),
        "no function, no declaration"
    );
}

/// A mass is kilograms: a unitCode of KGM is read with it, another unit
/// is refused (MAP002) and the value not taken.
#[test]
fn a_mass_in_another_unit_than_kilograms_is_refused() {
    let mapping = load().unwrap();
    let text = std::fs::read_to_string(
        root().join("fixtures/wco/corpus/valid/hmrc__TT_IM001d__TT_IM001d.xml"),
    )
    .unwrap();
    let mass = |unit: &str| {
        let bytes = text.replacen(
            "<GrossMassMeasure>",
            &format!("<GrossMassMeasure unitCode=\"{unit}\">"),
            1,
        );
        let (value, issues) = mapping.apply(bytes.as_bytes());
        let about_unit: Vec<(Code, Option<String>)> = issues
            .iter()
            .filter(|i| {
                i.location
                    .path
                    .as_deref()
                    .is_some_and(|p| p.ends_with("@unitCode"))
            })
            .map(|i| (i.code, i.location.path.clone()))
            .collect();
        (value["goods"][0].get("gross_mass_kg").cloned(), about_unit)
    };
    let (kilograms, issues) = mass("KGM");
    assert!(kilograms.is_some());
    assert!(issues.is_empty(), "{issues:?}");
    let (tonnes, issues) = mass("TNE");
    assert_eq!(tonnes, None);
    assert_eq!(
        issues,
        [(
            Code::MappingValueInvalid,
            Some(
                "/Declaration/GoodsShipment/GovernmentAgencyGoodsItem/Commodity/GoodsMeasure/GrossMassMeasure/@unitCode"
                    .to_owned()
            )
        )]
    );
}

/// The schema makes every child of an AdditionalDocument optional, and so
/// does the canonical document: one without its type code or its ID, the
/// declaration's or a goods item's, is kept with what it has instead of
/// making the whole declaration incomplete (it was MAP004, without a
/// pointer to the item).
#[test]
fn documents_without_type_code_or_id_are_kept_with_what_they_have() {
    let mapping = load().unwrap();
    let text = std::fs::read_to_string(
        root().join("fixtures/wco/corpus/valid/hmrc__TT_IM001d__TT_IM001d.xml"),
    )
    .unwrap()
    .replacen("<TypeCode>DAN</TypeCode>", "", 1)
    .replacen("<ID>GBDPO1108654</ID>", "", 1);
    let (value, issues) = mapping.apply(text.as_bytes());
    let errors: Vec<_> = issues.iter().filter(|i| i.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(
        value["documents"][0],
        serde_json::json!({"category": "1", "reference": "1108654"})
    );
    assert_eq!(
        value["goods"][0]["documents"][0],
        serde_json::json!({"category": "C", "code": "506"})
    );
    let declaration: tradehub::model::Declaration = serde_json::from_value(value).unwrap();
    assert_eq!(declaration.documents[0].code, None);
    assert_eq!(declaration.goods[0].documents[0].reference, None);
}

/// UNCL 1225 in FunctionCode: 14 (advance notification) is no function
/// of the model; TypeCode INV makes a cancellation only of a request (13),
/// and COR an amendment; with 9 the document is an original.
#[test]
fn the_function_follows_function_code_and_type_code_together() {
    let mapping = load().unwrap();
    let text = std::fs::read_to_string(
        root().join("fixtures/wco/corpus/valid/hmrc__TT_IM001d__TT_IM001d.xml"),
    )
    .unwrap();
    let type_code = text
        .split("<TypeCode>")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .unwrap()
        .to_owned();
    let with = |function: &str, declared: &str| {
        let bytes = text
            .replacen(
                "<FunctionCode>9</FunctionCode>",
                &format!("<FunctionCode>{function}</FunctionCode>"),
                1,
            )
            .replacen(
                &format!("<TypeCode>{type_code}</TypeCode>"),
                &format!("<TypeCode>{declared}</TypeCode>"),
                1,
            );
        let (value, issues) = mapping.apply(bytes.as_bytes());
        let unknown: Vec<String> = issues
            .iter()
            .filter(|i| i.code == Code::MappingCodeUnknown)
            .map(|i| i.location.path.clone().unwrap_or_default())
            .collect();
        (value["function"].as_str().map(str::to_owned), unknown)
    };
    let function = |f: &str| Some(f.to_owned());
    assert_eq!(with("9", &type_code), (function("original"), vec![]));
    assert_eq!(with("9", "INV"), (function("original"), vec![]));
    assert_eq!(with("13", "INV"), (function("cancellation"), vec![]));
    assert_eq!(with("13", "COR"), (function("amendment"), vec![]));
    assert_eq!(with("13", &type_code), (function("amendment"), vec![]));
    assert_eq!(
        with("14", &type_code),
        (None, vec!["/Declaration/FunctionCode".to_owned()])
    );
    // An original must say its kind: INV names none (MAP004).
    let (value, _) = mapping.apply(
        text.replacen(
            &format!("<TypeCode>{type_code}</TypeCode>"),
            "<TypeCode>INV</TypeCode>",
            1,
        )
        .as_bytes(),
    );
    assert_eq!(
        typed("declaration", value).unwrap_err(),
        "missing field `kind`"
    );
}

#[test]
fn rule_findings_locate_at_the_elements_they_came_from() {
    use tradehub::mapping::locate;
    use tradehub::rules::{RuleSettings, check};
    let mapping = load().unwrap();
    let text =
        std::fs::read_to_string(root().join("fixtures/wco/corpus/valid/crafted-many-items.xml"))
            .unwrap();
    // Goods item 2's HS code broken: the finding points at its element.
    let first = text.find("<ID>22042195</ID>").unwrap();
    let second = first + 1 + text[first + 1..].find("<ID>22042195</ID>").unwrap();
    let bytes = format!(
        "{}<ID>2204X</ID>{}",
        &text[..second],
        &text[second + "<ID>22042195</ID>".len()..]
    );
    let (value, _, provenance) = mapping.apply_located(bytes.as_bytes());
    let declaration = serde_json::from_value(typed("declaration", value).unwrap()).unwrap();
    let mut findings = check(
        &declaration,
        &RuleSettings::at(tradehub::timestamp::Timestamp::parse("2030-01-01T00:00").unwrap()),
    );
    locate(&mut findings, &provenance);
    let hs = findings
        .iter()
        .find(|f| f.code == Code::RuleHsCode)
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(hs.location.field.as_deref(), Some("/goods/1/hs_code"));
    let path = hs.location.path.as_deref().unwrap();
    assert_eq!(
        path,
        "/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[2]/Commodity/Classification/ID"
    );
    // WCO RES can point at it.
    let (pointers, unmapped) = tradehub::xml::response::pointers_for_path(path);
    assert!(unmapped.is_empty(), "{unmapped:?}");
    assert_eq!(pointers.len(), 5, "{pointers:?}");
    // Every finding has an element path.
    for f in &findings {
        assert!(
            f.location
                .path
                .as_deref()
                .is_some_and(|p| p.starts_with("/Declaration")),
            "{f:?}"
        );
    }
}

#[test]
fn distinct_keeps_each_repeated_value_once() {
    let head =
        "format = \"wco\"\nmessage = \"DEC\"\nrelease = \"DEC-DMS:2\"\ntarget = \"declaration\"\n";
    let rule = "[[field]]\nto = \"transport.containers\"\nfrom = \"GoodsShipment/Consignment/TransportEquipment/ID\"\nall = true\n";
    let doc = br#"<Declaration xmlns="urn:wco:datamodel:WCO:DEC-DMS:2"><GoodsShipment><Consignment>
        <TransportEquipment><ID>HDMU1234565</ID></TransportEquipment>
        <TransportEquipment><ID>MSCU7654321</ID></TransportEquipment>
        <TransportEquipment><ID>HDMU1234565</ID></TransportEquipment>
        </Consignment></GoodsShipment></Declaration>"#;
    let containers = |body: &str| {
        let mapping = WcoMapping::compile("dec.toml", &format!("{head}\n{body}"), &xsd()).unwrap();
        let (value, _) = mapping.apply(doc);
        value["transport"]["containers"].clone()
    };
    assert_eq!(
        containers(rule),
        serde_json::json!(["HDMU1234565", "MSCU7654321", "HDMU1234565"])
    );
    assert_eq!(
        containers(&format!("{rule}distinct = true\n")),
        serde_json::json!(["HDMU1234565", "MSCU7654321"])
    );
}

/// The declared total gross mass is read (in kilograms), so RUL003 holds it
/// against the goods items' masses and locates a difference at the element.
#[test]
fn the_total_gross_mass_is_held_against_the_items() {
    use tradehub::mapping::locate;
    use tradehub::rules::{RuleSettings, check};
    let mapping = load().unwrap();
    let text = std::fs::read_to_string(
        root().join("fixtures/wco/corpus/valid/hmrc__TT_IM001d__TT_IM001d.xml"),
    )
    .unwrap();
    let anchor = "<TotalPackageQuantity>";
    assert_eq!(text.matches(anchor).count(), 1);
    let findings = |total: &str| {
        let bytes = text.replacen(
            anchor,
            &format!(
                "<TotalGrossMassMeasure unitCode=\"KGM\">{total}</TotalGrossMassMeasure>{anchor}"
            ),
            1,
        );
        let (value, _, provenance) = mapping.apply_located(bytes.as_bytes());
        let declaration: tradehub::model::Declaration =
            serde_json::from_value(typed("declaration", value).unwrap()).unwrap();
        let mut findings = check(
            &declaration,
            &RuleSettings::at(tradehub::timestamp::Timestamp::parse("2030-01-01T00:00").unwrap()),
        );
        locate(&mut findings, &provenance);
        (declaration.totals.gross_mass_kg, findings)
    };
    // Items: 150 + 15 + 15 kg.
    let (total, found) = findings("180");
    assert_eq!(total.map(|t| t.to_string()), Some("180".to_owned()));
    assert!(
        !found.iter().any(|f| f.code == Code::RuleTotals),
        "{found:#?}"
    );
    let (_, found) = findings("99999");
    let totals = found
        .iter()
        .find(|f| f.code == Code::RuleTotals)
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert_eq!(
        totals.location.path.as_deref(),
        Some("/Declaration/TotalGrossMassMeasure")
    );
}

/// The declaration's IssueDateTime is a DateTimeString whose formatCode is
/// its 2379 format: read with its zone (HMRC writes UTC as `Z`), so the
/// rule on dates in the future (RUL006) runs on XML declarations as on
/// EDIFACT ones, located at the element. A format code the date does not
/// fit is MAP002 at the element.
#[test]
fn the_issue_date_is_read_with_its_format_and_judged_by_rul006() {
    use tradehub::mapping::locate;
    use tradehub::rules::{RuleSettings, check};
    let mapping = load().unwrap();
    let text = std::fs::read_to_string(
        root().join("fixtures/wco/corpus/valid/hmrcexp__TT1_IM_v2.02_Accepted.xml"),
    )
    .unwrap();
    let given = r#"formatCode="304">20170810093030Z<"#;
    assert_eq!(text.matches(given).count(), 1);
    let settings =
        RuleSettings::at(tradehub::timestamp::Timestamp::parse("2017-08-10T09:40").unwrap());
    let judged = |replacement: &str| {
        let bytes = text.replacen(given, replacement, 1);
        let (value, issues, provenance) = mapping.apply_located(bytes.as_bytes());
        let typed = typed("declaration", value.clone());
        let mut findings = typed
            .ok()
            .and_then(|t| serde_json::from_value(t).ok())
            .map(|d| check(&d, &settings))
            .unwrap_or_default();
        locate(&mut findings, &provenance);
        (value, issues, findings)
    };

    let (value, issues, findings) = judged(given);
    assert_eq!(value["issued"]["iso"], "2017-08-10T09:30:30Z");
    assert_eq!(value["issued"]["format"], "304");
    assert!(
        !issues.iter().any(|i| i
            .location
            .path
            .as_deref()
            .is_some_and(|p| p.contains("IssueDateTime"))),
        "the format code is read with the date: {issues:#?}"
    );
    assert!(
        findings.iter().all(|f| f.code != Code::RuleFutureDate),
        "{findings:#?}"
    );

    // An hour later than the hub's clock, in UTC: in the future.
    let (_, _, findings) = judged(r#"formatCode="304">20170810103030Z<"#);
    let future = findings
        .iter()
        .find(|f| f.code == Code::RuleFutureDate)
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(
        future.location.path.as_deref(),
        Some("/Declaration/IssueDateTime/DateTimeString")
    );
    // The same wall-clock time at UTC+01 is ten minutes in the past.
    let (value, _, findings) = judged(r#"formatCode="304">20170810103030+01<"#);
    assert_eq!(value["issued"]["iso"], "2017-08-10T10:30:30+01:00");
    assert!(
        findings.iter().all(|f| f.code != Code::RuleFutureDate),
        "{findings:#?}"
    );

    // A date-time given the date-only format: refused where it stands.
    let (value, issues, _) = judged(r#"formatCode="102">20170810093030Z<"#);
    assert!(value.get("issued").is_none(), "{value:#}");
    let bad = issues
        .iter()
        .find(|i| i.code == Code::MappingValueInvalid)
        .unwrap_or_else(|| panic!("{issues:#?}"));
    assert_eq!(
        bad.location.path.as_deref(),
        Some("/Declaration/IssueDateTime/DateTimeString")
    );
}

/// A WCO date rule names the DateTimeString of a date-time element and the
/// attribute holding its format; anything else is refused when the file is
/// loaded, with its line.
#[test]
fn a_wco_date_rule_must_name_a_date_time_string_and_its_format() {
    let head =
        "format = \"wco\"\nmessage = \"DEC\"\nrelease = \"DEC-DMS:2\"\ntarget = \"declaration\"\n";
    let compile = |body: &str| WcoMapping::compile("dec.toml", &format!("{head}\n{body}"), &xsd());
    assert!(
        compile(
            "[[field]]\nto = \"issued\"\nfrom = \"IssueDateTime/DateTimeString\"\ntype = \"date\"\ndate_format = \"@formatCode\"\n"
        )
        .is_ok()
    );
    for (body, says) in [
        (
            "[[field]]\nto = \"issued\"\nfrom = \"IssueDateTime\"\ntype = \"date\"\ndate_format = \"@formatCode\"\n",
            "DateTimeString",
        ),
        (
            "[[field]]\nto = \"issued\"\nfrom = \"IssueDateTime/DateTimeString\"\ntype = \"date\"\n",
            "date_format",
        ),
        (
            "[[field]]\nto = \"issued\"\nfrom = \"IssueDateTime/DateTimeString\"\ntype = \"date\"\ndate_format = \"formatCode\"\n",
            "@formatCode",
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"IssueDateTime/DateTimeString\"\ntype = \"date\"\ndate_format = \"@formatCode\"\n",
            "lrn",
        ),
    ] {
        let err = compile(body).unwrap_err();
        assert!(err.message.contains(says), "{body}: {err}");
        assert!(err.line >= 6, "{body}: {err}");
    }
}

/// Character data written as CDATA is text like any other, and a count
/// written as the schema's xs:decimal allows (`3.0`, `+1`) is the whole
/// number it says; a real fraction is still refused.
#[test]
fn cdata_and_decimal_forms_of_whole_numbers_are_read() {
    let mapping = load().unwrap();
    let text = std::fs::read_to_string(
        root().join("fixtures/wco/corpus/valid/hmrc__TT_IM001d__TT_IM001d.xml"),
    )
    .unwrap();
    let lrn = "<FunctionalReferenceID>TT_IM01d_v1.6_230322_1</FunctionalReferenceID>";
    let quantity = "<GoodsItemQuantity>3</GoodsItemQuantity>";
    let second = "<SequenceNumeric>2</SequenceNumeric>";
    for needle in [lrn, quantity, second] {
        assert_eq!(text.matches(needle).count(), 1, "{needle}");
    }
    let changed = text
        .replace(
            lrn,
            "<FunctionalReferenceID><![CDATA[TT_IM01d_v1.6_230322_1]]></FunctionalReferenceID>",
        )
        .replace(quantity, "<GoodsItemQuantity>3.0</GoodsItemQuantity>")
        .replace(second, "<SequenceNumeric>+2</SequenceNumeric>");
    let (value, issues) = mapping.apply(changed.as_bytes());
    let errors: Vec<_> = issues.iter().filter(|i| i.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let d = typed("declaration", value).unwrap();
    assert_eq!(d["lrn"], "TT_IM01d_v1.6_230322_1");
    assert_eq!(d["totals"]["items"], 3);
    let sequences: Vec<u64> = d["goods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3]);

    let fraction = text.replace(quantity, "<GoodsItemQuantity>3.5</GoodsItemQuantity>");
    let (_, issues) = mapping.apply(fraction.as_bytes());
    assert!(
        issues
            .iter()
            .any(|i| i.code == Code::MappingValueInvalid && i.message.contains("\"3.5\"")),
        "{issues:#?}"
    );
}
