"""The world the query-count tests measure lists in: ``build(n)`` makes ``n`` of every listed thing,
each with the related rows its list shows (versions, deployments, memberships, requests and their
decisions, runs and their results, deliveries and their attempts), through the services wherever a
service makes the thing. Measuring the same list in ``build(3)`` and ``build(15)`` shows whether
its number of queries grows with its rows."""

import datetime

from django.conf import settings
from django.test.utils import override_settings
from django.utils import timezone

from approvals import administration
from approvals import services as approvals
from approvals.models import DeployRequest
from core.actors import Actor
from evals import budgets as eval_budgets
from evals import runner
from evals import services as evals
from evals.models import DriftNotice
from registry import services as registry
from registry.models import Environment, LLMModel, Membership, SiteRole
from tests.factories import MembershipFactory, TeamFactory, UserFactory, version_body
from webhooks import services as webhooks
from webhooks import stream_services
from webhooks.models import Delivery, DeliveryAttempt

TEAM_ROLES = ("viewer", "author", "approver", "owner")
MODEL = version_body()["model"]
VARIABLES = version_body()["variables"]


def signed_in(user):
    return Actor(user=user, authenticated_at=timezone.now())


def _version(author, prompt, content):
    made, _ = registry.create_version(
        actor=author, prompt=prompt, messages=[{"role": "system", "content": content}], variables=VARIABLES,
        model=MODEL, message=content,
    )
    return made


def _people(n):
    """The team ``payments`` with one person per role, ``growth`` owned by an outsider, an admin, and
    ``n`` more people: each a viewer in ``payments``, owner of a team of their own (where the viewer
    is a member too) and holder of a token, one in three with a site role; ``n`` + 1 registered
    models."""
    team, growth = TeamFactory(slug="payments", name="Payments"), TeamFactory(slug="growth", name="Growth")
    people = {name: UserFactory(username=name) for name in (*TEAM_ROLES, "outsider", "admin")}
    for role in TEAM_ROLES:
        MembershipFactory(team=team, user=people[role], role=role)
    MembershipFactory(team=growth, user=people["outsider"], role=Membership.OWNER)
    SiteRole.objects.create(user=people["admin"], role=SiteRole.ADMIN)
    admin = signed_in(people["admin"])
    for i in range(n):
        person = UserFactory(username=f"person-{i:02}")
        other = registry.create_team(actor=admin, slug=f"team-{i:02}", name=f"Team {i:02}")
        registry.add_member(actor=admin, team=other, username=person.username, role=Membership.OWNER)
        registry.add_member(actor=admin, team=other, username="viewer", role=Membership.VIEWER)
        registry.add_member(actor=admin, team=team, username=person.username, role=Membership.VIEWER)
        if i % 3 == 0:
            registry.grant_site_role(actor=admin, username=person.username, role=SiteRole.RISK)
        registry.issue_token(actor=Actor.for_system(), user=person, scopes=["prompts:read"], name=f"ci-{i:02}")
        eval_budgets.set_budget(actor=admin, team=other, monthly_usd=100 + i)  # the cost page's budgets
        registry.create_llm_model(
            actor=admin, provider=LLMModel.OFFLINE, model_id=f"offline-echo-{i + 2}", owner="admin",
            status=LLMModel.APPROVED,
        )
    registry.create_llm_model(
        actor=admin, provider=LLMModel.OFFLINE, model_id=MODEL["name"], owner="admin", status=LLMModel.APPROVED,
    )
    return people, team, growth


def _prompts(n, people, team, growth):
    """``n`` prompts of ``payments`` across tiers 0 to 2, each with three versions, live in every
    environment, with a request waiting for the approver, an approved or rejected one, and (every
    third) a break-glass rollback whose review is open; one more prompt in ``growth``."""
    environments = list(Environment.objects.order_by("position"))
    production, staging, development = (next(e for e in environments if e.slug == s)
                                        for s in ("production", "staging", "development"))
    owner, author, approver = (signed_in(people[name]) for name in ("owner", "author", "approver"))
    system = Actor.for_system("query-counts")
    administration.save_approver_group(actor=owner, team=team, slug="letters", name="Letters",
                                       members=["approver", "owner"])
    for i in range(n):
        administration.save_approver_group(actor=owner, team=team, slug=f"group-{i:02}", name=f"Group {i:02}",
                                           members=["approver"])
        prompt = registry.create_prompt(
            actor=owner, slug=f"letter-{i:02}", name=f"Letter {i:02}", team=team, tier=i % 3, owner="owner",
            tags=[f"tag-{i % 4}"], data_categories=["pii"] if i % 2 else ["none"],
        )
        if prompt.tier == 0:
            registry.update_prompt(actor=owner, prompt=prompt, approvers=["approver"], approver_groups=["letters"])
        v1, v2, v3 = (_version(author, prompt, f"{greeting} {{{{ name }}}}, letter {i}.")
                      for greeting in ("Dear", "Hello", "Hi"))
        for environment in environments:
            registry.set_deployment(actor=system, prompt=prompt, environment=environment, version=v1)
        approvals.open_request(actor=author, prompt=prompt, version=v3, environment=staging, rationale="friendlier")
        decided = approvals.open_request(
            actor=author, prompt=prompt, version=v2, environment=development, rationale="try it",
        )
        if decided.status == DeployRequest.PENDING:
            decide = approvals.approve if i % 2 else approvals.reject
            decide(actor=approver, request=decided, comment="read it")
        if i % 3 == 0:
            registry.set_deployment(actor=system, prompt=prompt, environment=production, version=v2)
            approvals.break_glass_rollback(
                actor=owner, prompt=prompt, environment=production, version=v1, reason="v2 leaks account numbers",
            )
    registry.create_prompt(actor=signed_in(people["outsider"]), slug="growth-letter", name="Growth letter",
                           team=growth, tier=2, owner="outsider")


def _focal_prompt(n, people, team):
    """``loan-letter`` with ``n`` versions, live in production; the suite ``letters-core`` with ``n``
    cases; ``n`` runs of it (two in three finished, each with ``n`` results and a drift notice) and
    ``n`` more suites."""
    owner, author = signed_in(people["owner"]), signed_in(people["author"])
    system = Actor.for_system("query-counts")
    prompt = registry.create_prompt(
        actor=owner, slug="loan-letter", name="Loan letter", team=team, tier=1, owner="owner",
        data_categories=["pii", "financial"],
    )
    versions = [_version(author, prompt, f"Write to {{{{ name }}}}, draft {i}.") for i in range(n)]
    production = Environment.objects.get(slug="production")
    registry.set_deployment(actor=system, prompt=prompt, environment=production, version=versions[0])
    suite = evals.create_suite(actor=author, slug="letters-core", name="Letters core", team=team)
    evals.add_cases(actor=author, suite=suite, cases=[
        {"vars": {"name": f"Ada {i}"}, "assertions": [{"type": "contains", "value": f"Ada {i}"}]} for i in range(n)
    ])
    admin = signed_in(people["admin"])
    for i in range(n):  # the team's, and shared ones (which admins make)
        evals.create_suite(actor=admin if i % 2 else author, slug=f"suite-{i:02}", name=f"Suite {i:02}",
                           team=None if i % 2 else team)
    runs, previous = [], None
    for i in range(n):
        run = evals.start_run(actor=author, prompt=prompt, version=versions[i % len(versions)], suite=suite)
        runs.append(run)
        if i % 3 == 2:
            continue  # still queued: its progress is counted, not summarized
        runner.execute(run.pk)
        DriftNotice.objects.create(
            prompt=prompt, suite=suite, run=run, previous_run=previous, environment="production", pass_rate=0.5,
            previous_pass_rate=1.0, threshold=0.1, reason=DriftNotice.REASON_CHOICES[0][0],
        )
        previous = run
    return prompt, suite, runs[0]


def _webhooks(n, people, team):
    """``n`` subscriptions of ``payments``; the first has ``n`` deliveries, each with its attempts, a
    few failed and sent again."""
    owner = signed_in(people["owner"])
    with override_settings(PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS=["127.0.0.1/32"]):
        hooks = [
            webhooks.create_subscription(actor=owner, url=f"http://127.0.0.1:9/hook-{i}", events=["*"], team=team)[0]
            for i in range(n)
        ]
        hook = hooks[0]
        sent = [webhooks.send_test(actor=owner, subscription=hook) for _ in range(n)]
        started = timezone.now() - datetime.timedelta(minutes=5)
        for i, delivery in enumerate(sent):
            outcome = DeliveryAttempt.FAILED if i % 2 else DeliveryAttempt.DELIVERED
            for number in (1, 2):
                DeliveryAttempt.objects.create(
                    delivery=delivery, number=number, started_at=started, duration_ms=40, status_code=500 + i % 2,
                    outcome=outcome if number == 2 else DeliveryAttempt.RETRY,
                )
            status = Delivery.FAILED if i % 2 else Delivery.DELIVERED
            Delivery.objects.filter(pk=delivery.pk).update(status=status, attempts=2, next_attempt_at=None)
            if i % 4 == 1:
                webhooks.redeliver(actor=owner, delivery=delivery)
    return hook


def _model_register(n, people):
    """The focal model (the one every prompt runs on) with ``n`` linked suites and ``n`` signed
    reviews; every other model's review overdue."""
    from approvals.services import Signature
    from risk import services as risk

    admin = signed_in(people["admin"])
    entry = LLMModel.objects.get(model_id=MODEL["name"])
    risk.edit_model(actor=admin, llm_model=entry, intended_use="Tests.", suites=[f"suite-{i:02}" for i in range(n)])
    for i in range(n):
        risk.record_review(
            actor=admin, llm_model=entry, findings=f"Review {i}.", decision="keep",
            next_review_due=timezone.localdate() + datetime.timedelta(days=30 + i),
            evidence_links=[f"https://evidence.example/{i}"], signature=Signature("password", timezone.now()),
        )
    LLMModel.objects.exclude(pk=entry.pk).update(next_review_due=timezone.localdate() - datetime.timedelta(days=3))
    return entry


def _audit_streams(n, people):
    """``n`` audit streams, behind the chain's head (so each has a lag to show)."""
    admin = Actor(user=people["admin"])
    with override_settings(PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS=["127.0.0.1/32"]):
        made = [stream_services.create_stream(actor=admin, name=f"siem-{i}", url=f"http://127.0.0.1:9/siem-{i}")
                for i in range(n)]
    return made[0]


def build(n):
    """The world with ``n`` of every listed thing; returns ``(people, ids)``: the cast by name, and
    the slug or id of each object a list hangs from (``prompt``, ``suite``, ``run``, ``hook``,
    ``team``)."""
    for position, slug in enumerate(settings.PROMPTLEDGER_ENVIRONMENTS):
        Environment.objects.get_or_create(slug=slug, defaults={"name": slug.capitalize(), "position": position})
    people, team, growth = _people(n)
    administration.update_policy(actor=Actor.for_system("query-counts"), tier=1, requires_gate=False, reason="test")
    _prompts(n, people, team, growth)
    prompt, suite, run = _focal_prompt(n, people, team)
    hook = _webhooks(n, people, team)
    llm = _model_register(n, people)
    stream = _audit_streams(n, people)
    ids = {"prompt": prompt.slug, "suite": suite.slug, "run": run.pk, "hook": hook.pk, "team": team.slug,
           "llm": llm.pk, "stream": stream.pk}
    return people, ids

