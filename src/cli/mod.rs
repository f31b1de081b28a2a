//! The subcommands of the binary, one file per family, and the helpers they share.

pub mod audit;
pub mod check;
pub mod commands;
pub mod console;
pub mod import;
pub mod reconcile;
pub mod review;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;
use quartermaster::config::{self, Config};

/// Log format on stderr: text or JSON lines (variants undocumented: clap would show their
/// docs as help).
#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logs on stderr: text (coloured only when stderr is a terminal) or one JSON object a line.
pub fn telemetry(default: &str, format: LogFormat) {
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

/// The config at `path` (the built-in example without one), its warnings on stderr; every
/// problem listed and exit 1 when it does not load.
pub fn load_config(path: Option<&Path>) -> Result<Config, ExitCode> {
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

/// The folder relative paths in the config file are resolved against.
pub fn base_dir(path: Option<&Path>) -> PathBuf {
    path.and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// ` --config PATH` as typed back in a suggested command (empty for the built-in example).
pub fn config_arg(path: Option<&Path>) -> String {
    path.map(|p| format!(" --config {}", p.display()))
        .unwrap_or_default()
}

/// Prints an error on stderr and gives exit code 1.
pub fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(1)
}
