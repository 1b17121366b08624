//! Dates and times with their UN/EDIFACT 2379 format: kept as ISO 8601 text
//! in the canonical model, converted from and back to the EDIFACT value.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A date or date-time: ISO 8601 text (`2026-11-24`, `2026-11-24T10:30`,
/// `2026-11-24T10:30:15`, optionally with `+09:00`) and the 2379 format code
/// it was given in, so that it can be written back the same way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Moment {
    pub iso: String,
    /// UN/EDIFACT 2379 date or time or period format code, e.g. `102`.
    pub format: String,
}

/// Why a date cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("format {0:?} (UN/EDIFACT 2379) is not supported")]
    UnsupportedFormat(String),
    #[error("{value:?} is not a valid value of format {format}")]
    Invalid { value: String, format: String },
}

/// YY below this is 20YY, otherwise 19YY (formats 101 and 201).
const CENTURY_PIVOT: u32 = 50;

impl Moment {
    /// Reads an EDIFACT value in the given 2379 format. Supported: 101
    /// YYMMDD, 102 CCYYMMDD, 201 YYMMDDHHMM, 203 CCYYMMDDHHMM, 204
    /// CCYYMMDDHHMMSS, 303 CCYYMMDDHHMMZZZ (ZZZ = time zone, e.g. `+09`).
    pub fn from_edifact(value: &str, format: &str) -> Result<Moment, DateError> {
        Moment::read(value, format, None)
    }

    /// [`from_edifact`](Self::from_edifact) for a date that cannot lie
    /// after `today` (year, month, day), such as a birth date: a two-digit
    /// year (formats 101, 201) is the latest such year, 19YY when 20YY
    /// would be after `today` (`450312` is 1945, whatever the pivot says).
    pub fn from_edifact_past(
        value: &str,
        format: &str,
        today: (u32, u32, u32),
    ) -> Result<Moment, DateError> {
        Moment::read(value, format, Some(today))
    }

    fn read(
        value: &str,
        format: &str,
        not_after: Option<(u32, u32, u32)>,
    ) -> Result<Moment, DateError> {
        let invalid = || DateError::Invalid {
            value: value.to_owned(),
            format: format.to_owned(),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (date_part, rest, century) = match (format, value.len()) {
            ("101", 6) | ("201", 10) => (
                value.get(..6).ok_or_else(invalid)?,
                value.get(6..).unwrap_or(""),
                false,
            ),
            ("102", 8) | ("203", 12) | ("204", 14) => (
                value.get(..8).ok_or_else(invalid)?,
                value.get(8..).unwrap_or(""),
                true,
            ),
            ("303", n) if n >= 13 => (
                value.get(..8).ok_or_else(invalid)?,
                value.get(8..).unwrap_or(""),
                true,
            ),
            ("101" | "102" | "201" | "203" | "204" | "303", _) => return Err(invalid()),
            _ => return Err(DateError::UnsupportedFormat(format.to_owned())),
        };
        if !digits(date_part) {
            return Err(invalid());
        }
        let num = |s: Option<&str>| s.and_then(|t| t.parse::<u32>().ok()).ok_or_else(invalid);
        let (year, month, day) = if century {
            (
                num(date_part.get(..4))?,
                num(date_part.get(4..6))?,
                num(date_part.get(6..8))?,
            )
        } else {
            let yy = num(date_part.get(..2))?;
            let (month, day) = (num(date_part.get(2..4))?, num(date_part.get(4..6))?);
            let year = match not_after {
                Some(today) if (2000 + yy, month, day) > today => 1900 + yy,
                Some(_) => 2000 + yy,
                None if yy < CENTURY_PIVOT => 2000 + yy,
                None => 1900 + yy,
            };
            (year, month, day)
        };
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(invalid());
        }
        let date = format!("{year:04}-{month:02}-{day:02}");
        let iso = match format {
            "101" | "102" => date,
            "201" | "203" => {
                let (h, m) = (num(rest.get(..2))?, num(rest.get(2..4))?);
                check_time(h, m, 0).ok_or_else(invalid)?;
                format!("{date}T{h:02}:{m:02}")
            }
            "204" => {
                let (h, m, s) = (
                    num(rest.get(..2))?,
                    num(rest.get(2..4))?,
                    num(rest.get(4..6))?,
                );
                check_time(h, m, s).ok_or_else(invalid)?;
                format!("{date}T{h:02}:{m:02}:{s:02}")
            }
            _ => {
                // 303: HHMM then a zone such as +09 or -0530.
                let (h, m) = (num(rest.get(..2))?, num(rest.get(2..4))?);
                check_time(h, m, 0).ok_or_else(invalid)?;
                let zone = rest.get(4..).unwrap_or("");
                let sign = zone
                    .get(..1)
                    .filter(|s| *s == "+" || *s == "-")
                    .ok_or_else(invalid)?;
                let zd = zone.get(1..).unwrap_or("");
                if !digits(zd) || !(zd.len() == 2 || zd.len() == 4) {
                    return Err(invalid());
                }
                let zh = num(zd.get(..2))?;
                let zm = if zd.len() == 4 { num(zd.get(2..4))? } else { 0 };
                if zh > 14 || zm > 59 {
                    return Err(invalid());
                }
                format!("{date}T{h:02}:{m:02}{sign}{zh:02}:{zm:02}")
            }
        };
        Ok(Moment {
            iso,
            format: format.to_owned(),
        })
    }

    /// Writes the moment back in its 2379 format.
    pub fn to_edifact(&self) -> Result<String, DateError> {
        let invalid = || DateError::Invalid {
            value: self.iso.clone(),
            format: self.format.clone(),
        };
        let d = |r: std::ops::Range<usize>| self.iso.get(r).ok_or_else(invalid);
        let date8 = format!("{}{}{}", d(0..4)?, d(5..7)?, d(8..10)?);
        Ok(match self.format.as_str() {
            "102" => date8,
            "101" => date8.get(2..).unwrap_or("").to_owned(),
            "203" => format!("{date8}{}{}", d(11..13)?, d(14..16)?),
            "201" => format!(
                "{}{}{}",
                date8.get(2..).unwrap_or(""),
                d(11..13)?,
                d(14..16)?
            ),
            "204" => format!("{date8}{}{}{}", d(11..13)?, d(14..16)?, d(17..19)?),
            "303" => {
                let zone = self.iso.get(16..).ok_or_else(invalid)?;
                let compact: String = zone.chars().filter(|c| *c != ':').collect();
                let compact = compact
                    .strip_suffix("00")
                    .filter(|z| z.len() == 3)
                    .map(str::to_owned)
                    .unwrap_or(compact);
                format!("{date8}{}{}{compact}", d(11..13)?, d(14..16)?)
            }
            other => return Err(DateError::UnsupportedFormat(other.to_owned())),
        })
    }
}

fn check_time(h: u32, m: u32, s: u32) -> Option<()> {
    (h < 24 && m < 60 && s < 60).then_some(())
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_convert_both_ways() {
        let cases = [
            ("102", "20261124", "2026-11-24"),
            ("101", "261124", "2026-11-24"),
            ("101", "991231", "1999-12-31"),
            ("203", "202611241030", "2026-11-24T10:30"),
            ("201", "2611241030", "2026-11-24T10:30"),
            ("204", "20261124103015", "2026-11-24T10:30:15"),
            ("303", "202611241030+09", "2026-11-24T10:30+09:00"),
            ("303", "202611241030-0530", "2026-11-24T10:30-05:30"),
            ("102", "20240229", "2024-02-29"),
        ];
        for (format, value, iso) in cases {
            let m = Moment::from_edifact(value, format).unwrap();
            assert_eq!(m.iso, iso, "{format} {value}");
            assert_eq!(m.to_edifact().unwrap(), value, "{format} {iso}");
        }
    }

    #[test]
    fn two_digit_years_of_past_dates_are_not_in_the_future() {
        let today = (2026, 11, 27);
        for (value, format, iso) in [
            ("450312", "101", "1945-03-12"),
            ("261127", "101", "2026-11-27"),
            ("261128", "101", "1926-11-28"),
            ("000101", "101", "2000-01-01"),
            ("9912311200", "201", "1999-12-31T12:00"),
        ] {
            let m = Moment::from_edifact_past(value, format, today);
            assert_eq!(m.map(|m| m.iso), Ok(iso.to_owned()), "{value}");
        }
        // Without it, the fixed pivot: 45 is 2045.
        assert_eq!(
            Moment::from_edifact("450312", "101").map(|m| m.iso),
            Ok("2045-03-12".to_owned())
        );
        // Four-digit years are as given.
        assert_eq!(
            Moment::from_edifact_past("20450312", "102", today).map(|m| m.iso),
            Ok("2045-03-12".to_owned())
        );
    }

    #[test]
    fn invalid_values_and_formats_are_refused() {
        for (format, value) in [
            ("102", "20261324"),
            ("102", "20230229"),
            ("102", "2026112"),
            ("203", "202611242460"),
            ("102", "2026ab24"),
            ("303", "202611241030"),
            ("303", "202611241030*09"),
        ] {
            assert!(
                matches!(
                    Moment::from_edifact(value, format),
                    Err(DateError::Invalid { .. })
                ),
                "{format} {value}"
            );
        }
        assert_eq!(
            Moment::from_edifact("x", "718"),
            Err(DateError::UnsupportedFormat("718".into()))
        );
    }
}
