//! Every input under fixtures/edifact/fuzz (crashers and hostile inputs)
//! runs through the same invariants as the fuzz target: no panic, check mode
//! agrees with a full parse, CONTRL builds, and a valid tree survives a
//! write and a re-parse unchanged.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use tradehub::ack::contrl;
use tradehub::edifact::{self, Limits, ParseOptions, Parser, writer};
use tradehub::timestamp::Timestamp;

#[test]
fn fuzz_regressions_hold_every_invariant() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/edifact/fuzz");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        count += 1;
        let data = std::fs::read(&path).unwrap();
        let parsed = edifact::parse(&data);
        let tiny = ParseOptions {
            limits: Limits {
                max_segment_bytes: 64,
                max_issues: 8,
            },
            ..ParseOptions::default()
        };
        let _ = Parser::new(&data[..], tiny).run(|_, _| {}).unwrap();
        let check = ParseOptions {
            keep_messages: false,
            decode_messages: false,
            ..ParseOptions::default()
        };
        let checked = Parser::new(&data[..], check).run(|_, _| {}).unwrap();
        assert_eq!(checked.issues, parsed.issues, "{}", path.display());
        let options = contrl::Options::at(
            Timestamp::from_unix(0),
            parsed.interchange.syntax_version == "4",
            "1".into(),
        );
        let ack = contrl::build(&parsed, &options);
        assert!(
            edifact::parse(&ack.bytes).issues.is_empty(),
            "{}: CONTRL has issues",
            path.display()
        );
        if parsed.is_valid() {
            let bytes = writer::write_interchange(
                &parsed.interchange,
                &parsed.interchange.separators,
                false,
            )
            .unwrap();
            let again = edifact::parse(&bytes);
            let before: Vec<_> = writer::segments(&parsed.interchange).collect();
            let after: Vec<_> = writer::segments(&again.interchange).collect();
            assert_eq!(before, after, "{}", path.display());
        }
    }
    assert!(count >= 3);
}
