//! The composition root: command line → config → telemetry → store → adapters → run.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use quartermaster::app;
use quartermaster::chat::console::{Console, ConsoleChat, LineError, print_human};
use quartermaster::chat::discord;
use quartermaster::config::{self, Config};
use quartermaster::core::model::Handle;
use quartermaster::core::ports::{Clock, ManualClock, SystemClock};
use quartermaster::store::{self, VerifyReport};

#[derive(Parser)]
#[command(
    name = "quartermaster",
    version,
    about = "Chat-ops access provisioning: requests, approvals, joiners/movers/leavers, audit."
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// The bot in a terminal: same commands, buttons, database and connectors as on Discord.
    Console {
        /// Config file (default: the built-in example organisation on a temporary database).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL (overrides `[database] url`).
        #[arg(long)]
        db: Option<String>,
        /// Who is typing at first.
        #[arg(long = "as")]
        as_handle: Option<String>,
        /// Run the lines of this file instead of reading the terminal.
        #[arg(long)]
        script: Option<PathBuf>,
        /// Print one JSON object per message on stdout (everything else on stderr).
        #[arg(long)]
        json: bool,
        /// Start the clock at this moment (RFC 3339) instead of now.
        #[arg(long)]
        now: Option<String>,
    },
    /// Production: provisioning workers and the scheduler until SIGINT/SIGTERM.
    Serve {
        /// Config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL (overrides `[database] url`).
        #[arg(long)]
        db: Option<String>,
    },
    /// Validate the config and the catalog; list every problem with its key path.
    Check {
        /// Config file (default: the built-in example).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL (overrides `[database] url`): when it exists, the TOML's people are
        /// compared with it and every edit not applied is listed.
        #[arg(long)]
        db: Option<String>,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        verb: AuditVerb,
    },
    /// Bulk imports.
    Import {
        #[command(subcommand)]
        verb: ImportVerb,
    },
    /// Discord application commands.
    Commands {
        #[command(subcommand)]
        verb: CommandsVerb,
    },
}

#[derive(Subcommand)]
enum ImportVerb {
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
    },
}

#[derive(Subcommand)]
enum CommandsVerb {
    /// Register commands/*.json with Discord by bulk overwrite (running it twice changes
    /// nothing): globally, or in one guild (instant, for testing).
    Register {
        /// Config file (its `[discord]` section).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Register in this guild only.
        #[arg(long)]
        guild: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditVerb {
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
        /// Only rows at or after this moment (RFC 3339).
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

fn telemetry(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn load_config(path: Option<&Path>) -> Result<Config, ExitCode> {
    let config = config::load(path).map_err(|e| {
        eprintln!(
            "{}: the config has {} problem(s):\n{e}",
            path.map_or_else(|| "built-in example".into(), |p| p.display().to_string()),
            e.0.len()
        );
        ExitCode::from(1)
    })?;
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    Ok(config)
}

fn base_dir(path: Option<&Path>) -> PathBuf {
    path.and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.verb {
        Verb::Check { config, db } => check(config.as_deref(), db).await,
        Verb::Console {
            config,
            db,
            as_handle,
            script,
            json,
            now,
        } => {
            telemetry("warn");
            console(config, db, as_handle, script, json, now).await
        }
        Verb::Serve { config, db } => {
            telemetry("info");
            serve(config, db).await
        }
        Verb::Audit { verb } => {
            telemetry("warn");
            audit(verb).await
        }
        Verb::Import {
            verb: ImportVerb::People { file, config, db },
        } => {
            telemetry("warn");
            import_people(file, config, db).await
        }
        Verb::Commands {
            verb: CommandsVerb::Register { config, guild },
        } => {
            telemetry("warn");
            register_commands(config, guild).await
        }
    }
}

async fn check(path: Option<&Path>, db: Option<String>) -> ExitCode {
    let c = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    println!(
        "config OK: {} people, {} apps, {} roles, {} connectors",
        c.people.len(),
        c.org.apps.len(),
        c.org.roles.len(),
        c.connectors.len()
    );
    // Without a config file the built-in example seeds a throwaway database: nothing to compare.
    if path.is_none() && db.is_none() {
        return ExitCode::SUCCESS;
    }
    let url = app::database_url(db.as_deref(), &c, &base_dir(path));
    match app::unapplied_person_edits(&c, &url, &config_arg(path)).await {
        Ok(None) => println!("no database yet: the first run takes the [[person]] entries in"),
        Ok(Some(edits)) => print_unapplied(&edits, &mut std::io::stdout()),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

/// ` --config PATH` as typed back in a suggested command (empty for the built-in example).
fn config_arg(path: Option<&Path>) -> String {
    path.map(|p| format!(" --config {}", p.display()))
        .unwrap_or_default()
}

/// Lists `[[person]]` edits the database does not have, one per person and field.
fn print_unapplied(edits: &[app::UnappliedEdit], out: &mut impl Write) {
    if edits.is_empty() {
        let _ = writeln!(out, "people: the database matches every [[person]] entry");
        return;
    }
    let _ = writeln!(
        out,
        "people: {} edit(s) to [[person]] are not applied (after the first run the database holds people; the TOML only adds those it lacks):",
        edits.len()
    );
    for e in edits {
        let _ = writeln!(out, "  {e}");
    }
}

async fn console(
    config_path: Option<PathBuf>,
    db: Option<String>,
    as_handle: Option<String>,
    script: Option<PathBuf>,
    json: bool,
    now: Option<String>,
) -> ExitCode {
    let config = match load_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (url, banner) = match (&config_path, &db) {
        (None, None) => {
            let dir = match tempfile::Builder::new().prefix("quartermaster-").tempdir() {
                Ok(d) => d.keep(),
                Err(e) => {
                    eprintln!("cannot create a temporary folder: {e}");
                    return ExitCode::from(1);
                }
            };
            let url = format!("sqlite://{}", dir.join("quartermaster.db").display());
            let banner = format!(
                "Quartermaster console: the example organisation {} (examples/acme.toml, built in) on a fresh SQLite database at {}",
                config.org.name,
                dir.join("quartermaster.db").display()
            );
            (url, banner)
        }
        _ => {
            let url = app::database_url(db.as_deref(), &config, &base_dir(config_path.as_deref()));
            let banner = format!("Quartermaster console: {} on {url}", config.org.name);
            (url, banner)
        }
    };
    if json {
        eprintln!("{banner}");
    } else {
        println!("{banner}");
    }
    let start = match now.as_deref().map(chrono::DateTime::parse_from_rfc3339) {
        None => chrono::Utc::now(),
        Some(Ok(t)) => t.with_timezone(&chrono::Utc),
        Some(Err(e)) => {
            eprintln!("--now: not an RFC 3339 moment: {e}");
            return ExitCode::from(2);
        }
    };
    let store = match app::open_store(&config, &url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let sink: Box<dyn Fn(&quartermaster::chat::console::Shown) + Send + Sync> = if json {
        Box::new(|m| {
            if let Ok(line) = serde_json::to_string(m) {
                println!("{line}");
            }
        })
    } else {
        Box::new(|m| print_human(m, &mut std::io::stdout()))
    };
    let chat = Arc::new(ConsoleChat::new(sink));
    let clock = Arc::new(ManualClock::new(start));
    let (service, engine) = match app::assemble(&config, store, chat.clone(), clock.clone()) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let first = as_handle
        .or_else(|| config.org.it_admins.first().map(ToString::to_string))
        .unwrap_or_else(|| "admin".into());
    let current = match Handle::parse(&first) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("--as: {e}");
            return ExitCode::from(2);
        }
    };
    let mut console = Console::new(service, engine, chat, clock, current);
    if let Some(path) = script {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        for (i, line) in text.lines().enumerate() {
            let typed = line.trim();
            if !json && !typed.is_empty() && !typed.starts_with('#') {
                println!("\n» {typed}");
            }
            match console.line(line).await {
                Ok(()) => {}
                Err(LineError::Soft(e)) => print_error(&e, i + 1),
                Err(LineError::Malformed(e)) => {
                    print_error(&e, i + 1);
                    return ExitCode::from(2);
                }
            }
        }
        return ExitCode::SUCCESS;
    }
    if !json {
        println!(
            "Type /request app:figma reason:\"…\", :click Approve, :as bob, :advance 8h; Ctrl-D quits."
        );
    }
    let stdin = std::io::stdin();
    let mut n = 0;
    loop {
        print!("{}> ", console.current);
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        n += 1;
        if let Err(LineError::Soft(e) | LineError::Malformed(e)) = console.line(&line).await {
            print_error(&e, n);
        }
    }
    ExitCode::SUCCESS
}

fn print_error(e: &str, line: usize) {
    println!("{}", serde_json::json!({ "error": e, "line": line }));
}

/// Chat for `serve` while no chat platform is connected: messages go to the log.
async fn serve(config_path: Option<PathBuf>, db: Option<String>) -> ExitCode {
    let config = match load_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let url = app::database_url(db.as_deref(), &config, &base_dir(config_path.as_deref()));
    let store = match app::open_store(&config, &url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let listen = config.http.map_or_else(
        || {
            quartermaster::http::DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 8080)))
        },
        |h| h.listen,
    );
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {listen} ([http] listen): {e}");
            return ExitCode::from(1);
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let server = match quartermaster::server::start(&config, store, clock, listener).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(database = %url, listen = %server.addr, discord = ?config.discord.as_ref().map(|d| d.mode), "quartermaster serving");
    match app::unapplied_person_edits(&config, &url, &config_arg(config_path.as_deref())).await {
        Ok(Some(edits)) => {
            for e in &edits {
                tracing::warn!("[[person]] edit not applied: {e}");
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot compare the [[person]] entries with the database")
        }
    }
    shutdown_signal().await;
    tracing::info!("stopping: finishing in-flight work");
    server.stop().await;
    ExitCode::SUCCESS
}

async fn register_commands(config_path: Option<PathBuf>, guild: Option<String>) -> ExitCode {
    let config = match load_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(dc) = &config.discord else {
        eprintln!("[discord] is not configured: set application_id and token_env first");
        return ExitCode::from(1);
    };
    let guild = match guild.as_deref().map(str::parse::<u64>) {
        None => None,
        Some(Ok(g)) if g != 0 => Some(serenity::model::id::GuildId::new(g)),
        Some(_) => {
            eprintln!("--guild: not a Discord guild id (digits only)");
            return ExitCode::from(2);
        }
    };
    let http = match discord::build_http(dc) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let registry = quartermaster::core::command::Registry::builtin();
    match discord::register::register(&http, &registry, guild).await {
        Ok(names) => {
            println!(
                "registered {} commands {}: {}",
                names.len(),
                guild.map_or_else(|| "globally".to_owned(), |g| format!("in guild {g}")),
                names.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot register the commands: {e}");
            ExitCode::from(1)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn open_for_audit(
    config_path: Option<PathBuf>,
    db: Option<String>,
) -> Result<store::SqlStore, ExitCode> {
    let config = load_config(config_path.as_deref())?;
    let url = app::database_url(db.as_deref(), &config, &base_dir(config_path.as_deref()));
    app::open_store_unanchored(&config, &url)
        .await
        .map_err(|e| {
            eprintln!("{e}");
            ExitCode::from(1)
        })
}

async fn audit(verb: AuditVerb) -> ExitCode {
    match verb {
        AuditVerb::Verify {
            config,
            db,
            anchors,
        } => {
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
                Ok(s) => s,
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
        AuditVerb::Export {
            config,
            db,
            format,
            since,
        } => {
            let since = match since.as_deref().map(chrono::DateTime::parse_from_rfc3339) {
                None => None,
                Some(Ok(t)) => Some(t.with_timezone(&chrono::Utc)),
                Some(Err(e)) => {
                    eprintln!("--since: not an RFC 3339 moment: {e}");
                    return ExitCode::from(2);
                }
            };
            let store = match open_for_audit(config, db).await {
                Ok(s) => s,
                Err(c) => return c,
            };
            let rows = match store.audit_rows(since).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cannot read the audit trail: {e}");
                    return ExitCode::from(1);
                }
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
    }
}

/// `import people F.csv`: every good row goes through the same core method as HR hires and
/// changes; bad rows are listed by line. Rows whose manager comes later in the file are
/// tried again at the end.
async fn import_people(
    file: PathBuf,
    config_path: Option<PathBuf>,
    db: Option<String>,
) -> ExitCode {
    use quartermaster::core::service::{PersonOutcome, PersonRefused, RecordSource};
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
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let url = app::database_url(db.as_deref(), &config, &base_dir(config_path.as_deref()));
    let store = match app::open_store(&config, &url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (service, _engine) = match app::assemble(
        &config,
        store,
        Arc::new(quartermaster::server::LogChat),
        clock,
    ) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut hired, mut moved, mut same) = (0, 0, 0);
    let mut bad: Vec<(usize, String)> = Vec::new();
    let mut later = Vec::new();
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
            Ok(p) => later.push((row.line, p)),
        }
    }
    // Two passes: a row naming a manager who comes later in the file goes in on the second.
    for pass in 0..2 {
        let mut retry = Vec::new();
        for (line, p) in later {
            bar.set_message(p.handle.to_string());
            match service.person_record(RecordSource::Import, p.clone()).await {
                Ok(PersonOutcome::Hired(_)) => hired += 1,
                Ok(PersonOutcome::Moved(_)) => moved += 1,
                Ok(PersonOutcome::Unchanged(_)) => same += 1,
                Err(PersonRefused::Invalid(m)) if pass == 0 && m.starts_with("manager:") => {
                    retry.push((line, p));
                }
                Err(e) => bad.push((line, e.to_string())),
            }
        }
        later = retry;
    }
    bar.finish_and_clear();
    bad.sort_by_key(|(l, _)| *l);
    println!(
        "{shown}: {hired} joiner(s) created, {moved} mover(s) updated, {same} unchanged, {} bad row(s)",
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
