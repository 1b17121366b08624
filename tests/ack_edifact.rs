//! APERAK and CUSRES (D.96B) as the hub writes them for EDIFACT senders:
//! every answer re-parses with no syntax or structure issue against the
//! official D.96B directory (and a broken one does not); each business rule
//! code, provoked by one deliberate defect in the real CUSDEC sample,
//! reaches the APERAK with its code and the segment, element and component
//! of the offending value; golden files pin one APERAK and one CUSRES.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tradehub::ack::{Envelope, Original, aperak, cusres, response_error};
use tradehub::diag::{Code, Issue};
use tradehub::edifact::{ParseOptions, Parsed, Parser, Segment};
use tradehub::mapping::edifact::parse_and_map;
use tradehub::mapping::locate;
use tradehub::model::{Declaration, Moment, Response, ResponseError};
use tradehub::rules::{RuleSettings, check};
use tradehub::schema::{Directories, Node};
use tradehub::timestamp::Timestamp;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn directories() -> Arc<Directories> {
    static DIRS: OnceLock<Arc<Directories>> = OnceLock::new();
    DIRS.get_or_init(|| Arc::new(Directories::new(&[root().join("schemas/untdid")])))
        .clone()
}

fn now() -> Timestamp {
    Timestamp::parse("2026-11-25T12:00").unwrap()
}

/// The first message of the D.96B CUSDEC sample (the one tests/mapping.rs
/// pins), made clean for the rules: the export names its exporter (the
/// sample's `NAD+IM`), and goods items and header carry customs values
/// that add up (`MOA+40`).
fn base() -> String {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    let second = text.find("UNH+2+").unwrap();
    let end = text.find("UNZ+2+").unwrap();
    let one = format!("{}{}", &text[..second], &text[end..]).replacen("UNZ+2+", "UNZ+1+", 1);
    let edits = [
        ("NAD+IM+", "NAD+EX+"),
        (
            "MOA+39:125000.50:USD'",
            "MOA+39:125000.50:USD'\nMOA+40:100003.50:USD'",
        ),
        (
            "MOA+123:50001.25:USD'",
            "MOA+123:50001.25:USD'\nMOA+40:50001.25:USD'",
        ),
        (
            "MOA+123:50002.25:USD'",
            "MOA+123:50002.25:USD'\nMOA+40:50002.25:USD'",
        ),
        ("UNT+20+1'", "UNT+23+1'"),
    ];
    let mut out = one;
    for (from, to) in edits {
        assert_eq!(out.matches(from).count(), 1, "{from}");
        out = out.replacen(from, to, 1);
    }
    out
}

/// The base with one defect.
fn with(from: &str, to: &str) -> String {
    let text = base();
    assert_eq!(text.matches(from).count(), 1, "{from}");
    text.replacen(from, to, 1)
}

/// What the hub finds in a CUSDEC's first message: mapping errors and rule
/// findings located at their segments; and the original's references.
fn findings(text: &str) -> (Vec<Issue>, Original) {
    let (parsed, mapped) = parse_and_map(text.as_bytes(), &directories()).unwrap();
    assert!(parsed.is_valid(), "{:#?}", parsed.issues);
    let m = &mapped[0];
    let mut found: Vec<Issue> = m.issues.iter().filter(|i| i.is_error()).cloned().collect();
    let declaration: Declaration =
        serde_json::from_value(m.canonical.clone().expect("mapped")).unwrap();
    let mut rules = check(&declaration, &RuleSettings::at(now()));
    locate(&mut rules, &m.provenance);
    found.extend(rules);
    let original = Original {
        interchange_reference: parsed.interchange.control_reference.clone(),
        message_reference: m.message.clone(),
        message_type: m.message_type.clone(),
        lrn: Some(declaration.lrn.clone()),
    };
    (found, original)
}

fn envelope(reference: &str) -> Envelope {
    Envelope {
        hub: "TRADEHUB".into(),
        hub_qualifier: "ZZZ".into(),
        partner: "KRBROKER01".into(),
        partner_qualifier: "ZZZ".into(),
        partner_routing: String::new(),
        syntax_identifier: "UNOC".into(),
        syntax_version: 3,
        reference: reference.into(),
        at: now(),
    }
}

fn parse(text: &str) -> Parsed {
    let options = ParseOptions {
        keep_messages: true,
        decode_messages: true,
        ..ParseOptions::default()
    };
    let bytes = tradehub::ack::to_bytes(text);
    Parser::new(&bytes[..], options)
        .with_directories(directories())
        .run(|_, _| {})
        .unwrap()
}

/// Parses an answer, asserts it is clean against D.96B (no error, no
/// warning — so no SCH001 "directory unavailable" either) and returns the
/// segments of its one message.
fn clean(text: &str, kind: &str) -> Vec<Segment> {
    let parsed = parse(text);
    assert!(
        parsed.issues.is_empty(),
        "{kind} not clean: {:#?}\n{text}",
        parsed.issues
    );
    let messages = &parsed.interchange.messages;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(
        (
            m.message_type.as_str(),
            m.version.as_str(),
            m.release.as_str()
        ),
        (kind, "D", "96B")
    );
    m.segments.clone()
}

fn response(status: &str, errors: Vec<ResponseError>, mrn: Option<&str>) -> Response {
    Response {
        declaration_lrn: "LRN2026001".into(),
        mrn: mrn.map(str::to_owned),
        status: status.into(),
        errors,
        conditions: Vec::new(),
        at: Moment {
            iso: "2026-11-25T12:00".into(),
            format: "203".into(),
        },
    }
}

#[test]
fn the_directory_defines_both_messages_and_the_group_limits_used() {
    let d96b = directories()
        .release("D96B")
        .unwrap()
        .expect("D96B vendored");
    let group_max = |kind: &str, number: u16| -> u32 {
        let def = d96b.message(kind).unwrap().expect(kind);
        def.nodes
            .iter()
            .find_map(|n| match n {
                Node::Group { number: g, max, .. } if *g == number => Some(*max),
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(group_max("APERAK", 3) as usize, aperak::MAX_ERROR_GROUPS);
    assert_eq!(group_max("CUSRES", 4) as usize, cusres::MAX_ERROR_GROUPS);
}

#[test]
fn the_clean_base_has_no_findings() {
    let (found, original) = findings(&base());
    assert_eq!(found, vec![]);
    assert_eq!(original.lrn.as_deref(), Some("LRN2026001"));
    let text = aperak::build(&original, &found, &envelope("A1"));
    let segments = clean(&text, "APERAK");
    let bgm = &segments[1];
    assert_eq!(
        (bgm.get(0, 0), bgm.get(2, 0), bgm.get(3, 0)),
        (Some("961"), Some("29"), Some("AP"))
    );
    assert!(!segments.iter().any(|s| s.tag == "ERC"));
}

/// (defect from, to, code, tag, position in message, element, component,
/// canonical field, segment group)
type Case = (
    &'static str,
    &'static str,
    Code,
    &'static str,
    u32,
    Option<u16>,
    Option<u16>,
    &'static str,
    Option<&'static str>,
);

const CASES: &[Case] = &[
    // A negative mass: located at its value in the item's MEA.
    (
        "MEA+AAE+G+KGM:1001.5'",
        "MEA+AAE+G+KGM:-1001.5'",
        Code::RuleNegative,
        "MEA",
        14,
        Some(3),
        Some(2),
        "/goods/0/gross_mass_kg",
        Some("SG30"),
    ),
    // The declarant without an id: located at its NAD.
    (
        "NAD+DT+1234567890::ZZZ'",
        "NAD+DT+++CUSTOMS AGENT'",
        Code::RuleParty,
        "NAD",
        7,
        None,
        None,
        "/declarant",
        Some("SG6"),
    ),
    (
        "CST+2+847989'",
        "CST+2+84798A'",
        Code::RuleHsCode,
        "CST",
        17,
        Some(2),
        Some(1),
        "/goods/1/hs_code",
        Some("SG30"),
    ),
    (
        "MOA+40:100003.50:USD'",
        "MOA+40:200003.50:USD'",
        Code::RuleTotals,
        "MOA",
        10,
        Some(1),
        Some(2),
        "/totals/customs_value/value",
        Some("SG8"),
    ),
    (
        "MOA+40:50001.25:USD'",
        "MOA+40:50001.25:USX'",
        Code::RuleCurrency,
        "MOA",
        16,
        Some(1),
        Some(3),
        "/goods/0/customs_value/currency",
        Some("SG30/SG33"),
    ),
    (
        "LOC+35+KR'",
        "LOC+35+ZZ'",
        Code::RuleCountry,
        "LOC",
        4,
        Some(2),
        Some(1),
        "/dispatch_country",
        None,
    ),
    (
        "DTM+137:202611241030:203'",
        "DTM+137:202711241030:203'",
        Code::RuleFutureDate,
        "DTM",
        5,
        Some(1),
        Some(2),
        "/issued",
        None,
    ),
    (
        "CST+2+847989'",
        "CST+3+847989'",
        Code::RuleItems,
        "CST",
        17,
        Some(1),
        // 1496 is a simple data element: no component (as in S011).
        None,
        "/goods/1/sequence",
        Some("SG30"),
    ),
];

/// One error group of an APERAK: ERC code, FTX text, RFF components, FTX
/// location parts.
type Group = (String, String, Vec<String>, Vec<String>);

fn error_groups(segments: &[Segment]) -> Vec<Group> {
    let mut out = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        if seg.tag != "ERC" {
            continue;
        }
        // FTX lines join back without a separator (a line cut at a space
        // starts with it).
        let text = |s: &Segment| s.element(3).unwrap().components().concat();
        let ftx = &segments[i + 1];
        assert_eq!((ftx.tag.as_str(), ftx.get(0, 0)), ("FTX", Some("AAO")));
        let rff = &segments[i + 2];
        assert_eq!(rff.tag, "RFF");
        let place = &segments[i + 3];
        assert_eq!((place.tag.as_str(), place.get(0, 0)), ("FTX", Some("ACB")));
        out.push((
            seg.get(0, 0).unwrap().to_owned(),
            text(ftx),
            rff.element(0).unwrap().components().to_vec(),
            // Each part after the first starts with the space that parts
            // them (the lines join back without a separator).
            place
                .element(3)
                .unwrap()
                .components()
                .iter()
                .enumerate()
                .map(|(n, part)| {
                    assert_eq!(n > 0, part.starts_with(' '), "{part:?}");
                    part.trim_start().to_owned()
                })
                .collect(),
        ));
    }
    out
}

#[test]
fn each_rule_code_reaches_the_aperak_with_its_segment_and_element() {
    for &(from, to, code, tag, position, element, component, field, group) in CASES {
        let (found, original) = findings(&with(from, to));
        assert_eq!(found.len(), 1, "{code}: {found:#?}");
        let issue = &found[0];
        assert_eq!(issue.code, code);
        let loc = &issue.location;
        assert_eq!(
            (
                loc.message.as_deref(),
                loc.interchange.as_deref(),
                loc.tag.as_deref(),
                loc.message_segment,
                loc.segment,
                loc.element,
                loc.component,
                loc.field.as_deref(),
                loc.group_path.as_deref(),
            ),
            (
                Some("1"),
                Some("20261124001"),
                Some(tag),
                Some(position),
                // UNB is segment 1 of the interchange, UNH segment 2.
                Some(position + 1),
                element,
                component,
                Some(field),
                group,
            ),
            "{code}"
        );

        let text = aperak::build(&original, &found, &envelope("A1"));
        let segments = clean(&text, "APERAK");
        let bgm = &segments[1];
        assert_eq!(
            (bgm.get(0, 0), bgm.get(2, 0), bgm.get(3, 0)),
            (Some("963"), Some("27"), Some("RE")),
            "{code}"
        );
        let groups = error_groups(&segments);
        assert_eq!(groups.len(), 1, "{code}");
        let (erc, message, rff, place) = &groups[0];
        assert_eq!(erc, code.as_str());
        // UNOC has no ellipsis (RUL007's text): it is replaced.
        assert_eq!(message, &issue.message.replace('…', "."));
        assert_eq!(rff, &["ACW".to_owned(), "1".into(), position.to_string()]);
        assert_eq!(
            place[0],
            format!("segment {tag} at position {position} of message 1")
        );
        let mut rest: Vec<String> = Vec::new();
        match (element, component) {
            (Some(e), Some(c)) => rest.push(format!("element {e}, component {c}")),
            (Some(e), None) => rest.push(format!("element {e}")),
            _ => {}
        }
        if let Some(g) = group {
            rest.push(format!("segment group {g}"));
        }
        rest.push(format!("field {field}"));
        assert_eq!(&place[1..], rest.as_slice(), "{code}");

        // The same finding in a CUSRES: ERP names the segment.
        let errors: Vec<ResponseError> = found.iter().map(response_error).collect();
        let text = cusres::build(
            &response("rejected", errors, None),
            &original,
            &envelope("R1"),
        );
        let segments = clean(&text, "CUSRES");
        let erp = segments.iter().find(|s| s.tag == "ERP").unwrap();
        assert_eq!(
            erp.element(1).unwrap().components(),
            &[tag.to_owned(), position.to_string(), "5".into()]
        );
        let erc = segments.iter().find(|s| s.tag == "ERC").unwrap();
        assert_eq!(erc.get(0, 0), Some(code.as_str()));
    }
}

#[test]
fn a_missing_value_is_located_where_its_rule_reads_it() {
    // No HS code at all in goods item 2: the finding points at the CST
    // that opens the item, at the element the code is read from (C246),
    // with the field it is about.
    let (found, _) = findings(&with("CST+2+847989'", "CST+2'"));
    assert_eq!(found.len(), 1, "{found:#?}");
    let loc = &found[0].location;
    assert_eq!(found[0].code, Code::RuleHsCode);
    assert_eq!(
        (
            loc.tag.as_deref(),
            loc.message_segment,
            loc.element,
            loc.field.as_deref()
        ),
        (Some("CST"), Some(17), Some(2), Some("/goods/1/hs_code"))
    );
}

#[test]
fn cusres_for_every_status_is_valid_d96b() {
    let (_, original) = findings(&base());
    let located = Issue {
        location: tradehub::diag::Location {
            message: Some("1".into()),
            message_segment: Some(17),
            tag: Some("CST".into()),
            element: Some(2),
            component: Some(1),
            field: Some("/goods/1/hs_code".into()),
            ..Default::default()
        },
        ..Issue::error(
            Code::RuleHsCode,
            Default::default(),
            "HS code \"84798A\" of goods item 2 is not 6 to 10 digits",
        )
    };
    /// Status, with errors, 1225, 4343, 7365.
    type Status = (
        &'static str,
        bool,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
    );
    let cases: &[Status] = &[
        // status, with errors, 1225, 4343, 7365
        ("received", false, "12", None, Some("17")),
        ("accepted", false, "29", Some("AP"), Some("1")),
        ("rejected", true, "27", Some("RE"), Some("2")),
        ("rejected", false, "27", Some("RE"), Some("3")),
        ("cleared", false, "29", Some("AP"), Some("1")),
        ("released", false, "29", Some("AP"), Some("4")),
        ("held", false, "23", None, Some("5")),
        ("held", true, "23", None, Some("6")),
        ("awaiting_permits", false, "29", Some("AP"), Some("1")),
        ("cancelled", false, "29", Some("AP"), Some("1")),
        ("something new", false, "11", None, None),
    ];
    for &(status, with_errors, function, response_type, indicator) in cases {
        let errors = if with_errors {
            vec![
                response_error(&located),
                ResponseError {
                    code: "AGY001".into(),
                    pointer: None,
                    message: "the agency refused the permit".into(),
                    warning: false,
                },
            ]
        } else {
            Vec::new()
        };
        let text = cusres::build(
            &response(status, errors, Some("26KR0000000000001")),
            &original,
            &envelope("R1"),
        );
        let segments = clean(&text, "CUSRES");
        let bgm = &segments[1];
        assert_eq!(bgm.get(1, 0), Some("LRN2026001"), "{status}");
        assert_eq!(bgm.get(2, 0), Some(function), "{status}");
        assert_eq!(bgm.get(3, 0), response_type, "{status}");
        let gis = segments.iter().find(|s| s.tag == "GIS");
        assert_eq!(gis.and_then(|g| g.get(0, 0)), indicator, "{status}");
        let refs: Vec<(String, String)> = segments
            .iter()
            .filter(|s| s.tag == "RFF")
            .take(4)
            .map(|s| {
                (
                    s.get(0, 0).unwrap().to_owned(),
                    s.get(0, 1).unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            refs,
            vec![
                ("ABE".into(), "LRN2026001".into()),
                ("ABT".into(), "26KR0000000000001".into()),
                ("ACW".into(), "1".into()),
                ("INO".into(), "20261124001".into()),
            ],
            "{status}"
        );
        let dtm = segments.iter().find(|s| s.tag == "DTM").unwrap();
        assert_eq!(dtm.get(0, 1), Some("202611251200"));
        assert_eq!(
            segments.iter().filter(|s| s.tag == "ERP").count(),
            if with_errors { 2 } else { 0 },
            "{status}"
        );
    }
}

/// Cleared or released on permits given with conditions: conditionally
/// accepted (4343 CA; 7365 66 while cleared, 4 once released), each
/// condition in an FTX+AAX; the header's 9 FTX hold the status and at most
/// 8 conditions, the last saying how many more there are. Valid D.96B.
#[test]
fn cusres_on_conditions_lists_them_within_the_directory() {
    let (_, original) = findings(&base());
    for (count, status, indicator) in [
        (1, "cleared", "66"),
        (12, "cleared", "66"),
        (2, "released", "4"),
    ] {
        let mut r = response(status, Vec::new(), None);
        r.conditions = (1..=count)
            .map(|i| format!("AGENCY{i}: keep below 4 C; inspect seal {i}'+:?"))
            .collect();
        let text = cusres::build(&r, &original, &envelope("R1"));
        let segments = clean(&text, "CUSRES");
        assert_eq!(segments[1].get(3, 0), Some("CA"), "{text}");
        let gis = segments.iter().find(|s| s.tag == "GIS").unwrap();
        assert_eq!(gis.get(0, 0), Some(indicator), "{text}");
        let conditions: Vec<&str> = segments
            .iter()
            .filter(|s| s.tag == "FTX" && s.get(0, 0) == Some("AAX"))
            .map(|s| s.get(3, 0).unwrap())
            .collect();
        assert_eq!(
            conditions.len(),
            count.min(cusres::MAX_CONDITIONS),
            "{text}"
        );
        assert_eq!(conditions[0], "AGENCY1: keep below 4 C; inspect seal 1'+:?");
        if count > cusres::MAX_CONDITIONS {
            assert_eq!(
                conditions.last().copied(),
                Some("and 5 more condition(s), see the declaration at the hub")
            );
        }
    }
}

#[test]
fn answers_in_syntax_4_and_other_repertoires_are_valid() {
    let (found, original) = findings(&with("CST+2+847989'", "CST+2+84798A'"));
    for (id, version) in [
        ("UNOA", 3),
        ("UNOB", 2),
        ("UNOC", 4),
        ("UNOW", 4),
        ("UNOX", 9),
    ] {
        let env = Envelope {
            syntax_identifier: id.into(),
            syntax_version: version,
            ..envelope("A1")
        };
        // A character UNOA cannot carry is replaced, not an error.
        let mut noisy = found.clone();
        noisy[0].message.push_str(" – ünïcode * and ? and '");
        clean(&aperak::build(&original, &noisy, &env), "APERAK");
        let errors: Vec<ResponseError> = noisy.iter().map(response_error).collect();
        clean(
            &cusres::build(&response("rejected", errors, None), &original, &env),
            "CUSRES",
        );
    }
}

/// An interchange that named no sender (`ack` of a broken file) is
/// answered to `UNKNOWN`, as its CONTRL is: UNB S003 0010 is mandatory,
/// and the answers had it empty.
#[test]
fn answers_to_an_interchange_without_a_sender_are_valid() {
    let (found, original) = findings(&with("CST+2+847989'", "CST+2+84798A'"));
    let env = Envelope {
        partner: String::new(),
        partner_qualifier: String::new(),
        ..envelope("A2")
    };
    let aperak = aperak::build(&original, &found, &env);
    assert!(aperak.contains("+UNKNOWN+"), "{aperak}");
    clean(&aperak, "APERAK");
    let errors: Vec<ResponseError> = found.iter().map(response_error).collect();
    clean(
        &cusres::build(&response("rejected", errors, None), &original, &env),
        "CUSRES",
    );
}

/// A UNOA sender's identifiers in lower case (its id, its references)
/// are echoed as sent, in a level B answer, rather than upper-cased; a
/// UNOA sender whose identifiers fit gets a UNOA answer, its texts in
/// capitals.
#[test]
fn lower_case_identifiers_of_a_unoa_sender_are_echoed_as_sent() {
    let (found, original) = findings(&with("CST+2+847989'", "CST+2+84798A'"));
    let env = Envelope {
        syntax_identifier: "UNOA".into(),
        partner: "kr-broker01".into(),
        ..envelope("A1")
    };
    let answer = aperak::build(&original, &found, &env);
    assert!(
        answer.contains("UNB+UNOB:3+TRADEHUB:ZZZ+kr-broker01:ZZZ+"),
        "{answer}"
    );
    clean(&answer, "APERAK");
    let answer = cusres::build(&response("rejected", Vec::new(), None), &original, &env);
    assert!(answer.contains("+kr-broker01:ZZZ+"), "{answer}");
    clean(&answer, "CUSRES");
    let env = Envelope {
        syntax_identifier: "UNOA".into(),
        ..envelope("A1")
    };
    let answer = aperak::build(&original, &found, &env);
    assert!(
        answer.contains("UNB+UNOA:3+TRADEHUB:ZZZ+KRBROKER01:ZZZ+"),
        "{answer}"
    );
    assert!(!answer.chars().any(|c| c.is_ascii_lowercase()), "{answer}");
}

#[test]
fn cusres_errors_are_bounded_by_the_directory() {
    let (_, original) = findings(&base());
    let errors: Vec<ResponseError> = (0..150)
        .map(|i| ResponseError {
            code: "RUL002".into(),
            pointer: Some(format!("CST:{}:2:1", 11 + i)),
            message: format!("error {i}"),
            warning: false,
        })
        .collect();
    let text = cusres::build(
        &response("rejected", errors, None),
        &original,
        &envelope("R1"),
    );
    // Valid: no more SG4 groups than the table allows (E0036 otherwise).
    let segments = clean(&text, "CUSRES");
    let ercs: Vec<&Segment> = segments.iter().filter(|s| s.tag == "ERC").collect();
    assert_eq!(ercs.len(), cusres::MAX_ERROR_GROUPS);
    assert_eq!(ercs.last().unwrap().get(0, 0), Some("EDI106"));
    let last_ftx = segments.iter().rev().find(|s| s.tag == "FTX").unwrap();
    assert!(
        last_ftx
            .element(3)
            .unwrap()
            .components()
            .join(" ")
            .starts_with("52 further error(s) not listed"),
        "{last_ftx:?}"
    );
}

#[test]
fn a_broken_answer_fails_validation() {
    // The checks above are not vacuous: the validator does read these
    // messages against D.96B.
    let (found, original) = findings(&with("CST+2+847989'", "CST+2+84798A'"));
    let text = aperak::build(&original, &found, &envelope("A1"));
    let dtm = "DTM+137:202611251200:203'";
    assert!(text.contains(dtm));
    // APERAK has no GIS.
    let parsed = parse(&text.replacen(dtm, "GIS+1'", 1));
    assert!(
        parsed
            .issues
            .iter()
            .any(|i| i.code == Code::NotSupportedInPosition
                && i.location.tag.as_deref() == Some("GIS")),
        "{:#?}",
        parsed.issues
    );
    // 999 is not a D.96B document name code.
    let parsed = parse(&text.replacen("BGM+963+", "BGM+999+", 1));
    assert!(
        parsed
            .issues
            .iter()
            .any(|i| i.code == Code::InvalidValue && i.location.tag.as_deref() == Some("BGM")),
        "{:#?}",
        parsed.issues
    );
    // ERC is only allowed after ERP in a CUSRES.
    let errors: Vec<ResponseError> = found.iter().map(response_error).collect();
    let text = cusres::build(
        &response("rejected", errors, None),
        &original,
        &envelope("R1"),
    );
    assert!(text.contains("ERP++CST:17:5'"));
    let parsed = parse(&text.replacen("ERP++CST:17:5'", "ERC+X'", 1));
    assert!(!parsed.is_valid(), "{text}");
}

fn golden(name: &str, got: &str) {
    let path: PathBuf = root().join("fixtures/ack").join(name);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{got}\n")).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        expected.strip_suffix('\n').unwrap_or(&expected),
        got,
        "{} differs (UPDATE_EXPECT=1 to refresh)",
        path.display()
    );
}

#[test]
fn golden_aperak_and_cusres() {
    let (found, original) = findings(&with("CST+2+847989'", "CST+2+84798A'"));
    golden(
        "aperak-rul002.edi",
        &aperak::build(&original, &found, &envelope("A2611251200001")),
    );
    let errors: Vec<ResponseError> = found.iter().map(response_error).collect();
    golden(
        "cusres-rejected.edi",
        &cusres::build(
            &response("rejected", errors, None),
            &original,
            &envelope("R2611251200001"),
        ),
    );
}

fn tradehub(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_cli_prints_the_answers() {
    let dir = std::env::temp_dir().join(format!("tradehub-ack-edifact-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("rul002.edi");
    std::fs::write(&bad, with("CST+2+847989'", "CST+2+84798A'")).unwrap();
    let good = dir.join("clean.edi");
    std::fs::write(&good, base()).unwrap();
    let at = "2026-11-25T12:00";

    let out = tradehub(&["ack", bad.to_str().unwrap(), "--kind", "aperak", "--at", at]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    // The golden APERAK, as the CLI builds it.
    let expected = std::fs::read_to_string(root().join("fixtures/ack/aperak-rul002.edi")).unwrap();
    assert_eq!(text, expected);

    let out = tradehub(&["ack", bad.to_str().unwrap(), "--kind", "cusres", "--at", at]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let expected =
        std::fs::read_to_string(root().join("fixtures/ack/cusres-rejected.edi")).unwrap();
    assert_eq!(text, expected);

    let out = tradehub(&[
        "ack",
        good.to_str().unwrap(),
        "--kind",
        "cusres",
        "--at",
        at,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let segments = clean(text.trim_end(), "CUSRES");
    assert_eq!(segments[1].get(3, 0), Some("AP"));

    let out = tradehub(&[
        "ack",
        good.to_str().unwrap(),
        "--kind",
        "aperak",
        "--format",
        "json",
        "--at",
        at,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["lrn"], "LRN2026001");
    assert_eq!(json[0]["findings"], serde_json::json!([]));

    // WCO XML is answered with --kind res; a missing file is an I/O error.
    let xml = dir.join("dec.xml");
    std::fs::write(&xml, "<?xml version=\"1.0\"?><Declaration/>").unwrap();
    assert_eq!(
        tradehub(&["ack", xml.to_str().unwrap(), "--kind", "aperak"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        tradehub(&[
            "ack",
            dir.join("none.edi").to_str().unwrap(),
            "--kind",
            "cusres"
        ])
        .status
        .code(),
        Some(2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn provenance_names_the_segment_and_element_of_every_value() {
    let (_, mapped) = parse_and_map(base().as_bytes(), &directories()).unwrap();
    let p = &mapped[0].provenance;
    let at = |pointer: &str| {
        let l = p
            .get(pointer)
            .unwrap_or_else(|| panic!("{pointer}: {:?}", p.keys()));
        (
            l.tag.clone().unwrap(),
            l.message_segment.unwrap(),
            l.element,
            l.component,
            l.group_path.clone(),
        )
    };
    let sg = |g: &str| Some(g.to_owned());
    assert_eq!(at(""), ("UNH".into(), 1, None, None, None));
    assert_eq!(at("/lrn"), ("BGM".into(), 2, Some(2), Some(1), None));
    assert_eq!(at("/declarant"), ("NAD".into(), 7, None, None, sg("SG6")));
    assert_eq!(
        at("/declarant/id"),
        ("NAD".into(), 7, Some(2), Some(1), sg("SG6"))
    );
    assert_eq!(at("/goods"), ("CST".into(), 12, None, None, sg("SG30")));
    assert_eq!(at("/goods/1"), ("CST".into(), 17, None, None, sg("SG30")));
    assert_eq!(
        at("/goods/1/statistical_value/value"),
        ("MOA".into(), 20, Some(1), Some(2), sg("SG30/SG33"))
    );
    assert_eq!(
        at("/transport/means_name"),
        ("TDT".into(), 6, Some(8), Some(4), sg("SG4"))
    );
    // Every pointer names a value of the canonical object, or a value
    // whose rule found its segment but not the value there: it is located
    // where it would have been read (the declarant's NAD has no name, C080;
    // the goods items' CST no second C246, their procedure).
    let canonical = mapped[0].canonical.as_ref().unwrap();
    let absent: Vec<&str> = p
        .keys()
        .filter(|pointer| canonical.pointer(pointer).is_none())
        .map(String::as_str)
        .collect();
    assert!(absent.contains(&"/declarant/name"), "{absent:?}");
    for pointer in &absent {
        assert!(p[*pointer].element.is_some(), "{pointer}");
    }
    assert_eq!(
        at("/declarant/name"),
        ("NAD".into(), 7, Some(4), Some(1), sg("SG6"))
    );
    assert_eq!(
        at("/goods/1/procedure"),
        ("CST".into(), 17, Some(3), Some(1), sg("SG30"))
    );
}

/// An agency's reasons in Korean reach a sender whose repertoire has no
/// Hangul (UNOC, UNOA) romanized, syllable by syllable, and wrapped again
/// within the directory's 70 characters a line, rather than as a `.` per
/// syllable; in capitals for level A; kept as written in UTF-8 (UNOW).
#[test]
fn korean_reasons_are_romanized_for_a_sender_without_hangul() {
    let (_, original) = findings(&base());
    let reason = "permit P1 refused by MFDS for goods item 1: 라벨 누락 (표시 기준 위반)";
    let long = format!(
        "permit P2 refused by KMDIA: {}",
        "의료기기 허가 서류 미비 ".repeat(8)
    );
    let errors = vec![
        ResponseError {
            code: "HUB301".into(),
            pointer: None,
            message: reason.into(),
            warning: false,
        },
        ResponseError {
            code: "HUB301".into(),
            pointer: None,
            message: long.clone(),
            warning: false,
        },
    ];
    let mut r = response("held", errors, None);
    r.conditions = vec!["보관 온도 4도 이하".into()];
    let texts = |segments: &[Segment], subject: &str| -> Vec<String> {
        segments
            .iter()
            .filter(|s| s.tag == "FTX" && s.get(0, 0) == Some(subject))
            .map(|s| {
                let lines = s.element(3).unwrap().components();
                assert!(lines.iter().all(|l| l.chars().count() <= 70), "{lines:?}");
                lines.concat()
            })
            .collect()
    };
    for (syntax, version, expected, condition) in [
        (
            "UNOC",
            3,
            "permit P1 refused by MFDS for goods item 1: rabel nurak (pyosi gijun wiban)",
            "bogwan ondo 4do iha",
        ),
        (
            "UNOA",
            3,
            "PERMIT P1 REFUSED BY MFDS FOR GOODS ITEM 1: RABEL NURAK (PYOSI GIJUN WIBAN)",
            "BOGWAN ONDO 4DO IHA",
        ),
        ("UNOW", 4, reason, "보관 온도 4도 이하"),
    ] {
        let mut envelope = envelope("R1");
        envelope.syntax_identifier = syntax.into();
        envelope.syntax_version = version;
        let text = cusres::build(&r, &original, &envelope);
        let segments = clean(&text, "CUSRES");
        let said = texts(&segments, "AAO");
        assert_eq!(said.len(), 2, "{syntax}: {said:?}");
        assert_eq!(said[0], expected, "{syntax}");
        assert_eq!(texts(&segments, "AAX"), [condition], "{syntax}");
        if syntax != "UNOW" {
            // The long reason: romanized whole, cut at five lines with
            // "..." as any long text is.
            assert!(
                said[1].to_lowercase().starts_with(
                    "permit p2 refused by kmdia: uiryogigi heoga seoryu mibi uiryogigi"
                ),
                "{syntax}: {}",
                said[1]
            );
            assert!(
                !said[1].contains('.') || said[1].ends_with("..."),
                "{}",
                said[1]
            );
        } else {
            assert_eq!(said[1], long.trim_end());
        }
    }
}
