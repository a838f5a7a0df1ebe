"""The lock order under real concurrency (PostgreSQL, real threads): pushes, deploy-request opens,
pointer moves, eval runs started and finished, all on one prompt of one team at the same moment.
Before the chain lock came first, two of these were enough for ``deadlock detected``."""

import threading

import pytest
from django.db import connections

from approvals import services as approvals
from audit.checks import verify_database
from audit.models import AuditEvent
from core.actors import Actor
from evals import runner
from evals import services as evals
from evals.models import EvalResult, EvalRun
from registry.models import Deployment, Environment, PromptVersion
from registry.services import create_version, set_deployment
from tests.factories import version_body

ROUNDS = 4


def _together(workers, rounds=ROUNDS):
    """Run each ``(name, work)`` ``rounds`` times in its own thread, all released at once; returns
    the failures."""
    barrier = threading.Barrier(len(workers))
    failures = []

    def run(name, work):
        try:
            barrier.wait(timeout=20)
            for round_ in range(rounds):
                work(round_)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=worker) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    return failures


@pytest.mark.django_db(transaction=True)
def test_pushes_deploys_and_run_finishes_on_one_prompt_at_once_never_deadlock(postgres, cast, prompt, version):
    author, owner = Actor(user=cast["author"]), Actor(user=cast["owner"])
    suite = evals.create_suite(actor=author, slug="lock-order", name="Lock order", team=cast["team"])
    evals.add_cases(
        actor=author, suite=suite,
        cases=[{"vars": {"name": f"n{i}"}, "assertions": [{"type": "contains", "value": "n"}]} for i in range(3)],
    )
    development, staging = Environment.objects.get(slug="development"), Environment.objects.get(slug="staging")

    def push(tag):
        def work(round_):
            body = version_body(content=f"Write to {{{{ name }}}} ({tag} {round_}).")
            create_version(actor=author, prompt=prompt, messages=body["messages"], variables=body["variables"],
                           model=body["model"], message=f"{tag} {round_}")
        return work

    def move_pointer(round_):
        set_deployment(actor=owner, prompt=prompt, environment=development, version=version)

    def open_request(round_):
        latest = PromptVersion.objects.filter(prompt=prompt).order_by("-number").first()
        if latest.pk != version.pk:
            approvals.open_request(actor=author, prompt=prompt, version=latest, environment=staging,
                                   rationale=f"round {round_}")

    def run_and_finish(round_):
        run = evals.start_run(actor=author, prompt=prompt, version=version, suite=suite)
        runner.execute(run.pk)

    failures = _together([
        ("push-a", push("a")), ("push-b", push("b")), ("pointer", move_pointer), ("request", open_request),
        ("run-a", run_and_finish), ("run-b", run_and_finish),
    ])

    assert failures == []
    numbers = list(PromptVersion.objects.filter(prompt=prompt).order_by("number").values_list("number", flat=True))
    assert numbers == list(range(1, 2 * ROUNDS + 2))
    runs = EvalRun.objects.filter(prompt=prompt)
    assert runs.count() == 2 * ROUNDS
    assert set(runs.values_list("status", flat=True)) == {EvalRun.COMPLETED}
    assert EvalResult.objects.filter(run__prompt=prompt).count() == 2 * ROUNDS * 3
    assert Deployment.objects.get(prompt=prompt, environment=development).version_id == version.pk
    assert AuditEvent.objects.filter(action="eval_run.completed").count() == 2 * ROUNDS
    report = verify_database(save=False, max_checkpoint_age=0)
    assert report.ok, report.summary()


@pytest.mark.django_db(transaction=True)
def test_a_deadlock_postgresql_breaks_is_retried_and_both_changes_go_through(postgres):
    from collections import Counter

    from django.db import transaction

    from audit.transactions import lock_rows, retry_transient
    from registry.models import Team
    from tests.factories import TeamFactory

    a, b = TeamFactory(slug="a", name="A"), TeamFactory(slug="b", name="B")
    crossed = threading.Barrier(2)
    attempts = Counter()

    def crossing(name, first, second):
        @retry_transient
        def work(round_):
            attempts[name] += 1
            with transaction.atomic():
                lock_rows(Team.objects).get(pk=first.pk)
                if attempts[name] == 1:
                    crossed.wait(timeout=10)  # each holds one row and asks for the other's
                lock_rows(Team.objects).get(pk=second.pk)
                Team.objects.filter(pk=first.pk).update(name=first.name + name)
        return work

    failures = _together([("x", crossing("x", a, b)), ("y", crossing("y", b, a))], rounds=1)
    assert failures == []
    assert sorted(attempts.values()) == [1, 2]  # PostgreSQL broke the cycle once; that side ran again
    assert sorted(Team.objects.values_list("name", flat=True)) == ["Ax", "By"]


def test_a_failure_that_persists_through_the_retries_is_busy_not_a_500():
    from django.db import OperationalError

    from audit.transactions import ATTEMPTS, retry_transient
    from core.errors import Busy

    class Deadlock(Exception):
        sqlstate = "40P01"

    calls = []

    @retry_transient
    def always_deadlocks():
        calls.append(1)
        raise OperationalError("deadlock detected") from Deadlock()

    with pytest.raises(Busy) as caught:
        always_deadlocks()
    assert len(calls) == ATTEMPTS
    assert caught.value.status == 503 and caught.value.code == "busy"
