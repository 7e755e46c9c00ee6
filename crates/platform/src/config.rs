//! Layered, typed configuration: built-in defaults → optional `tenantry.toml` (or the file
//! named by `TENANTRY_CONFIG`) → `TENANTRY_…` environment variables (nested keys joined with
//! `__`, e.g. `TENANTRY_SMTP__URL`). `DATABASE_URL` is honoured as well.
//!
//! Secrets are [`SecretString`]s: they never appear in `Debug` output or logs.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// How the server treats missing secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One machine, no services: missing keys are generated once into the data directory.
    Embedded,
    /// Keys must be configured; the server refuses to start with generated ones.
    Production,
}

/// SMTP relay settings; without them, emails are written as `.eml` files.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SmtpSettings {
    /// `smtps://user:pass@host:465` (implicit TLS), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS), or `smtp://host:25` for an unencrypted local relay.
    #[serde(serialize_with = "redact")]
    pub url: SecretString,
}

/// Every setting Tenantry reads.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Settings {
    /// Embedded (the default) or production.
    pub mode: Mode,
    /// Address to listen on.
    pub bind: String,
    /// Where clients reach this server; the `iss` of access tokens and the base of links in
    /// emails.
    pub public_url: String,
    /// Where links in emails point: the product's front end, which serves `/verify-email`
    /// (token in the URL fragment). Unset: `public_url`, where Tenantry serves a minimal page.
    pub app_url: Option<String>,
    /// `sqlite://…` (embedded default) or `postgres://…`.
    pub database_url: String,
    /// Database pool size (on SQLite: the readers beside the one writer, at most two per
    /// core).
    pub database_max_connections: u32,
    /// How long a request waits for a database connection before it answers 503 (ms).
    pub database_acquire_timeout_ms: u64,
    /// Log every statement with its values and duration (target `tenantry::statements`).
    pub database_log_statements: bool,
    /// Where the embedded default keeps its database, keys and `.eml` files.
    pub data_dir: PathBuf,
    /// Base64 of the 32-byte Ed25519 seed that signs access tokens.
    #[serde(serialize_with = "redact_opt")]
    pub signing_key: Option<SecretString>,
    /// Base64 of the 32-byte key that encrypts secrets at rest.
    #[serde(serialize_with = "redact_opt")]
    pub encryption_key: Option<SecretString>,
    /// Access-token lifetime in seconds.
    pub access_token_ttl_secs: i64,
    /// Origins allowed by CORS; empty allows none.
    pub cors_allowed_origins: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Password-hashing threads (0: one per core).
    pub hash_threads: usize,
    /// Password checks allowed to wait for a hashing thread before new ones are shed with
    /// 503 (0: eight per thread).
    pub hash_queue: usize,
    /// The longest a password check may wait for a hashing thread before it is shed (ms).
    pub hash_max_wait_ms: u64,
    /// Run the background workers inside the server process.
    pub embedded_worker: bool,
    /// On shutdown, how long jobs under way may take to finish (ms); one still running then
    /// is left to be taken up again.
    pub worker_shutdown_grace_ms: u64,
    /// Sender of outgoing email.
    pub mail_from: String,
    /// SMTP relay; `.eml` files in `data_dir/mail` when absent.
    pub smtp: Option<SmtpSettings>,
    /// `pretty` for people, `json` for log pipelines.
    pub log_format: String,
    /// HTTP worker threads (0: one per core).
    pub http_workers: usize,
    /// Redis for rate limits shared by every server (`redis://127.0.0.1:6379`); unset keeps
    /// them in this process.
    #[serde(serialize_with = "redact_opt_string")]
    pub redis_url: Option<String>,
    /// Prefix of the rate-limit keys in Redis.
    pub rate_limit_prefix: String,
    /// Sign-in, second-factor, password-reset and invitation attempts allowed per minute,
    /// per client address and per account.
    pub auth_requests_per_minute: u32,
    /// Proxies (addresses or networks such as `10.0.0.0/8`) whose `X-Forwarded-For` names
    /// the client; empty trusts none.
    pub trusted_proxies: Vec<String>,
    /// The bearer token that opens `GET /metrics` (Prometheus text format). Unset, the
    /// server does not serve metrics: they are never public.
    #[serde(serialize_with = "redact_opt")]
    pub metrics_token: Option<SecretString>,
    /// The most a tenant may allow itself (`tenant_limits.api_requests_per_minute`,
    /// `tenant_limits.seats`), until plans own allowances.
    pub tenant_limits: tenantry_tenancy::Ceilings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: Mode::Embedded,
            bind: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            app_url: None,
            database_url: "sqlite://./data/tenantry.db".into(),
            database_max_connections: 16,
            database_acquire_timeout_ms: 5000,
            database_log_statements: false,
            data_dir: PathBuf::from("./data"),
            signing_key: None,
            encryption_key: None,
            access_token_ttl_secs: 900,
            cors_allowed_origins: Vec::new(),
            max_body_bytes: 256 * 1024,
            hash_threads: 0,
            hash_queue: 0,
            hash_max_wait_ms: 1000,
            embedded_worker: true,
            worker_shutdown_grace_ms: 10_000,
            mail_from: "Tenantry <no-reply@tenantry.local>".into(),
            smtp: None,
            log_format: "pretty".into(),
            http_workers: 0,
            redis_url: None,
            rate_limit_prefix: "tenantry:rl:".into(),
            auth_requests_per_minute: 20,
            trusted_proxies: Vec::new(),
            metrics_token: None,
            tenant_limits: tenantry_tenancy::Ceilings::default(),
        }
    }
}

fn redact<S: serde::Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("[redacted]")
}

fn redact_opt_string<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    // A Redis URL may carry a password.
    match v {
        Some(_) => s.serialize_str("[redacted]"),
        None => s.serialize_none(),
    }
}

fn redact_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("[redacted]"),
        None => s.serialize_none(),
    }
}

impl Settings {
    /// Loads defaults, then the config file if present, then the environment.
    pub fn load() -> Result<Self, Box<figment::Error>> {
        let file = std::env::var("TENANTRY_CONFIG").unwrap_or_else(|_| "tenantry.toml".into());
        Self::figment(Path::new(&file)).extract().map_err(Box::new)
    }

    /// The layered sources, for inspection and tests.
    #[must_use]
    pub fn figment(file: &Path) -> Figment {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .merge(Env::prefixed("TENANTRY_").split("__").ignore(&["CONFIG"]))
    }

    /// The base of links in emails, without a trailing slash.
    #[must_use]
    pub fn link_base(&self) -> &str {
        self.app_url
            .as_deref()
            .unwrap_or(&self.public_url)
            .trim_end_matches('/')
    }

    /// Whether the database is SQLite.
    #[must_use]
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail fixes the closure's error type"
    )]
    fn the_environment_overrides_the_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "t.toml",
                "bind = \"0.0.0.0:9000\"\npublic_url = \"https://file\"",
            )?;
            jail.set_env("TENANTRY_PUBLIC_URL", "https://env");
            jail.set_env("DATABASE_URL", "postgres://db/x");
            jail.set_env("TENANTRY_SMTP__URL", "smtp://u:p@mail:25");
            let s: Settings = Settings::figment(Path::new("t.toml")).extract()?;
            assert_eq!(s.bind, "0.0.0.0:9000");
            assert_eq!(s.public_url, "https://env");
            assert_eq!(s.database_url, "postgres://db/x");
            assert_eq!(
                s.smtp.as_ref().map(|m| m.url.expose_secret()),
                Some("smtp://u:p@mail:25")
            );
            assert_eq!(s.access_token_ttl_secs, 900);
            Ok(())
        });
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings {
            signing_key: Some(SecretString::from("c2VjcmV0LXNpZ25pbmcta2V5")),
            smtp: Some(SmtpSettings {
                url: SecretString::from("smtp://u:hunter2@mail"),
            }),
            ..Settings::default()
        };
        let debug = format!("{s:?}");
        let json = serde_json::to_string(&s).unwrap();
        for shown in [debug, json] {
            assert!(!shown.contains("c2VjcmV0"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}
