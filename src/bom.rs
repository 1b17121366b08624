//! Unicode byte order marks: the encoding the first bytes of a document
//! name. Shared by the readers that must tell UTF-16 and UTF-32 input from
//! what they take (the EDIFACT lexer, the XML reader, and the choice
//! between the two).

/// A byte order mark and the encoding it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteOrderMark {
    /// The mark's bytes.
    pub bytes: &'static [u8],
    /// The encoding with its byte order: `UTF-8`, `UTF-16LE`, `UTF-16BE`,
    /// `UTF-32LE`, `UTF-32BE`.
    pub encoding: &'static str,
    /// Bytes per code unit: 1, 2 or 4.
    pub unit: usize,
    pub big_endian: bool,
}

impl ByteOrderMark {
    /// UTF-16 or UTF-32: more than one byte a character.
    pub fn is_wide(&self) -> bool {
        self.unit > 1
    }

    /// The encoding without its byte order (`UTF-16`, `UTF-32`, `UTF-8`).
    pub fn family(&self) -> &'static str {
        match self.unit {
            4 => "UTF-32",
            2 => "UTF-16",
            _ => "UTF-8",
        }
    }
}

/// The marks, UTF-32LE's before UTF-16LE's, which begins it.
const MARKS: [ByteOrderMark; 5] = [
    mark(&[0xFF, 0xFE, 0x00, 0x00], "UTF-32LE", 4, false),
    mark(&[0x00, 0x00, 0xFE, 0xFF], "UTF-32BE", 4, true),
    mark(&[0xFF, 0xFE], "UTF-16LE", 2, false),
    mark(&[0xFE, 0xFF], "UTF-16BE", 2, true),
    mark(&[0xEF, 0xBB, 0xBF], "UTF-8", 1, true),
];

const fn mark(
    bytes: &'static [u8],
    encoding: &'static str,
    unit: usize,
    big_endian: bool,
) -> ByteOrderMark {
    ByteOrderMark {
        bytes,
        encoding,
        unit,
        big_endian,
    }
}

/// The byte order mark `bytes` start with, if any.
pub fn byte_order_mark(bytes: &[u8]) -> Option<ByteOrderMark> {
    MARKS.into_iter().find(|m| bytes.starts_with(m.bytes))
}

/// The encoding family of an XML document in UTF-16 or UTF-32 without a
/// byte order mark, told by the NUL bytes around its first `<` (XML 1.0,
/// appendix F): its ASCII text is valid UTF-8 byte for byte, so a UTF-8
/// check lets it through.
pub fn unmarked_wide_xml(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0, 0, 0, b'<', ..] | [b'<', 0, 0, 0, ..] => Some("UTF-32"),
        [0, b'<', ..] | [b'<', 0, ..] => Some("UTF-16"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_told_apart() {
        let name = |b: &[u8]| byte_order_mark(b).map(|m| m.encoding);
        assert_eq!(name(&[0xFF, 0xFE, 0, 0, b'<', 0, 0, 0]), Some("UTF-32LE"));
        assert_eq!(name(&[0xFF, 0xFE, b'<', 0]), Some("UTF-16LE"));
        assert_eq!(name(&[0, 0, 0xFE, 0xFF]), Some("UTF-32BE"));
        assert_eq!(name(&[0xFE, 0xFF, 0, b'<']), Some("UTF-16BE"));
        assert_eq!(name(&[0xEF, 0xBB, 0xBF, b'<']), Some("UTF-8"));
        assert_eq!(name(b"UNA:+.? '"), None);
        assert!(byte_order_mark(&[0xFE, 0xFF]).is_some_and(|m| m.is_wide()));
        assert!(byte_order_mark(&[0xEF, 0xBB, 0xBF]).is_some_and(|m| !m.is_wide()));
    }
}
