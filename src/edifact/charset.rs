//! Character repertoires of UN/EDIFACT syntax identifiers (data element 0001)
//! and the decoding of values to UTF-8.

use std::borrow::Cow;

use serde::Serialize;

/// The character repertoire named by the syntax identifier in UNB S001.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Charset {
    /// UNOA (and IATA's `IATA`): upper-case letters, digits, space and
    /// `.,-()/='+:?!"%&*;<>`.
    LevelA,
    /// UNOB (and `IATB`): level A plus lower-case letters.
    LevelB,
    /// UNOC..UNOL: one part of ISO/IEC 8859.
    Iso8859(u8),
    /// UNOW, UNOY: ISO/IEC 10646 as UTF-8.
    Utf8,
}

impl Charset {
    /// The repertoire named by a syntax identifier, or `None` when tradehub
    /// does not support it (UNOX's ISO 2022 code extension, unknown ids).
    pub fn from_syntax_identifier(id: &str) -> Option<Charset> {
        Some(match id {
            "UNOA" | "IATA" => Charset::LevelA,
            "UNOB" | "IATB" => Charset::LevelB,
            "UNOC" => Charset::Iso8859(1),
            "UNOD" => Charset::Iso8859(2),
            "UNOE" => Charset::Iso8859(5),
            "UNOF" => Charset::Iso8859(7),
            "UNOG" => Charset::Iso8859(3),
            "UNOH" => Charset::Iso8859(4),
            "UNOI" => Charset::Iso8859(6),
            "UNOJ" => Charset::Iso8859(8),
            "UNOK" => Charset::Iso8859(9),
            "UNOL" => Charset::Iso8859(15),
            "UNOW" | "UNOY" => Charset::Utf8,
            _ => return None,
        })
    }

    /// The UN syntax identifier that names this repertoire.
    pub fn syntax_identifier(self) -> &'static str {
        match self {
            Charset::LevelA => "UNOA",
            Charset::LevelB => "UNOB",
            Charset::Iso8859(1) => "UNOC",
            Charset::Iso8859(2) => "UNOD",
            Charset::Iso8859(5) => "UNOE",
            Charset::Iso8859(7) => "UNOF",
            Charset::Iso8859(3) => "UNOG",
            Charset::Iso8859(4) => "UNOH",
            Charset::Iso8859(6) => "UNOI",
            Charset::Iso8859(8) => "UNOJ",
            Charset::Iso8859(9) => "UNOK",
            Charset::Iso8859(_) => "UNOL",
            Charset::Utf8 => "UNOW",
        }
    }

    fn encoding(self) -> Option<&'static encoding_rs::Encoding> {
        // encoding_rs follows the WHATWG Encoding Standard, whose iso-8859-N
        // tables are the ISO ones for these parts. Part 1 is decoded by hand
        // (WHATWG maps it to windows-1252); part 9 via windows-1254, which
        // differs only in 0x80..0x9F, bytes the repertoire rejects anyway.
        match self {
            Charset::Iso8859(2) => Some(encoding_rs::ISO_8859_2),
            Charset::Iso8859(3) => Some(encoding_rs::ISO_8859_3),
            Charset::Iso8859(4) => Some(encoding_rs::ISO_8859_4),
            Charset::Iso8859(5) => Some(encoding_rs::ISO_8859_5),
            Charset::Iso8859(6) => Some(encoding_rs::ISO_8859_6),
            Charset::Iso8859(7) => Some(encoding_rs::ISO_8859_7),
            Charset::Iso8859(8) => Some(encoding_rs::ISO_8859_8),
            Charset::Iso8859(9) => Some(encoding_rs::WINDOWS_1254),
            Charset::Iso8859(15) => Some(encoding_rs::ISO_8859_15),
            _ => None,
        }
    }

    /// Which bytes may appear in data (outside service characters). For
    /// UTF-8 every byte >= 0x80 is allowed here; the sequences themselves are
    /// checked separately.
    pub fn repertoire(self) -> [bool; 256] {
        let mut table = [false; 256];
        for (b, allowed) in table.iter_mut().enumerate() {
            let byte = b as u8;
            *allowed = match self {
                Charset::LevelA => is_level_a(byte),
                Charset::LevelB => is_level_a(byte) || byte.is_ascii_lowercase(),
                Charset::Iso8859(1) | Charset::Utf8 => {
                    (0x20..0x7F).contains(&byte)
                        || (byte >= 0xA0 || self == Charset::Utf8 && byte >= 0x80)
                }
                Charset::Iso8859(_) => {
                    if byte < 0x80 {
                        (0x20..0x7F).contains(&byte)
                    } else if byte < 0xA0 {
                        false
                    } else {
                        let one = [byte];
                        self.encoding().is_some_and(|enc| {
                            let (text, had_errors) = enc.decode_without_bom_handling(&one);
                            !had_errors && !text.contains('\u{FFFD}')
                        })
                    }
                }
            };
        }
        table
    }

    /// Decodes a value (release characters already removed) to UTF-8. Bytes
    /// that are not in the repertoire decode to U+FFFD.
    pub fn decode<'a>(self, bytes: &'a [u8]) -> Cow<'a, str> {
        if bytes.is_ascii() {
            // ASCII is valid UTF-8 and means the same in every repertoire here.
            return Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default());
        }
        match self {
            Charset::LevelA | Charset::LevelB => Cow::Owned(
                bytes
                    .iter()
                    .map(|&b| if b < 0x80 { b as char } else { '\u{FFFD}' })
                    .collect(),
            ),
            Charset::Iso8859(1) => Cow::Owned(bytes.iter().map(|&b| b as char).collect()),
            Charset::Utf8 => String::from_utf8_lossy(bytes),
            Charset::Iso8859(_) => match self.encoding() {
                Some(enc) => enc.decode_without_bom_handling(bytes).0,
                None => Cow::Owned(bytes.iter().map(|&b| b as char).collect()),
            },
        }
    }

    /// Encodes a UTF-8 value into this repertoire, appending to `out`.
    /// Returns the first character that cannot be represented.
    pub fn encode(self, text: &str, out: &mut Vec<u8>) -> Result<(), char> {
        let table = || self.repertoire();
        match self {
            Charset::Utf8 => {
                if let Some(c) = text.chars().find(|c| c.is_control()) {
                    return Err(c);
                }
                out.extend_from_slice(text.as_bytes());
                Ok(())
            }
            Charset::LevelA | Charset::LevelB => {
                let rep = table();
                for c in text.chars() {
                    let ok = c.is_ascii() && rep.get(c as usize).copied().unwrap_or(false);
                    if !ok {
                        return Err(c);
                    }
                    out.push(c as u8);
                }
                Ok(())
            }
            Charset::Iso8859(1) => {
                for c in text.chars() {
                    let code = c as u32;
                    if !((0x20..0x7F).contains(&code) || (0xA0..=0xFF).contains(&code)) {
                        return Err(c);
                    }
                    out.push(code as u8);
                }
                Ok(())
            }
            Charset::Iso8859(_) => {
                let Some(enc) = self.encoding() else {
                    return text.chars().next().map_or(Ok(()), Err);
                };
                let rep = table();
                let mut buf = [0u8; 4];
                for c in text.chars() {
                    let (bytes, _, had_errors) = enc.encode(c.encode_utf8(&mut buf));
                    match bytes.as_ref() {
                        [b] if !had_errors && rep.get(*b as usize).copied().unwrap_or(false) => {
                            out.push(*b)
                        }
                        _ => return Err(c),
                    }
                }
                Ok(())
            }
        }
    }
}

fn is_level_a(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b" .,-()/='+:?!\"%&*;<>".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_a_repertoire() {
        let rep = Charset::LevelA.repertoire();
        for b in b"AZ09 .,-()/='+:?!\"%&*;<>" {
            assert!(rep[*b as usize], "{}", *b as char);
        }
        for b in b"az#$@[]\\^_`{|}~\t\n\r" {
            assert!(!rep[*b as usize], "{}", *b as char);
        }
        assert!(!rep[0xC4]);
        assert!(Charset::LevelB.repertoire()[b'q' as usize]);
    }

    #[test]
    fn iso8859_parts_decode_and_encode() {
        // ISO 8859-2 0xA3 is L with stroke, 8859-5 0xB0 Cyrillic capital A,
        // 8859-15 0xA4 the euro sign, 8859-9 0xDD capital I with dot above.
        assert_eq!(Charset::Iso8859(2).decode(&[0xA3]), "Ł");
        assert_eq!(Charset::Iso8859(5).decode(&[0xB0]), "А");
        assert_eq!(Charset::Iso8859(15).decode(&[0xA4]), "€");
        assert_eq!(Charset::Iso8859(1).decode(&[0xA4]), "¤");
        assert_eq!(Charset::Iso8859(9).decode(&[0xDD]), "İ");
        let mut out = Vec::new();
        Charset::Iso8859(15).encode("€5", &mut out).unwrap();
        assert_eq!(out, [0xA4, b'5']);
        assert_eq!(Charset::Iso8859(1).encode("€", &mut Vec::new()), Err('€'));
        assert_eq!(Charset::LevelA.encode("a", &mut Vec::new()), Err('a'));
    }

    #[test]
    fn holes_and_c1_controls_are_outside_the_repertoire() {
        // ISO 8859-3 leaves 0xA5 unassigned; C1 controls are never data.
        assert!(!Charset::Iso8859(3).repertoire()[0xA5]);
        assert!(!Charset::Iso8859(1).repertoire()[0x85]);
        assert!(Charset::Iso8859(1).repertoire()[0xDF]);
        assert!(Charset::Utf8.repertoire()[0xC3]);
        assert!(!Charset::Utf8.repertoire()[0x0A]);
    }

    #[test]
    fn every_syntax_identifier_round_trips() {
        for id in [
            "UNOA", "UNOB", "UNOC", "UNOD", "UNOE", "UNOF", "UNOG", "UNOH", "UNOI", "UNOJ", "UNOK",
            "UNOL", "UNOW",
        ] {
            let cs = Charset::from_syntax_identifier(id).unwrap();
            assert_eq!(cs.syntax_identifier(), id);
        }
        assert_eq!(Charset::from_syntax_identifier("UNOX"), None);
        assert_eq!(Charset::from_syntax_identifier("ANSI"), None);
    }
}
