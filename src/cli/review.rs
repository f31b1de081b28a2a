//! `review report --id N [--format md|csv|json]`: an access review's evidence.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use quartermaster::core::model::ReviewId;
use quartermaster::core::ports::{Clock, SystemClock};
use quartermaster::core::render::review_report;
use quartermaster::wiring;

use super::audit::no_such_file;
use super::{LogFormat, base_dir, fail, load_config, telemetry};

/// The report's formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    /// Markdown, for people.
    Md,
    /// One row per access.
    Csv,
    /// Everything, for tools.
    Json,
}

/// `review …`.
#[derive(Debug, Subcommand)]
pub enum ReviewVerb {
    /// An access review's evidence: scope and snapshot, every decision, removals with their
    /// proof, who never answered, access now. Producing it is audited.
    Report {
        /// Config file (default: the built-in example).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL (overrides `[database] url`); a SQLite file must exist.
        #[arg(long)]
        db: Option<String>,
        /// The review's number.
        #[arg(long)]
        id: i64,
        /// Output format.
        #[arg(long, value_enum, default_value = "md")]
        format: ReportFormat,
    },
}

/// Runs a `review` verb.
pub async fn review(verb: ReviewVerb) -> ExitCode {
    let ReviewVerb::Report {
        config: config_path,
        db,
        id,
        format,
    } = verb;
    telemetry("warn", LogFormat::Text);
    let config = match load_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let url = wiring::database_url(db.as_deref(), &config, &base_dir(config_path.as_deref()));
    if let Some(code) = no_such_file(&url) {
        return code;
    }
    let store = match wiring::open_store(&config, &url).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let chat = Arc::new(quartermaster::server::LogChat);
    let (service, _engine) = match wiring::assemble(&config, store, chat, clock) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let by = std::env::var("USER").unwrap_or_else(|_| "system".into());
    let report = match service.review_report(ReviewId(id), &by).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            eprintln!("there is no review #{id}");
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("cannot read review #{id}: {e}");
            return ExitCode::from(1);
        }
    };
    match format {
        ReportFormat::Md => print!("{}", review_report::markdown(&report)),
        ReportFormat::Json => println!("{:#}", review_report::json(&report)),
        ReportFormat::Csv => match review_report::csv(&report) {
            Ok(s) => print!("{s}"),
            Err(e) => {
                eprintln!("cannot write the CSV: {e}");
                return ExitCode::from(1);
            }
        },
    }
    ExitCode::SUCCESS
}
