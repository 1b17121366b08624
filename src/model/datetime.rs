//! Dates and times with their UN/EDIFACT 2379 format: kept as ISO 8601 text
//! in the canonical model, converted from and back to the EDIFACT value.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A date or date-time: ISO 8601 text (`2026-11-24`, `2026-11-24T10:30`,
/// `2026-11-24T10:30:15`, optionally with `+09:00` or `Z`) and the 2379 format code
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

/// How a two-digit year (formats 101, 201, 301, 302) gets its century.
#[derive(Debug, Clone, Copy)]
enum Years {
    /// The fixed pivot: YY < 50 is 20YY.
    Pivot,
    /// The latest year not after the day (a birth date).
    NotAfter((u32, u32, u32)),
    /// The year nearest the day's (an expiry date).
    Nearest((u32, u32, u32)),
}

impl Moment {
    /// Reads an EDIFACT value in the given 2379 format. Supported: the
    /// dates and dates with times of D.96B's list, 101 YYMMDD, 102
    /// CCYYMMDD, 201 YYMMDDHHMM, 202 YYMMDDHHMMSS, 203 CCYYMMDDHHMM, 204
    /// CCYYMMDDHHMMSS, and with a time zone (ZZZ, e.g. `+09` or `-0530`,
    /// or `Z` for UTC as WCO DateTimeStrings give it)
    /// 301 YYMMDDHHMMZZZ, 302 YYMMDDHHMMSSZZZ, 303 CCYYMMDDHHMMZZZ, 304
    /// CCYYMMDDHHMMSSZZZ.
    pub fn from_edifact(value: &str, format: &str) -> Result<Moment, DateError> {
        Moment::read(value, format, Years::Pivot)
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
        Moment::read(value, format, Years::NotAfter(today))
    }

    /// [`from_edifact`](Self::from_edifact) for a date as likely past as
    /// future, such as a travel document's expiry: a two-digit year is the
    /// one nearest `today` (`560101` is 2056 in 2026, `800101` 1980).
    pub fn from_edifact_near(
        value: &str,
        format: &str,
        today: (u32, u32, u32),
    ) -> Result<Moment, DateError> {
        Moment::read(value, format, Years::Nearest(today))
    }

    fn read(value: &str, format: &str, years: Years) -> Result<Moment, DateError> {
        let invalid = || DateError::Invalid {
            value: value.to_owned(),
            format: format.to_owned(),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let Some(shape) = Shape::of(format) else {
            return Err(DateError::UnsupportedFormat(format.to_owned()));
        };
        let date_len = if shape.century { 8 } else { 6 };
        let fixed = date_len + usize::from(shape.time);
        let length_ok = if shape.zone {
            // ZZZ: a sign and two digits, or four (`+09`, `-0530`), or `Z`
            // for UTC (the WCO Data Model's DateTimeString, format 304).
            value.len() == fixed + 3 || value.len() == fixed + 5 || value.len() == fixed + 1
        } else {
            value.len() == fixed
        };
        if !length_ok {
            return Err(invalid());
        }
        let date_part = value.get(..date_len).ok_or_else(invalid)?;
        let time_part = value.get(date_len..fixed).ok_or_else(invalid)?;
        let zone = value.get(fixed..).unwrap_or("");
        if !digits(date_part) || !(time_part.is_empty() || digits(time_part)) {
            return Err(invalid());
        }
        let num = |s: Option<&str>| s.and_then(|t| t.parse::<u32>().ok()).ok_or_else(invalid);
        let (year, month, day) = if shape.century {
            (
                num(date_part.get(..4))?,
                num(date_part.get(4..6))?,
                num(date_part.get(6..8))?,
            )
        } else {
            let yy = num(date_part.get(..2))?;
            let (month, day) = (num(date_part.get(2..4))?, num(date_part.get(4..6))?);
            let year = match years {
                Years::NotAfter(today) if (2000 + yy, month, day) > today => 1900 + yy,
                Years::NotAfter(_) => 2000 + yy,
                Years::Nearest((this_year, _, _)) => {
                    // Of the three centuries around today's, the year
                    // closest to this one (the later on a tie).
                    let century = this_year / 100 * 100;
                    [century + 100, century, century.saturating_sub(100)]
                        .into_iter()
                        .map(|c| c + yy)
                        .min_by_key(|y| y.abs_diff(this_year))
                        .unwrap_or(century + yy)
                }
                Years::Pivot if yy < CENTURY_PIVOT => 2000 + yy,
                Years::Pivot => 1900 + yy,
            };
            (year, month, day)
        };
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(invalid());
        }
        let mut iso = format!("{year:04}-{month:02}-{day:02}");
        if shape.time > 0 {
            let (h, m) = (num(time_part.get(..2))?, num(time_part.get(2..4))?);
            let sec = if shape.time == 6 {
                Some(num(time_part.get(4..6))?)
            } else {
                None
            };
            check_time(h, m, sec.unwrap_or(0)).ok_or_else(invalid)?;
            iso.push_str(&format!("T{h:02}:{m:02}"));
            if let Some(sec) = sec {
                iso.push_str(&format!(":{sec:02}"));
            }
        }
        if shape.zone && zone == "Z" {
            iso.push('Z');
        } else if shape.zone {
            // A zone such as +09 or -0530.
            let sign = zone
                .get(..1)
                .filter(|s| *s == "+" || *s == "-")
                .ok_or_else(invalid)?;
            let zd = zone.get(1..).unwrap_or("");
            if !digits(zd) {
                return Err(invalid());
            }
            let zh = num(zd.get(..2))?;
            let zm = if zd.len() == 4 { num(zd.get(2..4))? } else { 0 };
            // Zones run from UTC-12:00 to UTC+14:00.
            let furthest = if sign == "-" { 12 } else { 14 };
            if zm > 59 || (zh, zm) > (furthest, 0) {
                return Err(invalid());
            }
            iso.push_str(&format!("{sign}{zh:02}:{zm:02}"));
        }
        Ok(Moment {
            iso,
            format: format.to_owned(),
        })
    }

    /// The earliest UTC time (seconds since 1970) the moment can stand for:
    /// itself when it gives a time zone; otherwise its local time (the
    /// start of its day for a date) read in the zone furthest ahead of UTC,
    /// UTC+14, since the sender's zone is not known. `None` when the ISO
    /// text is not one this type writes.
    pub fn earliest_utc(&self) -> Option<i64> {
        let iso = self.iso.as_str();
        let date = iso.get(..10)?;
        let (local, zone) = match iso.get(10..) {
            None | Some("") => (format!("{date}T00:00"), None),
            Some(rest) => {
                let rest = rest.strip_prefix('T')?;
                if let Some(utc) = rest.strip_suffix('Z') {
                    let local = crate::timestamp::Timestamp::parse(&format!("{date}T{utc}"))?;
                    return Some(local.unix());
                }
                match rest.find(['+', '-']) {
                    Some(at) => (format!("{date}T{}", rest.get(..at)?), rest.get(at..)),
                    None => (format!("{date}T{rest}"), None),
                }
            }
        };
        let local = crate::timestamp::Timestamp::parse(&local)?.unix();
        let offset = match zone {
            None => LATEST_ZONE_SECS,
            Some(z) => {
                let minutes = |s: Option<&str>| s.and_then(|t| t.parse::<i64>().ok());
                let secs = minutes(z.get(1..3))? * 3_600 + minutes(z.get(4..6))? * 60;
                if z.starts_with('-') { -secs } else { secs }
            }
        };
        Some(local - offset)
    }

    /// Writes the moment back in its 2379 format.
    pub fn to_edifact(&self) -> Result<String, DateError> {
        let invalid = || DateError::Invalid {
            value: self.iso.clone(),
            format: self.format.clone(),
        };
        let shape = Shape::of(&self.format)
            .ok_or_else(|| DateError::UnsupportedFormat(self.format.clone()))?;
        let d = |r: std::ops::Range<usize>| self.iso.get(r).ok_or_else(invalid);
        let date8 = format!("{}{}{}", d(0..4)?, d(5..7)?, d(8..10)?);
        let mut out = if shape.century {
            date8
        } else {
            date8.get(2..).unwrap_or("").to_owned()
        };
        let mut zone_at = 10;
        if shape.time > 0 {
            out.push_str(d(11..13)?);
            out.push_str(d(14..16)?);
            zone_at = 16;
            if shape.time == 6 {
                out.push_str(d(17..19)?);
                zone_at = 19;
            }
        }
        if shape.zone {
            let zone = self.iso.get(zone_at..).ok_or_else(invalid)?;
            if zone == "Z" {
                out.push('Z');
                return Ok(out);
            }
            let compact: String = zone.chars().filter(|c| *c != ':').collect();
            let compact = compact
                .strip_suffix("00")
                .filter(|z| z.len() == 3)
                .map(str::to_owned)
                .unwrap_or(compact);
            out.push_str(&compact);
        }
        Ok(out)
    }
}

/// A moment as a WCO Data Model `DateTimeString` can hold it (UN/CEFACT
/// unqualified `DateTimeType` of the DEC schema: format 102 `CCYYMMDD`, or
/// 304 `CCYYMMDDHHMMSS` followed by `Z` or a zone of whole hours, years
/// 2000–2099).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WcoDateTime {
    pub text: String,
    /// `102` or `304`, the `formatCode` attribute.
    pub format: &'static str,
    /// The moment's time of day, left out: WCO takes a time only with its
    /// zone, and the moment has none.
    pub time_left_out: bool,
}

impl Moment {
    /// The moment as a WCO `DateTimeString`. The same instant is kept: a
    /// time with a zone of whole hours is written in that zone, one with
    /// minutes in its zone (`-05:30`) as UTC (`Z`), a time without seconds
    /// with `00`. A time without a zone cannot be written: the date is,
    /// and [`WcoDateTime::time_left_out`] says so. A year outside
    /// 2000–2099 is refused.
    pub fn to_wco(&self) -> Result<WcoDateTime, DateError> {
        let invalid = || DateError::Invalid {
            value: self.iso.clone(),
            format: self.format.clone(),
        };
        let iso = self.iso.as_str();
        let date = iso.get(..10).ok_or_else(invalid)?;
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let day = digits(date);
        let (time, zone) = match iso.get(10..).filter(|r| !r.is_empty()) {
            None => ("", ""),
            Some(rest) => {
                let rest = rest.strip_prefix('T').ok_or_else(invalid)?;
                match rest.find(['+', '-', 'Z']) {
                    Some(at) => (rest.get(..at).unwrap_or(""), rest.get(at..).unwrap_or("")),
                    None => (rest, ""),
                }
            }
        };
        let written = if zone.is_empty() {
            WcoDateTime {
                text: day,
                format: "102",
                time_left_out: !time.is_empty(),
            }
        } else {
            let mut clock = digits(time);
            if clock.len() == 4 {
                clock.push_str("00");
            }
            let text = match zone {
                "Z" => format!("{day}{clock}Z"),
                z if z.len() == 6 && z.ends_with(":00") => {
                    format!("{day}{clock}{}", z.get(..3).unwrap_or(""))
                }
                _ => {
                    let utc = crate::timestamp::Timestamp::from_unix(
                        self.earliest_utc().ok_or_else(invalid)?,
                    );
                    format!(
                        "{}{:02}{:02}{:02}Z",
                        utc.edifact_date(true),
                        utc.hour,
                        utc.minute,
                        utc.second
                    )
                }
            };
            if text.len() != 15 && text.len() != 17 {
                return Err(invalid());
            }
            WcoDateTime {
                text,
                format: "304",
                time_left_out: false,
            }
        };
        // The DEC types' pattern takes the years 2000-2099 of the value
        // written (in UTC when the zone had minutes).
        if !written.text.starts_with("20") {
            return Err(DateError::Invalid {
                value: self.iso.clone(),
                format: "102 or 304 of a WCO DateTimeString (years 2000-2099)".into(),
            });
        }
        Ok(written)
    }
}

/// How far the zone furthest ahead of UTC (UTC+14) is, in seconds.
const LATEST_ZONE_SECS: i64 = 14 * 3_600;

/// The parts of a 2379 date or date-and-time format.
struct Shape {
    /// CCYY rather than YY.
    century: bool,
    /// Digits of time after the date: 0, 4 (HHMM) or 6 (HHMMSS).
    time: u8,
    /// A time zone (ZZZ) follows.
    zone: bool,
}

impl Shape {
    fn of(format: &str) -> Option<Shape> {
        let (century, time, zone) = match format {
            "101" => (false, 0, false),
            "102" => (true, 0, false),
            "201" => (false, 4, false),
            "202" => (false, 6, false),
            "203" => (true, 4, false),
            "204" => (true, 6, false),
            "301" => (false, 4, true),
            "302" => (false, 6, true),
            "303" => (true, 4, true),
            "304" => (true, 6, true),
            _ => return None,
        };
        Some(Shape {
            century,
            time,
            zone,
        })
    }
}

fn check_time(h: u32, m: u32, s: u32) -> Option<()> {
    (h < 24 && m < 60 && s < 60).then_some(())
}

/// Whether the day `day` of month `month` of `year` exists (Gregorian).
pub(crate) fn is_day(year: u32, month: u32, day: u32) -> bool {
    (1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day)
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
            ("202", "261124103015", "2026-11-24T10:30:15"),
            ("301", "2611241030+09", "2026-11-24T10:30+09:00"),
            ("302", "261124103015-0530", "2026-11-24T10:30:15-05:30"),
            ("304", "20261124103015+09", "2026-11-24T10:30:15+09:00"),
            ("304", "20261124103015-1130", "2026-11-24T10:30:15-11:30"),
            // UTC as the WCO Data Model writes it (HMRC's samples).
            ("304", "20170810093030Z", "2017-08-10T09:30:30Z"),
            ("303", "202611241030Z", "2026-11-24T10:30Z"),
        ];
        for (format, value, iso) in cases {
            let m = Moment::from_edifact(value, format).unwrap();
            assert_eq!(m.iso, iso, "{format} {value}");
            assert_eq!(m.to_edifact().unwrap(), value, "{format} {iso}");
        }
    }

    #[test]
    fn zones_run_from_utc_minus_12_to_utc_plus_14() {
        for zone in [
            "+14", "+1400", "-12", "-1200", "+0545", "-0930", "+00", "-00",
        ] {
            let value = format!("202611241030{zone}");
            assert!(Moment::from_edifact(&value, "303").is_ok(), "{value}");
        }
        for zone in ["+1401", "+15", "-1201", "-13", "-14", "+1460", "-0060"] {
            let value = format!("202611241030{zone}");
            assert!(Moment::from_edifact(&value, "303").is_err(), "{value}");
        }
    }

    #[test]
    fn the_earliest_utc_time_reads_zones_and_assumes_utc_plus_14_without() {
        let utc = |iso: &str| crate::timestamp::Timestamp::parse(iso).map(|t| t.unix());
        for (format, value, earliest) in [
            ("304", "20261128030000+09", "2026-11-27T18:00:00"),
            ("303", "202611272300-10", "2026-11-28T09:00"),
            ("303", "202611241030-0530", "2026-11-24T16:00"),
            ("304", "20261124103015Z", "2026-11-24T10:30:15"),
            ("203", "202611280300", "2026-11-27T13:00"),
            ("102", "20261128", "2026-11-27T10:00"),
            ("204", "20261128000001", "2026-11-27T10:00:01"),
        ] {
            let m = Moment::from_edifact(value, format).unwrap();
            assert_eq!(m.earliest_utc(), utc(earliest), "{format} {value}");
        }
    }

    #[test]
    fn moments_as_wco_date_time_strings_keep_the_instant() {
        let wco = |format: &str, value: &str| {
            let w = Moment::from_edifact(value, format)
                .unwrap()
                .to_wco()
                .unwrap();
            (w.text, w.format, w.time_left_out)
        };
        assert_eq!(wco("102", "20261124"), ("20261124".into(), "102", false));
        assert_eq!(wco("101", "261124"), ("20261124".into(), "102", false));
        assert_eq!(
            wco("304", "20170810093030Z"),
            ("20170810093030Z".into(), "304", false)
        );
        assert_eq!(
            wco("304", "20221121095500+01"),
            ("20221121095500+01".into(), "304", false)
        );
        assert_eq!(
            wco("303", "202611241030+09"),
            ("20261124103000+09".into(), "304", false)
        );
        assert_eq!(
            wco("302", "261124103015-0530"),
            ("20261124160015Z".into(), "304", false)
        );
        assert_eq!(
            wco("303", "202612312330-0530"),
            ("20270101050000Z".into(), "304", false)
        );
        // A time without its zone: the date only, said so.
        assert_eq!(wco("203", "202611241030"), ("20261124".into(), "102", true));
        // WCO's pattern takes years 2000-2099 only, of the value written:
        // a half-hour zone is written in UTC, which may cross the century.
        assert!(
            Moment::from_edifact("991231", "101")
                .unwrap()
                .to_wco()
                .is_err()
        );
        assert_eq!(
            wco("303", "199912312330-0530"),
            ("20000101050000Z".into(), "304", false)
        );
        assert_eq!(
            wco("304", "21000101003000+0530"),
            ("20991231190000Z".into(), "304", false)
        );
        for (format, value) in [
            ("303", "209912312330-0530"),
            ("304", "21000101000000+01"),
            ("304", "19991231235959Z"),
            ("203", "210001010000"),
        ] {
            let refused = Moment::from_edifact(value, format).unwrap().to_wco();
            assert!(
                matches!(&refused, Err(DateError::Invalid { format, .. }) if format.contains("2000-2099")),
                "{value}: {refused:?}"
            );
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
        // As likely past as future (an expiry): the nearest year.
        for (value, iso) in [
            ("560101", "2056-01-01"),
            ("800101", "1980-01-01"),
            ("260101", "2026-01-01"),
            ("761231", "2076-12-31"),
            ("771231", "1977-12-31"),
        ] {
            let m = Moment::from_edifact_near(value, "101", today);
            assert_eq!(m.map(|m| m.iso), Ok(iso.to_owned()), "{value}");
        }
        // A tie goes to the later year in any century.
        for (today, value, iso) in [
            ((2060, 1, 1), "100101", "2110-01-01"),
            ((2050, 6, 1), "000101", "2100-01-01"),
        ] {
            let m = Moment::from_edifact_near(value, "101", today);
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
            ("304", "20261124103015z"),
            ("304", "20261124103015Z00"),
            ("102", "20261124Z"),
            ("304", "202611241030+09"),
            ("304", "20261124103060+09"),
            ("202", "2611241030"),
            ("204", "2026112410301"),
            ("303", "202611241030+1500"),
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
