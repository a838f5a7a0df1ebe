"""Eval spend with known costs, written straight to the tables a run's results fill: a run of a
one-case-per-result suite on a prompt's version, each result costing what the test says, dated
when the test says (results' ``created_at`` is the month their cost counts in)."""

import itertools

from django.utils import timezone

from core.actors import Actor
from evals.models import Case, EvalResult, EvalRun, Suite
from registry.services import create_version
from tests.factories import version_body

_numbers = itertools.count(1)


def first_version(prompt, author):
    version = prompt.versions.order_by("number").first()
    if version is None:
        body = version_body()
        version, _ = create_version(
            actor=Actor(user=author), prompt=prompt, messages=body["messages"], variables=body["variables"],
            model=body["model"], message="first",
        )
    return version


def record_spend(prompt, author, costs, *, llm, when=None):
    """One finished run of ``prompt`` on ``llm`` with one result per entry of ``costs`` (USD)."""
    version = first_version(prompt, author)
    suite = Suite.objects.create(slug=f"spend-{next(_numbers)}", name="Spend", team=prompt.team)
    run = EvalRun.objects.create(
        prompt=prompt, version=version, content_hash=version.content_hash, suite=suite, llm_model=llm,
        model_config={"provider": llm.provider, "name": llm.model_id, "params": {}}, total=len(costs),
        status=EvalRun.COMPLETED, finished_at=timezone.now(),
    )
    for position, cost in enumerate(costs, start=1):
        case = Case.objects.create(suite=suite, position=position, vars={"name": "Ada"}, assertions=[])
        EvalResult.objects.create(run=run, case=case, position=position, passed=True, cost_usd=cost)
    if when is not None:
        EvalResult.objects.filter(run=run).update(created_at=when)
    return run
