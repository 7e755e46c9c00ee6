#!/usr/bin/env python3
"""Writes on the embedded SQLite, queued (`just bench-writes`). Not a test: it measures and
reports.

Against the release binary given, serving the embedded default (SQLite in a fresh data
directory, the default pool):
  1. mixed: BENCH_WRITERS (default 16) clients creating locations (POST /api/v1/locations)
     while BENCH_READERS (default 16) list them (GET /api/v1/locations), for BENCH_SECONDS
     (default 15): writes/s and their p99, reads/s and their p99, failures;
  2. the same requests alone, and GET /api/v1/users/me, 16 connections each;
  3. direct: the INSERTs the server sends for one location (the row, its audit entry, its
     outbox event; captured from its statement log) replayed in a loop, in a transaction
     each, through one SQLite connection on the same file with the server's pragmas, for
     BENCH_SECONDS: the ceiling of one writer doing nothing else;
  4. direct beside readers: the same loop on the server's own database while BENCH_READERS
     clients list locations through the server, as in step 1: the ceiling of one writer that
     shares the machine with those readers.
Prints mixed writes/s over each of the two direct rates. BENCH_BASELINE: a second binary (an earlier build),
measured in the same run, steps 1 and 2, alternating rounds (BENCH_ROUNDS, default 3,
medians).

Usage: writes.py <tenantry binary>
"""

import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reads  # noqa: E402  (the server, wrk and HTTP helpers)

SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WRITERS = int(os.environ.get("BENCH_WRITERS", "16"))
READERS = int(os.environ.get("BENCH_READERS", "16"))
POOL = int(os.environ.get("BENCH_POOL", "16"))  # database_max_connections
EMAIL, PASSWORD = "owner@writes.example", "correct horse battery staple"
# A quoted id in the statement log; the server stores ids as 16-byte blobs.
UUID = re.compile(r"'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'")


def blob(text_id):
    return "X'" + text_id.replace("-", "") + "'"


class SqliteServer(reads.Server):
    """The server on its embedded SQLite, in `data` (kept across servers of one binary)."""

    def __init__(self, binary, data, log_statements=False):
        os.makedirs(data, exist_ok=True)
        # The embedded default: the worker runs in the server, relaying the outbox.
        super().__init__(binary, data, POOL, log_statements,
                         env_extra={"TENANTRY_EMBEDDED_WORKER": "true"},
                         db_url=f"sqlite://{data}/tenantry.db")


def start_wrk(base, path, conns, token, seconds, body=None):
    env = dict(os.environ, BENCH_TOKEN=token)
    if body is not None:
        env["BENCH_BODY"] = json.dumps(body)
        env["BENCH_METHOD"] = "POST"
    return subprocess.Popen(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "-s",
                             os.path.join(reads.HERE, "wrk.lua"), base + path],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc):
    out, err = proc.communicate()
    line = next((l for l in out.splitlines() if l.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{out}\n{err}")
    fields = dict(kv.split("=") for kv in line.split()[1:])
    return {"ok_per_sec": float(fields["ok_per_sec"]), "p99": float(fields["p99_ms"]),
            "failed": int(fields["other"]) + int(fields["errors"]) + int(fields["shed"])}


def setup(binary, data):
    server = SqliteServer(binary, data)
    try:
        owner = server.call("POST", "/api/v1/auth/register",
                            {"email": EMAIL, "password": PASSWORD, "name": "Owner",
                             "tenant_name": "Writes"})
        server.call("PUT", "/api/v1/tenants/current/settings",
                    {"limits": {"api_requests_per_minute": 1000000000}}, owner["access_token"])
    finally:
        server.stop()
    return owner


def login(server):
    return server.call("POST", "/api/v1/auth/login", {"email": EMAIL, "password": PASSWORD})


def measure(binary, data):
    """Steps 1 and 2 against a fresh server of `binary` on `data`."""
    server = SqliteServer(binary, data)
    try:
        token = login(server)["access_token"]
        new = {"name": "Queued location"}
        out = {}
        writers = start_wrk(server.base, "/api/v1/locations", WRITERS, token, SECONDS, new)
        readers = start_wrk(server.base, "/api/v1/locations", READERS, token, SECONDS)
        out["mixed write"], out["mixed read"] = result(writers), result(readers)
        for name, path, body in (("alone write", "/api/v1/locations", new),
                                 ("alone read", "/api/v1/locations", None),
                                 ("GET /users/me", "/api/v1/users/me", None)):
            out[name] = result(start_wrk(server.base, path, 16, token, SECONDS // 2 or 1, body))
        return out
    finally:
        server.stop()


def capture_inserts(binary, data):
    server = SqliteServer(binary, data, log_statements=True)
    try:
        token = login(server)["access_token"]
        for attempt in ("warm", "capture"):
            server.call("POST", "/api/v1/locations", {"name": "Captured"}, token,
                        request_id=f"writes-{attempt}")
        time.sleep(0.2)
        sent = server.statements("writes-capture")
    finally:
        server.stop()
    inserts = [s for s in sent if s.lstrip().upper().startswith("INSERT")]
    if not inserts:
        raise SystemExit("no INSERT captured for POST /api/v1/locations:\n" + "\n".join(sent))
    return inserts


def direct(path, inserts):
    """Inserts/s of the captured INSERTs, fresh ids each time, one transaction each."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON",
                   "busy_timeout = 5000"):
        conn.execute(f"PRAGMA {pragma}")
    keep = set()
    for stmt in inserts:
        # Ids that name existing rows (the tenant, the actor) stay; the new rows' get fresh ones.
        for found in UUID.findall(stmt):
            if conn.execute(f"SELECT 1 FROM tenants WHERE id = {blob(found)} "
                            f"UNION SELECT 1 FROM users WHERE id = {blob(found)}").fetchone():
                keep.add(found)
    done, end = 0, time.monotonic() + SECONDS
    while time.monotonic() < end:
        fresh = {}
        def swap(m):
            if m.group(1) in keep:
                return blob(m.group(1))
            return fresh.setdefault(m.group(1), blob(str(uuid.uuid4())))
        conn.execute("BEGIN IMMEDIATE")
        for stmt in inserts:
            conn.execute(UUID.sub(swap, stmt))
        conn.execute("COMMIT")
        done += 1
    conn.close()
    return done / SECONDS


def direct_beside_readers(binary, data, inserts):
    """Step 4: direct inserts/s into the server's database while readers list through it."""
    server = SqliteServer(binary, data)
    try:
        token = login(server)["access_token"]
        readers = start_wrk(server.base, "/api/v1/locations", READERS, token, SECONDS)
        rate = direct(os.path.join(data, "tenantry.db"), inserts)
        return rate, result(readers)
    finally:
        server.stop()


def main():
    binary = sys.argv[1]
    baseline = os.environ.get("BENCH_BASELINE")
    work = tempfile.mkdtemp()
    binaries = {"server": binary}
    if baseline:
        binaries["baseline"] = baseline
    for name, b in binaries.items():
        setup(b, os.path.join(work, name))
    inserts = capture_inserts(binary, os.path.join(work, "server"))

    runs = {name: [] for name in binaries}
    order = list(binaries)
    for r in range(ROUNDS):
        for name in order[r % len(order):] + order[:r % len(order)]:
            runs[name].append(measure(binaries[name], os.path.join(work, name)))
            print(f"round {r + 1} {name}: " + ", ".join(
                f"{k} {v['ok_per_sec']:.0f}/s p99 {v['p99']:.1f} ms" for k, v in runs[name][-1].items()),
                flush=True)
    scratch = os.path.join(work, "direct.db")
    subprocess.run(["cp", os.path.join(work, "server", "tenantry.db"), scratch], check=True)
    direct_rate = direct(scratch, inserts)
    beside_rate, beside_reads = direct_beside_readers(binary, os.path.join(work, "server"), inserts)

    print(f"\nsummary (medians of {ROUNDS} rounds of {SECONDS} s; {WRITERS} writers with {READERS} readers)")
    print(f"{'':10} {'what':16} {'per s':>8} {'p99 ms':>8} {'failed':>7}")
    for name in binaries:
        for what in runs[name][0]:
            rate = statistics.median(r[what]["ok_per_sec"] for r in runs[name])
            p99 = statistics.median(r[what]["p99"] for r in runs[name])
            failed = sum(r[what]["failed"] for r in runs[name])
            print(f"{name:10} {what:16} {rate:>8.0f} {p99:>8.1f} {failed:>7}")
    print(f"direct     {len(inserts)} INSERTs/txn  {direct_rate:>8.0f}")
    print(f"direct     beside {READERS} readers {beside_rate:>6.0f}   (the readers: "
          f"{beside_reads['ok_per_sec']:.0f}/s, p99 {beside_reads['p99']:.1f} ms)")
    for name in binaries:
        rate = statistics.median(r["mixed write"]["ok_per_sec"] for r in runs[name])
        print(f"{name}: mixed writes / direct inserts = {rate / direct_rate:.2f}; "
              f"/ direct inserts beside the readers = {rate / beside_rate:.2f}")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
