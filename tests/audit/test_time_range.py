"""A time range in the audit filters holds exactly the events recorded in it, although an event's
time (taken when it is recorded) and its sequence (taken when its change commits, perhaps on
another host) need not agree: the range's sequence bounds, which keep a week far back quick on a
million events (bench/audit_filters.py), are read from the range itself."""

import datetime
import types

import pytest
from django.http import QueryDict

from audit import services as audit_services
from audit.models import AuditEvent
from audit.selectors import clean_filters, filter_events, visible_events
from core.actors import Actor

UTC = datetime.UTC
# Recorded in this order (sequence 1, 2, ...), at these times: the second and the fourth were
# recorded earlier than the event before them, as a change that took long to commit would be.
TIMES = ["2026-01-10T12:00", "2026-01-05T09:00", "2026-01-20T00:00", "2026-01-19T23:59", "2026-02-01T00:00",
         "2026-03-01T00:00"]


@pytest.fixture
def recorded(make_events, monkeypatch):
    made = []
    for when in TIMES:
        moment = datetime.datetime.fromisoformat(when).replace(tzinfo=UTC)
        monkeypatch.setattr(audit_services, "timezone", types.SimpleNamespace(now=lambda moment=moment: moment))
        made += make_events(1)
    return [AuditEvent.objects.get(pk=event.pk) for event in made]


@pytest.mark.parametrize("since, until", [
    ("2026-01-01", "2026-01-15"),  # the first two, whose sequences run against their times
    ("2026-01-06", "2026-01-11"),  # only the first
    ("2026-01-04", "2026-01-06"),  # only the second, recorded after the first
    ("2026-01-19T23:59:00+00:00", "2026-01-20T00:00:01+00:00"),  # the third and the fourth
    ("2026-01-20", "2026-01-20"),  # a day, until included: the third only
    ("2025-06-01", "2025-07-01"),  # nothing that far back
    ("2026-01-01", "2026-12-31"),  # past the newest: no bounds needed, all of them
    (None, "2026-01-19"),  # until alone
])
def test_a_time_range_holds_exactly_the_events_recorded_in_it(recorded, since, until):
    query = QueryDict(mutable=True)
    if since:
        query["since"] = since
    query["until"] = until
    filters = clean_filters(query)
    low = datetime.datetime.fromisoformat(since).replace(tzinfo=UTC) if since else None
    high = datetime.datetime.fromisoformat(until)
    high = high.replace(tzinfo=UTC) + (datetime.timedelta(days=1) if len(until) == 10 else datetime.timedelta())
    expected = sorted(e.sequence for e in recorded if (low is None or e.occurred_at >= low) and e.occurred_at < high)
    found = filter_events(visible_events(Actor.for_system()), filters).order_by("sequence")
    assert list(found.values_list("sequence", flat=True)) == expected
    assert found.count() == len(expected) and found.exists() == bool(expected)
