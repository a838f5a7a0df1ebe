"""The audit stream end to end through a real Celery worker on Redis and PostgreSQL: the test plays
beat (queuing ``webhooks.tasks.audit_stream_tick``), the worker signals and sends the stream, the
receiver goes down and answers 503 for a while, and in the end holds every event once, in order."""

import json

import pytest

from audit.models import AuditEvent
from audit.services import record
from audit.transactions import change
from core.actors import Actor
from core.tasks import send_task
from tests.webhooks.siem_receiver import SiemReceiver
from tests.worker import require_worker_services, start_worker, wait_for
from webhooks import stream_services
from webhooks.models import AuditStream

pytestmark = pytest.mark.django_db(transaction=True)


def write_events(count):
    for number in range(count):
        with change():
            record(actor=Actor.for_system("test"), action="test.happened", target_type="test", target_id=number)


def test_beats_tick_through_a_worker_delivers_every_event_once_in_order_across_an_outage(postgres, cast, tmp_path):
    require_worker_services()
    receiver = SiemReceiver()
    worker = start_worker(tmp_path, env={"PROMPTLEDGER_AUDIT_STREAM_BACKOFF_BASE": "0.1",
                                         "PROMPTLEDGER_AUDIT_STREAM_BACKOFF_MAX": "0.5"})
    try:
        write_events(12)
        stream = stream_services.create_stream(
            actor=Actor(user=cast["admin"]), name="siem", url=receiver.url, batch_size=5, interval_seconds=1
        )

        def ticked_until(condition):
            def check():
                send_task("webhooks.tasks.audit_stream_tick")  # what beat queues every few seconds
                return condition()
            return check

        def caught_up():
            head = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
            return AuditStream.objects.get(pk=stream.pk).cursor == head

        wait_for(ticked_until(caught_up), timeout=60, interval=0.5, message="the worker to catch the stream up")

        receiver.stop()
        write_events(8)
        wait_for(ticked_until(lambda: AuditStream.objects.get(pk=stream.pk).last_error == "could not connect"),
                 timeout=60, interval=0.5, message="the worker to find the receiver down")
        receiver.status = 503
        receiver.start()
        wait_for(ticked_until(lambda: any(r["status"] == 503 for r in receiver.requests)),
                 timeout=60, interval=0.5, message="the worker to try the overloaded receiver")
        receiver.status = 200
        wait_for(ticked_until(caught_up), timeout=60, interval=0.5, message="the stream to catch up again")

        every = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
        assert [json.loads(line)["sequence"] for line in receiver.copy()] == every, worker.log()[-2000:]
        done = AuditStream.objects.get(pk=stream.pk)
        assert done.last_error == "" and done.failures == 0 and done.delivered_events >= len(every)
        assert "siem-token-in-url" not in worker.log()
    finally:
        worker.stop()
        receiver.stop()
