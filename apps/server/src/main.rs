//! `tenantry`: serves the API (the default), applies migrations, or prints the OpenAPI document.

use clap::{Parser, Subcommand};
use tenantry_platform::Settings;
use tenantry_platform::telemetry;
use tenantry_server::{Application, openapi};

#[derive(Parser)]
#[command(name = "tenantry", version, about = "Multi-tenant SaaS backend core")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (and, in embedded mode, the background workers).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        print!("{}", openapi::pretty_json()?);
        return Ok(());
    }
    let settings = Settings::load()?;
    telemetry::init(&settings.log_format);
    match cli.command {
        Some(Command::Migrate) => {
            let db = tenantry_platform::db::connect(&settings.database_url, 1).await?;
            tenantry_platform::db::migrate(&db).await?;
            tracing::info!("migrations applied");
        }
        _ => {
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "tenantry listening");
            app.run_until_stopped().await?;
        }
    }
    Ok(())
}
