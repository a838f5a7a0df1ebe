"""The audit trail's browser pages through Django's test client: the log with its filters and pages,
who sees which events, the export buttons, the chain's state, and a prompt's History tab."""

import datetime
import html
import re

import pytest
from django.utils import timezone

from audit import signing
from audit.models import AuditEvent, ChainVerification
from audit.services import write_checkpoint
from audit.verify import verify_file
from core.actors import Actor
from registry.models import Environment
from registry.services import create_prompt, set_deployment, set_kill_switch
from tests.factories import version_body

LOG = "/audit/"
HISTORY = "/prompts/loan-letter/history/"


@pytest.fixture
def as_user(client, cast):
    def sign_in(username):
        client.force_login(cast[username])
        return client

    return sign_in


@pytest.fixture
def changes(cast, prompt, version):
    """loan-letter v1 deployed to production by its owner and switched off there by its approver;
    and a prompt of team growth, made by the outsider who owns that team."""
    production = Environment.objects.get(slug="production")
    set_deployment(actor=Actor(user=cast["owner"]), prompt=prompt, environment=production, version=version)
    set_kill_switch(
        actor=Actor(user=cast["approver"]), prompt=prompt, environment=production, disabled=True, reason="incident 42"
    )
    create_prompt(
        actor=Actor(user=cast["outsider"]), slug="growth-banner", name="Banner", team=cast["other_team"], tier=3,
        owner="outsider",
    )
    return cast


def text(response):
    return html.unescape(response.content.decode())


def sequences(body):
    return [int(n) for n in re.findall(r'<tr id="event-(\d+)">', body)]


def actions_in(body):
    return re.findall(r'<code class="action-code">([^<]+)</code>', body)


def errors_of(body, field_id):
    match = re.search(rf'<ul class="field-errors" id="{field_id}_errors">(.*?)</ul>', body, re.S)
    return re.findall(r"<li>(.*?)</li>", match.group(1), re.S) if match else []


# --- the log ---------------------------------------------------------------------------------------


def test_log_lists_events_newest_first_with_who_and_what(as_user, changes):
    body = text(as_user("compliance").get(LOG + "?sign_ins=show"))  # the page hides sign-ins unless asked
    shown = sequences(body)
    assert shown == sorted(shown, reverse=True)
    assert set(shown) == set(AuditEvent.objects.values_list("sequence", flat=True))
    assert actions_in(body) == [
        "auth.login", "prompt.created", "kill_switch.changed", "deployment.changed", "version.created"
    ]
    assert "v1 deployed to production" in body
    assert "disabled in production: incident 42" in body
    assert '<a href="/audit/" aria-current="page">Audit</a>' in body


def test_token_actions_say_which_token(api_for, as_user, prompt):
    api_for("author").post("/api/v1/prompts/loan-letter/versions/", version_body(), format="json")
    event = AuditEvent.objects.get(action="version.created")
    body = text(as_user("compliance").get(LOG + "?action=version.created"))
    assert f"via token {event.actor_token}" in re.sub(r"<[^>]+>", "", body)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("action=deployment.changed", {"deployment.changed"}),
        ("action=kill_switch.", {"kill_switch.changed"}),
        ("actor=approver", {"kill_switch.changed"}),
        ("prompt=growth-banner", {"prompt.created"}),
        ("team=growth", {"prompt.created"}),
        ("prompt=loan-letter&action=version.created", {"version.created"}),
    ],
)
def test_log_filters_events(as_user, changes, query, expected):
    body = text(as_user("compliance").get(f"{LOG}?{query}"))
    shown = AuditEvent.objects.filter(sequence__in=sequences(body))
    assert set(shown.values_list("action", flat=True)) == expected


def test_log_filters_by_date_in_utc(as_user, changes):
    client = as_user("compliance")
    today = timezone.now().date()
    tomorrow = today + datetime.timedelta(days=1)
    everything = AuditEvent.objects.exclude(action__in=["auth.login", "auth.logout"]).count()  # hidden by default
    yesterday = today - datetime.timedelta(days=1)
    assert len(sequences(text(client.get(f"{LOG}?since={today}&until={tomorrow}")))) == everything
    # A date alone as `until` includes that whole day.
    assert len(sequences(text(client.get(f"{LOG}?since={today}&until={today}")))) == everything
    assert sequences(text(client.get(f"{LOG}?since={tomorrow}"))) == []
    assert sequences(text(client.get(f"{LOG}?until={yesterday}"))) == []
    assert "No events match these filters" in text(client.get(f"{LOG}?since={tomorrow}"))


def test_a_bad_date_is_explained_next_to_its_field(as_user, changes):
    response = as_user("compliance").get(f"{LOG}?since=last-tuesday&action=version.created")
    assert response.status_code == 200
    body = text(response)
    assert errors_of(body, "id_since") == ["use ISO 8601, e.g. 2026-11-01 or 2026-11-01T09:00:00Z"]
    assert 'aria-invalid="true"' in body
    assert "Fix the highlighted filter to see events." in body
    assert sequences(body) == []
    assert 'value="last-tuesday"' in body  # kept, so the person can correct it
    assert "Export JSONL" not in body


def test_team_member_sees_only_events_of_their_teams(as_user, changes):
    body = text(as_user("viewer").get(LOG))
    actions = set(AuditEvent.objects.filter(sequence__in=sequences(body)).values_list("action", flat=True))
    assert {"version.created", "deployment.changed", "kill_switch.changed"} <= actions
    assert "growth-banner" not in body
    assert "auth.login" not in actions  # site-wide events are for compliance and admins
    assert sequences(text(as_user("viewer").get(f"{LOG}?team=growth"))) == []
    assert "growth-banner" in text(as_user("compliance").get(LOG))


def test_log_pages_by_fifty_and_keeps_filters(as_user, cast, make_events):
    make_events(60, action="test.event", team="payments")
    client = as_user("compliance")
    first = client.get(f"{LOG}?action=test.event").content.decode()
    made = AuditEvent.objects.filter(action="test.event").order_by("-sequence")
    newest = list(made.values_list("sequence", flat=True))
    assert sequences(first) == newest[:50]
    older = re.search(r'href="\?([^"]+)" rel="next">Older', first).group(1).replace("&amp;", "&")
    assert older == f"action=test.event&sign_ins=hide&before={newest[49]}"
    second = client.get(f"{LOG}?{older}").content.decode()
    assert sequences(second) == newest[50:]
    assert 'rel="next"' not in second
    newer = re.search(r'href="\?([^"]+)" rel="prev">', second).group(1).replace("&amp;", "&")
    assert sequences(client.get(f"{LOG}?{newer}").content.decode()) == newest[:50]


def test_empty_log_says_what_will_appear(client, cast):
    client.force_login(cast["viewer"])
    body = text(client.get(LOG))
    assert "No events yet" in body
    assert "Events of the teams you belong to appear here" in body


# --- exports ---------------------------------------------------------------------------------------


def _download(response, path):
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="promptledger-audit-')
    path.write_bytes(b"".join(response.streaming_content))
    return path


def test_export_buttons_carry_the_filters(as_user, changes):
    body = as_user("compliance").get(f"{LOG}?action=deployment.changed&prompt=loan-letter").content.decode()
    query = "prompt=loan-letter&amp;action=deployment.changed&amp;sign_ins=hide"
    assert f'href="/audit/export/?format=jsonl&amp;{query}"' in body
    assert f'href="/audit/export/?format=csv&amp;{query}"' in body
    assert f"python -m audit.verify FILE --public-key {signing.public_key_b64()}" in html.unescape(body)


def test_jsonl_export_verifies_and_is_itself_recorded(as_user, changes, tmp_path):
    client = as_user("compliance")
    path = _download(client.get("/audit/export/?format=jsonl"), tmp_path / "audit.jsonl")
    report = verify_file(str(path), public_key=signing.public_key_b64())
    assert report.ok, report.summary()
    exported = AuditEvent.objects.get(action="audit.exported")
    assert (exported.actor_username, exported.data) == ("compliance", {"format": "jsonl", "filters": {}})
    assert report.last == exported.sequence  # the export's own event is its last line
    assert "Audit trail exported" in text(client.get(LOG))


def test_filtered_jsonl_export_holds_only_matching_events_and_verifies(as_user, changes, tmp_path):
    path = _download(
        as_user("viewer").get("/audit/export/?format=jsonl&action=deployment.changed"), tmp_path / "deploys.jsonl"
    )
    assert verify_file(str(path), public_key=signing.public_key_b64()).ok
    lines = path.read_text().splitlines()
    assert [line for line in lines if '"record":"event"' in line and "deployment.changed" not in line] == []
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.data["filters"] == {"action": "deployment.changed"}


def test_csv_export_has_the_chain_columns(as_user, changes, tmp_path):
    path = _download(as_user("compliance").get("/audit/export/?format=csv&prompt=loan-letter"), tmp_path / "a.csv")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("sequence,occurred_at,actor_type,actor_id,actor_username,actor_token,action")
    assert lines[0].endswith(",prev_hash,hash")
    assert len(lines) == 1 + AuditEvent.objects.filter(prompt="loan-letter").count()
    assert AuditEvent.objects.get(action="audit.exported").data["format"] == "csv"


def test_export_refuses_an_unknown_format_or_a_bad_date(as_user, changes):
    client = as_user("compliance")
    assert client.get("/audit/export/?format=xml").status_code == 400
    response = client.get("/audit/export/?format=csv&until=soon")
    assert response.status_code == 400
    assert "until is not a date or time" in text(response)
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


# --- the chain's state -----------------------------------------------------------------------------


def test_chain_panel_says_not_verified_yet(as_user, changes):
    body = text(as_user("compliance").get(LOG))
    assert "Not verified yet" in body


def test_compliance_verifies_now_and_sees_the_chain_ok(as_user, changes):
    signed = write_checkpoint().sequence
    client = as_user("compliance")
    assert "Verify now" in text(client.get(LOG))
    response = client.post("/audit/verify/", {"query": "action=version.created&next=https://evil.example"})
    assert response.status_code == 302
    assert response["Location"] == "/audit/?action=version.created"
    body = text(client.get(response["Location"]))
    result = ChainVerification.objects.get()
    assert result.ok, result.summary
    assert "The audit chain verified" in body
    assert f"Verified: events 1..{result.last_sequence}, signed up to event {signed} at" in body
    assert 'class="chain-status chain-ok"' in body


def test_a_broken_chain_is_shown_in_red_with_the_event(as_user, changes):
    ChainVerification.objects.create(
        ok=False,
        first_sequence=1,
        last_sequence=9,
        event_count=9,
        problem_sequence=4,
        problem="event 4: changed: its content does not match its hash",
        summary="BROKEN at event 4: changed: its content does not match its hash",
    )
    body = text(as_user("viewer").get(LOG))
    assert re.search(r'class="chain-status chain-broken" role="alert">', body)
    assert "Broken at event 4" in body
    assert "its content does not match its hash" in body


def test_tampering_on_postgres_shows_the_broken_event(as_user, changes, tamper):
    write_checkpoint()
    target = AuditEvent.objects.get(action="deployment.changed").sequence
    tamper("UPDATE audit_auditevent SET data = %s WHERE sequence = %s", ['{"to_version": 7}', target])
    client = as_user("admin")
    response = client.post("/audit/verify/", follow=True)
    body = text(response)
    assert "The audit chain did not verify" in body
    assert f"Broken at event {target}" in body
    assert 'role="alert"' in body


def test_team_members_cannot_verify(as_user, changes):
    client = as_user("viewer")
    assert "Verify now" not in text(client.get(LOG))
    response = client.post("/audit/verify/")
    assert response.status_code == 403
    assert "needs the site role compliance or admin" in text(response)
    assert not ChainVerification.objects.exists()
    assert client.get("/audit/verify/").status_code == 405


# --- a prompt's History tab ------------------------------------------------------------------------


def test_prompt_page_has_overview_and_history_tabs(as_user, changes):
    body = text(as_user("viewer").get("/prompts/loan-letter/"))
    assert '<a href="/prompts/loan-letter/" aria-current="page">Overview</a>' in body
    assert '<a href="/prompts/loan-letter/history/">History</a>' in body


def test_history_lists_versions_deployments_and_kill_switches_with_who(as_user, changes):
    response = as_user("viewer").get(HISTORY)
    assert response.status_code == 200
    body = text(response)
    assert '<a href="/prompts/loan-letter/history/" aria-current="page">History</a>' in body
    rows = re.findall(r'<tr id="event-\d+">(.*?)</tr>', body, re.S)
    by_action = {re.search(r'class="action-code">([^<]+)<', row).group(1): row for row in rows}
    assert set(by_action) == {"version.created", "deployment.changed", "kill_switch.changed"}
    assert ">author</a>" in by_action["version.created"]
    assert ">owner</a>" in by_action["deployment.changed"]
    assert "v1 deployed to production" in by_action["deployment.changed"]
    assert ">approver</a>" in by_action["kill_switch.changed"] and "incident 42" in by_action["kill_switch.changed"]
    assert "growth-banner" not in body


def test_history_of_a_prompt_of_another_team_is_not_found(as_user, changes):
    assert as_user("outsider").get(HISTORY).status_code == 404
