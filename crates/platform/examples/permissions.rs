//! What resolving a principal's permissions costs per request (`just bench-permissions`).
//!
//! On a fresh database (SQLite in a temporary directory, or a fresh PostgreSQL database when
//! `BENCH_DATABASE_URL` names a server) it sets up one tenant whose owner also holds three
//! custom roles tenant-wide and one at a location, then times, in interleaved rounds:
//!
//! - `baseline`: the membership-and-tenant lookup alone — the one query per request that
//!   resolved a single system role before custom roles existed;
//! - `resolve`: the single query every request now makes: membership, tenant and custom
//!   roles joined;
//! - `resolve_at_location`: the same query acting in a location (location membership and
//!   location joined in too);
//! - `authenticate`: the whole per-request path: JWT check, session, resolution;
//! - `check`: one `RequestContext::require` on the resolved set.
//!
//! ```text
//! cargo run --release -p tenantry-platform --example permissions -- [rounds] [per_round]
//! ```
//!
//! Prints one `RESULT` line per measure with p50 and mean in microseconds (nanoseconds for
//! `check`) and the ratio of its p50 to the baseline's.

#![expect(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark program: a failed set-up should stop it loudly, and it reports on stdout"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database};
use tenantry_identity::Registration;
use tenantry_kernel::{ClientMeta, Permission, RequestContext, Role, RoleId};
use tenantry_platform::{Platform, Settings};
use tenantry_tenancy::{NewLocation, RoleInput};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let per_round: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(300);

    let dir = tempfile::tempdir().expect("temp dir");
    let (database_url, backend, dropper) = match std::env::var("BENCH_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let name = format!("tenantry_bench_{}", uuid::Uuid::now_v7().simple());
            let admin = Database::connect(&base).await.expect("BENCH_DATABASE_URL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create bench database");
            let (prefix, _) = base.rsplit_once('/').expect("a database in the URL");
            (format!("{prefix}/{name}"), "postgres", Some((admin, name)))
        }
        _ => (
            format!("sqlite://{}/tenantry.db", dir.path().display()),
            "sqlite",
            None,
        ),
    };
    let settings = Settings {
        database_url,
        data_dir: dir.path().to_path_buf(),
        embedded_worker: false,
        ..Settings::default()
    };
    let platform = Platform::build(settings).await.expect("platform");
    let client = ClientMeta::default();

    let registered = platform
        .accounts
        .register(
            Registration::parse(
                "owner@example.com",
                "correct horse battery staple".to_owned(),
                "Owner",
                "Acme",
            )
            .expect("registration"),
            &client,
        )
        .await
        .expect("register");
    let token = registered.tokens.access_token;
    let (tenant, user) = (registered.tenant.id, registered.user_id);
    let owner = platform
        .identity
        .authenticate(&token, client.clone(), None)
        .await
        .expect("authenticate");
    let location = platform
        .locations
        .create_location(
            &owner,
            NewLocation::parse("Zurich", None, None).expect("location"),
        )
        .await
        .expect("create location")
        .id;
    platform
        .locations
        .set_location_member(&owner, location, user, Role::Member)
        .await
        .expect("owner on the location");
    for (i, names) in [
        &["users.read"][..],
        &["roles.read", "locations.read"],
        &["users.invite"],
    ]
    .iter()
    .enumerate()
    {
        let role = custom_role(&platform, &owner, &format!("custom-{i}"), names).await;
        platform
            .roles
            .grant_role(&owner, user, role, None)
            .await
            .expect("grant tenant-wide");
    }
    let keeper = custom_role(&platform, &owner, "keeper", &["locations.manage"]).await;
    platform
        .roles
        .grant_role(&owner, user, keeper, Some(location))
        .await
        .expect("grant at location");

    let tenancy = &platform.tenancy;
    let identity = &platform.identity;
    let mut samples: [Vec<Duration>; 4] = Default::default();
    // A warm-up round, not recorded.
    for round in 0..=rounds {
        for i in 0..per_round {
            // Rotate the order so no measure always runs right after the same neighbour.
            for k in 0..4 {
                let which = (k + i + round) % 4;
                let start = Instant::now();
                match which {
                    0 => {
                        black_box(tenancy.access_of(tenant, user).await.expect("access"));
                    }
                    1 => {
                        black_box(
                            tenancy
                                .resolve_access(tenant, user, None)
                                .await
                                .expect("resolve"),
                        );
                    }
                    2 => {
                        black_box(
                            tenancy
                                .resolve_access(tenant, user, Some(location))
                                .await
                                .expect("resolve"),
                        );
                    }
                    _ => {
                        black_box(
                            identity
                                .authenticate(&token, client.clone(), None)
                                .await
                                .expect("authenticate"),
                        );
                    }
                }
                if round > 0 {
                    samples[which].push(start.elapsed());
                }
            }
        }
    }

    let ctx = identity
        .authenticate(&token, client.clone(), Some(location))
        .await
        .expect("authenticate");
    assert!(ctx.require(Permission::UsersInvite).is_ok());
    assert!(
        ctx.require_at(location, Permission::LocationsManage)
            .is_ok()
    );
    let checks = 10_000_000u32;
    let start = Instant::now();
    let mut granted = 0u32;
    for i in 0..checks {
        let p = Permission::ALL[(i as usize) % Permission::ALL.len()];
        granted += u32::from(black_box(&ctx).require(black_box(p)).is_ok());
    }
    let check_ns = start.elapsed().as_nanos() as f64 / f64::from(checks);
    black_box(granted);

    let baseline = p50(&mut samples[0]);
    for (name, s) in ["baseline", "resolve", "resolve_at_location", "authenticate"]
        .iter()
        .zip(samples.iter_mut())
    {
        let median = p50(s);
        println!(
            "RESULT backend={backend} measure={name} n={} p50_us={:.1} mean_us={:.1} ratio_to_baseline={:.2}",
            s.len(),
            micros(median),
            micros(mean(s)),
            micros(median) / micros(baseline),
        );
    }
    println!(
        "RESULT backend={backend} measure=check n={checks} ns_per_check={check_ns:.2} ratio_to_baseline={:.6}",
        check_ns / 1000.0 / micros(baseline),
    );

    drop(platform);
    if let Some((admin, name)) = dropper {
        admin
            .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
            .expect("drop bench database");
    }
}

async fn custom_role(
    platform: &Platform,
    owner: &RequestContext,
    key: &str,
    names: &[&str],
) -> RoleId {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    platform
        .roles
        .create_role(
            owner,
            key.to_owned(),
            RoleInput::parse(key, None, &names).expect("role input"),
        )
        .await
        .expect("create role")
        .id
}

fn p50(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn mean(samples: &[Duration]) -> Duration {
    samples.iter().sum::<Duration>() / u32::try_from(samples.len()).unwrap_or(u32::MAX)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
