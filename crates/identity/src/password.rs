//! Password hashing on a dedicated, bounded pool of low-priority threads.
//!
//! Argon2id with OWASP's parameters (m = 19 456 KiB, t = 2, p = 1) costs tens of milliseconds
//! of CPU per call, so it never runs on the async threads. A fixed set of OS threads — one per
//! core — takes jobs from a bounded queue:
//!
//! * the threads run at the lowest scheduling priority (`SCHED_IDLE` on Linux), so a flood of
//!   logins uses every idle cycle but yields the CPU to ordinary requests the moment they need
//!   it;
//! * a caller is admitted ([`PasswordHasher::admit`]) *before* it does any other work, such as
//!   looking the account up, into a fixed number of places (one per thread plus a short
//!   queue). A caller finding every place taken waits, holding nothing but a timer, until one
//!   frees or the maximum wait passes; then it is refused ([`HashError::Overloaded`], answered
//!   503 with `Retry-After`). A flood therefore never reaches the database, and a client that
//!   retries as fast as it is answered is slowed to one attempt per maximum wait, instead of
//!   spinning the request threads on refusals;
//! * the maximum wait bounds the whole check: a job that reaches a thread after it is refused
//!   rather than hashed late, and a job whose caller has gone (the client hung up) is skipped,
//!   so nothing queues for ever and no CPU is spent on answers nobody reads.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Hashing could not be done.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Too many hashes are waiting; try again shortly.
    #[error("password hashing is saturated")]
    Overloaded,
    /// The hashing pool is gone, or argon2 failed.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

type Job = Box<dyn FnOnce(&mut Scratch) + Send>;

/// How large the hashing pool is.
#[derive(Clone, Copy, Debug)]
pub struct HashPool {
    /// Hashing threads.
    pub threads: usize,
    /// Admitted callers allowed to wait for a thread, beyond one per thread.
    pub queue: usize,
    /// The longest a caller may wait, from asking for a place to reaching a thread, before it
    /// is refused.
    pub max_wait: Duration,
}

/// One admitted caller's place in the pool, held until its job has run (or been dropped).
type Slot = OwnedSemaphorePermit;

/// Hashes and verifies passwords off the async threads.
pub struct PasswordHasher {
    queue: SyncSender<Job>,
    slots: Arc<Semaphore>,
    /// The places there are: one per thread and one per queued job.
    capacity: usize,
    max_wait: Duration,
    params: Params,
    /// A real hash of a random password, verified against when the account does not exist,
    /// so unknown addresses cost the same time as wrong passwords.
    dummy_hash: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").finish_non_exhaustive()
    }
}

/// OWASP's recommended argon2id parameters.
fn owasp_params() -> Result<Params, HashError> {
    Params::new(19_456, 2, 1, None).map_err(|e| HashError::Failed(e.to_string()))
}

impl PasswordHasher {
    /// Starts the pool with OWASP's argon2id parameters.
    pub fn start(pool: HashPool) -> Result<Self, HashError> {
        Self::with_params(pool, owasp_params()?)
    }

    /// As [`start`](Self::start), with explicit argon2 parameters (benchmarks, tests).
    pub fn with_params(pool: HashPool, params: Params) -> Result<Self, HashError> {
        let threads = pool.threads.max(1);
        let capacity = threads + pool.queue;
        let (tx, rx) = sync_channel::<Job>(capacity);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("tenantry-argon2-{i}"))
                .spawn(move || worker(&rx))
                .map_err(|e| HashError::Failed(e.to_string()))?;
        }
        let salt = SaltString::encode_b64(&random_salt()?)
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let dummy_hash = hash_with(
            &mut Scratch::default(),
            &params,
            b"tenantry-dummy-password",
            &salt,
        )?;
        Ok(Self {
            queue: tx,
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            max_wait: pool.max_wait,
            params,
            dummy_hash,
        })
    }

    /// The places taken now (hashes running or queued) and the places there are, for metrics.
    #[must_use]
    pub fn load(&self) -> (usize, usize) {
        let free = self.slots.available_permits().min(self.capacity);
        (self.capacity - free, self.capacity)
    }

    /// Reserves a place for one hash or verification, waiting at most the maximum wait for
    /// one to free. Take it before any other work the password check needs.
    pub async fn admit(&self) -> Result<Admission<'_>, HashError> {
        let arrived = Instant::now();
        let slot = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                match tokio::time::timeout(self.max_wait, Arc::clone(&self.slots).acquire_owned())
                    .await
                {
                    Ok(Ok(slot)) => slot,
                    Ok(Err(_)) => return Err(HashError::Failed("hashing pool closed".into())),
                    Err(_) => return Err(HashError::Overloaded),
                }
            }
        };
        Ok(Admission {
            hasher: self,
            slot,
            arrived,
        })
    }

    /// Hashes a new password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        self.admit().await?.hash(password).await
    }

    /// Whether `password` matches `phc`. A malformed stored hash counts as a mismatch.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, HashError> {
        self.admit().await?.verify(password, phc).await
    }

    async fn run<T: Send + 'static>(
        &self,
        slot: Slot,
        arrived: Instant,
        f: impl FnOnce(&mut Scratch) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = oneshot::channel();
        let max_wait = self.max_wait;
        let job: Job = Box::new(move |scratch| {
            let answer = if tx.is_closed() {
                None // the caller has gone; nobody would read the answer
            } else if arrived.elapsed() > max_wait {
                Some(Err(HashError::Overloaded))
            } else {
                Some(Ok(f(scratch)))
            };
            // The place is free before the caller hears back.
            drop(slot);
            if let Some(answer) = answer {
                let _ = tx.send(answer);
            }
        });
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(HashError::Overloaded),
            Err(TrySendError::Disconnected(_)) => {
                return Err(HashError::Failed("hashing pool stopped".into()));
            }
        }
        rx.await
            .map_err(|_| HashError::Failed("hashing job dropped".into()))?
    }
}

/// A caller's reserved place in the hashing pool (see [`PasswordHasher::admit`]); spent by
/// one hash or verification, given back if dropped unused.
#[derive(Debug)]
pub struct Admission<'a> {
    hasher: &'a PasswordHasher,
    slot: Slot,
    arrived: Instant,
}

impl Admission<'_> {
    /// Hashes a new password into a PHC string.
    pub async fn hash(self, password: &str) -> Result<String, HashError> {
        let params = self.hasher.params.clone();
        let password = password.to_owned();
        let salt = SaltString::encode_b64(&random_salt()?)
            .map_err(|e| HashError::Failed(e.to_string()))?;
        self.hasher
            .run(self.slot, self.arrived, move |scratch| {
                hash_with(scratch, &params, password.as_bytes(), &salt)
            })
            .await?
    }

    /// Whether `password` matches `phc`. A malformed stored hash counts as a mismatch.
    pub async fn verify(self, password: &str, phc: &str) -> Result<bool, HashError> {
        let password = password.to_owned();
        let phc = phc.to_owned();
        self.hasher
            .run(self.slot, self.arrived, move |scratch| {
                verify_with(scratch, password.as_bytes(), &phc)
            })
            .await
    }

    /// Spends the time of one verification and answers `false`; for unknown accounts.
    pub async fn verify_dummy(self, password: &str) -> Result<bool, HashError> {
        let dummy = self.hasher.dummy_hash.clone();
        self.verify(password, &dummy).await.map(|_| false)
    }
}

fn random_salt() -> Result<[u8; 16], HashError> {
    tenantry_kernel::crypto::random_bytes::<16>().map_err(|e| HashError::Failed(e.to_string()))
}

/// The largest memory cost (KiB) a stored hash may ask for; a hash asking more never matches,
/// so a corrupted row cannot make the server allocate without bound.
const MAX_M_COST_KIB: u32 = 256 * 1024;

/// Argon2's working memory, kept by each hashing thread and reused, so a hash neither
/// allocates nor faults in its 19 MiB afresh, and the pool's memory stays at one block set
/// per thread.
#[derive(Default)]
pub struct Scratch(Vec<Block>);

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scratch({} blocks)", self.0.len())
    }
}

impl Scratch {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let n = params.block_count();
        if self.0.len() < n {
            self.0.resize(n, Block::new());
        }
        &mut self.0[..n]
    }
}

/// Hashes `password` with `params` and `salt` into a PHC string, in `scratch`.
pub fn hash_with(
    scratch: &mut Scratch,
    params: &Params,
    password: &[u8],
    salt: &SaltString,
) -> Result<String, HashError> {
    let fail = |e: &dyn std::fmt::Display| HashError::Failed(e.to_string());
    let salt = salt.as_salt();
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| fail(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt_bytes, &mut out, scratch.blocks(params))
        .map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| fail(&e))?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc`, computed in `scratch` and compared in
/// constant time. A malformed or unsupported stored hash counts as a mismatch.
#[must_use]
pub fn verify_with(scratch: &mut Scratch, password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    if params.m_cost() > MAX_M_COST_KIB {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt_bytes, &mut out, scratch.blocks(&params))
        .is_ok()
        && tenantry_kernel::crypto::constant_time_eq(&out, expected.as_bytes())
}

/// Lowest priority: hashing soaks up idle CPU and yields to request handling. On Linux the
/// thread runs under `SCHED_IDLE`, so a request thread that wakes preempts it at once;
/// elsewhere it takes the lowest ordinary priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    let lowered = {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        )
    };
    #[cfg(not(target_os = "linux"))]
    let lowered =
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
    if let Err(e) = lowered {
        tracing::debug!(error = ?e, "could not lower the hashing thread's priority");
    }
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    lower_priority();
    let mut scratch = Scratch::default();
    loop {
        let job = match rx.lock() {
            Ok(guard) => match guard.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        job(&mut scratch);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    fn pool(threads: usize, queue: usize, max_wait: Duration) -> PasswordHasher {
        let fast = Params::new(1024, 1, 1, None).unwrap();
        PasswordHasher::with_params(
            HashPool {
                threads,
                queue,
                max_wait,
            },
            fast,
        )
        .unwrap()
    }

    /// Occupies one hashing thread until the returned sender is used (or dropped).
    fn occupy(h: &PasswordHasher) -> std::sync::mpsc::Sender<()> {
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        h.queue
            .try_send(Box::new(move |_| {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
            }))
            .unwrap();
        started_rx.recv().unwrap();
        release_tx
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let h = pool(2, 8, Duration::from_secs(5));
        let phc = h.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("correct horse", &phc).await.unwrap());
        assert!(!h.verify("wrong horse", &phc).await.unwrap());
        assert!(!h.verify("anything", "not-a-phc-string").await.unwrap());
    }

    #[tokio::test]
    async fn owasp_parameters_are_encoded_in_the_hash() {
        let h = PasswordHasher::start(HashPool {
            threads: 1,
            queue: 4,
            max_wait: Duration::from_secs(5),
        })
        .unwrap();
        let phc = h.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    }

    #[test]
    fn hashes_interoperate_with_the_reference_argon2_implementation() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(1024, 2, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        let mut scratch = Scratch::default();

        // Ours, checked by the reference verifier.
        let ours = hash_with(&mut scratch, &params, b"correct horse", &salt).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );

        // The reference's, checked by ours — including one made with other parameters, so
        // the scratch memory is resized between calls.
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            theirs,
            hash_with(
                &mut scratch,
                &Params::new(1024, 2, 1, None).unwrap(),
                b"battery staple",
                &salt
            )
            .unwrap()
        );
        let bigger = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        )
        .hash_password(b"battery staple", &salt)
        .unwrap()
        .to_string();
        for phc in [&theirs, &bigger, &theirs] {
            assert!(verify_with(&mut scratch, b"battery staple", phc), "{phc}");
            assert!(!verify_with(&mut scratch, b"battery stapler", phc), "{phc}");
        }
    }

    #[test]
    fn stored_hashes_that_are_malformed_or_too_costly_never_match() {
        let mut scratch = Scratch::default();
        assert!(!verify_with(&mut scratch, b"x", "not-a-phc-string"));
        assert!(!verify_with(
            &mut scratch,
            b"x",
            "$argon2id$v=19$m=1048576,t=1,p=1$c2l4dGVlbiBieXRlIHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
        assert!(
            scratch.0.is_empty(),
            "an oversized cost is refused before any memory is taken"
        );
        // The same string with an ordinary cost is computed (and does not match).
        assert!(!verify_with(
            &mut scratch,
            b"x",
            "$argon2id$v=19$m=1024,t=1,p=1$c2l4dGVlbiBieXRlIHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
        assert_eq!(scratch.0.len(), 1024);
    }

    #[tokio::test]
    async fn admission_waits_for_a_place_then_gives_up_after_the_maximum_wait() {
        let h = pool(1, 2, Duration::from_millis(30));
        let first = h.admit().await.unwrap();
        let second = h.admit().await.unwrap();
        let third = h.admit().await.unwrap();
        let asked = Instant::now();
        assert!(matches!(h.admit().await, Err(HashError::Overloaded)));
        assert!(
            asked.elapsed() >= Duration::from_millis(30),
            "it waited first"
        );
        assert!(matches!(h.hash("x").await, Err(HashError::Overloaded)));
        drop(second);
        let again = h.admit().await.unwrap();
        // These were admitted more than the maximum wait ago: spending them now is refused,
        // and still gives their places back.
        assert!(matches!(
            first.verify("x", "not-a-phc-string").await,
            Err(HashError::Overloaded)
        ));
        assert!(matches!(
            third.verify_dummy("x").await,
            Err(HashError::Overloaded)
        ));
        drop(again);
        assert_eq!(h.slots.available_permits(), 3);
    }

    #[tokio::test]
    async fn a_waiting_caller_gets_the_first_place_that_frees() {
        let h = pool(1, 0, Duration::from_secs(30));
        let held = h.admit().await.unwrap();
        let mut waiting = Box::pin(h.admit());
        assert!(futures_poll_once(waiting.as_mut()).is_pending());
        drop(held);
        let admitted = waiting.await.unwrap();
        assert!(!admitted.verify("x", "not-a-phc-string").await.unwrap());
    }

    #[tokio::test]
    async fn a_job_that_reaches_a_thread_after_the_maximum_wait_is_refused_not_run() {
        let h = pool(1, 4, Duration::from_millis(20));
        let release = occupy(&h);
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let admission = h.admit().await.unwrap();
        let waiting = h.run(admission.slot, admission.arrived, move |_| {
            flag.store(true, Ordering::SeqCst);
        });
        let (result, ()) = tokio::join!(waiting, async {
            // Keep the thread busy for longer than the maximum wait, then free it.
            std::thread::sleep(Duration::from_millis(40));
            release.send(()).unwrap();
        });
        assert!(matches!(result, Err(HashError::Overloaded)));
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_job_whose_caller_has_gone_is_skipped() {
        let h = pool(1, 4, Duration::from_secs(5));
        let release = occupy(&h);
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let admission = h.admit().await.unwrap();
        // Start the call so the job is queued, then drop it, as when a client hangs up.
        let mut call = Box::pin(h.run(admission.slot, admission.arrived, move |_| {
            flag.store(true, Ordering::SeqCst);
        }));
        assert!(futures_poll_once(call.as_mut()).is_pending());
        drop(call);
        release.send(()).unwrap();
        // A later job runs after the dropped one on the single thread, so once it answers the
        // dropped one has been looked at.
        assert!(!h.verify("x", "not-a-phc-string").await.unwrap());
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!(h.slots.available_permits(), 5);
    }

    fn futures_poll_once<F: std::future::Future>(
        f: std::pin::Pin<&mut F>,
    ) -> std::task::Poll<F::Output> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        f.poll(&mut cx)
    }
}
