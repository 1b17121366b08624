//! Service characters: the UNA service string advice and the defaults of
//! ISO 9735 when it is absent.

use serde::{Serialize, Serializer};

/// The six service characters of an interchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Separators {
    /// Component data element separator (UNA1), default `:`.
    pub component: u8,
    /// Data element separator (UNA2), default `+`.
    pub element: u8,
    /// Decimal mark (UNA3), `.` or `,`.
    pub decimal: u8,
    /// Release character (UNA4), default `?`; `None` when advised as space.
    pub release: Option<u8>,
    /// Repetition separator (UNA5, syntax version 4), default `*`; `None`
    /// before version 4 or when advised as space.
    pub repetition: Option<u8>,
    /// Segment terminator (UNA6), default `'`.
    pub terminator: u8,
}

impl Separators {
    /// Level A defaults for syntax versions 1 to 3: `:+.? '`.
    pub const LEVEL_A: Separators = Separators {
        component: b':',
        element: b'+',
        decimal: b'.',
        release: Some(b'?'),
        repetition: None,
        terminator: b'\'',
    };

    /// Level A defaults for syntax version 4: `:+.?*'`.
    pub const LEVEL_A_V4: Separators = Separators {
        repetition: Some(b'*'),
        ..Self::LEVEL_A
    };

    /// Level B defaults (ISO 9735 for UNOB without UNA): information separators
    /// IS1 (0x1F) between components, IS3 (0x1D) between elements, IS4 (0x1C)
    /// after segments, no release character; IS2 (0x1E) repeats in version 4.
    pub const LEVEL_B: Separators = Separators {
        component: 0x1F,
        element: 0x1D,
        decimal: b'.',
        release: None,
        repetition: None,
        terminator: 0x1C,
    };

    /// The UNA segment that advises these separators (9 bytes).
    pub fn una(&self) -> [u8; 9] {
        [
            b'U',
            b'N',
            b'A',
            self.component,
            self.element,
            self.decimal,
            self.release.unwrap_or(b' '),
            self.repetition.unwrap_or(b' '),
            self.terminator,
        ]
    }

    /// The service characters in use (release and repetition only if set).
    pub fn service_chars(&self) -> impl Iterator<Item = u8> {
        [
            Some(self.component),
            Some(self.element),
            self.release,
            self.repetition,
            Some(self.terminator),
        ]
        .into_iter()
        .flatten()
    }

    /// True when `b` is one of the separators or the release character.
    pub fn is_service_char(&self, b: u8) -> bool {
        self.service_chars().any(|c| c == b)
    }

    /// Parses the 6 characters that follow `UNA`. Returns the separators
    /// (always usable, so that parsing can go on) and the problems found:
    /// each is the 0-based index of the offending character (0..6) and why.
    pub fn from_una(chars: [u8; 6]) -> (Separators, Vec<(usize, UnaProblem)>) {
        let [component, element, decimal, release, repetition, terminator] = chars;
        let seps = Separators {
            component,
            element,
            decimal,
            release: (release != b' ').then_some(release),
            repetition: (repetition != b' ').then_some(repetition),
            terminator,
        };
        let mut problems = Vec::new();
        for (i, &c) in chars.iter().enumerate() {
            let may_be_space = i == 3 || i == 4;
            if c == b' ' && may_be_space {
                continue;
            }
            if i == 2 {
                if c != b'.' && c != b',' {
                    problems.push((i, UnaProblem::DecimalMark));
                }
                continue;
            }
            if c.is_ascii_alphanumeric()
                || c == b' '
                || c.is_ascii_control() && !is_level_b_separator(c)
            {
                problems.push((i, UnaProblem::InvalidServiceCharacter));
                continue;
            }
            let clash = chars
                .iter()
                .enumerate()
                .any(|(j, &d)| j != i && j != 2 && d == c && !(d == b' ' && (j == 3 || j == 4)));
            if clash {
                problems.push((i, UnaProblem::Duplicate));
            }
        }
        (seps, problems)
    }
}

fn is_level_b_separator(c: u8) -> bool {
    (0x1C..=0x1F).contains(&c)
}

/// Why a UNA character cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaProblem {
    /// A letter, digit, space or control character advised as a separator.
    InvalidServiceCharacter,
    /// The same character advised for two purposes.
    Duplicate,
    /// The decimal mark is neither `.` nor `,`.
    DecimalMark,
}

impl Default for Separators {
    fn default() -> Self {
        Separators::LEVEL_A
    }
}

impl Serialize for Separators {
    /// Serialised as the six UNA characters, e.g. `":+.? '"`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let una = self.una();
        let text: String = una
            .get(3..)
            .unwrap_or(&[])
            .iter()
            .map(|&b| b as char)
            .collect();
        s.serialize_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn una_round_trip() {
        let (s, p) = Separators::from_una(*b":+.?*'");
        assert!(p.is_empty());
        assert_eq!(s, Separators::LEVEL_A_V4);
        assert_eq!(&s.una(), b"UNA:+.?*'");
        let (s, p) = Separators::from_una(*b":+,? '");
        assert!(p.is_empty());
        assert_eq!(s.decimal, b',');
        assert_eq!(s.repetition, None);
    }

    #[test]
    fn una_problems_are_located() {
        let (_, p) = Separators::from_una(*b":+\\*'\n");
        assert!(p.contains(&(2, UnaProblem::DecimalMark)));
        assert!(p.contains(&(5, UnaProblem::InvalidServiceCharacter)));
        let (_, p) = Separators::from_una(*b"++.? '");
        assert_eq!(
            p,
            vec![(0, UnaProblem::Duplicate), (1, UnaProblem::Duplicate)]
        );
        let (_, p) = Separators::from_una(*b"A+.? '");
        assert_eq!(p, vec![(0, UnaProblem::InvalidServiceCharacter)]);
    }
}
