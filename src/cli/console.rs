//! `console`: the bot in a terminal or over a script, on the example organisation or a config.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use quartermaster::chat::console::{Console, ConsoleChat, LineError, Shown, print_human, sentence};
use quartermaster::config::Config;
use quartermaster::core::model::Handle;
use quartermaster::core::ports::ManualClock;
use quartermaster::wiring;

use super::{LogFormat, base_dir, fail, load_config, telemetry};

/// The console's flags.
pub struct ConsoleArgs {
    /// Config file (none: the built-in example organisation on a temporary database).
    pub config: Option<PathBuf>,
    /// Database URL (overrides `[database] url`).
    pub db: Option<String>,
    /// Who is typing at first.
    pub as_handle: Option<String>,
    /// Run the lines of this file instead of reading the terminal.
    pub script: Option<PathBuf>,
    /// One JSON object per message on stdout, everything else on stderr.
    pub json: bool,
    /// The clock's start (RFC 3339), moved only with `:advance`.
    pub now: Option<String>,
    /// Keep the temporary folder of the example organisation's database at exit.
    pub keep: bool,
}

/// `console [...]`: a script's lines, or the terminal's (with line editing), or stdin's.
pub async fn console(a: ConsoleArgs) -> ExitCode {
    telemetry("warn", LogFormat::Text);
    let config = match load_config(a.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Removed when this function returns (after the console, declared later, is dropped),
    // unless --keep.
    let (url, banner, _temp_dir) = match database(&config, &a) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if a.json {
        eprintln!("{banner}");
    } else {
        println!("{banner}");
    }
    let start = match a.now.as_deref().map(chrono::DateTime::parse_from_rfc3339) {
        None => chrono::Utc::now(),
        Some(Ok(t)) => t.with_timezone(&chrono::Utc),
        Some(Err(e)) => {
            eprintln!("--now: not an RFC 3339 moment: {e}");
            return ExitCode::from(2);
        }
    };
    let mut console = match open(&config, &url, a.as_handle, a.json, start).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    if a.now.is_none() {
        console.follow_real_time();
    }
    match &a.script {
        Some(path) => run_script(&mut console, path, a.json).await,
        None => interactive(&mut console, a.json).await,
    }
}

/// The database URL, the banner that names it and, for the built-in example, the temporary
/// folder holding it (`None` under `--keep`: the folder stays).
fn database(
    config: &Config,
    a: &ConsoleArgs,
) -> Result<(String, String, Option<tempfile::TempDir>), ExitCode> {
    if a.config.is_some() || a.db.is_some() {
        let url = wiring::database_url(a.db.as_deref(), config, &base_dir(a.config.as_deref()));
        let banner = format!("Quartermaster console: {} on {url}", config.org.name);
        return Ok((url, banner, None));
    }
    let dir = match tempfile::Builder::new().prefix("quartermaster-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a temporary folder: {e}");
            return Err(ExitCode::from(1));
        }
    };
    let file = dir.path().join("quartermaster.db");
    let url = format!("sqlite://{}", file.display());
    let fate = if a.keep {
        "kept at exit (--keep)"
    } else {
        "removed at exit; --keep keeps it"
    };
    let banner = format!(
        "Quartermaster console: the example organisation {} (examples/acme.toml, built in) on a fresh SQLite database at {} ({fate})",
        config.org.name,
        file.display()
    );
    if a.keep {
        let _ = dir.keep();
        Ok((url, banner, None))
    } else {
        Ok((url, banner, Some(dir)))
    }
}

/// The console over the store at `url`, its clock at `start`, typing as `--as` (or the
/// first IT admin, or `admin`), who must be a person it knows.
async fn open(
    config: &Config,
    url: &str,
    as_handle: Option<String>,
    json: bool,
    start: chrono::DateTime<chrono::Utc>,
) -> Result<Console, ExitCode> {
    let store = wiring::open_store(config, url).await.map_err(fail)?;
    let sink: Box<dyn Fn(&Shown) + Send + Sync> = if json {
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
    let (service, engine) =
        wiring::assemble(config, store, chat.clone(), clock.clone()).map_err(fail)?;
    let first = as_handle
        .or_else(|| config.org.it_admins.first().map(ToString::to_string))
        .unwrap_or_else(|| "admin".into());
    let current = match Handle::parse(&first) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("--as: {e}");
            return Err(ExitCode::from(2));
        }
    };
    let console = Console::new(service, engine, chat, clock, current.clone());
    if let Err(e) = console.knows(&current).await {
        eprintln!("--as: {}", sentence(&e));
        return Err(ExitCode::from(2));
    }
    Ok(console)
}

/// What the console itself says goes with the transcript, or to stderr under --json.
fn say(notes: Vec<String>, json: bool) {
    for n in notes {
        if json {
            eprintln!("{n}");
        } else {
            println!("{n}");
        }
    }
}

/// `--script F`: each line echoed (not under --json) and run; a malformed line stops with 2.
async fn run_script(console: &mut Console, path: &Path, json: bool) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
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
        say(console.take_notes(), json);
        match result {
            Ok(()) => {}
            Err(LineError::Soft(e)) => print_error(&e, i + 1),
            Err(LineError::Malformed(e)) => {
                print_error(&e, i + 1);
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}

/// The terminal (with line editing) or stdin, until end of input.
async fn interactive(console: &mut Console, json: bool) -> ExitCode {
    if !json {
        println!(
            "Type /help, /request app:figma reason:\"…\", :click Approve, :as bob, :advance 8h, :help; Ctrl-D quits."
        );
    }
    let read = if std::io::stdin().is_terminal() {
        read_terminal(console, json).await
    } else {
        read_stdin(console, json).await;
        Ok(())
    };
    if let Err(code) = read {
        return code;
    }
    if !json {
        println!("Bye.");
    }
    ExitCode::SUCCESS
}

/// Runs one typed line (number `n`); errors are sentences for a person, JSON objects under
/// --json.
async fn run_line(console: &mut Console, line: &str, n: usize, json: bool) {
    let result = console.line(line).await;
    say(console.take_notes(), json);
    if let Err(LineError::Soft(e) | LineError::Malformed(e)) = result {
        if json {
            print_error(&e, n);
        } else {
            println!("{}", sentence(&e));
        }
    }
}

/// Lines from the terminal with history; Ctrl-C drops the line, Ctrl-D ends.
async fn read_terminal(console: &mut Console, json: bool) -> Result<(), ExitCode> {
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(ed) => ed,
        Err(e) => {
            eprintln!("cannot set up line editing: {e}");
            return Err(ExitCode::from(1));
        }
    };
    let mut n = 0;
    loop {
        let prompt = format!("{}> ", console.current);
        let line = match editor.readline(&prompt) {
            Ok(l) => l,
            // Ctrl-C: the line is dropped; type another.
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("cannot read the terminal: {e}");
                return Err(ExitCode::from(1));
            }
        };
        n += 1;
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
        }
        run_line(console, &line, n, json).await;
    }
    Ok(())
}

/// Lines from a stdin that is not a terminal, until its end (or a read error).
async fn read_stdin(console: &mut Console, json: bool) {
    let stdin = std::io::stdin();
    let mut n = 0;
    loop {
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        n += 1;
        run_line(console, &line, n, json).await;
    }
}

/// A line's error as one JSON object on stdout.
fn print_error(e: &str, line: usize) {
    println!("{}", serde_json::json!({ "error": e, "line": line }));
}
