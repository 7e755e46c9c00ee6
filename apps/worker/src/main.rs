//! `tenantry-worker`: runs the outbox relay, the email worker and the cleanup schedule as a
//! process of its own, against the same database as the servers.

use std::sync::Arc;

use tenantry_platform::{Platform, Settings, jobs};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if settings.log_format == "json" {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let platform = Arc::new(Platform::build(settings).await?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping");
        let _ = stop_tx.send(true);
    });
    tracing::info!("tenantry-worker running");
    jobs::run(platform, stop_rx).await
}
