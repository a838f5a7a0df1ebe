"""Webhook fixtures: a real HTTP receiver on a local port (its answer and delay settable, and it can
go down and come back on the same port), subscriptions of the cast, and eager Celery for tests that
want the delivery task to run in their own thread."""

import pytest

from core.actors import Actor
from tests.webhook_receiver import Receiver
from webhooks import services


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def subscribe(cast):
    """``subscribe(url, events=["*"], as_="owner", team=<payments>)`` → (subscription, secret)."""

    def make(url, events=("*",), as_="owner", team="default", **kwargs):
        chosen = cast["team"] if team == "default" else team
        return services.create_subscription(
            actor=Actor(user=cast[as_]), url=url, events=list(events), team=chosen, **kwargs
        )

    return make
