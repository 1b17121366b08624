//! Routing rules over the agency catalogue: the shipped files load; a
//! declaration gets one permit per agency rule, listing the goods items it
//! covers; a declaration no rule matches needs none; mistakes in the rules
//! name their line. Also `tradehub route` as a user runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use tradehub::agency::AgencyCatalogue;
use tradehub::routing::Routing;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> (AgencyCatalogue, Routing) {
    let agencies = AgencyCatalogue::load(root().join("config/agencies.toml")).unwrap();
    let routing = Routing::load(&root().join("config/routing.toml"), &agencies).unwrap();
    (agencies, routing)
}

/// The CUSDEC fixture as an import with three items: beef, a radio
/// transmitter and a machine.
fn import_cusdec() -> String {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    let first = text.split("UNH+2+").next().unwrap().to_owned();
    let body = first
        .replacen("BGM+830+", "BGM+929+", 1)
        .replacen("CST+1+847989'", "CST+1+020130'", 1)
        .replacen("CST+2+847989'", "CST+2+851762'", 1);
    let extra = "CST+3+847989'FTX+AAA+++MACHINE'UNS+S'";
    let body = body.replacen("UNS+S'", extra, 1);
    let count = body.split("UNH+1").nth(1).unwrap().matches('\'').count();
    let body = body.replace("UNT+20+1'", &format!("UNT+{}+1'", count));
    format!("{body}UNZ+1+20261124001'")
}

#[test]
fn shipped_rules_load_against_the_catalogue() {
    let (agencies, routing) = shipped();
    assert_eq!(agencies.len(), 169);
    assert!(routing.len() >= 15, "{}", routing.len());
}

#[test]
fn route_names_the_agencies_and_the_goods_items() {
    let path = std::env::temp_dir().join(format!("tradehub-route-{}.edi", std::process::id()));
    std::fs::write(&path, import_cusdec()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(["route", "--format", "json", path.to_str().unwrap()])
        .current_dir(root())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let permits = json[0]["permits"].as_array().unwrap();
    let by_agency = |code: &str| {
        permits
            .iter()
            .find(|p| p["agency"] == code)
            .map(|p| p["goods"].clone())
    };
    // Meat (chapter 02): food safety and animal/plant quarantine, item 1.
    assert_eq!(by_agency("MFDS"), Some(serde_json::json!([1])));
    assert_eq!(by_agency("APQA"), Some(serde_json::json!([1])));
    // A radio transmitter (8517.62): radio conformity, item 2.
    assert_eq!(by_agency("RRA"), Some(serde_json::json!([2])));
    // The machine (8479.89) needs no permit: no permit lists item 3.
    assert!(permits.iter().all(|p| {
        !p["goods"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(3))
    }));
    // Each permit carries its law.
    assert!(
        permits
            .iter()
            .all(|p| !p["law"].as_str().unwrap().is_empty())
    );

    // As text (the default): a line per message, then one per permit.
    std::fs::write(&path, import_cusdec()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(["route", path.to_str().unwrap()])
        .current_dir(root())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("message 1 (LRN ")
            && lines[0].ends_with(&format!("{} permits", permits.len())),
        "{text}"
    );
    assert_eq!(lines.len(), 1 + permits.len(), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  RRA (rule ") && l.contains("goods items 2)")),
        "{text}"
    );
}

#[test]
fn exports_and_unmatched_goods_need_no_permit() {
    let path = root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi");
    let out = Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(["route", "--format", "json", path.to_str().unwrap()])
        .output()
        .unwrap();
    // The fixture's declarations break a business rule (RUL001: an
    // export without its exporter), which the hub would reject: said, and
    // the command fails; the routing is still shown.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("RUL001"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .all(|d| d["permits"].as_array().unwrap().is_empty())
    );
}

#[test]
fn rule_mistakes_name_their_line() {
    let (agencies, _) = shipped();
    let cases: &[(&str, &str, usize)] = &[
        (
            "[[rule]]\nid = \"a\"\nagency = \"NOPE\"\nlaw = \"x\"\nconfirms = \"y\"\nhs = [\"01\"]\n",
            "not in the agency catalogue",
            3,
        ),
        (
            "[[rule]]\nid = \"a\"\nagency = \"MFDS\"\nlaw = \"x\"\nconfirms = \"y\"\nhs = [\"0308-0301\"]\n",
            "runs backwards",
            6,
        ),
        (
            "[[rule]]\nid = \"a\"\nagency = \"MFDS\"\nlaw = \"x\"\nconfirms = \"y\"\nhs = [\"123\"]\n",
            "same length",
            6,
        ),
        (
            "[[rule]]\nid = \"a\"\nagency = \"MFDS\"\nlaw = \"x\"\nconfirms = \"y\"\n",
            "would match every declaration",
            2,
        ),
        (
            "[[rule]]\nid = \"a\"\nagency = \"MFDS\"\nlaw = \"x\"\nconfirms = \"y\"\nhs = [\"01\"]\n[[rule]]\nid = \"a\"\nagency = \"MFDS\"\nlaw = \"x\"\nconfirms = \"y\"\nhs = [\"02\"]\n",
            "used twice",
            8,
        ),
        (
            "[[rule]]\nid = \"a\"\nagency = \"MFDS\"\nlaw = \"x\"\nconfirms = \"y\"\nhs = [\"01\"]\ncolour = 1\n",
            "unknown field",
            7,
        ),
    ];
    for (text, fragment, line) in cases {
        let err = Routing::from_toml_str("r.toml", text, &agencies).unwrap_err();
        assert!(err.message.contains(fragment), "{text}: {err}");
        assert_eq!(err.line, *line, "{text}: {err}");
    }
}

/// A rule may name only countries (exports to one destination): it covers
/// every item of the declarations it takes, and no other declaration.
#[test]
fn a_rule_on_countries_alone_routes_every_item() {
    let (agencies, _) = shipped();
    let text = "[[rule]]\nid = \"exports-to-kp\"\nagency = \"MOTIE\"\nlaw = \"x\"\nconfirms = \"y\"\nkinds = [\"export\"]\ndestinations = [\"KP\"]\n";
    let routing = Routing::from_toml_str("r.toml", text, &agencies).unwrap();
    let declaration = |destination: &str| -> tradehub::model::Declaration {
        serde_json::from_value(serde_json::json!({
            "kind": "export", "function": "original", "lrn": "L1",
            "destination_country": destination,
            "goods": [{"sequence": 1, "hs_code": "847989"}, {"sequence": 2, "hs_code": "020130"}]
        }))
        .unwrap()
    };
    let plans = routing.route(&declaration("KP"));
    assert_eq!(plans.len(), 1);
    assert_eq!(
        (plans[0].agency.as_str(), plans[0].goods.clone()),
        ("MOTIE", vec![1, 2])
    );
    assert!(routing.route(&declaration("CN")).is_empty());
}

/// The shipped rules ask each agency for what it confirms: cultural
/// heritage for export only, controlled chemicals both ways, medicines as
/// medicines (not as food).
#[test]
fn shipped_rules_route_by_direction_and_purpose() {
    let (_, routing) = shipped();
    let route = |kind: &str, hs: &str| -> Vec<(String, String)> {
        let d: tradehub::model::Declaration = serde_json::from_value(serde_json::json!({
            "kind": kind, "function": "original", "lrn": "L1",
            "goods": [{"sequence": 1, "hs_code": hs}]
        }))
        .unwrap();
        routing
            .route(&d)
            .into_iter()
            .map(|p| (p.agency, p.law))
            .collect()
    };
    assert_eq!(
        route("export", "970100"),
        [(
            "KHS".to_owned(),
            "Cultural Heritage Protection Act".to_owned()
        )]
    );
    assert!(route("import", "970100").is_empty());
    assert_eq!(
        route("export", "290341"),
        [("ME".to_owned(), "Chemicals Control Act".to_owned())]
    );
    let medicines = route("import", "300490");
    assert!(
        medicines.iter().all(|(agency, _)| agency != "MFDS")
            && medicines.iter().any(|(agency, _)| agency == "KPTA"),
        "{medicines:?}"
    );
}

/// A WCO declaration is routed as its EDIFACT form is: the CUSDEC above,
/// turned into WCO XML through the canonical model, needs the same permits.
#[test]
fn wco_declarations_are_routed_too() {
    let dir = std::env::temp_dir().join(format!("tradehub-route-xml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let edi = dir.join("import.edi");
    std::fs::write(&edi, import_cusdec()).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tradehub"))
            .args(args)
            .current_dir(root())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let xml = run(&["convert", edi.to_str().unwrap(), "--to", "xml"]);
    let xml_path = dir.join("import.xml");
    std::fs::write(&xml_path, &xml).unwrap();
    let from_edi: serde_json::Value =
        serde_json::from_slice(&run(&["route", "--format", "json", edi.to_str().unwrap()]))
            .unwrap();
    let from_xml: serde_json::Value = serde_json::from_slice(&run(&[
        "route",
        "--format",
        "json",
        xml_path.to_str().unwrap(),
    ]))
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(from_xml.as_array().unwrap().len(), 1, "{from_xml:#}");
    assert!(
        !from_xml[0]["permits"].as_array().unwrap().is_empty(),
        "{from_xml:#}"
    );
    assert_eq!(from_xml[0]["permits"], from_edi[0]["permits"]);
    assert_eq!(from_xml[0]["lrn"], from_edi[0]["lrn"]);
}

/// The shipped rules name the headings an agency confirms where it
/// confirms only some goods of a chapter: each case is an HS code and the
/// rules (agency/rule) it must produce, all others being wrong. Steel
/// plate is no waste, matches are no weapons, cement no asbestos, beef is
/// animal (not plant) quarantine, a horse no aquatic organism, soybeans no
/// medicinal herb or flower seed, eggs no dairy quota, a dental instrument
/// goes to the dental association.
#[test]
fn shipped_rules_ask_only_the_agencies_that_confirm_the_goods() {
    let (_, routing) = shipped();
    let cases: &[(&str, &[&str])] = &[
        ("720851", &[]),
        ("392410", &[]),
        ("731815", &[]),
        ("252329", &[]),
        ("270112", &[]),
        ("360500", &[]),
        ("040711", &["MFDS/mfds-chapters", "APQA/apqa-animals"]),
        ("020130", &["MFDS/mfds-chapters", "APQA/apqa-animals"]),
        ("010121", &["APQA/apqa-animals"]),
        ("030211", &["MFDS/mfds-chapters", "NFQS/nfqs-aquatic"]),
        ("090111", &["MFDS/mfds-chapters", "APQA/apqa-plants"]),
        ("120190", &["MFDS/mfds-chapters", "APQA/apqa-plants"]),
        (
            "120930",
            &[
                "MFDS/mfds-chapters",
                "APQA/apqa-plants",
                "KFSA/kfsa-flower-seeds",
            ],
        ),
        (
            "121190",
            &[
                "MFDS/mfds-chapters",
                "APQA/apqa-plants",
                "KPTA/kpta-medicines",
            ],
        ),
        ("330499", &[]),
        ("330129", &["KPTA/kpta-cosmetics"]),
        ("900130", &["KMDIA/kmdia-devices"]),
        ("902000", &[]),
        ("902219", &["NSSC/nssc-chapters"]),
        ("902214", &["KMDIA/kmdia-devices", "NSSC/nssc-chapters"]),
        ("902121", &["KDIA/kdia-dental"]),
        ("940210", &["KDIA/kdia-dental"]),
        ("271091", &["KECO/keco-wastes", "KPETRO/kpetro-fuels"]),
        (
            "040610",
            &[
                "MFDS/mfds-chapters",
                "APQA/apqa-animals",
                "KDAIRY/kdairy-dairy",
            ],
        ),
        ("901890", &["KMDIA/kmdia-devices"]),
        ("901841", &["KDIA/kdia-dental"]),
        ("300610", &["KPTA/kpta-medicines", "KMDIA/kmdia-devices"]),
        ("900659", &[]),
        ("720410", &["KECO/keco-wastes"]),
        ("731100", &["KGS/kgs-containers"]),
        ("271019", &["KPETRO/kpetro-fuels"]),
        ("360410", &["KNPA/knpa-chapters"]),
        ("252400", &["ME/me-asbestos"]),
    ];
    for (hs, expected) in cases {
        let declaration: tradehub::model::Declaration = serde_json::from_value(serde_json::json!({
            "kind": "import",
            "function": "original",
            "lrn": "LRN-ROUTE",
            "goods": [{"sequence": 1, "hs_code": hs}],
        }))
        .unwrap();
        let got: Vec<String> = routing
            .route(&declaration)
            .into_iter()
            .map(|p| format!("{}/{}", p.agency, p.rule))
            .collect();
        assert_eq!(got, *expected, "{hs}");
    }
}

/// A rule with `offices` applies only to declarations lodged at those
/// customs offices (prefix match): a regional agency office for its ports.
#[test]
fn office_rules_apply_to_their_offices_only() {
    let agencies = AgencyCatalogue::load(root().join("config/agencies.toml")).unwrap();
    let routing = Routing::from_toml_str(
        "regional.toml",
        r#"
[[rule]]
id = "mfds-busan"
agency = "MFDS"
law = "Special Act on Imported Food Safety Control"
confirms = "import report for food"
kinds = ["import"]
hs = ["02"]
offices = [" kr030"]
"#,
        &agencies,
    )
    .unwrap();
    let at = |office: Option<&str>| -> Vec<String> {
        let declaration: tradehub::model::Declaration = serde_json::from_value(serde_json::json!({
            "kind": "import",
            "function": "original",
            "lrn": "LRN-OFFICE",
            "customs_office": office,
            "goods": [{"sequence": 1, "hs_code": "020130"}],
        }))
        .unwrap();
        routing
            .route(&declaration)
            .into_iter()
            .map(|p| p.rule)
            .collect()
    };
    assert_eq!(at(Some("KR03011")), ["mfds-busan"]);
    assert_eq!(at(Some("kr03011 ")), ["mfds-busan"]);
    assert!(at(Some("KR02010")).is_empty());
    assert!(at(None).is_empty());
    // A blank office code would match every office: refused, with its line.
    let blank = Routing::from_toml_str(
        "blank.toml",
        "[[rule]]\nid = \"x\"\nagency = \"MFDS\"\nlaw = \"l\"\nconfirms = \"c\"\nhs = [\"02\"]\noffices = [\" \"]\n",
        &agencies,
    );
    let err = blank.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("blank.toml:7") && err.contains("empty"),
        "{err}"
    );
}

/// A rule with `preferences` applies only to goods items claiming one of
/// those duty regimes or tariff preferences: a quota recommendation is
/// asked for the in-quota rate only.
#[test]
fn preference_rules_apply_to_items_claiming_them() {
    let agencies = AgencyCatalogue::load(root().join("config/agencies.toml")).unwrap();
    let routing = Routing::from_toml_str(
        "quota.toml",
        r#"
[[rule]]
id = "kdairy-in-quota"
agency = "KDAIRY"
law = "Customs Act"
confirms = "tariff-rate-quota import recommendations for dairy products"
kinds = ["import"]
hs = ["0401-0406"]
preferences = [" q1"]
"#,
        &agencies,
    )
    .unwrap();
    let route = |duties: serde_json::Value| -> Vec<(String, Vec<u16>)> {
        let declaration: tradehub::model::Declaration = serde_json::from_value(serde_json::json!({
            "kind": "import",
            "function": "original",
            "lrn": "LRN-QUOTA",
            "goods": [
                {"sequence": 1, "hs_code": "040690", "duties": duties},
                {"sequence": 2, "hs_code": "040510"},
            ],
        }))
        .unwrap();
        routing
            .route(&declaration)
            .into_iter()
            .map(|p| (p.rule, p.goods))
            .collect()
    };
    let claimed = route(serde_json::json!([
        {"kind": "A00", "preference": "100"},
        {"kind": "B00", "preference": "q1 "}
    ]));
    assert_eq!(claimed, [("kdairy-in-quota".to_owned(), vec![1])]);
    assert!(route(serde_json::json!([{"kind": "A00", "preference": "100"}])).is_empty());
    assert!(route(serde_json::json!([])).is_empty());
    let blank = Routing::from_toml_str(
        "blank.toml",
        "[[rule]]\nid = \"x\"\nagency = \"MFDS\"\nlaw = \"l\"\nconfirms = \"c\"\nhs = [\"02\"]\npreferences = [\"\"]\n",
        &agencies,
    );
    let err = blank.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("blank.toml:7") && err.contains("empty"),
        "{err}"
    );
}
