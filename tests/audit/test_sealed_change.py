"""A sealed change (``change(checkpoint=True)``, an evidence pack's): the checkpoint it signs covers
exactly its last event, in its own transaction, so nothing can come between the two; only the
outermost change may ask for it."""

import pytest

from audit.models import AuditCheckpoint
from audit.services import record
from audit.transactions import LockOrderError, change
from core.actors import Actor


def _record(index):
    return record(actor=Actor.for_system(), action="test.event", target_type="test", target_id=index)


def test_a_sealed_change_signs_a_checkpoint_of_its_last_event(make_events):
    make_events(3)
    with change(checkpoint=True):
        _record(10)
        last = _record(11)
    checkpoint = AuditCheckpoint.objects.get(sequence=last.sequence)
    assert checkpoint.head_hash == last.hash and last.sequence == 5


def test_an_ordinary_change_signs_nothing_and_a_nested_one_cannot_seal(make_events):
    make_events(2)
    assert not AuditCheckpoint.objects.exists()
    with pytest.raises(LockOrderError), change():
        with change(checkpoint=True):
            _record(1)
    assert not AuditCheckpoint.objects.exists()
