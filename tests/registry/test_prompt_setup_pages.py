"""Setting a prompt up in the browser, through Django's test client on PostgreSQL: a new prompt with
its first version (audited, and all or nothing), its settings, named approvers, the tier, the gate
with today's verdict, and the kill switch. Each role is offered only the forms it may submit, and a
refused POST is a 403 that changes nothing."""

import html
import json
import re

import pytest

from approvals.models import DeployRequest
from audit.models import AuditEvent
from core.actors import Actor
from evals import queueing
from evals import services as evals
from evals.models import EvalRun, Gate
from registry.models import Deployment, Environment, Prompt, PromptVersion
from registry.services import set_deployment
from webhooks import services as webhooks
from webhooks.models import Delivery

pytestmark = pytest.mark.usefixtures("postgres")

NEW = "/new-prompt/"
PROMPT = "/prompts/loan-letter/"
SETTINGS = "/prompts/loan-letter/settings/"
APPROVERS = "/prompts/loan-letter/settings/approvers/"
TIER = "/prompts/loan-letter/settings/tier/"
GATE = "/prompts/loan-letter/gate/"
KILL = "/prompts/loan-letter/kill-switch/"


def text(response):
    return html.unescape(response.content.decode())


def new_prompt_body(llm, **overrides):
    body = {
        "slug": "claim-reply", "name": "Claim reply", "team": "payments", "tier": "1", "owner": "owner",
        "description": "Answers a customer's claim.", "tags": "claims, email", "data_categories": ["pii"],
        "messages-TOTAL_FORMS": "1", "messages-INITIAL_FORMS": "1", "messages-MIN_NUM_FORMS": "0",
        "messages-MAX_NUM_FORMS": "1000", "messages-0-role": "system",
        "messages-0-content": "Reply to {{ name }} about their claim.",
        "variables": json.dumps({"name": {"type": "string", "required": True}}),
        "llm_model": str(llm.pk), "params": '{"temperature": 0}', "response_schema": "", "message": "first draft",
    }
    body.update(overrides)
    return body


def field_errors(page, name, prefix="id_"):
    """The error texts shown under the field whose id is ``<prefix><name>``."""
    match = re.search(rf'<ul class="field-errors" id="{prefix}{name}_errors">(.*?)</ul>', page, re.S)
    return re.findall(r"<li>(.*?)</li>", match.group(1), re.S) if match else []


@pytest.fixture
def deployed(cast, prompt, version):
    production = Environment.objects.get(slug="production")
    set_deployment(actor=Actor.for_system(), prompt=prompt, environment=production, version=version)
    subscription, _ = webhooks.create_subscription(
        actor=Actor(user=cast["owner"]), url="http://127.0.0.1:9/hook", events=["kill_switch.changed"],
        team=cast["team"],
    )
    return subscription


# --- a new prompt with version 1 -----------------------------------------------------------------
def test_an_author_creates_a_prompt_with_its_first_version_and_both_are_audited(browser_for, cast):
    author = browser_for("author")
    page = author.get("/")
    assert 'href="/new-prompt/"' in text(page)
    response = author.post(NEW, new_prompt_body(cast["llm"]))
    assert response.status_code == 302 and response["Location"] == "/prompts/claim-reply/"
    prompt = Prompt.objects.get(slug="claim-reply")
    assert (prompt.team, prompt.tier, prompt.owner) == (cast["team"], 1, cast["owner"])
    assert prompt.tags == ["claims", "email"] and prompt.data_categories == ["pii"]
    version = PromptVersion.objects.get(prompt=prompt)
    assert version.number == 1 and version.author == cast["author"] and version.change_note == "first draft"
    events = AuditEvent.objects.filter(prompt="claim-reply").order_by("sequence")
    actions = list(events.values_list("action", flat=True))
    assert actions == ["prompt.created", "version.created"]
    assert "Prompt claim-reply created with version 1." in text(author.get(response["Location"]))


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"slug": "loan-letter"}, "slug", "already taken"),
        ({"slug": "Not A Slug"}, "slug", "lowercase letters"),
        ({"tier": "7"}, "tier", "an integer from 0"),
        ({"data_categories": ["pii", "secrets"]}, "data_categories", "'secrets' is not allowed"),
        ({"owner": "outsider"}, "owner", "must be a member of team 'payments'"),
        ({"name": ""}, "name", "required"),
    ],
)
def test_bad_prompt_input_comes_back_next_to_its_field_and_nothing_is_written(
    browser_for, cast, prompt, overrides, field, says
):
    author = browser_for("author")  # signing in is itself audited: count after it
    before = (Prompt.objects.count(), PromptVersion.objects.count(), AuditEvent.objects.count())
    response = author.post(NEW, new_prompt_body(cast["llm"], **overrides))
    assert response.status_code in (400, 409)
    page = text(response)
    assert "The prompt was not created" in page
    assert any(says in error for error in field_errors(page, field)), field_errors(page, field)
    assert (Prompt.objects.count(), PromptVersion.objects.count(), AuditEvent.objects.count()) == before


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("Hi {{ name }}, your claim {{ claim_id }}.", "'claim_id' is not a declared variable"),
        ("Hi {% for x in %}{{ name }}", "template syntax error"),
    ],
)
def test_a_template_the_sandbox_refuses_leaves_no_prompt_behind(browser_for, cast, template, says):
    """The prompt is valid and is written first; the version fails; the prompt and its audit event
    are rolled back with it."""
    author = browser_for("author")
    before = AuditEvent.objects.count()
    response = author.post(NEW, new_prompt_body(cast["llm"], **{"messages-0-content": template}))
    assert response.status_code == 400
    errors = re.search(r'id="id_messages-0-content_errors">(.*?)</ul>', text(response), re.S)
    assert errors and says in errors.group(1)
    assert 'value="claim-reply"' in text(response)  # what was typed comes back
    assert not Prompt.objects.filter(slug="claim-reply").exists()
    assert AuditEvent.objects.count() == before


def test_the_new_prompt_form_offers_only_the_teams_one_may_create_in(browser_for, cast):
    page = text(browser_for("author").get(NEW))
    assert '<option value="payments"' in page and '<option value="growth"' not in page
    assert browser_for("outsider").post(NEW, new_prompt_body(cast["llm"])).status_code == 400  # not their team
    assert not Prompt.objects.filter(slug="claim-reply").exists()


def test_a_viewer_is_offered_no_new_prompt_and_their_post_is_403(browser_for, cast):
    viewer = browser_for("viewer")
    assert 'href="/new-prompt/"' not in text(viewer.get("/"))
    assert "ask a team owner" in text(viewer.get("/"))
    assert viewer.get(NEW).status_code == 403
    assert viewer.post(NEW, new_prompt_body(cast["llm"])).status_code == 403
    assert not Prompt.objects.filter(slug="claim-reply").exists()


# --- who is offered which form -------------------------------------------------------------------
FORMS = {
    "settings": f'action="{SETTINGS}"', "owner field": 'name="owner"', "approvers": f'action="{APPROVERS}"',
    "raise tier": f'action="{TIER}"', "lower tier": 'action="/approvals/tier-change/loan-letter/"',
    "gate": 'name="max_regression"', "kill switch": 'href="/prompts/loan-letter/kill-switch/?environment=',
}
OFFERED = {
    "viewer": set(),
    "author": {"settings"},
    "approver": {"settings", "kill switch"},
    "owner": set(FORMS),
}


@pytest.mark.parametrize("role", list(OFFERED))
def test_each_role_is_offered_only_the_forms_it_may_submit(browser_for, prompt, version, deployed, role):
    client = browser_for(role)
    pages = text(client.get(PROMPT)) + text(client.get(GATE))
    settings_page = client.get(SETTINGS)
    if role == "viewer":
        assert settings_page.status_code == 403
    else:
        pages += text(settings_page)
    offered = {name for name, marker in FORMS.items() if marker in pages}
    assert offered == OFFERED[role]


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (SETTINGS, {"name": "Renamed", "description": "", "tags": ""}),
        (APPROVERS, {"approvers": ["approver"]}),
        (TIER, {"tier": "0"}),
        (GATE, {"max_regression": "0.1"}),
        (KILL, {"environment": "production", "disabled": "true", "reason": "leaks"}),
        (NEW, {"slug": "x", "name": "X", "team": "payments", "tier": "3", "owner": "viewer"}),
    ],
)
def test_a_viewers_post_is_403_and_changes_nothing(browser_for, prompt, version, url, body):
    viewer = browser_for("viewer")
    before = AuditEvent.objects.count()
    response = viewer.post(url, body)
    assert response.status_code == 403
    assert AuditEvent.objects.count() == before
    prompt.refresh_from_db()
    assert prompt.name != "Renamed" and prompt.tier == 1


# --- settings, approvers, tier --------------------------------------------------------------------
def test_an_owner_edits_settings_and_the_change_is_audited(browser_for, cast, prompt):
    response = browser_for("owner").post(SETTINGS, {
        "name": "Loan letter (EU)", "description": "Letters to EU customers.", "tags": "letters eu",
        "owner": "approver", "data_categories": ["pii", "legal"],
    })
    assert response.status_code == 302
    prompt.refresh_from_db()
    assert (prompt.name, prompt.owner, prompt.tags, prompt.data_categories) == (
        "Loan letter (EU)", cast["approver"], ["eu", "letters"], ["legal", "pii"],
    )
    event = AuditEvent.objects.get(action="prompt.updated", prompt="loan-letter")
    assert event.actor_username == "owner"


def test_an_author_edits_details_but_owner_and_categories_are_not_theirs_to_send(browser_for, cast, prompt):
    author = browser_for("author")
    page = text(author.get(SETTINGS))
    assert 'name="owner"' not in page and 'name="data_categories"' not in page
    # Sent anyway, they are not read: only the fields of the author's form reach the service.
    response = author.post(SETTINGS, {"name": "Loan letter", "description": "Shorter.", "tags": "letters",
                                      "owner": "author", "data_categories": []})
    assert response.status_code == 302
    prompt.refresh_from_db()
    assert prompt.description == "Shorter." and prompt.owner == cast["owner"] and prompt.data_categories


def test_a_settings_error_comes_back_next_to_its_field(browser_for, prompt):
    response = browser_for("owner").post(SETTINGS, {"name": "Loan letter", "owner": "nobody-here", "tags": ""})
    assert response.status_code == 400
    assert any("no active user 'nobody-here'" in e for e in field_errors(text(response), "owner"))


def test_an_owner_names_approvers_and_groups(browser_for, cast, prompt):
    from approvals import administration

    administration.save_approver_group(
        actor=Actor(user=cast["owner"]), team=cast["team"], slug="letters", name="Letters", members=["approver"],
    )
    owner = browser_for("owner")
    page = text(owner.get(SETTINGS))
    assert 'value="approver"' in page and 'value="owner"' in page and 'value="author"' not in page
    response = owner.post(APPROVERS, {"approvers": ["approver", "owner"], "approver_groups": "letters"})
    assert response.status_code == 302
    assert administration.approvers_of(prompt) == {"approvers": ["approver", "owner"], "approver_groups": ["letters"]}
    assert AuditEvent.objects.filter(action="prompt.approvers_changed", prompt="loan-letter").exists()
    refused = owner.post(APPROVERS, {"approvers": ["author"], "approver_groups": "nope"})
    assert refused.status_code == 400
    assert any("'author' is not an active approver" in e for e in field_errors(text(refused), "approvers"))
    assert administration.approvers_of(prompt)["approvers"] == ["approver", "owner"]


def test_raising_the_tier_is_a_change_and_lowering_it_is_a_request(browser_for, cast, prompt):
    owner = browser_for("owner")
    # Lower through the raise form: refused by the service, said next to the field, nothing changes.
    refused = owner.post(TIER, {"tier": "2"})
    assert refused.status_code == 403
    assert any("needs the approvals of its current tier" in e for e in field_errors(text(refused), "tier", "raise_"))
    prompt.refresh_from_db()
    assert prompt.tier == 1
    assert not AuditEvent.objects.filter(action="prompt.updated").exists()

    assert owner.post(TIER, {"tier": "0"}).status_code == 302
    prompt.refresh_from_db()
    assert prompt.tier == 0
    assert AuditEvent.objects.filter(action="prompt.updated", prompt="loan-letter").count() == 1
    refused = owner.post(TIER, {"tier": "3"})  # from tier 0 the form has nothing to offer; still refused
    assert any("needs the approvals" in e for e in field_errors(text(refused), "tier", "raise_"))

    # The settings page's "Request a lower tier" form opens a request instead.
    page = text(owner.get(SETTINGS))
    assert 'action="/approvals/tier-change/loan-letter/"' in page
    response = owner.post("/approvals/tier-change/loan-letter/", {"tier": "2", "rationale": "internal only now"})
    assert response.status_code == 302
    request = DeployRequest.objects.get(prompt=prompt)
    assert request.status in DeployRequest.OPEN
    prompt.refresh_from_db()
    assert prompt.tier == 0


# --- the gate --------------------------------------------------------------------------------------
@pytest.fixture
def suite(cast, monkeypatch):
    monkeypatch.setattr(queueing, "enqueue", lambda run_id, copies=1: None)
    author = Actor(user=cast["author"])
    made = evals.create_suite(actor=author, slug="letters-core", name="Letters core", team=cast["team"])
    evals.add_cases(actor=author, suite=made, cases=[
        {"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "Ada"}]},
    ])
    return made


def test_an_owner_sets_the_gate_and_sees_todays_verdict(browser_for, cast, prompt, version, suite):
    owner = browser_for("owner")
    page = text(owner.get(GATE))
    assert "Letters core" in page and "Today's verdict" in page
    assert "the tier-1 policy requires a gate suite" in page  # nothing configured yet

    bad = owner.post(GATE, {"use_0": "on", "rate_0": "1.5", "max_regression": "0.05"})
    assert bad.status_code == 400
    assert any("from 0 to 1" in e for e in field_errors(text(bad), "rate_0"))
    assert not Gate.objects.filter(prompt=prompt).exists()

    response = owner.post(GATE, {"use_0": "on", "rate_0": "0.9", "max_regression": "0.05"})
    assert response.status_code == 302
    gate = Gate.objects.get(prompt=prompt)
    assert gate.max_regression == 0.05
    assert [(s.suite.slug, s.min_pass_rate) for s in gate.suites.all()] == [("letters-core", 0.9)]
    assert AuditEvent.objects.filter(action="gate.updated", prompt="loan-letter").exists()
    page = text(owner.get(GATE))
    assert "no finished run of 'letters-core' on this content hash" in page

    # A finished run that meets the threshold turns the preview green; the preview records nothing.
    run = evals.start_run(actor=Actor(user=cast["author"]), prompt=prompt, version=version, suite=suite)
    EvalRun.objects.filter(pk=run.pk).update(status=EvalRun.COMPLETED, pass_rate=1.0)
    events = AuditEvent.objects.count()
    page = text(owner.get(GATE))
    assert "meets the gate" in page and "Fails" not in page
    assert AuditEvent.objects.count() == events


def test_an_author_sees_the_gate_but_no_form(browser_for, prompt, version, suite):
    page = text(browser_for("author").get(GATE))
    assert "Today's verdict" in page and 'name="max_regression"' not in page
    assert "The team's owners choose the gate." in page
    assert browser_for("author").post(GATE, {"use_0": "on", "rate_0": "0.5"}).status_code == 403


# --- the kill switch -------------------------------------------------------------------------------
def test_the_kill_switch_confirms_what_stops_requires_a_reason_and_is_audited_and_sent(
    browser_for, prompt, version, deployed
):
    approver = browser_for("approver")
    overview = text(approver.get(PROMPT))
    assert f'href="{KILL}?environment=production&amp;disabled=true"' in approver.get(PROMPT).content.decode()
    assert "Stop serving" in overview
    assert f"{KILL}?environment=staging" not in overview  # nothing is served there: nothing to stop

    confirm = text(approver.get(KILL, {"environment": "production", "disabled": "true"}))
    assert "Stop serving loan-letter in Production?" in confirm
    assert "v1" in confirm and "423" in confirm and "prompt_disabled" in confirm

    missing = approver.post(KILL, {"environment": "production", "disabled": "true", "reason": "  "})
    assert missing.status_code == 400
    assert any("required" in e for e in field_errors(text(missing), "reason"))
    assert not Deployment.objects.get(prompt=prompt, environment__slug="production").disabled

    done = approver.post(KILL, {"environment": "production", "disabled": "true", "reason": "leaks account numbers"})
    assert done.status_code == 302 and done["Location"] == PROMPT
    pointer = Deployment.objects.get(prompt=prompt, environment__slug="production")
    assert pointer.disabled and pointer.disabled_reason == "leaks account numbers" and pointer.version == version
    event = AuditEvent.objects.get(action="kill_switch.changed", prompt="loan-letter")
    assert event.actor_username == "approver"
    assert Delivery.objects.filter(subscription=deployed, event="kill_switch.changed").count() == 1
    resolved = approver.get("/api/v1/prompts/loan-letter/resolve", {"environment": "production"})
    assert resolved.status_code == 423 and resolved.json()["code"] == "prompt_disabled"

    # Off again: the prompt page offers "Serve again", with its own confirmation and reason.
    assert f"{KILL}?environment=production&amp;disabled=false" in approver.get(PROMPT).content.decode()
    again = text(approver.get(KILL, {"environment": "production", "disabled": "false"}))
    assert "Serve loan-letter in Production again?" in again and "leaks account numbers" not in again.split("Now")[0]
    done = approver.post(KILL, {"environment": "production", "disabled": "false", "reason": "fixed in v2"})
    assert done.status_code == 302
    pointer.refresh_from_db()
    assert not pointer.disabled
    assert AuditEvent.objects.filter(action="kill_switch.changed", prompt="loan-letter").count() == 2
    assert Delivery.objects.filter(subscription=deployed, event="kill_switch.changed").count() == 2
    assert approver.get("/api/v1/prompts/loan-letter/resolve", {"environment": "production"}).status_code == 200


def test_an_unknown_environment_is_a_400_naming_it(browser_for, prompt):
    response = browser_for("approver").post(KILL, {"environment": "moon", "disabled": "true", "reason": "x"})
    assert response.status_code == 400 and "unknown environment 'moon'" in text(response)


def test_an_author_gets_no_kill_switch_and_their_post_is_403(browser_for, prompt, version, deployed):
    author = browser_for("author")
    assert "/kill-switch/" not in author.get(PROMPT).content.decode()
    assert author.get(KILL, {"environment": "production"}).status_code == 403
    assert author.post(KILL, {"environment": "production", "disabled": "true", "reason": "x"}).status_code == 403
    assert not Deployment.objects.get(prompt=prompt, environment__slug="production").disabled
