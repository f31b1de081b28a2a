//! The people CSV (`[organization] people_file`): a header row of person keys, then one person
//! per row. Problems are reported as `FILE:LINE` or `FILE:LINE.key`.

use std::collections::HashMap;

use super::org::person_from_fields;
use super::{ConfigErrors, Cx, Problem, keys, no_env, suggest_or_list};
use crate::core::model::Person;

/// One data row of a people CSV.
#[derive(Debug, Clone)]
pub struct PeopleRow {
    /// Line number in the file (1 is the header), where the row starts.
    pub line: usize,
    /// The person, or what is wrong with the row (references such as `manager` and `role`
    /// are not checked here).
    pub result: Result<Person, Vec<Problem>>,
}

/// Reads a people CSV (header row of person keys: `handle,name,email,department,role,manager,
/// discord_id,timezone`; `handle`, `name`, `email` and `role` are required columns). `source` names the
/// file in problem paths (`people.csv:4.email`). A header problem fails the whole file; a bad
/// row fails only itself.
pub fn parse_people_csv(text: &str, source: &str) -> Result<Vec<PeopleRow>, ConfigErrors> {
    let records = csv_records(text).map_err(|(line, msg)| {
        ConfigErrors(vec![Problem {
            path: format!("{source}:{line}"),
            message: msg,
        }])
    })?;
    let mut it = records.into_iter();
    let Some((hline, header)) = it.next() else {
        return Err(ConfigErrors(vec![Problem {
            path: source.to_owned(),
            message: "the file is empty; it needs a header row naming its columns".into(),
        }]));
    };
    let columns = columns(&header, &format!("{source}:{hline}"))?;
    Ok(it
        .map(|(line, fields)| PeopleRow {
            line,
            result: row(&columns, &format!("{source}:{line}"), fields),
        })
        .collect())
}

/// The person key each column holds (`None`: an unknown column, reported), or every problem
/// with the header at `at`.
fn columns(header: &[String], at: &str) -> Result<Vec<Option<&'static str>>, ConfigErrors> {
    let mut problems = Vec::new();
    let person_keys = keys::keys("person");
    let mut columns: Vec<Option<&'static str>> = Vec::new();
    for h in header {
        let h = h.trim();
        match person_keys.iter().find(|k| **k == h) {
            Some(k) => {
                if columns.contains(&Some(*k)) {
                    problems.push(Problem {
                        path: at.to_owned(),
                        message: format!("column \"{h}\" appears twice"),
                    });
                }
                columns.push(Some(*k));
            }
            None => {
                problems.push(Problem {
                    path: at.to_owned(),
                    message: format!("unknown column \"{h}\"{}", suggest_or_list(h, &person_keys)),
                });
                columns.push(None);
            }
        }
    }
    for req in ["handle", "name", "email", "role"] {
        if !columns.contains(&Some(req)) {
            problems.push(Problem {
                path: at.to_owned(),
                message: format!("the header has no \"{req}\" column, which is required"),
            });
        }
    }
    if problems.is_empty() {
        Ok(columns)
    } else {
        Err(ConfigErrors(problems))
    }
}

/// The person on one data row, whose problems are at `prefix` (`people.csv:4`).
fn row(
    columns: &[Option<&'static str>],
    prefix: &str,
    fields: Vec<String>,
) -> Result<Person, Vec<Problem>> {
    // The csv crate opens a quoted field only right after the comma; a space before the
    // quote would silently keep the quotes (or split the field at its comma).
    if fields
        .iter()
        .any(|f| f.starts_with(char::is_whitespace) && f.trim_start().starts_with('"'))
    {
        return Err(vec![Problem {
            path: prefix.to_owned(),
            message: "a quoted field must start with its quote, right after the comma \
                      (remove the space before the quote)"
                .into(),
        }]);
    }
    if fields.len() != columns.len() {
        return Err(vec![Problem {
            path: prefix.to_owned(),
            message: format!(
                "expected {} fields, as in the header, but found {}",
                columns.len(),
                fields.len()
            ),
        }]);
    }
    let map: HashMap<&str, String> = columns
        .iter()
        .zip(fields)
        .filter_map(|(c, v)| c.map(|c| (c, v.trim().to_owned())))
        .collect();
    let mut cx = Cx {
        problems: Vec::new(),
        warnings: Vec::new(),
        refs: Vec::new(),
        env: &no_env,
    };
    match person_from_fields(&mut cx, prefix, &map) {
        Some(p) if cx.problems.is_empty() => Ok(p),
        _ => Err(cx.problems),
    }
}

/// A CSV record: the line it starts on, and its fields as written (not trimmed).
type CsvRecord = (usize, Vec<String>);

/// Splits CSV text into records (RFC 4180, read by the `csv` crate), each with the line it
/// starts on. Blank lines are skipped; a leading byte-order mark is ignored.
fn csv_records(text: &str) -> Result<Vec<CsvRecord>, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let line_of = |p: Option<&csv::Position>| p.map_or(1, |p| p.line() as usize);
    let mut rows = Vec::new();
    let mut last = (1, 0);
    for record in reader.records() {
        let record = record.map_err(|e| (line_of(e.position()), e.to_string()))?;
        let line = line_of(record.position());
        last = (line, record.position().map_or(0, |p| p.byte() as usize));
        if !(record.len() == 1 && record[0].trim().is_empty()) {
            rows.push((line, record.iter().map(str::to_owned).collect()));
        }
    }
    // The csv crate ends a quoted field left open at the end of the input without a word.
    if quote_left_open(text.get(last.1..).unwrap_or_default()) {
        return Err((last.0, "a quoted field is never closed".into()));
    }
    Ok(rows)
}

/// Whether `raw`, the text of the last record, leaves a quoted field open: as in the `csv`
/// crate, a quote opens a field only at its start, and `""` inside one is a quote.
fn quote_left_open(raw: &str) -> bool {
    let mut open = false;
    let mut field_start = true;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if open {
            if c == '"' && chars.next_if_eq(&'"').is_none() {
                open = false;
                field_start = false;
            }
        } else if c == '"' && field_start {
            open = true;
        } else {
            field_start = matches!(c, ',' | '\n' | '\r');
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn people_file_problems_have_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "handle,name,email,role,manager\n\
                   lena,Lena Roy,lena@t.test,designr,carol\n\
                   \"max\",\"Max, Jr.\",max@t.test,designer,lena\n\
                   carol,Carol Two,c2@t.test,designer,\n";
        std::fs::write(dir.path().join("people.csv"), csv).unwrap();
        let text = BASE.replace("name = \"T\"", "name = \"T\"\npeople_file = \"people.csv\"");
        let e = parse(&text, dir.path(), &no_env).unwrap_err().to_string();
        assert!(
            e.contains("people.csv:2.role: no role \"designr\" — did you mean \"designer\"?"),
            "{e}"
        );
        assert!(
            e.contains(
                "people.csv:4.handle: duplicate handle \"carol\": already used by person.carol"
            ),
            "{e}"
        );
        assert!(!e.contains("people.csv:3"), "{e}");

        let rows = parse_people_csv(
            "handle,name,email,role\nx,\"A \"\"B\"\"\",x@t.test,r\n",
            "p",
        )
        .unwrap();
        assert_eq!(rows[0].result.as_ref().unwrap().name, "A \"B\"");
        let bad = parse_people_csv("handle,nmae,email,role\n", "p").unwrap_err();
        assert_eq!(
            bad.to_string(),
            "p:1: unknown column \"nmae\" — did you mean \"name\"?\n\
             p:1: the header has no \"name\" column, which is required"
        );
    }

    #[test]
    fn csv_edges_are_read_as_before() {
        // A byte-order mark, CRLF, blank lines and a quoted field over two lines.
        let rows = parse_people_csv(
            "\u{feff}handle,name,email,role\r\n\r\n  \nx,\"A\nB\",x@t.test,r\ny,Y,y@t.test,r\n",
            "p",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 4);
        let e = rows[0].result.as_ref().unwrap_err();
        assert_eq!(e[0].path, "p:4.name", "{e:?}");
        assert_eq!(rows[1].result.as_ref().unwrap().name, "Y");
        assert_eq!(rows[1].line, 6);
        let e = parse_people_csv("handle,name,email,role\nx,\"A,x@t.test,r\n", "p").unwrap_err();
        assert_eq!(e.to_string(), "p:2: a quoted field is never closed");
        assert!(
            parse_people_csv("", "p")
                .unwrap_err()
                .to_string()
                .contains("the file is empty")
        );
        let rows =
            parse_people_csv("handle,name,email,role\nx, \"A, B\",x@t.test,r\n", "p").unwrap();
        let e = rows[0].result.as_ref().unwrap_err();
        assert!(e[0].message.contains("must start with its quote"), "{e:?}");
        let rows = parse_people_csv("handle,name,email,role\nx,A,x@t.test\n", "p").unwrap();
        let e = rows[0].result.as_ref().unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "p:2: expected 4 fields, as in the header, but found 3"
        );
    }
}
