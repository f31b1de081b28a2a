//! The composition root: the command line parsed (clap) and dispatched to `cli`'s
//! subcommands, which load the config, start telemetry, open the store and run.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cli::{audit, check, commands, console, import, reconcile, review, serve};

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
        log_format: cli::LogFormat,
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
        verb: check::ConfigVerb,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        verb: audit::AuditVerb,
    },
    /// Bulk imports.
    Import {
        #[command(subcommand)]
        verb: import::ImportVerb,
    },
    /// One drift run now: list what each connector holds, compare it with the records, print
    /// the findings (the digest goes to IT as `serve` sends it).
    Reconcile {
        /// Config file (default: the built-in example).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL (overrides `[database] url`).
        #[arg(long)]
        db: Option<String>,
        /// Only this connector.
        #[arg(long)]
        connector: Option<String>,
    },
    /// Access reviews.
    Review {
        #[command(subcommand)]
        verb: review::ReviewVerb,
    },
    /// Discord application commands.
    Commands {
        #[command(subcommand)]
        verb: commands::CommandsVerb,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let parsed = Cli::parse();
    match parsed.verb {
        Verb::Check { config, probe, db } => {
            if probe {
                cli::telemetry("error", cli::LogFormat::Text);
            }
            check::check(config.as_deref(), probe, db.as_deref()).await
        }
        Verb::Init { path } => check::init(&path),
        Verb::Config { verb } => check::config_verb(verb),
        Verb::Console {
            config,
            db,
            as_handle,
            script,
            json,
            now,
            keep,
        } => {
            let args = console::ConsoleArgs {
                config,
                db,
                as_handle,
                script,
                json,
                now,
                keep,
            };
            console::console(args).await
        }
        Verb::Serve {
            config,
            db,
            log_format,
        } => serve::serve(config, db, log_format).await,
        Verb::Audit { verb } => audit::audit(verb).await,
        Verb::Import { verb } => import::import(verb).await,
        Verb::Reconcile {
            config,
            db,
            connector,
        } => reconcile::reconcile(config, db, connector).await,
        Verb::Review { verb } => review::review(verb).await,
        Verb::Commands { verb } => commands::commands(verb).await,
    }
}
