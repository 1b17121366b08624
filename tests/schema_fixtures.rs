//! Structure validation on real samples: each file in fixtures/edifact/schema
//! is a corpus sample with one deliberate defect (tools/make_schema_fixtures.py);
//! the validator must report exactly that defect, with its code and location.
//! Every corpus sample's full result under structure validation is pinned in
//! a golden file (`<sample>.structure.json`, refreshed with UPDATE_EXPECT=1).
//! And generated messages that follow a segment table validate clean, while
//! one mutation yields an issue at the mutated segment.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use tradehub::diag::Issue;
use tradehub::edifact::{ParseOptions, Parsed, Parser};
use tradehub::schema::{Directories, ElementKind, Node, Release, Status};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn directories() -> Arc<Directories> {
    static DIRS: OnceLock<Arc<Directories>> = OnceLock::new();
    DIRS.get_or_init(|| Arc::new(Directories::new(&[root().join("schemas/untdid")])))
        .clone()
}

fn validate(data: &[u8]) -> Parsed {
    let options = ParseOptions {
        keep_messages: false,
        decode_messages: false,
        ..ParseOptions::default()
    };
    Parser::new(data, options)
        .with_directories(directories())
        .run(|_, _| {})
        .unwrap()
}

/// The findings a defect fixture is about: errors, and warnings other than
/// the base sample's own (a release character before '4' in its UNB).
/// The errors of validating `text`, each as `show` writes it.
fn errors_as(text: &str, show: impl Fn(&Issue) -> String) -> Vec<String> {
    validate(text.as_bytes())
        .issues
        .iter()
        .filter(|i| i.is_error())
        .map(show)
        .collect()
}

fn errors(parsed: &Parsed) -> Vec<&Issue> {
    parsed
        .issues
        .iter()
        .filter(|i| i.code.as_str() != "E0029" && i.code.as_str() != "E0022")
        .collect()
}

/// (file, code, segment, message_segment, tag, group path, element, component)
type Case = (
    &'static str,
    &'static str,
    u32,
    u32,
    &'static str,
    Option<&'static str>,
    Option<u16>,
    Option<u16>,
);

const CASES: &[Case] = &[
    (
        "e0014-code-of-later-release.edi",
        "E0014",
        3,
        2,
        "BGM",
        None,
        Some(1),
        Some(1),
    ),
    (
        "e0012-code-not-in-list.edi",
        "E0012",
        3,
        2,
        "BGM",
        None,
        Some(1),
        Some(1),
    ),
    (
        "e0013-missing-element.edi",
        "E0013",
        6,
        5,
        "NAD",
        Some("SG2"),
        Some(1),
        None,
    ),
    // Reported at the first segment after the gap.
    (
        "e0013-missing-segment.edi",
        "E0013",
        3,
        2,
        "DTM",
        None,
        None,
        None,
    ),
    (
        "e0015-segment-out-of-place.edi",
        "E0015",
        19,
        18,
        "BGM",
        Some("SG26"),
        None,
        None,
    ),
    (
        "e0016-too-many-elements.edi",
        "E0016",
        4,
        3,
        "DTM",
        None,
        Some(2),
        None,
    ),
    (
        "e0035-segment-repeated.edi",
        "E0035",
        4,
        3,
        "BGM",
        None,
        None,
        None,
    ),
    // UNS by its section identification (0081): a header/detail separator
    // given twice is a repetition (before, the second took the summary's
    // place and every goods item after it was out of place); a separator
    // with the other section's code is that value's error (before, valid).
    (
        "e0035-uns-repeated.edi",
        "E0035",
        12,
        11,
        "UNS",
        None,
        None,
        None,
    ),
    (
        "e0012-uns-section-s-at-header.edi",
        "E0012",
        11,
        10,
        "UNS",
        None,
        Some(1),
        None,
    ),
    (
        "e0012-uns-section-d-at-summary.edi",
        "E0012",
        20,
        19,
        "UNS",
        None,
        Some(1),
        None,
    ),
    // A section identification that is neither D nor S (before, valid).
    (
        "e0012-uns-section-unknown.edi",
        "E0012",
        21,
        20,
        "UNS",
        None,
        Some(1),
        None,
    ),
    (
        "e0036-group-repeated.edi",
        "E0036",
        13,
        12,
        "CUX",
        Some("SG7"),
        None,
        None,
    ),
    (
        "e0037-letter-in-number.edi",
        "E0037",
        13,
        12,
        "MOA",
        Some("SG26/SG27"),
        Some(1),
        Some(2),
    ),
    (
        "e0039-too-long.edi",
        "E0039",
        5,
        4,
        "RFF",
        Some("SG1"),
        Some(1),
        Some(2),
    ),
    (
        "e0040-too-short.edi",
        "E0040",
        18,
        17,
        "DGS",
        Some("SG2/SG4"),
        Some(3),
        Some(1),
    ),
    (
        "sch001-release-unavailable.edi",
        "SCH001",
        2,
        1,
        "UNH",
        None,
        Some(2),
        // The release (0054, D.99Z): directories of version D are there.
        Some(3),
    ),
    (
        "sch002-unknown-message.edi",
        "SCH002",
        2,
        1,
        "UNH",
        None,
        Some(2),
        Some(1),
    ),
    // CONTRL, validated against its ISO 9735 structure.
    (
        "contrl-e0013-missing-uci.edi",
        "E0013",
        3,
        2,
        "UCM",
        None,
        None,
        None,
    ),
    // A syntax error code (0085) not in syntax version 3's service code
    // list (UNSL of the newest vendored directory that has one).
    (
        "contrl-e0012-syntax-error-not-in-unsl.edi",
        "E0012",
        4,
        3,
        "UCM",
        Some("SG1"),
        Some(4),
        None,
    ),
];

#[test]
fn each_defect_is_found_at_its_place() {
    let dir = root().join("fixtures/edifact/schema");
    let mut seen = 0;
    for &(file, code, segment, in_message, tag, path, element, component) in CASES {
        let data = std::fs::read(dir.join(file)).unwrap();
        let parsed = validate(&data);
        let found = errors(&parsed);
        assert_eq!(found.len(), 1, "{file}: {found:#?}");
        let issue = found[0];
        let loc = &issue.location;
        assert_eq!(issue.code.as_str(), code, "{file}");
        assert_eq!(loc.segment, Some(segment), "{file}");
        assert_eq!(loc.message_segment, Some(in_message), "{file}");
        assert_eq!(loc.tag.as_deref(), Some(tag), "{file}");
        assert_eq!(loc.group_path.as_deref(), path, "{file}");
        assert_eq!(loc.element, element, "{file}");
        assert_eq!(loc.component, component, "{file}");
        seen += 1;
    }
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(seen, files, "every schema fixture has a case");
}

/// The unmodified samples the defects were made from validate clean.
#[test]
fn the_base_samples_are_valid() {
    for sample in ["staedi__invoic_d97b_una.edi", "staedi__baplie-test.edi"] {
        let data = std::fs::read(root().join("fixtures/edifact/corpus").join(sample)).unwrap();
        let parsed = validate(&data);
        assert!(parsed.is_valid(), "{sample}: {:#?}", parsed.issues);
    }
}

/// Why each corpus sample gets its structure-validation verdict (the syntax
/// findings are explained in tests/edifact_fixtures.rs). Checked against
/// the directory texts named.
const STRUCTURE_NOTES: &[(&str, bool, &str)] = &[
    (
        "apimeister__d00b_iftsta.edi",
        false,
        "RFF 1153 '4F' is not in the D.00B list; STS names agency 'HS', not a 3055 code (its 4405 code is then not checked against UNCL)",
    ),
    (
        "apimeister__d04b_baplie.edi",
        false,
        "syntax 3 UNB dated CCYYMMDD (0017 is n6 before version 4); S009 with 7 components (5 before version 4)",
    ),
    (
        "edifactrs__d11a_malformed.edi",
        false,
        "a fragment: no UNB/UNZ, and the ORDERS lacks BGM and UNS",
    ),
    (
        "edinet__aperak_issue235.edi",
        false,
        "UNB without its mandatory parts",
    ),
    (
        "edinet__edifact.01.multi-message.edi",
        false,
        "D.96A: 3055 'SM', 2379 'Z13' and 6069 'ZZZ' are not in the D.96A lists (private codes)",
    ),
    (
        "edinet__edifact.D01B.IFCSUM.EDI",
        false,
        "7065 with 18 characters (an..17); 1131 'PK' and 6313 'UCO' are not D.01B codes",
    ),
    (
        "edinet__edifact.D95B.CUSCAR.EDI",
        false,
        "syntax 3 UNB dated CCYYMMDD; a UNH without message type",
    ),
    (
        "edinet__edifact.Issue188.edi",
        false,
        "test messages that are mostly empty: BGM, UNS and mandatory groups missing",
    ),
    (
        "edinet__edifact.Paiement.Issue139.EDI",
        false,
        "PAYMUL without its mandatory SG4 (SEQ)",
    ),
    (
        "gtas__2_pnrs_basic.edi",
        false,
        "UNB without recipient; PNRGOV is an IATA (IA) message, syntax-checked only (SCH003)",
    ),
    (
        "gtas__Test1.txt",
        false,
        "PAXLST D.02B APIS (UNH 0057 IATA: the API guideline's profile, no DTM after TDT and COM's C076 as separate element positions, schema::PROFILES); 1001 'P' and 1131 '1812019' are US APIS codes, not UNCL; 6-digit dates in a version 4 UNB",
    ),
    (
        "gtas__airline2.edi",
        false,
        "PAXLST D.02B APIS (IATA profile, which takes COM as two elements): 6-digit date in a version 4 UNB; UNT count and reference",
    ),
    (
        "gtas__apisMessage.txt",
        true,
        "PAXLST D.05B APIS (IATA profile, which takes COM as two elements and RFF repeated in SG4); the 6-digit dates of its version 4 UNB and UNG are warnings in an interchange of passenger lists",
    ),
    (
        "gtas__codeshare.edi",
        false,
        "broken UNA (a line feed as terminator), so UNB fields run together",
    ),
    (
        "gtas__danglingMetaCharacter.txt",
        false,
        "UNB without recipient; PNRGOV (IA) syntax-checked only",
    ),
    (
        "gtas__pnrBadFormat.txt",
        false,
        "UNZ reference of 59 characters (an..14)",
    ),
    (
        "pydifact__order.edi",
        false,
        "6-digit date in a version 4 UNB; UNZ missing",
    ),
    (
        "pydifact__patient1.edi",
        false,
        "not a UN message: release 1.901 has no directory (SCH001)",
    ),
    ("pydifact__v3-aperak.edi", false, "syntax errors only"),
    (
        "pydifact__v4-aperak_rejected.edi",
        false,
        "6-digit date in a version 4 UNB",
    ),
    (
        "pydifact__wikipedia_en.edi",
        true,
        "PAORES is an IATA (IA) message: syntax-checked only, with a warning (SCH003)",
    ),
    (
        "smooks__INVOIC_D.03B_Interchange_with_UNA.txt",
        false,
        "valid INVOIC D.03B structure; 6-digit date in a version 4 UNB",
    ),
    (
        "smooks__paxlst.txt",
        true,
        "PAXLST D.03B of the US CBP guide: 6-digit dates in a version 4 UNB and UNG, warnings in an interchange of passenger lists",
    ),
    (
        "smooks__unedifact-msg-01.edi",
        false,
        "test messages of a made-up release S.93A (SCH001); UNG without its mandatory parts",
    ),
    ("staedi__baplie-test.edi", true, "BAPLIE D.95B as published"),
    (
        "staedi__invoic_d93a_una.edi",
        false,
        "D.93A is not vendored (SCH001)",
    ),
    (
        "staedi__invoic_d97b_bad.edi",
        false,
        "staedi's deliberately bad INVOIC: 3035 'BYZZ' (too long, unknown), letters in quantity and price, two UNS",
    ),
    (
        "staedi__invoic_d97b_una.edi",
        true,
        "INVOIC D.97B as published",
    ),
    (
        "staedi__null-pointer-example.edi",
        true,
        "PNRGOV (IA): syntax-checked only",
    ),
    (
        "staedi__orders-with-group.edi",
        false,
        "UNG S008 with 4 components; 0057 'EAN008X'-style 7-character codes; 6313 'LAY'/'ULY' are EANCOM codes, not D.96B; 4017 '7' appears only in a later release (warning)",
    ),
    (
        "staedi__pnrgov.edi",
        true,
        "PNRGOV (IA): syntax-checked only",
    ),
    (
        "staedi__wrapped_invoic_d97b.edi",
        false,
        "line feeds inside segments: tags and values carry them",
    ),
];

#[test]
fn corpus_structure_verdicts_are_explained() {
    let dir = root().join("fixtures/edifact/corpus");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".json") || name.ends_with(".md") || name.starts_with("LICENSE") {
            continue;
        }
        count += 1;
        let &(_, valid, _) = STRUCTURE_NOTES
            .iter()
            .find(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} has no structure note"));
        let parsed = validate(&std::fs::read(&path).unwrap());
        assert_eq!(parsed.is_valid(), valid, "{name}: {:#?}", parsed.issues);
    }
    assert_eq!(count, STRUCTURE_NOTES.len());
}

#[test]
fn corpus_structure_results_match_golden_files() {
    let dir = root().join("fixtures/edifact/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            !n.ends_with(".json") && !n.ends_with(".md") && !n.starts_with("LICENSE")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 30);
    for path in files {
        let parsed = validate(&std::fs::read(&path).unwrap());
        let golden = PathBuf::from(format!("{}.structure.json", path.display()));
        let actual = serde_json::to_string_pretty(&serde_json::json!({
            "valid": parsed.is_valid(),
            "issues": parsed.issues,
        }))
        .unwrap()
            + "\n";
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(&golden, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
        assert_eq!(actual, expected, "{}", path.display());
    }
}

// ---------------------------------------------------------------------------
// Generated messages

/// A value that fits a representation.
fn value_for(
    format: tradehub::schema::Format,
    codes: Option<&tradehub::schema::CodeList>,
) -> String {
    if let Some(list) = codes {
        let mut sorted: Vec<&String> = list
            .codes
            .iter()
            .filter(|c| c.len() <= usize::from(format.max) && c.len() >= usize::from(format.min))
            .filter(|c| match format.class {
                tradehub::schema::FormatClass::Numeric => c.bytes().all(|b| b.is_ascii_digit()),
                tradehub::schema::FormatClass::Alpha => !c.bytes().any(|b| b.is_ascii_digit()),
                tradehub::schema::FormatClass::AlphaNumeric => true,
            })
            .collect();
        sorted.sort();
        if let Some(c) = sorted.first() {
            return (*c).clone();
        }
    }
    let len = usize::from(format.min.max(1).min(format.max));
    let ch = match format.class {
        tradehub::schema::FormatClass::Numeric => '7',
        _ => 'A',
    };
    std::iter::repeat_n(ch, len).collect()
}

/// A segment with every mandatory element and component filled.
fn segment_text(release: &Release, tag: &str) -> Option<String> {
    let def = release.segment(tag)?;
    let mut elements: Vec<String> = Vec::new();
    for e in &def.elements {
        let text = match &e.kind {
            ElementKind::Simple(f) if e.status == Status::Mandatory => {
                value_for(*f, release.codes(&e.id))
            }
            ElementKind::Simple(_) => String::new(),
            ElementKind::Composite(cs) => {
                if e.status == Status::Mandatory {
                    let none_mandatory = cs.iter().all(|c| c.status != Status::Mandatory);
                    let parts: Vec<String> = cs
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            // A mandatory composite needs at least one value.
                            if c.status == Status::Mandatory || none_mandatory && i == 0 {
                                value_for(c.format, release.codes(&c.id))
                            } else {
                                String::new()
                            }
                        })
                        .collect();
                    let last = parts
                        .iter()
                        .rposition(|p| !p.is_empty())
                        .map_or(0, |i| i + 1);
                    parts[..last].join(":")
                } else {
                    String::new()
                }
            }
        };
        elements.push(text);
    }
    let last = elements
        .iter()
        .rposition(|p| !p.is_empty())
        .map_or(0, |i| i + 1);
    let mut out = tag.to_owned();
    for e in &elements[..last] {
        out.push('+');
        out.push_str(e);
    }
    Some(out)
}

/// Walks a segment table, choosing per node how often it occurs (within
/// its bounds, mandatory at least once) from `choices`.
fn walk(
    release: &Release,
    nodes: &[Node],
    choices: &mut impl Iterator<Item = u8>,
    out: &mut Vec<String>,
) {
    for node in nodes {
        let pick = u32::from(choices.next().unwrap_or(0) % 3);
        match node {
            Node::Segment { tag, status, max } => {
                if tag == "UNH" || tag == "UNT" {
                    continue;
                }
                let times = match status {
                    Status::Mandatory => 1 + pick.min(max - 1),
                    Status::Conditional => pick.min(*max),
                };
                for _ in 0..times {
                    let text = if tag == "UNS" {
                        // 0081: the first separates header and detail, a
                        // second detail and summary (ISO 9735).
                        let second = out.iter().any(|s| s.starts_with("UNS+"));
                        Some(if second { "UNS+S" } else { "UNS+D" }.to_owned())
                    } else {
                        segment_text(release, tag)
                    };
                    out.push(text.unwrap());
                }
            }
            Node::Group {
                status,
                max,
                children,
                ..
            } => {
                let times = match status {
                    Status::Mandatory => 1 + pick.min(max - 1),
                    Status::Conditional => pick.min(*max),
                };
                for _ in 0..times {
                    walk(release, children, choices, out);
                }
            }
        }
    }
}

fn interchange(kind: &str, release: &str, body: &[String]) -> Vec<u8> {
    let (version, rel) = release.split_at(1);
    let mut segs = vec![format!("UNH+1+{kind}:{version}:{rel}:UN")];
    segs.extend(body.iter().cloned());
    segs.push(format!("UNT+{}+1", segs.len() + 1));
    let mut text = "UNA:+.? 'UNB+UNOC:3+SENDER+RECIPIENT+261124:1030+REF1'".to_owned();
    for s in &segs {
        text.push_str(s);
        text.push('\'');
    }
    text.push_str("UNZ+1+REF1'");
    text.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn generated_messages_validate_and_mutations_are_found(
        which in 0usize..4,
        choices in proptest::collection::vec(any::<u8>(), 600),
        victim in any::<prop::sample::Index>(),
    ) {
        let (kind, release) = [("CUSDEC", "D96B"), ("CUSCAR", "D96B"), ("PAXLST", "D02B"), ("INVOIC", "D97B")][which];
        let rel = directories().release(release).unwrap().unwrap();
        let def = rel.message(kind).unwrap().unwrap();
        let mut body = Vec::new();
        walk(&rel, &def.nodes, &mut choices.iter().copied(), &mut body);
        let data = interchange(kind, release, &body);
        let parsed = validate(&data);
        prop_assert!(parsed.is_valid(), "{}: {:#?}", String::from_utf8_lossy(&data), parsed.issues);

        // Mutate one data segment: an unknown tag in its place.
        if !body.is_empty() {
            let i = victim.index(body.len());
            let mut broken = body.clone();
            broken[i] = "ZZZ+1".to_owned();
            let data = interchange(kind, release, &broken);
            let parsed = validate(&data);
            // UNH is message segment 1, so body[i] is message segment i + 2.
            let at = u32::try_from(i).unwrap() + 2;
            prop_assert!(
                parsed.issues.iter().any(|x| x.code.as_str() == "E0015" && x.location.message_segment == Some(at)),
                "{:#?}", parsed.issues
            );
        }
    }
}

#[test]
fn vendored_directories_are_the_ones_tests_use() {
    assert!(Path::new(&root().join("schemas/untdid/LICENAGR.TXT")).exists());
}

/// ISO 9735 numeric values: a digit before and after the decimal mark
/// (0085 code 38 when the one before is missing), and the interchange's
/// own mark (code 19 for the other one); control counts are digits only.
#[test]
fn decimal_marks_and_control_counts_follow_iso_9735() {
    let base = String::from_utf8(
        std::fs::read(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap(),
    )
    .unwrap();
    let codes = |text: &str| -> Vec<(String, Option<u16>, Option<u16>)> {
        validate(text.as_bytes())
            .issues
            .iter()
            .filter(|i| i.is_error())
            .map(|i| {
                (
                    i.code.as_str().to_owned(),
                    i.location.element,
                    i.location.component,
                )
            })
            .collect()
    };
    assert!(codes(&base).is_empty(), "{:?}", codes(&base));
    for (amount, code) in [
        (".50", "E0038"),
        ("125000.", "E0037"),
        ("125000,50", "E0019"),
        ("-.5", "E0038"),
    ] {
        let text = base.replacen("MOA+39:125000.50:USD", &format!("MOA+39:{amount}:USD"), 1);
        assert_eq!(
            codes(&text),
            [(code.to_owned(), Some(1), Some(2))],
            "MOA+39:{amount}"
        );
    }
    // Still fine: digits on both sides, a sign, no mark.
    for amount in ["0.5", "-125000.50", "125000"] {
        let text = base.replacen("MOA+39:125000.50:USD", &format!("MOA+39:{amount}:USD"), 1);
        assert!(
            codes(&text).is_empty(),
            "MOA+39:{amount}: {:?}",
            codes(&text)
        );
    }
    // A control count with a sign is not a number (E0012), also when the
    // structure is not validated.
    let signed = base.replacen("UNT+20+1", "UNT+?+20+1", 1);
    let parsed = Parser::new(signed.as_bytes(), ParseOptions::default())
        .run(|_, _| {})
        .unwrap();
    assert!(
        parsed
            .issues
            .iter()
            .any(|i| i.code.as_str() == "E0012" && i.location.tag.as_deref() == Some("UNT")),
        "{:?}",
        parsed.issues
    );
}

/// The API guideline's traveller sends each reference in its own RFF of
/// segment group 4 (the D.02B and D.05B tables allow one; D.11A and later
/// repeat it) and its bag count as `MEA+CT++:N` with no unit (C174 6411 is
/// mandatory in the D.02B and D.05B segment directories, conditional in
/// D.21B). Under the guide's profile (UNH 0057 IATA) the list is valid;
/// without it the directory's table and segment applies: each extra RFF is
/// E0035 and the bag count E0013. The profile changes MEA only in segment
/// group 4, and only 6411: a MEA with no value there at all is still
/// checked as the directory says. The guide writes a COM's telephone and
/// fax as two element positions (as before syntax version 4) in version 4
/// interchanges, where D.02B's COM has one position with C076 repeated:
/// under the profile up to three positions are taken.
#[test]
fn paxlst_of_the_api_guideline_repeats_references_and_counts_bags_without_a_unit() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/paxlst-d02b-iata-references.edi"))
            .unwrap();
    assert!(text.contains("RFF+AVF:ABC123'\nRFF+ABO:BA0117001'\nRFF+SEA:14C'\nRFF+CR:"));
    assert!(text.contains("MEA+CT++:2'"));
    assert!(
        errors(&validate(text.as_bytes()))
            .iter()
            .all(|i| !i.is_error())
    );
    let found = |text: &str| {
        errors_as(text, |i| {
            format!(
                "{} {} {}",
                i.code.as_str(),
                i.location.tag.as_deref().unwrap_or("-"),
                i.location.message_segment.unwrap_or(0)
            )
        })
    };
    let un = text.replace("PAXLST:D:02B:UN:IATA", "PAXLST:D:02B:UN");
    let mut got = found(&un);
    got.sort();
    assert_eq!(
        got,
        [
            "E0013 LOC 7",
            "E0013 MEA 14",
            "E0016 COM 5",
            "E0035 RFF 21",
            "E0035 RFF 22",
            "E0035 RFF 23",
            "E0035 RFF 38",
        ],
        "{un}"
    );
    // The reporter's telephone and fax in two element positions (COM C076
    // repeats 3 times in D.02B): three positions under the profile, not
    // four; the repetition separator of syntax 4 stays allowed.
    let com = "COM+0044 20 7946 0000:TE+0044 20 7946 0001:FX'";
    assert!(text.contains(com));
    let three = text.replace(com, "COM+1:TE+2:FX+3:EM'");
    assert!(found(&three).is_empty(), "{:?}", found(&three));
    let four = text.replace(com, "COM+1:TE+2:FX+3:EM+4:TE'");
    assert_eq!(found(&four), ["E0016 COM 5"]);
    let repeated = text
        .replacen("UNA:+.? '", "UNA:+.?*'", 1)
        .replace(com, "COM+1:TE*2:FX*3:EM'");
    assert!(found(&repeated).is_empty(), "{:?}", found(&repeated));
    // Under the profile a component other than 6411 stays as the
    // directory has it: C174 with a unit but 6411 left out is fine, a
    // MEA whose purpose (6311, mandatory) is missing is not.
    let no_purpose = text.replace("MEA+CT++:2'", "MEA+++:2'");
    assert_eq!(found(&no_purpose), ["E0013 MEA 14"]);
}

/// A PAXLST of the WCO/IATA/ICAO API guideline (UNH `PAXLST:D:05B:UN:IATA`)
/// dates each leg in segment group 3 and sends no DTM beside the TDT, which
/// the D.05B table makes mandatory: valid under the guide's profile
/// (`schema::PROFILES`), where it was rejected (E0013) with every real
/// airline list. The same message without the association code is held to
/// the directory's table, and the profile changes nothing else: other
/// mandatory segments stay mandatory.
#[test]
fn paxlst_of_the_api_guideline_is_valid_under_its_profile() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/paxlst-d05b-iata-guideline.edi"))
            .unwrap();
    assert!(errors(&validate(text.as_bytes())).is_empty());
    let missing = |text: &str| {
        errors_as(text, |i| {
            format!(
                "{} {}",
                i.code.as_str(),
                i.location.missing.as_deref().unwrap_or("-")
            )
        })
    };
    let un = text.replace("PAXLST:D:05B:UN:IATA", "PAXLST:D:05B:UN");
    assert_eq!(missing(&un), ["E0013 DTM"]);
    // Under the profile, a message without its BGM still misses it.
    let no_bgm = text.replace("BGM+745'\n", "").replace("UNT+22+", "UNT+21+");
    assert_eq!(missing(&no_bgm), ["E0013 BGM"]);
    // And in D.02B alike.
    let d02b = text.replace("D:05B:UN:IATA", "D:02B:UN:IATA");
    assert!(errors(&validate(d02b.as_bytes())).is_empty());
}

/// The API guides date UNB and UNG as YYMMDD under `UNOA:4`; in an
/// interchange of passenger lists that is a warning, in any other (or a
/// mixed one) the E0040 error ISO 9735 v4 makes it, each at its place.
#[test]
fn six_digit_envelope_dates_pass_only_in_passenger_lists() {
    let paxlst =
        std::fs::read_to_string(root().join("fixtures/edifact/corpus/smooks__paxlst.txt")).unwrap();
    let short_dates = |parsed: &Parsed| -> Vec<(bool, u32, String)> {
        parsed
            .issues
            .iter()
            .filter(|i| i.code.as_str() == "E0040")
            .map(|i| {
                (
                    i.is_error(),
                    i.location.segment.unwrap(),
                    i.location.tag.clone().unwrap_or_default(),
                )
            })
            .collect()
    };
    let parsed = validate(paxlst.as_bytes());
    assert_eq!(
        short_dates(&parsed),
        vec![(false, 1, "UNB".into()), (false, 2, "UNG".into())]
    );
    assert_eq!(parsed.error_count, 0, "{:#?}", parsed.issues);
    // Kept where they were found: UNB's before UNG's trailing separator.
    let codes: Vec<(&str, u32)> = parsed
        .issues
        .iter()
        .map(|i| (i.code.as_str(), i.location.segment.unwrap_or(0)))
        .collect();
    assert_eq!(codes, vec![("E0040", 1), ("E0045", 2), ("E0040", 2)]);

    // The same passenger list beside a message of another type: errors.
    let mixed = paxlst
        .replace(
            "UNG+PAXLST+LOCK:4+CBP-ACE-TEST:4+041013:1901+16+UN+D:03B:'\n",
            "",
        )
        .replace("UNE+1+16'\n", "")
        .replace(
            "UNZ+1+16'",
            "UNH+2+APERAK:D:96A:UN'BGM+313+X1+27'UNT+3+2'UNZ+2+16'",
        );
    assert!(!mixed.contains("UNG"), "{mixed}");
    let parsed = validate(mixed.as_bytes());
    assert_eq!(short_dates(&parsed), vec![(true, 1, "UNB".into())]);
    // With room for one issue only, that one is still the first found
    // (the UNB date), not one found after it.
    let options = ParseOptions {
        keep_messages: false,
        decode_messages: false,
        limits: tradehub::edifact::Limits {
            max_issues: 1,
            ..tradehub::edifact::Limits::default()
        },
        ..ParseOptions::default()
    };
    let one = Parser::new(mixed.as_bytes(), options)
        .with_directories(directories())
        .run(|_, _| {})
        .unwrap();
    assert_eq!(
        short_dates(&one),
        vec![(true, 1, "UNB".into())],
        "{:#?}",
        one.issues
    );
    // A second header after UNZ is vouched for by no message of the
    // first: its date stays an error.
    let trailing = format!(
        "{paxlst}UNB+UNOA:4+LOCK:4+CBP-ACE-TEST:4+041013:1901+17++ACE'UNH+1+APERAK:D:96A:UN'BGM+313+X1+27'UNT+3+1'UNZ+1+17'"
    );
    let parsed = validate(trailing.as_bytes());
    assert!(
        short_dates(&parsed).contains(&(true, 21, "UNB".into())),
        "{:?}",
        short_dates(&parsed)
    );

    // A CCYYMMDD date is no finding; a six-digit date under syntax 3 none
    // either.
    let long = paxlst.replace("041013:1901", "20041013:1901");
    assert_eq!(short_dates(&validate(long.as_bytes())), vec![]);
    let v3 = paxlst.replace("UNOA:4", "UNOA:3");
    assert_eq!(short_dates(&validate(v3.as_bytes())), vec![]);
}

/// CUSDEC's table has two UNS (D before the goods items, S after them): when
/// both are missing, the two findings say which is which instead of reading
/// alike; when one is there, the other is named.
#[test]
fn a_missing_segment_the_level_has_twice_says_which() {
    let envelope = |body: &str, count: usize| {
        format!(
            "UNA:+.? 'UNB+UNOC:3+SENDER+RECIP+261129:1200+REF1'UNH+1+CUSDEC:D:96B:UN'\
             BGM+929+LRN1+9'{body}UNT+{count}+1'UNZ+1+REF1'"
        )
    };
    let missing = |text: &str| errors_as(text, |i| format!("{} {}", i.code.as_str(), i.message));
    assert_eq!(
        missing(&envelope("", 3)),
        [
            "E0013 mandatory segment UNS (the first of the 2 UNS segments at this level) is missing",
            "E0013 mandatory segment UNS (the second of the 2 UNS segments at this level) is missing",
        ]
    );
    assert_eq!(
        missing(&envelope("UNS+D'", 4)),
        ["E0013 mandatory segment UNS (the second of the 2 UNS segments at this level) is missing"]
    );
    // A tag the level has once is named alone.
    let no_bgm = "UNA:+.? 'UNB+UNOC:3+SENDER+RECIP+261129:1200+REF1'UNH+1+CUSDEC:D:96B:UN'\
                  UNS+D'UNS+S'UNT+4+1'UNZ+1+REF1'";
    assert_eq!(missing(no_bgm), ["E0013 mandatory segment BGM is missing"]);
}
