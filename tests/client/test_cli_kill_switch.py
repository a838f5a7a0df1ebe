"""``promptledger kill-switch`` against a live server: an approver's token switches a prompt off in an
environment (resolve then answers 423 and the CLI's resolve exits 1), the change is audited and
queued as a webhook, ``--off`` serves it again; refusals (a reader, no reason, an unknown
environment) exit 1 with the server's code, and a usage error exits 2."""

import pytest

from audit.models import AuditEvent
from core.actors import Actor
from registry.models import Deployment
from registry.services import issue_token
from webhooks import services as webhooks
from webhooks.models import Delivery

from .test_cli import cli, server  # noqa: F401 - the shared live-server fixture


@pytest.fixture
def tokens(server, cast):  # noqa: F811
    subscription, _ = webhooks.create_subscription(
        actor=Actor(user=cast["owner"]), url="http://127.0.0.1:9/hook", events=["kill_switch.changed"],
        team=cast["team"],
    )
    _, approver = issue_token(actor=Actor.for_system(), user=cast["approver"], scopes=["prompts:read", "deploy"])
    _, author = issue_token(actor=Actor.for_system(), user=cast["author"], scopes=["prompts:read", "deploy"])
    return {"url": server["url"], "reader": server["token"], "approver": approver, "author": author,
            "subscription": subscription}


def pointer():
    return Deployment.objects.get(prompt__slug="loan-letter", environment__slug="production")


def test_an_approver_switches_a_prompt_off_and_on_again_from_the_cli(tokens):
    url, token = tokens["url"], tokens["approver"]
    done = cli("kill-switch", "loan-letter", "--environment", "production", "--reason", "leaks account numbers",
               url=url, token=token)
    assert done.returncode == 0, done.stderr
    assert "no longer served in production" in done.stdout and "leaks account numbers" in done.stdout
    assert pointer().disabled and pointer().disabled_reason == "leaks account numbers"
    event = AuditEvent.objects.get(action="kill_switch.changed")
    assert event.actor_username == "approver" and event.prompt == "loan-letter"
    assert Delivery.objects.filter(subscription=tokens["subscription"], event="kill_switch.changed").count() == 1

    resolved = cli("resolve", "loan-letter", "--environment", "production", url=url, token=tokens["reader"])
    assert resolved.returncode == 1 and "prompt_disabled" in resolved.stderr

    back = cli("kill-switch", "loan-letter", "-e", "production", "-m", "fixed upstream", "--off", url=url, token=token)
    assert back.returncode == 0, back.stderr
    assert "served in production again" in back.stdout
    assert not pointer().disabled
    assert AuditEvent.objects.filter(action="kill_switch.changed").count() == 2
    assert Delivery.objects.filter(subscription=tokens["subscription"], event="kill_switch.changed").count() == 2
    resolved = cli("resolve", "loan-letter", "--environment", "production", url=url, token=tokens["reader"])
    assert resolved.returncode == 0, resolved.stderr


@pytest.mark.parametrize(
    ("who", "args", "says"),
    [
        ("author", ["--reason", "x"], "role_too_low"),
        ("reader", ["--reason", "x"], "scope_missing"),
        ("approver", ["--reason", "   "], "reason"),
        ("approver", ["--reason", "x", "--environment", "moon"], "unknown_environment"),
    ],
)
def test_a_refusal_exits_1_with_the_servers_code_and_changes_nothing(tokens, who, args, says):
    environment = [] if "--environment" in args else ["--environment", "production"]
    done = cli("kill-switch", "loan-letter", *environment, *args, url=tokens["url"], token=tokens[who])
    assert done.returncode == 1, done.stdout
    assert says in done.stderr
    assert not pointer().disabled
    assert not AuditEvent.objects.filter(action="kill_switch.changed").exists()


def test_a_missing_reason_is_a_usage_error(tokens):
    done = cli("kill-switch", "loan-letter", "--environment", "production", url=tokens["url"], token=tokens["approver"])
    assert done.returncode == 2 and "--reason" in done.stderr
