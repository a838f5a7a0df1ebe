"""The audit chain: append-only for real, tampering found and named, concurrent writers never fork it."""

import datetime
import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from audit.chain import GENESIS, event_hash
from audit.checks import iter_chain_rows, verify_database
from audit.models import AppendOnlyError, AuditEvent
from audit.services import AuditOutsideTransaction, record, write_checkpoint
from audit.transactions import change
from core.actors import Actor


def verify(**kwargs):
    kwargs.setdefault("max_checkpoint_age", 0)
    return verify_database(save=False, **kwargs)


def test_events_chain_from_genesis(make_events):
    events = make_events(3)
    assert [e.sequence for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS
    assert events[1].prev_hash == events[0].hash
    report = verify()
    assert report.ok, report.summary()
    assert (report.first, report.last, report.count) == (1, 3, 3)


@pytest.mark.django_db(transaction=True)
def test_record_refuses_to_run_outside_a_transaction():
    with pytest.raises(AuditOutsideTransaction):
        record(actor=Actor.for_system(), action="x", target_type="y")
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_record_refuses_a_transaction_that_is_not_a_change():
    with pytest.raises(AuditOutsideTransaction, match="change"), transaction.atomic():
        record(actor=Actor.for_system(), action="x", target_type="y")
    with pytest.raises(AuditOutsideTransaction, match="change"), change(), transaction.atomic():
        record(actor=Actor.for_system(), action="x", target_type="y")  # a plain savepoint could not take it back
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_nested_change_that_rolls_back_takes_its_events_back_and_the_rest_are_chained_at_the_end():
    with change():
        kept = record(actor=Actor.for_system(), action="kept", target_type="t")
        with pytest.raises(RuntimeError), change():
            record(actor=Actor.for_system(), action="dropped", target_type="t")
            raise RuntimeError("the inner change fails")
        with change():
            record(actor=Actor.for_system(), action="kept-too", target_type="t")
        assert kept.sequence is None  # not yet: the change appends its events as it ends
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["kept", "kept-too"]
    assert kept.sequence == 1 and kept.pk is not None
    report = verify_database(save=False, max_checkpoint_age=0)
    assert report.ok, report.summary()


@pytest.mark.django_db(transaction=True)
def test_a_change_inside_a_plain_savepoint_inside_a_change_is_refused():
    from audit.transactions import LockOrderError

    with pytest.raises(LockOrderError), change(), transaction.atomic(), change():
        pass


def test_the_model_refuses_update_and_delete(make_events):
    event = make_events(1)[0]
    event.action = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'rewritten'",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent",
        "TRUNCATE audit_auditcheckpoint",
        "DELETE FROM audit_auditcheckpoint",
    ],
    ids=["update", "delete", "truncate", "truncate-checkpoints", "delete-checkpoints"],
)
def test_postgres_refuses_raw_sql_changes(postgres, make_events, sql):
    make_events(2)
    write_checkpoint()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL promptledger.allow_audit_truncate = off")
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql)
    assert AuditEvent.objects.count() == 2


def test_a_changed_event_is_named(tamper, make_events):
    make_events(10)
    tamper("UPDATE audit_auditevent SET data = '{\"index\": 99}' WHERE sequence = 5")
    report = verify()
    assert not report.ok
    assert (report.problems[0].sequence, report.problems[0].kind) == (5, "changed")


def test_a_deleted_event_is_named(tamper, make_events):
    make_events(10)
    tamper("DELETE FROM audit_auditevent WHERE sequence = 5")
    report = verify()
    assert (report.problems[0].sequence, report.problems[0].kind) == (5, "missing")


def test_an_inserted_event_is_named(tamper, make_events):
    events = make_events(10)
    # Make room at 6 by renumbering the tail, then insert a well-formed event linked to event 5.
    tamper("UPDATE audit_auditevent SET sequence = sequence + 1000 WHERE sequence >= 6")
    tamper("UPDATE audit_auditevent SET sequence = sequence - 999 WHERE sequence >= 1006")
    forged = dict(next(iter_chain_rows(AuditEvent.objects.filter(sequence=5))), sequence=6, action="forged")
    forged["prev_hash"] = events[4].hash
    forged["hash"] = event_hash(forged["prev_hash"], forged)
    tamper(
        "INSERT INTO audit_auditevent (sequence, occurred_at, actor_type, actor_id, actor_username, actor_token,"
        " action, target_type, target_id, team, prompt, data, request_id, ip, user_agent, prev_hash, hash)"
        " SELECT 6, occurred_at, actor_type, actor_id, actor_username, actor_token, 'forged', target_type, target_id,"
        " team, prompt, data, request_id, ip, user_agent, %s, %s FROM audit_auditevent WHERE sequence = 5",
        [forged["prev_hash"], forged["hash"]],
    )
    report = verify()
    assert (report.problems[0].sequence, report.problems[0].kind) == (6, "inserted"), report.summary()


def test_a_reordered_event_is_named(tamper, make_events):
    make_events(6)
    tamper("UPDATE audit_auditevent SET sequence = 100 WHERE sequence = 3")
    tamper("UPDATE audit_auditevent SET sequence = 3 WHERE sequence = 4")
    tamper("UPDATE audit_auditevent SET sequence = 4 WHERE sequence = 100")
    report = verify()
    assert report.problems[0].sequence == 3
    assert report.problems[0].kind in {"changed", "inserted"}


def test_a_rehashed_rewrite_is_caught_by_the_signed_checkpoint(tamper, make_events):
    make_events(20)
    write_checkpoint()
    make_events(5)
    # A superuser rewrites event 7 and recomputes every hash after it: the chain itself is valid again.
    rows = list(iter_chain_rows())
    rows[6]["data"] = {"index": "rewritten"}
    prev = rows[5]["hash"]
    for row in rows[6:]:
        row["prev_hash"], row["hash"] = prev, event_hash(prev, row)
        prev = row["hash"]
        tamper(
            "UPDATE audit_auditevent SET data = %s::jsonb, prev_hash = %s, hash = %s WHERE sequence = %s",
            [__import__("json").dumps(row["data"]), row["prev_hash"], row["hash"], row["sequence"]],
        )
    report = verify()
    assert not report.ok
    assert report.problems[0].sequence == 20
    assert "rewritten" in report.problems[0].message


def test_a_stale_newest_checkpoint_fails(make_events):
    make_events(3)
    write_checkpoint()
    later = timezone.now() + datetime.timedelta(hours=3)
    report = verify(max_checkpoint_age=7200, now=later)
    assert [p.kind for p in report.problems] == ["stale"]
    assert verify(max_checkpoint_age=7200).ok


def test_checkpoints_deleted_from_the_database_are_found_in_the_sink(
    tamper, make_events, django_capture_on_commit_callbacks
):
    make_events(3)
    with django_capture_on_commit_callbacks(execute=True):
        write_checkpoint()
    make_events(3)
    with django_capture_on_commit_callbacks(execute=True):
        write_checkpoint()
    assert verify().ok
    # Delete the newest events and checkpoint: a valid, shorter log remains in the database.
    tamper("DELETE FROM audit_auditcheckpoint WHERE sequence = 6")
    tamper("DELETE FROM audit_auditevent WHERE sequence > 3")
    report = verify()
    assert [p.kind for p in report.problems] == ["sink"]


@pytest.mark.django_db(transaction=True)
def test_eight_threads_writing_a_hundred_events_each_leave_one_chain(postgres):
    barrier = threading.Barrier(8)
    errors = []

    def writer(index):
        try:
            barrier.wait(timeout=10)
            for n in range(100):
                with change():
                    record(actor=Actor.for_system(), action="race", target_type="thread", target_id=f"{index}-{n}")
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert AuditEvent.objects.count() == 800
    report = verify()
    assert report.ok, report.summary()
    assert (report.first, report.last) == (1, 800)


def test_a_checkpoint_is_signed_every_n_events_and_links_to_the_last(settings, make_events):
    from audit.models import AuditCheckpoint

    settings.PROMPTLEDGER_AUDIT_CHECKPOINT_EVERY = 5
    make_events(12)
    checkpoints = list(AuditCheckpoint.objects.order_by("id"))
    assert [c.sequence for c in checkpoints] == [5, 10]
    assert checkpoints[1].prev_checkpoint_hash == checkpoints[0].checkpoint_hash
    assert verify().ok


def test_verify_audit_command_exits_0_or_1_naming_the_event(tamper, make_events, capsys):
    from django.core.management import call_command

    make_events(4)
    write_checkpoint()
    call_command("verify_audit")
    assert "OK: events 1..4" in capsys.readouterr().out
    tamper("UPDATE audit_auditevent SET action = 'other' WHERE sequence = 2")
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit")
    assert exit_info.value.code == 1
    assert "event 2: changed" in capsys.readouterr().out


def test_a_rehashed_rewrite_is_caught_in_an_export_too(tamper, make_events, tmp_path):
    import json as jsonlib

    from audit.export import start_export
    from audit.verify import verify_file

    make_events(20)
    write_checkpoint()
    rows = list(iter_chain_rows())
    rows[6]["data"] = {"index": "rewritten"}
    prev = rows[5]["hash"]
    for row in rows[6:]:
        row["prev_hash"], row["hash"] = prev, event_hash(prev, row)
        prev = row["hash"]
        tamper(
            "UPDATE audit_auditevent SET data = %s::jsonb, prev_hash = %s, hash = %s WHERE sequence = %s",
            [jsonlib.dumps(row["data"]), row["prev_hash"], row["hash"], row["sequence"]],
        )
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(start_export(actor=Actor.for_system(), format="jsonl", filters={})))
    report = verify_file(path)
    assert not report.ok
    assert report.problems[0].sequence == 20
    assert "rewritten" in report.problems[0].message
