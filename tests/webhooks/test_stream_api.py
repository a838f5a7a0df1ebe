"""The audit streams API (/api/v1/audit-streams/): its contract and status codes, the audit event each
change writes, the receiver's token that no answer carries, who may see and who may change a stream
(and with which token scopes), bad input named field by field, and the stream pages showing what
the API made (and the other way round)."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from core.actors import Actor
from tests.webhooks.siem_receiver import SiemReceiver
from webhooks import audit_stream, stream_services
from webhooks.models import AuditStream

STREAMS = "/api/v1/audit-streams/"
SECRET = "hec-secret-token-8c1f"
READ_AND_WRITE = ["audit:read", "prompts:write"]


@pytest.fixture
def admin_api(api_for):
    return api_for("admin")


@pytest.fixture
def siem():
    receiver = SiemReceiver()
    yield receiver
    receiver.stop()


def create(client, **overrides):
    body = {"name": "splunk-prod", "url": "http://127.0.0.1:9/services/collector", **overrides}
    return client.post(STREAMS, body, format="json")


def events(action):
    return list(AuditEvent.objects.filter(action=action, target_type="audit_stream").order_by("sequence"))


def assert_no_secret(response):
    assert SECRET not in response.content.decode()
    assert "fernet:" not in response.content.decode()  # nor the sealed form
    assert "token" not in response.json().get("results", [response.json()])[0]


# --- create, read, change, pause, resume ---------------------------------------------------------
def test_an_admin_creates_a_stream_and_the_token_is_in_no_answer(admin_api, cast):
    made = create(admin_api, format="splunk_hec", token=SECRET, sourcetype="pl:audit", batch_size=100,
                  interval_seconds=5)
    assert made.status_code == 201, made.json()
    body = made.json()
    assert_no_secret(made)
    assert (body["name"], body["url"], body["format"], body["sourcetype"]) == (
        "splunk-prod", "http://127.0.0.1:9/services/collector", "splunk_hec", "pl:audit")
    assert (body["batch_size"], body["interval_seconds"], body["active"], body["has_token"]) == (100, 5, True, True)
    assert body["display_url"] == "http://127.0.0.1:9/…" and body["created_by"] == "admin"
    # from the first event: the stream is behind by the whole trail, its own creation included
    assert (body["cursor"], body["lag_events"]) == (0, audit_stream.head_sequence())
    stream = AuditStream.objects.get(pk=body["id"])
    assert stream.auth_token() == SECRET and stream.token != SECRET

    [created] = events("audit_stream.created")
    assert (created.target_id, created.actor_type, created.actor_username) == (str(stream.pk), "token", "admin")
    assert created.data["has_token"] is True and SECRET not in str(created.data)

    one = admin_api.get(f"{STREAMS}{stream.pk}/")
    assert one.status_code == 200 and one.json() == {**body, "lag_seconds": one.json()["lag_seconds"]}
    assert_no_secret(one)
    listed = admin_api.get(STREAMS)
    assert listed.status_code == 200 and listed.json()["count"] == 1
    assert listed.json()["results"][0]["id"] == stream.pk
    assert_no_secret(listed)


def test_a_stream_from_now_starts_at_the_head_and_is_not_behind(admin_api):
    body = create(admin_api, start="now").json()
    head = audit_stream.head_sequence()
    # the head when it was made: every event but its own creation's is behind its cursor
    assert (body["cursor"], body["lag_events"]) == (head - 1, 1)
    assert body["format"] == "jsonl" and body["has_token"] is False and body["batch_size"] == 500


def test_patch_changes_a_stream_writes_one_event_and_replaces_or_removes_the_token(admin_api):
    made = create(admin_api, token=SECRET).json()
    path = f"{STREAMS}{made['id']}/"
    changed = admin_api.patch(path, {"batch_size": 50, "url": "http://127.0.0.1:9/moved", "token": SECRET + "-2"},
                              format="json")
    assert changed.status_code == 200, changed.json()
    assert_no_secret(changed)
    assert (changed.json()["batch_size"], changed.json()["url"], changed.json()["has_token"]) == (
        50, "http://127.0.0.1:9/moved", True)
    [updated] = events("audit_stream.updated")
    assert updated.data["changes"]["batch_size"] == {"before": 500, "after": 50}
    assert updated.data["token_replaced"] is True and SECRET not in str(updated.data)
    assert AuditStream.objects.get(pk=made["id"]).auth_token() == SECRET + "-2"

    removed = admin_api.patch(path, {"token": ""}, format="json")
    assert removed.status_code == 200 and removed.json()["has_token"] is False
    assert AuditStream.objects.get(pk=made["id"]).token == ""
    unchanged = admin_api.patch(path, {"batch_size": 50}, format="json")
    assert unchanged.status_code == 200 and len(events("audit_stream.updated")) == 2  # nothing changed: no event


def test_pause_and_resume_each_write_their_event_and_twice_is_a_conflict(admin_api):
    made = create(admin_api).json()
    paused = admin_api.post(f"{STREAMS}{made['id']}/pause")
    assert paused.status_code == 200 and paused.json()["active"] is False
    assert not AuditStream.objects.get(pk=made["id"]).active
    again = admin_api.post(f"{STREAMS}{made['id']}/pause")
    assert again.status_code == 409 and again.json()["code"] == "audit_stream_unchanged"
    resumed = admin_api.post(f"{STREAMS}{made['id']}/resume")
    assert resumed.status_code == 200 and resumed.json()["active"] is True
    assert [len(events("audit_stream.paused")), len(events("audit_stream.resumed"))] == [1, 1]
    assert events("audit_stream.paused")[0].data == {"name": "splunk-prod", "cursor": 0}


def test_the_detail_shows_the_status_the_page_shows(admin_api, siem, settings):
    settings.PROMPTLEDGER_AUDIT_STREAM_TIMEOUT = 2
    made = create(admin_api, url=siem.url, batch_size=5000).json()
    audit_stream.run(made["id"])  # a real batch to a real receiver, acknowledged
    path = f"{STREAMS}{made['id']}/"
    sent = admin_api.get(path).json()
    head = audit_stream.head_sequence()
    assert (sent["cursor"], sent["delivered_events"], sent["lag_events"], sent["lag_seconds"]) == (head, head, 0, 0)
    assert sent["cursor_hash"] == AuditEvent.objects.get(sequence=head).hash
    assert sent["last_success_at"] and sent["last_status_code"] == 200 and sent["last_error"] == ""

    siem.status = 503
    admin_api.patch(path, {"interval_seconds": 1}, format="json")  # one event more to send; due at once
    audit_stream.run(made["id"])
    failing = admin_api.get(path).json()
    assert (failing["lag_events"], failing["last_status_code"], failing["failures"]) == (1, 503, 1)
    assert failing["last_error"] and failing["next_attempt_at"] and failing["cursor"] == head
    assert "siem-token-in-url" in failing["url"]  # the admin sees the URL in full; its token is in no event
    assert "siem-token-in-url" not in str([e.data for e in AuditEvent.objects.filter(target_type="audit_stream")])


# --- who may ------------------------------------------------------------------------------------
def test_compliance_reads_streams_without_the_full_url_and_may_not_change_them(admin_api, api_for):
    made = create(admin_api, url="http://127.0.0.1:9/collector?key=in-the-url").json()
    compliance = api_for("compliance")
    listed = compliance.get(STREAMS)
    assert listed.status_code == 200 and listed.json()["count"] == 1
    one = compliance.get(f"{STREAMS}{made['id']}/")
    assert one.status_code == 200 and one.json()["url"] is None and one.json()["display_url"] == "http://127.0.0.1:9/…"
    assert "in-the-url" not in listed.content.decode() + one.content.decode()
    assert compliance.options(f"{STREAMS}{made['id']}/").status_code == 200
    for response in (
        compliance.patch(f"{STREAMS}{made['id']}/", {"batch_size": 10}, format="json"),
        compliance.post(f"{STREAMS}{made['id']}/pause"),
        create(compliance, name="compliance-own"),
    ):
        assert response.status_code == 403 and response.json()["code"] == "site_role_required"
    assert AuditStream.objects.get().batch_size == 500 and AuditStream.objects.get().active


@pytest.mark.parametrize("who", ["viewer", "owner", "outsider"])
def test_team_members_neither_see_nor_change_streams(admin_api, api_for, who):
    made = create(admin_api).json()
    client = api_for(who)
    for response in (
        client.get(STREAMS), client.get(f"{STREAMS}{made['id']}/"),
        client.patch(f"{STREAMS}{made['id']}/", {"batch_size": 10}, format="json"),
        client.post(f"{STREAMS}{made['id']}/pause"), create(client, name="mine"),
    ):
        assert response.status_code == 403 and response.json()["code"] == "site_role_required", response.json()
    assert AuditStream.objects.count() == 1 and AuditStream.objects.get().active


def test_a_token_needs_prompts_write_to_change_and_audit_read_to_see(api_for):
    reader = api_for("admin", scopes=["audit:read"])
    refused = create(reader)
    assert refused.status_code == 403 and refused.json()["code"] == "scope_missing"
    assert not AuditStream.objects.exists() and not events("audit_stream.created")

    writer = api_for("admin", scopes=["prompts:write"])
    made = create(writer)
    assert made.status_code == 201 and made.json()["lag_events"] is None  # its status is audit:read's
    path = f"{STREAMS}{made.json()['id']}/"
    for response in (writer.get(STREAMS), writer.get(path), writer.patch(path, {"batch_size": 9}, format="json"),
                     writer.post(f"{path}pause")):
        assert response.status_code == 403 and response.json()["code"] == "scope_missing"
        assert "audit:read" in response.json()["detail"]
    assert reader.get(path).json()["url"] is None  # the URL in full is for who may manage
    paused = reader.post(f"{path}pause")
    assert paused.status_code == 403 and "prompts:write" in paused.json()["detail"]

    both = api_for("admin", scopes=READ_AND_WRITE)
    assert both.post(f"{path}pause").status_code == 200
    assert both.patch(path, {"batch_size": 9}, format="json").json()["batch_size"] == 9


def test_an_unknown_stream_is_a_404(admin_api, api_for):
    for response in (
        admin_api.get(f"{STREAMS}999999/"), admin_api.patch(f"{STREAMS}999999/", {"batch_size": 10}, format="json"),
        admin_api.post(f"{STREAMS}999999/pause"), admin_api.post(f"{STREAMS}999999/resume"),
        api_for("compliance").get(f"{STREAMS}999999/"),
    ):
        assert response.status_code == 404 and response.json()["code"] == "audit_stream_not_found"


def test_anonymous_is_refused(anon):
    assert anon.get(STREAMS).status_code == 401
    assert create(anon).status_code == 401


# --- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("overrides", "field", "code"), [
    ({"url": "http://10.0.0.5/collector"}, "url", "url_not_allowed"),
    ({"url": "http://169.254.169.254/latest/meta-data"}, "url", "url_not_allowed"),
    ({"url": "http://0x7f.1/collector"}, "url", "url_not_allowed"),
    ({"url": "ftp://siem.example.com/in"}, "url", "invalid_url"),
    ({"url": ""}, "url", None),
    ({"format": "xml"}, "format", "invalid"),
    ({"batch_size": 0}, "batch_size", "invalid"),
    ({"batch_size": 5001}, "batch_size", "invalid"),
    ({"batch_size": "many"}, "batch_size", "invalid"),
    ({"interval_seconds": 3601}, "interval_seconds", "invalid"),
    ({"name": "Splunk Prod!"}, "name", "invalid"),
    ({"start": "yesterday"}, "start", "invalid"),
    ({"token": "t" * 401}, "token", "invalid"),
    ({"sourcetype": "s" * 101}, "sourcetype", "invalid"),
])
def test_bad_input_is_a_400_naming_the_field(admin_api, settings, overrides, field, code):
    settings.PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS = []  # the tests' local receivers are allowed elsewhere
    refused = create(admin_api, **{"url": "https://siem.example.com/collector", **overrides})
    assert refused.status_code == 400, refused.json()
    body = refused.json()
    assert list(body["field_errors"]) == [field] and body["field_errors"][field][0]
    if code:
        assert body["code"] == code
    assert not AuditStream.objects.exists() and not events("audit_stream.created")


def test_a_missing_field_or_a_taken_name_is_named(admin_api):
    missing = admin_api.post(STREAMS, {"name": "siem"}, format="json")
    assert missing.status_code == 400 and list(missing.json()["field_errors"]) == ["url"]
    assert create(admin_api).status_code == 201
    paused = create(admin_api, name="born-paused", active=False)
    assert paused.status_code == 400 and list(paused.json()["field_errors"]) == ["active"]
    taken = create(admin_api)
    assert taken.status_code == 400 and taken.json()["field_errors"] == {"name": ["another stream has this name"]}


def test_patch_refuses_bad_values_and_fields_it_cannot_change(admin_api, settings):
    made = create(admin_api).json()
    path = f"{STREAMS}{made['id']}/"
    settings.PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS = []
    for body, field in (
        ({"url": "http://192.168.1.10/in"}, "url"), ({"batch_size": 0}, "batch_size"), ({"format": "csv"}, "format"),
        ({"name": "renamed"}, "name"), ({"active": False}, "active"), ({"start": "now"}, "start"),
    ):
        refused = admin_api.patch(path, body, format="json")
        assert refused.status_code == 400 and list(refused.json()["field_errors"]) == [field], (body, refused.json())
    stream = AuditStream.objects.get(pk=made["id"])
    assert (stream.name, stream.url, stream.batch_size, stream.active) == (
        "splunk-prod", "http://127.0.0.1:9/services/collector", 500, True)
    assert not events("audit_stream.updated")


# --- the pages and the API agree ------------------------------------------------------------------
def test_a_stream_made_through_the_api_shows_on_the_pages_and_one_made_on_a_page_in_the_api(admin_api, cast):
    made = create(admin_api, name="from-api").json()
    browser = Client()
    browser.force_login(cast["admin"])
    listing = browser.get("/settings/webhooks/streams/").content.decode()
    assert f'href="/settings/webhooks/streams/{made["id"]}/">from-api</a>' in listing
    page = browser.get(f"/settings/webhooks/streams/{made['id']}/").content.decode()
    lag = admin_api.get(f"{STREAMS}{made['id']}/").json()["lag_events"]
    assert f'data-lag-events="{lag}"' in page and "event 0 acknowledged" in page

    posted = browser.post("/settings/webhooks/streams/new/", {
        "name": "from-page", "url": "http://127.0.0.1:9/ingest", "format": "jsonl", "token": SECRET,
        "sourcetype": "", "batch_size": "100", "interval_seconds": "5", "start": "beginning"})
    assert posted.status_code == 302
    listed = admin_api.get(STREAMS)
    assert [s["name"] for s in listed.json()["results"]] == ["from-api", "from-page"]
    assert listed.json()["results"][1]["has_token"] is True and SECRET not in listed.content.decode()

    browser.post(f"/settings/webhooks/streams/{made['id']}/pause/", {"active": "false"})
    assert admin_api.get(f"{STREAMS}{made['id']}/").json()["active"] is False
    assert admin_api.post(f"{STREAMS}{made['id']}/resume").status_code == 200
    assert '<span class="badge run-status">Paused</span>' not in browser.get(
        f"/settings/webhooks/streams/{made['id']}/").content.decode()
    assert [e.action for e in AuditEvent.objects.filter(target_id=str(made["id"]), target_type="audit_stream")
            .order_by("sequence")] == ["audit_stream.created", "audit_stream.paused", "audit_stream.resumed"]
    assert stream_services.get_stream(actor=Actor(user=cast["admin"]), stream_id=made["id"]).active
