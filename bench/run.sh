#!/usr/bin/env bash
# Tenantry's HTTP benchmark (`just bench`). Not a test: it measures and reports.
#
# In one run, on this machine, against a release build serving the embedded default (SQLite
# in a fresh temporary data directory):
#   1. the offline argon2id verification rate on every core (the login ceiling), measured
#      right before and after the login run;
#   2. requests/s, p50 and p99 of GET /health, authenticated GET /api/v1/users/me and
#      POST /api/v1/auth/login;
#   3. p99 of /users/me alone and while a login flood runs (the flood must be shed, not queued),
#      in alternating rounds;
#   4. the server's resident memory: peak while idle and peak over the whole run.
#
# Needs wrk (Debian: apt-get install wrk) and curl. Knobs: BENCH_SECONDS (default 10),
# BENCH_ROUNDS (flood rounds, default 3), BENCH_PORT (default 18080).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
PORT="${BENCH_PORT:-18080}"
BASE="http://127.0.0.1:$PORT"
LUA="$ROOT/bench/wrk.lua"

for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required (apt-get install $tool)" >&2; exit 1; }
done

echo "== building (release)"
cargo build --release -q -p tenantry-server
cargo build --release -q -p tenantry-identity --example hashrate
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SERVER="$TARGET_DIR/release/tenantry"
HASHRATE="$TARGET_DIR/release/examples/hashrate"

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

field() { # field NAME LINE -> the value of NAME=… in a RESULT line
  sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"
}
kb_of() { # kb_of PID FIELD -> a /proc/PID/status figure in KiB
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }

# wrk_run NAME CONNECTIONS SECONDS [ENV…] -> prints and returns the RESULT line
wrk_run() {
  local name=$1 conns=$2 secs=$3 path=$4
  shift 4
  env "$@" wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$LUA" "$BASE$path" >"$WORK/$name.out" 2>&1
  grep '^RESULT' "$WORK/$name.out"
  echo "   after $name: rss $(mb "$(kb_of "$SERVER_PID" VmRSS)") MB, peak $(mb "$(kb_of "$SERVER_PID" VmHWM)") MB" >&2
}

CORES=$(nproc)
CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
echo "== machine: $CORES cores, ${CPU:-unknown CPU}"

echo "== starting the server in $WORK"
(
  cd "$WORK"
  # The benchmark measures throughput, so the sign-in limit (20 a minute per address) is lifted.
  TENANTRY_BIND="127.0.0.1:$PORT" TENANTRY_PUBLIC_URL="$BASE" TENANTRY_LOG_FORMAT=json \
    TENANTRY_AUTH_REQUESTS_PER_MINUTE=100000000 exec "$SERVER" serve >"$WORK/server.log" 2>&1
) &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fsS "$BASE/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "bench: the server exited:" >&2; cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.2
done
curl -fsS "$BASE/health" >/dev/null
# Idle: started, migrated, keys generated, one health check served.
IDLE_RSS=$(kb_of "$SERVER_PID" VmRSS)
IDLE_HWM=$(kb_of "$SERVER_PID" VmHWM)

EMAIL="bench-$RANDOM@example.com"
PASSWORD="correct horse battery staple"
REGISTER=$(curl -fsS -X POST "$BASE/api/v1/auth/register" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"name\":\"Bench\",\"tenant_name\":\"Bench Co\"}")
TOKEN=$(sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' <<<"$REGISTER")
[ -n "$TOKEN" ] || { echo "bench: registration failed: $REGISTER" >&2; exit 1; }
LOGIN_BODY="{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}"
# The tenant's API allowance at its ceiling, so /users/me is served rather than limited.
curl -fsS -X PUT "$BASE/api/v1/tenants/current/settings" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $TOKEN" -d '{"limits":{"api_requests_per_minute":1000000}}' >/dev/null
# The access token lives 15 minutes; the run takes about a minute.

echo "== GET /health (16 connections)"
HEALTH=$(wrk_run health 16 "$SECONDS_PER_RUN" /health)
echo "   $HEALTH"
echo "== GET /api/v1/users/me (16 connections)"
ME=$(wrk_run me 16 "$SECONDS_PER_RUN" /api/v1/users/me BENCH_TOKEN="$TOKEN")
echo "   $ME"
# The offline rate is measured right before and right after the login run, with the server
# idle, and the login figure compared with their mean: on a shared machine the rate drifts by
# tens of percent within minutes, so only measurements next to each other compare.
offline() {
  local line
  line=$("$HASHRATE" "$SECONDS_PER_RUN" "$CORES")
  echo "   offline: $line" >&2
  field hashes_per_sec "$line"
}
echo "== offline argon2id rate ($CORES threads, ${SECONDS_PER_RUN}s), server idle"
HASH_BEFORE=$(offline)
# Four connections per core keep every hashing thread busy: a login also spends time outside
# the hash (database, signing, the round trip), during which its connection queues nothing.
echo "== POST /api/v1/auth/login ($((CORES * 4)) connections)"
LOGIN=$(wrk_run login $((CORES * 4)) "$SECONDS_PER_RUN" /api/v1/auth/login BENCH_BODY="$LOGIN_BODY")
echo "   $LOGIN"
echo "== offline argon2id rate again, server idle"
HASH_AFTER=$(offline)
HASH_RATE=$(awk -v a="$HASH_BEFORE" -v b="$HASH_AFTER" 'BEGIN { printf "%.1f", (a + b) / 2 }')

# /users/me alone and under a login flood, in ROUNDS alternating rounds: alone, flood, alone,
# flood, …, alone. Each flood round's p99 is compared with the mean of the alone rounds on
# either side of it, and the median of those ratios is reported: on a shared machine the
# same measurement drifts by tens of percent within minutes, so only neighbours compare.
ROUNDS="${BENCH_ROUNDS:-3}"
echo "== GET /api/v1/users/me (4 connections) alone"
ME_ALONE=$(wrk_run me-alone-0 4 "$SECONDS_PER_RUN" /api/v1/users/me BENCH_TOKEN="$TOKEN")
echo "   $ME_ALONE"
ALONE_ROWS="| GET /api/v1/users/me alone    |     4 | $(field req_per_sec "$ME_ALONE") | $(field p50_ms "$ME_ALONE") | $(field p99_ms "$ME_ALONE") |"
FLOOD_ROWS=""
RATIOS=""
ALL_ME=("$ME_ALONE")
previous_p99=$(field p99_ms "$ME_ALONE")
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round: GET /api/v1/users/me while 256 connections flood POST /api/v1/auth/login"
  wrk_run "flood-$round" 256 $((SECONDS_PER_RUN + 4)) /api/v1/auth/login BENCH_BODY="$LOGIN_BODY" >"$WORK/flood.result" &
  FLOOD_PID=$!
  sleep 2 # let the flood fill the hashing queue before measuring
  ME_FLOOD=$(wrk_run "me-flood-$round" 4 "$SECONDS_PER_RUN" /api/v1/users/me BENCH_TOKEN="$TOKEN")
  wait "$FLOOD_PID"
  FLOOD=$(cat "$WORK/flood.result")
  echo "   /users/me: $ME_FLOOD"
  echo "   flood:     $FLOOD"
  sleep 2 # let callers still waiting for a hashing place give up
  echo "== round $round: GET /api/v1/users/me alone"
  ME_ALONE=$(wrk_run "me-alone-$round" 4 "$SECONDS_PER_RUN" /api/v1/users/me BENCH_TOKEN="$TOKEN")
  echo "   $ME_ALONE"
  ALL_ME+=("$ME_FLOOD" "$ME_ALONE")
  baseline=$(awk -v a="$previous_p99" -v b="$(field p99_ms "$ME_ALONE")" 'BEGIN { printf "%.2f", (a + b) / 2 }')
  round_ratio=$(ratio "$(field p99_ms "$ME_FLOOD")" "$baseline")
  RATIOS="$RATIOS $round_ratio"
  previous_p99=$(field p99_ms "$ME_ALONE")
  FLOOD_ROWS="$FLOOD_ROWS
| round $round: /users/me in flood | 4 | $(field req_per_sec "$ME_FLOOD") | $(field p50_ms "$ME_FLOOD") | $(field p99_ms "$ME_FLOOD") |
| round $round: /users/me alone after | 4 | $(field req_per_sec "$ME_ALONE") | $(field p50_ms "$ME_ALONE") | $(field p99_ms "$ME_ALONE") |
| round $round: login flood, 256 conns | 256 | $(field ok_per_sec "$FLOOD") served, $(field shed "$FLOOD") shed | $(field p50_ms "$FLOOD") | $(field p99_ms "$FLOOD") |"
  echo "   p99 ratio, flood ÷ neighbouring alone: $round_ratio"
done
P99_RATIO=$(tr ' ' '\n' <<<"$RATIOS" | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')

PEAK_HWM=$(kb_of "$SERVER_PID" VmHWM)

for line in "$HEALTH" "$ME" "$LOGIN" "${ALL_ME[@]}"; do
  if [ "$(field other "$line")" != 0 ] || [ "$(field errors "$line")" != 0 ]; then
    echo "bench: unexpected responses or socket errors: $line" >&2
    exit 1
  fi
done

LOGIN_RATE=$(field ok_per_sec "$LOGIN")
LOGIN_RATIO=$(ratio "$LOGIN_RATE" "$HASH_RATE")
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print ok ? "ok" : "MISSED" }'; }

cat <<REPORT

== Tenantry benchmark: $CORES cores, ${CPU:-unknown CPU}, ${SECONDS_PER_RUN}s per run, wrk on the same cores

| endpoint                      | conns | req/s   | p50 ms | p99 ms |
|-------------------------------|------:|--------:|-------:|-------:|
| GET /health                   |    16 | $(field req_per_sec "$HEALTH") | $(field p50_ms "$HEALTH") | $(field p99_ms "$HEALTH") |
| GET /api/v1/users/me          |    16 | $(field req_per_sec "$ME") | $(field p50_ms "$ME") | $(field p99_ms "$ME") |
| POST /api/v1/auth/login       | $((CORES * 4)) | $(field ok_per_sec "$LOGIN") | $(field p50_ms "$LOGIN") | $(field p99_ms "$LOGIN") |
$ALONE_ROWS$FLOOD_ROWS

| measure                                   | value                | target  | verdict |
|-------------------------------------------|----------------------|---------|---------|
| offline argon2id verifications/s         | $HASH_RATE (mean of $HASH_BEFORE, $HASH_AFTER) |         |         |
| login/s ÷ offline rate                    | $LOGIN_RATIO         | ≥ 0.8   | $(verdict "$LOGIN_RATIO" ">=" 0.8) |
| /users/me p99 in flood ÷ alone (median of rounds:$RATIOS) | $P99_RATIO | ≤ 3     | $(verdict "$P99_RATIO" "<=" 3) |
| RSS idle (peak since start)               | $(mb "$IDLE_HWM") MB (now $(mb "$IDLE_RSS") MB) | ≤ 50 MB | $(verdict "$(mb "$IDLE_HWM")" "<=" 50) |
| RSS peak over the whole run               | $(mb "$PEAK_HWM") MB | ≤ 200 MB | $(verdict "$(mb "$PEAK_HWM")" "<=" 200) |
REPORT
