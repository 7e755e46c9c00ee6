#!/usr/bin/env python3
"""The read path against the database's own speed (`just bench-reads`). Not a test: it
measures and reports.

On PostgreSQL (BENCH_DATABASE_URL, default the local server), against the release binary
given:
  1. a fresh database: an owner registered through the API in a tenant of 10,000 members,
     among 110,000 memberships in 1,001 tenants (the rest inserted with SQL);
  2. for each request measured, the statements the server sends for it, captured from its
     statement log (`database_log_statements`, values written in) — steady state: the second
     of two identical requests — and written into a pgbench script;
  3. for each pool size (BENCH_CONNECTIONS, default "16 64"): a server with that many database
     connections, then BENCH_ROUNDS (default 3) rounds, alternating which goes first, of wrk
     with that many HTTP connections against the server and pgbench with that many database
     connections executing the captured statements (prepared), BENCH_SECONDS (default 10)
     each;
  4. per request and pool size, the medians: server requests/s, pgbench transactions/s, their
     ratio, the server's p50 and p99, and the statements per request.

BENCH_BASELINE: a second binary (an earlier build) measured in the same rounds, for its
requests/s beside the server's, on a copy of the seeded database (statements are captured from
the binary measured). BENCH_BASELINE_SQL: statements that bring the copy to the baseline's
schema (undoing migrations it does not know, and deleting their seaql_migrations rows).

Requests: GET /api/v1/users/me, the first page of GET /api/v1/users, its page 100 (cursor of
the 4,950th member by name) and PATCH /api/v1/users/{id} (a write, in a transaction in both).
Needs wrk, pgbench and psql.

Usage: reads.py <tenantry binary>
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
POOLS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "16 64").split()]
DB = "tenantry_bench_reads"
DB_URL = BASE_URL.rsplit("/", 1)[0] + "/" + DB
EMAIL, PASSWORD = "owner@bench.example", "correct horse battery staple"


def psql(url, sql):
    return subprocess.run(["psql", url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, keys, pool, log_statements, env_extra=None, db_url=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp()
        env = dict(os.environ,
                   TENANTRY_BIND=f"127.0.0.1:{self.port}",
                   # One issuer for every server of the run, so tokens outlive restarts.
                   TENANTRY_PUBLIC_URL="http://bench.tenantry.test",
                   # Every server of the run keeps its keys in one directory, so tokens
                   # outlive restarts; the log is each server's own.
                   TENANTRY_DATA_DIR=keys, TENANTRY_DATABASE_URL=db_url or DB_URL,
                   TENANTRY_DATABASE_MAX_CONNECTIONS=str(pool),
                   TENANTRY_EMBEDDED_WORKER="false", TENANTRY_LOG_FORMAT="json",
                   TENANTRY_AUTH_REQUESTS_PER_MINUTE="1000000000",
                   TENANTRY_TENANT_LIMITS__API_REQUESTS_PER_MINUTE="1000000000",
                   TENANTRY_DATABASE_LOG_STATEMENTS="true" if log_statements else "false",
                   RUST_LOG=("warn,tenantry::statements=info,tenantry_server::request_id=info"
                             if log_statements else "warn"))
        env.update(env_extra or {})
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=open(self.log_path, "w"),
                                     stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                urllib.request.urlopen(self.base + "/health", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the server did not start:\n" + open(self.log_path).read()[-3000:])

    def call(self, method, path, body=None, token=None, request_id=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        if request_id:
            req.add_header("x-request-id", request_id)
        with urllib.request.urlopen(req, timeout=30) as res:
            text = res.read()
            return json.loads(text) if text else None

    def statements(self, request_id):
        sent = []
        for line in open(self.log_path):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            span = entry.get("span") or {}
            if entry.get("message") == "statement" and span.get("request_id") == request_id:
                sent.append(entry["sql"])
        return sent

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def seed(server):
    owner = server.call("POST", "/api/v1/auth/register",
                        {"email": EMAIL, "password": PASSWORD, "name": "Owner", "tenant_name": "Bench"})
    token = owner["access_token"]
    server.call("PUT", "/api/v1/tenants/current/settings",
                {"limits": {"api_requests_per_minute": 1000000000}}, token)
    tenant = owner["tenant_id"]
    psql(DB_URL, f"""
        INSERT INTO tenants (id, name, slug, status, version, created_at, updated_at)
        SELECT gen_random_uuid(), 'Other ' || g, 'other-' || g, 'active', 1, now(), now()
        FROM generate_series(1, 1000) g;
        INSERT INTO users (id, email, name, password_hash, status, version, created_at, updated_at)
        SELECT gen_random_uuid(), 'member' || g || '@bench.example', 'Member ' || lpad(g::text, 6, '0'),
               'unused', 'active', 1, now(), now()
        FROM generate_series(1, 109999) g;
        WITH numbered AS (
            SELECT id, name, email, row_number() OVER (ORDER BY email) AS n FROM users
            WHERE email LIKE 'member%@bench.example'),
        others AS (SELECT id, row_number() OVER (ORDER BY slug) AS n FROM tenants WHERE slug LIKE 'other-%')
        INSERT INTO memberships (tenant_id, user_id, role, created_at, status, name, email, updated_at)
        SELECT CASE WHEN numbered.n <= 9999 THEN '{tenant}'::uuid
                    ELSE (SELECT id FROM others WHERE others.n = 1 + (numbered.n % 1000)) END,
               numbered.id, 'member', now(), 'active', numbered.name, numbered.email, now()
        FROM numbered;
        ANALYZE;
    """)
    counts = psql(DB_URL, f"SELECT count(*) FILTER (WHERE tenant_id = '{tenant}'), count(*) FROM memberships")
    print(f"seeded: memberships in the bench tenant, in all: {counts.replace('|', ', ')}")
    return owner, token, tenant


def cursor_at(tenant, offset):
    """The cursor after the member at `offset` (0-based) in name order: id, then name, in hex."""
    row = psql(DB_URL, f"SELECT encode(uuid_send(user_id), 'hex') || encode(convert_to(name, 'UTF8'), 'hex') "
                       f"FROM memberships WHERE tenant_id = '{tenant}' ORDER BY name, user_id OFFSET {offset} LIMIT 1")
    return row


def wrk(server_base, path, conns, token, method="GET", body=None, seconds=None):
    env = dict(os.environ, BENCH_TOKEN=token)
    if body is not None:
        env["BENCH_BODY"] = json.dumps(body)
        env["BENCH_METHOD"] = method
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds or SECONDS}s", "-s", os.path.join(HERE, "wrk.lua"),
                          server_base + path], env=env, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT"))
    if "other=0" not in line:
        try:
            req = urllib.request.Request(server_base + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
            req.add_header("authorization", f"Bearer {token}")
            req.add_header("content-type", "application/json")
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as e:
            print(f"{method} {path}: {e.code} {e.read()[:300]!r}", file=sys.stderr)
    fields = dict(kv.split("=") for kv in line.split()[1:])
    if int(fields["other"]) or int(fields["errors"]):
        raise SystemExit(f"wrk {path}: failures: {line}")
    return float(fields["ok_per_sec"]), float(fields["p50_ms"]), float(fields["p99_ms"])


def pgbench(script, conns):
    run = subprocess.run(["pgbench", "-n", "-M", "prepared", f"-c{conns}", "-j1", f"-T{SECONDS}", "-f", script,
                          DB_URL], capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"pgbench failed:\n{run.stdout}\n{run.stderr}")
    out = run.stdout
    for line in out.splitlines():
        if line.startswith("tps ="):
            return float(line.split()[2])
    raise SystemExit("pgbench printed no tps:\n" + out)


def main():
    binary = sys.argv[1]
    baseline = os.environ.get("BENCH_BASELINE")
    for tool in ("wrk", "pgbench", "psql"):
        if not shutil.which(tool):
            raise SystemExit(f"bench-reads: {tool} is required")
    psql(BASE_URL, f"DROP DATABASE IF EXISTS {DB}")
    psql(BASE_URL, f"CREATE DATABASE {DB}")
    keys = tempfile.mkdtemp()
    work = tempfile.mkdtemp()

    server = Server(binary, keys, 4, log_statements=True)
    try:
        owner, token, tenant = seed(server)
        me = server.call("GET", "/api/v1/users/me", token=token)
        user = me["id"]
        requests = {
            "GET /users/me": ("GET", "/api/v1/users/me", None),
            "GET /users (page 1)": ("GET", "/api/v1/users", None),
            "GET /users (page 100)": ("GET", "/api/v1/users?cursor=" + cursor_at(tenant, 99 * 50 - 1), None),
            "PATCH /users/{id}": ("PATCH", f"/api/v1/users/{user}", {"job_title": "Founder"}),
        }
        # BENCH_ONLY: measure only the requests whose name contains it (say `users/me`).
        only = os.environ.get("BENCH_ONLY")
        if only:
            requests = {k: v for k, v in requests.items() if only in k}
        scripts = {}
        for i, (name, (method, path, body)) in enumerate(requests.items()):
            for attempt in ("warm", "capture"):
                server.call(method, path, body, token, request_id=f"bench-{i}-{attempt}")
            time.sleep(0.2)
            sent = server.statements(f"bench-{i}-capture")
            if not sent:
                raise SystemExit(f"no statements captured for {name}:\n" + open(server.log_path).read()[-2000:])
            script = os.path.join(work, f"{i}.sql")
            with open(script, "w") as f:
                wrap = method != "GET"
                f.write(("BEGIN;\n" if wrap else "") + "".join(s.rstrip(";") + ";\n" for s in sent)
                        + ("COMMIT;\n" if wrap else ""))
            scripts[name] = (script, len(sent))
    finally:
        server.stop()

    base_url = None
    if baseline:
        psql(BASE_URL, f"DROP DATABASE IF EXISTS {DB}_baseline")
        psql(BASE_URL, f"CREATE DATABASE {DB}_baseline TEMPLATE {DB}")
        base_url = DB_URL + "_baseline"
        if os.environ.get("BENCH_BASELINE_SQL"):
            psql(base_url, os.environ["BENCH_BASELINE_SQL"])

    rows = []
    for pool in POOLS:
        for name, (method, path, body) in requests.items():
            script, statements = scripts[name]
            ours, theirs, base, p50s, p99s = [], [], [], [], []
            for r in range(ROUNDS):
                order = ["server", "pgbench"] + (["baseline"] if baseline else [])
                order = order[r % len(order):] + order[:r % len(order)]
                for which in order:
                    if which == "pgbench":
                        theirs.append(pgbench(script, pool))
                        continue
                    # A server of its own per round: its pool keeps its connections, which
                    # pgbench needs when the server is not measured.
                    server = Server(binary if which == "server" else baseline, keys, pool,
                                    log_statements=False,
                                    db_url=base_url if which == "baseline" else None)
                    try:
                        # A token of its own: the run outlives an access token.
                        token = server.call("POST", "/api/v1/auth/login",
                                            {"email": EMAIL, "password": PASSWORD})["access_token"]
                        wrk(server.base, path, pool, token, method, body, seconds=2)
                        rps, p50, p99 = wrk(server.base, path, pool, token, method, body)
                    finally:
                        server.stop()
                    if which == "baseline":
                        base.append(rps)
                        continue
                    ours.append(rps)
                    p50s.append(p50)
                    p99s.append(p99)
            rows.append((name, pool, statements, statistics.median(ours), statistics.median(theirs),
                         statistics.median(p50s), statistics.median(p99s),
                         statistics.median(base) if base else None))
            r = rows[-1]
            print(f"{name:24} conns={pool:<3} statements={statements} server={r[3]:8.0f}/s "
                  f"pgbench={r[4]:8.0f}/s ratio={r[3] / r[4]:.2f} p50={r[5]:.2f}ms p99={r[6]:.2f}ms"
                  + (f" baseline={r[7]:8.0f}/s" if base else ""),
                  flush=True)

    print("\nsummary (medians of", ROUNDS, "rounds of", SECONDS, "s)")
    print(f"{'request':24} {'conns':>5} {'stmts':>5} {'server/s':>9} {'pgbench/s':>9} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}"
          + (f" {'baseline/s':>10} {'gain':>6}" if baseline else ""))
    for name, pool, statements, ours, theirs, p50, p99, base in rows:
        print(f"{name:24} {pool:>5} {statements:>5} {ours:>9.0f} {theirs:>9.0f} {ours / theirs:>6.2f} {p50:>7.2f} {p99:>7.2f}"
              + (f" {base:>10.0f} {ours / base:>5.2f}x" if baseline else ""))
    for pool in POOLS:
        one = next((r for r in rows if r[0] == "GET /users (page 1)" and r[1] == pool), None)
        hundred = next((r for r in rows if r[0] == "GET /users (page 100)" and r[1] == pool), None)
        if not (one and hundred):
            continue
        print(f"page 100 / page 1 at {pool} connections: p50 {hundred[5] / one[5]:.2f}x, p99 {hundred[6] / one[6]:.2f}x")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(keys, ignore_errors=True)
    psql(BASE_URL, f"DROP DATABASE IF EXISTS {DB}")
    if baseline:
        psql(BASE_URL, f"DROP DATABASE IF EXISTS {DB}_baseline")


if __name__ == "__main__":
    main()
