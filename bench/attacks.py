#!/usr/bin/env python3
"""The attacks of the hardening review, rerun against a server binary, with their figures.

1. Wrong proofs against one account, as fast as they go: current passwords at
   change-password (106), and 40 each of wrong codes at TOTP confirm, TOTP disable by password
   and by code, backup-code regeneration; and 60 wrong second-factor codes at sign-in against
   one account from rotating forwarded addresses (the server trusts the proxy it sees).
2. Parallel refreshes of one refresh token: TRIALS trials of 50 at once, on PostgreSQL, with
   the pool at POOL connections; how many answers were 5xx, in how many trials, and the
   slowest answer.

Usage: attacks.py <tenantry binary> [postgres base URL]
(TRIALS, default 100; POOL, default 4; ONLY=refreshes skips the first part.)
"""

import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

PASSWORD = "correct horse battery staple"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def somewhere():
    """A forwarded address of its own (the server trusts the proxy it sees, 127.0.0.1)."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"


def call(base, method, path, body=None, token=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    # Each call from an address of its own unless the attack names one: setting up does not
    # spend an attack's allowance.
    headers = {"x-forwarded-for": somewhere(), **(headers or {})}
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    for k, v in headers.items():
        req.add_header(k, v)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            text = res.read()
            return res.status, (json.loads(text) if text else None), time.monotonic() - started
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        return e.code, body, time.monotonic() - started


def totp(secret, at=None):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int((at or time.time()) // 30)), hashlib.sha1).digest()
    offset = digest[19] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


class Server:
    def __init__(self, binary, database_url=None, pool=16, **extra):
        self.dir = tempfile.TemporaryDirectory()
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = dict(os.environ,
                   TENANTRY_BIND=f"127.0.0.1:{port}", TENANTRY_PUBLIC_URL=self.base,
                   TENANTRY_DATA_DIR=self.dir.name,
                   TENANTRY_DATABASE_URL=database_url or f"sqlite://{self.dir.name}/t.db",
                   TENANTRY_DATABASE_MAX_CONNECTIONS=str(pool),
                   TENANTRY_TRUSTED_PROXIES='["127.0.0.1"]',
                   RUST_LOG="error", **extra)
        self.log = open(os.path.join(self.dir.name, "log"), "w")
        self.process = subprocess.Popen([binary, "serve"], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                call(self.base, "GET", "/health")
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the server did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)
        self.dir.cleanup()


def account(base, email):
    status, body, _ = call(base, "POST", "/api/v1/auth/register",
                           {"email": email, "password": PASSWORD, "name": "Target",
                            "tenant_name": "Target"})
    assert status == 201, (status, body)
    return body["access_token"]


def with_factor(base, email):
    token = account(base, email)
    _, body, _ = call(base, "POST", "/api/v1/users/me/mfa/totp", token=token)
    secret = body["secret"]
    status, _, _ = call(base, "POST", "/api/v1/users/me/mfa/totp/confirm",
                        {"code": totp(secret)}, token)
    assert status == 200
    return token, secret


def tally(answers):
    counts = {}
    for status in answers:
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n}× {s}" for s, n in sorted(counts.items()))


def proofs(binary):
    server = Server(binary)
    b = server.base
    try:
        print("1. wrong proofs against one account")
        token = account(b, f"a{uuid.uuid4().hex[:6]}@example.com")
        started = time.monotonic()
        attacker = {"x-forwarded-for": "192.0.2.1"}
        answers = [call(b, "POST", "/api/v1/auth/change-password",
                        {"current_password": f"wrong {i}", "new_password": "a new password"},
                        token, attacker)[0] for i in range(106)]
        print(f"   change-password, 106 wrong current passwords in {time.monotonic() - started:.1f} s: {tally(answers)}")
        token = account(b, f"b{uuid.uuid4().hex[:6]}@example.com")
        call(b, "POST", "/api/v1/users/me/mfa/totp", token=token)
        attacker = {"x-forwarded-for": "192.0.2.2"}
        answers = [call(b, "POST", "/api/v1/users/me/mfa/totp/confirm", {"code": "000000"}, token,
                        attacker)[0] for _ in range(40)]
        print(f"   TOTP confirm, 40 wrong codes: {tally(answers)}")
        for n, (what, path, proof) in enumerate([
            ("TOTP disable by password", "/api/v1/users/me/mfa/totp/disable", {"password": "wrong"}),
            ("TOTP disable by code", "/api/v1/users/me/mfa/totp/disable", {"code": "000000"}),
            ("backup-code regeneration", "/api/v1/users/me/mfa/backup-codes", {"code": "000000"}),
        ]):
            token, _ = with_factor(b, f"c{uuid.uuid4().hex[:6]}@example.com")
            attacker = {"x-forwarded-for": f"192.0.2.{10 + n}"}
            answers = [call(b, "POST", path, proof, token, attacker)[0] for _ in range(40)]
            print(f"   {what}, 40 wrong proofs: {tally(answers)}")
        email = f"d{uuid.uuid4().hex[:6]}@example.com"
        with_factor(b, email)
        answers, challenge, left = [], None, 0
        for i in range(60):
            if left == 0:
                # A new challenge whenever the last took its five wrong codes.
                _, body, _ = call(b, "POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
                challenge, left = (body or {}).get("mfa_token"), 5
            status, _, _ = call(b, "POST", "/api/v1/auth/mfa/verify",
                                {"mfa_token": challenge, "code": "000000"},
                                headers={"x-forwarded-for": f"198.51.100.{i}"})
            answers.append(status)
            left -= 1
        print(f"   sign-in second factor, 60 wrong codes from 60 addresses: {tally(answers)}")
    finally:
        server.stop()


def refreshes(binary, postgres, trials, pool):
    name = f"tenantry_attack_{uuid.uuid4().hex[:12]}"
    admin = postgres.rsplit("/", 1)[0]
    subprocess.run(["psql", postgres, "-qc", f"CREATE DATABASE {name}"], check=True)
    # Sign-ins are not what is under test here: their limit is raised.
    server = Server(binary, f"{admin}/{name}", pool, TENANTRY_AUTH_REQUESTS_PER_MINUTE="100000")
    b = server.base
    try:
        email = f"r{uuid.uuid4().hex[:6]}@example.com"
        account(b, email)
        bad_trials = fives = 0
        slowest = 0.0
        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool_threads:
            for _ in range(trials):
                _, body, _ = call(b, "POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
                refresh = body["refresh_token"]
                answers = list(pool_threads.map(
                    lambda _: call(b, "POST", "/api/v1/auth/refresh", {"refresh_token": refresh}),
                    range(50)))
                five = sum(1 for s, _, _ in answers if s >= 500)
                fives += five
                bad_trials += five > 0
                slowest = max(slowest, max(t for _, _, t in answers))
        print(f"2. parallel refreshes, {trials} trials of 50, pool of {pool}, PostgreSQL: "
              f"{fives} answers 5xx in {bad_trials} trials; slowest answer {slowest:.2f} s")
    finally:
        server.stop()
        subprocess.run(["psql", postgres, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=False)


def main():
    binary = sys.argv[1]
    if os.environ.get("ONLY") != "refreshes":
        proofs(binary)
    if len(sys.argv) > 2:
        refreshes(binary, sys.argv[2], int(os.environ.get("TRIALS", "100")),
                  int(os.environ.get("POOL", "4")))


if __name__ == "__main__":
    main()
