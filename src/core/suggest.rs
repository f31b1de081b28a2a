//! "Did you mean": the one rule every message uses to suggest what a misspelt name meant
//! (config keys and references, commands and their options, apps, roles, time zones).

/// The candidate closest to a misspelt `word`, if one is close enough to suggest.
///
/// Letter case is ignored. A candidate is close when its optimal-string-alignment distance
/// (edits, a swap of two neighbours counting as one) is at most 1 for words of up to four
/// letters and at most 2 for longer ones, or, for a word of four letters or more, when their
/// Jaro-Winkler similarity is at least 0.9 (a long word with a shared beginning), or when a
/// word of three letters or more begins it (`req` for `request`). Of the close ones, the
/// fewest edits wins, then the most similar, then the first given. A candidate equal to
/// `word` is never suggested.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let w = word.to_lowercase();
    let wlen = w.chars().count();
    let mut best: Option<(&'a str, usize, f64)> = None;
    for c in candidates {
        if c == word {
            continue;
        }
        let cl = c.to_lowercase();
        let d = strsim::osa_distance(&w, &cl);
        let jw = strsim::jaro_winkler(&w, &cl);
        let len = wlen.max(cl.chars().count());
        let allowed = if len <= 4 { 1 } else { 2 };
        let prefix = wlen >= 3 && cl.starts_with(&w);
        if !(d <= allowed || (wlen >= 4 && jw >= 0.9) || prefix) {
            continue;
        }
        let better = match best {
            None => true,
            Some((_, bd, bjw)) => d < bd || (d == bd && jw > bjw),
        };
        if better {
            best = Some((c, d, jw));
        }
    }
    best.map(|(c, _, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested() {
        let names = ["carol", "bob", "dana", "mia"];
        assert_eq!(did_you_mean("carl", names), Some("carol"));
        assert_eq!(did_you_mean("Carol", names), Some("carol"));
        assert_eq!(did_you_mean("dnaa", names), Some("dana"));
        assert_eq!(did_you_mean("jria", ["jira", "zoho"]), Some("jira"));
        assert_eq!(did_you_mean("fgma", ["figma", "jira"]), Some("figma"));
        assert_eq!(
            did_you_mean("organisation", ["organization", "person"]),
            Some("organization")
        );
        assert_eq!(
            did_you_mean("offbaord", ["offboard", "onboard"]),
            Some("offboard")
        );
    }

    #[test]
    fn far_names_are_not() {
        let names = ["carol", "bob", "dana", "mia"];
        assert_eq!(did_you_mean("zed", names), None);
        assert_eq!(did_you_mean("joe", ["bob"]), None);
        assert_eq!(did_you_mean("zzz", ["figma", "jira"]), None);
        assert_eq!(did_you_mean("colour", ["app", "reason", "duration"]), None);
        assert_eq!(did_you_mean("figma", ["figma"]), None);
    }

    #[test]
    fn fewest_edits_win_then_similarity_then_order() {
        assert_eq!(
            did_you_mean("desing", ["designer", "design"]),
            Some("design")
        );
        assert_eq!(did_you_mean("ab", ["ac", "ad"]), Some("ac"));
        assert_eq!(did_you_mean("req", ["revoke", "request"]), Some("request"));
    }
}
