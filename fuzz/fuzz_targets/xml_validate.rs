//! Fuzzes WCO XML validation: any bytes through the guard pass and libxml2,
//! with the default limits and with tiny ones; the verdict must be the same
//! twice, a valid document must be a declaration or a response, and the WCO
//! RES answering it must be written and valid against the response schema.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tradehub::ack::res;
use tradehub::timestamp::Timestamp;
use tradehub::xml::{response, DocumentKind, XmlLimits, XmlValidator};

fuzz_target!(|data: &[u8]| {
    let validator = XmlValidator::new(None, XmlLimits::default());
    let report = validator.validate(data, "fuzz.xml");
    let again = validator.validate(data, "fuzz.xml");
    assert_eq!(report.valid, again.valid);
    assert_eq!(report.issues.len(), again.issues.len());
    if report.valid {
        assert!(report.issues.iter().all(|i| !i.is_error()));
        assert_ne!(report.summary.kind, DocumentKind::Other);
    } else {
        assert!(report.issues.iter().any(|i| i.is_error()), "invalid without an error");
    }
    let tiny = XmlLimits {
        max_document_bytes: 4096,
        max_depth: 6,
        max_elements: 64,
        max_attributes: 4,
        max_attribute_bytes: 32,
        max_text_bytes: 64,
        max_issues: 3,
    };
    let small = XmlValidator::new(None, tiny).validate(data, "tiny.xml");
    assert!(small.issues.len() <= 4 + 1);
    if report.summary.kind == DocumentKind::Declaration || !report.valid {
        let answer = res::for_report(&report, Timestamp::from_unix(1_800_000_000), "fuzz");
        let written = response::write(&answer).expect("every answer can be written");
        let check = validator.validate(written.as_bytes(), "res.xml");
        assert!(check.valid, "{:#?}\n{written}", check.issues);
    }
});
