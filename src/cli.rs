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
    },
    /// Apply pending database migrations and exit.
    Migrate,
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

fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    Ok(Settings::load(cli.config.as_deref())?)
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Serve { bind } => {
            let mut settings = settings(&cli)?;
            if let Some(bind) = bind {
                settings.bind = *bind;
            }
            let app = crate::web::Application::build(settings).await?;
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
            let url = crate::web::database_url(&settings)?;
            let mut conn = crate::db::establish(&url)?;
            let applied = crate::db::run_migrations(&mut conn)?;
            println!(
                "{}",
                serde_json::json!({"database": url.describe(), "applied": applied})
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
