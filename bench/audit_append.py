"""Audit appends under contention: concurrent writers on PostgreSQL, events a second, chain intact.

Every change appends its events as the last step of its transaction, holding one advisory lock
(``audit.appending``) from reading the chain's head until the commit. This measures what that
costs, in one run, on a fresh database (``promptledger_bench_append`` unless ``--database-url``):

- **chained**: ``--writers`` processes (16 by default), each committing changes of one event
  through ``audit.transactions.change()`` and ``audit.services.record()``, as the services do;
  then 1 writer alone; then 16 writers whose changes hold ``--batch`` events each (what one change
  that records several events costs per event);
- **ceiling**: the same writers committing the same rows into a table with no chain and no lock
  (the hash computed all the same), so the ratio is what serialising on the chain costs;
- **diagnosis**: the chained 16 writers again with ``synchronous_commit = off`` for their sessions
  (never for production: it only shows how much of the time under the lock is the commit's flush).

It prints ``scenario | writers | events | seconds | events/s | ratio to ceiling`` and then runs
``audit.checks.verify_database``: the chain must hold every event, in order, with its
checkpoints. Exit status 0 when the chain verifies, 1 when it does not, 2 when it could not run.

    python bench/audit_append.py                 # 16 writers, 10 s a scenario
    python bench/audit_append.py --seconds 3     # quicker
"""

import argparse
import base64
import hashlib
import json
import multiprocessing
import os
import time

from harness import CouldNotRun, reset_database, run_main, scratch_run, server_env, setup_django_here

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/promptledger_bench_append"
PLAIN_TABLE = "bench_plain_events"
# Signs the benchmark's checkpoints only (not a secret), unless PROMPTLEDGER_AUDIT_SIGNING_KEY is set.
BENCH_KEY = base64.b64encode(hashlib.sha256(b"promptledger audit append benchmark key").digest()).decode()


def _writer(mode, batch, seconds, synchronous, start, results):
    """One writer process: commit changes until ``seconds`` have passed; put its event count (or
    the error that stopped it)."""
    import traceback

    try:
        results.put((_write(mode, batch, seconds, synchronous, start), None))
    except BaseException:  # noqa: BLE001 - reported by the parent, which stops the run
        results.put((0, traceback.format_exc()))


def _write(mode, batch, seconds, synchronous, start):
    from django.db import connection, transaction

    from audit.services import record
    from audit.transactions import change
    from core.actors import Actor

    actor = Actor.for_system("bench")
    if not synchronous:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
    pid = os.getpid()
    done = 0
    start.wait()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if mode == "chained":
            with change():
                for index in range(batch):
                    record(actor=actor, action="bench.append", target_type="bench", target_id=f"{pid}-{done + index}",
                           data={"writer": pid, "n": done + index})
        else:
            with transaction.atomic(), connection.cursor() as cursor:
                for index in range(batch):
                    data = json.dumps({"writer": pid, "n": done + index})
                    digest = hashlib.sha256(data.encode()).hexdigest()
                    cursor.execute(
                        f"INSERT INTO {PLAIN_TABLE} (occurred_at, action, target_id, data, hash) "  # noqa: S608
                        "VALUES (now(), 'bench.append', %s, %s::jsonb, %s)",
                        [f"{pid}-{done + index}", data, digest],
                    )
        done += batch
    return done


def scenario(mode, writers, seconds, *, batch=1, synchronous=True):
    from django.db import connections

    connections.close_all()  # each forked writer opens its own connection
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(writers + 1), context.Queue()
    procs = [context.Process(target=_writer, args=(mode, batch, seconds, synchronous, start, results))
             for _ in range(writers)]
    for proc in procs:
        proc.start()
    start.wait()
    began = time.perf_counter()
    reports = [results.get(timeout=seconds + 120) for _ in procs]
    elapsed = time.perf_counter() - began
    errors = [error for _, error in reports if error]
    if errors:
        raise CouldNotRun(f"{len(errors)} {mode} writer(s) failed; the first:\n{errors[0]}")
    counts = [count for count, _ in reports]
    for proc in procs:
        proc.join(timeout=30)
        if proc.exitcode != 0:
            raise CouldNotRun(f"a {mode} writer exited with status {proc.exitcode}")
    return {"events": sum(counts), "seconds": elapsed, "rate": sum(counts) / elapsed}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="the database to reset")
    parser.add_argument("--writers", type=int, default=16, help="concurrent writer processes (default 16)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds each scenario runs (default 10)")
    parser.add_argument("--batch", type=int, default=10, help="events a change holds in the batch scenario")
    args = parser.parse_args(argv)
    if args.writers < 1 or args.seconds <= 0 or args.batch < 1:
        parser.error("--writers and --batch must be at least 1, --seconds above 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    with scratch_run(prefix="promptledger-bench-append-") as (_procs, scratch):
        reset_database(args.database_url)
        key = os.environ.get("PROMPTLEDGER_AUDIT_SIGNING_KEY") or BENCH_KEY
        setup_django_here(server_env(args.database_url, scratch / "var", PROMPTLEDGER_AUDIT_SIGNING_KEY=key,
                                     PROMPTLEDGER_METRICS="false"))
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE {PLAIN_TABLE} (id bigserial PRIMARY KEY, occurred_at timestamptz, "
                           "action text, target_id text, data jsonb, hash text)")
        print(f"{args.writers} writer processes, {args.seconds:g} s a scenario, on {os.cpu_count()} CPUs", flush=True)
        w, b, t = args.writers, args.batch, args.seconds
        # (name, writers, result, the ceiling it is compared with)
        runs = [
            ("ceiling: no chain, no lock", w, scenario("plain", w, t), None),
            ("chained: 1 event a change", w, scenario("chained", w, t), "ceiling: no chain, no lock"),
            ("ceiling: 1 writer", 1, scenario("plain", 1, t), None),
            ("chained: 1 writer", 1, scenario("chained", 1, t), "ceiling: 1 writer"),
            (f"ceiling: {b} events a change", w, scenario("plain", w, t, batch=b), None),
            (f"chained: {b} events a change", w, scenario("chained", w, t, batch=b), f"ceiling: {b} events a change"),
            ("chained, synchronous_commit off", w, scenario("chained", w, t, synchronous=False),
             "ceiling: no chain, no lock"),
        ]
        return report(runs)


def report(runs):
    from audit.checks import verify_database

    rates = {name: result["rate"] for name, _, result, _ in runs}
    print(f"\n{'scenario':<34} | {'writers':>7} | {'events':>8} | {'seconds':>7} | {'events/s':>9} | ratio to ceiling")
    print("-" * 92)
    for name, writers, result, ceiling in runs:
        ratio = f"{result['rate'] / rates[ceiling]:.2f}x" if ceiling else "1.00x"
        print(f"{name:<34} | {writers:>7} | {result['events']:>8,} | {result['seconds']:>7.1f} | "
              f"{result['rate']:>9,.0f} | {ratio}")
    verdict = verify_database(max_checkpoint_age=0)
    print(f"\nchain: {verdict.summary()}")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    run_main(main)
