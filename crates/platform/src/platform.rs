//! The domain services wired together over one database.

use std::sync::Arc;

use anyhow::Context as _;
use tenantry_audit::SeaAuditSink;
use tenantry_identity::{
    AccountService, AccountUpkeep, ApiKeyService, HashPool, IdentityService, IdentitySettings,
    InvitationDelivery, InvitationService, MemberSessions, MfaService, PasswordHasher, SeaIdentity,
    TokenSigner,
};
use tenantry_kernel::db::Db;
use tenantry_kernel::{AuditSink, Sealer};
use tenantry_tenancy::{LocationService, MemberService, RoleService, SeaTenancy, TenancyService};

use crate::jobs::JobQueue;
use crate::mailer::Mailer;
use crate::outbox::SqlOutbox;
use crate::ratelimit::{CredentialLimit, RateLimiter, TenantAllowances};
use crate::{Settings, db, keys};

/// Everything a Tenantry process runs on, built once at start.
pub struct Platform {
    /// The settings it was built from.
    pub settings: Settings,
    /// The database.
    pub db: Db,
    /// Tenants and memberships.
    pub tenancy: Arc<dyn TenancyService>,
    /// The member directory and member commands.
    pub members: Arc<dyn MemberService>,
    /// Locations, their members and settings.
    pub locations: Arc<dyn LocationService>,
    /// Roles, system and custom, and who holds them.
    pub roles: Arc<dyn RoleService>,
    /// Signing in, sessions and tokens.
    pub identity: Arc<dyn IdentityService>,
    /// Sign-up and the caller's own account.
    pub accounts: Arc<dyn AccountService>,
    /// Account tokens for emails and the purge, for the jobs.
    pub account_upkeep: Arc<dyn AccountUpkeep>,
    /// Invitations.
    pub invitations: Arc<dyn InvitationService>,
    /// Invitation emails and cleanup, for the jobs.
    pub invitation_delivery: Arc<dyn InvitationDelivery>,
    /// The tenant's API keys.
    pub api_keys: Arc<dyn ApiKeyService>,
    /// Second factors and the sign-ins that need them.
    pub mfa: Arc<dyn MfaService>,
    /// Rate limits: in this process, or in Redis when configured.
    pub limits: Arc<RateLimiter>,
    /// Each tenant's API allowance, cached.
    pub allowances: TenantAllowances,
    /// The outbox commands write their events to.
    pub outbox: Arc<SqlOutbox>,
    /// Outgoing email.
    pub mailer: Arc<Mailer>,
    /// The job queue.
    pub jobs: JobQueue,
    /// The password-hash pool (for its metrics; identity hashes through it).
    pub hasher: Arc<PasswordHasher>,
    /// This instance's metrics.
    pub metrics: crate::metrics::Metrics,
    /// Seals secrets at rest under `encryption_key`.
    pub sealer: Arc<Sealer>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Platform {
    /// Connects, migrates, loads keys and wires the services.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let keys = keys::load(&settings).context("loading keys")?;
        let db = db::connect(
            &settings.database_url,
            settings.database_max_connections,
            std::time::Duration::from_millis(settings.database_acquire_timeout_ms),
        )
        .await
        .context("connecting to the database")?;
        db::migrate(&db).await.context("applying migrations")?;
        if settings.database_log_statements {
            db::log_statements(true);
        }
        let jobs = JobQueue::connect(&settings.database_url)
            .await
            .context("setting up the job queue")?;
        let mailer = Arc::new(Mailer::from_settings(&settings)?);
        let audit: Arc<dyn AuditSink> = Arc::new(SeaAuditSink);
        let outbox = Arc::new(SqlOutbox::new());
        let sea_tenancy = Arc::new(SeaTenancy::new(
            db.clone(),
            Arc::clone(&audit),
            Arc::new(MemberSessions),
            settings.tenant_limits,
        ));
        let tenancy: Arc<dyn TenancyService> = sea_tenancy.clone();
        let members: Arc<dyn MemberService> = sea_tenancy.clone();
        let locations: Arc<dyn LocationService> = sea_tenancy.clone();
        let roles: Arc<dyn RoleService> = sea_tenancy;
        let threads = match settings.hash_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let hasher = Arc::new(PasswordHasher::start(HashPool {
            threads,
            queue: match settings.hash_queue {
                0 => threads * 8,
                n => n,
            },
            max_wait: std::time::Duration::from_millis(settings.hash_max_wait_ms),
        })?);
        let signer = Arc::new(TokenSigner::from_seed(
            &keys.signing_seed,
            &settings.public_url,
            settings.access_token_ttl_secs,
        ));
        let limits = Arc::new(match &settings.redis_url {
            Some(url) => RateLimiter::redis(url, &settings.rate_limit_prefix)
                .await
                .context("connecting to Redis for rate limits")?,
            None => RateLimiter::local(),
        });
        let attempts = Arc::new(CredentialLimit::new(
            Arc::clone(&limits),
            settings.auth_requests_per_minute,
        ));
        let sealer = Arc::new(Sealer::new(&keys.encryption_key));
        let sea_identity = Arc::new(SeaIdentity::new(
            db.clone(),
            Arc::clone(&tenancy),
            (audit, outbox.clone()),
            (Arc::clone(&hasher), attempts),
            (signer, Arc::clone(&sealer)),
            IdentitySettings::default(),
        ));
        let identity: Arc<dyn IdentityService> = sea_identity.clone();
        let accounts: Arc<dyn AccountService> = sea_identity.clone();
        let account_upkeep: Arc<dyn AccountUpkeep> = sea_identity.clone();
        let invitations: Arc<dyn InvitationService> = sea_identity.clone();
        let invitation_delivery: Arc<dyn InvitationDelivery> = sea_identity.clone();
        let api_keys: Arc<dyn ApiKeyService> = sea_identity.clone();
        let mfa: Arc<dyn MfaService> = sea_identity;
        Ok(Self {
            settings,
            db,
            tenancy,
            members,
            locations,
            roles,
            identity,
            accounts,
            account_upkeep,
            invitations,
            invitation_delivery,
            api_keys,
            mfa,
            limits,
            allowances: TenantAllowances::default(),
            outbox,
            mailer,
            jobs,
            hasher,
            metrics: crate::metrics::Metrics::new(),
            sealer,
        })
    }
}
