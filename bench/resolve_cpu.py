"""Resolve's CPU time a request in process, beside the ceiling's: a figure that holds on a busy
machine, where wrk's rates wander (see bench/resolve.py, whose database this reads).

Two processes at the same time, so both see the same machine: one runs the ceiling
(``../shared/bench/ceiling_view.py``) through Django's WSGI handler, the other the app with
production settings as gunicorn runs it (``config.wsgi``: the answer from memory ahead of Django's
handler, the whole middleware chain and the resolve fast path behind it, metrics on) on the
database ``bench/resolve.py`` seeded; each sends ``--requests`` resolves of ``--slugs`` prompts
per round, ``--rounds`` rounds, 200s then 304s, and reports its CPU time a request (``process_time``).
No sockets and no gunicorn: this is the Python side alone, so its ratio is harsher than wrk's (the
server's fixed cost a request is the same for both and not in it).

    python bench/resolve.py --quick          # seeds promptledger_bench once
    python bench/resolve_cpu.py              # prints us a request and ratios; exit 0 (no target)
"""

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from harness import REPO, SHARED, CouldNotRun, run_main, server_env

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/promptledger_bench"


def _measure(which, database_url, requests, rounds, slugs):
    """In a child process: one JSON line with the CPU us a request for 200 and 304, per round."""
    if which == "ceiling":
        ceiling = SHARED / "bench" if (SHARED / "bench").exists() else REPO.parents[1] / "shared" / "bench"
        sys.path.insert(0, str(ceiling))
        import ceiling_view

        app, token = ceiling_view.application, "x"
    else:
        import django

        os.environ.update(server_env(database_url, tempfile.mkdtemp(prefix="promptledger-bench-cpu-")))
        sys.path.insert(0, str(REPO))
        django.setup()
        from django.contrib.auth import get_user_model
        from django.db import connection

        from config.wsgi import application as app  # what gunicorn runs
        from core.actors import Actor
        from registry.services import issue_token

        reader = get_user_model().objects.get(username="bench-reader")
        _, token = issue_token(actor=Actor.for_system(), user=reader, scopes=["prompts:read"], name="cpu")
        connection.close()
    paths = [f"/api/v1/prompts/bench-{i:05d}/resolve" for i in range(slugs)]
    etags = {}

    def call(path, conditional):
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "environment=production&unit=u-1",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr,
            "HTTP_AUTHORIZATION": f"Bearer {token}",
        }
        if conditional and path in etags:
            environ["HTTP_IF_NONE_MATCH"] = etags[path]
        answer = {}
        b"".join(app(environ, lambda status, headers, exc_info=None: answer.update(status=status, headers=headers)))
        if not answer["status"].startswith(("200", "304")):
            raise SystemExit(f"{path} answered {answer['status']}")
        etags.setdefault(path, dict(answer["headers"]).get("ETag", '"x"'))

    for path in paths * 2:
        call(path, False)
    time.sleep(1)  # the resolve cache's listener is connected by now: the rounds are warm
    for path in paths:
        call(path, False)
    result = {"200": [], "304": []}
    for _ in range(rounds):
        for kind in ("200", "304"):
            started = time.process_time()
            for i in range(requests):
                call(paths[i % len(paths)], kind == "304")
            result[kind].append((time.process_time() - started) / requests * 1e6)
    print(json.dumps(result), flush=True)
    os._exit(0)  # the listener thread is a daemon; nothing to wait for


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slugs", type=int, default=500)
    parser.add_argument("--child", choices=["ceiling", "app"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _measure(args.child, args.database_url, args.requests, args.rounds, args.slugs)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)", flush=True)
    children = {
        which: subprocess.Popen(
            [sys.executable, __file__, "--child", which, "--database-url", args.database_url, "--requests",
             str(args.requests), "--rounds", str(args.rounds), "--slugs", str(args.slugs)],
            stdout=subprocess.PIPE, text=True, cwd=REPO,
        )
        for which in ("ceiling", "app")
    }
    results = {}
    for which, child in children.items():
        output, _ = child.communicate(timeout=900)
        if child.returncode != 0 or not output.strip():
            raise CouldNotRun(f"the {which} process exited with {child.returncode}")
        results[which] = json.loads(output.strip().splitlines()[-1])
    ceiling = statistics.median(results["ceiling"]["200"])
    print(f"ceiling (Django, no database, 200): {ceiling:.1f} us of CPU a request")
    for kind in ("200", "304"):
        app = statistics.median(results["app"][kind])
        print(f"resolve {kind}: {app:.1f} us of CPU a request = {ceiling / app:.2f}x the ceiling's rate "
              f"(rounds {', '.join(f'{x:.0f}' for x in results['app'][kind])} us)")
    return 0


if __name__ == "__main__":
    run_main(main)
