"""Many people at once against the production processes, then every write reconciled.

What it does, in one run:

1. resets a dedicated PostgreSQL database (``promptledger_load`` unless ``--database-url``) and a
   Redis database for the broker, migrates with ``DJANGO_ENV=production`` settings and seeds,
   through the services, one team with four authors, two approvers and a viewer, ``--prompts``
   prompts (half Tier-3, which deploy as soon as a request opens, half Tier-1, which wait for an
   approval), each with v1 live in production, and a suite of ``--cases`` cases;
2. starts what ``docker-compose.yml`` runs: gunicorn (gthread, 2 workers x 4 threads), a Celery
   worker and beat, on PostgreSQL and Redis;
3. measures the ceiling: the same ``--clients`` threads asking ``../shared/bench/ceiling_view.py``
   (a Django view with no database, under identical gunicorn settings) as fast as they can, for
   ``--ceiling-seconds``; then stops it;
4. drives ``--clients`` threads, each on a keep-alive connection, for ``--seconds``: 70 % reads
   (resolve, lists, a prompt, a run, requests, audit events), 25 % writes (version pushes, deploy
   requests, approvals, eval runs) and 5 % bad input (a NUL in a JSON string or a query string,
   malformed JSON, an unknown environment, a version that does not exist), no pause between
   requests;
5. reconciles, once every run has finished or ``--drain-seconds`` passed: every 201/202 it saw
   exists; version numbers are gap-free; every run finished with one result per case; every
   deploy it saw has its audit event and resolve answers the version of the last one; every
   approval it saw exists; bad input got a 4xx; the audit chain verifies;
6. prints requests, status counts, p50/p99 by endpoint beside the ceiling's, and PASS/FAIL.

Exit status: 0 PASS; 1 FAIL (any 5xx or connection error, a failed reconciliation, or a write p99
above ``--write-p99-ms``); 2 could not run (or interrupted). Every process it started is stopped
on the way out; the database is left for inspection and reset by the next run.

    python bench/load.py                      # 16 clients for 60 s: about two minutes in all
    python bench/load.py --clients 2 --seconds 10 --ceiling-seconds 3   # a smoke run
"""

import argparse
import base64
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from harness import (
    REPO,
    SHARED,
    CouldNotRun,
    database_name,
    find_gunicorn,
    free_port,
    gunicorn_args,
    reset_database,
    run_main,
    scratch_run,
    server_env,
    setup_django_here,
    wait_for_log_line,
    wait_until_up,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/promptledger_load"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/12"
ENVIRONMENT = "production"
TEAM = "load"
SUITE = "load-core"
AUTHORS, APPROVERS = 4, 2
SCOPES = ["prompts:read", "prompts:write", "evals:run", "deploy", "audit:read"]
WRITES = {"push version", "open request", "approve", "start run"}
MODEL = {"provider": "offline", "name": "offline-echo-1", "params": {"temperature": 0}, "response_schema": None}
VARIABLES = {"name": {"type": "string", "required": True}}


# --- seeding (through the services, so every row has its audit event) ------------------------------


def seed(*, prompts, cases):
    """Migrate and seed in this process; return the tokens and the prompts' slugs by tier."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from core.actors import Actor
    from evals import services as evals
    from registry import services
    from registry.models import Environment, LLMModel, Membership

    call_command("migrate", interactive=False, verbosity=0)
    system = Actor.for_system("load-seed")
    users = get_user_model().objects
    names = (["owner"] + [f"author-{i}" for i in range(AUTHORS)] + [f"approver-{i}" for i in range(APPROVERS)]
             + ["viewer"])
    people = {name: users.create_user(f"load-{name}", password=None) for name in names}
    team = services.create_team(actor=system, slug=TEAM, name="Load")
    for name, user in people.items():
        role = name.split("-")[0]
        services.add_member(actor=system, team=team, username=user.username,
                            role={"owner": Membership.OWNER, "author": Membership.AUTHOR,
                                  "approver": Membership.APPROVER, "viewer": Membership.VIEWER}[role])
    owner = Actor(user=people["owner"])
    services.create_llm_model(actor=system, provider=LLMModel.OFFLINE, model_id=MODEL["name"],
                             owner=people["owner"].username, status=LLMModel.APPROVED)
    production = Environment.objects.get(slug=ENVIRONMENT)
    slugs = {3: [], 1: []}
    for index in range(prompts):
        tier = 3 if index % 2 == 0 else 1
        slug = f"load-t{tier}-{index}"
        prompt = services.create_prompt(actor=Actor(user=people["author-0"]), slug=slug, name=f"Load {index}",
                                        team=team, tier=tier, owner=people["owner"].username)
        version, _ = services.create_version(
            actor=Actor(user=people["author-0"]), prompt=prompt, variables=VARIABLES, model=MODEL, message="v1",
            messages=[{"role": "system", "content": f"You write letters for {slug}. Write to {{{{ name }}}}."}],
        )
        services.set_deployment(actor=owner, prompt=prompt, environment=production, version=version)
        slugs[tier].append(slug)
    suite = evals.create_suite(actor=Actor(user=people["author-0"]), slug=SUITE, name="Load core", team=team)
    evals.add_cases(actor=Actor(user=people["author-0"]), suite=suite, cases=[
        {"vars": {"name": f"Person {i}"}, "assertions": [{"type": "contains", "value": f"Person {i}"}]}
        for i in range(cases)
    ])
    tokens = {name: services.issue_token(actor=system, user=user, scopes=SCOPES)[1] for name, user in people.items()}
    from django.db import connections

    connections.close_all()
    return tokens, slugs


# --- the clients -----------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; a failure to connect or read is counted, not raised."""

    def __init__(self, port):
        self.port, self.conn = port, None

    def request(self, method, path, *, token=None, body=None, raw=None):
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                return response.status, data
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as exc:
                self.close()
                # A keep-alive connection the server closed while idle is retried once, as client
                # pools do; anything else is a connection error.
                if attempt == 2 or not isinstance(exc, http.client.RemoteDisconnected):
                    return None, repr(exc).encode()
            except OSError as exc:
                self.close()
                return None, repr(exc).encode()
        return None, b"unreachable"

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Ledger:
    """What the clients saw succeed, for the reconciliation; and every request's timing."""

    def __init__(self):
        self.lock = threading.Lock()
        self.timings = defaultdict(list)  # endpoint -> [ms]
        self.statuses = Counter()  # (endpoint, status)
        self.errors = []  # (endpoint, detail) of 5xx and connection errors
        self.bad_input_accepted = []
        self.versions = []  # (slug, number, content_hash)
        self.latest = {}  # slug -> newest version number seen
        self.requests = {}  # id -> (slug, version, status)
        self.pending = []  # ids of tier-1 requests seen pending
        self.approvals = []  # (request id, approver's username)
        self.runs = []  # run ids

    def timed(self, endpoint, status, ms, body):
        with self.lock:
            self.timings[endpoint].append(ms)
            self.statuses[(endpoint, status if status is not None else "connection error")] += 1
            if status is None or status >= 500:
                self.errors.append((endpoint, status, body[:300].decode("utf-8", "replace")))


def client(index, port, tokens, slugs, ledger, stop_at, seed_value):
    rng = random.Random(seed_value)
    conn = Connection(port)
    author = tokens[f"author-{index % AUTHORS}"]
    approver = tokens[f"approver-{index % APPROVERS}"]
    viewer = tokens["viewer"]
    every = slugs[3] + slugs[1]
    pushes = 0

    def call(endpoint, method, path, token, body=None, raw=None):
        started = time.perf_counter()
        status, data = conn.request(method, path, token=token, body=body, raw=raw)
        ledger.timed(endpoint, status, (time.perf_counter() - started) * 1000, data)
        try:
            parsed = json.loads(data) if status is not None and data else None
        except ValueError:
            parsed = None
        return status, parsed

    def bad(endpoint, method, path, body=None, raw=None):
        status, _ = call(endpoint, method, path, author, body, raw)
        if status is not None and not 400 <= status < 500:
            ledger.bad_input_accepted.append((endpoint, status))

    while time.monotonic() < stop_at:
        roll = rng.random() * 100
        slug = rng.choice(every)
        if roll < 35:
            unit = f"u{rng.randint(1, 999)}"
            call("resolve", "GET", f"/api/v1/prompts/{slug}/resolve?environment={ENVIRONMENT}&unit={unit}", viewer)
        elif roll < 43:
            call("list prompts", "GET", f"/api/v1/prompts/?team={TEAM}", viewer)
        elif roll < 50:
            call("get prompt", "GET", f"/api/v1/prompts/{slug}/", viewer)
        elif roll < 56:
            call("list versions", "GET", f"/api/v1/prompts/{slug}/versions/", viewer)
        elif roll < 62:
            run_id = rng.choice(ledger.runs) if ledger.runs else None
            if run_id is None:
                call("list runs", "GET", "/api/v1/eval-runs/", viewer)
            else:
                call("get run", "GET", f"/api/v1/eval-runs/{run_id}/", viewer)
        elif roll < 66:
            call("list requests", "GET", "/api/v1/deploy-requests/", approver)
        elif roll < 70:
            call("list audit events", "GET", "/api/v1/audit-events/", approver)
        elif roll < 78:
            pushes += 1
            status, body = call("push version", "POST", f"/api/v1/prompts/{slug}/versions/", author, {
                "messages": [{"role": "system", "content": f"Write to {{{{ name }}}} (client {index}, {pushes})."}],
                "variables": VARIABLES, "model": MODEL, "message": f"load {index}/{pushes}",
            })
            if status == 201:
                with ledger.lock:
                    ledger.versions.append((slug, body["number"], body["content_hash"]))
                    ledger.latest[slug] = max(ledger.latest.get(slug, 1), body["number"])
        elif roll < 85:
            number = ledger.latest.get(slug, 1)
            status, body = call("open request", "POST", "/api/v1/deploy-requests/", author, {
                "prompt": slug, "version": number, "environment": ENVIRONMENT, "rationale": f"load client {index}",
            })
            if status == 201:
                with ledger.lock:
                    ledger.requests[body["id"]] = (slug, number, body["status"])
                    if body["status"] == "pending":
                        ledger.pending.append(body["id"])
        elif roll < 90:
            # An approver looks at what is waiting now: the newest requests (older ones were
            # superseded by newer pushes of the same prompt, and approving them is a 409).
            request_id = rng.choice(ledger.pending[-8:]) if ledger.pending else None
            if request_id is not None:
                status, body = call("approve", "POST", f"/api/v1/deploy-requests/{request_id}/approve", approver,
                                    {"comment": "looks right"})
                if status == 200:
                    with ledger.lock:
                        ledger.approvals.append((request_id, f"load-approver-{index % APPROVERS}"))
        elif roll < 95:
            number = ledger.latest.get(slug, 1)
            status, body = call("start run", "POST", "/api/v1/eval-runs/", author,
                                {"prompt": slug, "version": number, "suite": SUITE, "trigger": "ci"})
            if status == 202:
                with ledger.lock:
                    ledger.runs.append(body["id"])
        else:
            kind = rng.randrange(5)
            if kind == 0:
                bad("bad: NUL in JSON", "POST", f"/api/v1/prompts/{slug}/versions/", body={
                    "messages": [{"role": "system", "content": "Write to {{ name }}."}], "variables": VARIABLES,
                    "model": {**MODEL, "params": {"temperature": 0, "user": "a\u0000b"}},
                })
            elif kind == 1:
                bad("bad: malformed JSON", "POST", "/api/v1/deploy-requests/", raw=b'{"prompt": ')
            elif kind == 2:
                bad("bad: unknown environment", "GET", f"/api/v1/prompts/{slug}/resolve?environment=moon")
            elif kind == 3:
                bad("bad: NUL in query", "GET", "/api/v1/prompts/?q=a%00b")
            else:
                bad("bad: no such version", "POST", "/api/v1/deploy-requests/", body={
                    "prompt": slug, "version": 9999, "environment": ENVIRONMENT, "rationale": "none",
                })
    conn.close()


def drive(port, clients, seconds, *, tokens, slugs, seed_value=11):
    ledger = Ledger()
    stop_at = time.monotonic() + seconds
    threads = [
        threading.Thread(target=client, args=(i, port, tokens, slugs, ledger, stop_at, seed_value * 1000 + i))
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ledger


def ceiling(port, clients, seconds):
    """The same clients, as fast as they can, against the no-database view: latencies in ms."""
    timings, lock = [], threading.Lock()
    stop_at = time.monotonic() + seconds

    def loop():
        conn, mine = Connection(port), []
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            status, _ = conn.request("GET", "/api/v1/prompts/any/resolve")
            if status == 200:
                mine.append((time.perf_counter() - started) * 1000)
        conn.close()
        with lock:
            timings.extend(mine)

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return timings


# --- reconciliation ----------------------------------------------------------------------------------


def wait_for_runs(run_ids, drain_seconds):
    from django.db import connections

    from evals.models import EvalRun

    deadline = time.monotonic() + drain_seconds
    while time.monotonic() < deadline:
        open_runs = EvalRun.objects.filter(pk__in=run_ids).exclude(status__in=EvalRun.FINISHED).count()
        if not open_runs:
            break
        time.sleep(0.5)
    connections.close_all()


def reconcile(ledger, port, tokens, slugs, cases):
    """``[(check, ok, detail)]``."""
    from django.db.models import Count

    from approvals.models import Approval, DeployRequest
    from audit.checks import verify_database
    from audit.models import AuditEvent
    from evals.models import EvalRun
    from registry.models import Deployment, PromptVersion

    checks = []

    def check(name, ok, detail=""):
        checks.append((name, bool(ok), detail))

    check("no 5xx and no connection errors", not ledger.errors,
          f"{len(ledger.errors)}, e.g. " + "; ".join(f"{e} -> {s}: {b[:80]}" for e, s, b in ledger.errors[:3]))
    check("bad input answered 4xx", not ledger.bad_input_accepted, repr(ledger.bad_input_accepted[:5]))

    stored = {(v.prompt.slug, v.number): v.content_hash for v in PromptVersion.objects.select_related("prompt")}
    missing = [v for v in ledger.versions if stored.get((v[0], v[1])) != v[2]]
    check(f"every 201 version push exists ({len(ledger.versions)})", not missing, repr(missing[:5]))
    gaps = []
    for slug in slugs[3] + slugs[1]:
        numbers = sorted(n for (s, n) in stored if s == slug)
        if numbers != list(range(1, len(numbers) + 1)):
            gaps.append((slug, numbers))
    check("version numbers are gap-free", not gaps, repr(gaps[:3]))

    in_db = dict(DeployRequest.objects.filter(pk__in=list(ledger.requests)).values_list("pk", "version__number"))
    wrong = [(pk, seen) for pk, seen in ledger.requests.items() if in_db.get(pk) != seen[1]]
    check(f"every 201 deploy request exists ({len(ledger.requests)})", not wrong, repr(wrong[:5]))
    deployed = [pk for pk, seen in ledger.requests.items() if seen[2] == "deployed"]
    audited = set(AuditEvent.objects.filter(action="deploy_request.deployed", target_type="deploy_request")
                  .values_list("target_id", flat=True))
    unaudited = [pk for pk in deployed if str(pk) not in audited]
    check(f"every deploy seen has its audit event ({len(deployed)})", not unaudited, repr(unaudited[:5]))

    # Resolve answers what the newest deploy event put live, for every prompt.
    newest = {}
    for data, prompt in (AuditEvent.objects.filter(action="deployment.changed").order_by("sequence")
                         .values_list("data", "prompt")):
        if data.get("environment") == ENVIRONMENT:
            newest[prompt] = data.get("to_version")
    conn, mismatched = Connection(port), []
    for slug in slugs[3] + slugs[1]:
        status, body = conn.request("GET", f"/api/v1/prompts/{slug}/resolve?environment={ENVIRONMENT}",
                                    token=tokens["viewer"])
        live = json.loads(body).get("version") if status == 200 else status
        pointer = Deployment.objects.filter(prompt__slug=slug, environment__slug=ENVIRONMENT).first()
        expected = pointer.version.number if pointer and pointer.version else None
        if live != expected or (newest.get(slug) is not None and newest[slug] != expected):
            mismatched.append((slug, live, expected, newest.get(slug)))
    conn.close()
    check("resolve answers the last deploy of every prompt", not mismatched, repr(mismatched[:5]))

    found = set(Approval.objects.filter(request_id__in=[pk for pk, _ in ledger.approvals], decision=Approval.APPROVE)
                .values_list("request_id", "user__username"))
    lost = [a for a in ledger.approvals if a not in found]
    check(f"every approval answered 200 exists ({len(ledger.approvals)})", not lost, repr(lost[:5]))

    runs = {r.pk: r for r in EvalRun.objects.filter(pk__in=ledger.runs).annotate(n=Count("results"))}
    unfinished = [pk for pk in ledger.runs if pk not in runs or runs[pk].status != EvalRun.COMPLETED]
    uneven = [pk for pk in ledger.runs if pk in runs and not runs[pk].n == runs[pk].total == cases]
    check(f"every 202 run finished ({len(ledger.runs)})", not unfinished,
          f"{len(unfinished)} not finished, e.g. "
          + repr([(pk, runs[pk].status if pk in runs else "missing") for pk in unfinished[:5]]))
    check("every run has one result per case", not uneven, repr(uneven[:5]))

    report = verify_database(save=False, max_checkpoint_age=0)
    check(f"the audit chain verifies ({report.count} events)", report.ok, report.summary())
    return checks


# --- the report --------------------------------------------------------------------------------------


def pct(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def fmt(value):
    return "-" if value is None else f"{value:,.1f}"


def report(ledger, seconds, ceiling_ms, ceiling_seconds, checks, write_p99_limit):
    total = sum(len(v) for v in ledger.timings.values())
    print(f"\n{total:,} requests in {seconds}s = {total / seconds:,.1f} req/s")
    statuses = Counter()
    for (_, status), count in ledger.statuses.items():
        statuses[status] += count
    print("statuses: " + ", ".join(f"{s}: {c:,}" for s, c in sorted(statuses.items(), key=lambda kv: str(kv[0]))))
    print(f"\n{'endpoint':<26}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}  statuses")
    for endpoint in sorted(ledger.timings, key=lambda e: (e not in WRITES, e.startswith("bad"), e)):
        values = ledger.timings[endpoint]
        by_status = ", ".join(f"{s}: {c}" for (e, s), c in sorted(ledger.statuses.items(), key=lambda kv: str(kv))
                              if e == endpoint)
        print(f"{endpoint:<26}{len(values):>9,}{fmt(pct(values, 50)):>9}{fmt(pct(values, 99)):>9}  {by_status}")
    writes = [ms for e, values in ledger.timings.items() if e in WRITES for ms in values]
    reads = [ms for e, values in ledger.timings.items() if e not in WRITES and not e.startswith("bad")
             for ms in values]
    print(f"\n{'all writes':<26}{len(writes):>9,}{fmt(pct(writes, 50)):>9}{fmt(pct(writes, 99)):>9}")
    print(f"{'all reads':<26}{len(reads):>9,}{fmt(pct(reads, 50)):>9}{fmt(pct(reads, 99)):>9}")
    print(f"{'ceiling (no database)':<26}{len(ceiling_ms):>9,}{fmt(pct(ceiling_ms, 50)):>9}"
          f"{fmt(pct(ceiling_ms, 99)):>9}  {len(ceiling_ms) / ceiling_seconds:,.0f} req/s, the same clients")
    write_p99, ceiling_p99 = pct(writes, 99), pct(ceiling_ms, 99)
    if write_p99 is not None and ceiling_p99:
        print(f"write p99 = {write_p99 / ceiling_p99:.1f}x the ceiling's p99; read p99 = "
              f"{(pct(reads, 99) or 0) / ceiling_p99:.1f}x")
    print("\nreconciliation:")
    for name, ok, detail in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if not ok and detail else ""))
    fast = write_p99 is not None and write_p99 < write_p99_limit
    print(f"  {'ok  ' if fast else 'FAIL'} write p99 under {write_p99_limit:g} ms ({fmt(write_p99)} ms)")
    passed = fast and all(ok for _, ok, _ in checks)
    print("\nPASS" if passed else "\nFAIL")
    return 0 if passed else 1


# --- main ----------------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--ceiling-seconds", type=int, default=10)
    parser.add_argument("--drain-seconds", type=int, default=120, help="how long runs may take to finish after")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--cases", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--write-p99-ms", type=float, default=500.0)
    parser.add_argument("--database-url", default=os.environ.get("LOAD_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--broker-url", default=os.environ.get("LOAD_BROKER_URL", DEFAULT_BROKER_URL))
    parser.add_argument("--ceiling", type=Path, default=SHARED / "bench" / "ceiling_view.py")
    return parser.parse_args(argv)


def flush_broker(url):
    import redis

    try:
        redis.Redis.from_url(url).flushdb()
    except redis.RedisError as exc:
        raise CouldNotRun(f"cannot reach the broker at {url}: {exc}") from exc


def main(argv=None):
    args = parse_args(argv)
    gunicorn = find_gunicorn()
    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or shutil.which("celery")
    if celery is None:
        raise CouldNotRun("celery is not installed in this environment")
    if not args.ceiling.is_file():
        raise CouldNotRun(f"no ceiling view at {args.ceiling} (use --ceiling PATH)")
    with scratch_run(prefix="promptledger-load-") as (procs, scratch):
        return run(args, procs, gunicorn, celery, scratch)


def run(args, procs, gunicorn, celery, scratch):
    print(f"resetting {database_name(args.database_url)} and {args.broker_url}, seeding ...", flush=True)
    reset_database(args.database_url)
    flush_broker(args.broker_url)
    env = server_env(
        args.database_url, scratch / "var",
        CELERY_BROKER_URL=args.broker_url,
        PROMPTLEDGER_AUDIT_SIGNING_KEY=base64.b64encode(os.urandom(32)).decode(),
        PROMPTLEDGER_AUDIT_SINK=str(scratch / "checkpoints.jsonl"),
    )
    setup_django_here(env)
    tokens, slugs = seed(prompts=args.prompts, cases=args.cases)

    log = open(scratch / "app.log", "wb")  # noqa: SIM115 - closed with the scratch folder
    port = free_port()
    app = procs.start([gunicorn, "--chdir", str(REPO), *gunicorn_args(port, workers=args.workers,
                                                                       threads=args.threads),
                       "config.wsgi:application"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    worker_log = scratch / "worker.log"
    worker = procs.start([celery, "-A", "config", "worker", "-l", "info", "--without-gossip", "--without-mingle",
                          "-n", "load@%h", "--logfile", str(worker_log)], env=env, cwd=REPO, stdout=log,
                         stderr=subprocess.STDOUT)
    procs.start([celery, "-A", "config", "beat", "-l", "warning", "-s", str(scratch / "beat-schedule")],
                env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    wait_until_up(app, f"http://127.0.0.1:{port}/healthz", {}, "gunicorn")
    wait_for_log_line(worker, worker_log, "ready.", "the Celery worker")

    ceiling_port = free_port()
    ceiling_env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    ceiling_proc = procs.start(
        [gunicorn, "--chdir", str(args.ceiling.parent),
         *gunicorn_args(ceiling_port, workers=args.workers, threads=args.threads), f"{args.ceiling.stem}:application"],
        env=ceiling_env, cwd=args.ceiling.parent,
    )
    wait_until_up(ceiling_proc, f"http://127.0.0.1:{ceiling_port}/api/v1/prompts/any/resolve", {}, "the ceiling")
    print(f"gunicorn gthread {args.workers}x{args.threads}, a Celery worker and beat", flush=True)
    print(f"ceiling: {args.clients} clients for {args.ceiling_seconds}s against a no-database view ...", flush=True)
    ceiling_ms = ceiling(ceiling_port, args.clients, args.ceiling_seconds)
    ceiling_proc.terminate()
    ceiling_proc.wait(timeout=10)

    print(f"load: {args.clients} clients for {args.seconds}s ...", flush=True)
    ledger = drive(port, args.clients, args.seconds, tokens=tokens, slugs=slugs)
    print(f"waiting for {len(ledger.runs)} runs to finish (at most {args.drain_seconds}s) ...", flush=True)
    wait_for_runs(ledger.runs, args.drain_seconds)
    checks = reconcile(ledger, port, tokens, slugs, args.cases)
    status = report(ledger, args.seconds, ceiling_ms, args.ceiling_seconds, checks, args.write_p99_ms)
    if status:
        tail = (scratch / "app.log").read_text(errors="replace").splitlines()[-15:]
        print("--- the app's log, last lines ---\n" + "\n".join(tail))
    return status


if __name__ == "__main__":
    run_main(main)
