"""Runs through a real Celery worker process on Redis, including one SIGKILLed mid-run."""

import pytest

from core.actors import Actor
from evals import runner
from evals.models import EvalItem, EvalResult, EvalRun
from registry.models import LLMModel
from tests.evals.conftest import FAKE_OPENAI_KEY
from tests.worker import require_worker_services, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def make_suite(actor, prompt, count, *, name="Ada"):
    from evals import services

    suite = services.create_suite(actor=actor, slug=f"bulk-{count}", name="Bulk", team=prompt.team)
    services.add_cases(
        actor=actor,
        suite=suite,
        cases=[
            {"vars": {"name": f"{name}-{i}"}, "assertions": [{"type": "contains", "value": f"{name}-{i}"}]}
            for i in range(count)
        ],
    )
    return suite


def test_a_worker_runs_a_fifty_case_suite_to_completion(postgres, cast, prompt, version, tmp_path):
    from evals import services

    require_worker_services()
    author = Actor(user=cast["author"])
    suite = make_suite(author, prompt, 50)
    worker = start_worker(tmp_path)
    try:
        run = services.start_run(actor=author, prompt=prompt, version=version, suite=suite)
        finished = wait_for(lambda: EvalRun.objects.get(pk=run.pk).finished, timeout=90, message="the run to finish")
        assert finished
        run.refresh_from_db()
        assert run.status == "completed", worker.log()[-2000:]
        assert run.pass_rate == 1.0
        assert EvalResult.objects.filter(run=run).count() == 50
    finally:
        worker.stop()


def test_a_run_survives_its_worker_being_killed(postgres, cast, prompt, version, tmp_path, fake_provider):
    from evals import services

    require_worker_services()
    LLMModel.objects.get_or_create(
        provider="openai", model_id="gpt-4o-mini-2024-07-18", defaults={"owner": cast["owner"], "status": "approved"}
    )
    author = Actor(user=cast["author"])
    suite = make_suite(author, prompt, 40)
    fake_provider.delay = 0.15
    env = {
        "OPENAI_BASE_URL": fake_provider.openai_base_url,
        "OPENAI_API_KEY": FAKE_OPENAI_KEY,
        "PROMPTLEDGER_PROVIDER_RPM": "0",
        "PROMPTLEDGER_EVAL_LEASE_SECONDS": "2",
        "PROMPTLEDGER_EVAL_CONCURRENCY": "4",
    }
    first = start_worker(tmp_path, env=env, name="first")
    try:
        run = services.start_run(
            actor=author,
            prompt=prompt,
            version=version,
            suite=suite,
            model={"provider": "openai", "name": "gpt-4o-mini-2024-07-18"},
        )
        wait_for(lambda: EvalResult.objects.filter(run=run).count() >= 8, timeout=60, message="some results")
    finally:
        first.kill()
    killed_at = EvalResult.objects.filter(run=run).count()
    assert killed_at < 40
    assert EvalItem.objects.filter(run=run, status="claimed").exists()
    second = start_worker(tmp_path, env=env, name="second")
    try:
        # The reaper (beat runs it every 15 s) re-signals the run once the dead worker's leases expire.
        wait_for(
            lambda: runner.reap() or EvalRun.objects.get(pk=run.pk).finished,
            timeout=30,
            interval=0.5,
            message="the reaper to re-signal the run",
        )
        wait_for(lambda: EvalRun.objects.get(pk=run.pk).finished, timeout=90, message="the run to finish")
        run.refresh_from_db()
        assert run.status == "completed", second.log()[-2000:]
        results = EvalResult.objects.filter(run=run)
        assert results.count() == 40
        assert results.values("case").distinct().count() == 40
        # Cases finished before the kill were not sent to the provider again.
        calls = {}
        for request in fake_provider.requests:
            text = str(request.body.get("messages"))
            for i in range(40):
                if f"Ada-{i}." in text:
                    calls[i] = calls.get(i, 0) + 1
        assert sum(1 for i in range(40) if calls.get(i) == 1) >= killed_at
        assert set(calls) == set(range(40))
    finally:
        second.stop()
