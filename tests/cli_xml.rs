//! `tradehub check` and `tradehub ack --kind res` on WCO XML, as a user runs
//! them: auto-detection, exit codes, located issues in JSON, the limits as
//! flags, and responses that are themselves schema-valid.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tradehub::xml::{DocumentKind, XmlLimits, XmlValidator};

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/wco/corpus")
        .join(rel)
}

fn tradehub(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(args)
        .output()
        .expect("run tradehub")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn check_detects_xml_and_follows_the_verdict() {
    let ok = corpus("valid/hmrc__TT_IM001d__TT_IM001d.xml");
    let bad = corpus("invalid/crafted-functioncode-letters.xml");
    let edi =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/edifact/ok/cusdec-d96b-unoc.edi");
    let out = tradehub(&["check", ok.to_str().unwrap(), edi.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("valid (0 error(s), 0 warning(s), WCO declaration"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("3 goods item(s)"), "{}", stdout(&out));

    let out = tradehub(&["check", "--format", "json", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &json[0];
    assert_eq!(report["format"], "xml");
    assert_eq!(report["document"]["kind"], "declaration");
    assert_eq!(report["document"]["function_code"], "X9");
    let issue = &report["issues"][0];
    assert_eq!(issue["code"], "XML002");
    assert_eq!(issue["location"]["line"], 23);
    assert_eq!(
        issue["location"]["path"],
        "/MetaData/Declaration/FunctionCode"
    );
    assert!(issue["message"].as_str().unwrap().contains("'X9'"));
}

#[test]
fn limits_are_flags() {
    let ok = corpus("valid/hmrc__TT_IM001d__TT_IM001d.xml");
    let out = tradehub(&[
        "check",
        "--format",
        "json",
        "--xml-max-bytes",
        "1000",
        ok.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["issues"][0]["code"], "XML004");

    let out = tradehub(&[
        "check",
        "--format",
        "json",
        "--xml-max-depth",
        "3",
        ok.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["issues"][0]["code"], "XML005");

    let out = tradehub(&[
        "check",
        "--wco-schemas",
        "no-such-folder",
        ok.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing schema folder is a usage error"
    );
}

#[test]
fn ack_res_rejects_with_pointers_and_the_response_is_valid() {
    let bad = corpus("invalid/crafted-bad-currency.xml");
    let out = tradehub(&[
        "ack",
        "--kind",
        "res",
        "--at",
        "2026-11-25T10:00",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let xml = stdout(&out);
    let validator = XmlValidator::new(None, XmlLimits::default());
    let report = validator.validate(xml.as_bytes(), "res.xml");
    assert!(report.valid, "{:#?}\n{xml}", report.issues);
    assert_eq!(report.summary.kind, DocumentKind::Response);
    assert_eq!(report.summary.function_code.as_deref(), Some("03"));
    assert!(xml.contains("<res:ValidationCode>XML002</res:ValidationCode>"));
    // Declaration 42A > GoodsShipment 67A > goods item 68A #1 > Commodity 23A
    // > InvoiceLine 79A with the ItemChargeAmount tag.
    let codes: Vec<&str> = xml
        .split("<res:DocumentSectionCode>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap())
        .collect();
    assert_eq!(codes, ["42A", "67A", "68A", "23A", "79A"]);
    assert!(xml.contains("<res:FunctionalReferenceID>U.792746806S8Z</res:FunctionalReferenceID>"));
    assert!(xml.contains("<res:RejectionDateTime>"));
    // The same input at the same time gives the same response.
    let again = tradehub(&[
        "ack",
        "--kind",
        "res",
        "--at",
        "2026-11-25T10:00",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(stdout(&again), xml);
}

/// The schema-valid corpus declarations the hub rejects, each with the codes
/// of its errors: the crafted ones break a rule on purpose; HMRC's samples
/// use its placeholder country ZG (RUL005), leave out a party the hub's
/// rules require (RUL001) or state totals their items do not add up to
/// (RUL002); TT_IM026a is a goods presentation notice (type GPR), not a
/// declaration of a kind (MAP003).
const REJECTED: &[(&str, &[&str])] = &[
    ("valid/crafted-bare-declaration.xml", &["RUL005"]),
    ("valid/crafted-many-items.xml", &["RUL003"]),
    (
        "valid/hmrc__Export_Sample_With_Consignor_Declared__New_Export_C21e_Consignor_Sample.xml",
        &["RUL002"],
    ),
    ("valid/hmrc__TT_EX005a__TT_EX005a.xml", &["RUL005"]),
    (
        "valid/hmrc__TT_IM026a__Movement_Messages__Step1_GPN.xml",
        &["MAP003", "RUL001"],
    ),
    (
        "valid/hmrc__TT_IM061a__Step1_TT_IM061a.xml",
        &["RUL001", "RUL002"],
    ),
    ("valid/hmrc__TT_IM073a__TT_IM073a.xml", &["RUL002"]),
];

#[test]
fn ack_res_for_every_corpus_declaration_is_schema_valid() {
    let validator = XmlValidator::new(None, XmlLimits::default());
    let expected = std::fs::read_to_string(corpus("expected.tsv")).unwrap();
    let (mut received, mut rejected) = (0, Vec::new());
    for line in expected.lines().skip(1) {
        let mut cols = line.split('\t');
        let (file, schema, verdict) = (
            cols.next().unwrap(),
            cols.next().unwrap(),
            cols.next().unwrap(),
        );
        if schema.contains("notification") {
            continue;
        }
        let out = tradehub(&["ack", "--kind", "res", corpus(file).to_str().unwrap()]);
        let report = validator.validate(&out.stdout, file);
        assert!(report.valid, "{file}: {:#?}", report.issues);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut codes: Vec<&str> = text
            .split("<res:ValidationCode>")
            .skip(1)
            .filter_map(|rest| rest.split('<').next())
            .collect();
        codes.sort_unstable();
        codes.dedup();
        // A schema-valid declaration is received (02) unless listed as
        // rejected, with exactly the listed codes; a schema-invalid one is
        // rejected with the schema's errors.
        let listed = REJECTED.iter().find(|(f, _)| *f == file);
        let (want, function) = match (verdict, listed) {
            ("valid", None) => {
                assert!(codes.is_empty(), "{file}: {codes:?}");
                (0, "02")
            }
            ("valid", Some((_, want))) => {
                assert_eq!(&codes, want, "{file}");
                rejected.push(file);
                (1, "03")
            }
            _ => {
                assert!(
                    !codes.is_empty() && codes.iter().all(|c| c.starts_with("XML")),
                    "{file}: {codes:?}"
                );
                (1, "03")
            }
        };
        assert_eq!(out.status.code(), Some(want), "{file}");
        assert_eq!(
            report.summary.function_code.as_deref(),
            Some(function),
            "{file}"
        );
        received += usize::from(function == "02");
    }
    assert_eq!(
        rejected.len(),
        REJECTED.len(),
        "every listed file is in the corpus: {rejected:?}"
    );
    assert_eq!(received, 13, "received");
}

/// A WCO document that is not a declaration (a response sent back) is
/// answered by `ack --kind res` as the hub answers it: rejected (03) with
/// XML012, and the response's own FunctionalReferenceID is not echoed as
/// if it were the sender's LRN. Before, `ack` said received (02).
#[test]
fn ack_res_answers_a_response_as_the_hub_does() {
    let path = corpus("valid/hmrcns__Example_DMS_notifications__03_DMSREJ.xml");
    let sent = std::fs::read_to_string(&path).unwrap();
    let own_id = sent
        .split("FunctionalReferenceID>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    let out = tradehub(&["ack", "--kind", "res", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let res = stdout(&out);
    assert!(
        res.contains("<res:FunctionCode>03</res:FunctionCode>"),
        "{res}"
    );
    assert!(
        res.contains("<res:ValidationCode>XML012</res:ValidationCode>"),
        "{res}"
    );
    assert!(!res.contains(&own_id), "{own_id} echoed: {res}");
}

#[test]
fn ack_kinds_match_the_input_format() {
    let edi =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/edifact/ok/cusdec-d96b-unoc.edi");
    let out = tradehub(&["ack", "--kind", "res", edi.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kind contrl"));
    let xml = corpus("valid/hmrc__TT_IM001d__TT_IM001d.xml");
    let out = tradehub(&["ack", "--kind", "contrl", xml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kind res"));
}

/// Found by the xml_validate fuzz target: a declaration whose LRN carries a
/// character XML cannot hold (here NUL) still gets a valid rejection, without
/// the LRN, instead of no answer at all.
#[test]
fn ack_res_answers_a_declaration_with_an_unwritable_lrn() {
    let text = std::fs::read_to_string(corpus("valid/hmrc__TT_IM001d__TT_IM001d.xml")).unwrap();
    let start = text.find("<FunctionalReferenceID>").unwrap() + "<FunctionalReferenceID>".len();
    let mut broken = text.clone();
    broken.insert(start, '\0');
    let path = std::env::temp_dir().join(format!("tradehub-nul-{}.xml", std::process::id()));
    std::fs::write(&path, broken).unwrap();
    let out = tradehub(&["ack", "--kind", "res", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = XmlValidator::new(None, XmlLimits::default()).validate(&out.stdout, "res.xml");
    assert!(report.valid, "{:#?}", report.issues);
    assert_eq!(report.summary.function_code.as_deref(), Some("03"));
}

/// `ack --kind res` answers as the hub would: a schema-valid declaration
/// with a value the mapping cannot take (a gross mass in tonnes, where the
/// canonical mass is kilograms) is rejected (03) with the mapping's error
/// pointed at, not received (02).
#[test]
fn ack_res_rejects_what_the_mapping_refuses() {
    let text = std::fs::read_to_string(corpus("valid/hmrc__TT_IM001d__TT_IM001d.xml")).unwrap();
    assert!(text.contains("<GrossMassMeasure>"));
    let broken = text.replacen(
        "<GrossMassMeasure>",
        "<GrossMassMeasure unitCode=\"TNE\">",
        1,
    );
    let path = std::env::temp_dir().join(format!("tradehub-tonnes-{}.xml", std::process::id()));
    std::fs::write(&path, broken).unwrap();
    let out = tradehub(&[
        "ack",
        "--kind",
        "res",
        "--format",
        "json",
        path.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["function_code"], "03", "{json:#}");
    let codes: Vec<&str> = json["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["code"].as_str())
        .collect();
    assert!(codes.contains(&"MAP002"), "{json:#}");
    assert!(!codes.iter().any(|c| c.starts_with("XML")), "{json:#}");
    assert!(
        json["response"].as_str().unwrap().contains("MAP002"),
        "{json:#}"
    );
}

/// More rule findings than a RES lists (99): the last `Error` says how
/// many more there were (before, they were left out without a word, while
/// schema errors had their XML011 note).
#[test]
fn a_res_says_how_many_findings_it_does_not_list() {
    let text = std::fs::read_to_string(corpus("valid/crafted-many-items.xml")).unwrap();
    let origin = "<Origin>\n\t\t\t\t\t<CountryCode>GB</CountryCode>";
    let items = text.matches(origin).count();
    assert!(items > 100, "{items}");
    let broken = text.replace(origin, "<Origin>\n\t\t\t\t\t<CountryCode>ZG</CountryCode>");
    let path = std::env::temp_dir().join(format!("tradehub-many-{}.xml", std::process::id()));
    std::fs::write(&path, broken).unwrap();
    let out = tradehub(&["ack", "--kind", "res", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(1));
    let res = stdout(&out);
    let errors = res.matches("<res:Error>").count();
    assert_eq!(errors, 100, "{res}");
    // One finding per item, and the two totals the crafted sample gets
    // wrong (packages and item count, RUL003).
    assert!(
        res.contains(&format!("{} further errors are not listed", items + 2 - 99)),
        "{res}"
    );
    assert!(
        res.contains("<res:ValidationCode>EDI106</res:ValidationCode>"),
        "{res}"
    );
}

/// A document read from a pipe (which says nothing of its size) is read
/// one byte past `--xml-max-bytes` at most: refused with XML004, not kept
/// whole in memory.
#[test]
fn a_piped_document_is_read_up_to_its_limit() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(["check", "--xml-max-bytes", "4096", "/dev/stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // More than the hub would ever read; the writer stops when the
    // command has stopped reading (a broken pipe).
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(b"<?xml version=\"1.0\"?><Declaration>");
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..1024 {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    drop(writer);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("XML004"), "{text}");
    assert!(text.contains("document of 4097 bytes"), "{text}");
}

/// Business-rule findings on a WCO declaration reach the WCO RES each with
/// its code and the Pointer chain to the element it is about: the
/// sections (DocumentSectionCode) down to the element's class, and the
/// element's tag (TagID) — one case per rule that a WCO declaration can
/// break in its own data.
#[test]
fn rule_findings_reach_the_res_with_their_pointers() {
    let valid = std::fs::read_to_string(corpus("valid/hmrc__TT_IM001d__TT_IM001d.xml")).unwrap();
    let dir = std::env::temp_dir().join(format!("tradehub-res-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: &[(&str, &str, &str, &[&str], &str)] = &[
        // A goods item's HS code that is not 6 to 10 digits: Declaration
        // 42A > GoodsShipment 67A > GovernmentAgencyGoodsItem 68A >
        // Commodity 23A > Classification 21A, its ID (145).
        (
            "<ID>85109000<",
            "<ID>8510X000<",
            "RUL002",
            &["42A", "67A", "68A", "23A", "21A"],
            "145",
        ),
        // The package total against the items' packages: the declaration's
        // TotalPackageQuantity (146).
        (
            "TotalPackageQuantity>80<",
            "TotalPackageQuantity>81<",
            "RUL003",
            &["42A"],
            "146",
        ),
        // An export country that is not ISO 3166: GoodsShipment >
        // ExportCountry 95B, its ID (062).
        (
            "<ID>US</ID>",
            "<ID>ZZ</ID>",
            "RUL005",
            &["42A", "67A", "95B"],
            "062",
        ),
    ];
    for (from, to, code, sections, tag) in cases {
        assert_eq!(valid.matches(from).count(), 1, "{from}");
        let file = dir.join(format!("{code}.xml"));
        std::fs::write(&file, valid.replacen(from, to, 1)).unwrap();
        let out = tradehub(&[
            "ack",
            "--kind",
            "res",
            "--at",
            "2026-11-25T10:00",
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{code}");
        let xml = stdout(&out);
        let report =
            XmlValidator::new(None, XmlLimits::default()).validate(xml.as_bytes(), "res.xml");
        assert!(report.valid, "{code}: {:#?}", report.issues);
        // The Error of this rule and its Pointers, nothing else.
        let errors: Vec<&str> = xml.split("<res:Error>").skip(1).collect();
        assert_eq!(errors.len(), 1, "{code}: {xml}");
        let error = errors[0].split("</res:Error>").next().unwrap();
        assert!(
            error.contains(&format!("<res:ValidationCode>{code}</res:ValidationCode>")),
            "{error}"
        );
        let found: Vec<&str> = error
            .split("<res:DocumentSectionCode>")
            .skip(1)
            .map(|s| s.split('<').next().unwrap())
            .collect();
        assert_eq!(found, *sections, "{code}: {error}");
        assert!(
            error.contains(&format!("<res:TagID>{tag}</res:TagID>")),
            "{code}: {error}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
