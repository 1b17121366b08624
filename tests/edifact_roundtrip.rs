//! Property: parse(write(x)) == x for generated interchanges, with random
//! separators, syntax versions 3 and 4 (repetitions), repertoires and values
//! full of service characters.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use tradehub::edifact::writer::{segments, write_interchange};
use tradehub::edifact::{self, Charset, Element, Interchange, Message, Segment, Separators};

const SEPARATOR_POOL: &[u8] = b"+:*'?!~|^#@\"%&;<>=/";

fn separators(v4: bool) -> impl Strategy<Value = Separators> {
    Just(SEPARATOR_POOL.to_vec())
        .prop_shuffle()
        .prop_map(move |pool| Separators {
            component: pool[0],
            element: pool[1],
            decimal: b'.',
            release: Some(pool[2]),
            repetition: v4.then_some(pool[3]),
            terminator: pool[4],
        })
}

fn repertoire(charset: Charset) -> Vec<char> {
    let mut chars: Vec<char> = (0u8..=0x7F)
        .filter(|b| charset.repertoire()[*b as usize])
        .map(char::from)
        .collect();
    match charset {
        Charset::Iso8859(1) => chars.extend(['é', 'ß', 'Ü', '¤']),
        Charset::Utf8 => chars.extend(['기', '계', 'Ł', '€', '😀']),
        _ => {}
    }
    chars
}

fn value(charset: Charset) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(repertoire(charset)), 0..8)
        .prop_map(|c| c.into_iter().collect())
}

fn element(charset: Charset, v4: bool) -> impl Strategy<Value = Element> {
    let comps = prop::collection::vec(value(charset), 1..4);
    let reps = if v4 { 1..3usize } else { 1..2usize };
    prop::collection::vec(comps, reps).prop_map(Element::repeated)
}

fn data_segment(charset: Charset, v4: bool) -> impl Strategy<Value = Segment> {
    let tag = prop::sample::select(vec!["BGM", "DTM", "NAD", "FTX", "MOA", "CST", "LOC", "RFF"]);
    (tag, prop::collection::vec(element(charset, v4), 0..5)).prop_map(|(t, e)| Segment::new(t, e))
}

fn interchange() -> impl Strategy<Value = (Interchange, Separators)> {
    let charset = prop::sample::select(vec![
        Charset::LevelA,
        Charset::LevelB,
        Charset::Iso8859(1),
        Charset::Utf8,
    ]);
    (charset, any::<bool>())
        .prop_flat_map(|(charset, v4)| {
            let messages =
                prop::collection::vec(prop::collection::vec(data_segment(charset, v4), 0..6), 1..4);
            (Just(charset), Just(v4), separators(v4), messages)
        })
        .prop_map(|(charset, v4, seps, bodies)| {
            let version = if v4 { "4" } else { "3" };
            let id = charset.syntax_identifier();
            let mut ic = Interchange {
                syntax_identifier: id.into(),
                syntax_version: version.into(),
                header: Some(Segment::new(
                    "UNB",
                    vec![
                        Element::composite([id, version]),
                        Element::composite(["SENDER", "ZZZ"]),
                        Element::composite(["RECIPIENT", "ZZZ"]),
                        Element::composite(["261124", "1030"]),
                        Element::simple("REF1"),
                    ],
                )),
                ..Interchange::default()
            };
            for (i, body) in bodies.into_iter().enumerate() {
                let reference = format!("M{}", i + 1);
                let mut segs = vec![Segment::new(
                    "UNH",
                    vec![
                        Element::simple(&reference),
                        Element::composite(["CUSDEC", "D", "96B", "UN"]),
                    ],
                )];
                segs.extend(body);
                segs.push(Segment::new(
                    "UNT",
                    vec![
                        Element::simple((segs.len() + 1).to_string()),
                        Element::simple(&reference),
                    ],
                ));
                ic.messages.push(Message {
                    reference,
                    segments: segs,
                    ..Message::default()
                });
            }
            let count = ic.messages.len().to_string();
            ic.trailer = Some(Segment::new(
                "UNZ",
                vec![Element::simple(count), Element::simple("REF1")],
            ));
            (ic, seps)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_of_write_is_identity((ic, seps) in interchange()) {
        let bytes = write_interchange(&ic, &seps, true).unwrap();
        let parsed = edifact::parse(&bytes);
        prop_assert!(parsed.is_valid(), "{:#?}\n{}", parsed.issues, String::from_utf8_lossy(&bytes));
        let before: Vec<&Segment> = segments(&ic).collect();
        let after: Vec<&Segment> = segments(&parsed.interchange).collect();
        prop_assert_eq!(before, after);
        prop_assert_eq!(parsed.interchange.separators, seps);
        // And writing the parsed tree again gives the same bytes.
        let again = write_interchange(&parsed.interchange, &seps, true).unwrap();
        prop_assert_eq!(again, bytes);
    }
}
