//! SCIM filters (RFC 7644 §3.4.2.2): `eq ne co sw ew pr gt ge lt le`, `and`, `or`, `not`,
//! parentheses and value paths (`emails[type eq "work"]`), plus the form Entra sends with a
//! sub-attribute after the brackets (`emails[type eq "work"].value eq "x"`). Attribute names
//! are resolved against the schemas when parsing: an unknown one is `invalidFilter`.

use serde_json::Value;

use super::path::resolve;
use super::schema::{Attr, Ty};
use super::{ScimError, ScimKind, ScimType};

/// The longest filter accepted.
pub const MAX_LEN: usize = 4096;
/// The deepest nesting accepted.
const MAX_DEPTH: usize = 32;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// equal
    Eq,
    /// not equal
    Ne,
    /// contains
    Co,
    /// starts with
    Sw,
    /// ends with
    Ew,
    /// greater than
    Gt,
    /// greater or equal
    Ge,
    /// less than
    Lt,
    /// less or equal
    Le,
}

impl Op {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

/// What a comparison reads: a top-level attribute (maybe under an extension URN) and maybe a
/// sub-attribute; within a value path, `attr` is the sub-attribute of the element.
#[derive(Debug, Clone, PartialEq)]
pub struct Operand {
    /// The extension URN (None: core or common).
    pub urn: Option<&'static str>,
    /// The attribute (canonical name).
    pub attr: String,
    /// The sub-attribute (canonical name).
    pub sub: Option<String>,
    /// The type of what is compared.
    pub ty: Ty,
    /// Case-sensitive comparison.
    pub case_exact: bool,
    /// The attribute is complex and multi-valued with no sub named: its `value` is compared.
    pub implicit_value: bool,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Both.
    And(Box<Filter>, Box<Filter>),
    /// Either.
    Or(Box<Filter>, Box<Filter>),
    /// Not.
    Not(Box<Filter>),
    /// A comparison.
    Cmp(Operand, Op, Value),
    /// `pr`: has a value.
    Present(Operand),
    /// A value path: some element of the multi-valued attribute matches the inner filter.
    Has(Operand, Box<Filter>),
}

/// Parses a filter on resources of `kind`.
pub fn parse(kind: ScimKind, text: &str) -> Result<Filter, ScimError> {
    parse_in(kind, None, text)
}

/// Parses a filter on the elements of the multi-valued attribute `within`.
pub fn parse_within(kind: ScimKind, within: &Attr, text: &str) -> Result<Filter, ScimError> {
    parse_in(kind, Some(within), text)
}

fn parse_in(kind: ScimKind, within: Option<&Attr>, text: &str) -> Result<Filter, ScimError> {
    if text.len() > MAX_LEN {
        return Err(ScimError::bad(
            ScimType::InvalidFilter,
            "the filter is too long",
        ));
    }
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
        kind,
        within,
        depth: 0,
    };
    let f = p.or()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("unexpected text"));
    }
    Ok(f)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    kind: ScimKind,
    within: Option<&'a Attr>,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, m: &str) -> ScimError {
        ScimError::bad(
            ScimType::InvalidFilter,
            format!("filter \"{}\": {m} at character {}", self.text, self.i + 1),
        )
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    /// A word: letters, digits and `:._$-` (attribute paths, operators, literals).
    fn word(&mut self) -> &str {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || b":._$-+".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        &self.text[start..self.i]
    }

    fn keyword(&mut self, k: &str) -> bool {
        let save = self.i;
        let w = self.word();
        if w.eq_ignore_ascii_case(k) {
            true
        } else {
            self.i = save;
            false
        }
    }

    fn or(&mut self) -> Result<Filter, ScimError> {
        let mut l = self.and()?;
        while self.keyword("or") {
            l = Filter::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Filter, ScimError> {
        let mut l = self.unary()?;
        while self.keyword("and") {
            l = Filter::And(Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }

    fn unary(&mut self) -> Result<Filter, ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nested too deep"));
        }
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self) -> Result<Filter, ScimError> {
        if self.peek() == Some(b'(') {
            self.i += 1;
            let f = self.or()?;
            if self.peek() != Some(b')') {
                return Err(self.err("expected )"));
            }
            self.i += 1;
            return Ok(f);
        }
        let save = self.i;
        if self.keyword("not") {
            if self.peek() == Some(b'(') {
                return Ok(Filter::Not(Box::new(self.unary()?)));
            }
            self.i = save;
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Filter, ScimError> {
        let name = self.word().to_owned();
        if name.is_empty() {
            return Err(self.err("expected an attribute"));
        }
        if self.s.get(self.i) == Some(&b'[') {
            return self.value_path(&name);
        }
        let operand = self.operand(&name)?;
        self.rest(operand)
    }

    /// The operator and value after an operand.
    fn rest(&mut self, operand: Operand) -> Result<Filter, ScimError> {
        let op = self.word().to_owned();
        if op.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(operand));
        }
        let op = Op::parse(&op).ok_or_else(|| self.err("expected an operator"))?;
        let value = self.value()?;
        check_types(&operand, op, &value).map_err(|m| self.err(m))?;
        Ok(Filter::Cmp(operand, op, value))
    }

    /// `attr[inner]`, maybe followed by `.sub OP value` (Entra).
    fn value_path(&mut self, name: &str) -> Result<Filter, ScimError> {
        if self.within.is_some() {
            return Err(self.err("a value path cannot nest"));
        }
        let outer = self.operand(name)?;
        let def = self
            .top_def(&outer)
            .filter(|d| d.multi && d.ty == Ty::Complex)
            .ok_or_else(|| self.err("a value path needs a multi-valued complex attribute"))?;
        self.i += 1; // [
        let start = self.i;
        let mut depth = 1;
        while self.i < self.s.len() && depth > 0 {
            match self.s[self.i] {
                b'[' => depth += 1,
                b']' => depth -= 1,
                b'"' => self.skip_string(),
                _ => {}
            }
            self.i += 1;
        }
        if depth != 0 {
            return Err(self.err("an unclosed ["));
        }
        let inner = parse_within(self.kind, def, &self.text[start..self.i - 1])?;
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            let sub = self.word().to_owned();
            let sd = def
                .sub_attr(&sub)
                .ok_or_else(|| self.err("unknown sub-attribute"))?;
            let operand = Operand {
                urn: None,
                attr: sd.name.clone(),
                sub: None,
                ty: sd.ty,
                case_exact: sd.case_exact,
                implicit_value: false,
            };
            let more = self.rest(operand)?;
            return Ok(Filter::Has(
                outer,
                Box::new(Filter::And(Box::new(inner), Box::new(more))),
            ));
        }
        Ok(Filter::Has(outer, Box::new(inner)))
    }

    fn skip_string(&mut self) {
        self.i += 1;
        while self.i < self.s.len() && self.s[self.i] != b'"' {
            if self.s[self.i] == b'\\' {
                self.i += 1;
            }
            self.i += 1;
        }
    }

    fn top_def(&self, o: &Operand) -> Option<&'static Attr> {
        super::schema::SCHEMAS.attr(self.kind, o.urn, &o.attr)
    }

    fn operand(&self, name: &str) -> Result<Operand, ScimError> {
        if let Some(w) = self.within {
            let d = w.sub_attr(name).ok_or_else(|| {
                ScimError::bad(
                    ScimType::InvalidFilter,
                    format!("unknown attribute \"{}.{name}\"", w.name),
                )
            })?;
            return Ok(Operand {
                urn: None,
                attr: d.name.clone(),
                sub: None,
                ty: d.ty,
                case_exact: d.case_exact,
                implicit_value: false,
            });
        }
        let (urn, attr, sub) = resolve(self.kind, name, ScimType::InvalidFilter)?;
        let def = super::schema::SCHEMAS
            .attr(self.kind, urn, &attr)
            .ok_or_else(|| self.err("unknown attribute"))?;
        let (leaf, implicit) = match &sub {
            Some(s) => (def.sub_attr(s).unwrap_or(def), false),
            None if def.ty == Ty::Complex => match def.sub_attr("value") {
                Some(v) => (v, true),
                None => (def, false),
            },
            None => (def, false),
        };
        Ok(Operand {
            urn,
            attr,
            sub,
            ty: leaf.ty,
            case_exact: leaf.case_exact,
            implicit_value: implicit,
        })
    }

    fn value(&mut self) -> Result<Value, ScimError> {
        if self.peek() == Some(b'"') {
            let start = self.i;
            self.skip_string();
            if self.i >= self.s.len() {
                return Err(self.err("an unclosed string"));
            }
            self.i += 1;
            return serde_json::from_str(&self.text[start..self.i])
                .map_err(|_| self.err("a malformed string"));
        }
        let w = self.word().to_owned();
        match w.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "null" => Ok(Value::Null),
            _ => serde_json::from_str::<serde_json::Number>(&w)
                .map(Value::Number)
                .map_err(|_| self.err("expected a value")),
        }
    }
}

/// Refuses what cannot be compared: ordering or substrings on booleans, substrings on numbers.
fn check_types(o: &Operand, op: Op, v: &Value) -> Result<(), &'static str> {
    let ordering = matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le);
    let substring = matches!(op, Op::Co | Op::Sw | Op::Ew);
    match o.ty {
        Ty::Boolean if ordering || substring => Err("a boolean compares with eq or ne only"),
        Ty::Complex => Err("a complex attribute cannot be compared"),
        Ty::Integer | Ty::Decimal if substring => Err("a number cannot be matched as text"),
        _ if v.is_null() && !matches!(op, Op::Eq | Op::Ne) => Err("null compares with eq or ne"),
        _ => Ok(()),
    }
}

/// Looks a key up in an object, case-insensitively.
pub fn get_ci<'v>(obj: &'v Value, key: &str) -> Option<&'v Value> {
    let o = obj.as_object()?;
    o.get(key).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The values an operand reads from `res` (flattened across multi-valued attributes).
fn values<'v>(res: &'v Value, o: &Operand) -> Vec<&'v Value> {
    let base = match o.urn {
        Some(u) => get_ci(res, u),
        None => Some(res),
    };
    let Some(top) = base.and_then(|b| get_ci(b, &o.attr)) else {
        return Vec::new();
    };
    let sub = o.sub.as_deref().or(if o.implicit_value {
        Some("value")
    } else {
        None
    });
    let items: Vec<&Value> = match top {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    match sub {
        None => items,
        Some(s) => items.into_iter().filter_map(|x| get_ci(x, s)).collect(),
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compare(o: &Operand, op: Op, have: &Value, want: &Value) -> bool {
    if want.is_null() {
        return match op {
            Op::Eq => have.is_null(),
            _ => !have.is_null(),
        };
    }
    if let (Some(a), Some(b)) = (have.as_f64(), want.as_f64())
        && matches!(o.ty, Ty::Integer | Ty::Decimal)
    {
        return match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            _ => false,
        };
    }
    if o.ty == Ty::Boolean {
        let h = have.as_bool().or_else(|| {
            have.as_str()
                .and_then(|s| s.to_ascii_lowercase().parse().ok())
        });
        return match op {
            Op::Eq => h == want.as_bool(),
            Op::Ne => h != want.as_bool(),
            _ => false,
        };
    }
    let (Some(mut a), Some(mut b)) = (text_of(have), text_of(want)) else {
        return false;
    };
    if !o.case_exact {
        a = a.to_lowercase();
        b = b.to_lowercase();
    }
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Co => a.contains(&b),
        Op::Sw => a.starts_with(&b),
        Op::Ew => a.ends_with(&b),
        Op::Gt => a > b,
        Op::Ge => a >= b,
        Op::Lt => a < b,
        Op::Le => a <= b,
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

impl Filter {
    /// Whether `res` (a resource's full wire form, or an element within a value path)
    /// matches.
    pub fn matches(&self, res: &Value) -> bool {
        match self {
            Self::And(a, b) => a.matches(res) && b.matches(res),
            Self::Or(a, b) => a.matches(res) || b.matches(res),
            Self::Not(a) => !a.matches(res),
            Self::Present(o) => values(res, o).into_iter().any(present),
            Self::Cmp(o, Op::Ne, want) => {
                // "ne" holds when no value equals (an absent attribute is not equal).
                !values(res, o)
                    .into_iter()
                    .any(|h| compare(o, Op::Eq, h, want))
            }
            Self::Cmp(o, op, want) => values(res, o).into_iter().any(|h| compare(o, *op, h, want)),
            Self::Has(o, inner) => {
                let base = match o.urn {
                    Some(u) => get_ci(res, u),
                    None => Some(res),
                };
                base.and_then(|b| get_ci(b, &o.attr))
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|e| inner.matches(e)))
            }
        }
    }

    /// The value an `eq` on `attr` (core, no sub-attribute) pins, when the whole filter needs
    /// it (the filter is that comparison, or an `and` holding it): an index can narrow the
    /// candidates to it.
    pub fn pinned(&self, attr: &str) -> Option<&str> {
        match self {
            Self::Cmp(o, Op::Eq, Value::String(v))
                if o.urn.is_none() && o.sub.is_none() && o.attr.eq_ignore_ascii_case(attr) =>
            {
                Some(v)
            }
            Self::And(a, b) => a.pinned(attr).or_else(|| b.pinned(attr)),
            _ => None,
        }
    }

    /// Whether the filter reads `attr` (core, top level) anywhere.
    pub fn mentions(&self, attr: &str) -> bool {
        match self {
            Self::And(a, b) | Self::Or(a, b) => a.mentions(attr) || b.mentions(attr),
            Self::Not(a) => a.mentions(attr),
            Self::Cmp(o, _, _) | Self::Present(o) | Self::Has(o, _) => {
                o.urn.is_none() && o.attr.eq_ignore_ascii_case(attr)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "id": "u1", "userName": "Alice@Acme.test", "active": true, "title": "Engineer",
            "emails": [{"value": "alice@acme.test", "type": "work", "primary": true},
                       {"value": "a@home.test", "type": "home"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                {"department": "Engineering", "manager": {"value": "u0"}},
            "meta": {"lastModified": "2026-12-01T00:00:00Z"}
        })
    }

    fn m(f: &str) -> bool {
        parse(ScimKind::User, f).unwrap().matches(&user())
    }

    #[test]
    fn the_filters_okta_and_entra_send_match() {
        assert!(m(r#"userName eq "alice@acme.test""#));
        assert!(m(r#"externalId pr or userName sw "ali""#));
        assert!(!m(r#"externalId eq "x""#));
        assert!(m(r#"emails[type eq "work"].value eq "alice@acme.test""#));
        assert!(!m(r#"emails[type eq "home"].value eq "alice@acme.test""#));
        assert!(m(r#"emails.value co "home""#));
        assert!(m(r#"emails co "home""#));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "engineering""#
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "u0""#
        ));
        assert!(m(r#"not (title ew "x") and (active eq true)"#));
        assert!(m(r#"meta.lastModified gt "2026-11-01T00:00:00Z""#));
        assert!(m(r#"title ne "Boss""#));
        assert!(!m(r#"nickName ne "x" and nickName pr"#));
        let g = parse(ScimKind::Group, r#"members[value eq "u1"]"#).unwrap();
        assert!(g.matches(&json!({"members": [{"value": "u1"}]})));
    }

    #[test]
    fn unknown_attributes_and_malformed_filters_are_invalid_filter() {
        for f in [
            r#"shoeSize eq "9""#,
            r#"userName eq"#,
            r#"userName zz "x""#,
            r#"(userName eq "x""#,
            r#"active gt true"#,
            r#"emails[shoe eq "x"]"#,
            r#"userName eq "x" garbage"#,
        ] {
            let e = parse(ScimKind::User, f).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{f}");
        }
    }

    #[test]
    fn an_eq_the_whole_filter_needs_is_pinned() {
        let f = parse(ScimKind::User, r#"userName eq "a" and active eq true"#).unwrap();
        assert_eq!(f.pinned("userName"), Some("a"));
        let f = parse(ScimKind::User, r#"userName eq "a" or active eq true"#).unwrap();
        assert_eq!(f.pinned("userName"), None);
    }
}
