# Tenantry's everyday recipes. `just --list` shows them.

# Serve on 127.0.0.1:8080 with the embedded defaults (SQLite under ./data).
run:
    cargo run --release

# The test suite on SQLite (and PostgreSQL when TEST_DATABASE_URL is set).
test:
    cargo test --workspace

# The test suite on SQLite and the local PostgreSQL.
test-pg:
    TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test --workspace

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Regenerate the committed OpenAPI document.
openapi:
    cargo run -q -p tenantry-server -- openapi > openapi/openapi.json

# The HTTP benchmark (wrk): throughput, latency, hash rate and memory.
bench:
    ./bench/run.sh

# What resolving a principal's permissions costs per request, against the single-role lookup
# it replaced: on SQLite, then on PostgreSQL (BENCH_DATABASE_URL, default the local server).
bench-permissions:
    cargo run --release -q -p tenantry-platform --example permissions
    BENCH_DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" cargo run --release -q -p tenantry-platform --example permissions

# schemathesis, every check, against a fresh server, for FUZZ_SECONDS (default 600).
fuzz:
    cargo build --quiet -p tenantry-server
    TENANTRY_BIN="${CARGO_TARGET_DIR:-target}/debug/tenantry" FUZZ_SECONDS="${FUZZ_SECONDS:-600}" python3 .ci/fuzz.py "${SCHEMATHESIS:-schemathesis}"

# The attacks of the hardening review, rerun against the release binary: wrong proofs against
# one account, and parallel refreshes of one token on PostgreSQL (TRIALS, POOL).
bench-attacks:
    cargo build --release -q -p tenantry-server
    python3 bench/attacks.py "${CARGO_TARGET_DIR:-target}/release/tenantry" "${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# The read path against raw SQL on PostgreSQL (BENCH_DATABASE_URL): the server's requests
# against pgbench running the statements the server sends for them, at 16 and 64 connections
# (BENCH_CONNECTIONS), medians of BENCH_ROUNDS rounds of BENCH_SECONDS. Needs wrk, pgbench, psql.
bench-reads:
    cargo build --release -q -p tenantry-server
    python3 bench/reads.py "${CARGO_TARGET_DIR:-target}/release/tenantry"

# Writes on the embedded SQLite: 16 clients creating locations while 16 list them, the same
# requests alone, and the server's INSERTs replayed through one SQLite connection. Needs wrk.
bench-writes:
    cargo build --release -q -p tenantry-server
    python3 bench/writes.py "${CARGO_TARGET_DIR:-target}/release/tenantry"
