"""Webhook secrets are sealed at rest: the database holds no secret that signs a webhook, a
delivery still signs with it, a key can be rotated, and a row from before sealing still works."""

from cryptography.fernet import Fernet
from django.core.management import call_command

from core.actors import Actor
from promptledger.webhooks import verify_signature
from webhooks import delivery, services
from webhooks.models import Subscription


def test_the_database_never_holds_the_secret_and_deliveries_still_sign_with_it(cast, receiver, subscribe):
    subscription, raw = subscribe(receiver.url)
    stored = Subscription.objects.values_list("secret", flat=True).get(pk=subscription.pk)
    assert stored.startswith("fernet:") and raw not in stored
    made = services.send_test(actor=Actor(user=cast["owner"]), subscription=subscription)
    assert delivery.attempt(made.pk).outcome == "delivered"
    (request,) = receiver.wait_for(1)
    headers = request["headers"]
    assert verify_signature(raw, headers["X-Promptledger-Timestamp"], request["body"],
                            headers["X-Promptledger-Signature"])


def test_a_new_key_first_still_unseals_the_old_and_the_command_reseals_under_it(cast, subscribe, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PROMPTLEDGER_SECRETS_KEY = old_key
    subscription, raw = subscribe("https://hooks.example.com/a")
    settings.PROMPTLEDGER_SECRETS_KEY = f"{new_key},{old_key}"
    assert Subscription.objects.get(pk=subscription.pk).signing_secret() == raw
    call_command("seal_webhook_secrets")
    settings.PROMPTLEDGER_SECRETS_KEY = new_key
    assert Subscription.objects.get(pk=subscription.pk).signing_secret() == raw


def test_a_secret_stored_before_sealing_still_signs_and_is_sealed_by_the_command(cast, subscribe):
    subscription, _ = subscribe("https://hooks.example.com/b")
    Subscription.objects.filter(pk=subscription.pk).update(secret="whsec_plain_from_before")
    assert Subscription.objects.get(pk=subscription.pk).signing_secret() == "whsec_plain_from_before"
    call_command("seal_webhook_secrets")
    row = Subscription.objects.get(pk=subscription.pk)
    assert row.secret.startswith("fernet:") and row.signing_secret() == "whsec_plain_from_before"
