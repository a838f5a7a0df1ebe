"""The audit stream to a SIEM against a real local receiver: batches in sequence order, the receiver
refusing connections and answering 503 for a while, a worker dying mid-batch; afterwards the
receiver holds every event once (after de-duplication by sequence), in order, with no gap, and its
copy verifies with ``python -m audit.verify --stream-copy``."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import record
from audit.transactions import change
from core.actors import Actor
from tests.webhooks.siem_receiver import SiemReceiver
from tests.worker import wait_for
from webhooks import audit_stream, stream_services
from webhooks.models import AuditStream
from webhooks.tasks import audit_stream_tick

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def siem():
    receiver = SiemReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def quick(settings):
    """Backoffs of a few hundredths of a second, so a test waits on the receiver, not the clock."""
    settings.PROMPTLEDGER_AUDIT_STREAM_BACKOFF_BASE = 0.01
    settings.PROMPTLEDGER_AUDIT_STREAM_BACKOFF_MAX = 0.05
    settings.PROMPTLEDGER_AUDIT_STREAM_TIMEOUT = 2


def write_events(count):
    system = Actor.for_system("test")
    for number in range(count):
        with change():
            record(actor=system, action="test.happened", target_type="test", target_id=number, data={"n": number})


def head():
    return audit_stream.head_sequence()


def stream_for(cast, url, **kwargs):
    options = {"batch_size": 7, "interval_seconds": 1, **kwargs}
    return stream_services.create_stream(actor=Actor(user=cast["admin"]), name="siem", url=url, **options)


def send_until_caught_up(stream, timeout=20):
    """Run the stream (as its task does) until its cursor reaches the chain's head."""

    def caught_up():
        audit_stream.run(stream.pk)
        return AuditStream.objects.get(pk=stream.pk).cursor == head()

    wait_for(caught_up, timeout=timeout, interval=0.02, message="the stream to catch up")
    return AuditStream.objects.get(pk=stream.pk)


def assert_complete_and_verifiable(siem, tmp_path, *, from_sequence=1):
    copy = siem.copy()
    sequences = [json.loads(line)["sequence"] for line in copy]
    assert sequences == list(range(from_sequence, head() + 1)), "a gap, a reordering or a missing event"
    path = tmp_path / "siem-copy.jsonl"
    path.write_text("".join(line + "\n" for line in copy))
    verified = subprocess.run(
        [sys.executable, "-S", "-m", "audit.verify", "--stream-copy", str(path)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith(f"OK: events {from_sequence}..{head()}")
    return path


def test_batches_arrive_in_sequence_order_in_the_export_line_format(cast, siem, quick, tmp_path):
    write_events(20)
    stream = stream_for(cast, siem.url)
    stream = send_until_caught_up(stream)
    sizes = [len(r["body"].splitlines()) for r in siem.acknowledged()]
    assert all(size <= 7 for size in sizes) and sum(sizes) == head()
    first = siem.acknowledged()[0]
    assert first["headers"]["Content-Type"] == "application/x-ndjson"
    assert first["headers"]["X-Promptledger-First-Sequence"] == "1"
    line = json.loads(first["body"].splitlines()[0])
    assert line["record"] == "event" and {"hash", "prev_hash", "sequence"} <= set(line)
    assert stream.cursor_hash == AuditEvent.objects.get(sequence=stream.cursor).hash
    assert stream.last_success_at is not None and stream.last_error == "" and stream.failures == 0
    assert_complete_and_verifiable(siem, tmp_path)


def test_a_receiver_down_then_answering_503_then_back_gets_every_event_once_in_order(cast, siem, quick, tmp_path):
    write_events(10)
    stream = send_until_caught_up(stream_for(cast, siem.url))
    acknowledged_before = len(siem.acknowledged())

    siem.stop()  # down: connections refused
    write_events(12)
    wait_for(lambda: audit_stream.run(stream.pk) is not None, timeout=10, interval=0.05, message="the next try")
    down = AuditStream.objects.get(pk=stream.pk)
    assert down.cursor == stream.cursor and down.last_error == "could not connect" and down.failures == 1

    siem.status, siem.retry_after = 503, 0
    siem.start()  # up again on the same port, but overloaded
    wait_for(lambda: (audit_stream.run(stream.pk), any(r["status"] == 503 for r in siem.requests))[1],
             timeout=10, interval=0.02, message="the stream to try the overloaded receiver")
    assert len(siem.acknowledged()) == acknowledged_before
    busy = AuditStream.objects.get(pk=stream.pk)
    assert busy.cursor == stream.cursor, "a batch the receiver refused moved the cursor"
    assert busy.last_status_code == 503 and busy.last_error == "HTTP 503" and busy.failures >= 2
    assert audit_stream.lag(busy)[0] == head() - stream.cursor

    siem.status = 200
    write_events(5)
    done = send_until_caught_up(stream)
    assert done.failures == 0 and done.last_error == "" and done.last_status_code == 200
    assert audit_stream.lag(done) == (0, 0.0)
    assert_complete_and_verifiable(siem, tmp_path)


def test_retry_after_is_honoured_but_bounded(cast, siem, settings):
    settings.PROMPTLEDGER_AUDIT_STREAM_BACKOFF_BASE = 0.01
    settings.PROMPTLEDGER_AUDIT_STREAM_BACKOFF_MAX = 30
    write_events(3)
    siem.status, siem.retry_after = 503, 20
    stream = stream_for(cast, siem.url)
    before = timezone.now()
    audit_stream.run(stream.pk)
    waiting = AuditStream.objects.get(pk=stream.pk)
    assert 19 <= (waiting.next_attempt_at - before).total_seconds() <= 31
    assert audit_stream.run(stream.pk) is None, "a stream backing off was sent before it was due"
    assert audit_stream.backoff_seconds(1, retry_after=86400) == 30  # a receiver cannot park a stream for a day
    assert audit_stream.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert audit_stream.retry_after_seconds("soon") is None


def test_a_worker_that_dies_mid_batch_leaves_the_stream_to_the_next_once_its_lease_expires(
    cast, siem, quick, settings, tmp_path
):
    settings.PROMPTLEDGER_AUDIT_STREAM_LEASE = 0.5
    write_events(9)
    stream = stream_for(cast, siem.url)
    # The dying worker: takes the lease, sends the first batch, and is gone before moving the cursor.
    owner = audit_stream.claim(stream.pk)
    assert owner is not None
    lines, first, last, _ = audit_stream.next_batch(stream)
    code, error, _ = audit_stream.post(stream, audit_stream.body_of(stream, lines),
                                       {"Content-Type": "application/x-ndjson"})
    assert (code, error) == (200, "")
    assert audit_stream.run(stream.pk) is None, "a second worker sent while the lease was held"

    done = send_until_caught_up(stream)  # once the lease has run out, another worker resends from the cursor
    sequences = [json.loads(line)["sequence"] for line in siem.event_lines()]
    assert sequences[: last - first + 1] == sequences[last - first + 1 : 2 * (last - first + 1)], "not resent"
    assert done.cursor == head()
    assert_complete_and_verifiable(siem, tmp_path)


def test_splunk_hec_format_carries_the_token_sourcetype_time_and_the_event_line(cast, siem, quick, tmp_path):
    write_events(4)
    stream = stream_for(cast, siem.url, format=AuditStream.SPLUNK_HEC, token="hec-0123456789",
                        sourcetype="promptledger:audit:test")
    assert "hec-0123456789" not in AuditStream.objects.get(pk=stream.pk).token, "the token is stored in the clear"
    send_until_caught_up(stream)
    request = siem.acknowledged()[0]
    assert request["headers"]["Authorization"] == "Splunk hec-0123456789"
    assert request["headers"]["Content-Type"] == "application/json"
    objects = [json.loads(line) for line in request["body"].decode().splitlines()]
    first = objects[0]
    assert set(first) == {"time", "source", "sourcetype", "event"}
    assert first["sourcetype"] == "promptledger:audit:test" and first["event"]["sequence"] == 1
    occurred = AuditEvent.objects.get(sequence=1).occurred_at.timestamp()
    assert first["time"] == pytest.approx(occurred, abs=1e-5)
    assert_complete_and_verifiable(siem, tmp_path)


def test_a_stream_from_now_sends_only_new_events_and_its_copy_still_verifies(cast, siem, quick, tmp_path):
    write_events(5)
    start = head()
    stream = stream_for(cast, siem.url, start="now")
    assert stream.cursor == start
    write_events(3)
    send_until_caught_up(stream)
    assert_complete_and_verifiable(siem, tmp_path, from_sequence=start + 1)


def test_delivering_writes_no_audit_event_and_a_paused_stream_sends_nothing(cast, siem, quick):
    write_events(3)
    admin = Actor(user=cast["admin"])
    stream = stream_for(cast, siem.url)
    paused = stream_services.set_active(actor=admin, stream=stream, active=False)
    assert audit_stream.run(stream.pk) is None and siem.requests == []
    stream_services.set_active(actor=admin, stream=paused, active=True)
    events = head()
    send_until_caught_up(stream)
    assert head() == events, "a delivered batch wrote an audit event"
    actions = list(AuditEvent.objects.filter(action__startswith="audit_stream.").values_list("action", flat=True))
    assert actions == ["audit_stream.created", "audit_stream.paused", "audit_stream.resumed"]


def test_a_missing_link_stops_the_stream_instead_of_skipping(cast, siem, quick):
    write_events(4)
    stream = stream_for(cast, siem.url)
    AuditStream.objects.filter(pk=stream.pk).update(cursor_hash="f" * 64)  # as if the chain had been rewritten
    assert audit_stream.run(stream.pk) == 0
    stopped = AuditStream.objects.get(pk=stream.pk)
    assert siem.requests == [] and stopped.cursor == 0
    assert "does not link" in stopped.last_error


def test_the_tick_signals_due_streams_and_the_task_sends_them(cast, siem, quick, eager):
    write_events(6)
    stream = stream_for(cast, siem.url)

    def ticked_until_caught_up():
        audit_stream_tick.apply()  # what beat queues; eager, so the sends it signals run here too
        return AuditStream.objects.get(pk=stream.pk).cursor == head()

    wait_for(ticked_until_caught_up, timeout=10, interval=0.02, message="the tick to send the stream")
    assert [json.loads(line)["sequence"] for line in siem.copy()] == list(range(1, head() + 1))


@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_one_stream_never_send_it_at_once_and_deliver_each_event_once(postgres, cast, quick):
    """Four threads (four workers) run the same stream over and over against a slow receiver: the
    lease lets one send at a time, so no two POSTs overlap and, with nobody dying, nothing is resent."""
    slow = SiemReceiver(delay=0.05)
    try:
        write_events(30)
        stream = stream_for(cast, slow.url, batch_size=4)
        goal = head()
        problems = []

        def worker():
            try:
                deadline = time.monotonic() + 30
                while AuditStream.objects.get(pk=stream.pk).cursor < goal and time.monotonic() < deadline:
                    audit_stream.run(stream.pk)
            except Exception as exc:  # noqa: BLE001 - reported by the test below
                problems.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert problems == []
        assert AuditStream.objects.get(pk=stream.pk).cursor == goal
        assert slow.most_in_flight == 1, "two workers sent the stream at the same time"
        sequences = [json.loads(line)["sequence"] for line in slow.event_lines()]
        assert sequences == list(range(sequences[0], goal + 1)), "an event was sent twice, skipped or reordered"
    finally:
        slow.stop()


def test_a_receiver_no_longer_allowed_is_not_sent_to_and_the_stream_says_why(cast, siem, quick, settings):
    write_events(3)
    stream = stream_for(cast, siem.url)
    settings.PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS = []  # the operator took 127.0.0.1 off the allowed list
    assert audit_stream.run(stream.pk) == 0
    refused = AuditStream.objects.get(pk=stream.pk)
    assert siem.requests == [] and refused.cursor == 0 and refused.failures == 1
    assert refused.last_error.startswith("not sent: ") and "not a public address" in refused.last_error


def test_a_token_that_cannot_be_unsealed_gives_the_lease_back_and_shows_on_the_stream(cast, siem, quick, settings):
    write_events(2)
    stream = stream_for(cast, siem.url, token="hec-token")
    settings.PROMPTLEDGER_SECRETS_KEY = Fernet.generate_key().decode()  # the sealing key replaced, the old one lost
    assert audit_stream.run(stream.pk) == 0
    broken = AuditStream.objects.get(pk=stream.pk)
    assert siem.requests == [] and broken.cursor == 0
    assert broken.last_error.startswith("internal error (RuntimeError)")
    assert broken.lease_owner == "" and broken.lease_until is None, "a failed worker kept the stream's lease"


def test_the_verifier_fails_a_siem_copy_with_a_changed_or_missing_event(cast, siem, quick, tmp_path):
    write_events(8)
    send_until_caught_up(stream_for(cast, siem.url))
    path = assert_complete_and_verifiable(siem, tmp_path)
    lines = path.read_text().splitlines(keepends=True)

    def verify(text):
        path.write_text(text)
        return subprocess.run([sys.executable, "-S", "-m", "audit.verify", "--stream-copy", str(path)],
                              cwd=REPO, capture_output=True, text=True, check=False)

    changed = verify("".join(lines).replace('"n":3', '"n":4', 1))
    assert changed.returncode == 1 and "changed" in changed.stdout
    missing = verify("".join(lines[:4] + lines[5:]))
    assert missing.returncode == 1 and "event 5 is missing" in missing.stdout
    without_flag = subprocess.run([sys.executable, "-S", "-m", "audit.verify", str(path)], cwd=REPO,
                                  capture_output=True, text=True, check=False)
    assert without_flag.returncode == 1 and "no manifest" in without_flag.stdout  # an export must have one
