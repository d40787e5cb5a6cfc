#!/usr/bin/env python3
"""Schema fuzzing: Schemathesis against a running Tenantry, driven by the
OpenAPI document the server serves.

It builds the debug binary (whose route layer fails any error a route's
documentation does not list), starts it on a fresh database seeded with a
platform admin, a tenant, a member, a custom role, an API key and an
invitation, and runs Schemathesis with the checks for server errors,
response-schema conformance, undocumented status codes and content types.
Schemathesis is installed from PyPI into a virtualenv in the temp directory
on first use.

    python3 scripts/fuzz-api.py                     # what CI runs
    python3 scripts/fuzz-api.py --examples 500 --seed 7 --max-time 1800
                                                    # a longer campaign

Exit status: Schemathesis's (0 when every check passed).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMATHESIS = "schemathesis==4.32.5"
ADMIN_URL = os.environ.get(
    "TENANTRY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
ADMIN_EMAIL = "fuzz-admin@example.com"
ADMIN_PASSWORD = "fuzz-admin-password-0123"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
# Operations that would end the run's own session or take the seeded
# tenant away from every later request (each is covered by the test suite).
EXCLUDED = [
    ("POST", "/v1/auth/logout"),
    ("DELETE", "/v1/tenants/{tid}"),
    ("POST", "/v1/tenants/{tid}/suspend"),
]


def log(message):
    print(f"[fuzz] {message}", flush=True)


def venv():
    """The virtualenv with Schemathesis, created on first use."""
    version = SCHEMATHESIS.split("==")[1]
    home = Path(tempfile.gettempdir()) / f"tenantry-schemathesis-{version}"
    if (home / "ready").exists():
        return home
    staging = Path(tempfile.mkdtemp(prefix="tenantry-schemathesis-staging-"))
    shutil.rmtree(staging)
    log(f"installing {SCHEMATHESIS} from PyPI into {home}")
    subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True)
    subprocess.run(
        [str(staging / "bin/pip"), "install", "--quiet", SCHEMATHESIS], check=True
    )
    (staging / "ready").write_text("")
    try:
        staging.rename(home)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return home


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql):
    subprocess.run(["psql", "-q", ADMIN_URL, "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


class Api:
    def __init__(self, base):
        self.base = base
        self.token = None

    def call(self, method, path, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        bearer = token or self.token
        if bearer:
            request.add_header("authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            raise SystemExit(f"seeding: {method} {path} answered {e.code}: {e.read().decode()}")

    def wait(self, deadline):
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the server did not start")


def seed(api):
    """A tenant with a member, a custom role, an API key, an invitation and a plan."""
    _, pair = api.call("POST", "/v1/auth/login",
                       {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    api.token = pair["access_token"]
    _, tenant = api.call("POST", "/v1/tenants", {"name": "Fuzzed Tenant"})
    tid = tenant["id"]
    _, member = api.call("POST", "/v1/admin/users", {
        "email": "member@fuzz.example", "name": "Fuzz Member",
        "password": "member-password-0123",
    })
    api.call("POST", f"/v1/tenants/{tid}/members",
             {"user_id": member["id"], "role": "admin"})
    api.call("POST", f"/v1/tenants/{tid}/roles",
             {"name": "desk-support", "permissions": ["members.read"]})
    _, key = api.call("POST", f"/v1/tenants/{tid}/api-keys",
                      {"name": "runtime", "permissions": ["members.read"]})
    _, invitation = api.call("POST", f"/v1/tenants/{tid}/invitations",
                             {"email": "invitee@fuzz.example", "role": "viewer"})
    api.call("POST", "/v1/admin/plans", {
        "key": "team", "name": "Team", "price_minor": 4900, "currency": "usd",
        "interval": "month", "trial_days": 14,
        "entitlements": {"max_seats": 10, "features": ["approvals"]},
    })
    return {
        "tid": tid,
        "user_id": member["id"],
        "id": member["id"],
        "key_id": key["id"],
        "invitation_id": invitation["id"],
        "role": "desk-support",
        "provider": "openai",
        "plan": "team",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=25,
                        help="test cases per operation (default 25)")
    parser.add_argument("--seed", type=int, default=1, help="Schemathesis's seed")
    parser.add_argument("--max-time", type=int, default=None,
                        help="a time budget in seconds for the whole run")
    args = parser.parse_args()

    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    log("building the debug binary")
    subprocess.run(["cargo", "build", "--locked", "--quiet", "--bin", "tenantry"],
                   cwd=ROOT, check=True)
    binary = Path(target) / "debug" / "tenantry"
    home = venv()

    database = f"tenantry_fuzz_{uuid.uuid4().hex[:12]}"
    data_dir = Path(tempfile.mkdtemp(prefix="tenantry-fuzz-"))
    port = free_port()
    psql(f"CREATE DATABASE {database}")
    server = None
    try:
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": ADMIN_URL.rsplit("/", 1)[0] + "/" + database,
            "TENANTRY_LISTEN": f"127.0.0.1:{port}",
            "TENANTRY_DATA_DIR": str(data_dir),
            "TENANTRY_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
            "TENANTRY_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            # A fuzzer calls public routes far more often than people do.
            "TENANTRY_PUBLIC_RATE_LIMIT": "1000000",
            "TENANTRY_SIGN_IN_RATE_LIMIT": "1000000",
            "TENANTRY_SIGN_IN_MAX_FAILURES": "1000000",
            # A live event stream ends at its age: a fuzzer reads each to its
            # end, so each ends soon (its behaviour is the test suite's).
            "TENANTRY_STREAM_MAX_AGE": "300ms",
            "TENANTRY_STREAMS_PER_CALLER": "1000",
            "RUST_LOG": "warn",
        })
        server_log = open(data_dir / "server.log", "w")
        server = subprocess.Popen([str(binary), "serve"], env=env,
                                  stdout=server_log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        api = Api(base)
        api.wait(time.monotonic() + 60)
        ids = seed(api)
        log(f"seeded tenant {ids['tid']}; fuzzing {args.examples} cases per operation")

        config = data_dir / "schemathesis.toml"
        lines = [f'headers = {{ Authorization = "Bearer {api.token}" }}', "", "[parameters]"]
        lines += [f'"path.{name}" = "{value}"' for name, value in ids.items()]
        config.write_text("\n".join(lines) + "\n")

        command = [
            # A renamed virtualenv's scripts keep their old paths: run the module.
            str(home / "bin/python"), "-m", "schemathesis.cli",
            "--config-file", str(config), "run",
            f"{base}/openapi.json",
            "--checks", CHECKS,
            "--max-examples", str(args.examples),
            "--seed", str(args.seed),
            "--no-color",
            "--request-timeout", "30",
        ]
        for method, path in EXCLUDED:
            command += ["--exclude-operation-id", f"{method.lower()} {path.lstrip('/')}"]
        if args.max_time:
            command += ["--max-time", str(args.max_time)]
        result = subprocess.run(command, cwd=data_dir)
        if result.returncode != 0:
            server_log.flush()
            log(f"the server's log is in {data_dir / 'server.log'}")
        return result.returncode
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
