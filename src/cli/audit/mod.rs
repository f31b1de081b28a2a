//! `audit verify | export | show`: the hash chain checked, the trail written out or told.

mod story;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use quartermaster::core::model::{Handle, Zone};
use quartermaster::store::{self, VerifyReport};
use quartermaster::wiring;

use super::{LogFormat, base_dir, load_config, telemetry};

/// `audit …`: the audit trail.
#[derive(Subcommand)]
pub enum AuditVerb {
    /// Check the hash chain: exit 0 with the row count, or 1 naming the first bad row.
    Verify {
        /// Config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL.
        #[arg(long)]
        db: Option<String>,
        /// Also check the chain against this anchor file (`[audit] anchor_file`): a chain
        /// shorter than an anchor, or with another hash at an anchored row, fails.
        #[arg(long)]
        anchors: Option<PathBuf>,
    },
    /// Write the audit trail to stdout.
    Export {
        /// Config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL.
        #[arg(long)]
        db: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
    /// The story of a person, an app or a request, in sentences.
    Show {
        /// Config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL.
        #[arg(long)]
        db: Option<String>,
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
}

/// Which audit rows: every given filter must hold.
#[derive(clap::Args)]
pub struct AuditFilterArgs {
    /// Rows about this person (the subject, or the one who acted).
    #[arg(long)]
    person: Option<String>,
    /// Rows about this app.
    #[arg(long)]
    app: Option<String>,
    /// Rows about this request number.
    #[arg(long)]
    request: Option<i64>,
    /// Rows at or after this moment: YYYY-MM-DD (its start in the organisation's zone) or RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// Rows up to this moment: YYYY-MM-DD (the whole day, in the organisation's zone) or RFC 3339.
    #[arg(long)]
    until: Option<String>,
}

/// `audit export` output format: JSON lines or CSV (variants undocumented: clap would show
/// their docs as help).
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

/// `audit VERB`.
pub async fn audit(verb: AuditVerb) -> ExitCode {
    telemetry("warn", LogFormat::Text);
    match verb {
        AuditVerb::Verify {
            config,
            db,
            anchors,
        } => verify(config, db, anchors).await,
        AuditVerb::Export {
            config,
            db,
            format,
            filter,
        } => export(config, db, format, &filter).await,
        AuditVerb::Show { config, db, filter } => show(config, db, &filter).await,
    }
}

/// `audit verify [--anchors F]`: the chain, and the anchor file's seals against it.
async fn verify(config: Option<PathBuf>, db: Option<String>, anchors: Option<PathBuf>) -> ExitCode {
    // The anchor file is read before the database: every line in it then belongs to
    // rows that had committed.
    let anchor_text = match anchors.as_deref().map(std::fs::read_to_string) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!(
                "--anchors: cannot read {}: {e}",
                anchors.as_deref().unwrap_or(Path::new("")).display()
            );
            return ExitCode::from(1);
        }
    };
    let store = match open_for_audit(config, db).await {
        Ok((s, _)) => s,
        Err(c) => return c,
    };
    let verdict = match &anchor_text {
        None => store.verify_audit().await.map(|r| (r, None)),
        Some(t) => store
            .verify_audit_anchored(t)
            .await
            .map(|(r, s)| (r, Some(s))),
    };
    match verdict {
        Ok((report @ VerifyReport::Ok { .. }, summary)) => {
            println!("{report}");
            if let (Some(s), Some(path)) = (summary, &anchors) {
                println!(
                    "anchors OK: {} seal line(s) in {} agree with the chain (highest row {})",
                    s.seals,
                    path.display(),
                    s.highest
                );
            }
            ExitCode::SUCCESS
        }
        Ok((report, _)) => {
            println!("{report}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("cannot read the audit trail: {e}");
            ExitCode::from(1)
        }
    }
}

/// `audit export`: the selected rows on stdout as JSON lines or CSV.
async fn export(
    config: Option<PathBuf>,
    db: Option<String>,
    format: Format,
    filter: &AuditFilterArgs,
) -> ExitCode {
    let rows = match filtered_rows(config, db, filter).await {
        Ok((r, _)) => r,
        Err(c) => return c,
    };
    let mut out = std::io::stdout().lock();
    let written = match format {
        Format::Jsonl => store::write_jsonl(&rows, &mut out),
        Format::Csv => store::write_csv(&rows, &mut out),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write: {e}");
            ExitCode::from(1)
        }
    }
}

/// `audit show`: the selected rows as sentences.
async fn show(config: Option<PathBuf>, db: Option<String>, filter: &AuditFilterArgs) -> ExitCode {
    let (rows, zone) = match filtered_rows(config, db, filter).await {
        Ok(r) => r,
        Err(c) => return c,
    };
    if rows.is_empty() {
        println!("nothing in the audit trail matches");
    }
    for r in &rows {
        match story::sentence(r, zone) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("audit row #{}: {e}", r.seq);
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}

/// The store an audit verb reads (a SQLite file that does not exist is an error, never
/// created) and the organisation's zone.
async fn open_for_audit(
    config_path: Option<PathBuf>,
    db: Option<String>,
) -> Result<(store::SqlStore, Zone), ExitCode> {
    let config = load_config(config_path.as_deref())?;
    let zone = config.org.timezone;
    let url = wiring::database_url(db.as_deref(), &config, &base_dir(config_path.as_deref()));
    if let Some(code) = no_such_file(&url) {
        return Err(code);
    }
    wiring::open_store_unanchored(&config, &url)
        .await
        .map(|s| (s, zone))
        .map_err(|e| {
            eprintln!("{e}");
            ExitCode::from(1)
        })
}

/// The error when `url` names a SQLite file that does not exist (a reader never creates one).
pub(super) fn no_such_file(url: &str) -> Option<ExitCode> {
    let file = quartermaster::probe::sqlite_file(url).filter(|f| !f.exists())?;
    eprintln!(
        "{}: no such database file; give the one `serve` uses (--db or [database] url)",
        file.display()
    );
    Some(ExitCode::from(1))
}

/// `--since`/`--until` as typed: a day (`YYYY-MM-DD`, whole, in the organisation's zone) or an
/// RFC 3339 moment.
enum Moment {
    Day(chrono::NaiveDate),
    At(chrono::DateTime<chrono::Utc>),
}

impl Moment {
    /// The first moment it covers, or (`end`) the last.
    fn resolve(&self, zone: Zone, end: bool) -> chrono::DateTime<chrono::Utc> {
        match (self, end) {
            (Self::At(t), _) => *t,
            (Self::Day(d), false) => zone.start_of_day(*d),
            (Self::Day(d), true) => d
                .succ_opt()
                .map_or(chrono::DateTime::<chrono::Utc>::MAX_UTC, |n| {
                    zone.start_of_day(n) - chrono::Duration::microseconds(1)
                }),
        }
    }
}

fn parse_moment(flag: &str, s: &str) -> Result<Moment, ExitCode> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(Moment::Day(d));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| Moment::At(t.with_timezone(&chrono::Utc)))
        .map_err(|_| {
            eprintln!("{flag}: {s:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 moment");
            ExitCode::from(2)
        })
}

/// The audit rows the filters select, oldest first, and the organisation's zone.
async fn filtered_rows(
    config: Option<PathBuf>,
    db: Option<String>,
    f: &AuditFilterArgs,
) -> Result<(Vec<store::AuditRecord>, Zone), ExitCode> {
    let since = f
        .since
        .as_deref()
        .map(|s| parse_moment("--since", s))
        .transpose()?;
    let until = f
        .until
        .as_deref()
        .map(|s| parse_moment("--until", s))
        .transpose()?;
    if let Some(p) = &f.person
        && let Err(e) = Handle::parse(p)
    {
        eprintln!("--person: {e}");
        return Err(ExitCode::from(2));
    }
    let (store, zone) = open_for_audit(config, db).await?;
    let since = since.map(|m| m.resolve(zone, false));
    let until = until.map(|m| m.resolve(zone, true));
    let rows = store.audit_rows(since).await.map_err(|e| {
        eprintln!("cannot read the audit trail: {e}");
        ExitCode::from(1)
    })?;
    let rows = rows
        .into_iter()
        .filter(|r| {
            f.person
                .as_deref()
                .is_none_or(|p| r.subject.as_deref() == Some(p) || r.actor == p)
                && f.app.as_deref().is_none_or(|a| r.app.as_deref() == Some(a))
                && f.request.is_none_or(|n| r.request == Some(n))
                && until.is_none_or(|u| {
                    chrono::DateTime::parse_from_rfc3339(&r.at)
                        .is_ok_and(|t| t.with_timezone(&chrono::Utc) <= u)
                })
        })
        .collect();
    Ok((rows, zone))
}
