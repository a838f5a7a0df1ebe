"""Leases in process (no worker, no broker): the heartbeat renews only its own worker's leases and
keeps a slow case's lease alive; the reaper takes back expired leases, closes a case that lost its
worker on every one of ``PROMPTLEDGER_EVAL_MAX_CLAIMS`` claims with an error result, gives a run
left without a worker a new one, and the run page says so; a slow old holder and its successor
write each result once. The same with real processes: ``test_worker_recovery.py``."""

import json
import math
from datetime import timedelta

import pytest
from django.utils import timezone

from core.actors import Actor
from evals import queueing, runner, services
from evals.models import EvalItem, EvalResult, EvalRun
from registry.models import LLMModel
from tests.conftest import need_service

MODEL = {"provider": "openai", "name": "gpt-4o-mini-2024-07-18"}


@pytest.fixture
def run(cast, prompt, version):
    author = Actor(user=cast["author"])
    suite = services.create_suite(actor=author, slug="leases", name="Leases", team=cast["team"])
    services.add_cases(actor=author, suite=suite, cases=[
        {"vars": {"name": name}, "assertions": [{"type": "contains", "value": name}]} for name in ("Ada", "Grace")
    ])
    return services.start_run(actor=author, prompt=prompt, version=version, suite=suite)


@pytest.fixture
def signals(monkeypatch):
    """What the reaper queued, instead of messages on a broker."""
    sent = []
    monkeypatch.setattr(queueing, "enqueue", lambda run_id, copies=1: sent.append((run_id, copies)))
    return sent


def expire(token):
    EvalItem.objects.filter(lease_token=token).update(lease_until=timezone.now() - timedelta(seconds=1))


def running(run):
    EvalRun.objects.filter(pk=run.pk).update(status=EvalRun.RUNNING, started_at=timezone.now())


def test_the_heartbeat_renews_its_own_leases_only(run, settings):
    settings.PROMPTLEDGER_EVAL_LEASE_SECONDS = 30
    mine, theirs = runner.claim(run.pk, 1, "mine"), runner.claim(run.pk, 1, "theirs")
    soon = timezone.now() + timedelta(seconds=2)
    EvalItem.objects.filter(run=run).update(lease_until=soon)
    before = timezone.now()
    assert runner.renew(run.pk, "mine") == 1
    renewed = EvalItem.objects.get(pk=mine[0].pk).lease_until
    assert before + timedelta(seconds=30) <= renewed <= timezone.now() + timedelta(seconds=30)
    assert EvalItem.objects.get(pk=theirs[0].pk).lease_until == soon
    runner.write_result(mine[0], "mine", {"passed": True})
    assert runner.renew(run.pk, "mine") == 0  # a done item holds no lease


def test_a_case_slower_than_the_lease_keeps_it_while_its_worker_lives(cast, prompt, version, settings,
                                                                    fake_provider, monkeypatch):
    settings.PROMPTLEDGER_EVAL_LEASE_SECONDS = 1  # a beat every third of a second
    settings.PROMPTLEDGER_PROVIDER_RPM = 0
    LLMModel.objects.create(provider="openai", model_id=MODEL["name"], owner=cast["owner"], status="approved")
    author = Actor(user=cast["author"])
    suite = services.create_suite(actor=author, slug="slow", name="Slow", team=cast["team"])
    services.add_cases(actor=author, suite=suite, cases=[
        {"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "Ada"}]}
    ])
    run = services.start_run(actor=author, prompt=prompt, version=version, suite=suite, model=MODEL)
    fake_provider.delay = 1.6  # longer than the lease
    beats = []

    def renew(run_id, token):
        renewed = runner.leasing.renew(run_id, token)
        beats.append((renewed, EvalItem.objects.get(run_id=run_id).lease_until, timezone.now()))
        return renewed

    claimed = []

    def claim(*args):
        items = runner.leasing.claim(*args)
        claimed.extend(items)
        return items

    monkeypatch.setattr(runner.driving, "renew", renew)
    monkeypatch.setattr(runner.driving, "claim", claim)
    runner.execute(run.pk)
    run.refresh_from_db()
    assert run.status == "completed"
    assert len(claimed) == 1 and claimed[0].claims == 1
    held = [beat for beat in beats if beat[0]]  # beats while the case was in flight
    assert len(held) >= 3
    assert all(lease_until - at >= timedelta(seconds=0.9) for _, lease_until, at in held)
    assert held[-1][1] > claimed[0].lease_until + timedelta(seconds=0.5)  # moved on, past the claim's lease
    assert run.recoveries == 0 and run.resumed_at is None


def test_a_case_that_loses_its_worker_on_every_claim_gets_an_error_result(run, settings, signals):
    settings.PROMPTLEDGER_EVAL_MAX_CLAIMS = 3
    running(run)
    for attempt in (1, 2, 3):
        assert len(runner.claim(run.pk, 5, f"worker-{attempt}")) == 2
        expire(f"worker-{attempt}")
        assert runner.reap() == [run.pk]  # taken back and given a worker, then (the third time) closed
    assert signals == [(run.pk, 1), (run.pk, 1)]
    assert list(EvalItem.objects.filter(run=run).values_list("status", "claims")) == [(EvalItem.DONE, 3)] * 2
    results = EvalResult.objects.filter(run=run)
    assert {(r.passed, r.error) for r in results} == {(False, "worker_lost: worker lost 3 times on this case")}
    assert results.count() == 2
    run.refresh_from_db()
    assert run.status == EvalRun.COMPLETED_WITH_ERRORS
    assert run.summary["errors"] == 2
    assert run.recoveries == 3 and run.resumed_at is not None


def test_a_slow_old_worker_and_its_successor_write_each_result_once(run, signals):
    running(run)
    slow = runner.claim(run.pk, 5, "slow")
    expire("slow")
    runner.reap()  # taken back: pending again
    assert runner.write_results("slow", [(slow[0], {"passed": True})]) == 0  # no longer its lease
    new = runner.claim(run.pk, 5, "new")
    assert runner.write_results("new", [(item, {"passed": True}) for item in new]) == 2
    assert runner.write_results("slow", [(item, {"passed": False}) for item in slow]) == 0
    assert runner.write_result(slow[1], "slow", {"passed": False}) is False
    assert list(EvalResult.objects.filter(run=run).values_list("passed", flat=True)) == [True, True]


def test_a_claim_does_not_take_over_an_expired_lease_at_the_claim_limit(run, settings, signals):
    settings.PROMPTLEDGER_EVAL_MAX_CLAIMS = 1
    running(run)
    first = runner.claim(run.pk, 2, "lost")
    expire("lost")
    assert runner.claim(run.pk, 2, "next") == []  # the reaper closes them instead
    assert runner.reap() == [run.pk]
    assert set(EvalItem.objects.filter(run=run).values_list("status", flat=True)) == {EvalItem.DONE}
    assert EvalResult.objects.filter(run=run, error__startswith="worker_lost:").count() == len(first) == 2
    assert signals == []  # nothing left to run
    assert EvalRun.objects.get(pk=run.pk).status == EvalRun.COMPLETED_WITH_ERRORS


def test_a_claim_that_takes_over_an_expired_lease_records_the_recovery(run, signals):
    running(run)
    runner.claim(run.pk, 1, "lost")
    expire("lost")
    taken = runner.claim(run.pk, 2, "next")
    assert [(item.position, item.claims) for item in taken] == [(1, 2), (2, 1)]
    recovered = EvalRun.objects.get(pk=run.pk)
    assert recovered.recoveries == 1 and recovered.resumed_at is not None
    assert runner.reap() == [] and signals == []  # live leases: nothing to do


def test_the_reaper_gives_a_run_whose_task_was_lost_a_worker_once_a_lease(run, settings, signals):
    settings.PROMPTLEDGER_EVAL_LEASE_SECONDS = 30
    running(run)
    assert runner.reap() == []  # just started: its worker is about to claim
    EvalRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(seconds=31))
    assert runner.reap() == [run.pk]  # started a lease ago, nothing claimed, nobody holds a lease
    assert runner.reap() == []  # its task is on the way: not signalled again within a lease
    assert signals == [(run.pk, 1)]
    EvalRun.objects.filter(pk=run.pk).update(resumed_at=timezone.now() - timedelta(seconds=31))
    runner.claim(run.pk, 1, "alive")
    assert runner.reap() == []  # a live lease: its worker is there
    assert signals == [(run.pk, 1)]


def test_the_run_page_says_its_worker_was_lost_and_it_resumed(client, cast, run):
    client.force_login(cast["viewer"])
    assert "worker lost" not in client.get(f"/evals/runs/{run.pk}/").content.decode()
    EvalRun.objects.filter(pk=run.pk).update(status=EvalRun.RUNNING, recoveries=2, resumed_at=timezone.now())
    body = client.get(f"/evals/runs/{run.pk}/").content.decode()
    assert body.count("worker lost, resumed at <time") == 1  # in the live status, not twice
    assert "(2 times)" in body
    live = client.get(f"/evals/runs/{run.pk}/progress/", HTTP_HX_REQUEST="true").content.decode()
    assert "worker lost, resumed at" in live


def test_a_batch_writes_each_held_item_once_with_its_fields_and_marks_it_done(run, signals):
    running(run)
    first, second = runner.claim(run.pk, 5, "w")
    verdicts = [{"type": "contains", "passed": True, "score": 1.0, "reason": ""}]
    fields = {"output": "Dear Ada", "passed": True, "verdicts": verdicts, "latency_ms": 20.5, "input_tokens": 7,
              "output_tokens": 3, "cost_usd": 0.25, "attempts": 2}
    assert runner.write_results("w", [(first, fields), (first, {"passed": False}), (second, {"passed": False})]) == 2
    written = {r.case_id: r for r in EvalResult.objects.filter(run=run)}
    ada = written[first.case_id]
    assert (ada.output, ada.passed, ada.verdicts, ada.latency_ms, ada.input_tokens, ada.output_tokens,
            ada.cost_usd, ada.error, ada.attempts, ada.position) == (
        "Dear Ada", True, verdicts, 20.5, 7, 3, 0.25, "", 2, first.position)
    other = written[second.case_id]
    assert (other.passed, other.verdicts, other.output, other.attempts) == (False, [], "", 0)
    assert set(EvalItem.objects.filter(run=run).values_list("status", "lease_until")) == {(EvalItem.DONE, None)}


def test_a_batch_meeting_a_result_already_written_writes_the_others_item_by_item(run, signals):
    running(run)
    first, second = runner.claim(run.pk, 5, "w")
    EvalResult.objects.create(run_id=run.pk, case_id=first.case_id, position=first.position, passed=False)
    assert runner.write_results("w", [(first, {"passed": True}), (second, {"passed": True})]) == 1
    assert sorted(EvalResult.objects.filter(run=run).values_list("position", "passed")) == [
        (first.position, False), (second.position, True)]
    assert EvalItem.objects.get(pk=second.pk).status == EvalItem.DONE
    assert EvalItem.objects.get(pk=first.pk).status == EvalItem.CLAIMED  # its lease runs out; the reaper closes it


def test_a_claim_returns_what_running_and_writing_a_case_need(run, signals):
    running(run)
    before = timezone.now()
    first, second = runner.claim(run.pk, 5, "w")
    stored = EvalItem.objects.get(pk=first.pk)
    assert (first.run_id, first.case_id, first.position, first.snapshot, first.claims, first.lease_until) == (
        run.pk, stored.case_id, stored.position, stored.snapshot, 1, stored.lease_until)
    assert first.snapshot["vars"] == {"name": "Ada"} and second.snapshot["vars"] == {"name": "Grace"}
    assert first.lease_until > before


def test_a_batch_stores_what_postgresql_cannot_with_a_replacement_character(run, signals):
    running(run)
    first, second = runner.claim(run.pk, 5, "w")
    odd = [{"type": "llm_judge", "name": "tone\x00", "passed": False, "score": 0.0, "reason": "said \ud800",
            "weight": 1.0, "details": {"quote\x00": ["a\x00b"]}}]
    plain = [{"type": "contains", "name": None, "passed": True, "score": 1.0, "reason": r"a \u0000 as text",
              "weight": 1.0, "details": {}}]
    assert runner.write_results("w", [
        (first, {"output": "x\x00y\udfff", "passed": False, "verdicts": odd, "error": "judge: \x00"}),
        (second, {"output": r"C:\u0000", "passed": True, "verdicts": plain}),
    ]) == 2
    written = {r.case_id: r for r in EvalResult.objects.filter(run=run)}
    ada, grace = written[first.case_id], written[second.case_id]
    assert (ada.output, ada.error) == ("x\ufffdy\ufffd", "judge: \ufffd")
    assert ada.verdicts == [{**odd[0], "name": "tone\ufffd", "reason": "said \ufffd",
                             "details": {"quote\ufffd": ["a\ufffdb"]}}]
    assert (grace.output, grace.verdicts) == (r"C:\u0000", plain)  # a backslash and "u0000" are text, kept


def test_a_batch_stores_figures_json_has_no_number_for(postgres, run, signals):
    running(run)
    first, second = runner.claim(run.pk, 5, "w")
    assert runner.write_results("w", [(first, {"passed": True, "latency_ms": float("nan")}),
                                      (second, {"passed": True, "latency_ms": float("inf")})]) == 2
    latencies = {r.case_id: r.latency_ms for r in EvalResult.objects.filter(run=run)}
    assert math.isnan(latencies[first.case_id]) and latencies[second.case_id] == math.inf


# --- A drive's own connection (PostgreSQL, outside a transaction: as in a worker) ------------------


def on_own_connection(step):
    """Run ``step(store)`` as a drive does: on an event loop, with the store ``_Store.open`` picks."""
    from asgiref.sync import async_to_sync

    async def drive():
        store = await runner.driving._Store.open()
        try:
            return store, await step(store)
        finally:
            await store.close()

    return async_to_sync(drive)()


@pytest.mark.django_db(transaction=True)
def test_a_drive_outside_a_transaction_claims_on_its_own_connection(postgres, run, signals):
    running(run)
    store, items = on_own_connection(lambda store: store.claim(run.pk, 5, "w"))
    assert store.direct is not None
    assert [(i.position, i.snapshot["vars"]["name"], i.claims) for i in items] == [(1, "Ada", 1), (2, "Grace", 1)]
    assert all(i.run_id == run.pk and i.lease_until > timezone.now() for i in items)
    assert set(EvalItem.objects.filter(run=run).values_list("status", "lease_token")) == {(EvalItem.CLAIMED, "w")}
    assert on_own_connection(lambda store: store.claim(run.pk, 5, "other"))[1] == []  # nothing left open


@pytest.mark.django_db(transaction=True)
def test_a_lease_taken_over_on_a_drives_connection_is_recorded(postgres, run, signals):
    running(run)
    runner.claim(run.pk, 5, "lost")
    expire("lost")
    _, items = on_own_connection(lambda store: store.claim(run.pk, 5, "next"))
    assert [i.claims for i in items] == [2, 2]
    assert EvalRun.objects.get(pk=run.pk).recoveries == 1


@pytest.mark.django_db(transaction=True)
def test_a_drive_writes_each_result_once_on_its_own_connection(postgres, run, signals):
    running(run)
    first, second = runner.claim(run.pk, 5, "w")
    # A result already there for the first case (an earlier holder's): the batch statement fails on
    # the unique constraint, changes nothing, and the batch is written item by item.
    EvalResult.objects.create(run=run, case_id=first.case_id, position=first.position, passed=False, verdicts=[])
    batch = [(first, {"passed": True, "output": "Ada."}), (second, {"passed": True, "output": "Grace.",
                                                               "latency_ms": float("nan")})]
    _, written = on_own_connection(lambda store: store.write_results("w", batch))
    assert written == 1
    results = {r.case_id: r for r in EvalResult.objects.filter(run=run)}
    assert (results[first.case_id].passed, results[second.case_id].output) == (False, "Grace.")
    assert math.isnan(results[second.case_id].latency_ms)
    assert EvalItem.objects.get(pk=second.pk).status == EvalItem.DONE
    _, again = on_own_connection(lambda store: store.write_results("w", batch))
    assert again == 0 and EvalResult.objects.filter(run=run).count() == 2


def test_a_drive_inside_a_transaction_uses_djangos_connection(postgres, run, signals):
    running(run)  # a test's transaction: what it wrote is not committed, so only this connection sees it
    store, items = on_own_connection(lambda store: store.claim(run.pk, 5, "w"))
    assert store.direct is None and len(items) == 2


@pytest.mark.django_db(transaction=True)
def test_a_drives_connection_assumes_the_role_djangos_does(postgres, monkeypatch):
    role = "promptledger_test_drive_role"
    with postgres.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        need_service("a PostgreSQL superuser (to make a role)", cursor.fetchone()[0],
                     "connect as postgres, as CI does")
        cursor.execute(f"DROP ROLE IF EXISTS {role}; CREATE ROLE {role} NOLOGIN")
    try:
        monkeypatch.setitem(postgres.settings_dict["OPTIONS"], "assume_role", role)

        async def who(store):
            return await (await store.direct.execute("SELECT current_user")).fetchone()

        store, (user,) = on_own_connection(who)
        assert store.direct is not None and user == role
    finally:
        with postgres.cursor() as cursor:
            cursor.execute(f"DROP ROLE IF EXISTS {role}")


def test_a_claim_reads_the_index_of_open_items_only(postgres, run, signals):
    # The partial index holds every item a claim may take and no done one; through (run, case), or
    # an index of every item's status, a claim walked the run's done items too.
    running(run)
    statement = runner.leasing._claim_statement(run.pk, 5, "w", timezone.now())
    with postgres.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # two items: a table scan would be cheaper
        cursor.execute(f"EXPLAIN (FORMAT JSON) {statement.sql}", statement.params)
        plan = json.dumps(cursor.fetchone()[0])
    assert "eval_item_open_idx" in plan and "eval_item_unique" not in plan
