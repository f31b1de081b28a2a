//! Spans of time as people write them (`90m`, `8h`, `7d`, `1y`).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{ParseError, Timestamp};

/// A span of time as people write it: `90m`, `8h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(Duration);

impl Span {
    /// Parses `90m`, `8h`, `7d`, `2w`, `1y`, or anything humantime accepts (`1h 30m`). A year
    /// is 365 days and a month 30 days, as people mean them (humantime's are 365.25 and
    /// 30.44 days).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let t = s.trim();
        let d = calendar_units(t)
            .or_else(|| humantime::parse_duration(t).ok())
            .ok_or_else(|| {
                ParseError(format!(
                    "\"{t}\" is not a duration; write it like 90m, 8h or 7d"
                ))
            })?;
        if d.is_zero() {
            return Err(ParseError("a duration must be longer than zero".into()));
        }
        Ok(Self(d))
    }
    /// Wraps a std duration.
    pub fn from_std(d: Duration) -> Self {
        Self(d)
    }
    /// The std duration.
    pub fn as_std(&self) -> Duration {
        self.0
    }
    /// As a chrono duration, for arithmetic on timestamps.
    pub fn as_chrono(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.0).unwrap_or(chrono::TimeDelta::MAX)
    }
    /// Seconds in the span.
    pub fn secs(&self) -> u64 {
        self.0.as_secs()
    }
    /// `t` plus the span, or `None` past the last time chrono can hold (never a panic).
    pub fn checked_after(&self, t: Timestamp) -> Option<Timestamp> {
        chrono::TimeDelta::from_std(self.0)
            .ok()
            .and_then(|d| t.checked_add_signed(d))
    }
    /// `t` plus the span, saturating at the last time chrono can hold.
    pub fn after(&self, t: Timestamp) -> Timestamp {
        self.checked_after(t).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
    /// Whether the span, counted from `t`, has run out by `now`.
    pub fn elapsed(&self, t: Timestamp, now: Timestamp) -> bool {
        self.checked_after(t).is_some_and(|end| end <= now)
    }
}

/// `1y`, `2 years`, `6M`, `1y 30d`…: whole years and months, optionally with days, hours,
/// minutes and seconds, counted as 365 and 30 days; `None` for anything else (humantime then
/// reads it).
fn calendar_units(t: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut calendar = false;
    let mut rest = t.trim();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "y" | "year" | "years" => {
                calendar = true;
                365 * 86_400
            }
            "M" | "month" | "months" => {
                calendar = true;
                30 * 86_400
            }
            "w" | "week" | "weeks" => 7 * 86_400,
            "d" | "day" | "days" => 86_400,
            "h" | "hour" | "hours" => 3_600,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(secs)?)?;
        rest = rest[unit_end..].trim_start();
    }
    calendar.then(|| Duration::from_secs(total))
}

impl fmt::Display for Span {
    /// The shortest exact form: `30d`, `8h`, `90m`, `45s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        if s != 0 && s.is_multiple_of(86_400) {
            write!(f, "{}d", s / 86_400)
        } else if s != 0 && s.is_multiple_of(3_600) {
            write!(f, "{}h", s / 3_600)
        } else if s != 0 && s.is_multiple_of(60) {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_and_print() {
        assert_eq!(Span::parse("90m").unwrap().secs(), 5400);
        assert_eq!(Span::parse("8h").unwrap().to_string(), "8h");
        assert_eq!(Span::parse("7d").unwrap().to_string(), "7d");
        assert_eq!(Span::parse("30d").unwrap().secs(), 30 * 86400);
        assert!(Span::parse("soon").is_err());
        // A year is 365 days, not 365 days and six hours.
        assert_eq!(Span::parse("1y").unwrap().to_string(), "365d");
        assert_eq!(Span::parse("2 years").unwrap().to_string(), "730d");
        assert_eq!(Span::parse("1M").unwrap().to_string(), "30d");
        assert_eq!(Span::parse("1y 2d").unwrap().to_string(), "367d");
        assert_eq!(Span::parse("1h 30m").unwrap().to_string(), "90m");
        assert!(Span::parse("0m").is_err());
    }
}
