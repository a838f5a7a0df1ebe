"""Configuring audit streams: admins only, the webhooks' SSRF rules on the URL, the token sealed and
never recorded, every change audited; the pages offer the forms only to admins, and show compliance
the cursor and lag."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from core.actors import Actor
from core.errors import PermissionDenied, ValidationFailed
from webhooks import audit_stream, stream_services
from webhooks.models import AuditStream


def create(cast, as_="admin", **kwargs):
    options = {"name": "splunk-prod", "url": "http://127.0.0.1:9/services/collector", **kwargs}
    return stream_services.create_stream(actor=Actor(user=cast[as_]), **options)


@pytest.mark.parametrize("url", [
    "http://10.0.0.5/collector", "http://169.254.169.254/latest/meta-data", "http://localhost:8088/collector",
    "http://[::ffff:127.0.0.2]/x", "http://0x7f.2/x", "ftp://siem.example.com/x",
])
def test_a_private_or_local_url_is_refused_like_a_webhooks(cast, url, settings):
    settings.PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS = []  # the tests' local receivers are allowed elsewhere
    with pytest.raises(ValidationFailed) as refused:
        create(cast, url=url)
    assert "url" in refused.value.field_errors
    assert not AuditStream.objects.exists()


def test_an_operator_allowed_network_may_be_streamed_to(cast, settings):
    settings.PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert create(cast, url="http://10.20.1.2:8088/services/collector").pk


@pytest.mark.parametrize("who", ["owner", "approver", "viewer", "compliance", "outsider"])
def test_only_admins_configure_streams(cast, who):
    with pytest.raises(PermissionDenied):
        create(cast, as_=who)
    stream = create(cast)
    for change in (
        lambda actor: stream_services.update_stream(actor=actor, stream=stream, batch_size=10),
        lambda actor: stream_services.set_active(actor=actor, stream=stream, active=False),
    ):
        with pytest.raises(PermissionDenied):
            change(Actor(user=cast[who]))


def test_compliance_reads_streams_and_team_members_do_not(cast):
    create(cast)
    assert [s.name for s in stream_services.streams(Actor(user=cast["compliance"]))] == ["splunk-prod"]
    with pytest.raises(PermissionDenied):
        stream_services.streams(Actor(user=cast["owner"]))


def test_changes_are_audited_without_the_token_or_the_urls_path(cast):
    admin = Actor(user=cast["admin"])
    stream = create(cast, token="hec-secret-token-1", format="splunk_hec")
    assert stream.token.startswith("fernet:") and stream.auth_token() == "hec-secret-token-1"
    stream_services.update_stream(actor=admin, stream=stream, batch_size=50, token="hec-secret-token-2")
    stream_services.set_active(actor=admin, stream=stream, active=False)
    events = list(AuditEvent.objects.filter(target_type="audit_stream").order_by("sequence"))
    assert [e.action for e in events] == ["audit_stream.created", "audit_stream.updated", "audit_stream.paused"]
    assert events[1].data["changes"] == {"batch_size": {"before": 500, "after": 50}}
    assert events[1].data["token_replaced"] is True
    recorded = str([e.data for e in events])
    assert "hec-secret-token" not in recorded and "services/collector" not in recorded
    with pytest.raises(ValidationFailed):
        stream_services.update_stream(actor=admin, stream=stream, batch_size=0)
    with pytest.raises(ValidationFailed) as taken:
        create(cast)
    assert taken.value.field_errors == {"name": ["another stream has this name"]}


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def test_an_admin_creates_a_stream_in_the_browser_and_sees_its_status(cast):
    admin = _client(cast["admin"])
    assert "Audit streams (SIEM)" in admin.get("/settings/webhooks/").content.decode()
    assert "Create the first audit stream" in admin.get("/settings/webhooks/streams/").content.decode()
    made = admin.post("/settings/webhooks/streams/new/", {
        "name": "siem", "url": "http://127.0.0.1:9/ingest", "format": "jsonl", "token": "", "sourcetype": "",
        "batch_size": "100", "interval_seconds": "5", "start": "beginning"})
    assert made.status_code == 302, made.content[:500]
    stream = AuditStream.objects.get(name="siem")
    page = admin.get(made["Location"]).content.decode()
    assert "event 0 acknowledged" in page and f'data-lag-events="{audit_stream.head_sequence()}"' in page
    refused = admin.post("/settings/webhooks/streams/new/", {
        "name": "inside", "url": "http://192.168.1.10/ingest", "format": "jsonl", "batch_size": "100",
        "interval_seconds": "5", "start": "beginning"})
    assert refused.status_code == 400 and "not a public address" in refused.content.decode()
    paused = admin.post(f"/settings/webhooks/streams/{stream.pk}/pause/", {"active": "false"})
    assert paused.status_code == 302 and not AuditStream.objects.get(pk=stream.pk).active


def test_compliance_sees_the_status_without_the_forms_and_owners_are_refused(cast):
    stream = create(cast)
    compliance = _client(cast["compliance"])
    page = compliance.get(f"/settings/webhooks/streams/{stream.pk}/").content.decode()
    assert "Behind" in page and 'id="edit-title"' not in page and "Pause</button>" not in page
    assert "New audit stream" not in compliance.get("/settings/webhooks/streams/").content.decode()
    assert compliance.post(f"/settings/webhooks/streams/{stream.pk}/pause/", {"active": "false"}).status_code == 403
    owner = _client(cast["owner"])
    assert owner.get("/settings/webhooks/streams/").status_code == 403
    assert "Audit streams (SIEM)" not in owner.get("/settings/webhooks/").content.decode()
    assert owner.get("/settings/webhooks/streams/new/").status_code == 403
