"""The export writes its event lines without the JSON encoder's walk over a dict per event (in
Python everywhere; mostly in PostgreSQL on PostgreSQL). Both ways must write, byte for byte, what
the encoder writes for ``{"record": "event", **event.as_chain_dict()}``, awkward values included."""

import json

import pytest

from audit.export import _encoder, event_lines
from audit.models import AuditEvent
from audit.services import record
from audit.transactions import change
from core.actors import Actor

AWKWARD = 'quote " backslash \\ slash / newline \n tab \t cr \r bell \x07 nul-ish \x1f del \x7f é 漢字 🙂 \u2028'


@pytest.fixture
def awkward_events(db, django_user_model):
    user = django_user_model.objects.create_user("zoë", password=None)
    actors = [
        Actor.for_system(),
        Actor(user=user, request_id=AWKWARD[:64], ip="::1", user_agent=AWKWARD),
    ]
    payloads = [
        {},
        {"b": 1, "a": [1, 2.5, -0.0, 1e-07, 1.5e300, 10**30, True, False, None], "": ""},
        {"text": AWKWARD, "nested": {"z": {"y": [AWKWARD, {"k": "v"}]}}, "x" * 40: "long key"},
        [AWKWARD, 3],
        "a bare string",
        42,
    ]
    for index, data in enumerate(payloads):
        with change():
            record(
                actor=actors[index % 2],
                action="test.awkward",
                target_type="test",
                target_id=AWKWARD if index % 2 else index,
                team="team-a" if index % 3 else "",
                prompt=AWKWARD[:100],
                data=data,
            )


def expected(queryset):
    return [_encoder.encode({"record": "event", **e.as_chain_dict()}) + "\n" for e in queryset.order_by("sequence")]


def written(queryset, **kwargs):
    return [line for _, _, lines in event_lines(queryset, **kwargs) for line in lines]


def test_lines_written_in_python_are_the_encoders(awkward_events):
    queryset = AuditEvent.objects.all()
    assert written(queryset, in_database=False) == expected(queryset)


def test_lines_written_by_postgresql_are_the_encoders(postgres, awkward_events):
    for queryset in (AuditEvent.objects.all(), AuditEvent.objects.filter(team="team-a", prompt=AWKWARD[:100])):
        lines = written(queryset, in_database=True)
        assert lines == expected(queryset)
        assert lines == written(queryset, in_database=False)
        assert all(json.loads(line)["record"] == "event" for line in lines)


def test_blocks_name_their_first_and_last_event(make_events, monkeypatch):
    monkeypatch.setattr("audit.export.BATCH", 4)
    made = make_events(10)
    blocks = list(event_lines(AuditEvent.objects.all()))
    assert [(first, last, len(lines)) for first, last, lines in blocks] == [
        (made[0].sequence, made[3].sequence, 4),
        (made[4].sequence, made[7].sequence, 4),
        (made[8].sequence, made[9].sequence, 2),
    ]
