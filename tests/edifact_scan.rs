//! The block scanner's fast path in check mode (`Lexer::skip_clean_data`)
//! must never change a verdict: on generated interchanges with random
//! damage, check mode (fast path, any read size) finds exactly the issues and
//! counts of a full parse (every segment split). And on clean input the fast
//! path must actually carry the data segments. Building each message's
//! text while validating changes no verdict and gives the text of the
//! decoded segments.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;

use proptest::prelude::*;
use tradehub::edifact::{
    self, Lexer, Limits, MessageText, Next, ParseOptions, Parsed, Parser, sample,
};

/// A reader that hands out at most `size` bytes per call.
struct Chunked<'a> {
    data: &'a [u8],
    size: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn full(data: &[u8]) -> Parsed {
    let options = ParseOptions {
        keep_messages: true,
        decode_messages: true,
        ..ParseOptions::default()
    };
    Parser::new(data, options).run(|_, _| {}).unwrap()
}

fn check(data: &[u8], size: usize, limits: Limits) -> Parsed {
    let options = ParseOptions {
        keep_messages: false,
        decode_messages: false,
        message_text: false,
        limits,
    };
    Parser::new(Chunked { data, size }, options)
        .run(|_, _| {})
        .unwrap()
}

fn assert_agree(data: &[u8], size: usize) -> Result<(), TestCaseError> {
    let want = full(data);
    let got = check(data, size, Limits::default());
    prop_assert_eq!(&got.issues, &want.issues);
    prop_assert_eq!(&got.interchange.counts, &want.interchange.counts);
    prop_assert_eq!(got.error_count, want.error_count);
    Ok(())
}

/// Bytes that exercise every rule of the fast path: separators, the release
/// character, line ends, white space, lower case (outside UNOA), non-ASCII,
/// control characters, and the letters of service tags.
const DAMAGE: &[u8] = b"'+:*?? \r\n\tUNTHaz\x00\x1a\xe9\xc3\x80#@";

fn damaged(seed: &[u8], edits: &[(usize, usize, bool)]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for &(at, pick, insert) in edits {
        let at = at % (data.len() + 1);
        let b = DAMAGE[pick % DAMAGE.len()];
        if insert || at == data.len() {
            data.insert(at, b);
        } else {
            data[at] = b;
        }
    }
    data
}

fn seed(charset: &str) -> Vec<u8> {
    let data = sample::interchange(6000);
    let text = String::from_utf8(data).unwrap();
    text.replacen("UNOC:3", charset, 1).into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fast_path_agrees_with_full_parse(
        edits in proptest::collection::vec((any::<usize>(), any::<usize>(), any::<bool>()), 0..6),
        size in prop_oneof![Just(1usize), 2usize..200, Just(65536)],
        charset in prop_oneof![Just("UNOA:3"), Just("UNOB:3"), Just("UNOC:3"), Just("UNOY:4"), Just("UNOC:4")],
    ) {
        let data = damaged(&seed(charset), &edits);
        assert_agree(&data, size)?;
    }
}

fn with_directories(data: &[u8], size: usize, keep: bool) -> Parsed {
    parse_validated(
        data,
        size,
        ParseOptions {
            keep_messages: keep,
            decode_messages: keep,
            ..ParseOptions::default()
        },
    )
}

/// Every message kept with only its text, as the mappings read it.
fn with_text(data: &[u8], size: usize) -> Parsed {
    parse_validated(
        data,
        size,
        ParseOptions {
            keep_messages: true,
            message_text: true,
            ..ParseOptions::default()
        },
    )
}

/// The text the parser built for each message is the one its decoded
/// segments give.
fn assert_same_text(got: &Parsed, want: &Parsed) -> Result<(), TestCaseError> {
    let got: Vec<_> = got.interchange.all_messages().collect();
    let want: Vec<_> = want.interchange.all_messages().collect();
    prop_assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        prop_assert!(g.segments.is_empty());
        prop_assert_eq!(&g.text, &MessageText::from_segments(&w.segments));
    }
    Ok(())
}

fn parse_validated(data: &[u8], size: usize, options: ParseOptions) -> Parsed {
    static DIRS: std::sync::OnceLock<std::sync::Arc<tradehub::schema::Directories>> =
        std::sync::OnceLock::new();
    let dirs = DIRS.get_or_init(|| {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/untdid");
        std::sync::Arc::new(tradehub::schema::Directories::new(&[folder]))
    });
    Parser::new(Chunked { data, size }, options)
        .with_directories(dirs.clone())
        .run(|_, _| {})
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// Structure validation on damaged input: it terminates, and streaming
    /// check mode (any read size) reports what a full in-memory parse does.
    #[test]
    fn validation_agrees_across_modes_on_damaged_input(
        edits in proptest::collection::vec((any::<usize>(), any::<usize>(), any::<bool>()), 0..8),
        size in prop_oneof![Just(1usize), 2usize..200, Just(65536)],
        charset in prop_oneof![Just("UNOA:3"), Just("UNOC:3"), Just("UNOY:4"), Just("UNOC:4")],
    ) {
        let data = damaged(&seed(charset), &edits);
        let want = with_directories(&data, 65536, true);
        let got = with_directories(&data, size, false);
        prop_assert_eq!(&got.issues, &want.issues);
        prop_assert_eq!(got.error_count, want.error_count);
        // Validating while building each message's text: the same verdict,
        // and the text of the decoded segments.
        let text = with_text(&data, size);
        prop_assert_eq!(&text.issues, &want.issues);
        assert_same_text(&text, &want)?;
        // The seed's UNB date has the six digits of syntax version 3.
        if edits.is_empty() && charset.ends_with(":3") {
            prop_assert!(want.is_valid(), "{:#?}", want.issues);
        }
    }
}

#[test]
fn every_fixture_and_corpus_file_agrees() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for area in [
        "fixtures/edifact/ok",
        "fixtures/edifact/err",
        "fixtures/edifact/corpus",
    ] {
        for entry in std::fs::read_dir(root.join(area)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".json") || name.ends_with(".md") || name.starts_with("LICENSE") {
                continue;
            }
            files.push(path);
        }
    }
    assert!(files.len() > 20, "{} files", files.len());
    for path in files {
        let data = std::fs::read(&path).unwrap();
        for size in [1, 7, 64, 65536] {
            if let Err(e) = assert_agree(&data, size) {
                panic!("{} (reads of {size}): {e}", path.display());
            }
        }
        // With validation, each message's text as its decoded segments.
        let want = with_directories(&data, 65536, true);
        for size in [1, 64, 65536] {
            let text = with_text(&data, size);
            if let Err(e) = assert_same_text(&text, &want) {
                panic!("{} (text, reads of {size}): {e}", path.display());
            }
            assert_eq!(text.issues, want.issues, "{}", path.display());
        }
    }
}

#[test]
fn oversized_segments_agree_under_a_small_limit() {
    let data = seed("UNOC:3");
    let limits = Limits {
        max_segment_bytes: 40,
        max_issues: 1000,
    };
    let want = Parser::new(
        &data[..],
        ParseOptions {
            keep_messages: true,
            decode_messages: true,
            message_text: false,
            limits,
        },
    )
    .run(|_, _| {})
    .unwrap();
    let got = check(&data, 4096, limits);
    assert!(!want.issues.is_empty());
    assert_eq!(got.issues, want.issues);
    assert_eq!(got.interchange.counts, want.interchange.counts);
}

/// On a clean interchange the fast path consumes nearly every data segment:
/// only service segments (UNH, UNT, UNS…) and segments with something
/// unusual go one by one.
#[test]
fn fast_path_carries_clean_data_segments() {
    let data = sample::interchange(200_000);
    let parsed = edifact::parse(&data);
    assert!(parsed.is_valid());
    let mut lexer = Lexer::new(&data[..], Limits::default());
    lexer.split_data_segments(false);
    lexer.start().unwrap();
    let (mut one_by_one, mut skipped) = (0u64, 0u64);
    loop {
        skipped += u64::from(lexer.skip_clean_data().unwrap());
        match lexer.next_segment().unwrap() {
            Next::End => break,
            _ => one_by_one += 1,
        }
    }
    assert_eq!(one_by_one + skipped, parsed.interchange.counts.segments);
    // UNA is not a segment; UNB, UNZ and UNH, UNT and two UNS of each
    // message are service segments.
    let service = 2 + 4 * parsed.interchange.counts.messages;
    assert_eq!(one_by_one, service, "skipped {skipped}");
}
