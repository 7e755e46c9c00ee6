//! Password hashing on a dedicated, bounded pool of low-priority threads.
//!
//! Argon2id with OWASP's parameters (m = 19 456 KiB, t = 2, p = 1) costs tens of milliseconds
//! of CPU per call, so it never runs on the async threads. A fixed set of OS threads — one per
//! core — takes jobs from a bounded queue:
//!
//! * the threads run at the lowest scheduling priority (nice 19), so a flood of logins uses
//!   every idle cycle but yields the CPU to ordinary requests the moment they need it;
//! * the queue is bounded, so a flood is shed at once ([`HashError::Overloaded`], answered 503
//!   with `Retry-After`) instead of queueing for ever.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::oneshot;

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

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords off the async threads.
pub struct PasswordHasher {
    queue: SyncSender<Job>,
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
    /// Starts `threads` hashing threads with room for `queue` waiting jobs.
    pub fn start(threads: usize, queue: usize) -> Result<Self, HashError> {
        Self::with_params(threads, queue, owasp_params()?)
    }

    /// As [`start`](Self::start), with explicit argon2 parameters (benchmarks, tests).
    pub fn with_params(threads: usize, queue: usize, params: Params) -> Result<Self, HashError> {
        let (tx, rx) = sync_channel::<Job>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("tenantry-argon2-{i}"))
                .spawn(move || worker(&rx))
                .map_err(|e| HashError::Failed(e.to_string()))?;
        }
        let salt = SaltString::encode_b64(&random_salt()?)
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let dummy_hash = hash_blocking(&params, "tenantry-dummy-password", &salt)?;
        Ok(Self {
            queue: tx,
            params,
            dummy_hash,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(HashError::Overloaded),
            Err(TrySendError::Disconnected(_)) => {
                return Err(HashError::Failed("hashing pool stopped".into()));
            }
        }
        rx.await
            .map_err(|_| HashError::Failed("hashing job dropped".into()))
    }

    /// Hashes a new password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.to_owned();
        let salt = SaltString::encode_b64(&random_salt()?)
            .map_err(|e| HashError::Failed(e.to_string()))?;
        self.run(move || hash_blocking(&params, &password, &salt))
            .await?
    }

    /// Whether `password` matches `phc`. A malformed stored hash counts as a mismatch.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, HashError> {
        let password = password.to_owned();
        let phc = phc.to_owned();
        self.run(move || {
            PasswordHash::new(&phc)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
    }

    /// Spends the time of one verification and answers `false`; for unknown accounts.
    pub async fn verify_dummy(&self, password: &str) -> Result<bool, HashError> {
        let dummy = self.dummy_hash.clone();
        self.verify(password, &dummy).await.map(|_| false)
    }
}

fn random_salt() -> Result<[u8; 16], HashError> {
    tenantry_kernel::crypto::random_bytes::<16>().map_err(|e| HashError::Failed(e.to_string()))
}

fn hash_blocking(params: &Params, password: &str, salt: &SaltString) -> Result<String, HashError> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    // Lowest priority: hashing soaks up idle CPU and yields to request handling.
    if let Err(e) =
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
    {
        tracing::debug!(error = ?e, "could not lower the hashing thread's priority");
    }
    loop {
        let job = match rx.lock() {
            Ok(guard) => match guard.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        job();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::with_params(2, 8, Params::new(1024, 1, 1, None).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let h = fast();
        let phc = h.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("correct horse", &phc).await.unwrap());
        assert!(!h.verify("wrong horse", &phc).await.unwrap());
        assert!(!h.verify("anything", "not-a-phc-string").await.unwrap());
    }

    #[tokio::test]
    async fn owasp_parameters_are_encoded_in_the_hash() {
        let h = PasswordHasher::start(1, 4).unwrap();
        let phc = h.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    }

    #[tokio::test]
    async fn a_full_queue_sheds_instead_of_waiting() {
        // One thread, room for one waiting job: occupy the thread, fill the queue, and the
        // next request must be refused at once rather than wait.
        let h = PasswordHasher::with_params(1, 1, Params::new(1024, 1, 1, None).unwrap()).unwrap();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        h.queue
            .try_send(Box::new(move || {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
            }))
            .unwrap();
        started_rx.recv().unwrap();
        h.queue.try_send(Box::new(|| {})).unwrap();
        assert!(matches!(h.hash("x").await, Err(HashError::Overloaded)));
        release_tx.send(()).unwrap();
    }
}
