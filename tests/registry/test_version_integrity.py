"""Versions are immutable and numbered without gaps, even under concurrent pushes."""

import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction

from core.actors import Actor
from registry.models import ImmutableRowError, PromptVersion
from registry.services import create_version
from tests.factories import version_body


def push(actor, prompt, content):
    body = version_body(content)
    return create_version(
        actor=actor,
        prompt=prompt,
        messages=body["messages"],
        variables=body["variables"],
        model=body["model"],
        message="race",
    )


def test_saving_a_changed_version_is_refused(version):
    version.messages = [{"role": "system", "content": "tampered"}]
    with pytest.raises(ImmutableRowError):
        version.save()
    with pytest.raises(ImmutableRowError):
        version.delete()
    version.refresh_from_db()
    assert version.messages[0]["content"] == "Write to {{ name }}."


def test_raw_sql_update_of_messages_is_refused_on_postgres(postgres, version):
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            'UPDATE registry_promptversion SET messages = \'[{"role": "system", "content": "x"}]\' WHERE id = %s',
            [version.pk],
        )
    version.refresh_from_db()
    assert version.messages[0]["content"] == "Write to {{ name }}."


def test_trigger_holds_with_replication_role_replica(postgres, version):
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE registry_promptversion SET change_note = 'x' WHERE id = %s", [version.pk])


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_pushes_get_numbers_one_to_eight(postgres, cast, prompt):
    actor_user = cast["author"]
    barrier = threading.Barrier(8)
    results, errors = [], []

    def worker(index):
        try:
            barrier.wait(timeout=10)
            version, created = push(Actor(user=actor_user), prompt, f"Variant {index} for {{{{ name }}}}.")
            results.append((version.number, created))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(n for n, _ in results) == list(range(1, 9))
    assert all(created for _, created in results)
    assert sorted(PromptVersion.objects.filter(prompt=prompt).values_list("number", flat=True)) == list(range(1, 9))


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_pushes_make_one_version(postgres, cast, prompt):
    barrier = threading.Barrier(4)
    numbers, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            version, _ = push(Actor(user=cast["author"]), prompt, "Same {{ name }}.")
            numbers.append(version.number)
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert numbers == [1, 1, 1, 1]
    assert PromptVersion.objects.filter(prompt=prompt).count() == 1
