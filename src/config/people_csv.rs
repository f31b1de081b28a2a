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

/// A CSV record: the line it starts on, and its fields.
type CsvRecord = (usize, Vec<String>);

/// Splits CSV text into records (RFC 4180 quoting), each with the line it starts on. Blank
/// lines are skipped.
fn csv_records(text: &str) -> Result<Vec<CsvRecord>, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut row_line = 1;
    let mut it = text.chars().peekable();
    let finish = |row: &mut Vec<String>, field: &mut String, rows: &mut Vec<_>, at: usize| {
        row.push(std::mem::take(field));
        let r = std::mem::take(row);
        if !(r.len() == 1 && r[0].trim().is_empty()) {
            rows.push((at, r));
        }
    };
    while let Some(c) = it.next() {
        if in_quotes {
            match c {
                '"' if it.peek() == Some(&'"') => {
                    it.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if field.trim().is_empty() => {
                field.clear();
                in_quotes = true;
            }
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if it.peek() == Some(&'\n') => {}
            '\n' => {
                finish(&mut row, &mut field, &mut rows, row_line);
                line += 1;
                row_line = line;
            }
            c => field.push(c),
        }
    }
    if in_quotes {
        return Err((row_line, "a quoted field is never closed".into()));
    }
    if !row.is_empty() || !field.trim().is_empty() {
        finish(&mut row, &mut field, &mut rows, row_line);
    }
    Ok(rows)
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
}
