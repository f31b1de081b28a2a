//! `import people F.csv [--dry-run]`: joiners and movers from a CSV.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use quartermaster::config::{self, Config, PeopleRow};
use quartermaster::core::model::{AppName, Handle, Person, PersonStatus};
use quartermaster::core::ports::{Clock, People, SystemClock};
use quartermaster::core::service::{PersonOutcome, PersonRefused, RecordSource, Service};
use quartermaster::store::SqlStore;
use quartermaster::wiring;

use super::{LogFormat, base_dir, fail, load_config, telemetry};

/// `import …`: bulk imports.
#[derive(Subcommand)]
pub enum ImportVerb {
    /// Joiners and movers from a CSV (columns as the person keys); a bad row is reported with
    /// its line number and the rest still go in (exit 1 when any row was refused).
    People {
        /// The CSV file.
        file: PathBuf,
        /// Config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL (overrides `[database] url`).
        #[arg(long)]
        db: Option<String>,
        /// Say who would be created, changed and granted; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `import VERB`.
pub async fn import(verb: ImportVerb) -> ExitCode {
    telemetry("warn", LogFormat::Text);
    match verb {
        ImportVerb::People {
            file,
            config,
            db,
            dry_run,
        } => import_people(file, config, db, dry_run).await,
    }
}

/// A refused row: its line and why, in one sentence.
type BadRow = (usize, String);

/// `import people F.csv`: every good row goes through the same core method as HR hires and
/// changes; bad rows are listed by line. Rows whose manager comes later in the file are
/// tried again at the end.
async fn import_people(
    file: PathBuf,
    config_path: Option<PathBuf>,
    db: Option<String>,
    dry_run: bool,
) -> ExitCode {
    let config = match load_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let shown = file.display().to_string();
    let rows = match config::parse_people_csv(&text, &shown) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let url = wiring::database_url(db.as_deref(), &config, &base_dir(config_path.as_deref()));
    if dry_run {
        return import_dry_run(&config, &url, &shown, rows).await;
    }
    let service = match open_service(&config, &url).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut bad, good) = sort_rows(rows, &shown, &bar);
    let tally = record_people(&service, good, &mut bad, &bar).await;
    bar.finish_and_clear();
    bad.sort_by_key(|(l, _)| *l);
    let repaired = if tally.repaired > 0 {
        format!(", {} repaired (missing birthrights queued)", tally.repaired)
    } else {
        String::new()
    };
    println!(
        "{shown}: {} joiner(s) created, {} mover(s) updated, {} unchanged{repaired}, {} bad row(s)",
        tally.hired,
        tally.moved,
        tally.same,
        bad.len()
    );
    for (line, why) in &bad {
        println!("{shown}:{line}: {why}");
    }
    if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The service over the store at `url`, messages to the log (no chat is connected).
async fn open_service(config: &Config, url: &str) -> Result<Arc<Service>, ExitCode> {
    let store = wiring::open_store(config, url).await.map_err(fail)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let chat = Arc::new(quartermaster::server::LogChat);
    let (service, _engine) = wiring::assemble(config, store, chat, clock).map_err(fail)?;
    Ok(service)
}

/// Splits the rows into the refused ones (each with its problems in one sentence, paths
/// shown without the file and line) and the people to record, with their lines.
fn sort_rows(
    rows: Vec<PeopleRow>,
    shown: &str,
    bar: &indicatif::ProgressBar,
) -> (Vec<BadRow>, Vec<(usize, Person)>) {
    let mut bad = Vec::new();
    let mut good = Vec::new();
    for row in rows {
        bar.inc(1);
        match row.result {
            Err(ps) => {
                let at = format!("{shown}:{}", row.line);
                let why: Vec<String> = ps
                    .iter()
                    .map(|p| {
                        let field = p.path.strip_prefix(&at).unwrap_or(&p.path);
                        match field.trim_start_matches('.') {
                            "" => p.message.clone(),
                            f => format!("{f}: {}", p.message),
                        }
                    })
                    .collect();
                bad.push((row.line, why.join("; ")));
            }
            Ok(p) => good.push((row.line, p)),
        }
    }
    (bad, good)
}

/// How many people each outcome had.
#[derive(Default)]
struct Tally {
    hired: usize,
    moved: usize,
    same: usize,
    repaired: usize,
}

/// Records each person; a refusal goes to `bad`. Two passes: a row naming a manager who
/// comes later in the file goes in on the second.
async fn record_people(
    service: &Service,
    mut later: Vec<(usize, Person)>,
    bad: &mut Vec<BadRow>,
    bar: &indicatif::ProgressBar,
) -> Tally {
    let mut t = Tally::default();
    for pass in 0..2 {
        let mut retry = Vec::new();
        for (line, p) in later {
            bar.set_message(p.handle.to_string());
            match service.person_record(RecordSource::Import, p.clone()).await {
                Ok(PersonOutcome::Hired(_)) => t.hired += 1,
                Ok(PersonOutcome::Moved(_)) => t.moved += 1,
                Ok(PersonOutcome::Unchanged(_)) => t.same += 1,
                Ok(PersonOutcome::Repaired(_)) => t.repaired += 1,
                Err(PersonRefused::Invalid(r)) if pass == 0 && r.is_about_manager() => {
                    retry.push((line, p));
                }
                Err(e) => bad.push((line, e.to_string())),
            }
        }
        later = retry;
    }
    t
}

/// `import people F.csv --dry-run`: who would be created, changed and granted, read from the
/// database as it is now; nothing is written (a SQLite file that does not exist stays so).
async fn import_dry_run(config: &Config, url: &str, shown: &str, rows: Vec<PeopleRow>) -> ExitCode {
    let store = match quartermaster::probe::sqlite_file(url) {
        Some(f) if !f.exists() => None,
        _ => match wiring::open_store_unanchored(config, url).await {
            Ok(s) => Some(s),
            Err(e) => return fail(e),
        },
    };
    let (mut created, mut changed, mut same, mut bad) = (0, 0, 0, 0);
    println!("{shown}: dry run, nothing is written");
    for row in rows {
        let p = match row.result {
            Ok(p) => p,
            Err(ps) => {
                bad += 1;
                let why: Vec<String> = ps.iter().map(|p| p.message.clone()).collect();
                println!("{shown}:{}: bad row: {}", row.line, why.join("; "));
                continue;
            }
        };
        let found = match known_person(store.as_ref(), config, &p.handle).await {
            Ok(f) => f,
            Err(code) => return code,
        };
        let returning = found
            .as_ref()
            .is_some_and(|o| o.status != PersonStatus::Active);
        match found.filter(|o| o.status == PersonStatus::Active) {
            None => {
                created += 1;
                println!("{}", would_create(config, shown, row.line, &p, returning));
            }
            Some(o) => match would_change(config, shown, row.line, &o, &p) {
                None => same += 1,
                Some(line) => {
                    changed += 1;
                    println!("{line}");
                }
            },
        }
    }
    println!(
        "{shown}: would create {created}, change {changed}; {same} unchanged, {bad} bad row(s)"
    );
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The person the database (when there is one) or else the config knows as `h`. The people
/// the config lists are in the database once anything has started.
async fn known_person(
    store: Option<&SqlStore>,
    config: &Config,
    h: &Handle,
) -> Result<Option<Person>, ExitCode> {
    let found = match store {
        None => None,
        Some(s) => s.person(h).await.map_err(|e| {
            eprintln!("cannot read the people: {e}");
            ExitCode::from(1)
        })?,
    };
    Ok(found.or_else(|| config.person(h).cloned()))
}

/// Apps as `a, b, c`.
fn names(apps: &[AppName]) -> String {
    apps.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The dry run's line for a person who is new (or `returning`, a leaver coming back).
fn would_create(config: &Config, shown: &str, line: usize, p: &Person, returning: bool) -> String {
    let wanted = config.org.birthrights(&p.role, &p.department);
    format!(
        "{shown}:{line}: would {} {} ({}); would grant: {}",
        if returning { "re-activate" } else { "create" },
        p.handle,
        p.email,
        if wanted.is_empty() {
            "nothing".into()
        } else {
            names(&wanted)
        }
    )
}

/// The dry run's line for an active person `o` whom the row `p` changes, with the
/// birthrights gained and lost; `None` when the row changes nothing.
fn would_change(
    config: &Config,
    shown: &str,
    line: usize,
    o: &Person,
    p: &Person,
) -> Option<String> {
    let diffs = differences(o, p);
    if diffs.is_empty() {
        return None;
    }
    let wanted = config.org.birthrights(&p.role, &p.department);
    let before = config.org.birthrights(&o.role, &o.department);
    let gain: Vec<_> = wanted
        .iter()
        .filter(|a| !before.contains(a))
        .cloned()
        .collect();
    let lose: Vec<_> = before
        .iter()
        .filter(|a| !wanted.contains(a))
        .cloned()
        .collect();
    let mut out = format!(
        "{shown}:{line}: would change {}: {}",
        p.handle,
        diffs.join(", ")
    );
    if !gain.is_empty() {
        out.push_str(&format!("; would grant: {}", names(&gain)));
    }
    if !lose.is_empty() {
        out.push_str(&format!("; would revoke: {}", names(&lose)));
    }
    Some(out)
}

/// The fields the row `p` changes in the record `o`, as `field old → new`.
fn differences(o: &Person, p: &Person) -> Vec<String> {
    let mut diffs = Vec::new();
    if o.name != p.name {
        diffs.push(format!("name {:?} → {:?}", o.name, p.name));
    }
    if o.email != p.email {
        diffs.push(format!("email {} → {}", o.email, p.email));
    }
    if o.department != p.department {
        diffs.push(format!(
            "department {:?} → {:?}",
            o.department, p.department
        ));
    }
    if o.role != p.role {
        diffs.push(format!("role {} → {}", o.role, p.role));
    }
    if o.manager != p.manager {
        let m = |h: &Option<Handle>| h.as_ref().map_or("none".to_owned(), ToString::to_string);
        diffs.push(format!("manager {} → {}", m(&o.manager), m(&p.manager)));
    }
    if p.discord_id.is_some() && o.discord_id != p.discord_id {
        diffs.push("discord_id".into());
    }
    if let Some(z) = p.timezone
        && o.timezone != p.timezone
    {
        let was = o.timezone.map_or("none", |z| z.name());
        diffs.push(format!("timezone {was} → {z}"));
    }
    diffs
}
