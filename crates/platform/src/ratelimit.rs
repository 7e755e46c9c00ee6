//! Rate limits: GCRA buckets keyed by what is being limited (a client address, an account, a
//! principal), with a per-minute allowance and an equal burst.
//!
//! In the embedded default the buckets live in this process (governor). With `redis_url` set
//! they live in Redis, updated atomically by one Lua script against Redis's own clock, so every
//! server shares each limit. A Redis outage lets requests through (and logs it): limits are a
//! defence in depth, not a reason to take sign-in down.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Governor};
use tenantry_kernel::crypto::token_hash;
use tenantry_kernel::{Attempt, AttemptLimiter, ClientMeta, Throttled};

/// The outcome of one hit on a bucket, with what the `RateLimit-*` headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Requests per minute the bucket allows.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds until the next request is allowed (0 when allowed).
    pub retry_after_secs: u64,
}

impl Decision {
    /// Of two decisions for one request, the one to report: a refusal, or else the one with
    /// less room.
    #[must_use]
    pub fn tighter(self, other: Self) -> Self {
        match (self.allowed, other.allowed) {
            (false, true) => self,
            (true, false) => other,
            _ if other.remaining < self.remaining => other,
            _ => self,
        }
    }
}

type Keyed =
    Governor<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Buckets in this process.
pub struct LocalLimiter {
    by_limit: Mutex<HashMap<u32, Arc<Keyed>>>,
    hits: AtomicU64,
}

/// Buckets in Redis, shared by every server using it.
pub struct RedisLimiter {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
    prefix: String,
}

/// Where the buckets live.
enum Store {
    /// In this process.
    Local(LocalLimiter),
    /// In Redis.
    Redis(RedisLimiter),
}

/// Rate limits over buckets in this process or in Redis, counting what they refuse (by the
/// limit's name: the first part of its key) and how often Redis did not answer, for metrics.
pub struct RateLimiter {
    store: Store,
    rejections: Mutex<std::collections::BTreeMap<String, u64>>,
    fallbacks: AtomicU64,
}

/// GCRA over a Redis key holding the theoretical arrival time (ms): each request moves it one
/// emission interval on; a request is refused while it would move it more than the burst
/// ahead of now. Answers {allowed, remaining, retry_ms, reset_ms}.
const GCRA: &str = r"
local emission = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + emission
local allow_at = new_tat - burst * emission
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, math.floor((now - allow_at) / emission), 0, new_tat - now}
";

fn ceil_secs(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

impl RateLimiter {
    /// Buckets in this process.
    #[must_use]
    pub fn local() -> Self {
        Self::over(Store::Local(LocalLimiter {
            by_limit: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
        }))
    }

    fn over(store: Store) -> Self {
        Self {
            store,
            rejections: Mutex::new(std::collections::BTreeMap::new()),
            fallbacks: AtomicU64::new(0),
        }
    }

    /// Refusals so far, by limit (`api`, or a credential attempt's kind).
    pub fn rejections(&self) -> Vec<(String, u64)> {
        self.rejections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Checks let through so far because Redis did not answer.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Buckets in the Redis at `url`, under keys starting with `prefix`.
    pub async fn redis(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new(client).await?;
        Ok(Self::over(Store::Redis(RedisLimiter {
            conn,
            script: redis::Script::new(GCRA),
            prefix: prefix.to_owned(),
        })))
    }

    /// Counts one request against `key`, which allows `per_minute` requests a minute.
    pub async fn hit(&self, key: &str, per_minute: u32) -> Decision {
        let per_minute = per_minute.max(1);
        let decision = match &self.store {
            Store::Local(l) => l.hit(key, per_minute),
            Store::Redis(r) => match r.hit(key, per_minute).await {
                Ok(d) => d,
                Err(e) => {
                    self.fallbacks.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "rate limit store unreachable; letting the request through");
                    Decision {
                        allowed: true,
                        limit: per_minute,
                        remaining: per_minute,
                        reset_secs: 0,
                        retry_after_secs: 0,
                    }
                }
            },
        };
        if !decision.allowed {
            // The key's first part names the limit (`api`, or the attempt's kind); what follows
            // names the caller and stays out of the labels.
            let limit = key.split(':').next().unwrap_or_default();
            *self
                .rejections
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(limit.to_owned())
                .or_default() += 1;
        }
        decision
    }
}

impl LocalLimiter {
    fn hit(&self, key: &str, per_minute: u32) -> Decision {
        let limiter = {
            let mut map = self
                .by_limit
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(map.entry(per_minute).or_insert_with(|| {
                let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
                Arc::new(
                    Governor::keyed(Quota::per_minute(n))
                        .with_middleware::<StateInformationMiddleware>(),
                )
            }))
        };
        // Forget idle buckets now and then, so the map stays as large as the recent traffic.
        if self.hits.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            limiter.retain_recent();
        }
        let period_ms = 60_000 / u64::from(per_minute);
        match limiter.check_key(&key.to_owned()) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    limit: per_minute,
                    remaining,
                    reset_secs: ceil_secs(u64::from(per_minute - remaining) * period_ms),
                    retry_after_secs: 0,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                Decision {
                    allowed: false,
                    limit: per_minute,
                    remaining: 0,
                    reset_secs: ceil_secs(wait_ms + u64::from(per_minute - 1) * period_ms),
                    retry_after_secs: ceil_secs(wait_ms).max(1),
                }
            }
        }
    }
}

impl RedisLimiter {
    async fn hit(&self, key: &str, per_minute: u32) -> redis::RedisResult<Decision> {
        let emission_ms = 60_000 / u64::from(per_minute);
        let mut conn = self.conn.clone();
        let (allowed, remaining, retry_ms, reset_ms): (i64, i64, i64, i64) = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(emission_ms)
            .arg(per_minute)
            .invoke_async(&mut conn)
            .await?;
        let ms = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Decision {
            allowed: allowed == 1,
            limit: per_minute,
            remaining: u32::try_from(remaining).unwrap_or(0).min(per_minute),
            reset_secs: ceil_secs(ms(reset_ms)),
            retry_after_secs: if allowed == 1 {
                0
            } else {
                ceil_secs(ms(retry_ms)).max(1)
            },
        })
    }
}

tokio::task_local! {
    static APPLIED: std::cell::Cell<Option<Decision>>;
}

/// Runs `f` (a request), answering with its output the tightest decision any limit took while
/// it ran — what the response's `RateLimit-*` headers report.
pub async fn track<F: std::future::Future>(f: F) -> (F::Output, Option<Decision>) {
    APPLIED
        .scope(std::cell::Cell::new(None), async {
            let out = f.await;
            (out, APPLIED.with(std::cell::Cell::get))
        })
        .await
}

/// Records `d` for the request being [`track`]ed, if any.
pub fn record(d: Decision) {
    let _ = APPLIED.try_with(|applied| {
        applied.set(Some(applied.get().map_or(d, |before| before.tighter(d))));
    });
}

/// The credential limit over these buckets: `per_minute` attempts of each kind a minute,
/// per client address and per account (hashed, so no address or id sits in the store).
pub struct CredentialLimit {
    limits: Arc<RateLimiter>,
    per_minute: u32,
}

impl CredentialLimit {
    /// The limit of `per_minute` attempts in `limits`.
    #[must_use]
    pub fn new(limits: Arc<RateLimiter>, per_minute: u32) -> Self {
        Self { limits, per_minute }
    }

    async fn hit(&self, key: &str) -> Result<(), Throttled> {
        let d = self.limits.hit(key, self.per_minute).await;
        record(d);
        if d.allowed {
            Ok(())
        } else {
            Err(Throttled {
                limit: d.limit,
                retry_after_secs: d.retry_after_secs,
                reset_secs: d.reset_secs,
            })
        }
    }
}

#[async_trait::async_trait]
impl AttemptLimiter for CredentialLimit {
    async fn by_address(&self, attempt: Attempt, client: &ClientMeta) -> Result<(), Throttled> {
        let ip = client.ip.as_deref().unwrap_or("unknown");
        self.hit(&format!("{}:ip:{ip}", attempt.as_str())).await
    }

    async fn on_account(&self, attempt: Attempt, account: &str) -> Result<(), Throttled> {
        let key = token_hash(&account.trim().to_lowercase());
        self.hit(&format!("{}:account:{key}", attempt.as_str()))
            .await
    }
}

/// Each tenant's API allowance, read from its settings and kept for a minute, so the limit
/// costs no query on most requests. A changed setting applies within that minute.
pub struct TenantAllowances {
    cache: Mutex<HashMap<tenantry_kernel::TenantId, (u32, Instant)>>,
}

const ALLOWANCE_TTL: Duration = Duration::from_secs(60);

impl Default for TenantAllowances {
    fn default() -> Self {
        Self {
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl TenantAllowances {
    /// The cached allowance of `tenant`, if fresh.
    #[must_use]
    pub fn cached(&self, tenant: tenantry_kernel::TenantId) -> Option<u32> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(&tenant)
            .filter(|(_, at)| at.elapsed() < ALLOWANCE_TTL)
            .map(|(n, _)| *n)
    }

    /// Remembers `tenant`'s allowance.
    pub fn remember(&self, tenant: tenantry_kernel::TenantId, per_minute: u32) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() > 100_000 {
            cache.retain(|_, (_, at)| at.elapsed() < ALLOWANCE_TTL);
        }
        cache.insert(tenant, (per_minute, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_bucket_allows_its_burst_then_refuses() {
        let limiter = RateLimiter::local();
        for i in 0..20 {
            let d = limiter.hit("ip:192.0.2.1", 20).await;
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 19 - i);
        }
        let refused = limiter.hit("ip:192.0.2.1", 20).await;
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert!((1..=3).contains(&refused.retry_after_secs));
        // Another key has its own bucket.
        assert!(limiter.hit("ip:192.0.2.2", 20).await.allowed);
    }

    #[test]
    fn the_tighter_decision_is_reported() {
        let d = |allowed, remaining| Decision {
            allowed,
            limit: 20,
            remaining,
            reset_secs: 0,
            retry_after_secs: 0,
        };
        assert_eq!(d(true, 5).tighter(d(true, 3)), d(true, 3));
        assert_eq!(d(true, 5).tighter(d(false, 0)), d(false, 0));
        assert_eq!(d(false, 0).tighter(d(true, 9)), d(false, 0));
    }
}
