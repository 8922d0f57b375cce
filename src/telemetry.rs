//! Logging. Everything goes to stderr so commands that print JSON keep stdout clean; the
//! level comes from `RUST_LOG` (default `info`). Secrets never reach these lines: they are
//! held in `config::Secret`, whose `Debug` is redacted.
//!
//! `DMA_LOG_FORMAT=json` writes one JSON object a line, for a log shipper: each event carries
//! the fields of the request it belongs to (`request_id`, `method`, `route`; see
//! `web::observe`). It is read from the environment because logging starts before the
//! configuration file is read, so that configuration errors are logged too.

use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = std::env::var("DMA_LOG_FORMAT").is_ok_and(|f| f.trim().eq_ignore_ascii_case("json"));
    // A second initialisation (tests) is harmless, so its error is ignored.
    if json {
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .try_init();
    } else {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init();
    }
}
