"""Risk fixtures: a ``risk`` person, the offline model (``cast["llm"]``) carrying two live prompts
of team 'payments' in production (Tier-0 'loan-letter' and Tier-2 'faq-answer', each with a v2
waiting to be deployed), tier policies that need one team approver's approval and no gate (so,
once ``open_request`` has it approved, the register's own checks are what a deploy meets), and
``overdue()`` to put the model's review in the past."""

import datetime

import pytest
from django.utils import timezone

from approvals import administration
from approvals import services as approvals
from core.actors import Actor
from registry.models import Environment, SiteRole
from registry.services import create_version, set_deployment
from tests.factories import PromptFactory, UserFactory, version_body


def act(user):
    """``user`` acting from a browser session that signed in just now."""
    return Actor(user=user, authenticated_at=timezone.now())


def push(cast, prompt, content):
    body = version_body(content)
    made, _ = create_version(
        actor=act(cast["author"]), prompt=prompt, messages=body["messages"], variables=body["variables"],
        model=body["model"], message=content,
    )
    return made


@pytest.fixture
def register(cast, environments):
    cast["risk"] = UserFactory(username="risk")
    SiteRole.objects.create(user=cast["risk"], role=SiteRole.RISK)
    system = Actor.for_system("risk-tests")
    for tier in (0, 2):
        administration.update_policy(
            actor=system, tier=tier, required_approvals=1, named_approvers_only=False, requires_gate=False,
            reason="risk tests",
        )
    production = Environment.objects.get(slug="production")
    live = {}
    for slug, tier in (("loan-letter", 0), ("faq-answer", 2)):
        prompt = PromptFactory(slug=slug, team=cast["team"], owner=cast["owner"], tier=tier)
        v1 = push(cast, prompt, f"{slug}: write to {{{{ name }}}}.")
        set_deployment(actor=system, prompt=prompt, environment=production, version=v1)
        v2 = push(cast, prompt, f"{slug}: dear {{{{ name }}}},")
        live[slug] = {"prompt": prompt, "v1": v1, "v2": v2}
    entry = cast["llm"]
    entry.next_review_due = timezone.localdate() + datetime.timedelta(days=60)
    entry.save()
    return {**cast, "production": production, "live": live, "llm": entry}


@pytest.fixture
def overdue(register):
    """Put the model's next review ``days`` days in the past."""

    def make(days=10):
        entry = register["llm"]
        entry.next_review_due = timezone.localdate() - datetime.timedelta(days=days)
        entry.save(update_fields=["next_review_due"])
        return entry

    return make


def open_request(register, slug, by="author"):
    """A request to put ``slug``'s v2 live in production, approved by the team's approver."""
    request = approvals.open_request(
        actor=act(register[by]), prompt=register["live"][slug]["prompt"], version=register["live"][slug]["v2"],
        environment=register["production"], rationale="a friendlier greeting",
    )
    approvals.approve(actor=act(register["approver"]), request=request)
    request.refresh_from_db()
    return request
