"""The /settings/webhooks/ pages: the list with its empty states, the create form and its field
errors, the secret shown once, the delivery log with its buttons, and who may see what."""


from core.actors import Actor
from webhooks import delivery, services
from webhooks.models import Delivery, Subscription

URL = "https://hooks.example.test/promptledger?token=url-token-123"



def test_an_owner_sees_an_empty_list_that_says_what_to_do_and_the_nav_links_to_it(browser_for):
    page = browser_for("owner").get("/settings/webhooks/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "No webhooks yet" in html and "Create the first webhook" in html
    assert 'href="/settings/webhooks/" aria-current="page">Webhooks</a>' in html


def test_an_author_is_told_who_manages_webhooks(browser_for):
    html = browser_for("author").get("/settings/webhooks/").content.decode()
    assert "managed by each team's owners" in html and "New webhook" not in html


def test_creating_a_webhook_shows_its_secret_once(browser_for):
    owner = browser_for("owner")
    form = owner.get("/settings/webhooks/new/")
    assert form.status_code == 200 and "Payments" in form.content.decode()
    assert "Every team (site-wide)" not in form.content.decode()  # admins only

    made = owner.post(
        "/settings/webhooks/new/",
        {"url": URL, "team": "payments", "events": ["deployment.changed", "kill_switch.changed"], "description": "ops"},
    )
    subscription = Subscription.objects.get()
    assert made.status_code == 302 and made["Location"] == f"/settings/webhooks/{subscription.pk}/"
    shown = owner.get(made["Location"])
    html = shown.content.decode()
    assert subscription.signing_secret() in html and "copy it now" in html
    assert shown["Cache-Control"] == "no-store"
    again = owner.get(made["Location"]).content.decode()
    assert subscription.signing_secret() not in again and "Nothing sent yet" in again
    assert "https://hooks.example.test/…" in again


def test_a_bad_url_is_shown_next_to_the_field(browser_for):
    refused = browser_for("owner").post(
        "/settings/webhooks/new/", {"url": "ftp://files.example.test/", "team": "payments", "events": ["*"]}
    )
    assert refused.status_code == 400
    assert "use an http:// or https:// URL" in refused.content.decode()
    assert not Subscription.objects.exists()


def test_the_detail_page_shows_the_delivery_log_and_its_buttons_work(
    browser_for, cast, settings, django_capture_on_commit_callbacks
):
    from tests.webhooks.conftest import Receiver

    settings.PROMPTLEDGER_WEBHOOK_MAX_ATTEMPTS = 1
    receiver = Receiver(status=502)
    try:
        subscription, _ = services.create_subscription(
            actor=Actor(user=cast["owner"]), url=receiver.url, events=["*"], team=cast["team"]
        )
        owner = browser_for("owner")
        with django_capture_on_commit_callbacks(execute=False):
            sent = owner.post(f"/settings/webhooks/{subscription.pk}/test/")
        assert sent.status_code == 302
        ping = Delivery.objects.get()
        delivery.attempt(ping.pk)
        html = owner.get(f"/settings/webhooks/{subscription.pk}/").content.decode()
        assert "ping" in html and "HTTP 502" in html and "Failed" in html and "Redeliver" in html

        failed_only = owner.get(
            f"/settings/webhooks/{subscription.pk}/deliveries/?status=delivered", HTTP_HX_REQUEST="true"
        )
        assert failed_only.status_code == 200 and "No delivered deliveries" in failed_only.content.decode()

        with django_capture_on_commit_callbacks(execute=False):
            owner.post(f"/settings/webhooks/deliveries/{ping.pk}/redeliver/")
        assert Delivery.objects.filter(redelivery_of=ping).count() == 1

        owner.post(f"/settings/webhooks/{subscription.pk}/rotate/")
        subscription.refresh_from_db()
        assert subscription.signing_secret() in owner.get(f"/settings/webhooks/{subscription.pk}/").content.decode()

        owner.post(f"/settings/webhooks/{subscription.pk}/edit/", {"url": receiver.url, "events": ["gate.failed"]})
        subscription.refresh_from_db()
        assert subscription.events == ["gate.failed"] and subscription.active is False  # unticked

        assert owner.get(f"/settings/webhooks/{subscription.pk}/delete/").status_code == 200
        gone = owner.post(f"/settings/webhooks/{subscription.pk}/delete/")
        assert gone.status_code == 302 and not Subscription.objects.exists()
    finally:
        receiver.stop()


def test_other_people_cannot_open_a_teams_webhook(browser_for, cast):
    subscription, _ = services.create_subscription(
        actor=Actor(user=cast["owner"]), url=URL, events=["*"], team=cast["team"]
    )
    assert browser_for("outsider").get(f"/settings/webhooks/{subscription.pk}/").status_code == 404
    assert browser_for("author").get(f"/settings/webhooks/{subscription.pk}/").status_code == 403
    assert browser_for("author").post(f"/settings/webhooks/{subscription.pk}/delete/").status_code == 403
    assert browser_for("admin").get(f"/settings/webhooks/{subscription.pk}/").status_code == 200
    assert Subscription.objects.filter(pk=subscription.pk).exists()
