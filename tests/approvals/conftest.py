"""Approvals fixtures: a Tier-0 prompt of team 'payments' with two named approvers, a passing gate
on version 1 and version 1 live in production, so a request for version 2 is one step from
deployable. ``act(name)`` is the Actor of a cast member."""

import asyncio
import threading

import pytest
from django.db import connection

from approvals import administration
from core.actors import Actor
from evals import runner
from evals.gates import set_gate
from evals.models import Suite
from evals.services import add_cases, create_suite, start_run
from registry.models import Environment, Membership
from registry.services import create_version, set_deployment
from tests.factories import MembershipFactory, UserFactory, version_body

CASES = [{"vars": {"name": n}, "assertions": [{"type": "contains", "value": n}]} for n in ("Ada", "Grace")]


def act(user):
    """``user`` acting from a browser session that signed in just now."""
    from django.utils import timezone

    return Actor(user=user, authenticated_at=timezone.now())


def push(cast, prompt, content, author="author"):
    body = version_body(content)
    made, _ = create_version(
        actor=act(cast[author]), prompt=prompt, messages=body["messages"], variables=body["variables"],
        model=body["model"], message="change",
    )
    return made


def run_suite(cast, prompt, version, suite="core"):
    run = start_run(
        actor=act(cast["owner"]), prompt=prompt, version=version, suite=Suite.objects.get(slug=suite)
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop here: run in this thread, inside the test's transaction
        runner.execute(run.pk)
        return run
    # Playwright's loop owns this thread (browser tests, whose data is committed): use another.
    worker = threading.Thread(target=_execute, args=(run.pk,))
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    return run


def _execute(run_id):
    try:
        runner.execute(run_id)
    finally:
        connection.close()


@pytest.fixture
def production(environments):
    return Environment.objects.get(slug="production")


@pytest.fixture
def flow(cast, prompt, version, production):
    """Tier-0 'loan-letter': v1 live in production, v2 pushed by 'author' with a passing gate,
    named approvers 'approver' and 'approver2'."""
    cast["approver2"] = UserFactory(username="approver2")
    MembershipFactory(team=cast["team"], user=cast["approver2"], role=Membership.APPROVER)
    cast["approver3"] = UserFactory(username="approver3")
    MembershipFactory(team=cast["team"], user=cast["approver3"], role=Membership.APPROVER)
    prompt.tier = 0
    prompt.save()
    owner = act(cast["owner"])
    suite = create_suite(actor=owner, slug="core", name="Core", team=cast["team"])
    add_cases(actor=owner, suite=suite, cases=CASES)
    set_gate(actor=owner, prompt=prompt, suites=[{"suite": "core", "min_pass_rate": 0.9}], max_regression=0.1)
    administration.set_named_approvers(actor=owner, prompt=prompt, approvers=["approver", "approver2"])
    set_deployment(actor=owner, prompt=prompt, environment=production, version=version)
    v2 = push(cast, prompt, "Dear {{ name }}, here is your letter.")
    run_suite(cast, prompt, version)
    run_suite(cast, prompt, v2)
    cast["v1"], cast["v2"] = version, v2
    return cast
