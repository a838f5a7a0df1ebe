"""``manage.py bootstrap_demo``: the demo world it loads from ``demo/data`` (with its approval flow),
its logins, that running it again changes nothing (``run_embedded`` runs it on every start), and
that its prompt files are files the SDK reads."""

import shutil
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Count

from approvals import selectors
from approvals.models import Approval, ApproverGroup, DeployRequest, NamedApprover
from approvals.policy import named_approver_ids
from approvals.requirements import checklist, counted_approvals, first_unmet
from audit.checks import verify_database
from audit.models import AuditEvent
from core.actors import Actor
from demo import files
from evals import attack_suites, suite_fit
from evals.compare import compare_runs
from evals.gates import evaluate_gate
from evals.models import Case, EvalResult, EvalRun, Gate, Suite
from promptledger.prompt_files import content_hash, load_directory, read_prompt_file
from registry import rendering
from registry.models import Deployment, Environment, LLMModel, Membership, Prompt, PromptVersion, SiteRole, Team
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
        "approver_groups": sorted(ApproverGroup.objects.values_list("slug", flat=True)),
        "named_approvers": NamedApprover.objects.count(),
        "suites": sorted(Suite.objects.values_list("slug", "updated_at")),
        "cases": Case.objects.count(),
        "gates": sorted(Gate.objects.values_list("prompt__slug", "updated_at")),
        "eval_runs": sorted(EvalRun.objects.values_list("pk", "status", "pass_rate")),
        "deploy_requests": sorted(DeployRequest.objects.values_list("pk", "status", "review_status", "updated_at")),
        "decisions": Approval.objects.count(),
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
    shipped = set(
        DeployRequest.objects.filter(tier=3, status=DeployRequest.DEPLOYED, environment__slug="production")
        .values_list("prompt__slug", flat=True)
    )
    assert shipped == {"transaction-categoriser"}, "the one Tier-3 prompt the demo ships directly"
    behind = 0
    for prompt in Prompt.objects.exclude(slug__in=shipped):
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
    samples = {slug: spec["sample"] for slug, spec in files.world()["prompts"].items()}
    assert set(samples) == set(Prompt.objects.values_list("slug", flat=True)), "a sample for every demo prompt"
    for slug, sample in samples.items():
        newest = PromptVersion.objects.filter(prompt__slug=slug).order_by("-number").first()
        rendered = rendering.render(newest.messages, newest.variables, sample)
        assert all(message["content"].strip() for message in rendered), slug


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


# --- the data files ---------------------------------------------------------------------------


def test_each_version_is_its_prompt_file_and_the_newest_files_are_a_folder_push_takes(tmp_path):
    run()
    stored = {(v.prompt.slug, v.number): v for v in PromptVersion.objects.select_related("prompt")}
    demo_prompts = files.prompts()
    assert {(p.slug, n) for p in demo_prompts for n in range(1, len(p.versions) + 1)} == set(stored)
    for demo_prompt in demo_prompts:
        for number, file in enumerate(demo_prompt.versions, start=1):
            version = stored[(demo_prompt.slug, number)]
            assert content_hash(file.content()) == version.content_hash, file.path
            assert file.data["message"] == version.change_note, file.path
        shutil.copy(files.DATA.parent.parent / demo_prompt.versions[-1].path, tmp_path / f"{demo_prompt.slug}.yaml")
    newest = load_directory(tmp_path)  # the SDK's loader, as `promptledger push` reads a folder
    assert sorted(file.slug for file in newest) == sorted(p.slug for p in demo_prompts)
    for file in newest:
        assert read_prompt_file(file.path)[1] == []


@pytest.mark.parametrize(
    ("breakage", "said"),
    [
        ("template", "demo/data/prompts/care/claim-triage/v2.yaml:"),
        ("gap", "demo/data/prompts/lending/support-reply: the versions are v1.yaml, v2.yaml"),
    ],
)
def test_broken_demo_data_is_refused_naming_the_file_and_nothing_is_written(tmp_path, monkeypatch, breakage, said):
    data = tmp_path / "demo" / "data"
    shutil.copytree(files.DATA, data)
    if breakage == "template":
        path = data / "prompts" / "care" / "claim-triage" / "v2.yaml"
        path.write_text(path.read_text(encoding="utf-8").replace("review_threshold }}", "review_treshold }}"),
                        encoding="utf-8")
    else:
        folder = data / "prompts" / "lending" / "support-reply"
        (folder / "v5.yaml").rename(folder / "v7.yaml")
    monkeypatch.setattr(files, "DATA", data)
    with pytest.raises(CommandError) as refused:
        run()
    assert said in str(refused.value)
    assert not Team.objects.exists() and not Prompt.objects.exists()


# --- the approval flow ------------------------------------------------------------------------


def user(username):
    return get_user_model().objects.get(username=username)


def demo_request(slug, **filters):
    return DeployRequest.objects.select_related("prompt__team", "version", "environment").get(
        prompt__slug=slug, **filters
    )


@pytest.fixture(scope="class")
def demo_world(django_db_setup, django_db_blocker):
    """The demo loaded once for a class of tests that only read it (each test still runs in its own
    savepoint), and rolled back after them: loading it takes seconds."""
    with django_db_blocker.unblock(), transaction.atomic():
        run()
        yield
        transaction.set_rollback(True)


@pytest.mark.usefixtures("demo_world")
class TestTheApprovalFlowOfTheDemo:
    def test_lending_approver_finds_a_tier0_request_waiting_for_both_named_approvers(self):
        request = demo_request("loan-decision-letter", status=DeployRequest.PENDING)
        assert request.tier == 0 and request.environment.slug == "production"
        assert not Approval.objects.filter(request=request).exists()
        for name in ("lending-approver", "lending-approver-2"):
            assert request in selectors.waiting_for(user(name)), name
        assert request not in selectors.waiting_for(user("lending-author")), "the author may not approve"
        unmet = first_unmet(checklist(request, actor=Actor(user=user("lending-approver"))))
        assert unmet.key == "approvals" and unmet.detail.startswith("0 of 2"), "only the approvals are missing"

    def test_a_tier0_request_has_one_approval_of_two_and_waits_for_the_other_approver(self):
        request = demo_request("discharge-summary", status=DeployRequest.PENDING)
        assert [a.user.username for a in counted_approvals(request)] == ["care-approver"]
        assert request.policy_snapshot["required_approvals"] == 2
        assert request in selectors.waiting_for(user("care-approver-2"))
        assert request not in selectors.waiting_for(user("care-approver"))

    def test_an_approved_request_is_ready_to_deploy_and_its_canary_request_was_superseded(self):
        request = demo_request("council-tax-reduction-explainer", status=DeployRequest.APPROVED)
        items = checklist(request, actor=Actor(user=user("citizen-author")))
        assert first_unmet(items) is None, [(i.key, i.detail) for i in items]
        assert {i.key for i in items} >= {"approvals", "gate", "model"}
        old = demo_request("council-tax-reduction-explainer", status=DeployRequest.SUPERSEDED)
        assert old.canary_percent == 25 and old.superseded_by == request

    def test_deployed_requests_are_history_including_a_tier3_direct_deploy_and_a_rollback(self):
        fraud = demo_request("fraud-hold-explanation", status=DeployRequest.DEPLOYED, break_glass=False)
        assert fraud.version.number == 3 and fraud.deployed_by.username == "lending-author"
        assert sorted(a.user.username for a in counted_approvals(fraud)) == ["lending-approver", "lending-approver-2"]
        direct = demo_request("transaction-categoriser")
        assert (direct.tier, direct.status, direct.version.number) == (3, DeployRequest.DEPLOYED, 2)
        assert not Approval.objects.filter(request=direct).exists()
        router = DeployRequest.objects.filter(prompt__slug="complaint-router").order_by("pk")
        assert [(r.kind, r.version.number, r.status) for r in router] == [
            ("deploy", 3, "deployed"), ("rollback", 2, "deployed")
        ]
        live = Deployment.objects.get(prompt__slug="complaint-router", environment__slug="production")
        assert live.version.number == 2
        assert {r.prompt.team.slug for r in DeployRequest.objects.filter(status=DeployRequest.DEPLOYED)} == {
            "lending", "citizen"
        }

    def test_a_rejection_carries_its_comment_and_blocks_the_request(self):
        request = demo_request("claim-triage", kind=DeployRequest.DEPLOY)
        assert request.status == DeployRequest.REJECTED
        rejection = Approval.objects.get(request=request, decision=Approval.REJECT)
        assert rejection.user.username == "care-approver" and "data minimisation" in rejection.comment
        assert first_unmet(checklist(request, actor=Actor(user=user("care-author")))).key == "rejections"

    def test_a_break_glass_rollback_waits_for_its_review_and_production_is_back_on_the_old_version(self):
        request = demo_request("fraud-hold-explanation", break_glass=True)
        assert request.kind == DeployRequest.ROLLBACK and request.status == DeployRequest.DEPLOYED
        assert request.review_status == DeployRequest.REVIEW_PENDING
        assert request.requested_by.username == "lending-owner" and "INC-3507" in request.rationale
        assert request in selectors.reviews_waiting_for(user("lending-approver"))
        live = Deployment.objects.get(prompt__slug="fraud-hold-explanation", environment__slug="production")
        assert live.version.number == 2

    def test_a_tier_lowering_waits_for_an_approval_of_the_current_tier(self):
        request = demo_request("claim-triage", kind=DeployRequest.TIER_CHANGE)
        assert (request.tier, request.target_tier, request.status) == (1, 2, DeployRequest.PENDING)
        assert request.requested_by.username == "care-owner"
        assert request in selectors.waiting_for(user("care-approver"))
        assert Prompt.objects.get(slug="claim-triage").tier == 1

    def test_tier0_and_tier1_prompts_name_the_two_approvers_and_each_team_uses_its_approver_group(self):
        for prompt in Prompt.objects.filter(tier__lte=1).select_related("team"):
            named = set(
                get_user_model().objects.filter(pk__in=named_approver_ids(prompt)).values_list("username", flat=True)
            )
            assert {f"{prompt.team.slug}-approver", f"{prompt.team.slug}-approver-2"} <= named, prompt.slug
        for team in Team.objects.all():
            group = ApproverGroup.objects.get(team=team, slug=f"{team.slug}-reviewers")
            assert NamedApprover.objects.filter(group=group).exists(), team.slug
        changed = AuditEvent.objects.filter(action="prompt.approvers_changed", actor_username__endswith="-owner")
        assert changed.count() == Prompt.objects.filter(tier__lte=1).count()

    def test_gated_prompts_have_a_team_suite_and_pass_where_requests_wait(self):
        gated = Prompt.objects.filter(tier__lte=2)
        assert Gate.objects.filter(prompt__in=gated).count() == gated.count()
        for gate in Gate.objects.select_related("prompt__team"):
            suites = [gs.suite for gs in gate.suites.select_related("suite") if gs.suite.team_id is not None]
            assert [s.team_id for s in suites] == [gate.prompt.team_id], gate.prompt.slug
        runs = EvalRun.objects.filter(suite__team__isnull=False)  # the attack suite's: see below
        assert runs.count() >= 12
        assert set(runs.values_list("status", flat=True)) == {EvalRun.COMPLETED}
        assert set(runs.values_list("pass_rate", flat=True)) == {1.0}
        assert not EvalResult.objects.filter(passed=False, run__in=runs).exists()
        production = Environment.objects.get(slug="production")
        for slug in ("loan-decision-letter", "discharge-summary", "council-tax-reduction-explainer"):
            prompt = Prompt.objects.get(slug=slug)
            version = prompt.versions.get(number=4)
            result = evaluate_gate(
                actor=Actor.for_system("test"), prompt=prompt, version=version, environment=production,
                record_decision=False,
            )
            assert result["passed"], (slug, result["checks"])

    def test_a_demo_prompt_fits_the_shared_attack_suite_and_has_its_runs(self):
        prompt = Prompt.objects.get(slug="ask-the-council")
        attacks = Suite.objects.get(slug=attack_suites.SLUG, team__isnull=True)
        assert attacks.cases.count() == len(attack_suites.SUITE["cases"])
        gate = Gate.objects.get(prompt=prompt)
        assert attacks.pk in set(gate.suites.values_list("suite_id", flat=True)), "a gate suite: top of the picker"
        for version in prompt.versions.all():
            assert suite_fit.fit_of(attacks, version).fits, version.number
        runs = EvalRun.objects.filter(prompt=prompt, suite=attacks)
        assert sorted(runs.values_list("version__number", flat=True)) == [1, 2]
        assert set(runs.values_list("status", flat=True)) <= {EvalRun.COMPLETED, EvalRun.COMPLETED_WITH_ERRORS}
        results = EvalResult.objects.filter(run__in=runs)
        assert results.count() == 2 * attacks.cases.count()
        assert not results.exclude(error="").exists(), "no case failed on its variables (or anything else)"
        choices = suite_fit.run_choices(Actor(user=user("citizen-author")), prompt, prompt.versions.get(number=2))
        assert [(f.suite.slug, f.fits, f.gate) for f in choices[:2]] == [
            ("ask-the-council-core", True, True), (attack_suites.SLUG, True, True)
        ]
        first, second = sorted(runs, key=lambda r: r.version.number)
        assert compare_runs(second, first)["counts"]["changed_output"] == attacks.cases.count(), "v2 fences the message"

    def test_every_request_is_in_the_audit_trail_and_the_chain_verifies_after_a_second_run(self):
        before = snapshot()
        assert "already loaded" in run()
        assert snapshot() == before
        actions = set(AuditEvent.objects.filter(target_type="deploy_request").values_list("action", flat=True))
        assert actions >= {
            "deploy_request.opened", "deploy_request.approved", "deploy_request.rejected", "deploy_request.deployed",
            "deploy_request.superseded", "deploy_request.break_glass",
        }
        for request in DeployRequest.objects.all():
            trail = AuditEvent.objects.filter(target_type="deploy_request", target_id=str(request.pk))
            first = trail.order_by("sequence")
            action = "deploy_request.break_glass" if request.break_glass else "deploy_request.opened"
            assert first[0].action == action and first[0].actor_username == request.requested_by.username, request
        report = verify_database(save=False, max_checkpoint_age=0)
        assert report.ok, report.summary()
        assert report.count == AuditEvent.objects.count()


def test_the_story_is_left_out_where_a_demo_slug_belongs_to_someone_else(cast, prompt):
    # 'loan-letter' of team 'payments' takes a slug the deploy-request story uses.
    Prompt.objects.filter(pk=prompt.pk).update(slug="transaction-categoriser")
    output = run()
    assert "Left out the story 'tier3_direct'" in output
    assert not prompt.deploy_requests.exists()
    assert DeployRequest.objects.filter(prompt__slug="loan-decision-letter").exists(), "the other stories are told"
    before = snapshot()
    run()
    assert snapshot() == before
