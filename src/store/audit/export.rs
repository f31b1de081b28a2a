//! Reading the rows out, and writing them as JSONL or CSV.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::{AuditRecord, record_from_row};
use crate::store::db::q;
use crate::store::rows::micros;
use crate::store::{DbError, SqlStore};

impl SqlStore {
    /// The audit rows, oldest first; with `since`, only rows at or after it.
    pub async fn audit_rows(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditRecord>, DbError> {
        let rows = q(concat!(audit_cols!(), "WHERE at >= ? ORDER BY seq"))
            .bind(since.map_or(i64::MIN, micros))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record_from_row).collect()
    }
}

/// Writes one JSON object per row, one row per line.
pub fn write_jsonl(rows: &[AuditRecord], out: &mut impl Write) -> std::io::Result<()> {
    for r in rows {
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The CSV columns, in order.
const CSV_HEADER: [&str; 13] = [
    "seq",
    "at",
    "actor",
    "actor_chat_id",
    "action",
    "subject",
    "app",
    "request",
    "connector_action",
    "outcome",
    "detail",
    "hash",
    "prev_hash",
];

/// Whether a spreadsheet would read the cell as a formula (OWASP "CSV injection"): it starts
/// with `=`, `+`, `-`, `@`, a tab or a carriage return.
fn formula_like(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

fn csv_field(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    if formula_like(s) {
        // OWASP's advice: prefix a single quote, so the cell is text, and quote the field.
        return write!(out, "\"'{}\"", s.replace('"', "\"\""));
    }
    if s.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", s.replace('"', "\"\""))
    } else {
        out.write_all(s.as_bytes())
    }
}

/// Writes RFC 4180 CSV: a header row, then one line per row (CRLF line ends); absent values
/// are empty fields. A cell a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
/// `@`, tab or CR) is written as text with a leading `'`: the CSV is for reading, the JSONL
/// export is the verbatim (hashable) form.
pub fn write_csv(rows: &[AuditRecord], out: &mut impl Write) -> std::io::Result<()> {
    out.write_all(CSV_HEADER.join(",").as_bytes())?;
    out.write_all(b"\r\n")?;
    for r in rows {
        let opt_i = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let fields: [String; 13] = [
            r.seq.to_string(),
            r.at.clone(),
            r.actor.clone(),
            r.actor_chat_id.clone().unwrap_or_default(),
            r.action.clone(),
            r.subject.clone().unwrap_or_default(),
            r.app.clone().unwrap_or_default(),
            opt_i(r.request),
            opt_i(r.connector_action),
            r.outcome.clone(),
            r.detail.clone(),
            r.hash.clone(),
            r.prev_hash.clone(),
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            csv_field(out, f)?;
        }
        out.write_all(b"\r\n")?;
    }
    Ok(())
}
