"""The webhooks API: its contract, status codes and error format, pagination, and the secret that
appears in the create and rotate answers only."""

import pytest

from core.actors import Actor
from webhooks import delivery, services
from webhooks.models import Delivery, Subscription

URL = "https://hooks.example.test/promptledger"


@pytest.fixture
def owner_api(api_for):
    return api_for("owner")


def create(client, **overrides):
    body = {"url": URL, "events": ["deployment.changed"], "team": "payments", "description": "ops", **overrides}
    return client.post("/api/v1/webhooks/", body, format="json")


def test_an_owner_creates_a_webhook_and_sees_the_secret_in_that_answer_only(owner_api):
    made = create(owner_api)
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["secret"].startswith("whsec_")
    assert (body["url"], body["events"], body["team"], body["active"]) == (URL, ["deployment.changed"], "payments",
                                                                           True)
    assert body["created_by"] == "owner" and body["from_settings"] is False

    one = owner_api.get(f"/api/v1/webhooks/{body['id']}/")
    assert one.status_code == 200 and "secret" not in one.json()
    listed = owner_api.get("/api/v1/webhooks/").json()
    assert listed["count"] == 1 and "secret" not in listed["results"][0]
    assert listed["results"][0]["pending"] == 0 and listed["results"][0]["failed"] == 0

    rotated = owner_api.post(f"/api/v1/webhooks/{body['id']}/rotate-secret")
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (None, body["secret"])


def test_patch_and_delete(owner_api):
    made = create(owner_api).json()
    changed = owner_api.patch(
        f"/api/v1/webhooks/{made['id']}/", {"events": ["*"], "active": False}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["events"] == ["*"] and changed.json()["active"] is False
    gone = owner_api.delete(f"/api/v1/webhooks/{made['id']}/")
    assert gone.status_code == 204
    assert owner_api.get(f"/api/v1/webhooks/{made['id']}/").status_code == 404


def test_a_bad_url_is_a_field_error_in_the_usual_format(owner_api):
    refused = create(owner_api, url="ftp://files.example.test/in")
    assert refused.status_code == 400
    body = refused.json()
    assert body["code"] == "invalid_url"
    assert body["field_errors"] == {"url": ["use an http:// or https:// URL, e.g. https://hooks.example.com/promptledger"]}
    unknown_event = create(owner_api, events=["prompt.deleted"])
    assert unknown_event.status_code == 400 and unknown_event.json()["code"] == "invalid_events"
    missing = owner_api.post("/api/v1/webhooks/", {"events": ["*"]}, format="json")
    assert missing.status_code == 400 and "url" in missing.json()["field_errors"]
    assert create(owner_api, team="nope").json()["code"] == "unknown_team"


def test_who_sees_and_manages_what(api_for, cast):
    made = create(api_for("owner")).json()
    path = f"/api/v1/webhooks/{made['id']}/"
    author = api_for("author")
    assert author.get("/api/v1/webhooks/").json()["count"] == 0
    refused = author.get(path)
    assert refused.status_code == 403 and refused.json()["code"] == "role_too_low"
    assert create(author).status_code == 403
    outsider = api_for("outsider")
    assert outsider.get(path).status_code == 404
    assert outsider.post(f"/api/v1/webhooks/{made['id']}/test").status_code == 404
    assert outsider.get("/api/v1/webhooks/").json()["count"] == 0

    site = create(api_for("owner"), team=None)
    assert site.status_code == 403 and site.json()["code"] == "admin_only"
    admin = api_for("admin")
    site = create(admin, team=None).json()
    assert site["team"] is None
    assert admin.get("/api/v1/webhooks/").json()["count"] == 2
    assert api_for("owner").get(f"/api/v1/webhooks/{site['id']}/").status_code == 404

    read_only = api_for("owner", scopes=["prompts:read"])
    assert read_only.get(path).status_code == 200
    refused = read_only.patch(path, {"active": False}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "scope_missing"


def test_the_list_is_paginated(owner_api):
    for n in range(5):
        assert create(owner_api, description=f"hook {n}").status_code == 201
    first = owner_api.get("/api/v1/webhooks/?page_size=2").json()
    assert first["count"] == 5 and len(first["results"]) == 2 and first["next"]
    last = owner_api.get("/api/v1/webhooks/?page_size=2&page=3").json()
    assert len(last["results"]) == 1 and last["next"] is None


def test_test_ping_delivery_log_and_redeliver(owner_api, api_for, settings, django_capture_on_commit_callbacks):
    from tests.webhooks.conftest import Receiver

    settings.PROMPTLEDGER_WEBHOOK_MAX_ATTEMPTS = 1
    receiver = Receiver(status=500)
    try:
        made = create(owner_api, url=receiver.url).json()
        with django_capture_on_commit_callbacks(execute=False):
            ping = owner_api.post(f"/api/v1/webhooks/{made['id']}/test")
        assert ping.status_code == 202, ping.json()
        assert ping.json()["event"] == "ping" and ping.json()["status"] == "pending"
        pending = owner_api.post(f"/api/v1/webhooks/deliveries/{ping.json()['id']}/redeliver")
        assert pending.status_code == 409 and pending.json()["code"] == "delivery_pending"

        assert delivery.attempt(ping.json()["id"]).outcome == "failed"
        log = owner_api.get(f"/api/v1/webhooks/{made['id']}/deliveries/?status=failed").json()
        (row,) = log["results"]
        assert (row["event"], row["status"], row["attempts"], row["last_status_code"]) == ("ping", "failed", 1, 500)
        assert row["payload"]["event"] == "ping" and row["last_error"] == "HTTP 500"
        assert [(a["number"], a["status_code"], a["outcome"]) for a in row["attempt_log"]] == [(1, 500, "failed")]
        assert owner_api.get(f"/api/v1/webhooks/{made['id']}/deliveries/?status=delivered").json()["count"] == 0
        bad = owner_api.get(f"/api/v1/webhooks/{made['id']}/deliveries/?status=lost")
        assert bad.status_code == 400 and "status" in bad.json()["field_errors"]

        receiver.status = 204
        with django_capture_on_commit_callbacks(execute=False):
            again = owner_api.post(f"/api/v1/webhooks/deliveries/{row['id']}/redeliver")
        assert again.status_code == 202 and again.json()["redelivery_of"] == row["id"]
        assert delivery.attempt(again.json()["id"]).outcome == "delivered"
        assert api_for("outsider").post(f"/api/v1/webhooks/deliveries/{row['id']}/redeliver").status_code == 404
    finally:
        receiver.stop()


def test_deliveries_page_through_the_log(owner_api, cast, django_capture_on_commit_callbacks):
    made = create(owner_api).json()
    subscription = Subscription.objects.get(pk=made["id"])
    with django_capture_on_commit_callbacks(execute=False):
        for _ in range(3):
            services.send_test(actor=Actor(user=cast["owner"]), subscription=subscription)
    page = owner_api.get(f"/api/v1/webhooks/{made['id']}/deliveries/?page_size=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2
    assert Delivery.objects.count() == 3


def test_the_schema_documents_every_webhooks_path(client, db):
    import yaml

    paths = yaml.safe_load(client.get("/api/schema/").content)["paths"]
    for path in [
        "/api/v1/webhooks/",
        "/api/v1/webhooks/{subscription_id}/",
        "/api/v1/webhooks/{subscription_id}/rotate-secret",
        "/api/v1/webhooks/{subscription_id}/test",
        "/api/v1/webhooks/{subscription_id}/deliveries/",
        "/api/v1/webhooks/deliveries/{delivery_id}/redeliver",
    ]:
        assert path in paths, path
    assert {"201", "400", "403"} <= set(paths["/api/v1/webhooks/"]["post"]["responses"])
