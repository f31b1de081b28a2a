//! The composition root: command line → config → telemetry → store → adapters → run.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use quartermaster::app;
use quartermaster::chat::console::{Console, ConsoleChat, LineError, print_human, sentence};
use quartermaster::chat::discord;
use quartermaster::config::{self, Config};
use quartermaster::core::model::{Handle, Zone};
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
        /// Start the clock at this moment (RFC 3339) and move it only with `:advance`
        /// (without it the clock starts now and follows real time).
        #[arg(long)]
        now: Option<String>,
        /// Keep the temporary folder of the example organisation's database at exit.
        #[arg(long)]
        keep: bool,
    },
    /// Production: provisioning workers and the scheduler until SIGINT/SIGTERM.
    Serve {
        /// Config file (required: the built-in example is `console`'s).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL (overrides `[database] url`).
        #[arg(long)]
        db: Option<String>,
        /// Log format on stderr.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Validate the config and the catalog; list every problem with its key path.
    Check {
        /// Config file (default: the built-in example).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also connect: the database, Discord (GET the application), each connector.
        #[arg(long)]
        probe: bool,
        /// Database URL (overrides `[database] url`): when it exists, the TOML's people are
        /// compared with it and every edit not applied is listed; --probe connects to it.
        #[arg(long)]
        db: Option<String>,
    },
    /// Write a commented starter config (refuses to overwrite a file).
    Init {
        /// Where to write it.
        #[arg(default_value = "quartermaster.toml")]
        path: PathBuf,
    },
    /// The configuration's keys.
    Config {
        #[command(subcommand)]
        verb: ConfigVerb,
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
enum ConfigVerb {
    /// Print the reference of every key (Markdown; docs/CONFIG.md is this output).
    Reference,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
        /// Say who would be created, changed and granted; write nothing.
        #[arg(long)]
        dry_run: bool,
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
struct AuditFilterArgs {
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

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

/// Logs on stderr: text (coloured only when stderr is a terminal) or one JSON object a line.
fn telemetry(default: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => b.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => b.json().with_ansi(false).init(),
    }
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
        Verb::Check { config, probe, db } => {
            if probe {
                telemetry("error", LogFormat::Text);
            }
            check(config.as_deref(), probe, db.as_deref()).await
        }
        Verb::Init { path } => init(&path),
        Verb::Config {
            verb: ConfigVerb::Reference,
        } => {
            print!("{}", config::keys::reference());
            ExitCode::SUCCESS
        }
        Verb::Console {
            config,
            db,
            as_handle,
            script,
            json,
            now,
            keep,
        } => {
            telemetry("warn", LogFormat::Text);
            let opts = ConsoleOpts {
                script,
                json,
                now,
                keep,
            };
            console(config, db, as_handle, opts).await
        }
        Verb::Serve {
            config,
            db,
            log_format,
        } => {
            let Some(config) = config else {
                eprintln!(
                    "serve needs --config FILE (write a starter with `quartermaster init`); \
                     the built-in example organisation is for `quartermaster console`"
                );
                return ExitCode::from(2);
            };
            telemetry("info", log_format);
            serve(Some(config), db).await
        }
        Verb::Audit { verb } => {
            telemetry("warn", LogFormat::Text);
            audit(verb).await
        }
        Verb::Import {
            verb:
                ImportVerb::People {
                    file,
                    config,
                    db,
                    dry_run,
                },
        } => {
            telemetry("warn", LogFormat::Text);
            import_people(file, config, db, dry_run).await
        }
        Verb::Commands {
            verb: CommandsVerb::Register { config, guild },
        } => {
            telemetry("warn", LogFormat::Text);
            register_commands(config, guild).await
        }
    }
}

async fn check(path: Option<&Path>, probe: bool, db: Option<&str>) -> ExitCode {
    let c = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    println!(
        "config OK: {}, {}, {}, {}",
        count(c.people.len(), "person", "people"),
        count(c.org.apps.len(), "app", "apps"),
        count(c.org.roles.len(), "role", "roles"),
        count(c.connectors.len(), "connector", "connectors")
    );
    // Without a config file the built-in example seeds a throwaway database: nothing to compare.
    if path.is_some() || db.is_some() {
        let url = app::database_url(db, &c, &base_dir(path));
        match app::unapplied_person_edits(&c, &url, &config_arg(path)).await {
            Ok(None) => println!("no database yet: the first run takes the [[person]] entries in"),
            Ok(Some(edits)) => print_unapplied(&edits, &mut std::io::stdout()),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        }
    }
    if !probe {
        return ExitCode::SUCCESS;
    }
    let url = app::database_url(db, &c, &base_dir(path));
    let probes = quartermaster::probe::run(&c, &url).await;
    for p in &probes {
        println!("{p}");
    }
    let failed = probes.iter().filter(|p| !p.ok).count();
    if failed == 0 {
        println!("probe OK: {} checked, all work", probes.len());
        ExitCode::SUCCESS
    } else {
        println!("probe: {failed} of {} do not work", probes.len());
        ExitCode::from(1)
    }
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

/// `init [PATH]`: the commented starter config, never over an existing file.
fn init(path: &Path) -> ExitCode {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path);
    let written = file.and_then(|mut f| f.write_all(config::keys::STARTER.as_bytes()));
    match written {
        Ok(()) => {
            println!(
                "wrote {}; edit it, then: quartermaster check --config {} --probe",
                path.display(),
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!("{} exists; init does not overwrite it", path.display());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}

/// `1 connector`, `2 connectors`.
fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The console's flags beyond where its data lives.
struct ConsoleOpts {
    script: Option<PathBuf>,
    json: bool,
    now: Option<String>,
    keep: bool,
}

async fn console(
    config_path: Option<PathBuf>,
    db: Option<String>,
    as_handle: Option<String>,
    opts: ConsoleOpts,
) -> ExitCode {
    let ConsoleOpts {
        script,
        json,
        now,
        keep,
    } = opts;
    let config = match load_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Removed when this function returns (after the console, declared later, is dropped),
    // unless --keep.
    let mut _temp_dir = None;
    let (url, banner) = match (&config_path, &db) {
        (None, None) => {
            let dir = match tempfile::Builder::new().prefix("quartermaster-").tempdir() {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("cannot create a temporary folder: {e}");
                    return ExitCode::from(1);
                }
            };
            let file = dir.path().join("quartermaster.db");
            let url = format!("sqlite://{}", file.display());
            let fate = if keep {
                "kept at exit (--keep)"
            } else {
                "removed at exit; --keep keeps it"
            };
            let banner = format!(
                "Quartermaster console: the example organisation {} (examples/acme.toml, built in) on a fresh SQLite database at {} ({fate})",
                config.org.name,
                file.display()
            );
            if keep {
                let _ = dir.keep();
            } else {
                _temp_dir = Some(dir);
            }
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
    let mut console = Console::new(service, engine, chat, clock, current.clone());
    if let Err(e) = console.knows(&current).await {
        eprintln!("--as: {}", sentence(&e));
        return ExitCode::from(2);
    }
    if now.is_none() {
        console.follow_real_time();
    }
    // What the console itself says goes with the transcript, or to stderr under --json.
    let say = |notes: Vec<String>| {
        for n in notes {
            if json {
                eprintln!("{n}");
            } else {
                println!("{n}");
            }
        }
    };
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
            let result = console.line(line).await;
            say(console.take_notes());
            match result {
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
            "Type /help, /request app:figma reason:\"…\", :click Approve, :as bob, :advance 8h, :help; Ctrl-D quits."
        );
    }
    // Errors are sentences for a person, JSON objects under --json.
    let report = |e: &str, n: usize| {
        if json {
            print_error(e, n);
        } else {
            println!("{}", sentence(e));
        }
    };
    let mut n = 0;
    if std::io::stdin().is_terminal() {
        let mut editor = match rustyline::DefaultEditor::new() {
            Ok(ed) => ed,
            Err(e) => {
                eprintln!("cannot set up line editing: {e}");
                return ExitCode::from(1);
            }
        };
        loop {
            let prompt = format!("{}> ", console.current);
            let line = match editor.readline(&prompt) {
                Ok(l) => l,
                // Ctrl-C: the line is dropped; type another.
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(rustyline::error::ReadlineError::Eof) => break,
                Err(e) => {
                    eprintln!("cannot read the terminal: {e}");
                    return ExitCode::from(1);
                }
            };
            n += 1;
            if !line.trim().is_empty() {
                let _ = editor.add_history_entry(line.as_str());
            }
            let result = console.line(&line).await;
            say(console.take_notes());
            if let Err(LineError::Soft(e) | LineError::Malformed(e)) = result {
                report(&e, n);
            }
        }
    } else {
        let stdin = std::io::stdin();
        loop {
            let mut line = String::new();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            n += 1;
            let result = console.line(&line).await;
            say(console.take_notes());
            if let Err(LineError::Soft(e) | LineError::Malformed(e)) = result {
                report(&e, n);
            }
        }
    }
    if !json {
        println!("Bye.");
    }
    ExitCode::SUCCESS
}

fn print_error(e: &str, line: usize) {
    println!("{}", serde_json::json!({ "error": e, "line": line }));
}

/// Chat for `serve` while no chat platform is connected: messages go to the log.
async fn serve(config_path: Option<PathBuf>, db: Option<String>) -> ExitCode {
    let stop_signal = shutdown_signal();
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
    stop_signal.await;
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

/// Installs the SIGTERM / Ctrl-C handlers now and returns the future that waits for
/// either. Installing them before any work starts means a signal that arrives while
/// the server is starting is handled (graceful stop), never the default kill.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate())
            .and_then(|t| signal(SignalKind::interrupt()).map(|i| (t, i)))
            .ok()
    };
    async move {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = handlers {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn open_for_audit(
    config_path: Option<PathBuf>,
    db: Option<String>,
) -> Result<(store::SqlStore, Zone), ExitCode> {
    let config = load_config(config_path.as_deref())?;
    let zone = config.org.timezone;
    let url = app::database_url(db.as_deref(), &config, &base_dir(config_path.as_deref()));
    if let Some(file) = quartermaster::probe::sqlite_file(&url)
        && !file.exists()
    {
        eprintln!(
            "{}: no such database file; give the one `serve` uses (--db or [database] url)",
            file.display()
        );
        return Err(ExitCode::from(1));
    }
    app::open_store_unanchored(&config, &url)
        .await
        .map(|s| (s, zone))
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
        AuditVerb::Export {
            config,
            db,
            format,
            filter,
        } => {
            let rows = match filtered_rows(config, db, &filter).await {
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
        AuditVerb::Show { config, db, filter } => {
            let (rows, zone) = match filtered_rows(config, db, &filter).await {
                Ok(r) => r,
                Err(c) => return c,
            };
            if rows.is_empty() {
                println!("nothing in the audit trail matches");
            }
            for r in &rows {
                match audit_story::sentence(r, zone) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("audit row #{}: {e}", r.seq);
                        return ExitCode::from(1);
                    }
                }
            }
            ExitCode::SUCCESS
        }
    }
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

/// `import people F.csv`: every good row goes through the same core method as HR hires and
/// changes; bad rows are listed by line. Rows whose manager comes later in the file are
/// tried again at the end.
async fn import_people(
    file: PathBuf,
    config_path: Option<PathBuf>,
    db: Option<String>,
    dry_run: bool,
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
    if dry_run {
        return import_dry_run(&config, &url, &shown, rows).await;
    }
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
    let (mut hired, mut moved, mut same, mut repaired) = (0, 0, 0, 0);
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
                Ok(PersonOutcome::Repaired(_)) => repaired += 1,
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
    let repaired = if repaired > 0 {
        format!(", {repaired} repaired (missing birthrights queued)")
    } else {
        String::new()
    };
    println!(
        "{shown}: {hired} joiner(s) created, {moved} mover(s) updated, {same} unchanged{repaired}, {} bad row(s)",
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

/// `import people F.csv --dry-run`: who would be created, changed and granted, read from the
/// database as it is now; nothing is written (a SQLite file that does not exist stays so).
async fn import_dry_run(
    config: &Config,
    url: &str,
    shown: &str,
    rows: Vec<config::PeopleRow>,
) -> ExitCode {
    use quartermaster::core::model::PersonStatus;
    use quartermaster::core::ports::People;
    let store = match quartermaster::probe::sqlite_file(url) {
        Some(f) if !f.exists() => None,
        _ => match app::open_store_unanchored(config, url).await {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        },
    };
    let names = |apps: &[quartermaster::core::model::AppName]| {
        apps.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
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
        // The people the config lists are in the database once anything has started.
        let found = match &store {
            None => None,
            Some(s) => match s.person(&p.handle).await {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("cannot read the people: {e}");
                    return ExitCode::from(1);
                }
            },
        }
        .or_else(|| config.person(&p.handle).cloned());
        let returning = found
            .as_ref()
            .is_some_and(|o| o.status != PersonStatus::Active);
        let old = found.filter(|o| o.status == PersonStatus::Active);
        let wanted = config.org.birthrights(&p.role, &p.department);
        match old {
            None => {
                created += 1;
                println!(
                    "{shown}:{}: would {} {} ({}); would grant: {}",
                    row.line,
                    if returning { "re-activate" } else { "create" },
                    p.handle,
                    p.email,
                    if wanted.is_empty() {
                        "nothing".into()
                    } else {
                        names(&wanted)
                    }
                );
            }
            Some(o) => {
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
                    let m = |h: &Option<Handle>| {
                        h.as_ref().map_or("none".to_owned(), ToString::to_string)
                    };
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
                if diffs.is_empty() {
                    same += 1;
                    continue;
                }
                changed += 1;
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
                let mut line = format!(
                    "{shown}:{}: would change {}: {}",
                    row.line,
                    p.handle,
                    diffs.join(", ")
                );
                if !gain.is_empty() {
                    line.push_str(&format!("; would grant: {}", names(&gain)));
                }
                if !lose.is_empty() {
                    line.push_str(&format!("; would revoke: {}", names(&lose)));
                }
                println!("{line}");
            }
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

/// Audit rows told as sentences.
mod audit_story {
    use quartermaster::core::audit::{AuditAction, AuditOutcome, UnknownName};
    use quartermaster::core::model::Zone;
    use quartermaster::store::AuditRecord;

    /// One row as a sentence: when (in `zone`, the organisation's), who, what, about whom. A
    /// row whose action or outcome is not in the vocabulary is an error (corrupt or foreign
    /// data; `audit verify` still hashes the stored text as it is).
    pub fn sentence(r: &AuditRecord, zone: Zone) -> Result<String, UnknownName> {
        use AuditAction as A;
        let action: AuditAction = r.action.parse()?;
        let outcome: AuditOutcome = r.outcome.parse()?;
        let at = chrono::DateTime::parse_from_rfc3339(&r.at)
            .map_or_else(|_| r.at.clone(), |t| zone.show(t.to_utc()));
        let who = r.subject.as_deref().unwrap_or("someone");
        let app = r.app.as_deref().unwrap_or("an app");
        let req = r
            .request
            .map_or_else(String::new, |n| format!(" (request #{n})"));
        let d = &r.detail;
        let text = match action {
            A::RequestSubmitted => format!("{} requested {app}{req}; {d}", r.actor),
            A::StepStarted => format!("waiting for {d}{req}"),
            A::StepApproved => format!("{} approved {who}'s {app}{req}, {d}", r.actor),
            A::StepDenied => format!("{} denied {who}'s {app}{req}, {d}", r.actor),
            A::RequestApproved => format!("{who}'s {app}{req} was approved: {d}"),
            A::RequestDenied => format!("{who}'s {app}{req} was denied: {d}"),
            A::GrantProvisioned => format!("{who} was granted {app}{req}: {d}"),
            A::GrantRevokeRequested => format!("revoking {app} from {who} was asked{req}: {d}"),
            A::GrantExpired => format!("{who}'s {app} expired: {d}"),
            A::GrantRevoked => format!("{app} was revoked from {who}{req}: {d}"),
            A::OffboardingVerified if outcome == AuditOutcome::Ok => {
                format!("verified gone for {who}: {d}")
            }
            A::OffboardingVerified => format!("not verified gone for {who} ({outcome}): {d}"),
            other => {
                let about = match (&r.subject, &r.app) {
                    (Some(s), Some(a)) => format!(" {s} / {a}"),
                    (Some(s), None) => format!(" {s}"),
                    (None, Some(a)) => format!(" {a}"),
                    (None, None) => String::new(),
                };
                format!("{} — {other}{about}{req} ({outcome}): {d}", r.actor)
            }
        };
        Ok(format!("#{} {at}  {text}", r.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::audit_story::sentence;
    use super::count;
    use quartermaster::core::model::Zone;
    use quartermaster::store::{AuditRecord, GENESIS};

    fn record(action: &str, outcome: &str) -> AuditRecord {
        AuditRecord {
            seq: 7,
            at: "2026-12-01T10:00:00.000000Z".into(),
            actor: "system".into(),
            actor_chat_id: None,
            action: action.into(),
            subject: Some("alice".into()),
            app: None,
            request: None,
            connector_action: None,
            outcome: outcome.into(),
            detail: "plan 3".into(),
            hash: "ab".into(),
            prev_hash: GENESIS.into(),
        }
    }

    #[test]
    fn the_story_reads_rows_through_the_vocabulary() {
        let utc = Zone::default();
        let told = sentence(&record("offboarding.verifying", "ok"), utc).unwrap();
        assert!(
            told.ends_with("system — offboarding.verifying alice (ok): plan 3"),
            "{told}"
        );
        let e = sentence(&record("grant.applied", "ok"), utc).unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"grant.applied\" is not a known audit action"
        );
        let e = sentence(&record("grant.revoked", "fine"), utc).unwrap_err();
        assert_eq!(e.to_string(), "\"fine\" is not a known audit outcome");
    }

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(1, "connector", "connectors"), "1 connector");
        assert_eq!(count(2, "connector", "connectors"), "2 connectors");
        assert_eq!(count(1, "person", "people"), "1 person");
    }
}
