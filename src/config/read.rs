//! The walker's reading tools: the problems and references found so far ([`Cx`]), a table
//! with its key path ([`Rec`]) and its typed getters, and how key paths and values are
//! written in messages.

use toml::{Table, Value};

use super::{Problem, did_you_mean};
use crate::core::model::Span;

/// What a reference points at, checked once every record is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RefKind {
    Person,
    App,
    Role,
    Connector,
    /// A handle in `approvals` (suggestions include the step keywords).
    Approver,
}

pub(super) struct Ref {
    /// How many problems had been found when the reference was read, so that its problem
    /// is listed among its neighbours.
    pub(super) at: usize,
    pub(super) path: String,
    pub(super) kind: RefKind,
    pub(super) name: String,
}

/// What a walk has found so far (problems, warnings, references to check once every name is
/// known), and how it reads the environment (for secrets).
pub(super) struct Cx<'e> {
    pub(super) problems: Vec<Problem>,
    /// Not errors, but worth fixing (a secret file others can read).
    pub(super) warnings: Vec<Problem>,
    pub(super) refs: Vec<Ref>,
    pub(super) env: &'e dyn Fn(&str) -> Option<String>,
}

impl Cx<'_> {
    pub(super) fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
    pub(super) fn refer(&mut self, path: String, kind: RefKind, name: &str) {
        self.refs.push(Ref {
            at: self.problems.len(),
            path,
            kind,
            name: name.to_owned(),
        });
    }
}

/// A key path segment: bare when TOML would allow it bare, quoted otherwise.
pub(super) fn seg(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        seg(key)
    } else {
        format!("{path}.{}", seg(key))
    }
}

pub(super) fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match did_you_mean(word, candidates) {
        Some(s) => format!(" — did you mean \"{s}\"?"),
        None => String::new(),
    }
}

pub(super) fn suggest_or_list(word: &str, known: &[&str]) -> String {
    match did_you_mean(word, known.iter().copied()) {
        Some(s) => format!(" — did you mean \"{s}\"?"),
        None => format!(" (known: {})", known.join(", ")),
    }
}

pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(x) => format!("the number {x}"),
        Value::Boolean(b) => format!("{b}"),
        Value::Datetime(_) => "a date-time".into(),
        Value::Array(_) => "an array".into(),
        Value::Table(_) => "a table".into(),
    }
}

pub(super) fn expected(what: &str, v: &Value) -> String {
    format!("expected {what}, found {}", describe(v))
}

pub(super) fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    let msg = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let path = match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {col}")
        }
        None => "toml".into(),
    };
    Problem {
        path,
        message: format!("TOML syntax error: {msg}"),
    }
}

/// An optional positive integer: `None` when absent, `Some(None)` when wrong (reported).
pub(super) fn positive_int(cx: &mut Cx, rec: &Rec, key: &str) -> Option<Option<usize>> {
    match rec.t.get(key)? {
        Value::Integer(i) if *i > 0 => Some(usize::try_from(*i).ok()),
        v => {
            cx.err(rec.at(key), expected("a positive integer", v));
            Some(None)
        }
    }
}

/// The last line of a regex error (`error: unclosed group`), without its diagram.
pub(super) fn regex_error(e: &regex::Error) -> String {
    let s = e.to_string();
    s.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l).to_owned())
        .unwrap_or(s)
}

/// A table being read, with its key path.
pub(super) struct Rec<'t> {
    pub(super) t: &'t Table,
    pub(super) path: String,
}

impl<'t> Rec<'t> {
    pub(super) fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }
    pub(super) fn check_keys(&self, cx: &mut Cx, known: &[&str]) {
        for k in self.t.keys() {
            if !known.contains(&k.as_str()) {
                let msg = match did_you_mean(k, known.iter().copied()) {
                    Some(s) => format!("unknown key — did you mean \"{s}\"?"),
                    None => format!("unknown key (known keys here: {})", known.join(", ")),
                };
                cx.err(self.at(k), msg);
            }
        }
    }
    pub(super) fn has(&self, key: &str) -> bool {
        self.t.contains_key(key)
    }
    pub(super) fn string(&self, cx: &mut Cx, key: &str) -> Option<&'t str> {
        match self.t.get(key)? {
            Value::String(s) => Some(s),
            v => {
                cx.err(self.at(key), expected("a string", v));
                None
            }
        }
    }
    pub(super) fn req_string(&self, cx: &mut Cx, key: &str) -> Option<&'t str> {
        if !self.has(key) {
            cx.err(self.at(key), "required key is missing (a string)");
            return None;
        }
        self.string(cx, key)
    }
    /// A Discord-style id, written as a string or an integer.
    pub(super) fn id(&self, cx: &mut Cx, key: &str) -> Option<String> {
        match self.t.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Integer(i) if *i >= 0 => Some(i.to_string()),
            v => {
                cx.err(self.at(key), expected("an id (a string of digits)", v));
                None
            }
        }
    }
    pub(super) fn bool(&self, cx: &mut Cx, key: &str) -> Option<bool> {
        match self.t.get(key)? {
            Value::Boolean(b) => Some(*b),
            v => {
                cx.err(self.at(key), expected("true or false", v));
                None
            }
        }
    }
    /// An array of strings, with each element's path. Bad elements are reported and skipped;
    /// `None` when absent or not an array.
    pub(super) fn strings(&self, cx: &mut Cx, key: &str) -> Option<Vec<(String, &'t str)>> {
        match self.t.get(key)? {
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    let p = format!("{}[{i}]", self.at(key));
                    match v {
                        Value::String(s) => out.push((p, s.as_str())),
                        v => cx.err(p, expected("a string", v)),
                    }
                }
                Some(out)
            }
            v => {
                cx.err(self.at(key), expected("an array of strings", v));
                None
            }
        }
    }
    pub(super) fn span(&self, cx: &mut Cx, key: &str) -> Option<Span> {
        let s = self.string(cx, key)?;
        match Span::parse(s) {
            Ok(d) => Some(d),
            Err(e) => {
                cx.err(self.at(key), e.0);
                None
            }
        }
    }
    /// A sub-table `[key]`; `None` when absent (or not a table, which is reported).
    pub(super) fn table(&self, cx: &mut Cx, key: &str) -> Option<Rec<'t>> {
        match self.t.get(key)? {
            Value::Table(t) => Some(Rec {
                t,
                path: self.at(key),
            }),
            v => {
                cx.err(self.at(key), expected(&format!("a table [{key}]"), v));
                None
            }
        }
    }
    /// The elements of an array of tables `[[key]]`, with their indexes.
    pub(super) fn records(&self, cx: &mut Cx, key: &str) -> Vec<(usize, &'t Table)> {
        match self.t.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v {
                        Value::Table(t) => out.push((i, t)),
                        v => cx.err(
                            format!("{}[{i}]", self.at(key)),
                            expected(&format!("a table ([[{key}]])"), v),
                        ),
                    }
                }
                out
            }
            Some(Value::Table(_)) => {
                cx.err(
                    self.at(key),
                    format!("write [[{key}]] (one per record), not [{key}]"),
                );
                Vec::new()
            }
            Some(v) => {
                cx.err(
                    self.at(key),
                    expected(&format!("an array of tables ([[{key}]])"), v),
                );
                Vec::new()
            }
        }
    }
}

pub(super) fn no_env(_: &str) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn unknown_keys_suggest() {
        let text = BASE
            .replace("owners = ", "ownres = ")
            .replace("[organization]", "[organisation]\n[organization]");
        let e = errors(&text);
        assert!(
            e.contains("app.figma.ownres: unknown key — did you mean \"owners\"?"),
            "{e}"
        );
        assert!(
            e.contains("organisation: unknown key — did you mean \"organization\"?"),
            "{e}"
        );
        // Without owners, the owner step cannot be resolved.
        assert!(
            e.contains("app.figma.approvals[1]: an \"owner\" step needs owners"),
            "{e}"
        );
    }

    #[test]
    fn type_errors_name_the_key() {
        let text = BASE.replace("approvals = [", "requestable = \"no\"\napprovals = [");
        let text = text.replace("owners = [\"carol\"]", "owners = \"carol\"");
        let e = errors(&text);
        assert!(
            e.contains("app.figma.requestable: expected true or false, found the string \"no\""),
            "{e}"
        );
        assert!(
            e.contains(
                "app.figma.owners: expected an array of strings, found the string \"carol\""
            ),
            "{e}"
        );
    }
}
