//! `tenantry-worker`: runs the outbox relay, the email worker and the cleanup schedule as a
//! process of its own, against the same database as the servers.

use std::sync::Arc;

use tenantry_platform::{Platform, Settings, jobs, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    telemetry::init(&settings.log_format);
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
