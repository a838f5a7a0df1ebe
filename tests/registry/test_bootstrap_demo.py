"""``manage.py bootstrap_demo``: the demo world it loads, its logins, and that running it again
changes nothing (``run_embedded`` runs it on every start)."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count

from audit.models import AuditEvent
from registry import rendering
from registry.actors import Actor
from registry.management.commands import _demo_data as demo
from registry.models import Deployment, LLMModel, Membership, Prompt, PromptVersion, SiteRole, Team
from registry.services import set_deployment

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("bootstrap_demo", *args, stdout=out)
    return out.getvalue()


def snapshot():
    """Every row the command could write, with the fields a repeated run could touch."""
    return {
        "users": sorted(get_user_model().objects.values_list("username", "password")),
        "site_roles": sorted(SiteRole.objects.values_list("user__username", "role")),
        "teams": sorted(Team.objects.values_list("slug", flat=True)),
        "memberships": sorted(Membership.objects.values_list("team__slug", "user__username", "role")),
        "models": sorted(LLMModel.objects.values_list("provider", "model_id", "status", "updated_at")),
        "prompts": sorted(Prompt.objects.values_list("slug", "updated_at")),
        "versions": sorted(PromptVersion.objects.values_list("prompt__slug", "number", "content_hash")),
        "deployments": sorted(
            Deployment.objects.values_list("prompt__slug", "environment__slug", "version_id", "updated_at")
        ),
        "deployment_history": Deployment.history.count(),
        "audit_events": AuditEvent.objects.count(),
    }


def test_demo_has_three_teams_prompts_of_every_tier_and_deployments():
    run()
    assert Team.objects.count() == 3
    assert Prompt.objects.count() >= 12
    assert set(Prompt.objects.values_list("tier", flat=True)) == {0, 1, 2, 3}
    assert sum("pii" in p.data_categories for p in Prompt.objects.all()) >= 3
    counts = Prompt.objects.annotate(n=Count("versions")).values_list("n", flat=True)
    assert min(counts) >= 2
    assert max(counts) >= 4
    for environment in ("production", "staging", "development"):
        assert Deployment.objects.filter(environment__slug=environment).count() == Prompt.objects.count()


def test_production_runs_an_older_version_than_the_newest():
    run()
    behind = 0
    for prompt in Prompt.objects.all():
        live = {d.environment.slug: d.version.number for d in prompt.deployments.select_related("environment")}
        newest = prompt.versions.count()
        assert live["production"] < newest, prompt.slug
        assert live["development"] == newest, prompt.slug
        behind += live["staging"] > live["production"]
    assert behind >= 10


def test_a_version_on_a_restricted_model_stays_out_of_staging_and_production():
    run()
    for deployment in Deployment.objects.exclude(environment__slug="development").select_related("version__llm_model"):
        assert deployment.version.llm_model.status == "approved", deployment


def test_demo_has_a_production_canary_and_a_kill_switch():
    run()
    canary = Deployment.objects.get(canary_version__isnull=False)
    assert canary.environment.slug == "production"
    assert canary.canary_percent == 10
    assert canary.canary_version.number > canary.version.number
    killed = Deployment.objects.get(disabled=True)
    assert killed.disabled_reason


def test_every_team_role_and_site_role_has_a_user():
    run()
    for team in Team.objects.all():
        roles = list(Membership.objects.filter(team=team).values_list("role", flat=True))
        assert sorted(set(roles)) == ["approver", "author", "owner", "viewer"]
        assert roles.count("approver") == 2, "Tier-0 needs two approvers"
    assert sorted(SiteRole.objects.values_list("role", flat=True)) == ["admin", "compliance", "risk"]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff


def test_models_are_registered_with_each_status():
    run()
    assert set(LLMModel.objects.values_list("status", flat=True)) == {"approved", "restricted", "retired"}
    assert LLMModel.objects.filter(provider="offline", model_id="offline-echo-1", status="approved").exists()


def test_versions_are_written_by_named_people_who_are_not_approvers():
    run()
    authors = set(PromptVersion.objects.values_list("author__username", flat=True))
    assert authors
    assert all(name.endswith(("-author", "-owner")) for name in authors), authors


def test_each_prompts_newest_version_renders_its_sample():
    run()
    for spec in demo.PROMPTS:
        newest = PromptVersion.objects.filter(prompt__slug=spec["slug"]).order_by("-number").first()
        rendered = rendering.render(newest.messages, newest.variables, spec["sample"])
        assert all(message["content"].strip() for message in rendered), spec["slug"]


def test_output_lists_every_login_with_the_password():
    output = run("--password", "s3cret-demo")
    for username in ["admin", "compliance", "risk", "lending-owner", "care-approver-2", "citizen-viewer"]:
        line = next(line for line in output.splitlines() if line.startswith(username + " "))
        assert "s3cret-demo" in line
    user = get_user_model().objects.get(username="care-author")
    assert user.check_password("s3cret-demo")


def test_running_again_creates_and_changes_nothing():
    first = run()
    before = snapshot()
    second = run()
    assert snapshot() == before
    assert "created" in first
    assert "already loaded" in second
    assert "lending-owner" in second and "promptledger-demo" in second


def test_running_again_keeps_changes_made_since():
    run()
    prompt = Prompt.objects.get(slug="loan-decision-letter")
    staging = Deployment.objects.get(prompt=prompt, environment__slug="staging")
    owner = get_user_model().objects.get(username="lending-owner")
    set_deployment(actor=Actor(user=owner), prompt=prompt, environment=staging.environment,
                   version=prompt.versions.get(number=1))
    versions_before = PromptVersion.objects.count()
    run()
    staging.refresh_from_db()
    assert staging.version.number == 1
    assert PromptVersion.objects.count() == versions_before


def test_a_prompt_someone_already_made_under_a_demo_slug_is_left_alone(cast, prompt):
    # ``prompt`` is 'loan-letter' in team 'payments'; rename it to collide with the demo.
    Prompt.objects.filter(pk=prompt.pk).update(slug="support-reply")
    run()
    mine = Prompt.objects.get(slug="support-reply")
    assert mine.team.slug == "payments"
    assert not mine.versions.exists()
    assert not mine.deployments.exists()


def test_existing_users_keep_their_password_and_the_table_says_so():
    run()
    output = run("--password", "another-one")
    admin_line = next(line for line in output.splitlines() if line.startswith("admin "))
    assert "another-one" not in admin_line
    assert "(set earlier)" in admin_line
    assert get_user_model().objects.get(username="admin").check_password("promptledger-demo")
