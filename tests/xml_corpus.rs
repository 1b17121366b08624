//! tradehub's verdict on every WCO document of the corpus equals xmllint's
//! (fixtures/wco/corpus/expected.tsv, recorded with libxml2 2.x), and every
//! error is located by line, column and element path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use tradehub::diag::Code;
use tradehub::xml::{DocumentKind, XmlLimits, XmlValidator};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/wco/corpus")
}

struct Expected {
    file: String,
    schema: String,
    valid: bool,
    first_error: String,
}

fn expected() -> Vec<Expected> {
    let text = std::fs::read_to_string(corpus().join("expected.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut cols = line.splitn(4, '\t');
            let file = cols.next().unwrap().to_owned();
            let schema = cols.next().unwrap().to_owned();
            let verdict = cols.next().unwrap();
            let first_error = cols.next().unwrap_or("").to_owned();
            Expected {
                file,
                schema,
                valid: verdict == "valid",
                first_error,
            }
        })
        .collect()
}

fn validator() -> XmlValidator {
    XmlValidator::new(
        Some(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/wco")),
        XmlLimits::default(),
    )
}

#[test]
fn every_verdict_equals_xmllint() {
    let rows = expected();
    assert_eq!(rows.len(), 47, "expected.tsv lists the 47 corpus files");
    let validator = validator();
    let mut mismatches = Vec::new();
    for row in &rows {
        let bytes = std::fs::read(corpus().join(&row.file)).unwrap();
        let report = validator.validate(&bytes, &row.file);
        if report.valid != row.valid {
            mismatches.push(format!(
                "{}: xmllint {} tradehub {} {:#?}",
                row.file, row.valid, report.valid, report.issues
            ));
            continue;
        }
        if !row.valid {
            // The first error is on the line xmllint names.
            let line: u32 = row.first_error.split(':').next().unwrap().parse().unwrap();
            let first = report.issues.iter().find(|i| i.is_error()).unwrap();
            if first.location.line != Some(line) {
                mismatches.push(format!(
                    "{}: first error on line {:?}, xmllint says {line}: {} / ours: {}",
                    row.file, first.location.line, row.first_error, first.message
                ));
            }
            let schema_error = row.first_error.contains("Schemas validity error");
            let want = if schema_error {
                Code::XmlSchemaInvalid
            } else {
                Code::XmlNotWellFormed
            };
            if first.code != want {
                mismatches.push(format!(
                    "{}: code {} expected {}",
                    row.file,
                    first.code,
                    want.as_str()
                ));
            }
        }
        // Readable (nothing refused, well-formed) exactly when xmllint read
        // the document through: valid, or invalid against its schema only.
        let read_through = row.valid || row.first_error.contains("Schemas validity error");
        if report.readable != read_through {
            mismatches.push(format!(
                "{}: readable {} but xmllint {}",
                row.file, report.readable, row.first_error
            ));
        }
        // The schema set tradehub picks from the root is the one the corpus
        // names, both ways: a response read as a declaration is as wrong as
        // the reverse.
        let kind = if row.schema.contains("notification") {
            DocumentKind::Response
        } else {
            DocumentKind::Declaration
        };
        if report.summary.kind != kind && report.summary.kind != DocumentKind::Other {
            mismatches.push(format!(
                "{}: read as {:?}, the corpus validates it as {kind:?}",
                row.file, report.summary.kind
            ));
        }
        if report.summary.kind == DocumentKind::Other && row.valid {
            mismatches.push(format!(
                "{}: valid, but its root was not recognised",
                row.file
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// libxml2 gives a schema message a line, not a column: a document written
/// on one line (machine output) is located as precisely as the same
/// document pretty-printed. Here a goods item's SequenceNumeric repeated in
/// the second goods item: the error names that element, at its start tag,
/// not the first SequenceNumeric of the line.
#[test]
fn errors_in_a_one_line_document_are_located_at_their_element() {
    let text =
        std::fs::read_to_string(corpus().join("valid/hmrc__TT_EX004a__TT_EX004a.xml")).unwrap();
    let second = "<SequenceNumeric>2</SequenceNumeric>";
    assert_eq!(text.matches(second).count(), 1);
    let broken = text.replacen(second, &format!("{second}{second}"), 1);
    // One line: comments dropped, the space between tags taken out.
    let mut one_line = String::new();
    let mut rest = broken.as_str();
    while let Some(start) = rest.find("<!--") {
        one_line.push_str(&rest[..start]);
        let end = rest[start..].find("-->").unwrap() + start + 3;
        rest = &rest[end..];
    }
    one_line.push_str(rest);
    // Lines joined: without space between tags, with one inside a tag.
    let mut flat = String::new();
    for line in one_line
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let between_tags = flat.ends_with('>') && line.starts_with('<');
        if !flat.is_empty() && !between_tags {
            flat.push(' ');
        }
        flat.push_str(line);
    }
    let one_line = flat;
    assert!(!one_line.contains('\n'));

    let located = |doc: &str| {
        let report = validator().validate(doc.as_bytes(), "dup.xml");
        assert!(!report.valid);
        report
            .issues
            .iter()
            .filter(|i| i.is_error())
            .map(|i| (i.location.path.clone(), i.location.line, i.location.column))
            .collect::<Vec<_>>()
    };
    let pretty = located(&broken);
    let flat = located(&one_line);
    assert_eq!(pretty.len(), flat.len(), "{pretty:?}\n{flat:?}");
    let paths = |v: &[(Option<String>, Option<u32>, Option<u32>)]| {
        v.iter().map(|(p, _, _)| p.clone()).collect::<Vec<_>>()
    };
    assert_eq!(paths(&pretty), paths(&flat));
    let (path, line, column) = flat[0].clone();
    assert_eq!(
        path.as_deref(),
        Some("/MetaData/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[2]/SequenceNumeric[2]"),
        "{flat:?}"
    );
    // The column is the duplicate's start tag in the one line.
    let at = one_line.find(&format!("{second}{second}")).unwrap() + second.len();
    assert_eq!((line, column), (Some(1), Some(at as u32 + 1)), "{flat:?}");
}
