//! Time zones (IANA names, from the compiled-in database of chrono-tz). The organisation has
//! one (`[organization] timezone`, UTC when absent) and a person may have their own. A date a
//! person types (`/offboard when:`, HR's `last_day`) ends at 23:59:59 in the zone of the person
//! it is about; a time a message shows is written in its reader's zone, with the abbreviation
//! (`PST`, `CET`) or the offset (`UTC+04:00`). The zone is always a value passed in: the core
//! keeps no global.

use std::fmt;

use chrono::{LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset as _, TimeZone as _};
use chrono_tz::{GapInfo, OffsetName as _, TZ_VARIANTS, Tz};

use super::model::{ParseError, Timestamp};

/// An IANA time zone such as `Europe/Berlin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Zone(Tz);

impl Default for Zone {
    /// UTC, the organisation's zone when the configuration names none.
    fn default() -> Self {
        Self::UTC
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Zone {
    /// Coordinated Universal Time.
    pub const UTC: Self = Self(Tz::UTC);

    /// Reads an IANA name (exact spelling, as the database writes it). A refusal says what
    /// was meant when something close exists (`europe/berlin`, `Berlin`, `Europe/Berln`),
    /// else gives examples.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(ParseError("a time zone must not be empty".into()));
        }
        if let Ok(tz) = t.parse::<Tz>() {
            return Ok(Self(tz));
        }
        let shown: String = t.chars().take(64).collect();
        let hint = match suggestion(t) {
            Some(s) => format!(" — did you mean \"{s}\"?"),
            None => " — write an IANA name such as \"Europe/Berlin\", \"America/Los_Angeles\" \
                     or \"UTC\""
                .into(),
        };
        Err(ParseError(format!(
            "\"{shown}\" is not a time zone of the IANA database{hint}"
        )))
    }

    /// The IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The last second of day `d` in this zone (23:59:59 local time), as a UTC moment. On a
    /// day whose end is skipped or repeated by a clock change, the last moment that day
    /// really has.
    pub fn end_of_day(&self, d: NaiveDate) -> Timestamp {
        let last = d.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN));
        match self.0.from_local_datetime(&last) {
            LocalResult::Single(t) => t.to_utc(),
            LocalResult::Ambiguous(_, later) => later.to_utc(),
            // 23:59:59 falls in a gap (clocks moved forward at midnight): the second before
            // the clocks moved.
            LocalResult::None => self.after_gap(last) - chrono::TimeDelta::seconds(1),
        }
    }

    /// The first moment of day `d` in this zone (its midnight, or where a clock change skips
    /// midnight, the first moment the day really has), as a UTC moment.
    pub fn start_of_day(&self, d: NaiveDate) -> Timestamp {
        let midnight = d.and_time(NaiveTime::MIN);
        match self.0.from_local_datetime(&midnight) {
            LocalResult::Single(t) => t.to_utc(),
            LocalResult::Ambiguous(earlier, _) => earlier.to_utc(),
            LocalResult::None => self.after_gap(midnight),
        }
    }

    /// The moment the clocks moved forward over `local` (a local time that does not exist).
    fn after_gap(&self, local: NaiveDateTime) -> Timestamp {
        match GapInfo::new(&local, &self.0).and_then(|g| g.end) {
            Some(t) => t.to_utc(),
            // Past the database's known changes: read with the offset of half a day before.
            None => {
                let before = self
                    .0
                    .from_local_datetime(&(local - chrono::TimeDelta::hours(12)))
                    .earliest()
                    .map_or(0, |t| t.offset().fix().local_minus_utc());
                (local - chrono::TimeDelta::seconds(i64::from(before))).and_utc()
            }
        }
    }

    /// `t` as a reader in this zone sees it: `2026-12-31 23:59 PST`; where the database has
    /// no letters for the zone, the offset (`2026-12-31 23:59 UTC+04:00`).
    pub fn show(&self, t: Timestamp) -> String {
        let local = t.with_timezone(&self.0);
        let offset = local.offset();
        let tag = match offset.abbreviation() {
            Some(a) if a.chars().all(|c| c.is_ascii_alphabetic()) => a.to_owned(),
            _ => format!("UTC{}", offset.fix()),
        };
        format!("{} {tag}", local.format("%Y-%m-%d %H:%M"))
    }
}

/// The zone someone probably meant by `typed`: the same name in other letter case, a city
/// named alone (`Berlin`, `los angeles`), or a close spelling.
fn suggestion(typed: &str) -> Option<&'static str> {
    let norm = |s: &str| s.trim().to_lowercase().replace(' ', "_");
    let t = norm(typed);
    let names = || TZ_VARIANTS.iter().map(|z| z.name());
    if let Some(n) = names().find(|n| n.to_lowercase() == t) {
        return Some(n);
    }
    let city = t.rsplit('/').next().unwrap_or(&t).to_owned();
    if let Some(n) = names().filter(|n| n.contains('/')).find(|n| {
        n.rsplit('/')
            .next()
            .is_some_and(|c| c.to_lowercase() == city)
    }) {
        return Some(n);
    }
    // A close spelling of the whole name, or else of the city alone (`Tokio`).
    if let Some(n) = super::suggest::did_you_mean(&t, names()) {
        return Some(n);
    }
    let cities: Vec<(&str, &'static str)> = names()
        .filter_map(|n| Some((n.rsplit_once('/')?.1, n)))
        .collect();
    let city = super::suggest::did_you_mean(&city, cities.iter().map(|(c, _)| *c))?;
    cities.iter().find(|(c, _)| *c == city).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn z(s: &str) -> Zone {
        Zone::parse(s).unwrap()
    }

    #[test]
    fn names_parse_and_typos_get_a_suggestion() {
        assert_eq!(z("America/Los_Angeles").name(), "America/Los_Angeles");
        assert_eq!(z(" UTC ").name(), "UTC");
        assert_eq!(Zone::default(), Zone::UTC);
        let err = |s: &str| Zone::parse(s).unwrap_err().0;
        assert_eq!(
            err("europe/berlin"),
            "\"europe/berlin\" is not a time zone of the IANA database — did you mean \"Europe/Berlin\"?"
        );
        assert!(
            err("Los Angeles").ends_with("did you mean \"America/Los_Angeles\"?"),
            "{}",
            err("Los Angeles")
        );
        assert!(err("Europe/Berln").ends_with("did you mean \"Europe/Berlin\"?"));
        assert_eq!(
            err("Mars/Olympus"),
            "\"Mars/Olympus\" is not a time zone of the IANA database — write an IANA name \
             such as \"Europe/Berlin\", \"America/Los_Angeles\" or \"UTC\""
        );
        assert_eq!(err("  "), "a time zone must not be empty");
    }

    #[test]
    fn the_end_of_a_day_is_local_across_dst_changes() {
        let la = z("America/Los_Angeles");
        // Winter (PST, UTC-8): 23:59:59 local is 07:59:59 UTC the next day.
        assert_eq!(la.end_of_day(day("2026-12-31")), at("2027-01-01T07:59:59Z"));
        // The day clocks spring forward (2026-03-08): the evening is PDT, UTC-7.
        assert_eq!(la.end_of_day(day("2026-03-08")), at("2026-03-09T06:59:59Z"));
        assert_eq!(la.end_of_day(day("2026-03-07")), at("2026-03-08T07:59:59Z"));
        // The day clocks fall back (2026-11-01): the evening is PST again.
        assert_eq!(la.end_of_day(day("2026-10-31")), at("2026-11-01T06:59:59Z"));
        assert_eq!(la.end_of_day(day("2026-11-01")), at("2026-11-02T07:59:59Z"));
        let berlin = z("Europe/Berlin");
        assert_eq!(
            berlin.end_of_day(day("2026-03-28")),
            at("2026-03-28T22:59:59Z")
        );
        assert_eq!(
            berlin.end_of_day(day("2026-03-29")),
            at("2026-03-29T21:59:59Z")
        );
        assert_eq!(
            Zone::UTC.end_of_day(day("2026-12-31")),
            at("2026-12-31T23:59:59Z")
        );
        assert_eq!(
            la.start_of_day(day("2026-03-08")),
            at("2026-03-08T08:00:00Z")
        );
        assert_eq!(
            la.start_of_day(day("2026-03-09")),
            at("2026-03-09T07:00:00Z")
        );
        assert_eq!(
            berlin.start_of_day(day("2026-03-29")),
            at("2026-03-28T23:00:00Z")
        );
        // Every day of a year in zones whose clocks change at midnight (Santiago, Havana,
        // Cairo, Beirut) starts and ends on that day, one second after the day before ended.
        for name in [
            "America/Santiago",
            "America/Havana",
            "Africa/Cairo",
            "Asia/Beirut",
        ] {
            let zone = z(name);
            let tz: Tz = name.parse().unwrap();
            let mut d = day("2026-01-01");
            while d < day("2027-01-01") {
                let (start, end) = (zone.start_of_day(d), zone.end_of_day(d));
                assert_eq!(start.with_timezone(&tz).date_naive(), d, "{name} {d}");
                assert_eq!(end.with_timezone(&tz).date_naive(), d, "{name} {d}");
                let prev = d.pred_opt().unwrap();
                assert_eq!(
                    zone.end_of_day(prev) + chrono::TimeDelta::seconds(1),
                    start,
                    "{name} {d}"
                );
                d = d.succ_opt().unwrap();
            }
        }
    }

    #[test]
    fn times_show_in_the_zone_with_its_abbreviation_or_offset() {
        let la = z("America/Los_Angeles");
        assert_eq!(la.show(at("2027-01-01T07:59:59Z")), "2026-12-31 23:59 PST");
        assert_eq!(la.show(at("2026-03-08T09:59:00Z")), "2026-03-08 01:59 PST");
        assert_eq!(la.show(at("2026-03-08T10:00:00Z")), "2026-03-08 03:00 PDT");
        assert_eq!(
            z("Europe/Berlin").show(at("2026-03-29T01:30:00Z")),
            "2026-03-29 03:30 CEST"
        );
        assert_eq!(
            Zone::UTC.show(at("2026-12-31T23:59:59Z")),
            "2026-12-31 23:59 UTC"
        );
        assert_eq!(
            z("Asia/Dubai").show(at("2026-06-01T00:00:00Z")),
            "2026-06-01 04:00 UTC+04:00"
        );
    }
}
