"""A worker SIGKILLed mid-run, with the default lease settings: the run completes within 90 s of the
kill, with exactly one result per case and no case that had finished before the kill sent to the
provider again.

Real processes on PostgreSQL and Redis: a Celery worker (threads pool, so the worker is one process
and SIGKILL takes all of it at once), a replacement worker started right after the kill (as a
supervisor would), and a real ``celery beat`` with the project's schedule, whose reaper task runs
every 15 s on the workers. Nothing in the test calls the reaper or shortens a lease: the measured
time is what an operator gets, lease expiry (up to ``PROMPTLEDGER_EVAL_LEASE_SECONDS`` after the
last heartbeat) plus up to one beat interval plus the rest of the run.
"""

import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings

from core.actors import Actor
from evals import services
from evals.models import EvalItem, EvalResult, EvalRun
from registry.models import LLMModel
from tests.evals.conftest import FAKE_OPENAI_KEY
from tests.worker import QUEUE, REPO, _database_url, require_worker_services, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = {"provider": "openai", "name": "gpt-4o-mini-2024-07-18"}
CASES = 400
LATENCY = 1.2  # seconds per answer: 400 cases, 32 in flight (the default), about 15 s of work
KILL_AFTER = 200  # results written before the kill
DEFAULTS = ("PROMPTLEDGER_EVAL_LEASE_SECONDS", "PROMPTLEDGER_EVAL_MAX_CLAIMS", "PROMPTLEDGER_EVAL_CONCURRENCY")


def start_beat(tmp_path, env):
    """``celery beat`` with the project's schedule, sending to this session's queue."""
    log_path = Path(tmp_path) / f"beat-{uuid.uuid4().hex[:6]}.log"
    full_env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        "PROMPTLEDGER_VAR_DIR": str(Path(tmp_path) / "beat-var"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **env,
    }
    argv = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
            "--schedule", str(Path(tmp_path) / "celerybeat-schedule")]
    handle = log_path.open("w")
    proc = subprocess.Popen(argv, cwd=REPO, env=full_env, stdout=handle, stderr=subprocess.STDOUT)  # noqa: S603
    return proc, log_path


def calls_per_case(requests):
    """How many times the provider was asked about each case (its name is in the prompt)."""
    counted = Counter()
    for request in requests:
        found = re.search(r"Ada-(\d+)\.", str(request.body.get("messages")))
        if found:
            counted[int(found.group(1))] += 1
    return counted


def test_a_killed_workers_run_completes_within_90_seconds_with_default_leases(
    postgres, cast, prompt, version, tmp_path, fake_provider, client, capsys
):
    require_worker_services()
    overridden = [name for name in DEFAULTS if name in os.environ]
    assert not overridden, f"this test measures the defaults: unset {overridden}"
    LLMModel.objects.get_or_create(
        provider=MODEL["provider"], model_id=MODEL["name"], defaults={"owner": cast["owner"], "status": "approved"}
    )
    author = Actor(user=cast["author"])
    suite = services.create_suite(actor=author, slug="recovery", name="Recovery", team=cast["team"])
    services.add_cases(actor=author, suite=suite, cases=[
        {"vars": {"name": f"Ada-{i}"}, "assertions": [{"type": "contains", "value": f"Ada-{i}."}]}
        for i in range(CASES)
    ])
    fake_provider.delay = LATENCY
    env = {
        "OPENAI_BASE_URL": fake_provider.openai_base_url,
        "OPENAI_API_KEY": FAKE_OPENAI_KEY,
        "PROMPTLEDGER_PROVIDER_RPM": "0",
    }
    beat, beat_log = start_beat(tmp_path, env)
    first = second = None
    try:
        first = start_worker(tmp_path, env=env, name="first")
        run = services.start_run(actor=author, prompt=prompt, version=version, suite=suite, model=MODEL)
        wait_for(lambda: EvalResult.objects.filter(run=run).count() >= KILL_AFTER, timeout=60,
                 message=f"{KILL_AFTER} results")
        first.kill()
        killed_at, killed_wall = time.monotonic(), datetime.now(UTC)
        finished_before = set(EvalResult.objects.filter(run=run).values_list("position", flat=True))
        assert KILL_AFTER <= len(finished_before) < CASES
        assert EvalItem.objects.filter(run=run, status=EvalItem.CLAIMED).exists(), "killed mid-run"
        assert beat.poll() is None, beat_log.read_text()[-2000:]
        second = start_worker(tmp_path, env=env, name="second")
        wait_for(lambda: EvalRun.objects.get(pk=run.pk).finished, timeout=90, interval=0.2,
                 message="the run to finish within 90 s of the kill")
        recovered_in = time.monotonic() - killed_at
        run.refresh_from_db()
        taken_back_in = (run.resumed_at - killed_wall).total_seconds()
        with capsys.disabled():
            print(f"\nworker recovery: {len(finished_before)} of {CASES} cases done at the kill; its cases taken "
                  f"back {taken_back_in:.1f} s after it, the run completed {recovered_in:.1f} s after it "
                  f"(lease {settings.PROMPTLEDGER_EVAL_LEASE_SECONDS} s, reaper every 15 s)")
        assert recovered_in < 90
        assert run.status == EvalRun.COMPLETED, second.log()[-3000:]
        results = EvalResult.objects.filter(run=run)
        assert results.count() == CASES
        assert results.values("case").distinct().count() == CASES
        assert not results.exclude(error="").exists()
        calls = calls_per_case(fake_provider.requests)
        assert set(calls) == set(range(CASES))
        assert [p - 1 for p in finished_before if calls[p - 1] != 1] == [], "a finished case was called again"
        assert run.recoveries >= 1
        client.force_login(cast["viewer"])
        assert "worker lost, resumed at" in client.get(f"/evals/runs/{run.pk}/").content.decode()
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
        beat.terminate()
        beat.wait(timeout=30)
