//! The `dma` command line. Each subcommand is a thin wrapper over the library: parsing, the
//! work, then JSON on stdout for results and plain sentences on stderr for errors, with a
//! non-zero exit code on bad input (the contract in the questionnaire format spec, section 8).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "dma",
    version,
    about = "Digital maturity assessment engine: serve the yearly self-assessment, score it, report on it.",
    long_about = "Digital maturity assessment engine for NHS organisations.\n\n\
        Configuration comes from built-in defaults, an optional TOML file (--config or DMA_CONFIG) \
        and environment variables (DATABASE_URL, DMA_*; see .env.example). With no DATABASE_URL \
        the data lives in a SQLite file in ./data."
)]
pub struct Cli {
    /// A TOML configuration file (keys as in .env.example, lower case, without DMA_).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web application (migrates the database first). Stops cleanly on SIGTERM.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 (overrides DMA_BIND).
        #[arg(long, value_name = "ADDR")]
        bind: Option<SocketAddr>,
        /// Into a database with no accounts, load demo data first: a demo registry, the
        /// example question set (published) and one account per role (see README).
        #[arg(long)]
        demo: bool,
    },
    /// The organisation registry.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// The email outbox.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Deadline reminders and the other scheduled emails.
    Reminders {
        #[command(subcommand)]
        command: RemindersCommand,
    },
    /// Demo data for trying the service.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Check, import, publish, export, list and compare question sets.
    Questionnaire {
        #[command(subcommand)]
        command: QuestionnaireCommand,
    },
    /// Score an answers file against a question set and print the scores as JSON.
    Score {
        /// The question set (YAML or JSON).
        #[arg(long, value_name = "FILE")]
        questionnaire: PathBuf,
        /// The answers (YAML or JSON; see the format spec, section 7).
        #[arg(long, value_name = "FILE")]
        answers: PathBuf,
    },
    /// Accounts for administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Copy the embedded SQLite database to a new FILE while the server runs (a consistent
    /// snapshot). For PostgreSQL use pg_dump (docs/operations.md).
    Backup { file: PathBuf },
    /// Replace the embedded SQLite database with a backup, after checking the backup's
    /// integrity and schema version. Refuses a database that holds data or is in use.
    Restore {
        file: PathBuf,
        /// Replace the database even if it holds data or looks in use (stop the server first).
        #[arg(long)]
        force: bool,
    },
    /// Reports' stored figures.
    Reports {
        #[command(subcommand)]
        command: ReportsCommand,
    },
    /// Data retention: purge old sessions, used links, delivered email bodies and (when
    /// configured) old answer history. Submissions, scores and the audit log are never purged.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportsCommand {
    /// Count every cycle's scores afresh into the score counts the group figures read, and
    /// print per cycle how many counts were corrected (none, unless scores or submissions
    /// were changed in the database by hand). Safe to repeat; on SQLite best run with the server
    /// stopped or quiet (docs/operations.md, "Score counts").
    Recount,
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Purge what the DMA_RETENTION_* settings no longer keep, print the counts as JSON. The
    /// server's scheduler does the same every pass; safe to repeat.
    Run {
        /// Act as if it were this moment (2026-06-30, 2026-06-30T09:00 or RFC 3339).
        #[arg(long, value_name = "DATETIME")]
        now: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuestionnaireCommand {
    /// Validate a definition; print a one-line JSON summary, or every error with its path.
    Check { file: PathBuf },
    /// Validate and store a definition as a draft (replacing a draft of the same version).
    Import {
        file: PathBuf,
        /// Publish it at once; a published version can never change.
        #[arg(long)]
        publish: bool,
    },
    /// Publish a stored draft, making it immutable.
    Publish { key: String, version: String },
    /// Print a stored version in the definition format.
    Export {
        key: String,
        version: String,
        #[arg(long, value_enum, default_value = "yaml")]
        format: ExportFormat,
    },
    /// List stored question sets and versions with their status, as JSON.
    List,
    /// Compare two stored versions: added, removed, reworded and rescored questions, and which
    /// domains stay comparable year on year.
    Diff {
        key: String,
        version_a: String,
        version_b: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Import or update organisations from a CSV file (columns: ods_code, name, settings,
    /// region, parent_icb, parent_from, opened_on, closed_on). All or nothing: a file with any
    /// bad row changes nothing, and every bad row is reported. Importing the same file again
    /// changes nothing.
    Import { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Deliver every due message once (for cron, or a server started without its worker).
    SendPending,
}

#[derive(Debug, Subcommand)]
pub enum RemindersCommand {
    /// Queue every message due now and not yet queued: "cycle opened", reminders at the
    /// configured days before the deadline (DMA_REMINDER_DAYS), overdue notices and score
    /// reports. Safe to run as often as you like; each message is queued at most once.
    Run {
        /// Act as if it were this moment (2026-06-30, 2026-06-30T09:00 or RFC 3339); for
        /// tests and catching up.
        #[arg(long, value_name = "DATETIME")]
        now: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Load the demo registry, question set and accounts into a database with no accounts.
    Load,
    /// Fill a new, empty database with benchmark-scale data: the 7 regions and 42 ICBs, N
    /// acute trusts with an approver and a contributor each, and K yearly cycles of varied
    /// answers (the last one open, a mix of submitted, in-progress and not-started
    /// assessments). Every account's password is in the README. Refuses (exit 2) a database
    /// that already holds data. Prints a JSON summary.
    Seed {
        /// How many organisations to assess (1 to 100,000).
        #[arg(long, default_value_t = 1000)]
        orgs: usize,
        /// How many yearly cycles (1 to 10); the last is the open one.
        #[arg(long, default_value_t = 3)]
        cycles: usize,
        /// The random seed: the same seed gives the same data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Yaml,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an administrator account (the first one on a new install) and print a
    /// single-use link, valid for 7 days, where they choose their password.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Read the password from standard input instead of printing a link (for scripts).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Make a personal API token for an active account and print it (once) as JSON, for
    /// scripts that set up a program's access.
    Token {
        #[arg(long)]
        email: String,
        /// What the token is for, as its owner sees it on their tokens page.
        #[arg(long, default_value = "command line")]
        name: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init("info");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", format_error(&e));
            ExitCode::FAILURE
        }
    }
}

fn format_error(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// Bad input: the sentences go to stderr and the command exits 1.
fn refuse(errors: &[crate::domain::FieldError]) -> ExitCode {
    for e in errors {
        eprintln!("{e}");
    }
    ExitCode::FAILURE
}

fn read_input(path: &std::path::Path, limit: usize) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > limit as u64 {
        return Err(format!(
            "{}: the file is {} bytes; the limit is {limit}",
            path.display(),
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_or_refuse(path: &std::path::Path, limit: usize) -> Result<Vec<u8>, ExitCode> {
    read_input(path, limit).map_err(|message| {
        eprintln!("{message}");
        ExitCode::FAILURE
    })
}

async fn open_db(cli: &Cli) -> anyhow::Result<crate::db::Db> {
    let settings = settings(cli)?;
    Ok(settings.open_database().await?)
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn questionnaire_command(
    cli: &Cli,
    command: &QuestionnaireCommand,
) -> anyhow::Result<ExitCode> {
    use crate::domain::questionnaire::{self, MAX_DEFINITION_BYTES};
    use crate::services::questionnaires as store;
    let actor = crate::services::audit::Actor::system("cli");
    match command {
        QuestionnaireCommand::Check { file } => {
            let bytes = match read_or_refuse(file, MAX_DEFINITION_BYTES) {
                Ok(b) => b,
                Err(code) => return Ok(code),
            };
            match questionnaire::load_with_warnings(&bytes) {
                Ok((q, warnings)) => {
                    for w in &warnings {
                        eprintln!("warning: {w}");
                    }
                    println!(
                        "{}",
                        serde_json::json!({
                            "valid": true, "key": q.key, "version": q.version,
                            "domains": q.domains.len(), "questions": q.questions().count(),
                            "warnings": warnings.len(),
                        })
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => Ok(refuse(&errors)),
            }
        }
        QuestionnaireCommand::Import { file, publish } => {
            let bytes = match read_or_refuse(file, MAX_DEFINITION_BYTES) {
                Ok(b) => b,
                Err(code) => return Ok(code),
            };
            let db = open_db(cli).await?;
            let publish = *publish;
            let result = db
                .write(move |conn| Ok(store::import(conn, &actor, &bytes, publish)))
                .await?;
            match result {
                Ok(outcome) => {
                    for w in &outcome.warnings {
                        eprintln!("warning: {w}");
                    }
                    print_json(&outcome)?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(store::ImportError::Invalid(errors)) => Ok(refuse(&errors)),
                Err(store::ImportError::App(e)) => Err(e.into()),
            }
        }
        QuestionnaireCommand::Publish { key, version } => {
            let db = open_db(cli).await?;
            let (key, version) = (key.clone(), version.clone());
            match db
                .write(move |conn| store::publish(conn, &actor, &key, &version))
                .await
            {
                Ok(summary) => {
                    print_json(&summary)?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(refuse_app(e)),
            }
        }
        QuestionnaireCommand::Export {
            key,
            version,
            format,
        } => {
            let db = open_db(cli).await?;
            let (key, version) = (key.clone(), version.clone());
            match db.read(move |conn| store::get(conn, &key, &version)).await {
                Ok(stored) => {
                    let text = match format {
                        ExportFormat::Yaml => questionnaire::to_yaml(&stored.questionnaire),
                        ExportFormat::Json => questionnaire::to_json(&stored.questionnaire),
                    };
                    print!("{text}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(refuse_app(e)),
            }
        }
        QuestionnaireCommand::List => {
            let db = open_db(cli).await?;
            print_json(&db.read(store::list).await?)?;
            Ok(ExitCode::SUCCESS)
        }
        QuestionnaireCommand::Diff {
            key,
            version_a,
            version_b,
        } => {
            let db = open_db(cli).await?;
            let (k, a, b) = (key.clone(), version_a.clone(), version_b.clone());
            let pair = db
                .read(move |conn| Ok((store::get(conn, &k, &a)?, store::get(conn, &k, &b)?)))
                .await;
            match pair {
                Ok((a, b)) => {
                    let diff =
                        crate::domain::comparability::diff(&a.questionnaire, &b.questionnaire);
                    print_json(&diff)?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(refuse_app(e)),
            }
        }
    }
}

/// An application error caused by the user's input (an unknown version, a published one):
/// a sentence on stderr and exit 1. Server faults still propagate.
fn refuse_app(e: crate::error::AppError) -> ExitCode {
    let message = match &e {
        crate::error::AppError::NotFound => {
            "no such question set or version (see `dma questionnaire list`)".to_string()
        }
        other => other.public_message(),
    };
    if e.is_server_fault() {
        eprintln!("error: {}", crate::error::error_chain(&e));
    } else {
        eprintln!("{message}");
    }
    ExitCode::FAILURE
}

fn score_command(questionnaire_file: &std::path::Path, answers_file: &std::path::Path) -> ExitCode {
    use crate::domain::{answers, questionnaire, scoring};
    let definition = match read_or_refuse(questionnaire_file, questionnaire::MAX_DEFINITION_BYTES) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let q = match questionnaire::load(&definition) {
        Ok(q) => q,
        Err(errors) => return refuse(&errors),
    };
    let raw = match read_or_refuse(answers_file, answers::MAX_ANSWERS_BYTES) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let file = match answers::parse_answers_file(&raw) {
        Ok(f) => f,
        Err(errors) => return refuse(&errors),
    };
    let given = match file.validate_for(&q) {
        Ok(a) => a,
        Err(errors) => return refuse(&errors),
    };
    let report = scoring::score(&q, &given);
    match serde_json::to_string_pretty(&scoring::cli_json(&report)) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `dma admin token`: a token for the account with `email`, through the same code as the
/// tokens page.
async fn token_command(cli: &Cli, email: &str, name: &str) -> anyhow::Result<ExitCode> {
    let settings = settings(cli)?;
    let db = settings.open_database().await?;
    let (email, name) = (email.to_string(), name.to_string());
    let result = db
        .write(move |conn| {
            let user = crate::services::auth::users::find_by_email(conn, &email)?
                .filter(|u| u.active)
                .ok_or_else(|| {
                    crate::error::AppError::BadRequest(format!(
                        "There is no active account for {email}."
                    ))
                })?;
            let actor = crate::services::audit::Actor::system("cli");
            // The command runs on the server by someone who can already read its database,
            // so it asks for no password; the token gets the default lifetime.
            crate::services::auth::api_token::create(
                conn,
                &actor,
                user.id,
                &name,
                crate::services::auth::api_token::DEFAULT_DAYS,
            )
        })
        .await;
    match result {
        Ok((row, token)) => {
            print_json(
                &serde_json::json!({"id": row.id, "name": row.name, "token": token, "expires_at": row.expires_at}),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(refuse_app(e)),
    }
}

async fn admin_command(cli: &Cli, command: &AdminCommand) -> anyhow::Result<ExitCode> {
    use crate::services::auth::{password, roles::Role, users};
    let (email, name, password_stdin) = match command {
        AdminCommand::Create {
            email,
            name,
            password_stdin,
        } => (email, name, password_stdin),
        AdminCommand::Token { email, name } => return token_command(cli, email, name).await,
    };
    let email = match users::EmailAddress::parse(email) {
        Ok(e) => e,
        Err(message) => {
            eprintln!("--email: {message}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let chosen = if *password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if let Some(problem) = password::policy_problem(&line, email.as_str(), name) {
            eprintln!("password: {problem}");
            return Ok(ExitCode::FAILURE);
        }
        Some(password::hash(&line)?)
    } else {
        None
    };
    let settings = settings(cli)?;
    let base_url = settings.base_url.clone();
    let db = settings.open_database().await?;
    let name = name.clone();
    let result = db
        .write(move |conn| {
            let actor = crate::services::audit::Actor::system("cli");
            let user = users::create(
                conn,
                &actor,
                users::NewUser {
                    email: &email,
                    name: &name,
                    role: Role::Administrator,
                    organisation_id: None,
                    group_organisation_id: None,
                    group_region: None,
                },
            )?;
            match chosen {
                Some(hash) => {
                    users::set_password_hash(conn, &actor, user.id, &hash)?;
                    Ok((user, None))
                }
                None => {
                    let token = users::issue_link_token(conn, user.id, users::INVITATION)?;
                    Ok((user, Some(token)))
                }
            }
        })
        .await;
    match result {
        Ok((user, token)) => {
            let link = token.map(|t| format!("{base_url}/account/set-password?token={t}"));
            print_json(
                &serde_json::json!({"id": user.id, "email": user.email, "role": user.role, "set_password_link": link}),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(refuse_app(e)),
    }
}

fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    Ok(Settings::load(cli.config.as_deref())?)
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Serve { bind, demo } => {
            let mut settings = settings(&cli)?;
            if let Some(bind) = bind {
                settings.set_bind(*bind);
            }
            let db = settings.open_database().await?;
            if *demo {
                let summary = crate::services::demo::load_if_empty(&db, &settings).await?;
                if summary.loaded {
                    tracing::info!(accounts = ?summary.accounts, "demo data loaded; the demo password is in the README");
                } else {
                    tracing::info!("the database already has accounts; demo data not loaded");
                }
            }
            let app = crate::web::Application::build_with_db(settings, db).await?;
            tracing::info!(
                port = app.port(),
                "dma is serving; stop with Ctrl+C or SIGTERM"
            );
            app.run_until_stopped().await?;
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let settings = settings(&cli)?;
            let url = settings.database()?;
            let mut conn = crate::db::establish(&url)?;
            let applied = crate::db::run_migrations(&mut conn)?;
            println!(
                "{}",
                serde_json::json!({"database": url.describe(), "applied": applied})
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Questionnaire { command } => questionnaire_command(&cli, command).await,
        Command::Score {
            questionnaire,
            answers,
        } => Ok(score_command(questionnaire, answers)),
        Command::Admin { command } => admin_command(&cli, command).await,
        Command::Org {
            command: OrgCommand::Import { file },
        } => crate::services::registry::import_command(&settings(&cli)?, file).await,
        Command::Mail {
            command: MailCommand::SendPending,
        } => crate::services::mail::send_pending_command(&settings(&cli)?).await,
        Command::Reminders {
            command: RemindersCommand::Run { now },
        } => crate::services::notifications::run_command(&settings(&cli)?, now.as_deref()).await,
        Command::Backup { file } => crate::services::backup::backup_command(&settings(&cli)?, file),
        Command::Restore { file, force } => {
            crate::services::backup::restore_command(&settings(&cli)?, file, *force)
        }
        Command::Reports {
            command: ReportsCommand::Recount,
        } => crate::services::reports::counts::recount_command(&settings(&cli)?).await,
        Command::Retention {
            command: RetentionCommand::Run { now },
        } => crate::services::retention::run_command(&settings(&cli)?, now.as_deref()).await,
        Command::Demo {
            command: DemoCommand::Load,
        } => {
            let settings = settings(&cli)?;
            let db = settings.open_database().await?;
            print_json(&crate::services::demo::load_if_empty(&db, &settings).await?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            command: DemoCommand::Seed { orgs, cycles, seed },
        } => {
            let options = crate::services::seed::Options {
                orgs: *orgs,
                cycles: *cycles,
                seed: *seed,
            };
            crate::services::seed::command(&settings(&cli)?, options).await
        }
    }
}
