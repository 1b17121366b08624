//! Canonical declaration → CUSDEC (D.96B), written by the inbound mapping
//! read backwards: every WCO corpus declaration that maps becomes a CUSDEC
//! the D.96B directory finds nothing wrong with; CUSDEC → canonical →
//! CUSDEC → canonical keeps every mapped field; one WCO declaration's
//! CUSDEC and its report are golden files; `tradehub convert --to edifact`
//! does the same from the command line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use tradehub::diag::{Code, Issue};
use tradehub::edifact::{ParseOptions, Parsed, Parser};
use tradehub::mapping::edifact::parse_and_map;
use tradehub::mapping::edifact_out::{Envelope, OutboundMapping, declaration_to_cusdec};
use tradehub::model::Declaration;
use tradehub::schema::Directories;
use tradehub::timestamp::Timestamp;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn envelope(reference: &str) -> Envelope {
    Envelope {
        sender: "KRBROKER01".into(),
        recipient: "TRADEHUB".into(),
        reference: reference.into(),
        prepared: Timestamp::parse("2026-11-24T10:30:00Z").unwrap(),
    }
}

fn validate(bytes: &[u8], directories: std::sync::Arc<Directories>) -> Parsed {
    Parser::new(bytes, ParseOptions::default())
        .with_directories(directories)
        .run(|_, _| {})
        .unwrap()
}

/// The valid WCO corpus declarations (not notifications), as listed in
/// fixtures/wco/corpus/expected.tsv.
fn wco_declarations() -> Vec<PathBuf> {
    let expected =
        std::fs::read_to_string(root().join("fixtures/wco/corpus/expected.tsv")).unwrap();
    expected
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols[2] == "valid" && !cols[1].contains("notification"))
                .then(|| root().join("fixtures/wco/corpus").join(cols[0]))
        })
        .collect()
}

/// WCO DEC → canonical declaration, when it maps without errors.
fn from_wco(path: &Path) -> Option<Declaration> {
    let mapping = tradehub::mapping::wco::load().unwrap();
    let (value, issues) = mapping.apply(&std::fs::read(path).unwrap());
    if issues.iter().any(Issue::is_error) {
        return None;
    }
    let canonical = tradehub::mapping::typed("declaration", value).ok()?;
    serde_json::from_value(canonical).ok()
}

/// Every declaration of an interchange, through the CUSDEC mapping.
fn declarations(bytes: &[u8]) -> Vec<(Declaration, Vec<Issue>)> {
    let (parsed, mapped) = parse_and_map(bytes, &Directories::global()).unwrap();
    assert!(parsed.issues.is_empty(), "{:#?}", parsed.issues);
    mapped
        .into_iter()
        .map(|m| {
            let canonical = m
                .canonical
                .unwrap_or_else(|| panic!("not mapped: {:#?}", m.issues));
            (serde_json::from_value(canonical).unwrap(), m.issues)
        })
        .collect()
}

/// `each` lists are read inbound only: a file with one (in a list item or
/// at the message level) is refused for writing, naming the line.
#[test]
fn the_writer_refuses_each_lists() {
    let release = Directories::global().release("D96B").unwrap().unwrap();
    let text = "format = \"edifact\"\nmessage = \"CUSDEC\"\nrelease = \"D96B\"\n\
                target = \"declaration\"\n\
                [[field]]\nto = \"lrn\"\nfrom = \"BGM/C106/1004\"\n\
                [[each]]\nto = \"declarant.contacts\"\nfrom = \"SG6/NAD/C080\"\n\
                [[each.field]]\nto = \"number\"\nfrom = \"3036\"\n";
    // Inbound it compiles.
    tradehub::mapping::edifact::EdifactMapping::compile("each.toml", text, &release, 3).unwrap();
    let err = OutboundMapping::compile("each.toml", text, release).unwrap_err();
    assert!(err.message.contains("read inbound only"), "{err}");
    assert_eq!(err.line, 9, "{err}");
}

#[test]
fn the_cusdec_mapping_compiles_for_writing() {
    let release = Directories::global().release("D96B").unwrap().unwrap();
    let mapping = OutboundMapping::load("CUSDEC", release).unwrap();
    assert_eq!(mapping.target, "declaration");
    assert_eq!(
        (mapping.message.as_str(), mapping.release.as_str()),
        ("CUSDEC", "D96B")
    );
}

#[test]
fn wco_declarations_become_cusdecs_the_directory_accepts() {
    // Validation runs against the official D.96B directory: it is there,
    // without it the same output is reported as unvalidated, and a
    // damaged output is found out.
    assert!(Directories::global().release("D96B").unwrap().is_some());
    let mut written = 0;
    for path in wco_declarations() {
        let Some(declaration) = from_wco(&path) else {
            continue;
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let out = declaration_to_cusdec(
            &declaration,
            &envelope("20261124001"),
            &Directories::global(),
        )
        .unwrap();
        assert!(
            out.issues.iter().all(|i| !i.is_error()),
            "{name}: {:#?}",
            out.issues
        );
        let parsed = validate(&out.bytes, Directories::global());
        assert!(
            parsed.issues.is_empty(),
            "{name}: {:#?}\n{}",
            parsed.issues,
            String::from_utf8_lossy(&out.bytes)
        );
        assert_eq!(parsed.interchange.counts.messages, 1, "{name}");

        let unvalidated = validate(&out.bytes, std::sync::Arc::new(Directories::new(&[])));
        assert!(
            unvalidated
                .issues
                .iter()
                .any(|i| i.code == Code::DirectoryUnavailable),
            "{name}"
        );
        let text = String::from_utf8(out.bytes.clone()).unwrap();
        let unt = text.find("UNT+").unwrap() + 4;
        let digits: String = text[unt..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let count: u32 = digits.parse().unwrap();
        let damaged = text.replacen("UNS+S'", "", 1).replacen(
            &format!("UNT+{count}+"),
            &format!("UNT+{}+", count - 1),
            1,
        );
        assert!(
            !validate(damaged.as_bytes(), Directories::global())
                .issues
                .is_empty(),
            "{name}: a CUSDEC without its summary section passed"
        );
        // The CUSDEC maps back to the declaration's kind, LRN and items.
        let (back, _) = declarations(&out.bytes).pop().unwrap();
        assert_eq!(back.lrn, declaration.lrn, "{name}");
        assert_eq!(back.kind, declaration.kind, "{name}");
        assert_eq!(back.goods.len(), declaration.goods.len(), "{name}");
        written += 1;
    }
    assert!(
        written >= 15,
        "most corpus declarations written ({written})"
    );
}

/// CUSDEC → canonical → CUSDEC → canonical.
fn round_trip(bytes: &[u8]) {
    let all = declarations(bytes);
    assert!(!all.is_empty(), "no declaration to round-trip");
    for (declaration, issues) in all {
        assert!(issues.is_empty(), "{issues:#?}");
        let out =
            declaration_to_cusdec(&declaration, &envelope("RT1"), &Directories::global()).unwrap();
        // Nothing the inbound mapping read is refused or left without a
        // place; a 1225 code that is one of several for the function is
        // said, not silent.
        assert!(
            out.issues
                .iter()
                .all(|i| i.code == Code::MappingCodeUnknown && !i.is_error()),
            "{:#?}",
            out.issues
        );
        let again = declarations(&out.bytes);
        assert_eq!(again.len(), 1);
        let (back, issues) = &again[0];
        assert!(issues.is_empty(), "{issues:#?}");
        assert_eq!(
            *back,
            declaration,
            "{}",
            String::from_utf8_lossy(&out.bytes)
        );
    }
}

#[test]
fn cusdec_fixture_round_trips_through_the_model() {
    round_trip(&std::fs::read(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap());
}

/// An item packed at two levels (PAC C531 7075: 10 outer cartons holding
/// 200 inner boxes) keeps each package's level through the model and back,
/// and the declared total (CNT 11, 12 packages) is held against the outer
/// packaging only: no RUL003 (the sum of both levels, 212, was one).
#[test]
fn packaging_levels_round_trip_and_totals_count_the_outer_packages() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/cusdec-d96b-medical-import.edi"))
            .unwrap();
    let text = text
        .replacen(
            "MEA+AAE+G+KGM:1001.5'\n",
            "MEA+AAE+G+KGM:1001.5'\nPAC+10+3+CT'\nPAC+200+1+BX'\n",
            1,
        )
        .replacen(
            "MEA+AAE+G+KGM:1002.5'\n",
            "MEA+AAE+G+KGM:1002.5'\nPAC+2++DR'\n",
            1,
        )
        .replacen("UNS+S'\n", "UNS+S'\nCNT+11:12'\n", 1)
        .replacen("UNT+20+1'", "UNT+24+1'", 1);
    let all = declarations(text.as_bytes());
    let (declaration, issues) = &all[0];
    assert!(issues.is_empty(), "{issues:#?}");
    let levels: Vec<Option<&str>> = declaration
        .goods
        .iter()
        .flat_map(|g| g.packages.iter().map(|p| p.level.as_deref()))
        .collect();
    assert_eq!(levels, [Some("3"), Some("1"), None]);
    let settings = tradehub::rules::RuleSettings::at(Timestamp::parse("2026-11-25T12:00").unwrap());
    let findings = tradehub::rules::check(declaration, &settings);
    assert!(findings.is_empty(), "{findings:#?}");
    round_trip(text.as_bytes());
    // WCO XML has no packaging level: only the outer packages are written
    // (the inner boxes are reported, not counted as more packages), so the
    // declaration read back from its XML still agrees with its total.
    let doc = tradehub::mapping::wco_out::write_declaration(declaration).unwrap();
    assert_eq!(doc.xml.matches("<Packaging>").count(), 2, "{}", doc.xml);
    let inner: Vec<_> = doc
        .issues
        .iter()
        .filter(|i| i.message.starts_with("inner packages (200 BX, level 1)"))
        .collect();
    assert_eq!(inner.len(), 1, "{:#?}", doc.issues);
    assert_eq!(
        inner[0].location.field.as_deref(),
        Some("/goods/0/packages/1")
    );
    let (value, issues) = tradehub::mapping::wco::load()
        .unwrap()
        .apply(doc.xml.as_bytes());
    assert!(!issues.iter().any(Issue::is_error), "{issues:#?}");
    let back: Declaration =
        serde_json::from_value(tradehub::mapping::typed("declaration", value).unwrap()).unwrap();
    assert_eq!(back.totals.packages, Some(12));
    let findings = tradehub::rules::check(&back, &settings);
    assert!(findings.is_empty(), "{findings:#?}");
}

/// A single administrative document (BGM 1001 960) gives its direction in
/// C002 1000 (IM, EX): written back there (the writer wrote 929 over the
/// 960, refused it, and the CUSDEC read back had no direction); and names
/// beyond Latin-1 are written in UNOW (syntax 4), not dropped.
#[test]
fn single_administrative_documents_and_non_latin_names_round_trip() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    assert!(text.contains("BGM+830+LRN2026001+9'"));
    for direction in ["IM", "EX"] {
        let sad = text.replacen(
            "BGM+830+LRN2026001+9'",
            &format!("BGM+960:::{direction}+LRN2026001+9'"),
            1,
        );
        round_trip(sad.as_bytes());
    }
    let (declaration, issues) = declarations(text.as_bytes()).remove(0);
    assert!(issues.is_empty(), "{issues:#?}");
    let mut named = declaration.clone();
    named.importer.get_or_insert_with(Default::default).name = Some("Łódź 기계 부품 Ελλάδα".into());
    let out = declaration_to_cusdec(&named, &envelope("RT2"), &Directories::global()).unwrap();
    assert!(
        out.issues.iter().all(|i| !i.is_error()),
        "{:#?}",
        out.issues
    );
    assert!(
        out.bytes.starts_with(b"UNA:+.?*'UNB+UNOW:4+"),
        "{}",
        String::from_utf8_lossy(&out.bytes)
    );
    let back = declarations(&out.bytes);
    assert_eq!(back[0].0, named);
    // A sender UNB cannot carry (`convert` gives the declarant's id) is
    // replaced by the hub's name, said.
    let odd = Envelope {
        sender: "X".repeat(40),
        ..envelope("RT3")
    };
    let out = declaration_to_cusdec(&declaration, &odd, &Directories::global()).unwrap();
    let text = String::from_utf8_lossy(&out.bytes);
    assert!(text.contains("UNB+UNOC:3+TRADEHUB+"), "{text}");
    assert!(
        out.issues
            .iter()
            .any(|i| i.code == Code::MappingUnwritable && i.message.contains("UNB sender")),
        "{:#?}",
        out.issues
    );
}

#[test]
fn generated_cusdecs_round_trip_through_the_model() {
    for (function, hs) in [
        ("9", &["847989"][..]),
        ("5", &["847989", "850440", "090111"][..]),
        ("1", &["2204210000"][..]),
    ] {
        round_trip(&common::cusdec(
            "KRBROKER01",
            "RT",
            "LRN-RT-1",
            function,
            hs,
        ));
    }
}

/// The generated benchmark interchange (parties with a structured address,
/// duties with their category, released service characters) maps with
/// nothing left over, and each of its declarations round-trips.
#[test]
fn generated_sample_declarations_round_trip_through_the_model() {
    let bytes = tradehub::edifact::sample::interchange(12_000);
    let all = declarations(&bytes);
    assert!(all.len() >= 5, "{}", all.len());
    let (first, _) = &all[0];
    let declarant = first.declarant.as_ref().unwrap();
    let address = declarant.address.as_ref().unwrap();
    assert_eq!(declarant.name.as_deref(), Some("HANBIT TRADING CO+ LTD"));
    assert_eq!(
        (
            address.street.as_deref(),
            address.city.as_deref(),
            address.postcode.as_deref(),
            address.country.as_deref()
        ),
        (
            Some("123 HARBOUR ROAD"),
            Some("BUSAN"),
            Some("48058"),
            Some("KR")
        )
    );
    assert_eq!(first.goods[0].duties[0].category.as_deref(), Some("S"));
    round_trip(&bytes);
}

/// The interchange with one segment per line, as the golden file keeps it.
fn lines(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut released = false;
    for ch in text.chars() {
        out.push(ch);
        if ch == '\'' && !released {
            out.push('\n');
        }
        released = ch == '?' && !released;
    }
    out
}

#[test]
fn a_wco_declaration_writes_its_golden_cusdec() {
    let name = "hmrc__TT_IM001d__TT_IM001d";
    let declaration =
        from_wco(&root().join(format!("fixtures/wco/corpus/valid/{name}.xml"))).unwrap();
    let out = declaration_to_cusdec(
        &declaration,
        &envelope("20261124001"),
        &Directories::global(),
    )
    .unwrap();
    let got_edi = lines(&out.bytes);
    let got_issues = serde_json::to_string_pretty(&out.issues).unwrap() + "\n";
    let edi_path = root().join(format!("fixtures/mapping/cusdec-from-wco-{name}.edi"));
    let issues_path = root().join(format!(
        "fixtures/mapping/cusdec-from-wco-{name}.issues.json"
    ));
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&edi_path, &got_edi).unwrap();
        std::fs::write(&issues_path, &got_issues).unwrap();
        return;
    }
    assert_eq!(
        got_edi,
        std::fs::read_to_string(&edi_path).unwrap_or_default(),
        "differs from {} (UPDATE_EXPECT=1 to refresh)",
        edi_path.display()
    );
    assert_eq!(
        got_issues,
        std::fs::read_to_string(&issues_path).unwrap_or_default(),
        "differs from {} (UPDATE_EXPECT=1 to refresh)",
        issues_path.display()
    );
    // The golden file itself is a clean D.96B interchange.
    assert!(
        validate(got_edi.as_bytes(), Directories::global())
            .issues
            .is_empty()
    );
    // What could not be written is said, each with its canonical field:
    // the WCO type code is not a D.96B 1001 code. The containers are
    // written as equipment of type CN (the mapping's filter gives it).
    let fields: Vec<(&str, &str)> = out
        .issues
        .iter()
        .map(|i| (i.code.as_str(), i.location.field.as_deref().unwrap_or("")))
        .collect();
    assert!(fields.contains(&("MAP006", "/type_code")), "{fields:#?}");
    assert!(
        !fields
            .iter()
            .any(|(_, f)| f.starts_with("/transport/containers")),
        "{fields:#?}"
    );
    assert!(got_edi.contains("EQD+CN+AD12345'"), "{got_edi}");
    // The totals of items and packages are the control totals (CNT 5, 11).
    assert!(got_edi.contains("CNT+5:3'"), "{got_edi}");
}

#[test]
fn values_the_directory_refuses_are_reported_not_written() {
    let bytes = std::fs::read(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    let (mut declaration, _) = declarations(&bytes).remove(0);
    declaration.lrn = "L".repeat(40);
    declaration.customs_office = Some("KRPUS".into());
    declaration.mrn = Some("26KR0000000000001".into());
    if let Some(goods) = declaration.goods.get_mut(0) {
        goods.description = Some("ÜBER 東京".into());
    }
    let out = declaration_to_cusdec(&declaration, &envelope("X1"), &Directories::global()).unwrap();
    assert!(
        validate(&out.bytes, Directories::global())
            .issues
            .is_empty()
    );
    let find = |field: &str| {
        out.issues
            .iter()
            .find(|i| i.location.field.as_deref() == Some(field))
            .unwrap_or_else(|| panic!("{field}: {:#?}", out.issues))
    };
    // an..35: too long for BGM 1004.
    let lrn = find("/lrn");
    assert_eq!(lrn.code, Code::MappingUnwritable);
    assert_eq!(lrn.location.tag.as_deref(), Some("BGM"));
    assert_eq!(
        (lrn.location.element, lrn.location.component),
        (Some(2), Some(1))
    );
    // No rule writes an MRN into a CUSDEC.
    assert_eq!(find("/mrn").code, Code::MappingUnmapped);
    // What fits is written; a text outside UNOC (Latin-1) makes the
    // interchange UNOW (syntax 4), which holds it.
    let text = String::from_utf8_lossy(&out.bytes);
    assert!(text.contains("LOC+22+KRPUS'"), "{text}");
    assert!(text.contains("UNB+UNOW:4+"), "{text}");
    assert!(text.contains("FTX+AAA+++ÜBER 東京'"), "{text}");
    assert!(
        out.issues
            .iter()
            .all(|i| i.location.field.as_deref() != Some("/goods/0/description")),
        "{:#?}",
        out.issues
    );
}

/// A description longer than one FTX 4440 (an..70) is cut into the lines
/// the inbound mapping joins (`FTX[4451=AAA]/C108/4440#1-5`, `join = ""`),
/// so it comes back whole; one longer than five lines is refused, located,
/// not cut short.
#[test]
fn a_long_description_is_written_across_the_free_text_lines() {
    let bytes = std::fs::read(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    let (mut declaration, _) = declarations(&bytes).remove(0);
    let long: String = "BALL BEARINGS OF CHROME STEEL FOR TEXTILE MACHINERY, "
        .repeat(4)
        .trim_end()
        .to_owned();
    assert!(long.chars().count() > 140 && long.chars().count() <= 350);
    declaration.goods[0].description = Some(long.clone());
    let out =
        declaration_to_cusdec(&declaration, &envelope("LD1"), &Directories::global()).unwrap();
    assert!(
        !out.issues.iter().any(|i| i.is_error()),
        "{:#?}",
        out.issues
    );
    assert!(
        validate(&out.bytes, Directories::global())
            .issues
            .is_empty(),
        "every line within an..70"
    );
    let text = String::from_utf8_lossy(&out.bytes);
    let ftx = text
        .split('\'')
        .find(|s| s.starts_with("FTX+AAA+++BALL"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(ftx.matches(':').count(), 3, "four lines: {ftx}");
    let back = declarations(&out.bytes);
    assert_eq!(
        back[0].0.goods[0].description.as_deref(),
        Some(long.as_str())
    );
    assert_eq!(back[0].0, declaration);

    // 351 characters do not fit five lines of 70.
    declaration.goods[0].description = Some("X".repeat(351));
    let out =
        declaration_to_cusdec(&declaration, &envelope("LD2"), &Directories::global()).unwrap();
    let refused = out
        .issues
        .iter()
        .find(|i| i.location.field.as_deref() == Some("/goods/0/description"))
        .unwrap_or_else(|| panic!("{:#?}", out.issues));
    assert_eq!(refused.code, Code::MappingUnwritable);
    assert!(
        refused.message.contains("351 characters"),
        "{}",
        refused.message
    );
    assert_eq!(refused.location.tag.as_deref(), Some("FTX"));
    assert!(!String::from_utf8_lossy(&out.bytes).contains("XXXX"));
}

#[test]
fn convert_to_edifact_writes_a_cusdec_from_wco_xml() {
    let path = root().join("fixtures/wco/corpus/valid/hmrc__TT_IM001d__TT_IM001d.xml");
    let out = Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(["convert", path.to_str().unwrap(), "--to", "edifact"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let parsed = validate(&out.stdout, Directories::global());
    assert!(parsed.issues.is_empty(), "{:#?}", parsed.issues);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("UNH+") && text.contains("+CUSDEC:D:96B:UN'"),
        "{text}"
    );
    assert!(text.contains("BGM+929+TT_IM01d_v1.6_230322_1+9'"), "{text}");
    // Unwritable values are reported on stderr with their code.
    assert!(stderr.contains("warning MAP006"), "{stderr}");
    // Other separators on request.
    let out = Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args([
            "convert",
            path.to_str().unwrap(),
            "--to",
            "edifact",
            "--una",
            "|^.? '",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("UNA|^.? '"));
}
