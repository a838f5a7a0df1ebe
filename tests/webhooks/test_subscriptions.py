"""Managing subscriptions: who may, what a valid URL and event list are, the secret shown once,
and the audit trail (which never holds the secret or the full URL)."""

import json

import pytest

from audit.models import AuditEvent
from core.actors import Actor
from core.errors import Conflict, PermissionDenied, ValidationFailed
from promptledger.webhooks import sign, verify_signature
from webhooks import services
from webhooks.models import Subscription
from webhooks.operator import sync_operator_subscription

URL = "https://hooks.example.test/promptledger/T0KEN-IN-PATH?token=url-token-123"


def actor(cast, name):
    return Actor(user=cast[name])


def test_a_team_owner_subscribes_their_team_and_gets_the_secret_once(cast):
    subscription, secret = services.create_subscription(
        actor=actor(cast, "owner"), url=URL, events=["deployment.changed", "version.created"], team=cast["team"]
    )
    assert secret.startswith("whsec_") and len(secret) > 40
    assert subscription.events == ["version.created", "deployment.changed"]  # the catalogue's order
    assert subscription.team == cast["team"] and subscription.active and subscription.created_by == cast["owner"]
    _, other = services.create_subscription(actor=actor(cast, "owner"), url=URL, events=["*"], team=cast["team"])
    assert other != secret


@pytest.mark.parametrize(
    ("who", "code"), [("approver", "role_too_low"), ("author", "role_too_low"), ("outsider", "not_team_member")]
)
def test_only_owners_of_the_team_manage_its_webhooks(cast, who, code):
    with pytest.raises(PermissionDenied) as refused:
        services.create_subscription(actor=actor(cast, who), url=URL, events=["*"], team=cast["team"])
    assert refused.value.code == code
    subscription, _ = services.create_subscription(
        actor=actor(cast, "owner"), url=URL, events=["*"], team=cast["team"]
    )
    for change in (
        lambda a: services.update_subscription(actor=a, subscription=subscription, active=False),
        lambda a: services.rotate_secret(actor=a, subscription=subscription),
        lambda a: services.send_test(actor=a, subscription=subscription),
        lambda a: services.delete_subscription(actor=a, subscription=subscription),
    ):
        with pytest.raises(PermissionDenied):
            change(actor(cast, who))
    assert Subscription.objects.get().active
    assert not AuditEvent.objects.filter(action__startswith="webhook.", actor_username=who).exists()


def test_site_wide_webhooks_are_for_admins_and_admins_manage_team_ones_too(cast):
    with pytest.raises(PermissionDenied) as refused:
        services.create_subscription(actor=actor(cast, "owner"), url=URL, events=["*"], team=None)
    assert refused.value.code == "admin_only"
    site, _ = services.create_subscription(actor=actor(cast, "admin"), url=URL, events=["*"], team=None)
    assert site.team is None
    team_one, _ = services.create_subscription(actor=actor(cast, "admin"), url=URL, events=["*"], team=cast["team"])
    services.update_subscription(actor=actor(cast, "admin"), subscription=team_one, description="by the admin")
    with pytest.raises(PermissionDenied):
        services.update_subscription(actor=actor(cast, "owner"), subscription=site, active=False)


def test_a_token_without_the_write_scope_cannot_manage_webhooks(cast):
    from registry.services import issue_token

    token, _ = issue_token(actor=Actor.for_system(), user=cast["owner"], scopes=["prompts:read"])
    with pytest.raises(PermissionDenied) as refused:
        services.create_subscription(
            actor=Actor(user=cast["owner"], token=token), url=URL, events=["*"], team=cast["team"]
        )
    assert refused.value.code == "scope_missing"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://files.example.test/in", "use an http:// or https:// URL"),
        ("javascript:alert(1)", "use an http:// or https:// URL"),
        ("hooks.example.test/promptledger", "use an http:// or https:// URL"),
        ("https:///no-host", "the URL needs a host"),
        ("https://hooks.example.test:99999/", "this is not a valid URL"),
        ("https://hooks.example.test/a b", "may not contain spaces"),
        ("", "this field is required"),
        ("https://hooks.example.test/" + "a" * 2000, "at most 2000 characters"),
    ],
)
def test_the_url_must_be_an_http_or_https_address_with_a_host(cast, url, message):
    with pytest.raises(ValidationFailed) as refused:
        services.create_subscription(actor=actor(cast, "owner"), url=url, events=["*"], team=cast["team"])
    assert message in refused.value.field_errors["url"][0]
    assert not Subscription.objects.exists()


@pytest.mark.parametrize("events", [[], ["version.deleted"], "version.created", [1]])
def test_events_must_be_known_names_or_star(cast, events):
    with pytest.raises(ValidationFailed) as refused:
        services.create_subscription(actor=actor(cast, "owner"), url=URL, events=events, team=cast["team"])
    assert refused.value.code == "invalid_events" and "allowed: *, version.created" in refused.value.field_errors[
        "events"
    ][0]


def test_star_means_every_event(cast):
    subscription, _ = services.create_subscription(
        actor=actor(cast, "owner"), url=URL, events=["version.created", "*"], team=cast["team"]
    )
    assert subscription.events == ["*"] and subscription.wants("drift.alert")


def test_rotating_the_secret_makes_the_old_one_stop_verifying(cast):
    subscription, old = services.create_subscription(
        actor=actor(cast, "owner"), url=URL, events=["*"], team=cast["team"]
    )
    subscription, new = services.rotate_secret(actor=actor(cast, "owner"), subscription=subscription)
    assert new != old and subscription.signing_secret() == new
    header = sign(subscription.signing_secret(), "1700000000", "{}")
    assert verify_signature(new, "1700000000", "{}", header, tolerance=None)
    assert not verify_signature(old, "1700000000", "{}", header, tolerance=None)


def test_every_change_is_audited_without_the_secret_or_the_full_url(cast):
    owner = actor(cast, "owner")
    subscription, first = services.create_subscription(
        actor=owner, url=URL, events=["*"], team=cast["team"], description="ops"
    )
    services.update_subscription(actor=owner, subscription=subscription, events=["gate.failed"], active=False)
    services.update_subscription(actor=owner, subscription=subscription, active=False)  # no change, no event
    _, second = services.rotate_secret(actor=owner, subscription=subscription)
    services.delete_subscription(actor=owner, subscription=subscription)
    trail = list(AuditEvent.objects.filter(action__startswith="webhook.").order_by("sequence"))
    assert [e.action for e in trail] == ["webhook.created", "webhook.updated", "webhook.secret_rotated",
                                         "webhook.deleted"]
    created = trail[0].data
    assert created["url"] == "https://hooks.example.test/…" and created["team"] == "payments"
    assert created["events"] == ["*"] and len(created["url_sha256"]) == 16
    assert trail[1].data["changes"] == {
        "events": {"before": ["*"], "after": ["gate.failed"]},
        "active": {"before": True, "after": False},
    }
    assert all(e.actor_username == "owner" and e.team == "payments" for e in trail)
    dumped = json.dumps([e.data for e in trail])
    assert first not in dumped and second not in dumped
    assert "T0KEN-IN-PATH" not in dumped and "url-token-123" not in dumped
    assert not Subscription.objects.exists()


def test_a_test_ping_goes_to_that_subscription_alone_and_not_while_paused(cast, django_capture_on_commit_callbacks):
    owner = actor(cast, "owner")
    subscription, secret = services.create_subscription(
        actor=owner, url=URL, events=["drift.alert"], team=cast["team"]
    )
    services.create_subscription(actor=owner, url=URL, events=["*"], team=cast["team"])
    with django_capture_on_commit_callbacks(execute=False) as signals:
        ping = services.send_test(actor=owner, subscription=subscription)
    assert len(signals) == 1 and ping.subscription == subscription and ping.event == "ping"
    body = json.loads(ping.body)
    assert body["event"] == "ping" and body["data"]["subscription"] == subscription.pk
    assert secret not in ping.body
    assert AuditEvent.objects.filter(action="webhook.test_sent").count() == 1
    services.update_subscription(actor=owner, subscription=subscription, active=False)
    with pytest.raises(Conflict) as refused:
        services.send_test(actor=owner, subscription=subscription)
    assert refused.value.code == "webhook_inactive"


def test_a_pending_delivery_is_not_redelivered(cast, django_capture_on_commit_callbacks):
    owner = actor(cast, "owner")
    subscription, _ = services.create_subscription(actor=owner, url=URL, events=["*"], team=cast["team"])
    with django_capture_on_commit_callbacks(execute=False):
        ping = services.send_test(actor=owner, subscription=subscription)
    with pytest.raises(Conflict) as refused:
        services.redeliver(actor=owner, delivery=ping)
    assert refused.value.code == "delivery_pending"


def test_the_operator_webhook_follows_the_settings_and_cannot_be_edited(cast, settings):
    settings.PROMPTLEDGER_ALERT_WEBHOOK_URL = URL
    settings.PROMPTLEDGER_ALERT_WEBHOOK_SECRET = "operator-secret-0123456789"
    assert sync_operator_subscription() == "created"
    assert sync_operator_subscription() == "unchanged"
    operator = Subscription.objects.get(from_settings=True)
    assert (operator.team, operator.events) == (None, ["drift.alert"])
    assert operator.signing_secret() == "operator-secret-0123456789"
    with pytest.raises(Conflict) as refused:
        services.update_subscription(actor=actor(cast, "admin"), subscription=operator, active=False)
    assert refused.value.code == "webhook_managed_by_settings"

    settings.PROMPTLEDGER_ALERT_WEBHOOK_SECRET = "operator-secret-rotated"
    assert sync_operator_subscription() == "updated"
    settings.PROMPTLEDGER_ALERT_WEBHOOK_URL = ""
    assert sync_operator_subscription() == "paused"
    operator.refresh_from_db()
    assert not operator.active and operator.signing_secret() == "operator-secret-rotated"
    actions = list(AuditEvent.objects.filter(target_type="webhook").values_list("action", "actor_type"))
    assert actions == [("webhook.created", "system"), ("webhook.secret_rotated", "system"),
                       ("webhook.updated", "system")]
    assert "operator-secret" not in json.dumps(list(AuditEvent.objects.values_list("data", flat=True)))
