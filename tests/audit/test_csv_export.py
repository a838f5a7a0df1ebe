"""The CSV export: on PostgreSQL the database writes the rows (``COPY ... CSV``). Read back, they
hold what the Python writer holds, cell for cell (``data`` compared as JSON, the one column whose
text may differ: PostgreSQL orders an object's keys its own way), and no cell reads as a formula."""

import csv
import io
import json

import pytest

from audit.export import _csv_in_postgresql, _csv_in_python
from audit.models import AuditEvent
from audit.services import record
from audit.transactions import change
from core.actors import Actor

FORMULAS = ["=1+1", "+SUM(A1)", "-2", "@cmd", "\tTAB", "\rCR", "'=quoted", "''+twice", "plain", "", "a,b\n\"c\"",
            "'", "'''", "'text", "é=not first"]


@pytest.fixture
def formula_events(db, django_user_model):
    user = django_user_model.objects.create_user("=HYPERLINK(1)", password=None)
    person = Actor(user=user, request_id="r", ip="::1", user_agent="=1+1")
    for index, text in enumerate(FORMULAS):
        with change():
            record(
                actor=person if index % 2 else Actor.for_system(),
                action="test.formula",
                target_type="test",
                target_id=text,
                team=text,
                prompt=text,
                data={"text": text, "b": [1, 2.5, None], "longer key": {"z": text}},
            )


def _read(blocks):
    return list(csv.reader(io.StringIO(b"".join(blocks).decode("utf-8"), newline="")))


def test_postgresql_writes_what_python_writes_and_no_cell_is_a_formula(postgres, formula_events):
    for queryset in (AuditEvent.objects.all(), AuditEvent.objects.filter(action="test.formula", prompt="-2")):
        in_python, in_database = _read(_csv_in_python(queryset)), _read(_csv_in_postgresql(queryset))
        assert in_database[0] == in_python[0]
        assert len(in_database) == len(in_python) == 1 + queryset.count()
        data = in_python[0].index("data")
        for mine, theirs in zip(in_python[1:], in_database[1:], strict=True):
            assert json.loads(theirs[data]) == json.loads(mine[data])
            assert theirs[:data] + theirs[data + 1:] == mine[:data] + mine[data + 1:]
        cells = [cell for row in in_database[1:] for cell in row]
        assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'=HYPERLINK(1)" in {row[4] for row in _read(_csv_in_postgresql(AuditEvent.objects.all()))[1:]}
