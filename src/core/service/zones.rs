//! Whose clock a time is written in. A message to one person shows times in their zone (their
//! own `timezone`, else the organisation's); a message several people see (a prompt edited
//! after a decision, a task for IT) and the audit trail's details use the organisation's zone
//! and UTC respectively.

use super::*;

impl Service {
    /// The zone `h` reads times in: their own, else the organisation's (also when `h` is
    /// unknown or the store cannot answer: a time is still shown, with its zone named).
    pub(super) async fn zone_of(&self, h: &Handle) -> Zone {
        match self.store.person(h).await {
            Ok(Some(p)) => p.zone(&self.org),
            _ => self.org.timezone,
        }
    }

    /// `t` as `h` reads it: `2026-12-31 23:59 PST`.
    pub(super) async fn when_for(&self, h: &Handle, t: Timestamp) -> String {
        self.zone_of(h).await.show(t)
    }

    /// `t` as the caller reads it.
    pub(super) fn when_to(&self, c: &Caller, t: Timestamp) -> String {
        c.person.zone(&self.org).show(t)
    }

    /// `t` in a message several people see: the organisation's zone.
    pub(super) fn when_shared(&self, t: Timestamp) -> String {
        self.org.timezone.show(t)
    }

    /// `t` as the caller reads it, for a message to them.
    pub(super) fn moment_to(&self, c: &Caller, t: Timestamp) -> Moment {
        Moment {
            at: t,
            zone: c.person.zone(&self.org),
        }
    }

    /// `t` as `h` reads it.
    pub(super) async fn moment_for(&self, h: &Handle, t: Timestamp) -> Moment {
        Moment {
            at: t,
            zone: self.zone_of(h).await,
        }
    }

    /// `t` in a message several people see: the organisation's zone.
    pub(super) fn moment_shared(&self, t: Timestamp) -> Moment {
        Moment {
            at: t,
            zone: self.org.timezone,
        }
    }

    /// The end of a leaver's last day `day` (the moment `end`) as the caller reads it:
    /// `2026-12-31 23:59 PST (end of the last day)`, and where the leaver's zone is not the
    /// caller's, `2027-01-01 08:59 CET (end of 2026-12-31 for Owen Hart, America/Los_Angeles)`.
    pub(super) fn last_day_end(
        &self,
        c: &Caller,
        leaver: &Person,
        day: chrono::NaiveDate,
        end: Timestamp,
    ) -> String {
        let theirs = leaver.zone(&self.org);
        let shown = self.when_to(c, end);
        if theirs == c.person.zone(&self.org) {
            format!("{shown} (end of the last day)")
        } else {
            format!("{shown} (end of {day} for {}, {theirs})", leaver.name)
        }
    }
}
