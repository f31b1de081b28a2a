//! `[[review]]`: scheduled access-review campaigns; and each `[[app]]`'s `privileged`.

use super::walker::Walker;
use super::{Cx, Rec, RefKind, keys, suggest};
use crate::core::model::{
    Campaign, ReviewDefault, ReviewScope, ReviewTerms, ReviewerRule, Span, Timestamp,
};

impl Walker<'_, '_> {
    /// Every `[[review]]` table.
    pub(super) fn reviews(&mut self, root: &Rec) -> Vec<Campaign> {
        let mut out = Vec::new();
        for (i, t) in root.records(self.cx, "review") {
            let rec = Rec {
                t,
                path: format!("review[{i}]"),
            };
            rec.check_keys(self.cx, &keys::keys("review"));
            out.extend(campaign(self.cx, &rec));
        }
        out
    }
}

/// One `[[review]]`: its terms, `every` and `starts`.
fn campaign(cx: &mut Cx, rec: &Rec) -> Option<Campaign> {
    let before = cx.problems.len();
    let scope = rec.req_string(cx, "scope").and_then(|s| {
        ReviewScope::parse(s)
            .map_err(|e| cx.err(rec.at("scope"), e))
            .ok()
    });
    match &scope {
        Some(ReviewScope::App(a)) => cx.refer(rec.at("scope"), RefKind::App, a.as_str()),
        Some(ReviewScope::Role(r)) => cx.refer(rec.at("scope"), RefKind::Role, r.as_str()),
        Some(ReviewScope::Connector(c)) => {
            cx.refer(rec.at("scope"), RefKind::Connector, c.as_str());
        }
        _ => {}
    }
    let reviewer = reviewer(cx, rec);
    let due = rec
        .span(cx, "due")
        .or_else(|| Some(crate::core::review::default_due()));
    let escalate_after = rec.span(cx, "escalate_after");
    let default = match rec.string(cx, "default") {
        None => Some(ReviewDefault::Escalate),
        Some(s) => ReviewDefault::parse(s).or_else(|| {
            cx.err(
                rec.at("default"),
                format!(
                    "{s:?} is not keep, revoke or escalate{}",
                    suggest(s, ["keep", "revoke", "escalate"])
                ),
            );
            None
        }),
    };
    let every = rec.span(cx, "every");
    if !rec.has("every") {
        cx.err(
            rec.at("every"),
            "required key is missing (how often, e.g. \"90d\")",
        );
    }
    let starts = starts(cx, rec);
    if cx.problems.len() != before {
        return None;
    }
    let due = due?;
    Some(Campaign {
        terms: ReviewTerms {
            scope: scope?,
            reviewer: reviewer?,
            escalate_after: escalate_after.unwrap_or_else(|| half(due)),
            due,
            default: default?,
        },
        every: every?,
        starts: starts.unwrap_or(Timestamp::MIN_UTC),
    })
}

/// `reviewer`: `manager` (the default), `owner` or a handle.
fn reviewer(cx: &mut Cx, rec: &Rec) -> Option<ReviewerRule> {
    match rec.string(cx, "reviewer") {
        None => Some(ReviewerRule::Manager),
        Some(s) => match ReviewerRule::parse(s) {
            Ok(r) => {
                if let ReviewerRule::Person(h) = &r {
                    cx.refer(rec.at("reviewer"), RefKind::Person, h.as_str());
                }
                Some(r)
            }
            Err(e) => {
                cx.err(rec.at("reviewer"), e);
                None
            }
        },
    }
}

/// `starts`: a date, its UTC midnight.
fn starts(cx: &mut Cx, rec: &Rec) -> Option<Timestamp> {
    let s = rec.string(cx, "starts")?;
    match chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
        Err(_) => {
            cx.err(
                rec.at("starts"),
                format!("{s:?} is not a date (2027-01-05)"),
            );
            None
        }
    }
}

/// Half of `due`: when the reviewer's manager gets the items too, unless said otherwise.
pub fn half(due: Span) -> Span {
    Span::from_std(due.as_std() / 2)
}

/// An app's `privileged` (a reason is needed on Keep in reviews).
pub(super) fn privileged(cx: &mut Cx, rec: &Rec) -> bool {
    rec.bool(cx, "privileged").unwrap_or(false)
}
