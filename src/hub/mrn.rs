//! Movement reference numbers: the number customs gives a declaration it
//! accepts, quoted by the trader and every agency from then on.
//!
//! Modelled on the EU's MRN (an..18): two digits of the year of acceptance,
//! the ISO 3166 alpha-2 code of the country whose customs runs the hub,
//! thirteen characters `0-9A-Z` that make it unique, and a check character
//! computed as ISO 6346 computes a container number's (each character's
//! value times 2 to the power of its position, the sum modulo 11, a
//! remainder of 10 written 0). The thirteen characters are the second of
//! the year (25 bits) followed by 42 bits drawn from the declaration's own
//! id, in base 36; the store refuses a second live declaration with the
//! same MRN, and intake then draws again.

use sha2::{Digest, Sha256};

use crate::timestamp::Timestamp;

/// Characters of an MRN.
pub const LENGTH: usize = 18;

/// The MRN for the declaration `id` accepted at `now` by the customs of
/// `country` (two letters, upper case).
pub fn issue(country: &str, id: &str, now: Timestamp) -> String {
    let start = Timestamp {
        year: now.year,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };
    let second = u128::try_from(now.unix() - start.unix()).unwrap_or(0) & ((1 << 25) - 1);
    let digest = Sha256::digest(id.as_bytes());
    let drawn = digest
        .iter()
        .take(6)
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
        & ((1 << 42) - 1);
    let mut unique = (second << 42) | drawn;
    let mut tail = [b'0'; 13];
    for slot in tail.iter_mut().rev() {
        let digit = (unique % 36) as u8;
        *slot = if digit < 10 {
            b'0' + digit
        } else {
            b'A' + digit - 10
        };
        unique /= 36;
    }
    let mut mrn = format!("{:02}", now.year.rem_euclid(100));
    mrn.extend(country.chars().take(2).map(|c| c.to_ascii_uppercase()));
    mrn.push_str(std::str::from_utf8(&tail).unwrap_or("0000000000000"));
    if let Some(check) = check_character(&mrn) {
        mrn.push(check);
    }
    mrn
}

/// The ISO 6346 value of a character: digits as themselves, letters from
/// 10 on skipping the multiples of 11.
fn value(c: char) -> Option<u32> {
    match c {
        '0'..='9' => c.to_digit(10),
        'A'..='Z' => {
            let mut v = 10;
            for _ in 'A'..c {
                v += 1;
                if v % 11 == 0 {
                    v += 1;
                }
            }
            Some(v)
        }
        _ => None,
    }
}

/// The check character of the characters before it.
pub fn check_character(body: &str) -> Option<char> {
    let mut sum: u64 = 0;
    for (position, c) in body.chars().enumerate() {
        let weight = 1u64.checked_shl(u32::try_from(position).ok()?)?;
        sum += u64::from(value(c)?) * weight;
    }
    char::from_digit(u32::try_from(sum % 11 % 10).ok()?, 10)
}

/// True when `mrn` has the shape above and its check character holds.
pub fn is_valid(mrn: &str) -> bool {
    mrn.len() == LENGTH
        && mrn.is_char_boundary(LENGTH - 1)
        && mrn.bytes().take(2).all(|b| b.is_ascii_digit())
        && mrn.bytes().skip(2).take(2).all(|b| b.is_ascii_uppercase())
        && mrn
            .bytes()
            .skip(4)
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        && mrn
            .get(..LENGTH - 1)
            .and_then(check_character)
            .zip(mrn.chars().last())
            .is_some_and(|(want, got)| want == got)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ISO 6346's own example: container CSQU 305438, check digit 3; and
    /// the letter values of its table.
    #[test]
    fn the_check_character_is_iso_6346s() {
        assert_eq!(check_character("CSQU305438"), Some('3'));
        // The example in docs/formats.md.
        assert!(is_valid("26KR0FQ3B5T2L8W1X0"));
        let table: Vec<u32> = ('A'..='Z').filter_map(value).collect();
        assert_eq!(
            table,
            [
                10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
                34, 35, 36, 37, 38
            ]
        );
    }

    #[test]
    fn mrns_have_their_shape_and_differ_by_declaration() {
        let now = Timestamp::from_unix(1_795_000_000);
        let a = issue("kr", "0194a-first", now);
        let b = issue("KR", "0194a-second", now);
        assert_eq!(a.len(), LENGTH);
        assert!(a.starts_with(&format!("{:02}KR", now.year % 100)), "{a}");
        assert!(is_valid(&a) && is_valid(&b), "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(
            a,
            issue("KR", "0194a-first", now),
            "the same inputs, the same MRN"
        );
        // One character changed breaks the check.
        let mut broken = a.clone().into_bytes();
        broken[10] = if broken[10] == b'7' { b'8' } else { b'7' };
        assert!(!is_valid(&String::from_utf8(broken).unwrap_or_default()));
    }
}
