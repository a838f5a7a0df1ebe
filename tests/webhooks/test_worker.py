"""Webhooks through a real Celery worker process on Redis and PostgreSQL: queued after the commit,
delivered signed, and retried on the worker's own countdown when the receiver fails."""

import pytest

from core.actors import Actor
from promptledger.webhooks import verify_signature
from registry.models import Environment
from registry.services import set_kill_switch
from tests.webhooks.conftest import Receiver
from tests.worker import require_worker_services, start_worker, wait_for
from webhooks import services
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_delivers_a_committed_change_and_retries_a_failing_receiver(
    postgres, cast, prompt, environments, tmp_path
):
    require_worker_services()
    receiver = Receiver(status=500)
    worker = start_worker(tmp_path, env={"PROMPTLEDGER_WEBHOOK_BACKOFF_BASE": "0.5"})
    try:
        _, secret = services.create_subscription(
            actor=Actor(user=cast["owner"]), url=receiver.url, events=["kill_switch.changed"], team=cast["team"]
        )
        set_kill_switch(
            actor=Actor(user=cast["approver"]),
            prompt=prompt,
            environment=Environment.objects.get(slug="production"),
            disabled=True,
            reason="incident 42",
        )
        receiver.wait_for(1, timeout=30)  # the first attempt: 500
        receiver.status = 204
        receiver.wait_for(2, timeout=30)  # the retry, on the worker's countdown
        sent = wait_for(
            lambda: Delivery.objects.filter(status="delivered").first(), timeout=30, message="the delivery to settle"
        )
        assert sent.attempts == 2, worker.log()[-2000:]
        assert list(sent.attempt_log.values_list("status_code", "outcome")) == [(500, "retry"), (204, "delivered")]
        for request in receiver.requests:
            headers = request["headers"]
            assert verify_signature(
                secret, headers["X-Promptledger-Timestamp"], request["body"], headers["X-Promptledger-Signature"]
            )
        log = worker.log()
        assert secret not in log and "url-token-123" not in log
    finally:
        worker.stop()
        receiver.stop()
