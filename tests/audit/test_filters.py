"""The audit log's filters by deploy request, version, actor and sign-ins, in the page, the API and
the exports, the action filter grouped by kind, and the export panel saying in words what it will
export and how many events."""

import csv
import html
import io
import json
import re

import pytest
from django.utils import timezone

from approvals import administration
from approvals import services as approvals
from audit.models import AuditEvent
from core.actors import Actor
from registry.models import Environment
from registry.services import create_version
from tests.factories import version_body

LOG = "/audit/"
PASSWORD = "correct-horse-battery"  # noqa: S105 - the factories' password
API = "/api/v1/audit-events/"


def acting(user, request_id):
    return Actor(user=user, request_id=request_id, authenticated_at=timezone.now())


@pytest.fixture
def story(cast, prompt, version):
    """loan-letter (tier 1, no gate) v2 requested for production (request A: opened, approved and
    deployed, each in its own web request), and v1 requested for staging (request B, left open);
    compliance has signed in, and someone failed to."""
    administration.update_policy(actor=Actor.for_system(), tier=1, requires_gate=False, reason="test")
    body = version_body("Dear {{ name }},")
    v2, _ = create_version(actor=acting(cast["author"], "r-v2"), prompt=prompt, messages=body["messages"],
                           variables=body["variables"], model=body["model"], message="friendlier")
    production, staging = (Environment.objects.get(slug=s) for s in ("production", "staging"))
    a = approvals.open_request(actor=acting(cast["author"], "r-open-a"), prompt=prompt, version=v2,
                               environment=production, rationale="friendlier")
    approvals.approve(actor=acting(cast["approver"], "r-approve-a"), request=a)
    a.refresh_from_db()
    approvals.deploy(actor=acting(cast["author"], "r-deploy-a"), request=a)
    b = approvals.open_request(actor=acting(cast["author"], "r-open-b"), prompt=prompt, version=version,
                               environment=staging, rationale="try it")
    return {**cast, "a": a, "b": b, "v2": v2}


def sign_in(client, password=None):
    """Through the sign-in form, as a person does: it records the sign-in (or its failure)."""
    client.post("/accounts/login/", {"username": "compliance", "password": password or PASSWORD})


def text(response):
    return html.unescape(response.content.decode())


def shown(response):
    sequences = [int(n) for n in re.findall(r'<tr id="event-(\d+)">', response.content.decode())]
    return list(AuditEvent.objects.filter(sequence__in=sequences).order_by("sequence").values_list("action", flat=True))


def api_actions(client, query):
    response = client.get(f"{API}?{query}")
    assert response.status_code == 200, response.content
    return sorted(e["action"] for e in response.json()["results"])


REQUEST_A = ["deploy_request.approved", "deploy_request.deployed", "deploy_request.opened", "deployment.changed"]


def test_a_deploy_request_shows_its_events_and_the_pointer_move_its_deploy_made(story, browser_for, api_for):
    page = browser_for("compliance").get(f"{LOG}?deploy_request={story['a'].pk}")
    assert sorted(shown(page)) == REQUEST_A
    assert api_actions(api_for("compliance", ["audit:read"]), f"deploy_request={story['a'].pk}") == REQUEST_A
    assert shown(browser_for("compliance").get(f"{LOG}?deploy_request={story['b'].pk}")) == ["deploy_request.opened"]
    event = AuditEvent.objects.get(action="deployment.changed")
    assert event.request_id == "r-deploy-a"  # what ties it to the request: the same web request


def test_a_version_shows_its_creation_its_requests_and_where_it_went_live(story, browser_for, api_for):
    expected = ["deploy_request.approved", "deploy_request.deployed", "deploy_request.opened", "deployment.changed",
                "version.created"]
    assert sorted(shown(browser_for("compliance").get(f"{LOG}?prompt=loan-letter&version=2"))) == expected
    assert api_actions(api_for("compliance", ["audit:read"]), "prompt=loan-letter&version=2") == expected
    v1 = api_actions(api_for("compliance", ["audit:read"]), "prompt=loan-letter&version=1")
    assert v1 == ["deploy_request.opened", "version.created"]  # request B, and v1 itself


def test_a_version_needs_its_prompt(story, browser_for, api_for):
    body = text(browser_for("compliance").get(f"{LOG}?version=2"))
    assert "choose the prompt too" in body and "Fix the highlighted filter" in body
    response = api_for("compliance", ["audit:read"]).get(f"{API}?version=2")
    assert response.status_code == 400 and "version" in response.json()["field_errors"]
    bad = api_for("compliance", ["audit:read"]).get(f"{API}?deploy_request=seven")
    assert bad.status_code == 400 and "deploy_request" in bad.json()["field_errors"]


def test_the_actor_filter_still_narrows_to_one_person(story, browser_for, api_for):
    assert shown(browser_for("compliance").get(f"{LOG}?actor=approver")) == ["deploy_request.approved"]
    assert api_actions(api_for("compliance", ["audit:read"]), "actor=approver") == ["deploy_request.approved"]


def test_the_page_hides_sign_ins_unless_asked_and_keeps_failures(story, client):
    sign_in(client, password="wrong")
    sign_in(client)
    default = shown(client.get(LOG))
    assert "auth.login" not in default and "auth.login_failed" in default
    assert "auth.login" in shown(client.get(f"{LOG}?sign_ins=show"))
    assert shown(client.get(f"{LOG}?action=auth.login")) == ["auth.login"]  # asking for them shows them
    body = client.get(LOG).content.decode()
    assert 'id="id_sign_ins" checked' in body
    assert 'id="id_sign_ins" checked' not in client.get(f"{LOG}?sign_ins=show").content.decode()


def test_the_api_shows_sign_ins_unless_asked_to_hide_them(story, client, api_for):
    sign_in(client)
    api = api_for("compliance", ["audit:read"])
    assert "auth.login" in api_actions(api, "")
    assert "auth.login" not in api_actions(api, "sign_ins=hide")
    assert api.get(f"{API}?sign_ins=maybe").status_code == 400


def test_exports_hold_exactly_the_filtered_events(story, browser_for, api_for):
    query = f"deploy_request={story['a'].pk}"
    jsonl = b"".join(api_for("compliance", ["audit:read"]).get(
        f"{API}export?format=jsonl&{query}").streaming_content).decode()
    lines = [json.loads(line) for line in jsonl.splitlines()]
    assert sorted(r["action"] for r in lines if r["record"] == "event") == REQUEST_A
    manifest = lines[-1]
    assert manifest["filters"] == {"deploy_request": str(story["a"].pk)} and manifest["contiguous"] is False
    page_csv = b"".join(browser_for("compliance").get(f"/audit/export/?format=csv&{query}").streaming_content)
    assert sorted(r["action"] for r in csv.DictReader(io.StringIO(page_csv.decode()))) == REQUEST_A
    versioned = b"".join(api_for("compliance", ["audit:read"]).get(
        f"{API}export?format=csv&prompt=loan-letter&version=1").streaming_content).decode()
    assert sorted(r["action"] for r in csv.DictReader(io.StringIO(versioned))) == ["deploy_request.opened",
                                                                                   "version.created"]


def test_the_export_panel_says_what_it_will_export_and_how_many(story, client):
    sign_in(client)
    body = text(client.get(f"{LOG}?deploy_request={story['a'].pk}"))
    summary = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", re.search(r'<p id="export-summary">(.*?)</p>', body,
                                                                     re.S).group(1)))
    assert summary == (f"4 events: about deploy request #{story['a'].pk}, with what its requests recorded (the "
                       "deploy's pointer move and gate check); without successful sign-ins and sign-outs, oldest "
                       "first.")
    assert "A selection of events" in body
    assert f"format=jsonl&deploy_request={story['a'].pk}&sign_ins=hide" in body
    everything = text(client.get(f"{LOG}?sign_ins=show"))
    count = AuditEvent.objects.count()
    assert f"{count} events: every event you can see, oldest first." in re.sub(r"<[^>]+>", "", everything)
    assert "A contiguous stretch of the chain" in everything
    words = re.sub(r"<[^>]+>", "", text(client.get(f"{LOG}?prompt=loan-letter&version=2&actor=author&"
                                                   "action=deploy_request.&since=2026-01-01")))
    assert ("from 2026-01-01 on (UTC); naming v2 of prompt loan-letter; by author; of kind “Deploy requests and "
            "approvals”; without successful sign-ins and sign-outs") in re.sub(r"\s+", " ", words)
    assert "Include sign-ins and sign-outs" in body


def test_past_its_cap_the_export_panel_says_more_than(story, client, monkeypatch):
    """A million events are not counted on each view: past the cap the panel says "more than"."""
    from audit import views

    monkeypatch.setattr(views, "EXPORT_COUNT_CAP", 4)  # request A has 4 events
    sign_in(client)
    assert AuditEvent.objects.count() > 4
    body = re.sub(r"<[^>]+>", "", text(client.get(f"{LOG}?sign_ins=show")))
    assert "More than 4 events: every event you can see" in body
    few = re.sub(r"<[^>]+>", "", text(client.get(f"{LOG}?deploy_request={story['a'].pk}&sign_ins=show")))
    assert "More than" not in few and "4 events" in few


def test_a_team_member_is_told_the_export_holds_their_teams_only(story, browser_for):
    body = re.sub(r"<[^>]+>", "", text(browser_for("viewer").get(f"{LOG}?deploy_request={story['a'].pk}")))
    assert "of your teams only" in body


def test_the_action_filter_groups_actions_by_kind(story, browser_for):
    body = browser_for("compliance").get(LOG).content.decode()
    select = re.search(r'<select name="action"[^>]*>(.*?)</select>', body, re.S).group(1)
    outside = re.sub(r"<optgroup.*?</optgroup>", "", select, flags=re.S)
    assert re.findall(r'<option value="([^"]*)"', outside) == [""]  # "Any action", and groups only
    groups = re.findall(r'<optgroup label="([^"]+)">', select)
    assert "Sign-ins and sign-outs" in groups and "Deploy requests and approvals" in groups
    assert "Access reviews" in groups and groups[-1] == "Other actions"
    sign_ins = re.search(r'<optgroup label="Sign-ins and sign-outs">(.*?)</optgroup>', select, re.S).group(1)
    assert re.findall(r'value="([^"]+)"', sign_ins) == ["auth.", "auth.login_failed", "auth.locked_out",
                                                         "auth.login", "auth.logout"]
