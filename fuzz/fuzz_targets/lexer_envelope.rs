//! Fuzzes the UN/EDIFACT lexer and envelope: any bytes, in one piece, in
//! small reads and with tiny limits, with structure validation against the
//! vendored directories, through CONTRL; and for any input that
//! parses without errors, writing the tree back and parsing it again must
//! give the same tree.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use tradehub::ack::contrl;
use tradehub::edifact::{self, writer, Limits, ParseOptions, Parser};
use tradehub::timestamp::Timestamp;

/// Reads at most 7 bytes per call.
struct Small<'a>(&'a [u8]);

impl Read for Small<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(7);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let parsed = edifact::parse(data);
    let tiny = ParseOptions { limits: Limits { max_segment_bytes: 64, max_issues: 8 }, ..ParseOptions::default() };
    let _ = Parser::new(Small(data), tiny).run(|_, _| {});
    let check = ParseOptions { keep_messages: false, decode_messages: false, ..ParseOptions::default() };
    let checked = Parser::new(Small(data), check).run(|_, _| {}).expect("reading a slice cannot fail");
    assert_eq!(checked.issues, parsed.issues, "check mode must agree with a full parse");

    // Structure validation against the vendored directories: terminates,
    // and streaming check mode reports what an in-memory parse reports.
    static DIRS: std::sync::OnceLock<std::sync::Arc<tradehub::schema::Directories>> = std::sync::OnceLock::new();
    let dirs = DIRS.get_or_init(|| {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/untdid");
        std::sync::Arc::new(tradehub::schema::Directories::new(&[folder]))
    });
    let full = ParseOptions { keep_messages: true, decode_messages: true, ..ParseOptions::default() };
    let validated = Parser::new(data, full).with_directories(dirs.clone()).run(|_, _| {}).expect("reading a slice cannot fail");
    let streamed = Parser::new(Small(data), check).with_directories(dirs.clone()).run(|_, _| {}).expect("reading a slice cannot fail");
    assert_eq!(streamed.issues, validated.issues, "validation must not depend on the read size");

    let options = contrl::Options::at(Timestamp::from_unix(0), parsed.interchange.syntax_version == "4", "1".into());
    let ack = contrl::build(&parsed, &options);
    assert!(edifact::parse(&ack.bytes).issues.is_empty(), "the CONTRL must be a clean interchange");

    if parsed.is_valid() {
        let seps = parsed.interchange.separators;
        if let Ok(bytes) = writer::write_interchange(&parsed.interchange, &seps, false) {
            let again = edifact::parse(&bytes);
            let before: Vec<_> = writer::segments(&parsed.interchange).collect();
            let after: Vec<_> = writer::segments(&again.interchange).collect();
            assert_eq!(before, after, "write then parse changed the tree");
        }
    }
});
