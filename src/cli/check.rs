//! `check` (the config, the people against the database, `--probe`), `init` and `config reference`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use quartermaster::config;
use quartermaster::wiring;

use super::{base_dir, config_arg, load_config};

/// `config …`: the configuration's keys.
#[derive(Subcommand)]
pub enum ConfigVerb {
    /// Print the reference of every key (Markdown; docs/CONFIG.md is this output).
    Reference,
}

/// `config VERB`.
pub fn config_verb(verb: ConfigVerb) -> ExitCode {
    match verb {
        ConfigVerb::Reference => {
            print!("{}", config::keys::reference());
            ExitCode::SUCCESS
        }
    }
}

/// `check [--config F] [--probe] [--db URL]`.
pub async fn check(path: Option<&Path>, probe: bool, db: Option<&str>) -> ExitCode {
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
        let url = wiring::database_url(db, &c, &base_dir(path));
        match wiring::unapplied_person_edits(&c, &url, &config_arg(path)).await {
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
    let url = wiring::database_url(db, &c, &base_dir(path));
    run_probes(&c, &url).await
}

/// `check --probe`: connects to everything the config names and says what works.
async fn run_probes(c: &config::Config, url: &str) -> ExitCode {
    let probes = quartermaster::probe::run(c, url).await;
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

/// Lists `[[person]]` edits the database does not have, one per person and field.
fn print_unapplied(edits: &[wiring::UnappliedEdit], out: &mut impl Write) {
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
pub fn init(path: &Path) -> ExitCode {
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

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(1, "connector", "connectors"), "1 connector");
        assert_eq!(count(2, "connector", "connectors"), "2 connectors");
        assert_eq!(count(1, "person", "people"), "1 person");
    }
}
