"""The register in the browser: the list (overdue in red, prompts by tier, eval coverage), a model's
page, and edits by the risk role only, each audited."""


import pytest

from audit.models import AuditEvent
from evals import runner
from evals.services import add_cases, create_suite, start_run
from risk import services
from risk.models import ModelProfile

from .conftest import act

pytestmark = pytest.mark.django_db


def test_the_list_shows_each_model_with_its_owner_review_and_prompts_by_tier(register, overdue, browser_for):
    overdue(12)
    page = browser_for("viewer").get("/models/?view=all")
    assert page.status_code == 200
    html = page.content.decode()
    assert "offline-echo-1" in html and "model-owner" in html
    assert 'class="row-overdue"' in html and "Overdue 12 d" in html
    assert "T0: 1" in html and "T2: 1" in html and "T1:" not in html
    assert "0 suites linked" in html


def test_a_model_whose_review_is_far_off_is_not_in_red(register, browser_for):
    html = browser_for("viewer").get("/models/?view=all").content.decode()
    assert "offline-echo-1" in html and "row-overdue" not in html and "review-overdue" not in html


def test_the_risk_role_lands_on_the_due_and_overdue_view(register, overdue, browser_for, client):
    client.force_login(register["risk"])
    assert 'aria-current="page" id="view-due"' not in client.get("/models/").content.decode()  # nothing due yet
    overdue(3)
    html = client.get("/models/").content.decode()
    assert 'aria-current="page" id="view-due"' in html and "offline-echo-1" in html
    # others land on every model
    assert 'aria-current="page" id="view-all"' in browser_for("viewer").get("/models/").content.decode()


def test_the_navigation_counts_due_reviews_for_the_risk_role_only(register, overdue, browser_for, client):
    overdue(3)
    client.force_login(register["risk"])
    assert 'id="models-due-count"' in client.get("/models/due-count/").content.decode()
    assert browser_for("viewer").get("/models/due-count/").content.strip() == b""
    # only those who review models fetch it (issue 17): not a viewer on every page
    assert 'hx-get="/models/due-count/"' not in browser_for("viewer").get("/").content.decode()
    assert 'hx-get="/models/due-count/"' in client.get("/").content.decode()


def test_the_model_page_shows_its_document_suites_reviews_and_where_it_is_live(register, browser_for):
    owner = act(register["owner"])
    suite = create_suite(actor=owner, slug="jailbreak-core", name="Jailbreak core", team=register["team"])
    add_cases(actor=owner, suite=suite, cases=[{"vars": {"name": "Ada"}, "assertions": [
        {"type": "contains", "value": "Ada"}]}])
    live = register["live"]["loan-letter"]
    run = start_run(actor=owner, prompt=live["prompt"], version=live["v1"], suite=suite)
    runner.execute(run.pk)
    services.edit_model(
        actor=act(register["risk"]), llm_model=register["llm"], intended_use="Letters to customers.",
        limitations="English only.", failure_modes="Echoes its input.", suites=["jailbreak-core"],
    )
    html = browser_for("viewer").get(f"/models/{register['llm'].pk}/").content.decode()
    for text in ("Letters to customers.", "English only.", "Echoes its input.", "Jailbreak core",
                 "loan-letter v1", "100%", "faq-answer", "production v1", "Never reviewed."):
        assert text in html, text
    assert "Edit</a>" not in html  # a viewer is offered no edit


def test_the_page_of_a_model_not_in_the_register_is_a_404(register, browser_for):
    assert browser_for("viewer").get("/models/999999/").status_code == 404


def test_the_risk_role_edits_the_document_and_every_change_is_audited(register, client):
    client.force_login(register["risk"])
    entry = register["llm"]
    form = client.get(f"/models/{entry.pk}/edit/")
    assert form.status_code == 200
    answer = client.post(f"/models/{entry.pk}/edit/", {
        "owner": "risk", "failure_modes": "Repeats the prompt.", "limitations": "No tools.",
        "intended_use": "Demos and tests.",
    })
    assert answer.status_code == 302
    entry.refresh_from_db()
    assert entry.owner.username == "risk" and entry.failure_modes == "Repeats the prompt."
    assert ModelProfile.objects.get(llm_model=entry).limitations == "No tools."
    updated = AuditEvent.objects.get(action="llm_model.updated", target_id=str(entry.pk))
    assert updated.actor_username == "risk" and set(updated.data["changes"]) == {"owner", "failure_modes"}
    profile = AuditEvent.objects.get(action="model_profile.updated", target_id=str(entry.pk))
    assert profile.data["changes"]["limitations"] == {"before": "", "after": "No tools."}


@pytest.mark.parametrize("who", ["owner", "viewer", "compliance"])
def test_people_without_the_risk_role_cannot_edit(register, browser_for, who):
    entry = register["llm"]
    client = browser_for(who)
    assert client.get(f"/models/{entry.pk}/edit/").status_code == 403
    refused = client.post(f"/models/{entry.pk}/edit/", {"owner": who, "failure_modes": "x"})
    assert refused.status_code == 403 and b"site_role_required" in refused.content
    entry.refresh_from_db()
    assert entry.failure_modes == "" and not AuditEvent.objects.filter(action__startswith="model_profile").exists()


def test_an_unknown_owner_or_suite_is_a_400_naming_the_field(register, client):
    client.force_login(register["risk"])
    answer = client.post(f"/models/{register['llm'].pk}/edit/", {"owner": "nobody-here", "failure_modes": ""})
    assert answer.status_code == 400 and b"no active user" in answer.content
    with pytest.raises(Exception) as caught:
        services.edit_model(actor=act(register["risk"]), llm_model=register["llm"], suites=["no-such-suite"])
    assert caught.value.field_errors == {"suites": ["no suite 'no-such-suite'"]}
