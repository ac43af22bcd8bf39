//! The command line: `procbot serve | check | import`, parsed with clap and dispatched.
//!
//! Exit codes are a contract: 0 success, 1 problems found (e.g. `check` found errors),
//! 2 could not run (bad arguments, unreadable folder, bad configuration).

pub mod changes;
pub mod chat;
pub mod check;
pub mod lookup;
pub mod report;
pub mod runs;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{self, Config};
use crate::core::check::{SourceContent, check_repository};
use crate::core::procedure::{AudienceMember, Email, ProcedureId};
use crate::import::comply::ImportOptions;
use crate::import::import_comply;
use crate::repo::history::GitProcedures;
use crate::repo::read_folder;

/// The configuration file read when `--config` is not given and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "procbot.toml";

/// Keeps ISO/IEC 27001 operating procedures alive in Slack and Discord.
#[derive(Debug, Parser)]
#[command(name = "procbot", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bot: load procedures, serve HTTP (health, readiness) until Ctrl-C or SIGTERM.
    Serve {
        /// Configuration file (default: procbot.toml if present, else built-in defaults).
        #[arg(long, env = "PROCBOT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Lint a procedures repository: exit 0 clean, 1 errors found, 2 could not run.
    Check {
        /// The repository root (default: the current folder).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Output for people (human) or tools (json).
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
        /// The directory file, relative to DIR.
        #[arg(long, default_value = crate::repo::DIRECTORY_FILE)]
        directory: PathBuf,
        /// Check as of this date (YYYY-MM-DD) instead of today, for reproducible CI runs.
        #[arg(long, value_parser = parse_date)]
        today: Option<NaiveDate>,
    },
    /// Find the procedure that answers a question.
    Lookup {
        /// The procedures folder.
        #[arg(long, default_value = "procedures")]
        procedures: PathBuf,
        /// Print JSON: {"query": ..., "results": [{"id", "title", "score"}]}.
        #[arg(long)]
        json: bool,
        /// At most this many results.
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Look up as this person (sees confidential and restricted procedures only when in
        /// their audience); without it, as an operator who sees everything.
        #[arg(long = "as", value_parser = parse_email)]
        viewer: Option<Email>,
        /// Read one query a line from stdin and print one JSON line per query.
        #[arg(long)]
        batch: bool,
        /// The directory file, relative to the procedures folder.
        #[arg(long, default_value = crate::repo::DIRECTORY_FILE)]
        directory: PathBuf,
        /// The question.
        #[arg(required_unless_present = "batch", trailing_var_arg = true)]
        query: Vec<String>,
    },
    /// Show what would be announced between two revisions of a git procedures repository.
    Changes {
        /// The procedures folder, inside a git work tree.
        #[arg(long, default_value = "procedures")]
        procedures: PathBuf,
        /// The last announced revision (commit, tag or branch).
        #[arg(long)]
        from: String,
        /// The new revision.
        #[arg(long, default_value = "HEAD")]
        to: String,
        /// Print JSON for tools.
        #[arg(long)]
        json: bool,
        /// The directory file, relative to the procedures folder.
        #[arg(long, default_value = crate::repo::DIRECTORY_FILE)]
        directory: PathBuf,
    },
    /// Show every version of a procedure from git history, following renames.
    History {
        /// The procedure id.
        id: String,
        /// The procedures folder, inside a git work tree.
        #[arg(long, default_value = "procedures")]
        procedures: PathBuf,
        /// The revision whose history to read.
        #[arg(long, default_value = "HEAD")]
        rev: String,
        /// Print JSON for tools.
        #[arg(long)]
        json: bool,
        /// The directory file, relative to the procedures folder.
        #[arg(long, default_value = crate::repo::DIRECTORY_FILE)]
        directory: PathBuf,
        /// Also list the procedure runs recorded for each version, from the database of this
        /// configuration file.
        #[arg(long)]
        runs_from: Option<PathBuf>,
    },
    /// The bot in the terminal: type as a person would in chat; see what it sends them.
    Chat {
        /// Act as this person from directory.yaml (their pending acknowledgements, DMs).
        #[arg(long = "as", value_parser = parse_email)]
        viewer: Option<Email>,
        /// Configuration file (default: procbot.toml if present, else built-in defaults).
        #[arg(long, env = "PROCBOT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The auditor's evidence pack: per procedure and version, who had to acknowledge, who
    /// did, when and where, who is pending, reviews, commits, and the ledger's tip.
    Report {
        #[arg(long, value_enum, default_value_t = report::ReportFormat::Csv)]
        format: report::ReportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Configuration file (for database.url).
        #[arg(long, env = "PROCBOT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// What the scheduler would send at a moment (review nudges, acknowledgement reminders,
    /// escalations, digests): a dry run that records and sends nothing.
    Reminders {
        /// The moment: 2027-03-01T09:30:00Z, or a local `2027-03-01 09:30` in schedule.timezone.
        #[arg(long)]
        at: String,
        /// Print JSON: {"at", "messages": [{"kind", "to", "procedures"}]}.
        #[arg(long)]
        json: bool,
        /// Configuration file (procedures, database, schedule).
        #[arg(long, env = "PROCBOT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Procedure runs, newest first: the version each followed, who did each step when, and
    /// how it ended (completed, deviated, open, overdue).
    Runs {
        /// Only this procedure's runs.
        #[arg(long)]
        procedure: Option<String>,
        /// Print JSON: {"runs": [...]}, each run as in the evidence pack.
        #[arg(long)]
        json: bool,
        /// Configuration file (for database.url).
        #[arg(long, env = "PROCBOT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Ledger checks.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Convert procedures from another tool into procbot's format.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Recompute the ledger's hash chain: exit 0 intact, 1 altered or deleted entries found.
    Verify {
        /// Configuration file (for database.url).
        #[arg(long, env = "PROCBOT_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// Convert strongdm/comply procedures (SRC: a comply project or its procedures folder).
    Comply {
        src: PathBuf,
        dest: PathBuf,
        /// Owner to set on every imported procedure (comply has none).
        #[arg(long, value_parser = parse_email)]
        owner: Option<Email>,
        /// Audience to set on every imported procedure: teams, emails or `everyone`, comma-separated.
        #[arg(long, value_delimiter = ',', value_parser = parse_audience)]
        audience: Vec<AudienceMember>,
        /// Replace files that already exist in DEST.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    crate::core::procedure::parse_iso_date(text)
}

fn parse_email(text: &str) -> Result<Email, String> {
    Email::parse(text)
}

fn parse_audience(text: &str) -> Result<AudienceMember, String> {
    AudienceMember::parse(text)
}

/// Runs the parsed command; returns the process exit code.
pub fn run(cli: Cli, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    match cli.command {
        Command::Serve { config } => serve(config.as_deref(), stderr),
        Command::Chat { viewer, config } => {
            with_runtime(config.as_deref(), true, stderr, |config| {
                let stdout: Box<dyn Write + Send> = Box::new(std::io::stdout());
                chat::run(
                    config,
                    std::sync::Arc::new(crate::clock::SystemClock),
                    viewer,
                    tokio::io::stdin(),
                    stdout,
                )
            })
        }
        Command::Report {
            format,
            out,
            config,
        } => with_runtime(config.as_deref(), false, stderr, |config| async move {
            let store = crate::store::Store::connect(config.database.url.as_str()).await?;
            let now = chrono::Utc::now();
            let code = match &out {
                Some(path) => {
                    let mut file = std::fs::File::create(path).map_err(|error| {
                        anyhow::anyhow!("cannot write {}: {error}", path.display())
                    })?;
                    report::report(&store, now, format, &mut file).await?
                }
                None => report::report(&store, now, format, &mut std::io::stdout()).await?,
            };
            store.close().await;
            Ok(code)
        }),
        Command::Reminders { at, json, config } => {
            with_runtime(config.as_deref(), true, stderr, |config| async move {
                let at = report::parse_moment(&at, config.schedule.timezone.0)
                    .map_err(|message| anyhow::anyhow!(message))?;
                let reminders = crate::startup::preview_reminders(&config, at).await?;
                let text = if json {
                    report::render_reminders_json(at, &reminders)
                } else {
                    report::render_reminders_human(at, &reminders)
                };
                println!("{}", text.trim_end());
                Ok(0)
            })
        }
        Command::Runs {
            procedure,
            json,
            config,
        } => with_runtime(config.as_deref(), true, stderr, |config| async move {
            let store = crate::store::Store::connect(config.database.url.as_str()).await?;
            let found = runs::gather(&store, procedure.as_deref(), chrono::Utc::now()).await?;
            store.close().await;
            let text = if json {
                runs::render_json(&found)
            } else {
                runs::render_human(&found)
            };
            println!("{}", text.trim_end());
            Ok(0)
        }),
        Command::Audit {
            action: AuditAction::Verify { config },
        } => with_runtime(config.as_deref(), false, stderr, |config| async move {
            let store = crate::store::Store::connect(config.database.url.as_str()).await?;
            let code = report::verify(&store, &mut std::io::stdout()).await?;
            store.close().await;
            Ok(code)
        }),
        Command::Check {
            dir,
            format,
            directory,
            today,
        } => run_check(&dir, &directory, format, today, stdout, stderr),
        Command::Lookup {
            procedures,
            json,
            limit,
            viewer,
            batch,
            directory,
            query,
        } => {
            let options = LookupOptions {
                json,
                limit,
                viewer,
                batch,
            };
            run_lookup(
                &procedures,
                &directory,
                &query.join(" "),
                &options,
                stdout,
                stderr,
            )
        }
        Command::Changes {
            procedures,
            from,
            to,
            json,
            directory,
        } => run_changes(&procedures, &directory, &from, &to, json, stdout, stderr),
        Command::History {
            id,
            procedures,
            rev,
            json,
            directory,
            runs_from,
        } => run_history(
            &procedures,
            &directory,
            &id,
            &rev,
            json,
            runs_from.as_deref(),
            stdout,
            stderr,
        ),
        Command::Import {
            source:
                ImportSource::Comply {
                    src,
                    dest,
                    owner,
                    audience,
                    force,
                },
        } => run_import(
            &src,
            &dest,
            ImportOptions { owner, audience },
            force,
            stdout,
            stderr,
        ),
    }
}

fn run_check(
    dir: &Path,
    directory: &Path,
    format: OutputFormat,
    today: Option<NaiveDate>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let files = match read_folder(dir, directory) {
        Ok(files) => files,
        Err(error) => {
            let _ = writeln!(stderr, "error: cannot check {}: {error}", dir.display());
            return 2;
        }
    };
    let sources: BTreeMap<String, String> = files
        .procedures
        .iter()
        .chain(files.directory.as_ref())
        .filter_map(|file| match &file.content {
            SourceContent::Bytes(bytes) => Some((
                file.path.clone(),
                String::from_utf8_lossy(bytes).into_owned(),
            )),
            SourceContent::Unreadable(_) => None,
        })
        .collect();
    let today = today.unwrap_or_else(|| chrono::Local::now().date_naive());
    let report = check_repository(files.procedures, files.directory, today);
    let rendered = match format {
        OutputFormat::Human => check::render_human(&report, &sources),
        OutputFormat::Json => check::render_json(&report),
    };
    if stdout.write_all(rendered.as_bytes()).is_err() {
        return 2;
    }
    u8::from(report.error_count() > 0)
}

struct LookupOptions {
    json: bool,
    limit: usize,
    viewer: Option<Email>,
    batch: bool,
}

fn run_lookup(
    procedures: &Path,
    directory: &Path,
    query: &str,
    options: &LookupOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let files = match read_folder(procedures, directory) {
        Ok(files) => files,
        Err(error) => {
            let _ = writeln!(stderr, "error: cannot read procedures: {error}");
            return 2;
        }
    };
    let extra_synonyms =
        std::fs::read_to_string(procedures.join(crate::search::SYNONYMS_FILE)).ok();
    let today = chrono::Local::now().date_naive();
    let snapshot =
        crate::core::snapshot::build_snapshot(files.procedures, files.directory, today, None, None);
    let index = match crate::search::SearchIndex::build(
        snapshot.procedures.values().map(|entry| &entry.procedure),
        snapshot.directory.as_ref(),
        extra_synonyms.as_deref(),
    ) {
        Ok(index) => index,
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            return 2;
        }
    };
    let viewer = match &options.viewer {
        Some(email) => crate::search::Viewer::Person(Some(email.clone())),
        None => crate::search::Viewer::Operator,
    };
    let limit = options.limit.max(1);
    if options.batch {
        let stdin = std::io::stdin();
        let result = lookup::run_batch(&mut stdin.lock(), stdout, |query| {
            index
                .lookup(query, &viewer, limit)
                .map_err(|error| error.to_string())
        });
        return match result {
            Ok(()) => 0,
            Err(message) => {
                let _ = writeln!(stderr, "error: {message}");
                2
            }
        };
    }
    let result = match index.lookup(query, &viewer, limit) {
        Ok(result) => result,
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            return 2;
        }
    };
    let text = if options.json {
        format!("{}\n", lookup::render_json(query, &result))
    } else {
        lookup::render_human(query, &result)
    };
    if stdout.write_all(text.as_bytes()).is_err() {
        return 2;
    }
    0
}

/// Runs a git-history query on the procedures folder `procedures`, with errors as text.
fn query_git<T, F, Fut>(procedures: &Path, directory: &Path, query: F) -> Result<T, String>
where
    F: FnOnce(GitProcedures) -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::repo::git::GitError>>,
{
    if !procedures.is_dir() {
        return Err(format!("{} is not a folder", procedures.display()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("could not start the async runtime: {error}"))?;
    runtime
        .block_on(async {
            let repository = GitProcedures::open(procedures, directory).await?;
            query(repository).await
        })
        .map_err(|error| error.to_string())
}

fn run_changes(
    procedures: &Path,
    directory: &Path,
    from: &str,
    to: &str,
    json: bool,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let today = chrono::Local::now().date_naive();
    let result = query_git(procedures, directory, |repository| async move {
        repository.changes_between(from, to, today).await
    });
    let result = match result {
        Ok(result) => result,
        Err(message) => {
            let _ = writeln!(stderr, "error: {message}");
            return 2;
        }
    };
    let text = if json {
        changes::render_changes_json(&result)
    } else {
        changes::render_changes_human(&result)
    };
    if stdout.write_all(text.as_bytes()).is_err() {
        return 2;
    }
    0
}

/// The runs recorded for procedure `id`, per content hash, from `config`'s database.
fn runs_by_version(
    config: &Path,
    id: &ProcedureId,
) -> Result<BTreeMap<String, Vec<crate::evidence::RunRecord>>, String> {
    let config = load_config(Some(config)).map_err(|error| error.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("could not start the async runtime: {error}"))?;
    runtime.block_on(async {
        let store = crate::store::Store::connect(config.database.url.as_str())
            .await
            .map_err(|error| format!("opening the database (database.url): {error}"))?;
        let found = runs::gather(&store, Some(id.as_str()), chrono::Utc::now())
            .await
            .map_err(|error| error.to_string());
        store.close().await;
        let mut by_hash: BTreeMap<String, Vec<crate::evidence::RunRecord>> = BTreeMap::new();
        for run in found? {
            by_hash
                .entry(run.content_hash.clone())
                .or_default()
                .push(run);
        }
        Ok(by_hash)
    })
}

#[allow(clippy::too_many_arguments)]
fn run_history(
    procedures: &Path,
    directory: &Path,
    id: &str,
    revision: &str,
    json: bool,
    runs_from: Option<&Path>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let id = match ProcedureId::parse(id) {
        Ok(id) => id,
        Err(message) => {
            let _ = writeln!(stderr, "error: {message}");
            return 2;
        }
    };
    let today = chrono::Local::now().date_naive();
    let result = query_git(procedures, directory, |repository| {
        let id = id.clone();
        async move { repository.history(&id, revision, today).await }
    });
    let entries = match result {
        Ok(entries) => entries,
        Err(message) => {
            let _ = writeln!(stderr, "error: {message}");
            return 2;
        }
    };
    if entries.is_empty() {
        let _ = writeln!(
            stderr,
            "error: no procedure with id `{id}` in the history of {} at {revision}",
            procedures.display()
        );
        return 1;
    }
    let runs = match runs_from {
        Some(config) => match runs_by_version(config, &id) {
            Ok(runs) => Some(runs),
            Err(message) => {
                let _ = writeln!(stderr, "error: {message}");
                return 2;
            }
        },
        None => None,
    };
    let text = if json {
        changes::render_history_json(id.as_str(), &entries, runs.as_ref())
    } else {
        changes::render_history_human(id.as_str(), &entries, runs.as_ref())
    };
    if stdout.write_all(text.as_bytes()).is_err() {
        return 2;
    }
    0
}

fn run_import(
    src: &Path,
    dest: &Path,
    options: ImportOptions,
    force: bool,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let imported = match import_comply(src, dest, &options, force) {
        Ok(imported) => imported,
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            return 2;
        }
    };
    let mut failed = 0;
    for file in &imported {
        let name = file.source.display();
        match &file.result {
            Ok((target, conversion)) => {
                let _ = writeln!(
                    stdout,
                    "{name} → {} (id {})",
                    target.display(),
                    conversion.id
                );
                for note in &conversion.notes {
                    let _ = writeln!(stdout, "  - {note}");
                }
            }
            Err(message) => {
                failed += 1;
                let _ = writeln!(stdout, "{name}: not imported: {message}");
            }
        }
    }
    let _ = writeln!(
        stdout,
        "imported {} of {} comply procedures into {}; next, fill in what the notes ask and run `procbot check {}`",
        imported.len() - failed,
        imported.len(),
        dest.display(),
        dest.display()
    );
    u8::from(failed > 0)
}

/// Reads the configuration for commands that need it.
pub fn load_config(path: Option<&Path>) -> Result<Config, config::ConfigError> {
    let default = Path::new(DEFAULT_CONFIG_FILE);
    let path = path.or_else(|| default.is_file().then_some(default));
    config::load(path, std::env::vars())
}

/// Loads the configuration, starts logging and an async runtime, and runs `body`; errors are
/// printed and give exit code 2. `quiet` logs warnings only (unless log.level says otherwise),
/// for commands whose output is a conversation.
fn with_runtime<F, Fut>(
    config_path: Option<&Path>,
    quiet: bool,
    stderr: &mut dyn Write,
    body: F,
) -> u8
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u8>>,
{
    let mut config = match load_config(config_path) {
        Ok(config) => config,
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            return 2;
        }
    };
    if quiet && config.log.level == crate::config::LogConfig::default().level {
        config.log.level = "warn".to_string();
    }
    crate::telemetry::init(config.log.format, &config.log.level, std::io::stderr);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(stderr, "error: could not start the async runtime: {error}");
            return 2;
        }
    };
    match runtime.block_on(body(config)) {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(stderr, "error: {error:#}");
            2
        }
    }
}

fn serve(config_path: Option<&Path>, stderr: &mut dyn Write) -> u8 {
    with_runtime(config_path, false, stderr, |config| async move {
        let result = async {
            let application = crate::startup::Application::build(
                config,
                std::sync::Arc::new(crate::clock::SystemClock),
            )
            .await?;
            application
                .run_until(crate::startup::shutdown_signal())
                .await
        }
        .await;
        if let Err(error) = &result {
            // A service's log is where its operators look, not only its stderr.
            tracing::error!(error = format!("{error:#}"), "procbot stopped");
        }
        result.map(|()| 0)
    })
}
