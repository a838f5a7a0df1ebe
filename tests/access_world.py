"""The fixed world the access matrix runs in: team ``payments`` with one person per role, a
stranger who owns ``growth``, compliance, risk, an admin, a deactivated owner, a removed member,
and one API token per scope (an admin's, so the scope is all that limits it). Around them, one
object of every kind the API and the pages act on, each in a state where the allowed actor's
request succeeds."""

import datetime
import hashlib

from django.conf import settings
from django.test.utils import override_settings
from django.utils import timezone

from approvals import administration
from approvals import services as approvals
from core.actors import Actor
from evals import budgets as eval_budgets
from evals import services as evals
from evals.models import DriftNotice, EvalResult, EvalRun
from registry import services as registry
from registry.models import APIToken, Environment, Membership, SiteRole
from tests.factories import LLMModelFactory, MembershipFactory, TeamFactory, UserFactory, version_body
from webhooks import services as webhooks
from webhooks import stream_services
from webhooks.models import Delivery

TEAM_ROLES = ("viewer", "author", "approver", "owner")
PEOPLE = (*TEAM_ROLES, "outsider", "compliance", "risk", "admin", "deactivated", "removed")
SCOPES = tuple(APIToken.SCOPES)
TOKENS = tuple(f"token:{scope}" for scope in SCOPES)
CAST = (*PEOPLE, *TOKENS, "anonymous")


def now_signed(user):
    return Actor(user=user, authenticated_at=timezone.now())


def _token(user, scopes, name):
    raw = f"pl_matrix_{name}_{user.pk}".replace(":", "_")
    APIToken.objects.create(
        user=user, name=name, prefix=raw[:10], key_hash=hashlib.sha256(raw.encode()).hexdigest(), scopes=list(scopes),
        expires_at=timezone.now() + datetime.timedelta(days=30),
    )
    return raw


def build():
    """Make the world; returns ``(people, raw tokens by actor name, ids by object name)``."""
    environments = {
        slug: Environment.objects.get_or_create(slug=slug, defaults={"name": slug.capitalize(), "position": i})[0]
        for i, slug in enumerate(settings.PROMPTLEDGER_ENVIRONMENTS)
    }
    team, growth = TeamFactory(slug="payments", name="Payments"), TeamFactory(slug="growth", name="Growth")
    people = {name: UserFactory(username=name) for name in PEOPLE}
    for role in TEAM_ROLES:
        MembershipFactory(team=team, user=people[role], role=role)
    MembershipFactory(team=growth, user=people["outsider"], role=Membership.OWNER)
    MembershipFactory(team=team, user=people["deactivated"], role=Membership.OWNER)
    MembershipFactory(team=team, user=people["removed"], role=Membership.OWNER)
    for name, role in (("compliance", SiteRole.COMPLIANCE), ("risk", SiteRole.RISK), ("admin", SiteRole.ADMIN)):
        SiteRole.objects.create(user=people[name], role=role)
    extra = UserFactory(username="newcomer")
    system = Actor.for_system("matrix")
    llm = LLMModelFactory()

    owner, author, approver = (now_signed(people[n]) for n in ("owner", "author", "approver"))
    registry.remove_member(actor=owner, team=team, username="removed")
    administration.update_policy(actor=system, tier=1, requires_gate=False, reason="test")
    prompt = registry.create_prompt(
        actor=owner, slug="loan-letter", name="Loan letter", team=team, tier=1, owner="owner",
        data_categories=["pii"],
    )
    body = version_body()
    versions = []
    for content in ("Write to {{ name }}.", "Dear {{ name }},", "Hello {{ name }}."):
        made, _ = registry.create_version(
            actor=author, prompt=prompt, messages=[{"role": "system", "content": content}],
            variables=body["variables"], model=body["model"], message=content,
        )
        versions.append(made)
    v1, v2, v3 = versions
    production, staging, development = (environments[s] for s in ("production", "staging", "development"))
    registry.set_deployment(actor=system, prompt=prompt, environment=production, version=v1)
    registry.set_deployment(actor=system, prompt=prompt, environment=production, version=v2)
    registry.set_deployment(actor=system, prompt=prompt, environment=staging, version=v1)
    registry.set_deployment(actor=system, prompt=prompt, environment=development, version=v1)
    glass = approvals.break_glass_rollback(
        actor=owner, prompt=prompt, environment=production, version=v1, reason="v2 leaks account numbers",
    )
    pending = approvals.open_request(
        actor=author, prompt=prompt, version=v3, environment=staging, rationale="friendlier greeting",
    )
    approved = approvals.open_request(
        actor=author, prompt=prompt, version=v2, environment=development, rationale="try it in development",
    )
    approvals.approve(actor=approver, request=approved)
    administration.save_approver_group(
        actor=owner, team=team, slug="letters", name="Letters", members=["approver"],
    )

    suite = evals.create_suite(actor=author, slug="letters-core", name="Letters core", team=team)
    evals.add_cases(actor=author, suite=suite, cases=[
        {"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "Ada"}]},
    ])
    run = evals.start_run(actor=author, prompt=prompt, version=v1, suite=suite)
    earlier = evals.start_run(actor=author, prompt=prompt, version=v1, suite=suite)
    EvalRun.objects.filter(pk=earlier.pk).update(status=EvalRun.COMPLETED, finished_at=timezone.now())
    notice = DriftNotice.objects.create(
        prompt=prompt, suite=suite, run=earlier, environment="production", pass_rate=0.5, previous_pass_rate=1.0,
        threshold=0.1, reason=DriftNotice.REASON_CHOICES[0][0],
    )
    eval_budgets.set_budget(actor=owner, team=team, monthly_usd="1000")  # what an override overrides
    # ... once the month reached 80% of it (evals.budgets.override_refusal): the earlier run spent 850
    EvalResult.objects.create(run=earlier, case=suite.cases.get(), position=1, passed=True, cost_usd=850.0)

    with override_settings(PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS=["127.0.0.1/32"]):
        hook, _secret = webhooks.create_subscription(
            actor=owner, url="http://127.0.0.1:9/hook", events=["*"], team=team,
        )
        webhooks.send_test(actor=owner, subscription=hook)
        stream = stream_services.create_stream(actor=Actor(user=people["admin"]), name="siem",
                                               url="http://127.0.0.1:9/siem")
    delivery = Delivery.objects.filter(subscription=hook).latest("pk")
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.FAILED)  # what a redeliver is for

    raw = {f"token:{scope}": _token(people["admin"], [scope], scope) for scope in SCOPES}
    raw["deactivated"] = _token(people["deactivated"], SCOPES, "all")
    spare = APIToken.objects.create(
        user=people["author"], name="spare", prefix="pl_spare00", key_hash="0" * 64, scopes=["prompts:read"],
    )
    people["deactivated"].is_active = False
    people["deactivated"].save(update_fields=["is_active"])
    ids = {
        "prompt": prompt.slug, "llm": llm.pk, "pending": pending.pk, "approved": approved.pk, "glass": glass.pk,
        "run": run.pk, "finished_run": earlier.pk, "notice": notice.pk, "suite": suite.slug, "hook": hook.pk,
        "delivery": delivery.pk, "spare_token": spare.pk, "newcomer": extra.username, "stream": stream.pk,
    }
    return people, raw, ids
