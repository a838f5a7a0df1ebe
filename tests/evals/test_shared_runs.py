"""A run shared by several worker tasks (``PROMPTLEDGER_EVAL_TASKS_PER_RUN``), through a real Celery
worker on Redis against the local provider: each task keeps its share of the run's concurrency in
flight, and the run still gets exactly one result per case."""

import pytest

from core.actors import Actor
from evals import services
from evals.models import EvalItem, EvalResult, EvalRun
from registry.models import LLMModel
from tests.evals.conftest import FAKE_OPENAI_KEY
from tests.worker import require_worker_services, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = {"provider": "openai", "name": "gpt-4o-mini-2024-07-18"}


def test_two_tasks_share_a_run_without_exceeding_its_concurrency(postgres, cast, prompt, version, tmp_path,
                                                                 fake_provider):
    require_worker_services()
    LLMModel.objects.get_or_create(
        provider=MODEL["provider"], model_id=MODEL["name"], defaults={"owner": cast["owner"], "status": "approved"}
    )
    author = Actor(user=cast["author"])
    suite = services.create_suite(actor=author, slug="shared", name="Shared", team=prompt.team)
    services.add_cases(actor=author, suite=suite, cases=[
        {"vars": {"name": f"Ada-{i}"}, "assertions": [{"type": "contains", "value": f"Ada-{i}."}]} for i in range(30)
    ])
    fake_provider.delay = 0.1
    env = {
        "OPENAI_BASE_URL": fake_provider.openai_base_url,
        "OPENAI_API_KEY": FAKE_OPENAI_KEY,
        "PROMPTLEDGER_PROVIDER_RPM": "0",
        "PROMPTLEDGER_EVAL_CONCURRENCY": "4",
        "PROMPTLEDGER_EVAL_TASKS_PER_RUN": "2",
    }
    worker = start_worker(tmp_path, env=env, name="shared")
    try:
        run = services.start_run(actor=author, prompt=prompt, version=version, suite=suite, model=MODEL)
        wait_for(lambda: EvalRun.objects.get(pk=run.pk).finished, timeout=90, message="the run to finish")
        run.refresh_from_db()
        assert run.status == "completed", worker.log()[-2000:]
        results = EvalResult.objects.filter(run=run)
        assert results.count() == 30
        assert results.values("case").distinct().count() == 30
        assert len(fake_provider.requests) == 30
        assert fake_provider.max_in_flight <= 4  # two tasks of two in flight each
        tokens = set(EvalItem.objects.filter(run=run).values_list("lease_token", flat=True))
        assert len(tokens) == 2, "both tasks took part"
    finally:
        worker.stop()
