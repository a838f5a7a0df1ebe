"""Every list page and API list timed on a database at scale (``bench/seed_scale.py``: 10,000
prompts, 100,000 versions, 1,000,000 eval results, 1,000,000 audit events), under gunicorn with
production settings on PostgreSQL.

The lists are exactly those whose query counts the tests commit (``COUNTS`` in
``tests/test_query_counts.py``), each asked for as the person that row names (an admin sees all
10,000 prompts; a viewer and an approver are members of the first team). A route's parameters are
filled with the seed's objects: the first prompt, suite and team, that prompt's newest run, the model
and a webhook subscription.

For each route: ``--warmup`` requests, then ``--requests`` sequential requests on one keep-alive
connection; prints p50, p95 and the slowest in milliseconds, with ``/healthz`` (one query) first as
the floor the machine allows. Every answer must be 200. The target is a p95 under 300 ms for each
list (``--target-ms``); exit 1 when one misses it or answers otherwise, 2 when it could not run.

    python bench/pages.py [--database-url URL] [--small] [--requests 30]

``--small`` seeds a twentieth of the scale (a quick try of the script, not the figure).
"""

import argparse
import http.client
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402 - after the path insert, as every script here
import seed_scale  # noqa: E402

SMALL = ["--prompts", "500", "--runs", "500", "--events", "50000"]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("SCALE_DATABASE_URL", seed_scale.DEFAULT_URL))
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--target-ms", type=float, default=300.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    return parser.parse_args(argv)


def credentials():
    """``{who: headers}`` for pages (a session cookie) and the API (a token with every scope)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from core.actors import Actor
    from registry.services import issue_token
    from registry.services.tokens import grantable_scopes

    system = Actor.for_system("bench")
    pages, api = {}, {}
    for username in ("admin", "viewer", "approver", "owner"):
        user = get_user_model().objects.get(username=username)
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        pages[username] = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"}
        _, raw = issue_token(actor=system, user=user, scopes=grantable_scopes(user), name="bench pages")
        api[username] = {"Authorization": f"Bearer {raw}"}
    return pages, api


def parameters():
    """The seed's objects that fill the routes' ``{...}``."""
    from evals.models import EvalRun
    from registry.models import LLMModel, Prompt
    from webhooks.models import AuditStream, Subscription

    prompt = Prompt.objects.get(slug="prompt-00001")
    stream = AuditStream.objects.first() or AuditStream.objects.create(  # inactive: nothing is sent
        name="bench-siem", url="https://siem.example.org/ingest", active=False, cursor_hash="0" * 64,
    )
    subscription = Subscription.objects.first() or Subscription.objects.create(
        url="https://hooks.example.org/promptledger", events=["*"], secret="", description="bench pages",
    )
    return {
        "prompt": prompt.slug, "suite": "suite-001", "team": "team-001",
        "run_id": EvalRun.objects.filter(prompt=prompt).order_by("-id").values_list("id", flat=True).first(),
        "model_id": LLMModel.objects.values_list("id", flat=True).first(),
        "subscription_id": subscription.pk, "stream_id": stream.pk,
    }


def fill(route, values):
    def one(match):
        name = match.group(1)
        if name != "slug":
            return str(values[name])
        if "/suites/" in route:
            return values["suite"]
        if "/teams/" in route:
            return values["team"]
        return values["prompt"]
    return re.sub(r"\{(\w+)\}", one, route)


def time_route(port, path, headers, *, warmup, requests):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    took, status, size = [], None, 0
    try:
        for n in range(warmup + requests):
            started = time.perf_counter()
            conn.request("GET", path, headers=headers | {"Host": "127.0.0.1"})
            response = conn.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            status, size = response.status, len(body)
            if status != 200:
                break
            if n >= warmup:
                took.append(elapsed)
    finally:
        conn.close()
    return status, size, took


def p95(values):
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def main(argv=None):
    args = parse_args(argv)
    seed_scale.main(["--database-url", args.database_url, "--keep"] + (SMALL if args.small else []))
    with harness.scratch_run("promptledger-pages-") as (procs, scratch):
        env = harness.server_env(args.database_url, scratch / "var")
        env["PROMPTLEDGER_AUDIT_SIGNING_KEY"] = os.environ.get(
            "PROMPTLEDGER_AUDIT_SIGNING_KEY", "c2NhbGUtYmVuY2gtc2lnbmluZy1rZXktMzItYnl0ZXM="
        )
        harness.setup_django_here(env)
        from django.core.management import call_command

        from tests.test_query_counts import COUNTS, HTMX

        call_command("collectstatic", interactive=False, verbosity=0)  # production serves the manifest's names

        pages, api = credentials()
        values = parameters()
        port = harness.free_port()
        log = open(scratch / "app.log", "w")  # noqa: SIM115 - closed with the run
        server = procs.start(
            [harness.find_gunicorn(), *harness.gunicorn_args(port, workers=args.workers, threads=args.threads),
             "config.wsgi:application"],
            cwd=harness.REPO, env=env, stdout=log, stderr=log,
        )
        harness.wait_until_up(server, f"http://127.0.0.1:{port}/healthz", {}, "gunicorn")
        load_before = os.getloadavg()
        rows = [("/healthz", "-", *time_route(port, "/healthz", {}, warmup=args.warmup, requests=args.requests))]
        for (route, who) in COUNTS:
            template = route.split("?")[0]
            headers = dict(api[who] if route.startswith("/api/") else pages[who])
            if template in HTMX:
                headers["HX-Request"] = "true"
            path = fill(route, values)
            rows.append((path, who, *time_route(port, path, headers, warmup=args.warmup, requests=args.requests)))
        load_after = os.getloadavg()

    print(f"\n{'route':<58} {'who':<9} {'status':>6} {'KB':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    failed = []
    for path, who, status, size, took in rows:
        if status != 200 or not took:
            print(f"{path:<58} {who:<9} {status!s:>6} {'':>7} {'':>8} {'':>8} {'':>8}  FAIL (status)")
            failed.append(path)
            continue
        slow = p95(took)
        mark = "" if slow <= args.target_ms or path == "/healthz" else "  FAIL (p95)"
        if mark:
            failed.append(path)
        print(f"{path:<58} {who:<9} {status:>6} {size / 1024:>7.1f} {statistics.median(took):>8.1f} "
              f"{slow:>8.1f} {max(took):>8.1f}{mark}")
    print(f"\nfloor: /healthz p95 {p95(rows[0][4]):.1f} ms; target: every list's p95 under {args.target_ms:.0f} ms; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after ({os.cpu_count()} CPUs)")
    print(("FAIL: " + ", ".join(failed)) if failed else f"PASS: {len(rows) - 1} lists")
    return 1 if failed else 0


if __name__ == "__main__":
    harness.run_main(main)
