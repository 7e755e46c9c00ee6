//! The offline argon2id rate: how many password verifications per second this machine can do
//! with every core busy and nothing else running. `bench/run.sh` compares the login endpoint's
//! throughput against it.
//!
//! ```text
//! cargo run --release -p tenantry-identity --example hashrate -- [seconds] [threads]
//! ```
//!
//! Prints one line, `hashes_per_sec=<rate> threads=<n> seconds=<s>`.

#![expect(
    clippy::expect_used,
    reason = "a benchmark program: a failed set-up should stop it loudly"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::Params;
use argon2::password_hash::SaltString;
use tenantry_identity::password::{Scratch, hash_with, verify_with};

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let threads: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));

    // The same parameters and the same code as a login: verify against a stored hash, in
    // working memory each thread keeps.
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    let salt = SaltString::encode_b64(b"tenantry-bench-salt").expect("valid salt");
    let phc = hash_with(
        &mut Scratch::default(),
        &params,
        b"correct horse battery staple",
        &salt,
    )
    .expect("hash");
    let phc = Arc::new(phc);

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, done, phc) = (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&phc));
            std::thread::spawn(move || {
                let mut scratch = Scratch::default();
                while !stop.load(Ordering::Relaxed) {
                    let ok = verify_with(&mut scratch, b"correct horse battery staple", &phc);
                    assert!(ok, "the password verifies");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker thread");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = done.load(Ordering::Relaxed) as f64 / elapsed;
    println!("hashes_per_sec={rate:.1} threads={threads} seconds={elapsed:.1}");
}
