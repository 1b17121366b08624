//! UTC timestamps without a time-zone database: the current time for
//! adapters, RFC 3339 text for storage and EDIFACT date/time fields. The core
//! never calls [`Timestamp::now`]; callers pass times in.

use std::fmt;

/// A UTC time to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Timestamp {
    /// The system clock, now (adapters only).
    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Self::from_unix(secs)
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn from_unix(secs: i64) -> Self {
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        Timestamp {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// Parses `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` (UTC; a trailing
    /// `Z` is accepted).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.strip_suffix('Z').unwrap_or(text);
        let (date, time) = text.split_once('T')?;
        let mut d = date.splitn(3, '-');
        let year: i64 = d.next()?.parse().ok()?;
        let month: u32 = d.next()?.parse().ok()?;
        let day: u32 = d.next()?.parse().ok()?;
        let mut t = time.splitn(3, ':');
        let hour: u32 = t.next()?.parse().ok()?;
        let minute: u32 = t.next()?.parse().ok()?;
        let second: u32 = match t.next() {
            Some(s) => s.parse().ok()?,
            None => 0,
        };
        let ok = (1..=12).contains(&month)
            && (1..=31).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60;
        ok.then_some(Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// `YYMMDD` (syntax versions 1–3) or `CCYYMMDD` (syntax version 4).
    pub fn edifact_date(&self, four_digit_year: bool) -> String {
        if four_digit_year {
            format!("{:04}{:02}{:02}", self.year, self.month, self.day)
        } else {
            format!(
                "{:02}{:02}{:02}",
                self.year.rem_euclid(100),
                self.month,
                self.day
            )
        }
    }

    /// (year, month, day), the year clamped to `u32`.
    pub fn ymd(&self) -> (u32, u32, u32) {
        (
            u32::try_from(self.year.max(0)).unwrap_or(u32::MAX),
            self.month,
            self.day,
        )
    }

    /// `HHMM`.
    pub fn edifact_time(&self) -> String {
        format!("{:02}{:02}", self.hour, self.minute)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339, e.g. `2026-11-24T10:30:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// This time plus `secs` seconds (negative: earlier).
    pub fn plus_secs(&self, secs: i64) -> Timestamp {
        Timestamp::from_unix(self.unix().saturating_add(secs))
    }
}

/// (year, month, day) to days since 1970-01-01, the inverse of
/// [`civil_from_days`] (same published algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (the civil-from-days algorithm published by Howard Hinnant).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_781), (2026, 11, 24));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(
            Timestamp::from_unix(1_795_516_200).to_string(),
            "2026-11-24T10:30:00Z"
        );
    }

    #[test]
    fn unix_round_trips() {
        for secs in [0, 951_782_400, 1_795_516_200, -86_400, 4_102_444_799] {
            assert_eq!(Timestamp::from_unix(secs).unix(), secs);
        }
        let t = Timestamp::parse("2026-12-31T23:59:30Z").unwrap();
        assert_eq!(t.plus_secs(45).to_string(), "2027-01-01T00:00:15Z");
    }

    #[test]
    fn parse_and_format() {
        let t = Timestamp::parse("2026-11-24T10:30").unwrap();
        assert_eq!(t.to_string(), "2026-11-24T10:30:00Z");
        assert_eq!(t.edifact_date(false), "261124");
        assert_eq!(t.edifact_date(true), "20261124");
        assert_eq!(t.edifact_time(), "1030");
        assert_eq!(Timestamp::parse("2026-11-24T10:30:59Z").unwrap().second, 59);
        assert!(Timestamp::parse("2026-13-01T00:00").is_none());
        assert!(Timestamp::parse("yesterday").is_none());
    }
}
