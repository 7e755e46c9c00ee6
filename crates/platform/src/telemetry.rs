//! Structured logs: `RUST_LOG` filters (default `info`), `log_format` picks `pretty` or `json`.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; later calls are no-ops.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        // Colours only for a person at a terminal, not in files or log collectors.
        builder
            .with_ansi(std::io::stdout().is_terminal())
            .try_init()
    };
}
