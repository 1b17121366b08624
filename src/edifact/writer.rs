//! The writer: the exact inverse of the lexer. Segments are written with any
//! separators and repertoire, service characters in values released.

use super::charset::Charset;
use super::interchange::Interchange;
use super::segment::Segment;
use super::separators::Separators;

/// Why a segment cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    #[error("segment {position} ({tag}): character {ch:?} cannot be written in {charset}")]
    Unencodable {
        position: usize,
        tag: String,
        ch: char,
        charset: &'static str,
    },
    #[error(
        "segment {position} ({tag}): value contains service character {ch:?} and there is no release character"
    )]
    NeedsRelease {
        position: usize,
        tag: String,
        ch: char,
    },
    #[error(
        "segment {position} ({tag}): element repeats but there is no repetition separator (syntax version 4 only)"
    )]
    NoRepetitionSeparator { position: usize, tag: String },
    #[error("segment {position}: tag {tag:?} is not three upper-case letters or digits")]
    BadTag { position: usize, tag: String },
}

/// Writes segments to `out`. `position` in errors is 1-based in `segments`.
pub fn write_segments<'a, I>(
    segments: I,
    seps: &Separators,
    charset: Charset,
    out: &mut Vec<u8>,
) -> Result<(), WriteError>
where
    I: IntoIterator<Item = &'a Segment>,
{
    let mut value = Vec::new();
    for (i, seg) in segments.into_iter().enumerate() {
        let position = i + 1;
        let tag_ok = seg.tag.len() == 3
            && seg
                .tag
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !tag_ok {
            return Err(WriteError::BadTag {
                position,
                tag: seg.tag.clone(),
            });
        }
        out.extend_from_slice(seg.tag.as_bytes());
        for element in &seg.elements {
            out.push(seps.element);
            let reps = element.repetitions();
            if reps.len() > 1 && seps.repetition.is_none() {
                return Err(WriteError::NoRepetitionSeparator {
                    position,
                    tag: seg.tag.clone(),
                });
            }
            for (r, comps) in reps.iter().enumerate() {
                if r > 0
                    && let Some(rep) = seps.repetition
                {
                    out.push(rep);
                }
                for (c, text) in comps.iter().enumerate() {
                    if c > 0 {
                        out.push(seps.component);
                    }
                    value.clear();
                    charset
                        .encode(text, &mut value)
                        .map_err(|ch| WriteError::Unencodable {
                            position,
                            tag: seg.tag.clone(),
                            ch,
                            charset: charset.syntax_identifier(),
                        })?;
                    for &b in &value {
                        if seps.is_service_char(b) {
                            match seps.release {
                                Some(rel) => out.push(rel),
                                None => {
                                    return Err(WriteError::NeedsRelease {
                                        position,
                                        tag: seg.tag.clone(),
                                        ch: b as char,
                                    });
                                }
                            }
                        }
                        out.push(b);
                    }
                }
            }
        }
        out.push(seps.terminator);
    }
    Ok(())
}

/// All segments of an interchange in order: UNB, groups with their
/// messages, messages outside groups, UNZ.
pub fn segments(interchange: &Interchange) -> impl Iterator<Item = &Segment> {
    let groups = interchange.groups.iter().flat_map(|g| {
        std::iter::once(&g.header)
            .chain(g.messages.iter().flat_map(|m| m.segments.iter()))
            .chain(g.trailer.iter())
    });
    interchange
        .header
        .iter()
        .chain(groups)
        .chain(interchange.messages.iter().flat_map(|m| m.segments.iter()))
        .chain(interchange.trailer.iter())
}

/// Writes a whole interchange. A UNA is written when the interchange had
/// one, when `una` is set, or when the separators differ from the defaults
/// of its syntax version.
pub fn write_interchange(
    interchange: &Interchange,
    seps: &Separators,
    una: bool,
) -> Result<Vec<u8>, WriteError> {
    let charset = Charset::from_syntax_identifier(&interchange.syntax_identifier)
        .unwrap_or(Charset::Iso8859(1));
    let defaults = if interchange.syntax_version == "4" {
        Separators::LEVEL_A_V4
    } else {
        Separators::LEVEL_A
    };
    // Before syntax version 4 there is no repetition separator: UNA5 is
    // reserved (a space), and the character is data, not released.
    let v4 = interchange.syntax_version == "4";
    let seps = &Separators {
        repetition: seps.repetition.filter(|_| v4),
        ..*seps
    };
    let mut out = Vec::new();
    if una || interchange.una.is_some() || *seps != defaults && *seps != Separators::LEVEL_B {
        out.extend_from_slice(&seps.una());
    }
    write_segments(segments(interchange), seps, charset, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edifact::Element;

    /// Before syntax version 4 a repetition separator asked for is not
    /// used: UNA5 is written as a space and `*` is data, not released.
    #[test]
    fn no_repetition_separator_before_version_4() {
        let text = b"UNA:+.? 'UNB+UNOC:3+A+B+261124:1030+R1'UNH+1+CUSDEC:D:96B:UN'FTX+AAA+++5*3'UNT+3+1'UNZ+1+R1'";
        let parsed = crate::edifact::Parser::new(
            &text[..],
            crate::edifact::ParseOptions {
                keep_messages: true,
                decode_messages: true,
                ..crate::edifact::ParseOptions::default()
            },
        )
        .run(|_, _| {})
        .ok();
        let Some(parsed) = parsed else {
            panic!("parses");
        };
        let written = write_interchange(&parsed.interchange, &Separators::LEVEL_A_V4, true);
        let written = String::from_utf8(written.unwrap_or_default()).unwrap_or_default();
        assert!(written.starts_with("UNA:+.? '"), "{written}");
        assert!(written.contains("FTX+AAA+++5*3'"), "{written}");
    }

    #[test]
    fn releases_service_characters() {
        let seg = Segment::new(
            "FTX",
            vec![
                Element::simple("AAA"),
                Element::composite(["it's 5+3?", "a:b"]),
            ],
        );
        let mut out = Vec::new();
        write_segments([&seg], &Separators::LEVEL_A, Charset::LevelB, &mut out).unwrap();
        assert_eq!(out, b"FTX+AAA+it?'s 5?+3??:a?:b'");
    }

    #[test]
    fn refuses_what_cannot_be_written() {
        let seg = Segment::new("FTX", vec![Element::simple("é")]);
        let err = write_segments(
            [&seg],
            &Separators::LEVEL_A,
            Charset::LevelA,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            WriteError::Unencodable {
                ch: 'é',
                position: 1,
                ..
            }
        ));
        let rep = Segment::new(
            "NAD",
            vec![Element::repeated(vec![vec!["A".into()], vec!["B".into()]])],
        );
        let err = write_segments(
            [&rep],
            &Separators::LEVEL_A,
            Charset::LevelA,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(err, WriteError::NoRepetitionSeparator { .. }));
        let mut out = Vec::new();
        write_segments([&rep], &Separators::LEVEL_A_V4, Charset::LevelA, &mut out).unwrap();
        assert_eq!(out, b"NAD+A*B'");
    }
}
