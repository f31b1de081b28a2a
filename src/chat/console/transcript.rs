//! The transcript's entries: a message or a form, as JSON (`--json`) or for people.

use std::io::Write;

use serde::{Serialize, Serializer};

use crate::core::ports::{Button, MessageKey};
use crate::core::service::Form;

/// One message (or form) as the transcript shows it. As JSON, a message is
/// `{"seq","to","where","kind","ref"?,"text","buttons"}` and a form
/// `{"seq","to","where","kind":"form","title","fields":[{"id","label","required","value"[,"hint"]}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// Position in the transcript.
    pub seq: u64,
    /// Recipient's handle (None for a channel).
    pub to: Option<String>,
    /// `dm`, `reply` or `channel:NAME`.
    pub place: String,
    /// `new`, `edit` or `form`.
    pub kind: &'static str,
    /// For an edit: the message edited.
    pub edits: Option<u64>,
    /// Full text (empty for a form).
    pub text: String,
    /// Labels still clickable.
    pub buttons: Vec<String>,
    /// For a form: the form the person is asked to fill (`:submit`).
    pub form: Option<Form>,
    pub(super) clickable: Vec<Button>,
    pub(super) key: Option<MessageKey>,
}

/// A message as the JSON transcript writes it.
#[derive(Serialize)]
struct MessageOut<'a> {
    seq: u64,
    to: &'a Option<String>,
    #[serde(rename = "where")]
    place: &'a str,
    kind: &'a str,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    edits: Option<u64>,
    text: &'a str,
    buttons: &'a [String],
}

/// A form as the JSON transcript writes it.
#[derive(Serialize)]
struct FormOut<'a> {
    seq: u64,
    to: &'a Option<String>,
    #[serde(rename = "where")]
    place: &'a str,
    kind: &'a str,
    title: &'a str,
    fields: Vec<FieldOut<'a>>,
}

/// One field of a form as the JSON transcript writes it.
#[derive(Serialize)]
struct FieldOut<'a> {
    id: &'a str,
    label: &'a str,
    required: bool,
    value: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: &'a Option<String>,
}

impl Serialize for Shown {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.form {
            Some(f) => FormOut {
                seq: self.seq,
                to: &self.to,
                place: &self.place,
                kind: self.kind,
                title: &f.title,
                fields: f
                    .fields
                    .iter()
                    .map(|x| FieldOut {
                        id: &x.id,
                        label: &x.label,
                        required: x.required,
                        value: &x.value,
                        hint: &x.hint,
                    })
                    .collect(),
            }
            .serialize(s),
            None => MessageOut {
                seq: self.seq,
                to: &self.to,
                place: &self.place,
                kind: self.kind,
                edits: self.edits,
                text: &self.text,
                buttons: &self.buttons,
            }
            .serialize(s),
        }
    }
}

/// How a transcript is printed for people (a form: its title, its fields and how to submit it).
pub fn print_human(m: &Shown, out: &mut impl Write) {
    let whom = m.to.as_deref().unwrap_or("-");
    if let Some(f) = &m.form {
        let _ = writeln!(out, "#{} [form → {whom}] {}", m.seq, f.title);
        for x in &f.fields {
            let need = if x.required { "required" } else { "optional" };
            let value = x
                .value
                .as_ref()
                .map(|v| format!(", now \"{v}\""))
                .unwrap_or_default();
            let _ = writeln!(out, "   {}: {} ({need}{value})", x.id, x.label);
            if let Some(h) = &x.hint {
                let _ = writeln!(out, "      {h}");
            }
        }
        let example: Vec<String> = f
            .fields
            .iter()
            .filter(|x| x.required)
            .map(|x| format!("{}:\"…\"", x.id))
            .collect();
        let _ = writeln!(out, "   Fill it in with :submit {}", example.join(" "));
        return;
    }
    let head = match (m.kind, m.edits) {
        ("edit", Some(r)) => format!("#{} edit of #{r} [{} → {whom}]", m.seq, m.place),
        _ => format!("#{} [{} → {whom}]", m.seq, m.place),
    };
    let buttons = if m.buttons.is_empty() {
        String::new()
    } else {
        format!(
            "\n   {}",
            m.buttons
                .iter()
                .map(|b| format!("[{b}]"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    let text = m.text.replace('\n', "\n   ");
    let _ = writeln!(out, "{head}\n   {text}{buttons}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::service::FormField;

    #[test]
    fn a_form_prints_its_fields_and_how_to_submit_it() {
        let mut f = Form::one(
            "v1:req:1:s0:deny",
            "Deny request #1",
            FormField::reason("Why?"),
        );
        f.fields.push(FormField {
            value: Some("123456".into()),
            required: false,
            ..FormField::code()
        });
        let m = Shown {
            seq: 4,
            to: Some("bob".into()),
            place: "reply".into(),
            kind: "form",
            edits: None,
            text: String::new(),
            buttons: Vec::new(),
            form: Some(f),
            clickable: Vec::new(),
            key: None,
        };
        let mut out = Vec::new();
        print_human(&m, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "#4 [form → bob] Deny request #1\n   reason: Why? (required)\n   code: Code from your \
             authenticator app (optional, now \"123456\")\n   Fill it in with :submit reason:\"…\"\n"
        );
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"seq":4,"to":"bob","where":"reply","kind":"form",
                "title":"Deny request #1","fields":[
                {"id":"reason","label":"Why?","required":true,"value":null},
                {"id":"code","label":"Code from your authenticator app","required":false,"value":"123456"}]})
        );
    }
}
