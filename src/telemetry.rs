//! Logging. Everything goes to stderr so commands that print JSON keep stdout clean; the
//! level comes from `RUST_LOG` (default `info`). Secrets never reach these lines: they are
//! held in `config::Secret`, whose `Debug` is redacted.

use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // A second initialisation (tests) is harmless, so its error is ignored.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
