//! Hostile and oversized UN/EDIFACT input: limits hold, every problem is
//! reported with its code and location, and memory stays bounded.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;

use tradehub::diag::Code;
use tradehub::edifact::{self, Limits, ParseOptions, Parser};

fn interchange_with(body: &str) -> Vec<u8> {
    format!(
        "UNA:+.? 'UNB+UNOC:3+S+R+261124:1030+REF'UNH+1+CUSDEC:D:96B:UN'{body}UNT+{}+1'UNZ+1+REF'",
        body.matches('\'').count() - body.matches("?'").count() + 2
    )
    .into_bytes()
}

/// A reader that produces `len` bytes of `byte` without holding them.
struct Repeat {
    byte: u8,
    left: u64,
}

impl Read for Repeat {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        buf[..n].fill(self.byte);
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn oversized_segment_is_skipped_and_located() {
    let long = format!("FTX+AAA+++{}'", "A".repeat(5000));
    let data = interchange_with(&format!("BGM+830+X+9'{long}DTM+137:20261124:102'"));
    let options = ParseOptions {
        limits: Limits {
            max_segment_bytes: 1000,
            max_issues: 100,
        },
        ..ParseOptions::default()
    };
    let parsed = Parser::new(&data[..], options).run(|_, _| {}).unwrap();
    let issue = parsed
        .issues
        .iter()
        .find(|i| i.code == Code::SegmentTooLarge)
        .expect("EDI101");
    assert_eq!(issue.location.segment, Some(4));
    assert_eq!(issue.location.offset, Some(74));
    // The skipped segment still counts, so UNT's count matches and the rest parses.
    assert_eq!(parsed.error_count, 1, "{:#?}", parsed.issues);
    assert_eq!(parsed.interchange.counts.segments, 7);
}

#[test]
fn oversized_segment_with_released_terminators_in_tiny_reads() {
    // Released terminators inside the long segment must not end it early,
    // even when a read ends between the release character and what it releases.
    let long = format!("FTX+AAA+++{}'", "AB?'".repeat(2000));
    let data = interchange_with(&long);
    struct OneByte<'a>(&'a [u8]);
    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }
    let options = ParseOptions {
        limits: Limits {
            max_segment_bytes: 200,
            max_issues: 100,
        },
        ..ParseOptions::default()
    };
    let parsed = Parser::new(OneByte(&data), options).run(|_, _| {}).unwrap();
    let codes: Vec<Code> = parsed.issues.iter().map(|i| i.code).collect();
    assert_eq!(codes, vec![Code::SegmentTooLarge], "{:#?}", parsed.issues);
    assert_eq!(parsed.interchange.counts.messages, 1);
}

#[test]
fn a_gigantic_unterminated_segment_is_bounded() {
    // 20 MiB of one segment that never ends: reported, not buffered, and
    // skipped to the end of the input, which comes before the skip's limit
    // (64 times the longest segment, 16 MiB by default)... only when the
    // limit of a segment allows it: 1 MiB does.
    let reader =
        std::io::Cursor::new(b"UNB+UNOC:3+S+R+261124:1030+REF'UNH+1+X:D:96B:UN'FTX+".to_vec())
            .chain(Repeat {
                byte: b'A',
                left: 20 << 20,
            });
    let options = ParseOptions {
        limits: Limits {
            max_segment_bytes: 1 << 20,
            max_issues: 100,
        },
        ..ParseOptions::default()
    };
    let parsed = Parser::new(reader, options).run(|_, _| {}).unwrap();
    let codes: Vec<Code> = parsed.issues.iter().map(|i| i.code).collect();
    assert!(codes.contains(&Code::SegmentTooLarge), "{codes:?}");
    assert!(codes.contains(&Code::Missing), "{codes:?}");
    assert_eq!(parsed.interchange.counts.bytes, 52 + (20 << 20));
}

/// A stream without terminators (`yes A`) is not read without end: once a
/// segment runs 64 times past the limit of a segment, the lexer says so and
/// stops reading.
#[test]
fn an_endless_segment_stops_the_reading() {
    let mut endless = Repeat {
        byte: b'A',
        left: u64::MAX,
    };
    let reader =
        std::io::Cursor::new(b"UNB+UNOC:3+S+R+261124:1030+REF'UNH+1+X:D:96B:UN'FTX+".to_vec())
            .chain(&mut endless);
    let parsed = Parser::new(reader, ParseOptions::default())
        .run(|_, _| {})
        .unwrap();
    let stop = parsed
        .issues
        .iter()
        .find(|i| i.code == Code::SegmentTooLarge)
        .expect("EDI101");
    assert!(stop.message.contains("was not read"), "{}", stop.message);
    assert_eq!(stop.location.offset, Some(48));
    assert_eq!(stop.location.segment, Some(3));
    let limit = 64 * Limits::default().max_segment_bytes as u64;
    let read = u64::MAX - endless.left;
    assert!(
        read > limit && read < limit + (1 << 20),
        "{read} bytes read"
    );
}

/// Nor is an endless run of padding (`/dev/zero`, a stream of blanks):
/// more than a segment's worth between segments stops the reading (EDI104)
/// where it used to be skipped for as long as it lasted.
#[test]
fn endless_padding_stops_the_reading() {
    for (name, head) in [
        ("before the interchange", &b""[..]),
        ("between segments", &b"UNB+UNOC:3+S+R+261124:1030+REF'"[..]),
    ] {
        for byte in [0u8, b' ', b'\n'] {
            let mut endless = Repeat {
                byte,
                left: u64::MAX,
            };
            let reader = std::io::Cursor::new(head.to_vec()).chain(&mut endless);
            let parsed = Parser::new(reader, ParseOptions::default())
                .run(|_, _| {})
                .unwrap();
            let stop = parsed
                .issues
                .iter()
                .find(|i| i.code == Code::NotEdifact && i.message.contains("was not read"))
                .unwrap_or_else(|| panic!("{name}, {byte:#x}: {:#?}", parsed.issues));
            // One line end right after a terminator is no padding.
            let start = head.len() as u64 + u64::from(byte == b'\n' && !head.is_empty());
            assert_eq!(stop.location.offset, Some(start), "{name}, {byte:#x}");
            let limit = Limits::default().max_segment_bytes as u64;
            let read = u64::MAX - endless.left;
            assert!(
                read > limit && read < limit + (1 << 20),
                "{name}, {byte:#x}: {read} bytes read"
            );
        }
    }
    // A segment's worth of padding is still only a warning.
    let mut data = b"UNB+UNOC:3+S+R+261124:1030+REF'".to_vec();
    data.extend(std::iter::repeat_n(
        0u8,
        Limits::default().max_segment_bytes,
    ));
    data.extend(b"UNZ+0+REF'");
    let parsed = Parser::new(&data[..], ParseOptions::default())
        .run(|_, _| {})
        .unwrap();
    let codes: Vec<Code> = parsed.issues.iter().map(|i| i.code).collect();
    assert!(codes.contains(&Code::StrayBytes), "{codes:?}");
    assert!(!codes.contains(&Code::NotEdifact), "{codes:?}");
    assert_eq!(parsed.interchange.counts.segments, 2, "{codes:?}");
}

#[test]
fn issue_list_is_capped_and_the_rest_counted() {
    let body: String = (0..500).map(|_| "FTX+AAA+++lower case'").collect();
    let data =
        format!("UNB+UNOA:3+S+R+261124:1030+REF'UNH+1+CUSDEC:D:96B:UN'{body}UNT+502+1'UNZ+1+REF'");
    let options = ParseOptions {
        limits: Limits {
            max_segment_bytes: 1000,
            max_issues: 10,
        },
        ..ParseOptions::default()
    };
    let parsed = Parser::new(data.as_bytes(), options)
        .run(|_, _| {})
        .unwrap();
    assert_eq!(parsed.issues.len(), 11);
    assert_eq!(parsed.error_count, 500);
    assert_eq!(parsed.dropped_issues, 490);
    let last = parsed.issues.last().unwrap();
    assert_eq!(last.code, Code::TooManyIssues);
    assert!(last.message.contains("490"));
}

#[test]
fn release_before_terminator_at_end_of_input() {
    let parsed = edifact::parse(b"UNB+UNOC:3+S+R+261124:1030+REF'UNZ+0+REF?'");
    let codes: Vec<Code> = parsed.issues.iter().map(|i| i.code).collect();
    // `?'` releases the terminator, so UNZ never ends.
    assert!(codes.contains(&Code::UnterminatedSegment), "{codes:?}");
    let unz = parsed.interchange.trailer.as_ref().unwrap();
    assert_eq!(unz.get(1, 0), Some("REF'"));
}

#[test]
fn una_alone_or_cut_short() {
    for input in [&b"UNA"[..], b"UNA:+.", b"UNA:+.? '"] {
        let parsed = edifact::parse(input);
        assert!(!parsed.is_valid(), "{input:?}");
        assert!(!parsed.issues.is_empty());
    }
    let parsed = edifact::parse(b"UNA:+.");
    assert_eq!(parsed.issues[0].code, Code::UnaNotSupported);
}

#[test]
fn wide_encodings_and_empty_input_are_named() {
    let text = "UNA:+.? 'UNB+UNOC:3+S+R+261124:1030+REF'";
    let utf16le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let utf16be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    let utf32le: Vec<u8> = [0xFF, 0xFE, 0, 0]
        .into_iter()
        .chain(text.chars().flat_map(|c| (c as u32).to_le_bytes()))
        .collect();
    let utf32be: Vec<u8> = [0, 0, 0xFE, 0xFF]
        .into_iter()
        .chain(text.chars().flat_map(|c| (c as u32).to_be_bytes()))
        .collect();
    for (input, name) in [
        (utf16le, "UTF-16LE"),
        (utf16be, "UTF-16BE"),
        (utf32le, "UTF-32LE"),
        (utf32be, "UTF-32BE"),
        // The mark alone.
        (vec![0xFF, 0xFE], "UTF-16LE"),
        (vec![0xFE, 0xFF], "UTF-16BE"),
    ] {
        let parsed = edifact::parse(&input);
        // One error (UTF-32BE's leading zero bytes are also reported as
        // padding skipped, a warning).
        assert_eq!(parsed.error_count, 1, "{name}: {:?}", parsed.issues);
        let issue = parsed
            .issues
            .iter()
            .find(|i| i.code == Code::NotEdifact)
            .unwrap();
        assert!(issue.message.contains(name), "{}", issue.message);
        assert_eq!(issue.location.offset, Some(0));
    }
    let parsed = edifact::parse(b"");
    assert_eq!(parsed.issues[0].code, Code::NotEdifact);
    assert_eq!(parsed.issues[0].message, "input is empty");
    // Blanks alone: reported as stray, and no segment.
    let parsed = edifact::parse(b" \r\n");
    let issue = parsed.issues.iter().find(|i| i.code == Code::NotEdifact);
    assert_eq!(
        issue.map(|i| i.message.as_str()),
        Some("input holds no segment")
    );
    // Plain text is not EDIFACT, said without naming an encoding.
    let parsed = edifact::parse(b"just some text");
    assert!(
        parsed.issues[0]
            .message
            .starts_with("input does not start with UNA")
    );
}

#[test]
fn binary_garbage_never_panics() {
    // A cheap deterministic sweep; the fuzz target goes further.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for len in 0..400 {
        let mut data = b"UNA:+.? 'UNB+UNOC:3+S+R+261124:1030+REF'UNH+1+A:D:96B:UN'".to_vec();
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let alphabet = b"+:?'*UNHTZ\r\n\xff\x00A";
            data.push(alphabet[(x % alphabet.len() as u64) as usize]);
        }
        let parsed = edifact::parse(&data);
        let _ = tradehub::edifact::writer::write_interchange(
            &parsed.interchange,
            &parsed.interchange.separators,
            false,
        );
    }
}

#[test]
fn a_reused_message_reference_is_an_error_at_the_later_unh() {
    let data = b"UNB+UNOC:3+S+R+261124:1030+REF'\
UNH+1+CUSDEC:D:96B:UN'BGM+929+A+9'UNT+3+1'\
UNH+2+CUSDEC:D:96B:UN'BGM+929+B+9'UNT+3+2'\
UNH+1+CUSDEC:D:96B:UN'BGM+929+C+9'UNT+3+1'\
UNZ+3+REF'";
    let parsed = edifact::parse(data);
    let dup: Vec<_> = parsed
        .issues
        .iter()
        .filter(|i| i.code == Code::Duplicate)
        .collect();
    assert_eq!(dup.len(), 1, "{:?}", parsed.issues);
    assert_eq!(dup[0].location.segment, Some(8));
    assert_eq!(dup[0].location.tag.as_deref(), Some("UNH"));
    assert_eq!(dup[0].location.element, Some(1));
    assert!(dup[0].message.contains("segment 2"), "{}", dup[0].message);
    assert!(!parsed.is_valid());
    // Distinct references: no such error.
    let fine = String::from_utf8(data.to_vec()).unwrap().replacen(
        "UNH+1+CUSDEC:D:96B:UN'BGM+929+C+9'UNT+3+1'",
        "UNH+3+CUSDEC:D:96B:UN'BGM+929+C+9'UNT+3+3'",
        1,
    );
    let parsed = edifact::parse(fine.as_bytes());
    assert!(
        parsed.issues.iter().all(|i| i.code != Code::Duplicate),
        "{:?}",
        parsed.issues
    );
}

/// References are remembered as fixed-size keys: exact up to 15 bytes
/// (prefixes and lengths kept apart), hashed beyond; the duplicate check
/// holds for each kind.
#[test]
fn reused_references_are_found_whatever_their_length() {
    let long_a = "A".repeat(5000);
    let long_b = format!("{}B", "A".repeat(4999));
    for (first, second, reused) in [
        ("1", "10", false),
        ("12345678901234", "1234567890123", false),
        ("", "X", false),
        ("123456789012345", "123456789012345", true),
        (long_a.as_str(), long_b.as_str(), false),
        (long_a.as_str(), long_a.as_str(), true),
        ("1", long_a.as_str(), false),
    ] {
        let data = format!(
            "UNB+UNOC:3+S+R+261124:1030+REF'\
UNH+{first}+CUSDEC:D:96B:UN'BGM+929+A+9'UNT+3+{first}'\
UNH+{second}+CUSDEC:D:96B:UN'BGM+929+B+9'UNT+3+{second}'\
UNZ+2+REF'"
        );
        let parsed = edifact::parse(data.as_bytes());
        let found = parsed.issues.iter().any(|i| i.code == Code::Duplicate);
        assert_eq!(found, reused, "{} / {}", first.len(), second.len());
    }
}

/// UNB S004 names a date and time that exist (E0012 otherwise), in the
/// shape of the syntax version (YYMMDD before 4, CCYYMMDD in 4).
#[test]
fn the_preparation_date_and_time_exist() {
    let issues = |version: &str, date: &str, time: &str| -> Vec<(String, Option<u16>)> {
        let data = format!(
            "UNB+UNOC:{version}+S+R+{date}:{time}+REF'UNH+1+CUSDEC:D:96B:UN'BGM+929+A+9'UNT+3+1'UNZ+1+REF'"
        );
        edifact::parse(data.as_bytes())
            .issues
            .iter()
            .filter(|i| i.code == Code::InvalidValue)
            .map(|i| (i.message.clone(), i.location.component))
            .collect()
    };
    for (version, date, time) in [
        ("3", "261127", "0930"),
        ("3", "240229", "2359"),
        ("4", "20261231", "0000"),
    ] {
        assert!(issues(version, date, time).is_empty(), "{date} {time}");
    }
    for (version, date, time, component) in [
        ("3", "261327", "0930", 1),
        ("3", "260229", "0930", 1),
        ("3", "261100", "0930", 1),
        ("4", "20261232", "0930", 1),
        ("3", "261127", "2400", 2),
        ("3", "261127", "0960", 2),
    ] {
        let found = issues(version, date, time);
        assert_eq!(found.len(), 1, "{date} {time}: {found:?}");
        assert_eq!(found[0].1, Some(component), "{date} {time}");
    }
}

/// UNB's coded service elements hold codes of their ISO 9735 lists, which
/// differ by syntax version (0031 2 and 0035 2-4 exist from version 4 on).
#[test]
fn unb_service_codes_are_those_of_their_lists() {
    let invalid = |version: &str, tail: &str| -> Vec<(Option<u16>, Option<u16>, bool)> {
        let data = format!(
            "UNB+UNOC:{version}+S+R+{}:0930+REF{tail}'UNH+1+CUSDEC:D:96B:UN'BGM+929+A+9'UNT+3+1'UNZ+1+REF'",
            if version == "4" { "20261127" } else { "261127" }
        );
        edifact::parse(data.as_bytes())
            .issues
            .iter()
            .filter(|i| i.code == Code::InvalidValue)
            .map(|i| (i.location.element, i.location.component, i.is_error()))
            .collect()
    };
    for (version, tail) in [
        ("3", "+:AA++A+1++1"),
        ("3", "++++++5"),
        ("4", "++++2++4"),
        ("4", "+:BB"),
    ] {
        assert!(invalid(version, tail).is_empty(), "{version} {tail}");
    }
    for (version, tail, at) in [
        // An unknown test indicator is an error, the others warnings.
        ("4", "++++++9", (Some(11), None, true)),
        ("3", "++++++2", (Some(11), None, true)),
        ("3", "++++7", (Some(9), None, false)),
        ("3", "++++2", (Some(9), None, false)),
        ("3", "+++Z", (Some(8), None, false)),
        ("3", "+:CC", (Some(6), Some(2), false)),
    ] {
        assert_eq!(invalid(version, tail), [at], "{version} {tail}");
    }
}

/// A data element of 65,536 components or repetitions (a segment of
/// 240 KB, under the default segment limit) is read to its end and
/// reported, never a counter overflow.
#[test]
fn components_and_repetitions_beyond_what_a_place_holds() {
    for (una, version, piece) in [("UNA:+.? '", "3", "A:"), ("UNA:+.?*'", "4", "A*")] {
        let ftx = format!("FTX+AAA+++{}B'", piece.repeat(70_000));
        let data = format!(
            "{una}UNB+UNOC:{version}+S+R+{}:1030+REF'UNH+1+CUSDEC:D:96B:UN'BGM+929+A+9'{ftx}UNT+4+1'UNZ+1+REF'",
            if version == "4" { "20261124" } else { "261124" }
        );
        let parsed = edifact::parse(data.as_bytes());
        assert_eq!(parsed.interchange.counts.messages, 1, "{version}");
        // Validated against the directory, FTX's C108 has five components.
        let validated = Parser::new(data.as_bytes(), ParseOptions::default())
            .with_directories(tradehub::schema::Directories::global())
            .run(|_, _| {})
            .unwrap();
        assert!(!validated.is_valid(), "{version}");
    }
}
