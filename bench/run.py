#!/usr/bin/env python3
"""Tenantry's benchmark harness: every measure beside a reference taken in
the same run on the same machine, reported as a ratio.

    python3 bench/run.py           # full run: writes docs/BENCHMARKS.md and bench/results.json
    python3 bench/run.py --quick   # every measure briefly (CI): writes to a temp dir

It installs its load generator (wrk, from Debian's packages) when missing,
builds the server, creates its own database and drops it afterwards. The
server is pinned to CPU 0 and wrk to CPU 1; Postgres, pgbench and the
projectors share both cores, as they would on a 2-core host.
"""

import argparse
import contextlib
import datetime
import http.client as httpclient
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG = os.environ.get("TENANTRY_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
MEASURES = ("write", "read", "sign_in", "rebuild", "wakeup", "revocation", "ingest", "reserve",
            "series")
ADMIN = ("bench-admin@tenantry.test", "bench-password-123")

# wrk script: optional request mix from a file, and a JSON summary at the end.
WRK_LUA = r"""
local reqs = nil
local token = os.getenv("BENCH_TOKEN")
local mix = os.getenv("BENCH_MIX")
local counter = 0
function init(args)
  if mix and mix ~= "" then
    reqs = {}
    for line in io.lines(mix) do
      local method, path, body = line:match("^(%S+) (%S+) ?(.*)$")
      reqs[#reqs + 1] = {method, path, body}
    end
  end
end
function request()
  local headers = {}
  if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
  if reqs then
    counter = counter + 1
    local r = reqs[(counter % #reqs) + 1]
    if r[3] ~= "" then headers["Content-Type"] = "application/json" end
    return wrk.format(r[1], r[2], headers, r[3] ~= "" and r[3] or nil)
  end
  return wrk.format(nil, nil, headers, wrk.body)
end
function done(summary, latency, requests)
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %.3f, "non2xx": %d, "errors": %d, "p50": %.3f, "p99": %.3f, "p999": %.3f}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
"""


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def psql(db, sql):
    return run(["psql", f"{PG}/{db}", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql]).stdout.strip()


def ensure_wrk():
    if shutil.which("wrk"):
        return
    log("installing wrk from Debian's packages")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "install", "-y", "wrk"], check=False, env=env,
                   capture_output=True)
    if not shutil.which("wrk"):
        subprocess.run(sudo + ["apt-get", "update"], check=True, env=env, capture_output=True)
        subprocess.run(sudo + ["apt-get", "install", "-y", "wrk"], check=True, env=env,
                       capture_output=True)


# wrk script for reserve-then-record pairs: each thread (one connection)
# alternates a reservation and the usage record that settles it.
PAIRS_LUA = r"""
local token = os.getenv("BENCH_TOKEN")
local tenant = os.getenv("BENCH_TENANT")
local agent = os.getenv("BENCH_AGENT")
local at = os.getenv("BENCH_AT")
local phase = os.getenv("BENCH_PHASE")
local threads = {}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("me", next_id)
  table.insert(threads, thread)
end
n, pending, current, last = 0, nil, nil, nil
pairs_done, refused, other, statuses = 0, 0, 0, ""
local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
function request()
  if pending then
    last = "record"
    return wrk.format("POST", "/v1/tenants/" .. tenant .. "/usage", headers,
      '{"records":[{"id":"u-' .. pending .. '","agent_id":"' .. agent ..
      '","provider":"openai","model":"gpt-4o-mini","input_tokens":1000,"output_tokens":300,' ..
      '"occurred_at":"' .. at .. '","reservation_id":"' .. pending .. '"}]}')
  end
  n = n + 1
  current = phase .. me .. "-" .. n
  last = "reserve"
  return wrk.format("POST", "/v1/tenants/" .. tenant .. "/reservations", headers,
    '{"id":"' .. current .. '","agent_id":"' .. agent .. '","amount_micros":20000}')
end
function response(status, headers, body)
  if last == "reserve" then
    if status == 201 then pending = current
    elseif status == 402 then refused = refused + 1
    else other = other + 1; statuses = statuses .. " " .. status end
  else
    pending = nil
    if status == 200 then pairs_done = pairs_done + 1
    else other = other + 1; statuses = statuses .. " " .. status end
  end
end
function done(summary, latency, requests)
  local p, r, o, st = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    p = p + t:get("pairs_done"); r = r + t:get("refused"); o = o + t:get("other")
    st = st .. t:get("statuses")
  end
  io.write(string.format(
    'PAIRS {"pairs": %d, "refused": %d, "other": %d, "statuses": "%s", "seconds": %.3f, "p99_ms": %.3f}\n',
    p, r, o, st:sub(1, 200), summary.duration / 1e6, latency:percentile(99) / 1000))
end
"""


def build(release):
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    args = ["cargo", "build", "--locked", "--bin", "tenantry"] + (["--release"] if release else [])
    log(" ".join(args))
    subprocess.run(args, check=True, cwd=ROOT)
    return os.path.join(target, "release" if release else "debug", "tenantry")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(base, method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode() or "null")


class Client:
    """One kept-alive HTTP connection (a load-generating thread's own)."""

    def __init__(self, base, token):
        host, port = base.removeprefix("http://").split(":")
        self.conn = httpclient.HTTPConnection(host, int(port), timeout=30)
        self.headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}

    def post(self, path, body):
        self.conn.request("POST", path, body=body if isinstance(body, bytes) else json.dumps(body),
                          headers=self.headers)
        r = self.conn.getresponse()
        r.read()
        return r.status


def usage_records(agent, start, n, at):
    return [{"id": f"rec-{start + i}", "agent_id": agent, "provider": "openai",
             "model": ("gpt-4o", "gpt-4o-mini", "gpt-4.1")[i % 3],
             "input_tokens": 1000 + i % 500, "output_tokens": 200 + i % 100, "occurred_at": at}
            for i in range(n)]


def ingest_measure(base, admin, db, batches, threads):
    """Batches of 1,000 records posted by `threads` clients, against a raw
    multi-row INSERT of the same rows into a plain table."""
    tid = http(base, "POST", "/v1/tenants", admin, {"name": "Ingest Tenant"})[1]["id"]
    agent = http(base, "POST", f"/v1/tenants/{tid}/agents", admin, {"name": "Ingester"})[1]["id"]
    key = http(base, "POST", f"/v1/tenants/{tid}/api-keys", admin,
               {"name": "runtime", "permissions": ["usage.write"]})[1]["key"]
    at = datetime.datetime.now(datetime.timezone.utc).isoformat()
    bodies = [json.dumps({"records": usage_records(agent, b * 1000, 1000, at)}).encode()
              for b in range(batches)]
    failures = []

    def worker(mine):
        c = Client(base, key)
        for body in mine:
            status = c.post(f"/v1/tenants/{tid}/usage", body)
            if status != 200:
                failures.append(status)
    t0 = time.monotonic()
    ths = [threading.Thread(target=worker, args=(bodies[i::threads],)) for i in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    took = time.monotonic() - t0
    if failures:
        raise RuntimeError(f"ingestion answered {failures[:5]}")
    counted = int(psql(db, f"SELECT count(*) FROM usage_ids WHERE tenant_id = '{tid}'"))
    if counted != batches * 1000:
        raise RuntimeError(f"{counted} records recorded of {batches * 1000}")
    # The reference: the same rows, 1,000 to an INSERT, into a plain table.
    psql(db, "CREATE TABLE bench_usage (id TEXT, agent_id UUID, provider TEXT, model TEXT, "
             "input_tokens BIGINT, output_tokens BIGINT, occurred_at TIMESTAMPTZ)")
    script = os.path.join(tempfile.mkdtemp(prefix="tenantry-bench-ingest-"), "inserts.sql")
    with open(script, "w") as f:
        for b in range(batches):
            rows = ",".join(
                f"('{r['id']}', '{r['agent_id']}', 'openai', '{r['model']}', {r['input_tokens']}, "
                f"{r['output_tokens']}, '{r['occurred_at']}')"
                for r in usage_records(agent, b * 1000, 1000, at))
            f.write(f"INSERT INTO bench_usage VALUES {rows};\n")
    t0 = time.monotonic()
    run(["psql", f"{PG}/{db}", "-q", "-f", script])
    ref = time.monotonic() - t0
    n = batches * 1000
    return {"records": n, "threads": threads,
            "tenantry": {"records_per_s": n / took, "seconds": took},
            "reference": {"rows_per_s": n / ref, "seconds": ref},
            "ratio": (n / took) / (n / ref)}


def reserve_measure(base, admin, db, seconds, clients):
    """Reserve-then-record pairs on one tenant at `clients` clients; at the
    end the ledger's events are replayed to check no hold was ever granted
    past the limit."""
    tid = http(base, "POST", "/v1/tenants", admin, {"name": "Reserving Tenant"})[1]["id"]
    # A limit the timed run does not reach: 100,000.00, as 10,000
    # micro-units per cent (the second phase lowers it).
    limit_minor = 10_000_000
    http(base, "PATCH", f"/v1/tenants/{tid}", admin, {"settings": {"monthly_budget_minor": limit_minor}})
    agent = http(base, "POST", f"/v1/tenants/{tid}/agents", admin, {"name": "Caller"})[1]["id"]
    key = http(base, "POST", f"/v1/tenants/{tid}/api-keys", admin,
               {"name": "runtime", "permissions": ["usage.write"]})[1]["key"]
    at = datetime.datetime.now(datetime.timezone.utc).isoformat()
    script_dir = tempfile.mkdtemp(prefix="tenantry-bench-reserve-")
    lua = os.path.join(script_dir, "pairs.lua")
    with open(lua, "w") as f:
        f.write(PAIRS_LUA)
    env = dict(os.environ, BENCH_TOKEN=key, BENCH_TENANT=tid, BENCH_AGENT=agent, BENCH_AT=at)

    def hammer(phase, secs):
        # One wrk thread per client, each with one connection and its own
        # state: a reservation, then the usage record that settles it.
        out = run(["taskset", "-c", "1", "wrk", "-t", str(clients), "-c", str(clients),
                   "-d", f"{secs}s", "--timeout", "10s", "-s", lua, base + "/"],
                  env=dict(env, BENCH_PHASE=phase)).stdout
        m = re.search(r"^PAIRS (\{.*\})$", out, re.M)
        if not m:
            raise RuntimeError(f"wrk printed no summary:\n{out}")
        r = json.loads(m.group(1))
        if r["other"]:
            raise RuntimeError(f"{r['other']} answers were neither success nor 402: {r['statuses']}")
        return r
    timed = hammer("a", seconds)
    took, pairs, refused_timed = timed["seconds"], timed["pairs"], timed["refused"]
    # Then the budget binds: the limit becomes what was spent plus 0.10,
    # and the same clients go on for two seconds more, mostly refused.
    spent = int(psql(db, "SELECT coalesce(sum(cost_micros), 0) FROM usage_daily "
                         f"WHERE tenant_id = '{tid}'"))
    limit_minor = (spent + 100_000) // 10_000
    http(base, "PATCH", f"/v1/tenants/{tid}", admin, {"settings": {"monthly_budget_minor": limit_minor}})
    bound = hammer("b", 2)
    counts = {"refused": refused_timed + bound["refused"]}
    if counts["refused"] == 0:
        raise RuntimeError("the budget never bound: no reservation was refused")
    # Replay the ledger from the log: at every grant, spent plus reserved
    # (with the grant) is within the limit.
    rows = run(["psql", f"{PG}/{db}", "-qAtc",
                "SELECT event_type, payload FROM events WHERE aggregate_type IN ('ledger', 'tenant') "
                f"AND tenant_id = '{tid}' ORDER BY tenant_sequence"]).stdout.splitlines()
    # The limit in force is the tenant's setting as its events set it.
    limit, spent, holds, worst, grants, over = None, 0, {}, 0, 0, 0
    for row in rows:
        kind, payload = row.split("|", 1)
        p = json.loads(payload)
        if kind == "TenantSettingsUpdated":
            minor = p["settings"].get("monthly_budget_minor")
            limit = None if minor is None else minor * 10_000
        elif kind == "ReservationGranted":
            holds[p["id"]] = p["amount_micros"]
            grants += 1
            used = spent + sum(holds.values())
            worst = max(worst, used)
            if limit is not None:
                over = max(over, used - limit)
        elif kind in ("ReservationReleased", "ReservationExpired"):
            holds.pop(p["id"], None)
        elif kind == "UsageRecorded":
            spent += sum(r["cost_micros"] for r in p["records"])
            for s_id in p.get("settled", []):
                holds.pop(s_id, None)
    if over > 0:
        raise RuntimeError(f"a hold was granted {over} micro-units past the limit in force")
    return {"clients": clients, "seconds": took, "pairs": pairs, "refused_402": counts["refused"],
            "refused_402_timed": refused_timed, "p99_ms": timed["p99_ms"],
            "pairs_per_s": pairs / took, "grants": grants, "limit_micros": limit,
            "highest_spent_plus_reserved_micros": worst, "overspend_micros": over}


def series_measure(base, admin, db, seconds, script_dir, records):
    """A 90-day series of a tenant whose rollups stand for `records`
    ingested records (seeded into the rollups directly), at 8 connections."""
    tid = http(base, "POST", "/v1/tenants", admin, {"name": "Series Tenant"})[1]["id"]
    per_row = max(1, records // (90 * 10 * 10))
    psql(db, "INSERT INTO usage_daily SELECT "
             f"'{tid}', current_date - d, ('00000000-0000-0000-0000-0000000000' || lpad(a::text, 2, '0'))::uuid, "
             f"'openai', 'model-' || m, {per_row}, {per_row}, {per_row} * 1000, {per_row} * 200, 0, "
             f"{per_row} * 4500, 0 FROM generate_series(0, 89) d, generate_series(1, 10) a, "
             "generate_series(1, 10) m")
    token = http(base, "POST", f"/v1/tenants/{tid}/api-keys", admin,
                 {"name": "reader", "permissions": ["usage.read"]})[1]["key"]
    today = datetime.date.today()
    start = today - datetime.timedelta(days=89)
    url = f"{base}/v1/tenants/{tid}/usage?from={start}&to={today}&group_by=day"
    r = wrk(url, seconds, 8, token=token, script_dir=script_dir)
    return {"records": per_row * 9000, "rollup_rows": 9000, "tenantry": r, "target_p99_ms": 50}


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, binary, db, data_dir):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ,
                        DATABASE_URL=f"{PG}/{db}",
                        TENANTRY_LISTEN=f"127.0.0.1:{self.port}",
                        TENANTRY_DATA_DIR=data_dir,
                        TENANTRY_BOOTSTRAP_ADMIN_EMAIL=ADMIN[0],
                        TENANTRY_BOOTSTRAP_ADMIN_PASSWORD=ADMIN[1],
                        TENANTRY_PUBLIC_RATE_LIMIT="1000000",
                        TENANTRY_SIGN_IN_RATE_LIMIT="1000000",
                        TENANTRY_SIGN_IN_MAX_FAILURES="1000000",
                        RUST_LOG="warn")
        self.binary = binary
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["taskset", "-c", "0", self.binary, "serve"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                if http(self.base, "GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not become ready")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
            self.proc = None


def wrk(url, seconds, connections, token=None, mix=None, script_dir=None):
    lua = os.path.join(script_dir, "bench.lua")
    env = dict(os.environ, BENCH_TOKEN=token or "", BENCH_MIX=mix or "")
    out = run(["taskset", "-c", "1", "wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s",
               "--timeout", "10s", "-s", lua, url], env=env).stdout
    m = re.search(r"^BENCH (\{.*\})$", out, re.M)
    if not m:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / r["seconds"] if r["seconds"] else 0.0
    # Only answers below 400 count as work done (a 409 is a refused command).
    r["ok_rps"] = (r["requests"] - r["non2xx"]) / r["seconds"] if r["seconds"] else 0.0
    return r


def pgbench_inserts(db, seconds, clients, script_dir):
    psql(db, "CREATE TABLE IF NOT EXISTS bench_events (position BIGINT GENERATED ALWAYS AS IDENTITY "
             "PRIMARY KEY, tenant_id UUID NOT NULL, aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, "
             "sequence BIGINT NOT NULL, event_type TEXT NOT NULL, payload JSONB NOT NULL, metadata JSONB NOT NULL, "
             "recorded_at TIMESTAMPTZ NOT NULL DEFAULT now())")
    script = os.path.join(script_dir, "insert.sql")
    with open(script, "w") as f:
        f.write("\\set n random(1, 1000000000)\n"
                "INSERT INTO bench_events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, payload, metadata) "
                "VALUES (gen_random_uuid(), 'tenant', :n, 1, 'TenantRenamed', "
                "'{\"name\": \"Renamed\", \"previous_name\": \"Before\"}', '{\"actor\": {\"type\": \"user\"}}');\n")
    out = run(["pgbench", "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", script,
               f"{PG}/{db}"]).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    lat = re.search(r"latency average = ([\d.]+) ms", out)
    return {"rps": tps, "latency_avg_ms": float(lat.group(1)) if lat else None}


OLD_WAKEUP = """
CREATE FUNCTION bench_old_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenantry_events', '');
    RETURN NULL;
END $$;
CREATE TRIGGER bench_old_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION bench_old_notify();
"""


def pgbench_appends(db, seconds, clients, script_dir, old):
    """Appends to 1,000 tenants straight into the events table (its triggers
    chain and guard every row), one per transaction. `old`: with the former
    wake-up, a NOTIFY inside every append transaction. Otherwise as the
    server now does it: no NOTIFY in the append, and beside the appends one
    connection sending notifications back to back (a process's notifier at
    its busiest)."""
    script = os.path.join(script_dir, "append.sql")
    with open(script, "w") as f:
        f.write("\\set t random(1, 1000)\n"
                "INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, "
                "event_version, payload, metadata) VALUES (md5(:t::text)::uuid, 'bench', "
                "gen_random_uuid()::text, 1, 'Appended', 1, '{}', "
                "jsonb_build_object('tenant_id', md5(:t::text)::uuid));\n")
    notify = os.path.join(script_dir, "notify.sql")
    with open(notify, "w") as f:
        f.write("SELECT pg_notify('tenantry_events', '');\n")
    if old:
        psql(db, OLD_WAKEUP)
    notifier = None
    try:
        if not old:
            notifier = subprocess.Popen(
                ["pgbench", "-n", "-c", "1", "-T", str(seconds), "-f", notify, f"{PG}/{db}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = run(["pgbench", "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", script,
                   f"{PG}/{db}"]).stdout
    finally:
        if notifier:
            notifier.wait()
        if old:
            psql(db, "DROP TRIGGER bench_old_notify ON events; DROP FUNCTION bench_old_notify()")
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def seed_events(db, count):
    """`count` tenant events straight into the log: tenants of 100 events each."""
    per = 100
    tenants = max(1, count // per)
    psql(db, f"""
        INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
        SELECT t.id, 'tenant', t.id::text, s.n,
               CASE WHEN s.n = 1 THEN 'TenantCreated' ELSE 'TenantRenamed' END, 1,
               CASE WHEN s.n = 1
                    THEN jsonb_build_object('tenant_id', t.id, 'name', 'Seed ' || t.i, 'slug', 'seed-' || t.i, 'settings', '{{}}'::jsonb)
                    ELSE jsonb_build_object('name', 'Seed ' || t.i || ' v' || s.n, 'previous_name', 'Seed ' || t.i) END,
               jsonb_build_object('tenant_id', t.id, 'actor', jsonb_build_object('type', 'system', 'name', 'bench'),
                                  'impersonator', null, 'request_id', null, 'occurred_at', now())
          FROM (SELECT i, gen_random_uuid() AS id FROM generate_series(1, {tenants}) i) t
         CROSS JOIN generate_series(1, {per}) s(n)
         ORDER BY t.i, s.n""")
    return tenants * per


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="every measure briefly, output to a temp dir")
    ap.add_argument("--binary", help="a prebuilt tenantry binary")
    ap.add_argument("--report", action="store_true", help="rewrite docs/BENCHMARKS.md from bench/results.json")
    ap.add_argument("--only", help="comma-separated measures to run (" + ",".join(MEASURES) + "); "
                                   "prints them and writes no report")
    ap.add_argument("--perf", metavar="DIR",
                    help="record a system-wide perf profile of each measure into DIR")
    args = ap.parse_args()
    if args.report:
        with open(os.path.join(ROOT, "bench", "results.json")) as f:
            results = json.load(f)
        w = results["measures"]["write"]["tenantry"]
        w.setdefault("ok_rps", (w["requests"] - w["non2xx"]) / w["seconds"])
        results["measures"]["write"]["ratio"] = w["ok_rps"] / results["measures"]["write"]["reference"]["rps"]
        with open(os.path.join(ROOT, "bench", "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        write_report(os.path.join(ROOT, "docs", "BENCHMARKS.md"), results)
        return
    q = args.quick
    secs = 2 if q else 15
    only = set(args.only.split(",")) if args.only else None
    if only and not only <= set(MEASURES):
        ap.error(f"--only takes {', '.join(MEASURES)}")

    def want(measure):
        return only is None or measure in only
    ensure_wrk()
    binary = args.binary or build(release=not q)
    work = tempfile.mkdtemp(prefix="tenantry-bench-")
    with open(os.path.join(work, "bench.lua"), "w") as f:
        f.write(WRK_LUA)
    profile = Profiler(args.perf)
    db = f"tenantry_bench_{uuid.uuid4().hex[:12]}"
    run(["psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {db}"])
    results = {"date": datetime.date.today().isoformat(), "quick": q,
               "nproc": os.cpu_count(), "postgres": None, "measures": {}}
    server = Server(binary, db, os.path.join(work, "data"))
    try:
        results["postgres"] = psql(db, "SHOW server_version")
        server.start()
        time.sleep(1)
        idle = rss_kib(server.proc.pid)
        base = server.base
        admin = http(base, "POST", "/v1/auth/login", body={"email": ADMIN[0], "password": ADMIN[1]})[1]["access_token"]

        # Seed: tenants to rename, and one busy tenant of 50 members.
        n_tenants = 50 if q else 1000
        log(f"seeding {n_tenants} tenants and a tenant of 50 members")
        tenant_ids = [http(base, "POST", "/v1/tenants", admin, {"name": f"Bench {i}"})[1]["id"]
                      for i in range(n_tenants if want("write") else 0)]
        busy = http(base, "POST", "/v1/tenants", admin, {"name": "Busy Tenant"})[1]["id"]
        members = []
        for i in range(50):
            user = http(base, "POST", "/v1/admin/users", admin,
                        {"email": f"member{i}@bench.test", "name": f"Member {i}", "password": "member-password"})[1]
            role = "owner" if i == 0 else "viewer"
            http(base, "POST", f"/v1/tenants/{busy}/members", admin, {"user_id": user["id"], "role": role})
            members.append(user["id"])
        owner = http(base, "POST", "/v1/auth/login",
                     body={"email": "member0@bench.test", "password": "member-password"})[1]["access_token"]

        # 1. Write path: renames over the tenants, role changes in the busy tenant.
        if want("write"):
            mix = os.path.join(work, "mix.txt")
            with open(mix, "w") as f:
                for i in range(2000):
                    if i % 2 == 0:
                        t = tenant_ids[(i * 7919) % len(tenant_ids)]
                        f.write(f'PATCH /v1/tenants/{t} {{"name": "Renamed {i}"}}\n')
                    else:
                        m = members[1 + (i * 31) % 49]
                        role = "operator" if (i // 2) % 2 else "viewer"
                        f.write(f'PUT /v1/tenants/{busy}/members/{m} {{"role": "{role}"}}\n')
            log("write path")
            with profile("write", server.proc.pid):
                write = wrk(base + "/", secs, 32, token=admin, mix=mix, script_dir=work)
            pg = pgbench_inserts(db, secs, 32, work)
            results["measures"]["write"] = {"tenantry": write, "reference": pg,
                                            "ratio": write["ok_rps"] / pg["rps"]}

        # 2. Read path: the members page of a 50-member tenant, against /healthz.
        peak = [0]
        seeded_kib = rss_kib(server.proc.pid)
        if want("read"):
            log("read path")
            stop = threading.Event()

            def sampler():
                while not stop.is_set():
                    peak[0] = max(peak[0], rss_kib(server.proc.pid))
                    time.sleep(0.05)
            th = threading.Thread(target=sampler)
            th.start()
            with profile("read", server.proc.pid):
                read = wrk(f"{base}/v1/tenants/{busy}/members", secs, 64, token=owner, script_dir=work)
            health = wrk(base + "/healthz", secs, 64, script_dir=work)
            stop.set()
            th.join()
            results["measures"]["read"] = {"tenantry": read, "reference": health,
                                           "ratio": read["rps"] / health["rps"]}

        # 4. Sign-in: eight people at eight connections, against the argon2id
        # hashes per second the server's own code computes in a tight loop
        # on the server's one CPU (a sign-in is one hash).
        if want("sign_in"):
            log("sign-in")
            login_body = os.path.join(work, "login.txt")
            with open(login_body, "w") as f:
                for i in range(1, 9):
                    body = {"email": f"member{i}@bench.test", "password": "member-password"}
                    f.write(f'POST /v1/auth/login {json.dumps(body)}\n')
            with profile("sign_in"):
                login = wrk(base + "/", secs, 8, mix=login_body, script_dir=work)
            hashes = json.loads(run(["taskset", "-c", "0", binary, "hash-rate", "--seconds",
                                     str(max(2, secs // 3)), "--threads", "1"],
                                    env=server.env).stdout)["hashes_per_s"]
            results["measures"]["sign_in"] = {"tenantry": login, "argon2": "argon2id m=19456 KiB, t=2, p=1",
                                              "reference": {"hashes_per_s": hashes},
                                              "ratio": login["ok_rps"] / hashes}

        # 6. Revocation across servers: a logout on this server, and how long
        # until a second server on the same database refuses the token it
        # had just accepted from memory.
        if want("revocation"):
            log("revocation across two servers")
            other = Server(binary, db, os.path.join(work, "data"))
            other.start()
            try:
                delays = []
                for _ in range(10 if q else 100):
                    token = http(base, "POST", "/v1/auth/login",
                                 body={"email": "member1@bench.test", "password": "member-password"})[1]["access_token"]
                    if http(other.base, "GET", "/v1/me", token)[0] != 200:
                        raise RuntimeError("the second server did not accept a fresh token")
                    http(base, "POST", "/v1/auth/logout", token)
                    t0 = time.monotonic()
                    while http(other.base, "GET", "/v1/me", token)[0] != 401:
                        if time.monotonic() - t0 > 10:
                            raise RuntimeError("the second server kept accepting a revoked token")
                    delays.append((time.monotonic() - t0) * 1000)
                delays.sort()
                results["measures"]["revocation"] = {
                    "samples": len(delays),
                    "p50_ms": delays[len(delays) // 2],
                    "p99_ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
                    "max_ms": delays[-1]}
            finally:
                other.stop()

        # 7. Usage ingestion, reservations, and the series of a busy tenant.
        if want("ingest"):
            log("usage ingestion")
            results["measures"]["ingest"] = ingest_measure(base, admin, db, 4 if q else 60, 4)
        if want("reserve"):
            log("reserve-then-record pairs on one tenant")
            with profile("reserve", server.proc.pid):
                results["measures"]["reserve"] = reserve_measure(base, admin, db, secs, 10 if q else 50)
        if want("series"):
            log("a 90-day usage series")
            results["measures"]["series"] = series_measure(base, admin, db, secs, work,
                                                           100_000 if q else 10_000_000)

        results["measures"]["memory"] = {"idle_kib": idle, "before_read_kib": seeded_kib,
                                         "peak_read_kib": peak[0]}
        server.stop()

        # 3. Projection rebuild over seeded events, against COPY of the same rows.
        if want("rebuild"):
            n_events = 20_000 if q else 1_000_000
            log(f"seeding {n_events} events")
            seeded = seed_events(db, n_events)
            total = int(psql(db, "SELECT count(*) FROM events WHERE aggregate_type = 'tenant'"))
            log("rebuilding the tenants projection")
            t0 = time.monotonic()
            with profile("rebuild"):
                run(["taskset", "-c", "0", binary, "projections", "rebuild", "tenants"], env=server.env)
            rebuild_s = time.monotonic() - t0
            t0 = time.monotonic()
            run(["psql", f"{PG}/{db}", "-qc",
                 "\\copy (SELECT * FROM events WHERE aggregate_type = 'tenant' ORDER BY tx_id, position) "
                 "TO '/dev/null'"])
            copy_s = time.monotonic() - t0
            results["measures"]["rebuild"] = {
                "events": total, "seeded": seeded,
                "tenantry": {"events_per_s": total / rebuild_s, "seconds": rebuild_s},
                "reference": {"rows_per_s": total / copy_s, "seconds": copy_s},
                "ratio": (total / rebuild_s) / (total / copy_s)}
            # The rebuild must have produced the same read model the live projector did.
            names = int(psql(db, "SELECT count(*) FROM tenants_view WHERE name LIKE 'Seed % v100'"))
            if names != seeded // 100:
                raise RuntimeError(f"rebuild left {names} seeded tenants at their last name, "
                                   f"expected {seeded // 100}")
        # 5. Waking the projectors: appends to many tenants group-commit only
        # when no append transaction notifies (the server is stopped).
        if want("wakeup"):
            log("appends with the old and the new wake-up")
            wake = {}
            for clients in (8, 32):
                for old in (True, False):
                    key = f'{"old" if old else "new"}_{clients}'
                    wake[key] = pgbench_appends(db, secs, clients, work, old)
            results["measures"]["wakeup"] = {
                "appends_per_s": wake,
                "ratio_8": wake["new_8"] / wake["old_8"],
                "ratio_32": wake["new_32"] / wake["old_32"]}
    finally:
        server.stop()
        subprocess.run(["psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"],
                       capture_output=True)
    if only:
        print(json.dumps(results, indent=2))
        return
    out_dir = work if q else ROOT
    json_path = os.path.join(out_dir, "bench", "results.json") if not q else os.path.join(work, "results.json")
    md_path = os.path.join(out_dir, "docs", "BENCHMARKS.md") if not q else os.path.join(work, "BENCHMARKS.md")
    os.makedirs(os.path.dirname(json_path), exist_ok=True)
    with open(json_path, "w") as f:
        json.dump(results, f, indent=2)
    write_report(md_path, results)
    print(report(results))
    log(f"wrote {md_path} and {json_path}")


class Profiler:
    """With a directory, wraps a measure in a system-wide `perf record` and
    writes where the CPU went, by process and by symbol."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)

    @contextlib.contextmanager
    def __call__(self, measure, pid=None):
        """System-wide by process and symbol; with `pid`, also that process's
        own call graph (DWARF unwinding: Rust omits frame pointers)."""
        if not self.out_dir:
            yield
            return
        data = os.path.join(self.out_dir, f"{measure}.perf.data")
        recs = [subprocess.Popen(["perf", "record", "-a", "-F", "499", "-g", "-o", data],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        if pid:
            recs.append(subprocess.Popen(
                ["perf", "record", "-F", "199", "--call-graph", "dwarf,32768", "-p", str(pid),
                 "-o", data + ".server"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            yield
        finally:
            for rec in recs:
                rec.send_signal(signal.SIGINT)
                rec.wait(timeout=300)
        reports = [("by-process", data, ["--no-children", "-g", "none", "--sort", "comm"]),
                   ("by-symbol", data, ["--no-children", "-g", "none", "--sort", "comm,dso,symbol"])]
        if pid:
            reports.append(("server-callers", data + ".server",
                            ["--children", "-g", "none", "--sort", "symbol"]))
        for name, source, opts in reports:
            out = run(["perf", "report", "-i", source, "--stdio", "--percent-limit", "0.5"] + opts).stdout
            with open(os.path.join(self.out_dir, f"{measure}.{name}.txt"), "w") as f:
                f.write(out)
        log(f"profile of {measure} in {self.out_dir}")


NOTES_MARKER = "<!-- Everything below this line is kept when the harness rewrites the report. -->"


def write_report(path, results):
    """The generated table, then the hand-written notes already in the file."""
    notes = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
        if NOTES_MARKER in text:
            notes = text[text.index(NOTES_MARKER) + len(NOTES_MARKER):]
    with open(path, "w") as f:
        f.write(report(results) + "\n" + NOTES_MARKER + notes)


def report(r):
    m = r["measures"]
    w, rd, rb, si, mem = m["write"], m["read"], m["rebuild"], m["sign_in"], m["memory"]
    wk = m.get("wakeup")
    rows = [
        ("Write path: successful commands/s at 32 clients (p50 / p99 ms)",
         f'{w["tenantry"]["ok_rps"]:.0f} ({w["tenantry"]["p50"]:.1f} / {w["tenantry"]["p99"]:.1f}); '
         f'{w["tenantry"]["non2xx"]} of {w["tenantry"]["requests"]} answered non-2xx',
         f'pgbench INSERT+COMMIT {w["reference"]["rps"]:.0f}', f'{w["ratio"]:.3f}'),
        ("Read path: members of a 50-member tenant, req/s at 64 connections (p50 / p99 / p99.9 ms)",
         f'{rd["tenantry"]["rps"]:.0f} ({rd["tenantry"]["p50"]:.1f} / {rd["tenantry"]["p99"]:.1f} / {rd["tenantry"]["p999"]:.1f})',
         f'/healthz {rd["reference"]["rps"]:.0f} ({rd["reference"]["p99"]:.1f} ms p99)', f'{rd["ratio"]:.3f}'),
        (f'Projection rebuild (`tenants`) over {rb["events"]:,} events, events/s',
         f'{rb["tenantry"]["events_per_s"]:.0f}', f'COPY TO STDOUT {rb["reference"]["rows_per_s"]:.0f} rows/s',
         f'{rb["ratio"]:.3f}'),
        ("Sign-in: logins/s at 8 connections, eight people (p99 ms)",
         f'{si["tenantry"].get("ok_rps", si["tenantry"]["rps"]):.1f} ({si["tenantry"]["p99"]:.0f})',
         f'{si["argon2"]}: ' + (f'{si["reference"]["hashes_per_s"]:.1f} hashes/s in a tight loop on the server\'s CPU'
                                if "reference" in si else "—"),
         f'{si["ratio"]:.3f}' if "ratio" in si else "—"),
        ("Memory: resident, idle / after seeding / peak during the read path",
         f'{mem["idle_kib"] / 1024:.1f} MiB / {mem.get("before_read_kib", 0) / 1024:.1f} MiB / '
         f'{mem["peak_read_kib"] / 1024:.1f} MiB', "—", "—"),
    ]
    rv = m.get("revocation")
    if rv:
        rows.append((
            f'Revocation across two servers: a logout on one until the other refuses the token it accepted '
            f'from memory, ms p50 / p99 / max over {rv["samples"]}',
            f'{rv["p50_ms"]:.1f} / {rv["p99_ms"]:.1f} / {rv["max_ms"]:.1f}', "target: p99 under 100", "—"))
    ing, res, ser = m.get("ingest"), m.get("reserve"), m.get("series")
    if ing:
        rows.append((
            f'Usage ingestion: records/s in batches of 1,000 from {ing["threads"]} clients ({ing["records"]:,} records)',
            f'{ing["tenantry"]["records_per_s"]:.0f}',
            f'multi-row INSERT of the same rows into a plain table {ing["reference"]["rows_per_s"]:.0f}',
            f'{ing["ratio"]:.3f}'))
    if res:
        rows.append((
            f'Reserve-then-record pairs on one tenant at {res["clients"]} clients, per s '
            f'(then {res["refused_402"]} reservations answered 402 once the budget was lowered to bind)',
            f'{res["pairs_per_s"]:.0f}',
            f'overspend checked from the log: {res["overspend_micros"]} micro-units over {res["grants"]} grants',
            "target: 2,000"))
    if ser:
        t = ser["tenantry"]
        rows.append((
            f'A 90-day usage series (rollups of {ser["records"]:,} records), req/s at 8 connections (p50 / p99 ms)',
            f'{t["rps"]:.0f} ({t["p50"]:.1f} / {t["p99"]:.1f})', "target: p99 under 50 ms", "—"))
    if wk:
        a = wk["appends_per_s"]
        rows.append((
            "Appends to 1,000 tenants on the events table, per s at 8 / 32 clients: no NOTIFY in the append "
            "(a notifier beside) against the former NOTIFY inside",
            f'{a["new_8"]:.0f} / {a["new_32"]:.0f}', f'{a["old_8"]:.0f} / {a["old_32"]:.0f}',
            f'{wk["ratio_8"]:.2f} / {wk["ratio_32"]:.2f}'))
    lines = [
        "# Benchmarks",
        "",
        f'Run: {r["date"]}{" (quick)" if r["quick"] else ""} · nproc {r["nproc"]} · PostgreSQL {r["postgres"]} · '
        "`python3 bench/run.py` (machine-readable: `bench/results.json`).",
        "",
        "The server is pinned to CPU 0 and the load generator (wrk, one thread) to CPU 1; Postgres, its "
        "connections, pgbench and the projectors share both cores. Absolute numbers drift between runs on a "
        "shared machine; the ratios, taken against a reference in the same run, are what to compare.",
        "",
        "| Measure | Tenantry | Reference | Ratio |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
