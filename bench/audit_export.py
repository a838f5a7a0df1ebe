"""Audit export throughput and memory under gunicorn, production settings and PostgreSQL.

What it does, in one run:

1. resets a dedicated PostgreSQL database (``promptledger_bench_audit`` unless ``--database-url``),
   migrates it with ``DJANGO_ENV=production`` settings, and through the registry's services makes a
   ``compliance`` user with an ``audit:read`` token; then seeds ``--events`` valid chained events
   (varied actions, actors, teams and prompts; the chain computed with ``audit.chain.event_hash``
   and loaded with COPY) and a signed checkpoint every 100,000 events, the last one written by
   ``audit.services.write_checkpoint``. ``--keep`` reuses a database that already holds them;
2. starts the app (``config.wsgi:application``) under gunicorn: ONE ``gthread`` worker with one
   thread, as the export is a single long request (gthread's main thread keeps reporting to the
   arbiter while the other streams, so the worker is not timed out mid-export);
3. from separate processes, for each format in turn: its ceiling, PostgreSQL's own export of the
   same rows and columns in the same shape, read with psycopg and discarded (for JSONL a
   JSON-producing ``COPY (SELECT row_to_json(e) FROM (SELECT ... ORDER BY sequence) e) TO STDOUT``,
   for CSV ``COPY (SELECT ... ORDER BY sequence) TO STDOUT WITH (FORMAT csv)``), then
   ``GET /api/v1/audit-events/export?format=jsonl`` (or ``csv``) read with ``http.client`` in
   chunks, counting lines (the JSONL written to a scratch file only with ``--verify``). A first,
   untimed COPY warms the cache;
4. reads the gunicorn worker's peak RSS (``VmHWM`` in ``/proc/PID/status``) after the exports, and
   prints ``scenario | rows | seconds | rows/s | peak RSS MB | ratio to ceiling`` (medians over
   ``--rounds``; the ratio is the median of each round's back-to-back ratio, as the machine is
   noisy) and PASS/FAIL against the targets: JSONL at 0.9x its ceiling or more, CSV at 0.5x its
   ceiling or more, each at 50,000 rows/s or more, and a worker peak RSS under 300 MB.

``--verify`` also runs ``python -S -m audit.verify FILE`` on the downloaded file and prints its
verdict, time and peak RSS. The signing key is ``PROMPTLEDGER_AUDIT_SIGNING_KEY`` when set, else a
fixed benchmark key (not a secret: it signs benchmark data only), so ``--keep`` stays verifiable.

Exit status: 0 PASS, 1 FAIL (ran, below a target), 2 could not run (or interrupted). Every process
it started is stopped on the way out, Ctrl-C included; the database is left for inspection, and
reset by the next run unless ``--keep``.

    python bench/audit_export.py            # 1,000,000 events, 3 rounds: about two minutes
    python bench/audit_export.py --quick    # a smoke run: 100,000 events, one round
    python bench/audit_export.py --keep --verify   # reuse the seeded database; check the download
"""

import argparse
import base64
import datetime
import hashlib
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from harness import (
    REPO,
    CouldNotRun,
    admin_url,
    database_name,
    find_gunicorn,
    free_port,
    gunicorn_args,
    reset_database,
    run_main,
    scratch_run,
    server_env,
    setup_django_here,
    wait_until_up,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/promptledger_bench_audit"
TARGET_ROWS_PER_S, TARGET_RSS_MB = 50_000.0, 300.0
TARGET_RATIO = {"jsonl": 0.9, "csv": 0.5}  # each format against the COPY that writes its shape
USERNAME = "bench-compliance"
CHECKPOINT_EVERY = 100_000
EXPORT_PATH = "/api/v1/audit-events/export?format={}"
BENCH_KEY = base64.b64encode(hashlib.sha256(b"promptledger audit export benchmark key").digest()).decode()
# The columns a JSONL line carries, in the export's order (audit.checks.CHAIN_COLUMNS).
COLUMNS = (
    "sequence", "occurred_at", "actor_type", "actor_id", "actor_username", "actor_token", "action",
    "target_type", "target_id", "team", "prompt", "data", "request_id", "ip", "user_agent", "prev_hash", "hash",
)


# --- the data -------------------------------------------------------------------------------------

TEAMS = ("lending", "support", "fraud", "marketing", "platform")
USERS = [(100 + i, name) for i, name in enumerate(
    ("ana.silva", "ben.okafor", "chloé.martin", "dev.patel", "eun-ji.kim", "farah.haddad", "gus.berg", "hana.sato",
     "ivan.petrov", "jo.nakamura", "kai.müller", "lena.novak")
)]
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605",
    "python-httpx/0.27.0",
    "promptledger-ci/1.4 (+deploy pipeline)",
)
NOTES = ("tighten refusal wording", "add Spanish examples", "Überarbeitung der Anrede", "fix JSON schema", "")


class EventFactory:
    """Plausible events in sequence order: who did what to which prompt, with small payloads."""

    def __init__(self, seed=7):
        self.rng = random.Random(seed)
        self.prompts = [(team, f"{team}-{kind}") for team in TEAMS for kind in (
            "triage", "summary", "reply-draft", "classifier", "letter", "extract", "router", "faq")]
        self.versions = dict.fromkeys(self.prompts, 1)

    def __call__(self, sequence, occurred_at):
        rng = self.rng
        user_id, username = rng.choice(USERS)
        team, prompt = rng.choice(self.prompts)
        roll = rng.random()
        actor_type, token = ("token", f"pl_{rng.getrandbits(28):07x}") if roll < 0.3 else ("user", "")
        base = {
            "sequence": sequence, "occurred_at": occurred_at, "actor_type": actor_type, "actor_id": user_id,
            "actor_username": username, "actor_token": token, "team": team, "prompt": prompt,
            "request_id": f"{rng.getrandbits(128):032x}", "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.7",
            "user_agent": rng.choice(AGENTS),
        }
        kind = rng.random()
        if kind < 0.35:
            number = self.versions[team, prompt] = self.versions[team, prompt] + 1
            return base | {
                "action": "version.created", "target_type": "prompt_version", "target_id": f"{prompt}@{number}",
                "data": {
                    "number": number, "content_hash": f"{rng.getrandbits(256):064x}", "parent": number - 1,
                    "model": "openai:gpt-4o-mini", "message": rng.choice(NOTES),
                },
            }
        if kind < 0.6:
            to = self.versions[team, prompt]
            environment = rng.choice(("staging", "production"))
            return base | {
                "action": "deployment.changed", "target_type": "deployment", "target_id": f"{prompt}@{environment}",
                "data": {
                    "environment": environment, "from_version": max(1, to - 1), "to_version": to,
                    "canary": {
                        "before": {"version": None, "percent": None}, "after": {"version": None, "percent": None},
                    },
                },
            }
        if kind < 0.9:
            return base | {
                "action": "auth.login", "actor_type": "user", "actor_token": "", "target_type": "user",
                "target_id": str(user_id), "team": "", "prompt": "", "data": {},
            }
        if kind < 0.97:
            return base | {
                "action": "prompt.updated", "target_type": "prompt", "target_id": prompt,
                "data": {"changes": {"tier": {"before": 2, "after": rng.choice((0, 1))}}},
            }
        return base | {
            "action": "kill_switch.changed", "target_type": "deployment", "target_id": f"{prompt}@production",
            "data": {"environment": "production", "disabled": {"before": False, "after": True},
                     "reason": "provider incident — responses truncated"},
        }


def seed(*, events):
    """Migrate, make the compliance user and their token through the services, then append events
    up to ``events`` with COPY, chained and checkpointed as the app would have. Returns the token."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from audit import signing
    from audit.chain import GENESIS, checkpoint_hash, checkpoint_payload, event_hash, iso
    from audit.models import AuditCheckpoint, AuditEvent
    from audit.services import write_checkpoint
    from core.actors import Actor
    from registry.models import SiteRole
    from registry.services import grant_site_role, issue_token

    call_command("migrate", interactive=False, verbosity=0)
    system = Actor.for_system("bench")
    user_model = get_user_model()
    user = user_model.objects.filter(username=USERNAME).first()
    if user is None:
        user = user_model.objects.create_user(USERNAME, password=None)
        grant_site_role(actor=system, username=USERNAME, role=SiteRole.COMPLIANCE)
    _, raw_token = issue_token(actor=system, user=user, scopes=["audit:read"], name="bench audit export")

    sequence, prev_hash = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    todo = events - sequence
    if todo <= 0:
        connection.close()
        return raw_token
    make = EventFactory()
    # Events end a minute ago, one in each 8 s slot at a random point of it (1,000,000 span 3 months).
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1, seconds=8 * todo)
    previous_checkpoint = AuditCheckpoint.objects.order_by("-id").values_list("checkpoint_hash", flat=True).first()
    checkpoints = []
    copy_sql = f"COPY audit_auditevent ({', '.join(COLUMNS)}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for slot in range(todo):
            sequence += 1
            at = start + datetime.timedelta(microseconds=8_000_000 * slot + make.rng.randrange(8_000_000))
            event = make(sequence, iso(at))
            event["prev_hash"], event["hash"] = prev_hash, event_hash(prev_hash, event)
            prev_hash = event["hash"]
            copy.write_row([
                json.dumps(event["data"], ensure_ascii=False) if c == "data" else event[c] for c in COLUMNS
            ])
            if sequence % CHECKPOINT_EVERY == 0:
                body = {
                    "sequence": sequence, "head_hash": prev_hash, "created_at": iso(at + datetime.timedelta(seconds=1)),
                    "prev_checkpoint_hash": previous_checkpoint or GENESIS, "key_id": signing.key_id(),
                }
                previous_checkpoint = checkpoint_hash(body)
                checkpoints.append(AuditCheckpoint(
                    **body, signature=signing.sign(checkpoint_payload(body)), checkpoint_hash=previous_checkpoint,
                ))
    AuditCheckpoint.objects.bulk_create(checkpoints)
    write_checkpoint()
    connection.close()
    return raw_token


def count_events(url):
    """Events in the database at ``url`` that a kept run can reuse, or None (no database, no user)."""
    import psycopg

    try:
        with psycopg.connect(admin_url(url), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database_name(url)]).fetchone() is None:
                return None
        with psycopg.connect(url, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM auth_user WHERE username = %s", [USERNAME]).fetchone() is None:
                return None
            return conn.execute("SELECT max(sequence) FROM audit_auditevent").fetchone()[0] or 0
    except psycopg.Error:
        return None


def vacuum(url):
    """What autovacuum would have done by the time anyone exports: statistics, hint bits, the
    visibility map; so the first reader does not pay for the bulk load."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) audit_auditevent")


# --- the measured clients (each run as its own process) -------------------------------------------


def measure_copy(database_url, shape):
    """A ceiling: PostgreSQL streams the same rows and columns, ordered the same way, as JSON
    objects (``jsonl``) or CSV rows (``csv``)."""
    import psycopg

    select = f"SELECT {', '.join(COLUMNS)} FROM audit_auditevent ORDER BY sequence"
    if shape == "jsonl":
        query = f"COPY (SELECT row_to_json(e) FROM ({select}) e) TO STDOUT"
    else:
        query = f"COPY ({select}) TO STDOUT WITH (FORMAT csv)"
    rows = size = 0
    with psycopg.connect(database_url, autocommit=True) as conn, conn.cursor() as cursor:
        started = time.perf_counter()
        with cursor.copy(query) as copy:
            for chunk in copy:  # libpq hands over one row at a time; count newlines all the same
                rows += bytes(chunk).count(b"\n")  # the seeded values hold no newline
                size += len(chunk)
        seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "bytes": size}


def measure_http(url, out_path=None):
    """GET the export, read in chunks, count lines; the JSONL manifest (the last line) gives the
    event count, a CSV's lines less its header do."""
    token = os.environ["BENCH_AUDIT_TOKEN"]
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    out = open(out_path, "wb") if out_path else None  # noqa: SIM115 - closed below
    lines = size = 0
    previous = last = b""
    try:
        started = time.perf_counter()
        conn.request("GET", parts.path + "?" + parts.query, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        if response.status != 200:
            return {"error": f"GET {url} answered {response.status}: {response.read(2000)!r}"}
        while chunk := response.read1(1 << 20):
            lines += chunk.count(b"\n")
            size += len(chunk)
            if out is not None:
                out.write(chunk)
            previous, last = last, chunk
        seconds = time.perf_counter() - started
    finally:
        conn.close()
        if out is not None:
            out.close()
    if "format=csv" in url:
        return {"rows": lines - 1, "lines": lines, "seconds": seconds, "bytes": size,
                "content_type": response.getheader("Content-Type")}
    tail = (previous + last).rstrip(b"\n").rsplit(b"\n", 1)[-1]
    manifest = json.loads(tail)
    if manifest.get("record") != "manifest":
        return {"error": f"the export's last line is not its manifest: {tail[:200]!r}"}
    return {
        "rows": manifest["count"], "lines": lines, "seconds": seconds, "bytes": size,
        "last_sequence": manifest["last_sequence"], "content_type": response.getheader("Content-Type"),
    }


def run_client(procs, argv, env=None, timeout=900):
    """Run one measuring client in its own process; its last stdout line is its JSON result."""
    proc = procs.start([sys.executable, __file__, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    try:
        output, errors = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise CouldNotRun(f"the {argv[1]} client took longer than {timeout}s") from exc
    if proc.returncode != 0:
        raise CouldNotRun(f"the {argv[1]} client exited with status {proc.returncode}:\n{errors[-3000:]}")
    result = json.loads(output.strip().splitlines()[-1])
    if "error" in result:
        raise CouldNotRun(result["error"])
    return result


def verify(procs, path):
    """``python -S -m audit.verify FILE``: its verdict, wall time and peak RSS (from wait4)."""
    started = time.perf_counter()
    proc = procs.start([sys.executable, "-S", "-m", "audit.verify", str(path)], cwd=REPO,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode(errors="replace").strip()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"ok": proc.returncode == 0, "summary": output, "seconds": time.perf_counter() - started,
            "peak_rss_mb": usage.ru_maxrss / 1024}


# --- the server's memory --------------------------------------------------------------------------


def children(pid):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # the field after the state is the parent
                found.append(int(entry.name))
    return found


def memory_mb(pid):
    """``{"VmRSS": MB, "VmHWM": MB}`` of a process; VmHWM is its peak resident set so far."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


# --- the run --------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="the database to reset and seed")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the chain (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100,000 events")
    parser.add_argument("--keep", action="store_true",
                        help="reuse the database when it already holds --events events (no reset, no re-seed)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (ceiling, export); 1 with --quick")
    parser.add_argument("--verify", action="store_true", help="also run python -S -m audit.verify on the download")
    parser.add_argument("--client", choices=["copy", "http"], help=argparse.SUPPRESS)
    parser.add_argument("--shape", choices=["jsonl", "csv"], default="jsonl", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.rounds = min(args.events, 100_000), 1
    if args.events < 1 or args.rounds < 1:
        parser.error("--events and --rounds must be at least 1")
    return args


def table(rows):
    head = f"{'scenario':<34} | {'rows':>9} | {'seconds':>7} | {'rows/s':>9} | {'peak RSS MB':>11} | ratio to ceiling"
    lines = [head]
    lines.append("-" * len(lines[0]))
    for name, r in rows:
        rss = f"{r['rss']:>11.0f}" if r.get("rss") is not None else f"{'-':>11}"
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") is not None else "-"
        lines.append(f"{name:<34} | {r['rows']:>9,} | {r['seconds']:>7.2f} | {r['rps']:>9,.0f} | {rss} | {ratio}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.client == "copy":
        print(json.dumps(measure_copy(args.url, args.shape)))
        return 0
    if args.client == "http":
        print(json.dumps(measure_http(args.url, args.out)))
        return 0
    gunicorn = find_gunicorn()
    with scratch_run(prefix="promptledger-bench-audit-") as (procs, scratch):
        return run(args, procs, gunicorn, scratch)


def run(args, procs, gunicorn, scratch):
    name = database_name(args.database_url)
    key = os.environ.get("PROMPTLEDGER_AUDIT_SIGNING_KEY") or BENCH_KEY
    env = server_env(args.database_url, scratch / "var", PROMPTLEDGER_AUDIT_SIGNING_KEY=key)
    kept = count_events(args.database_url) if args.keep else None
    if kept is not None and kept >= args.events:
        print(f"keeping {name}: it holds {kept:,} events", flush=True)
        setup_django_here(env)
        token = seed(events=0)
    else:
        print(f"resetting {name} and seeding {args.events:,} events ...", flush=True)
        reset_database(args.database_url)
        setup_django_here(env)
        started = time.monotonic()
        token = seed(events=args.events)
        vacuum(args.database_url)
        print(f"seeded in {time.monotonic() - started:.1f}s", flush=True)

    port = free_port()
    app_log = open(scratch / "app.log", "wb")  # noqa: SIM115 - closed with the scratch folder
    app = procs.start([gunicorn, "--chdir", str(REPO), *gunicorn_args(port, workers=1, threads=1),
                       "config.wsgi:application"], env=env, cwd=REPO, stdout=app_log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(app, base + "/api/v1/audit-events/?page_size=1", {"Authorization": f"Bearer {token}"}, "the app")
    workers = children(app.pid)
    if len(workers) != 1:
        raise CouldNotRun(f"expected one gunicorn worker under {app.pid}, found {workers}")
    worker = workers[0]
    before = memory_mb(worker)
    print(f"gunicorn gthread, 1 worker x 1 thread; worker RSS {before['VmRSS']:.0f} MB before exporting; "
          f"{args.rounds} round(s) of (COPY ceiling, HTTP export) per format after one untimed COPY", flush=True)

    out = scratch / "export.jsonl"
    http_env = {**os.environ, "BENCH_AUDIT_TOKEN": token}
    run_client(procs, ["--client", "copy", "--shape", "csv", "--url", args.database_url])  # warms the cache
    measured = {}
    for shape in ("jsonl", "csv"):
        copy_argv = ["--client", "copy", "--shape", shape, "--url", args.database_url]
        http_argv = ["--client", "http", "--url", base + EXPORT_PATH.format(shape)]
        if args.verify and shape == "jsonl":
            http_argv += ["--out", str(out)]
        ceilings, exports = [], []
        for _ in range(args.rounds):
            ceilings.append(run_client(procs, copy_argv))
            exports.append(run_client(procs, http_argv, env=http_env))
        expected_type = "application/x-ndjson" if shape == "jsonl" else "text/csv"
        for result in exports:
            if not (result["content_type"] or "").startswith(expected_type) or result["rows"] < args.events:
                raise CouldNotRun(f"the {shape} export held {result['rows']:,} events as {result['content_type']}")
        measured[shape] = (ceilings, exports)
    peak = memory_mb(worker)
    if app.poll() is not None or children(app.pid) != [worker]:
        raise CouldNotRun("the gunicorn worker was replaced during the export (killed or timed out?)")

    def summary(results, **extra):
        return {
            "rows": int(statistics.median(r["rows"] for r in results)),
            "seconds": statistics.median(r["seconds"] for r in results),
            "rps": statistics.median(r["rows"] / r["seconds"] for r in results),
            **extra,
        }

    rows, ratios = [], {}
    for shape, label, ceiling_label in (
        ("jsonl", "export: JSONL over HTTP", "ceiling: COPY row_to_json"),
        ("csv", "export: CSV over HTTP", "ceiling: COPY csv"),
    ):
        ceilings, exports = measured[shape]
        ratios[shape] = [
            (e["rows"] / e["seconds"]) / (c["rows"] / c["seconds"]) for e, c in zip(exports, ceilings, strict=True)
        ]
        rows.append((ceiling_label, summary(ceilings, ratio=1.0)))
        rows.append((label, summary(exports, rss=peak["VmHWM"], ratio=statistics.median(ratios[shape]))))
    checked = None
    if args.verify:
        checked = verify(procs, out)
        jsonl_rows = measured["jsonl"][1][-1]["rows"]
        rows.append(("verify: python -S -m audit.verify", {
            "rows": jsonl_rows, "seconds": checked["seconds"], "rps": jsonl_rows / checked["seconds"],
            "rss": checked["peak_rss_mb"],
        }))
    print()
    print(table(rows))
    megabytes = {shape: statistics.median(e["bytes"] for e in measured[shape][1]) / 1024**2 for shape in measured}
    print(f"(medians of {args.rounds} round(s); the JSONL export is {megabytes['jsonl']:,.0f} MB, the CSV "
          f"{megabytes['csv']:,.0f} MB; peak RSS is the worker's VmHWM after both, {before['VmRSS']:.0f} MB "
          "before the first export; each round's ratio compares runs back to back)")
    if checked is not None:
        print(f"audit.verify: {checked['summary']}")
    print()
    passed = True
    for shape, export in (("jsonl", rows[1][1]), ("csv", rows[3][1])):
        fast = export["rps"] >= TARGET_ROWS_PER_S and export["ratio"] >= TARGET_RATIO[shape]
        passed = passed and fast
        print(f"{'PASS' if fast else 'FAIL'} {shape}: {export['rps']:,.0f} rows/s (floor {TARGET_ROWS_PER_S:,.0f}), "
              f"{export['ratio']:.2f}x its ceiling (target {TARGET_RATIO[shape]:.2f}x; rounds "
              + ", ".join(f"{x:.2f}" for x in ratios[shape]) + ")")
    lean = peak["VmHWM"] < TARGET_RSS_MB
    print(f"{'PASS' if lean else 'FAIL'} memory: worker peak RSS {peak['VmHWM']:.0f} MB (target < {TARGET_RSS_MB:.0f})")
    passed = passed and lean and (checked is None or checked["ok"])
    if checked is not None and not checked["ok"]:
        print("FAIL verify: the downloaded export does not verify")
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    run_main(main)
