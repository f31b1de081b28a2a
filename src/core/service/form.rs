//! A form to fill before a click or a command goes on (Discord: a modal). The adapter shows
//! it and submits its values through [`Service::click`](super::Service::click) with the
//! form's `custom_id`.

use std::collections::HashMap;

/// A form of one or more text fields (Discord shows at most 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The id the filled form is submitted with (a click's custom id).
    pub custom_id: String,
    /// The form's title (Discord shows at most 45 characters).
    pub title: String,
    /// The fields, in order.
    pub fields: Vec<FormField>,
}

/// One text field of a [`Form`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    /// The field's id: the key of its value when the form is submitted.
    pub id: String,
    /// What the person sees above it (Discord shows at most 45 characters).
    pub label: String,
    /// The value it starts with, if any.
    pub value: Option<String>,
    /// Whether the form cannot be submitted without it.
    pub required: bool,
    /// The longest value allowed, in characters.
    pub max_len: u16,
    /// A paragraph (several lines) rather than one line.
    pub long: bool,
    /// A hint shown in the empty field (Discord's placeholder, at most 100 characters).
    pub hint: Option<String>,
}

impl Form {
    /// A form with one field.
    pub fn one(custom_id: impl Into<String>, title: impl Into<String>, field: FormField) -> Self {
        Self {
            custom_id: custom_id.into(),
            title: title.into(),
            fields: vec![field],
        }
    }

    /// The values to submit: each field's given value (trimmed), else its prefilled one;
    /// or, when a required field is still empty, the ids of every such field.
    pub fn fill(
        &self,
        given: &HashMap<String, String>,
    ) -> Result<HashMap<String, String>, Vec<String>> {
        let mut values = HashMap::new();
        let mut missing = Vec::new();
        for f in &self.fields {
            let v = given
                .get(&f.id)
                .or(f.value.as_ref())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty());
            match v {
                Some(v) => {
                    values.insert(f.id.clone(), v);
                }
                None if f.required => missing.push(f.id.clone()),
                None => {}
            }
        }
        if missing.is_empty() {
            Ok(values)
        } else {
            Err(missing)
        }
    }
}

impl FormField {
    /// A required paragraph `reason` (up to 500 characters) labelled `label`.
    pub fn reason(label: impl Into<String>) -> Self {
        Self {
            id: "reason".into(),
            label: label.into(),
            value: None,
            required: true,
            max_len: 500,
            long: true,
            hint: None,
        }
    }

    /// A required one-line `code` from an authenticator app (up to 8 characters).
    pub fn code() -> Self {
        Self {
            id: "code".into(),
            label: "Code from your authenticator app".into(),
            value: None,
            required: true,
            max_len: 8,
            long: false,
            hint: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_uses_given_then_prefilled_values_and_names_what_is_missing() {
        let mut f = Form::one("deny:1:1", "Deny", FormField::reason("Why?"));
        f.fields.push(FormField {
            value: Some("123456".into()),
            ..FormField::code()
        });
        let mut given = HashMap::new();
        assert_eq!(f.fill(&given), Err(vec!["reason".to_owned()]));
        given.insert("reason".to_owned(), "  ".to_owned());
        assert_eq!(f.fill(&given), Err(vec!["reason".to_owned()]));
        given.insert("reason".to_owned(), " not now ".to_owned());
        let v = f.fill(&given).unwrap();
        assert_eq!(v["reason"], "not now");
        assert_eq!(v["code"], "123456");
    }
}
