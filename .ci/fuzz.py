#!/usr/bin/env python3
"""Runs schemathesis, every check, against a real Tenantry: starts the server built at
$TENANTRY_BIN on a fresh data directory, registers an owner and gives the tenant something to
list (a location, a role, an API key, a member, an invitation), then fuzzes every operation
for the time given (FUZZ_SECONDS, default 120) — the settings of the tenant in a second,
shorter run of their own, since a fuzzed policy (say `require_mfa`) changes what every other
operation may do. Exits with schemathesis's status.

Usage: fuzz.py <schemathesis executable>
"""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import metrics

HERE = pathlib.Path(__file__).resolve().parent
EMAIL, PASSWORD = "owner@fuzz.example", "correct horse battery staple"
METRICS_TOKEN = "fuzz-metrics-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as res:
        text = res.read()
        return json.loads(text) if text else None


def seed(base, data_dir):
    owner = call(base, "POST", "/api/v1/auth/register",
                 {"email": EMAIL, "password": PASSWORD, "name": "Fuzz Owner", "tenant_name": "Fuzz"})
    token = owner["access_token"]
    call(base, "POST", "/api/v1/locations", {"name": "Zurich", "code": "ZH-01"}, token)
    call(base, "POST", "/api/v1/roles",
         {"key": "viewer", "name": "Viewer", "permissions": ["users.read"]}, token)
    call(base, "POST", "/api/v1/api-keys", {"name": "sync", "scopes": ["users.read"]}, token)
    call(base, "POST", "/api/v1/invitations",
         {"emails": ["member@fuzz.example", "pending@fuzz.example"], "role": "member"}, token)
    # The embedded default writes emails as files: accept one invitation from its link.
    deadline = time.time() + 30
    while time.time() < deadline:
        for eml in (data_dir / "mail").glob("*.eml"):
            text = eml.read_text(errors="replace").replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
            if "member@fuzz.example" in text and "accept-invite#token=" in text:
                invite = re.search(r"accept-invite#token=([A-Za-z0-9_-]+)", text).group(1)
                call(base, "POST", "/api/v1/auth/accept-invite",
                     {"token": invite, "name": "Fuzz Member", "password": PASSWORD})
                return
        time.sleep(0.2)
    raise SystemExit("the invitation email never arrived")


def main():
    schemathesis = sys.argv[1]
    binary = os.environ.get("TENANTRY_BIN", "target/debug/tenantry")
    seconds = int(os.environ.get("FUZZ_SECONDS", "120"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = pathlib.Path(tmp)
        env = dict(os.environ,
                   TENANTRY_BIND=f"127.0.0.1:{port}",
                   TENANTRY_PUBLIC_URL=base,
                   TENANTRY_DATA_DIR=str(data_dir),
                   TENANTRY_DATABASE_URL=f"sqlite://{data_dir}/tenantry.db",
                   # The fuzzer is one client hammering one account: the limits that would
                   # stop it are raised (the served document states the tenant ceiling).
                   TENANTRY_AUTH_REQUESTS_PER_MINUTE="1000000",
                   TENANTRY_TENANT_LIMITS__API_REQUESTS_PER_MINUTE="1000000",
                   TENANTRY_METRICS_TOKEN=METRICS_TOKEN,
                   RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        log = open(data_dir / "server.log", "w")
        server = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(100):
                try:
                    call(base, "GET", "/health")
                    break
                except OSError:
                    time.sleep(0.1)
            seed(base, data_dir)
            token = call(base, "POST", "/api/v1/auth/login", {"email": EMAIL, "password": PASSWORD})["access_token"]
            call(base, "PUT", "/api/v1/tenants/current/settings",
                 {"limits": {"api_requests_per_minute": 1000000}}, token)
            run_env = dict(os.environ, FUZZ_EMAIL=EMAIL, FUZZ_PASSWORD=PASSWORD,
                           PYTHONPATH=str(HERE))
            # One worker: hypothesis, describing strategies, parses source with `ast`, which
            # CPython 3.11 does not do safely from two threads at once.
            common = [schemathesis, "--config-file", str(HERE / "schemathesis.toml"), "run",
                      f"{base}/api/openapi.json", "--checks", "all", "--workers", "1",
                      "--seed", os.environ.get("FUZZ_SEED", "20261201")]
            settings = "update_tenant_settings"
            first = subprocess.run(common + ["--max-time", str(seconds), "--exclude-operation-id", settings],
                                   env=run_env)
            second = subprocess.run(common + ["--max-time", str(max(seconds // 4, 10)),
                                              "--include-operation-id", settings], env=run_env)
            if server.poll() is not None:
                raise SystemExit("the server stopped during the run")
            status = first.returncode or second.returncode
            metrics.check(base, METRICS_TOKEN)
            if status:
                print((data_dir / "server.log").read_text()[-20000:], file=sys.stderr)
            return status
        finally:
            # A stop is graceful: jobs under way get `worker_shutdown_grace_ms` (10 s), HTTP
            # requests under way what actix gives them; 30 s is well past both.
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                print((data_dir / "server.log").read_text()[-20000:], file=sys.stderr)
                raise SystemExit("the server did not stop within 30 s of SIGTERM")


if __name__ == "__main__":
    sys.exit(main())
