//! CUSCAR (D.96B) → canonical cargo report: both CUSCAR fixtures validate
//! against the D.96B directory with no issue at all, map to their golden
//! canonical JSON (unmapped values listed, MAP001), and
//! `tradehub convert FILE --to json` maps them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tradehub::diag::Code;
use tradehub::edifact::{ParseOptions, Parser};
use tradehub::mapping::Mapped;
use tradehub::mapping::edifact::{EdifactMapping, parse_and_map};
use tradehub::schema::Directories;

/// (fixture under fixtures/edifact/ok, golden name under fixtures/mapping).
const CASES: &[(&str, &str)] = &[
    ("cuscar-d96b-edinet.edi", "cuscar-d96b-edinet"),
    ("cuscar-d96b-sea-manifest.edi", "cuscar-d96b-sea-manifest"),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("fixtures/edifact/ok").join(name)
}

fn map(bytes: &[u8]) -> Vec<Mapped> {
    parse_and_map(bytes, &Directories::global()).unwrap().1
}

#[test]
fn the_mapping_compiles_against_d96b_cuscar() {
    let release = Directories::global().release("D96B").unwrap().unwrap();
    let path = root().join("mappings/edifact/D96B/CUSCAR.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    for version in [3, 4] {
        let mapping =
            EdifactMapping::compile(&path.display().to_string(), &text, &release, version)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mapping.target, "cargo_report");
    }
}

#[test]
fn fixtures_validate_against_d96b_with_no_issue() {
    for (file, _) in CASES {
        let bytes = std::fs::read(fixture(file)).unwrap();
        let parsed = Parser::new(&bytes[..], ParseOptions::default())
            .with_directories(Directories::global())
            .run(|_, _| {})
            .unwrap();
        assert!(parsed.issues.is_empty(), "{file}: {:#?}", parsed.issues);
        assert_eq!(parsed.interchange.counts.messages, 1, "{file}");
        // Structure validation ran: a goods item before the transport
        // details is out of place in the D.96B segment table.
        let text = String::from_utf8_lossy(&bytes);
        let at = text.find("TDT+").unwrap();
        let damaged = format!("{}GID+1+1:BG'\n{}", &text[..at], &text[at..])
            .replace("UNT+52+", "UNT+53+")
            .replace("UNT+38+", "UNT+39+");
        let parsed = Parser::new(damaged.as_bytes(), ParseOptions::default())
            .with_directories(Directories::global())
            .run(|_, _| {})
            .unwrap();
        assert!(
            parsed
                .issues
                .iter()
                .any(|i| i.location.tag.as_deref() == Some("GID")),
            "{file}: {:#?}",
            parsed.issues
        );
    }
}

#[test]
fn the_sea_manifest_lands_where_the_directory_says() {
    let bytes = std::fs::read(fixture("cuscar-d96b-sea-manifest.edi")).unwrap();
    let mapped = map(&bytes);
    assert_eq!(mapped.len(), 1);
    let m = &mapped[0];
    assert_eq!(m.target, "cargo_report");
    assert!(
        m.issues.iter().all(|i| i.code == Code::MappingUnmapped),
        "{:#?}",
        m.issues
    );
    let r = m.canonical.as_ref().unwrap();
    assert_eq!(r["reference"], "MNF2026112001");
    assert_eq!(r["voyage"], "0045E");
    assert_eq!(r["carrier"]["id"], "HDMU");
    assert_eq!(r["transport"]["means_name"], "HMM ALGECIRAS");
    assert_eq!(
        r["transport"]["containers"],
        serde_json::json!(["HDMU1234565", "HDMU7654321"])
    );
    assert_eq!(r["port_of_loading"], "CNSHA");
    assert_eq!(r["port_of_discharge"], "KRPUS");
    assert_eq!(r["arrival"]["iso"], "2026-11-20T14:00");
    let bills = r["consignments"].as_array().unwrap();
    assert_eq!(bills.len(), 2);
    assert_eq!(bills[0]["transport_document"], "HDMUSHAB1234567");
    assert_eq!(
        bills[0]["consignee"]["name"], "HANBIT TRADING CO+ LTD",
        "release character resolved"
    );
    assert_eq!(bills[0]["consignee"]["address"]["country"], "KR");
    assert_eq!(bills[0]["goods"].as_array().unwrap().len(), 2);
    assert_eq!(bills[0]["goods"][1]["gross_mass_kg"], "800.5");
    assert_eq!(bills[1]["goods"][0]["hs_code"], "846693");
    assert_eq!(bills[1]["goods"][0]["net_mass_kg"], "8150");
    assert_eq!(bills[1]["containers"], serde_json::json!(["HDMU7654321"]));
    // The master bill is the CNI of the bill's enclosing group (SG7), read
    // with a `../` step; each bill here is its own master.
    assert_eq!(bills[0]["master_bill"], "HDMUSHAB1234567");
    assert_eq!(bills[1]["master_bill"], "HDMUSHAB1234568");
    assert_eq!(bills[1]["consolidation_item"], 2);
    let master = &m.provenance["/consignments/1/master_bill"];
    assert_eq!(
        (
            master.tag.as_deref(),
            master.element,
            master.group_path.as_deref()
        ),
        (Some("CNI"), Some(2), Some("SG7"))
    );
    // What the model has no place for is listed, located at its segment:
    // who issued a seal, for one.
    let issuer = m
        .issues
        .iter()
        .find(|i| i.location.tag.as_deref() == Some("SEL"))
        .unwrap_or_else(|| panic!("{:#?}", m.issues));
    assert!(issuer.message.contains("\"CA\""), "{}", issuer.message);
    assert_eq!(issuer.location.element, Some(2));
}

/// A goods item's GID may carry several package composites (C213 stands
/// three times in D.96B): each becomes a package entry, in order, located
/// at its own element; an empty occurrence gives none.
#[test]
fn every_package_composite_of_a_goods_item_is_listed() {
    let text = std::fs::read_to_string(fixture("cuscar-d96b-sea-manifest.edi")).unwrap();
    assert!(text.contains("GID+1+120:CT'"));
    let text = text.replacen("GID+1+120:CT'", "GID+1+120:CT++6:PE'", 1);
    let bytes = text.as_bytes();
    let mapped = map(bytes);
    let goods = &mapped[0].canonical.as_ref().unwrap()["consignments"][0]["goods"][0];
    assert_eq!(
        goods["packages"],
        serde_json::json!([{"count": 120, "kind": "CT"}, {"count": 6, "kind": "PE"}])
    );
    // Where each came from: the GID's second and fourth elements.
    let release = Directories::global().release("D96B").unwrap().unwrap();
    let mapping = tradehub::mapping::edifact::mapping_for("CUSCAR", &release, 3).unwrap();
    let parsed = Parser::new(
        bytes,
        ParseOptions {
            keep_messages: true,
            message_text: true,
            ..ParseOptions::default()
        },
    )
    .with_directories(Directories::global())
    .run(|_, _| {})
    .unwrap();
    assert!(parsed.issues.is_empty(), "{:#?}", parsed.issues);
    let message = parsed.interchange.all_messages().next().unwrap();
    let (_, _, provenance) = mapping.apply_located(message);
    let at = |pointer: &str| {
        let l = &provenance[pointer];
        (l.tag.as_deref(), l.element, l.component)
    };
    let base = "/consignments/0/goods/0/packages";
    for (pointer, element, component) in [
        ("0/count", 2, 1),
        ("0/kind", 2, 2),
        ("1/count", 4, 1),
        ("1/kind", 4, 2),
    ] {
        assert_eq!(
            at(&format!("{base}/{pointer}")),
            (Some("GID"), Some(element), Some(component)),
            "{pointer}"
        );
    }
    assert_eq!(at(&format!("{base}/1")).0, Some("GID"));
}

#[test]
fn convert_to_json_maps_both_cuscars() {
    for (file, _) in CASES {
        let path = fixture(file);
        let out = Command::new(env!("CARGO_BIN_EXE_tradehub"))
            .args(["convert", path.to_str().unwrap(), "--to", "json"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{file}: {stderr}");
        let documents: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let documents = documents.as_array().unwrap();
        assert_eq!(documents.len(), 1, "{file}");
        assert_eq!(documents[0]["message_type"], "CUSCAR");
        let report = &documents[0]["cargo_report"];
        assert!(
            !report["consignments"].as_array().unwrap().is_empty(),
            "{file}"
        );
        // Unmapped values are warnings on stderr, not silence.
        assert!(stderr.contains("warning MAP001"), "{file}: {stderr}");
        assert!(!stderr.contains("error"), "{file}: {stderr}");
    }
}

/// Where several 3227 codes name a port, the most specific one is taken
/// whatever the order of the LOC segments: 9 place/port of loading before 5
/// place of departure, 11 place/port of discharge before 24 port of entry;
/// the others are reported as unmapped, located at their segment.
#[test]
fn the_most_specific_port_wins_whatever_the_segment_order() {
    let text = std::fs::read_to_string(fixture("cuscar-d96b-edinet.edi"))
        .unwrap()
        .replace("'\n", "'");
    let text = text
        .replacen("LOC+9+IEDUB:139'", "LOC+5+XXDEP:139'LOC+9+IEDUB:139'", 1)
        .replacen(
            "LOC+11+EGEDK:139'NAD+CZ",
            "LOC+24+XXENT:139'LOC+11+EGEDK:139'NAD+CZ",
            1,
        )
        .replace("UNT+52+", "UNT+54+");
    assert!(text.contains("LOC+5+XXDEP") && text.contains("LOC+24+XXENT"));
    let mapped = map(text.as_bytes());
    let m = &mapped[0];
    assert!(
        m.issues.iter().all(|i| i.code == Code::MappingUnmapped),
        "{:#?}",
        m.issues
    );
    let bill = &m.canonical.as_ref().unwrap()["consignments"][0];
    assert_eq!(bill["port_of_loading"], "IEDUB");
    assert_eq!(bill["port_of_discharge"], "EGEDK");
    for other in ["XXDEP", "XXENT"] {
        let issue = m
            .issues
            .iter()
            .find(|i| i.message.contains(other))
            .unwrap_or_else(|| panic!("{other} not reported: {:#?}", m.issues));
        assert_eq!(issue.location.tag.as_deref(), Some("LOC"));
    }
}

/// What real manifests carry beyond the fixture: a house waybill (RFF HWB)
/// is a bill like a bill of lading (before, its consignment had no
/// transport document and the whole report was MAP004); the actual arrival
/// (DTM 178) is preferred to the estimate (132) whatever their order; and a
/// goods description that goes on in a second FTX AAA is read whole.
#[test]
fn waybills_actual_arrival_and_long_descriptions_map() {
    let text = std::fs::read_to_string(fixture("cuscar-d96b-sea-manifest.edi"))
        .unwrap()
        .replacen("RFF+BM:HDMUSHAB1234568'", "RFF+HWB:HAWB0001'", 1)
        .replacen(
            "DTM+132:202611201400:203'",
            "DTM+132:202611201400:203'\nDTM+178:202611211830:203'",
            1,
        )
        .replacen(
            "FTX+AAA+++COTTON T-SHIRTS, KNITTED'",
            "FTX+AAA+++COTTON T-SHIRTS, KNITTED'\nFTX+AAA+++AND 20 CARTONS OF LIVE ANIMAL TRAPS'",
            1,
        )
        .replace("UNT+38+1'", "UNT+40+1'");
    assert!(text.contains("HAWB0001") && text.contains("DTM+178") && text.contains("TRAPS"));
    let bytes = text.as_bytes();
    let parsed = Parser::new(bytes, ParseOptions::default())
        .with_directories(Directories::global())
        .run(|_, _| {})
        .unwrap();
    assert!(parsed.issues.is_empty(), "{:#?}", parsed.issues);
    let mapped = map(bytes);
    let m = &mapped[0];
    let errors: Vec<_> = m.issues.iter().filter(|i| i.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let report = m.canonical.as_ref().unwrap();
    assert_eq!(report["consignments"][1]["transport_document"], "HAWB0001");
    assert_eq!(report["arrival"]["iso"], "2026-11-21T18:30");
    assert_eq!(
        report["consignments"][0]["goods"][0]["description"],
        "COTTON T-SHIRTS, KNITTED AND 20 CARTONS OF LIVE ANIMAL TRAPS"
    );
    // The estimate is reported as not mapped, not dropped.
    assert!(
        m.issues
            .iter()
            .any(|i| i.code == Code::MappingUnmapped && i.message.contains("202611201400")),
        "{:#?}",
        m.issues
    );
}

/// Found by review against real manifests: a bill whose RFF is qualified
/// otherwise than as a transport document (the original EDI.Net sample's
/// `RFF+AAA`) keeps its number and qualifier (the whole report was
/// MAP004 before); an unnumbered equipment line (EQD C237 is conditional
/// in D.96B) is listed without a number; and the main carriage's
/// estimated arrival beats a feeder's actual one.
#[test]
fn real_manifest_variants_map() {
    let text = std::fs::read_to_string(fixture("cuscar-d96b-sea-manifest.edi")).unwrap();
    let text = text
        .replacen("RFF+BM:HDMUSHAB1234567'", "RFF+AAA:HDMUSHAB1234567'", 1)
        .replacen("EQD+CN+HDMU7654321+22G1:102:5'", "EQD+TE++22G1:102:5'", 1)
        .replacen(
            "DTM+132:202611201400:203'",
            "DTM+132:202611201400:203'TDT+10+FEED1+1'DTM+178:202611150800:203'",
            1,
        );
    // UNT counts UNH to UNT: the terminators before it, less UNA's and
    // UNB's, plus its own.
    let (head, tail) = text.split_at(text.find("UNT+").unwrap());
    let tail_rest = &tail[tail.find('+').unwrap() + 1..];
    let tail_rest = &tail_rest[tail_rest.find('+').unwrap() + 1..];
    let text = format!("{head}UNT+{}+{tail_rest}", head.matches('\'').count() - 1);
    let mapped = map(text.as_bytes());
    let report = mapped[0].canonical.as_ref().unwrap_or_else(|| {
        panic!("{:#?}", mapped[0].issues);
    });
    let bill = &report["consignments"][0];
    assert_eq!(bill["transport_document"], "HDMUSHAB1234567");
    assert_eq!(bill["transport_document_type"], "AAA");
    assert_eq!(report["equipment"][1]["kind"], "TE");
    assert!(report["equipment"][1].get("id").is_none(), "{report}");
    assert_eq!(report["arrival"]["iso"], "2026-11-20T14:00");
}

/// A report without its document number (BGM 1004) cannot be keyed: the
/// MAP004 that says so points at the BGM element the number is read from,
/// for the sender's APERAK; without a BGM at all (also a structure error),
/// it names the path the mapping reads it from.
#[test]
fn a_missing_document_number_is_located_at_its_element() {
    let text = std::fs::read_to_string(fixture("cuscar-d96b-sea-manifest.edi")).unwrap();
    let unnumbered = text.replacen("BGM+785+MNF2026112001+9'", "BGM+785++9'", 1);
    assert_ne!(unnumbered, text);
    let mapped = map(unnumbered.as_bytes());
    assert!(mapped[0].canonical.is_none());
    let gaps: Vec<_> = mapped[0]
        .issues
        .iter()
        .filter(|i| i.code == Code::MappingIncomplete)
        .collect();
    assert_eq!(gaps.len(), 1, "{gaps:#?}");
    let at = &gaps[0].location;
    assert_eq!(
        (
            at.tag.as_deref(),
            at.message_segment,
            at.element,
            at.component,
            at.field.as_deref()
        ),
        (Some("BGM"), Some(2), Some(2), Some(1), Some("/reference")),
        "{gaps:#?}"
    );
    assert!(
        gaps[0].message.ends_with("missing field `reference`"),
        "{}",
        gaps[0].message
    );

    let without = text.replacen("BGM+785+MNF2026112001+9'", "", 1);
    let mapped = map(without.as_bytes());
    let gap = mapped[0]
        .issues
        .iter()
        .find(|i| i.code == Code::MappingIncomplete)
        .unwrap_or_else(|| panic!("{:#?}", mapped[0].issues));
    assert_eq!(gap.location.segment, None, "{gap:?}");
    assert!(
        gap.message.ends_with(
            "missing field `reference`; the mapping reads it from BGM/C106/1004, which the \
             message does not give"
        ),
        "{}",
        gap.message
    );
}
