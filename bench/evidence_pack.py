"""How long an evidence pack takes to build, how big it is and what is in it, for the demo's deployed
Tier-0 request (fraud-hold-explanation v3, approved by two named approvers and deployed), on a fresh
PostgreSQL database (``promptledger_bench_evidence`` unless ``--database-url``) loaded with
``manage.py bootstrap_demo``; then ``python -S -m audit.verify`` on the pack, timed too.

It prints each file of the pack with its size, the ZIP's size, and ``build | runs | median s |
max s | ceiling s | ratio``; exit 0 when the median build is under the ceiling (``--ceiling``, 2 s by
default: a download someone waits for) and the pack verifies, 1 otherwise, 2 when it could not run.

    python bench/evidence_pack.py             # 5 builds
    python bench/evidence_pack.py --runs 20
"""

import argparse
import base64
import hashlib
import io
import statistics
import subprocess
import sys
import time
import zipfile

from harness import REPO, CouldNotRun, reset_database, run_main, scratch_run, server_env, setup_django_here

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/promptledger_bench_evidence"
# Signs the benchmark's checkpoints only (not a secret), unless PROMPTLEDGER_AUDIT_SIGNING_KEY is set.
BENCH_KEY = base64.b64encode(hashlib.sha256(b"promptledger evidence pack benchmark key").digest()).decode()


def _build_demo(database_url, scratch):
    reset_database(database_url)
    setup_django_here(server_env(database_url, scratch, PROMPTLEDGER_AUDIT_SIGNING_KEY=BENCH_KEY,
                                 CELERY_TASK_ALWAYS_EAGER="1"))
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    call_command("bootstrap_demo", stdout=io.StringIO())
    return time.perf_counter() - started


def _request():
    from approvals.models import DeployRequest

    request = (
        DeployRequest.objects.filter(status=DeployRequest.DEPLOYED, kind=DeployRequest.DEPLOY, tier=0)
        .select_related("prompt").order_by("id").first()
    )
    if request is None:
        raise CouldNotRun("the demo has no deployed Tier-0 request")
    return request


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ceiling", type=float, default=2.0, help="seconds a median build may take")
    args = parser.parse_args()
    with scratch_run("promptledger-bench-evidence-") as (_procs, scratch):
        loaded = _build_demo(args.database_url, scratch)
        from django.contrib.auth import get_user_model

        from audit import signing
        from core.actors import Actor
        from risk.evidence.builder import build_evidence_pack

        request = _request()
        actor = Actor(user=get_user_model().objects.get(username="compliance"))
        times, pack = [], None
        for _ in range(args.runs):
            started = time.perf_counter()
            pack = build_evidence_pack(actor=actor, request_id=request.pk)
            times.append(time.perf_counter() - started)
        path = scratch / pack.filename
        path.write_bytes(pack.content)
        started = time.perf_counter()
        verified = subprocess.run(
            [sys.executable, "-S", "-m", "audit.verify", str(path), "--public-key", signing.public_key_b64()],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )
        verify_seconds = time.perf_counter() - started
    print(f"demo loaded in {loaded:.1f} s; request #{request.pk}: {request.title}")
    with zipfile.ZipFile(io.BytesIO(pack.content)) as archive:
        for info in archive.infolist():
            print(f"  {info.filename:<26} {info.file_size:>8} bytes ({info.compress_size} compressed)")
    print(f"  {'ZIP':<26} {len(pack.content):>8} bytes")
    median = statistics.median(times)
    print("build | runs | median s | max s | ceiling s | ratio")
    print(f"evidence pack | {args.runs} | {median:.3f} | {max(times):.3f} | {args.ceiling:.1f} | "
          f"{median / args.ceiling:.2f}")
    print(f"python -S -m audit.verify: {verify_seconds:.2f} s: {verified.stdout.splitlines()[0]}")
    return 0 if median <= args.ceiling and verified.returncode == 0 else 1


if __name__ == "__main__":
    run_main(main)
