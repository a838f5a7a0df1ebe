"""The demo's approval flow, for ``bootstrap_demo``: who approves what, the eval evidence gates
need, and deploy requests in every state, so the Approvals pages have something to show on first
start.

Everything goes through the services with the demo user a real team would use as its actor (the
author opens a request, named approvers decide, the owner breaks glass), so the audit trail is
the one real use would leave. It starts from the pointers ``bootstrap_demo`` seeds and ends on
them again, except that the Tier-3 transaction categoriser ships its newest version to production
(as Tier-3 may, directly).

Loaded once: when any deploy request of the demo's story prompts exists, ``already_loaded`` says
so and the command skips all of this, so running it again writes nothing.
"""

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from approvals import administration
from approvals import services as flow
from approvals.models import ApproverGroup, DeployRequest, NamedApprover
from approvals.services import Signature
from audit.transactions import change
from evals import runner
from evals.gates import SCORED, set_gate
from evals.models import EvalRun, Gate, Suite
from evals.services import add_cases, create_suite, start_run
from registry.actors import Actor
from registry.errors import DomainError, NotFound
from registry.models import Environment, Prompt

from . import _demo_gates as evidence

# Each team's approver group: its two approvers and its owner. Named (with the two approvers by
# name) on one prompt per team; the other Tier-0 and Tier-1 prompts name the two approvers only.
GROUP = ("reviewers", "{team} reviewers", ("approver", "approver-2", "owner"))
GROUP_ON = {"lending": "fraud-hold-explanation", "care": "claim-triage", "citizen": "council-tax-reduction-explainer"}

# The prompts the deploy-request story below touches; a request on any of them means it was told.
STORY_PROMPTS = [
    "loan-decision-letter", "fraud-hold-explanation", "transaction-categoriser", "discharge-summary",
    "claim-triage", "council-tax-reduction-explainer", "complaint-router",
]

# How the demo's decisions were "signed": by this loader, on the person's behalf. It says so in the
# audit trail rather than claim a browser session or a password nobody typed.
SIGNED_BY = "bootstrap_demo"


class ApprovalsDemo:
    """Loads the approvals layer over the demo prompts; ``created`` counts what it made.

    ``strict`` (a world this run just made): a service's refusal propagates, as it is a bug in the
    demo. Otherwise (a demo world an older ``bootstrap_demo`` loaded) each step is its own
    savepoint, and a step a service refuses, because that world was changed since, is left out and
    described in ``notes``."""

    def __init__(self, specs, *, strict):
        self.specs = {spec["slug"]: spec for spec in specs}
        self.strict = strict
        self.created = {"approver groups": 0, "suites": 0, "eval runs": 0, "deploy requests": 0, "decisions": 0}
        self.notes = []
        self._people = {}

    def already_loaded(self):
        ours = Q()
        for slug in STORY_PROMPTS:
            ours |= Q(prompt__slug=slug, prompt__team__slug=self.specs[slug]["team"])
        return DeployRequest.objects.filter(ours).exists()

    def load(self):
        """Approvers and eval evidence prompt by prompt, then the deploy requests story by story."""
        prompts = self.our_prompts()
        for prompt in prompts.values():
            self.attempt(f"the approvers and gate of {prompt.slug}", lambda p=prompt: self.prepare(p))
        production = Environment.objects.filter(slug="production").first()
        if production is None:
            self.notes.append("Left out the demo's deploy requests: there is no 'production' environment.")
            return
        story = Story(self, prompts, production)
        for step in story.steps():
            self.attempt(f"the story '{step.__name__}'", step)

    def attempt(self, what, step):
        if self.strict:
            return step()
        before = dict(self.created)
        try:
            with change():  # a savepoint inside the demo's change(): its events go if it does
                step()
        except DomainError as exc:
            self.created = before
            self.notes.append(f"Left out {what} ({exc.code}): {exc.detail}")

    def prepare(self, prompt):
        self.name_approvers(prompt)
        if prompt.slug in evidence.GATES:
            self.gate(prompt, evidence.GATES[prompt.slug])

    # --- people and prompts -----------------------------------------------------------------

    def actor(self, team, seat):
        username = f"{team}-{seat}"
        if username not in self._people:
            self._people[username] = Actor(user=get_user_model().objects.get(username=username))
        return self._people[username]

    def our_prompts(self):
        """The demo prompts that are the demo's: the slug in the team the demo gives it (a prompt
        someone else made under a demo slug is left alone)."""
        found = Prompt.objects.filter(slug__in=self.specs).select_related("team")
        return {p.slug: p for p in found if p.team.slug == self.specs[p.slug]["team"]}

    # --- who approves -----------------------------------------------------------------------

    def name_approvers(self, prompt):
        if prompt.tier > 1 or NamedApprover.objects.filter(prompt=prompt).exists():
            return  # Tier-2/3 need no approver; named already: whoever named them keeps them
        team = prompt.team.slug
        owner = self.actor(team, "owner")
        groups = [self.approver_group(prompt.team, owner).slug] if GROUP_ON.get(team) == prompt.slug else []
        administration.set_named_approvers(
            actor=owner, prompt=prompt, approvers=[f"{team}-approver", f"{team}-approver-2"], approver_groups=groups
        )

    def approver_group(self, team, owner):
        suffix, name, seats = GROUP
        slug = f"{team.slug}-{suffix}"
        group = ApproverGroup.objects.filter(team=team, slug=slug).first()
        if group is None:
            group = administration.save_approver_group(
                actor=owner, team=team, slug=slug, name=name.format(team=team.name.split(" (")[0]),
                members=[f"{team.slug}-{seat}" for seat in seats],
            )
            self.created["approver groups"] += 1
        return group

    # --- eval evidence ----------------------------------------------------------------------

    def gate(self, prompt, plan):
        suite = self.suite(prompt, plan["cases"])
        if not Gate.objects.filter(prompt=prompt).exists():
            set_gate(
                actor=self.actor(prompt.team.slug, "owner"), prompt=prompt,
                suites=[{"suite": suite.slug, "min_pass_rate": plan["min_pass_rate"]}],
                max_regression=plan["max_regression"],
            )
        for number in plan["runs"]:
            self.run(prompt, prompt.versions.get(number=number), suite)

    def suite(self, prompt, cases):
        slug = evidence.suite_slug(prompt.slug)
        suite = Suite.objects.filter(slug=slug).first()
        if suite is None:
            author = self.actor(prompt.team.slug, "author")
            suite = create_suite(
                actor=author, slug=slug, name=f"{prompt.name}: core checks", team=prompt.team,
                description=f"What every version of {prompt.slug} must carry and must leave out.",
            )
            add_cases(actor=author, suite=suite, cases=cases)
            self.created["suites"] += 1
        return suite

    def run(self, prompt, version, suite):
        """A finished run of ``suite`` on ``version``, run here and now on the offline provider."""
        done = EvalRun.objects.filter(content_hash=version.content_hash, suite=suite, status__in=SCORED)
        if done.exists():
            return
        run = start_run(
            actor=self.actor(prompt.team.slug, "author"), prompt=prompt, version=version, suite=suite,
            trigger=EvalRun.PRE_RELEASE,
        )
        runner.execute(run.pk)  # in this process; the worker finds it finished when the signal comes
        self.created["eval runs"] += 1


class Story:
    """Deploy requests in every state, across the three teams."""

    def __init__(self, demo, prompts, production):
        self.demo, self.prompts, self.production = demo, prompts, production

    def steps(self):
        return [
            self.tier0_waiting_for_both,
            self.tier0_one_of_two,
            self.deployed_then_break_glass,
            self.tier3_direct,
            self.rejected_and_tier_change,
            self.superseded_then_approved,
            self.deployed_then_rolled_back,
        ]

    def who(self, team, seat):
        return self.demo.actor(team, seat)

    def prompt(self, slug):
        if slug not in self.prompts:
            raise NotFound(f"'{slug}' is not the demo's prompt here", code="not_demo_prompt")
        return self.prompts[slug]

    def v(self, slug, number):
        return self.prompt(slug).versions.get(number=number)

    def request(self, team, seat, slug, number, rationale, canary_percent=None):
        self.demo.created["deploy requests"] += 1
        return flow.open_request(
            actor=self.who(team, seat), prompt=self.prompt(slug), version=self.v(slug, number),
            environment=self.production, rationale=rationale, canary_percent=canary_percent,
        )

    def approve(self, request, team, seat, comment=""):
        self.demo.created["decisions"] += 1
        flow.approve(actor=self.who(team, seat), request=request, comment=comment,
                     signature=Signature(SIGNED_BY, timezone.now()))

    def reject(self, request, team, seat, comment):
        self.demo.created["decisions"] += 1
        flow.reject(actor=self.who(team, seat), request=request, comment=comment,
                    signature=Signature(SIGNED_BY, timezone.now()))

    # --- lending ----------------------------------------------------------------------------

    def tier0_waiting_for_both(self):
        self.request(
            "lending", "author", "loan-decision-letter", 4,
            "Appeal window and vulnerable-customer handling (complaint C-8812). The core suite passes on v4 "
            "with no regression against v3.",
        )

    def deployed_then_break_glass(self):
        request = self.request(
            "lending", "author", "fraud-hold-explanation", 3,
            "SMS wording from the fraud team's smishing guidance (FR-112): short, and no links.",
        )
        self.approve(request, "lending", "approver", "Read against FR-112; no links in the SMS branch.")
        self.approve(request, "lending", "approver-2")
        flow.deploy(actor=self.who("lending", "author"), request=request)
        flow.break_glass_rollback(
            actor=self.who("lending", "owner"), prompt=self.prompt("fraud-hold-explanation"),
            environment=self.production, version=self.v("fraud-hold-explanation", 2),
            reason="INC-3507: the SMS sender does not pass 'channel' yet, so SMS customers got the in-app "
            "wording. Back to v2 until the sender is updated.",
        )
        self.demo.created["deploy requests"] += 1

    def tier3_direct(self):
        self.request(
            "lending", "author", "transaction-categoriser", 2,
            "Structured categories with a confidence for the budgeting view.",
        )

    # --- care -------------------------------------------------------------------------------

    def tier0_one_of_two(self):
        request = self.request(
            "care", "author", "discharge-summary", 4,
            "List allergies first, as the GP liaison group asked after the INC-3391 review.",
        )
        self.approve(request, "care", "approver", "Checked with three summaries from ward 7: allergies first, "
                     "doses unchanged.")

    def rejected_and_tier_change(self):
        request = self.request(
            "care", "author", "claim-triage", 3,
            "Consider prior claims and answer in JSON, so the billing queue can be filled automatically.",
        )
        self.reject(
            request, "care", "approver",
            "Every prior claim goes to the model with its procedure codes, and triage only needs their count "
            "and total. Cut them down before this reaches production (data minimisation, DPIA-22).",
        )
        self.demo.created["deploy requests"] += 1
        flow.open_tier_change(
            actor=self.who("care", "owner"), prompt=self.prompt("claim-triage"), target_tier=2,
            rationale="Triage only picks the work queue a billing clerk takes a claim from; it never approves "
            "or refuses payment. The billing risk review (BR-2024-09) rates it tier 2.",
        )

    # --- citizen services -------------------------------------------------------------------

    def superseded_then_approved(self):
        self.request(
            "citizen", "author", "council-tax-reduction-explainer", 4,
            "Review rights and letters in the resident's language: a quarter of letters first.", canary_percent=25,
        )
        request = self.request(
            "citizen", "author", "council-tax-reduction-explainer", 4,
            "The language service checked the Polish and Welsh letters, so no canary: all letters at once.",
        )
        self.approve(request, "citizen", "approver", "Read the samples with the language service; fine to go.")

    def deployed_then_rolled_back(self):
        request = self.request(
            "citizen", "author", "complaint-router", 3, "Repeat complaints raise the severity by one."
        )
        flow.deploy(actor=self.who("citizen", "author"), request=request)
        rollback = flow.open_rollback(
            actor=self.who("citizen", "owner"), prompt=self.prompt("complaint-router"), environment=self.production,
            rationale="Every repeat bin complaint became severity 3 and flooded the safety queue: back to v2 "
            "while the rule is narrowed to the same issue.",
        )
        self.demo.created["deploy requests"] += 1
        flow.deploy(actor=self.who("citizen", "owner"), request=rollback)
