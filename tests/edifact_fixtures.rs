//! Golden tests of the UN/EDIFACT syntax engine over fixtures/edifact: each
//! input's verdict and issues (code and location) against its
//! `.expected.json`, the same result when the input arrives in 1-byte and
//! random-size chunks, and the verdict on every real corpus sample.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tradehub::diag::{Issue, Severity};
use tradehub::edifact::{self, ParseOptions, Parsed, Parser};

fn fixtures(area: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/edifact")
        .join(area);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.ends_with(".json") && !name.ends_with(".md") && !name.starts_with("LICENSE")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

#[derive(Serialize)]
struct Golden<'a> {
    valid: bool,
    errors: u64,
    warnings: usize,
    segments: u64,
    groups: u64,
    messages: u64,
    issues: &'a [Issue],
}

fn golden(parsed: &Parsed) -> String {
    let c = parsed.interchange.counts;
    let g = Golden {
        valid: parsed.is_valid(),
        errors: parsed.error_count,
        warnings: parsed
            .issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
            .count(),
        segments: c.segments,
        groups: c.groups,
        messages: c.messages,
        issues: &parsed.issues,
    };
    serde_json::to_string_pretty(&g).unwrap() + "\n"
}

/// Compares with the expected file, or writes it when UPDATE_EXPECT is set.
fn check_golden(input: &Path, actual: &str) {
    let expected_path = PathBuf::from(format!("{}.expected.json", input.display()));
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&expected_path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_EXPECT=1 to create it)",
            expected_path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{} differs from its expected output",
        input.display()
    );
}

/// A reader that hands out at most `sizes[i % len]` bytes per call.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    call: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.sizes[self.call % self.sizes.len()].max(1);
        self.call += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn parse_chunked(data: &[u8], sizes: Vec<usize>) -> Parsed {
    let options = ParseOptions {
        keep_messages: true,
        decode_messages: true,
        ..ParseOptions::default()
    };
    Parser::new(
        Chunked {
            data,
            sizes,
            call: 0,
        },
        options,
    )
    .run(|_, _| {})
    .unwrap()
}

/// Small deterministic pseudo-random sizes (xorshift), 1..=97 bytes.
fn random_sizes(seed: u64) -> Vec<usize> {
    let mut x = seed.max(1);
    (0..64)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 97) as usize + 1
        })
        .collect()
}

/// Streaming check mode (no tree, data segments not split) must find
/// exactly what a full parse finds.
fn assert_check_mode_agrees(data: &[u8], full: &Parsed, name: &str) {
    let options = ParseOptions {
        keep_messages: false,
        decode_messages: false,
        ..ParseOptions::default()
    };
    let checked = Parser::new(
        Chunked {
            data,
            sizes: random_sizes(7),
            call: 0,
        },
        options,
    )
    .run(|_, _| {})
    .unwrap();
    assert_eq!(checked.issues, full.issues, "{name}: check mode differs");
    assert_eq!(
        checked.interchange.counts, full.interchange.counts,
        "{name}: check mode counts differ"
    );
    assert_eq!(checked.error_count, full.error_count, "{name}");
}

/// Whatever the subject, the CONTRL answering it is a valid interchange.
fn assert_contrl_is_valid(parsed: &Parsed, name: &str) {
    use tradehub::ack::contrl;
    let options = contrl::Options::at(
        tradehub::timestamp::Timestamp::from_unix(0),
        parsed.interchange.syntax_version == "4",
        "1".into(),
    );
    let ack = contrl::build(parsed, &options);
    // Against the CONTRL structure and, in syntax version 3, the service
    // code list's actions (0083) and syntax errors (0085).
    static DIRECTORIES: std::sync::OnceLock<std::sync::Arc<tradehub::schema::Directories>> =
        std::sync::OnceLock::new();
    let directories = DIRECTORIES.get_or_init(|| {
        std::sync::Arc::new(tradehub::schema::Directories::new(&[Path::new(env!(
            "CARGO_MANIFEST_DIR"
        ))
        .join("schemas/untdid")]))
    });
    let answer = Parser::new(&ack.bytes[..], ParseOptions::default())
        .with_directories(directories.clone())
        .run(|_, _| {})
        .unwrap();
    assert!(
        answer.issues.is_empty(),
        "{name}: CONTRL has issues {:#?}",
        answer.issues
    );
    assert_eq!(ack.accepted, parsed.is_valid(), "{name}");
}

fn run_area(area: &str, expect_valid: Option<bool>) {
    for path in fixtures(area) {
        let data = std::fs::read(&path).unwrap();
        let parsed = edifact::parse(&data);
        if let Some(valid) = expect_valid {
            assert_eq!(
                parsed.is_valid(),
                valid,
                "{}: {:#?}",
                path.display(),
                parsed.issues
            );
        }
        check_golden(&path, &golden(&parsed));
        assert_check_mode_agrees(&data, &parsed, &path.display().to_string());
        assert_contrl_is_valid(&parsed, &path.display().to_string());
        // Streaming gives the same tree and issues whatever the chunking.
        assert_eq!(
            parse_chunked(&data, vec![1]),
            parsed,
            "{} in 1-byte reads",
            path.display()
        );
        assert_eq!(
            parse_chunked(&data, random_sizes(data.len() as u64)),
            parsed,
            "{} in random reads",
            path.display()
        );
    }
}

#[test]
fn ok_fixtures_are_valid() {
    run_area("ok", Some(true));
}

#[test]
fn err_fixtures_are_invalid_with_their_expected_issues() {
    run_area("err", Some(false));
}

/// Every corpus sample, with the verdict its SOURCES.md notes lead one to
/// expect and, where tradehub goes further than those notes, why.
const CORPUS_VERDICTS: &[(&str, bool, &str)] = &[
    (
        "apimeister__d00b_iftsta.edi",
        false,
        "counts are right (as SOURCES.md says) but UNZ reference 2805570 differs from UNB 2803570: E0028",
    ),
    ("apimeister__d04b_baplie.edi", true, "counts OK"),
    (
        "edifactrs__d11a_malformed.edi",
        false,
        "no UNB, UNT 6 for 5 segments, no UNZ",
    ),
    (
        "edinet__aperak_issue235.edi",
        false,
        "first UNB is empty (`UNB+++++4`), second UNB inside the interchange: E0013, E0033",
    ),
    (
        "edinet__edifact.01.multi-message.edi",
        false,
        "UNT counts wrong; BOM and indentation are warnings",
    ),
    (
        "edinet__edifact.D01B.IFCSUM.EDI",
        false,
        "UNT 787 for 27 segments; lower case in UNOA",
    ),
    (
        "edinet__edifact.D95B.CUSCAR.EDI",
        false,
        "UNH S009 lacks the message type, UNT off by one; tabs before segments are warnings",
    ),
    (
        "edinet__edifact.Issue188.edi",
        false,
        "UNT counts of 1 and UNZ count 1 for 4 messages",
    ),
    (
        "edinet__edifact.Paiement.Issue139.EDI",
        false,
        "UNT count 000100 for 10 segments (zero padding itself is accepted)",
    ),
    (
        "gtas__2_pnrs_basic.edi",
        false,
        "UNT off by one, UNB recipient empty",
    ),
    (
        "gtas__Test1.txt",
        false,
        "UNT 0000152 for 107; lower case in UNOA-like IATA",
    ),
    (
        "gtas__airline2.edi",
        false,
        "tag 'UNG ' with a space, UNT count wrong; CR as segment terminator is not a valid service character",
    ),
    (
        "gtas__apisMessage.txt",
        true,
        "counts OK; the leading spaces are reported as EDI103 warnings, not silently dropped",
    ),
    (
        "gtas__codeshare.edi",
        false,
        "malformed UNA makes LF the terminator and backslash the decimal mark: E0019, E0020",
    ),
    (
        "gtas__danglingMetaCharacter.txt",
        false,
        "UNT 34 for 55; UNZ reference differs",
    ),
    (
        "gtas__pnrBadFormat.txt",
        false,
        "UNZ without terminator followed by free text; UNT 173 for 24",
    ),
    ("pydifact__order.edi", false, "truncated: no UNZ"),
    (
        "pydifact__patient1.edi",
        false,
        "syntax identifier ANSI is not a UN one (E0002); LF inside FTX values",
    ),
    (
        "pydifact__v3-aperak.edi",
        false,
        "UNT 8 for 7; lower case in UNOA",
    ),
    (
        "pydifact__v4-aperak_rejected.edi",
        false,
        "UNT 8 for 7; lower case in UNOA",
    ),
    ("pydifact__wikipedia_en.edi", true, "IATB is IATA's level B"),
    (
        "smooks__INVOIC_D.03B_Interchange_with_UNA.txt",
        false,
        "UNT 36 for 35",
    ),
    (
        "smooks__paxlst.txt",
        true,
        "counts OK; a trailing separator in UNG is a warning",
    ),
    (
        "smooks__unedifact-msg-01.edi",
        false,
        "four-letter tags, UNT and UNE counts wrong, messages after the group",
    ),
    ("staedi__baplie-test.edi", true, "counts OK"),
    (
        "staedi__invoic_d93a_una.edi",
        false,
        "UTF-8 'Ü' and lower case inside a UNOA interchange: E0021",
    ),
    (
        "staedi__invoic_d97b_bad.edi",
        false,
        "'$' is not in UNOA's repertoire (its structure defects are for the schema validator)",
    ),
    (
        "staedi__invoic_d97b_una.edi",
        true,
        "counts OK; a release character before '4' is a warning",
    ),
    (
        "staedi__null-pointer-example.edi",
        true,
        "empty segments such as DAT' are legal",
    ),
    ("staedi__orders-with-group.edi", false, "UNT 21 for 18"),
    ("staedi__pnrgov.edi", true, "backslash release character"),
    (
        "staedi__wrapped_invoic_d97b.edi",
        false,
        "staedi ignores line feeds inside segments; ISO 9735 has no line wrapping and LF is not in UNOA, so tradehub reports E0021 and the broken tags",
    ),
];

#[test]
fn corpus_samples_give_the_expected_verdicts() {
    let files = fixtures("corpus");
    assert_eq!(
        files.len(),
        CORPUS_VERDICTS.len(),
        "every corpus file needs a verdict"
    );
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (_, valid, why) = CORPUS_VERDICTS
            .iter()
            .find(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("no verdict for {name}"));
        let data = std::fs::read(&path).unwrap();
        let parsed = edifact::parse(&data);
        assert_eq!(
            parsed.is_valid(),
            *valid,
            "{name}: expected {why}; got {:#?}",
            parsed.issues
        );
        check_golden(&path, &golden(&parsed));
        assert_eq!(
            parse_chunked(&data, vec![1]),
            parsed,
            "{name} in 1-byte reads"
        );
    }
}

/// A syntax identifier of syntax version 4's list (UNOY, UNOW, UNOG..UNOL)
/// in a version 1 to 3 interchange is a warning: that list (0001 of UNSL
/// D.97B) names UNOA to UNOF only, but senders use the later ones with
/// version 3 and the repertoire they name is clear. In version 4 it is no
/// finding; an identifier of no list is an error in both.
#[test]
fn syntax_identifiers_are_checked_against_their_versions_list() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/edifact/ok/cusdec-d96b-unoc.edi"),
    )
    .unwrap();
    let findings = |from: &str, to: &str| {
        let edited = text.replacen(from, to, 1);
        assert_ne!(edited, text);
        let parsed = tradehub::edifact::parse(edited.as_bytes());
        parsed
            .issues
            .iter()
            .filter(|i| i.location.tag.as_deref() == Some("UNB") && i.location.element == Some(1))
            .map(|i| (i.code.as_str().to_owned(), i.severity))
            .collect::<Vec<_>>()
    };
    use tradehub::diag::Severity;
    assert_eq!(
        findings("UNOC:3", "UNOY:3"),
        [("E0012".to_owned(), Severity::Warning)]
    );
    assert_eq!(
        findings("UNOC:3", "UNOL:3"),
        [("E0012".to_owned(), Severity::Warning)]
    );
    assert!(findings("UNOC:3", "UNOF:3").is_empty());
    assert!(
        findings(
            "UNOC:3+KRBROKER01:ZZZ+TRADEHUB:ZZZ+261124",
            "UNOY:4+KRBROKER01:ZZZ+TRADEHUB:ZZZ+20261124"
        )
        .is_empty()
    );
    let unknown = findings("UNOC:3", "UNOQ:3");
    assert!(
        unknown.iter().any(|(_, s)| *s == Severity::Error),
        "{unknown:?}"
    );
}
