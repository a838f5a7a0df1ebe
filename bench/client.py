"""The Python client's ``get_prompt``: warm-cache calls per second, and cold fetches beside plain HTTP.

What it does, in one run:

1. resets a dedicated PostgreSQL database (``promptledger_bench_client`` unless ``--database-url``),
   migrates it with ``DJANGO_ENV=production`` settings and seeds ``--prompts`` prompts deployed to
   production (as ``bench/resolve.py`` seeds them: one in 200 with a 10 % canary), a reader and a
   ``prompts:read`` token;
2. starts the app under gunicorn (gthread, ``--workers`` x ``--threads``, as ``bench/resolve.py``);
3. in a separate process that imports ``promptledger.client`` and nothing of the server:
   - **warm**: one ``Client`` (TTL one hour) that has fetched ``--warm-keys`` prompts once, then
     ``get_prompt`` over them in a loop for ``--duration`` s, in one thread, without and with a
     ``unit`` (a unit costs the sha256 of its canary bucket);
   - **cold**: ``--concurrency`` threads, each calling ``get_prompt`` on a new ``Client`` every time
     (nothing in memory: one fetch, the ``Prompt`` built, the last-known-good copy written to disk;
     and again with ``cache_dir=False``), beside the same threads sending plain ``urllib`` GETs of
     the same resolve URLs with the same token and reading the body. ``--rounds`` rounds, the order
     turning each round; the ratio cold / plain is the median of each round's back-to-back ratio.
   Both sides use ``urllib``, so both open a connection per request.

It prints the figures; it has no floor, so it exits 0 when it ran and 2 when it could not (a
server that did not start, a request that failed). Every process it started is stopped on the way
out, Ctrl-C included; the database is left for inspection and reset by the next run.

    python bench/client.py            # about a minute
    python bench/client.py --quick    # a smoke run
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from harness import (
    REPO,
    database_name,
    find_gunicorn,
    free_port,
    gunicorn_args,
    reset_database,
    run_json_client,
    run_main,
    scratch_run,
    server_env,
    setup_django_here,
    wait_until_up,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/promptledger_bench_client"
ENVIRONMENT = "production"


# --- the measuring process (standard library and promptledger.client only) -----------------------


def _threads(concurrency, duration, step):
    """Run ``step(thread_index, n)`` in ``concurrency`` threads for ``duration`` s; calls/s."""
    stop, counts, failures = threading.Event(), [0] * concurrency, []

    def loop(index):
        n = 0
        try:
            while not stop.is_set():
                step(index, n)
                n += 1
        except Exception as exc:  # noqa: BLE001 - reported as the run's failure
            failures.append(repr(exc))
            stop.set()
        counts[index] = n

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    stop.wait(duration)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(failures[0])
    return sum(counts) / elapsed


def measure(spec):
    """Every figure of the client side; ``spec`` is the JSON the parent wrote."""
    from promptledger.client import Client

    base, token, targets = spec["base"], spec["token"], [tuple(t) for t in spec["targets"]]
    duration, concurrency, scratch = spec["duration"], spec["concurrency"], Path(spec["scratch"])
    figures = {}

    warm = Client(url=base, token=token, ttl=3600, cache_dir=scratch / "warm", timeout=10)
    keys = targets[: spec["warm_keys"]]
    for unit_mode in ("no unit", "with unit"):
        calls = [(slug, unit if unit_mode == "with unit" else None) for slug, unit in keys]
        for slug, unit in calls:
            warm.get_prompt(slug, ENVIRONMENT, unit=unit)
        n, ends = 0, time.perf_counter() + duration
        started = time.perf_counter()
        while time.perf_counter() < ends:
            for slug, unit in calls:
                warm.get_prompt(slug, ENVIRONMENT, unit=unit)
            n += len(calls)
        figures[f"warm, {unit_mode}"] = n / (time.perf_counter() - started)
    warm.close()

    auth = {"Authorization": f"Bearer {token}"}
    urls = [f"{base}/api/v1/prompts/{slug}/resolve?environment={ENVIRONMENT}&unit={unit}" for slug, unit in targets]
    rng = random.Random(3)
    order = [rng.randrange(len(targets)) for _ in range(1000)]

    def plain(index, n):
        request = urllib.request.Request(urls[order[(index * 97 + n) % 1000]], headers=auth)  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - a localhost URL
            if answer.status != 200 or not answer.read():
                raise RuntimeError(f"plain GET answered {answer.status}")

    def cold(cache_dir):
        def step(index, n):
            slug, unit = targets[order[(index * 97 + n) % 1000]]
            client = Client(url=base, token=token, cache_dir=cache_dir, timeout=10)
            if client.get_prompt(slug, ENVIRONMENT, unit=unit).source != "server":
                raise RuntimeError("a cold get_prompt was not answered by the server")
        return step

    scenarios = [
        ("plain GET", plain),
        ("cold, disk copy written", cold(scratch / "cold")),
        ("cold, cache_dir=False", cold(False)),
    ]
    for _name, step in scenarios:  # an untimed pass, so no scenario meets a cold server
        _threads(concurrency, min(1.0, duration), step)
    runs = {name: [] for name, _ in scenarios}
    for round_ in range(spec["rounds"]):
        for name, step in scenarios[round_ % 3:] + scenarios[: round_ % 3]:
            runs[name].append(_threads(concurrency, duration, step))
    for name, rates in runs.items():
        figures[name] = statistics.median(rates)
        figures[f"{name} rounds"] = rates
    for name in ("cold, disk copy written", "cold, cache_dir=False"):
        figures[f"{name} ratio"] = statistics.median(
            c / p for c, p in zip(runs[name], runs["plain GET"], strict=True)
        )
    return figures


def measure_main(spec_path):
    try:
        print(json.dumps(measure(json.loads(Path(spec_path).read_text()))))
    except Exception as exc:  # noqa: BLE001 - the parent reports it
        print(json.dumps({"error": f"the measuring process failed: {exc!r}"}))


# --- the run --------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="the database to reset and seed")
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--warm-keys", type=int, default=200, help="prompts the warm loop goes over")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (plain, cold with disk, cold without)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads for cold and plain")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 prompts, one round of 1 s runs")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the measuring process: its spec file
    args = parser.parse_args(argv)
    if args.quick:
        args.prompts, args.duration, args.rounds = min(args.prompts, 200), 1.0, 1
    if args.prompts < 2 or args.rounds < 1 or args.concurrency < 1:
        parser.error("--prompts must be at least 2, --rounds and --concurrency at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.measure:
        measure_main(args.measure)
        return 0
    gunicorn = find_gunicorn()
    with scratch_run("promptledger-bench-client-") as (procs, scratch):
        return run(args, procs, gunicorn, scratch)


def run(args, procs, gunicorn, scratch):
    from resolve import seed  # the same data as the resolve benchmark

    print(f"resetting {database_name(args.database_url)} and seeding {args.prompts:,} prompts ...", flush=True)
    reset_database(args.database_url)
    env = server_env(args.database_url, scratch / "var")
    setup_django_here(env)
    token, paths, _ = seed(prompts=args.prompts, canary_every=200, canary_percent=10)
    targets = []
    for path, _etag in paths:
        parts = urlsplit(path)
        targets.append((parts.path.split("/")[4], parse_qs(parts.query)["unit"][0]))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app_log = open(scratch / "app.log", "wb")  # noqa: SIM115 - closed with the scratch folder
    served = gunicorn_args(port, workers=args.workers, threads=args.threads)
    app = procs.start([gunicorn, "--chdir", str(REPO), *served, "config.wsgi:application"],
                      env=env, cwd=REPO, stdout=app_log, stderr=subprocess.STDOUT)
    wait_until_up(app, base + paths[0][0], {"Authorization": f"Bearer {token}"}, "the app")

    spec = scratch / "spec.json"
    spec.write_text(json.dumps({
        "base": base, "token": token, "targets": targets, "warm_keys": min(args.warm_keys, len(targets)),
        "duration": args.duration, "rounds": args.rounds, "concurrency": args.concurrency,
        "scratch": tempfile.mkdtemp(dir=scratch),
    }))
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PROMPTLEDGER_"))}
    child_env["PYTHONPATH"] = str(REPO)
    print(
        f"gunicorn gthread {args.workers} workers x {args.threads} threads; the client in its own process; "
        f"{args.rounds} round(s) of {args.duration:g} s runs, {args.concurrency} client threads for cold and plain",
        flush=True,
    )
    f = run_json_client(procs, [str(Path(__file__).resolve()), "--measure", str(spec)], env=child_env, cwd=REPO)

    print()
    print(f"warm-cache get_prompt, one process, one thread, {min(args.warm_keys, len(targets))} prompts held:")
    print(f"  no unit              {f['warm, no unit']:>12,.0f} calls/s")
    print(f"  with a unit          {f['warm, with unit']:>12,.0f} calls/s")
    print(f"cold, {args.concurrency} threads against the running server (a new Client each call):")
    print(f"  plain urllib GET     {f['plain GET']:>12,.0f} req/s")
    for name in ("cold, disk copy written", "cold, cache_dir=False"):
        label = "get_prompt, disk" if "disk" in name else "get_prompt, no disk"
        rounds = ", ".join(f"{x:,.0f}" for x in f[f"{name} rounds"])
        print(f"  {label:<20} {f[name]:>12,.0f} fetches/s   {f[f'{name} ratio']:.2f}x plain   (rounds {rounds})")
    print(f"(medians of {args.rounds} round(s); the ratio is the median of each round's back-to-back ratio)")
    return 0


if __name__ == "__main__":
    if "--measure" in sys.argv:  # the measuring process: no harness, no Django
        sys.exit(main())
    run_main(main)
