"""The demo's approval flow, from ``world.yaml``: who approves what, the eval evidence gates need,
and the deploy-request stories, so the Approvals pages have something to show on first start.

Everything goes through the services with the demo user a real team would use as its actor (the
author opens a request, named approvers decide, the owner breaks glass), so the audit trail is
the one real use would leave. It starts from the pointers ``demo.loader`` seeds and ends on them
again, except that the Tier-3 transaction categoriser ships its newest version to production (as
Tier-3 may, directly).

Loaded once: when any deploy request exists on a prompt a story names, ``already_loaded`` says so
and none of this runs again.
"""

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from approvals import administration
from approvals import services as flow
from approvals.models import ApproverGroup, DeployRequest, NamedApprover
from approvals.services import Signature
from audit.transactions import change
from core.actors import Actor
from core.errors import DomainError, NotFound
from evals import attack_suites, runner
from evals.gates import SCORED, set_gate
from evals.models import EvalRun, Gate, Suite
from evals.services import add_cases, create_suite, load_shared_suite, start_run
from registry.models import Environment, Prompt

from . import files

# How the demo's decisions were "signed": by this loader, on the person's behalf. It says so in the
# audit trail rather than claim a browser session or a password nobody typed.
SIGNED_BY = "bootstrap_demo"

# What a story step may do (world.yaml, ``stories``).
STEPS = ("open", "approve", "reject", "deploy", "break_glass", "rollback", "tier_change")


class Story:
    """Loads the approvals layer over the demo prompts; ``created`` counts what it made.

    ``strict`` (a world this run just made): a service's refusal propagates, as it is a bug in the
    demo. Otherwise (a demo world an older ``bootstrap_demo`` loaded) each step is its own
    savepoint, and a step a service refuses, because that world was changed since, is left out and
    described in ``notes``."""

    def __init__(self, world, *, teams, strict):
        self.world, self.teams, self.strict = world, teams, strict
        self.created = {"approver groups": 0, "suites": 0, "eval runs": 0, "deploy requests": 0, "decisions": 0}
        self.notes = []
        self._people = {}
        self.prompts, self.production = {}, None  # set by load()
        self.group_on = {spec["reviewers"]["named_on"]: team for team, spec in world["teams"].items()}

    def already_loaded(self):
        told = {args["prompt"] for steps in self.world["stories"].values() for step in steps
                for args in step.values() if "prompt" in args}
        return DeployRequest.objects.filter(self._ours("prompt__"), prompt__slug__in=told).exists()

    def load(self):
        """Approvers and eval evidence prompt by prompt, then the stories in order."""
        self.prompts = {p.slug: p for p in Prompt.objects.filter(self._ours()).select_related("team")}
        for prompt in self.prompts.values():
            self.attempt(f"the approvers and gate of {prompt.slug}", lambda p=prompt: self.prepare(p))
        self.production = Environment.objects.filter(slug="production").first()
        if self.production is None:
            self.notes.append("Left out the demo's deploy requests: there is no 'production' environment.")
            return
        for name, steps in self.world["stories"].items():
            self.attempt(f"the story '{name}'", lambda steps=steps: self.tell(steps))

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

    def _ours(self, prefix=""):
        """The demo's prompts: a demo slug in the team the demo gives it (a prompt someone else made
        under a demo slug is left alone)."""
        ours = Q(pk__in=[])
        for slug, team in self.teams.items():
            ours |= Q(**{f"{prefix}slug": slug, f"{prefix}team__slug": team})
        return ours

    def who(self, username):
        if username not in self._people:
            self._people[username] = Actor(user=get_user_model().objects.get(username=username))
        return self._people[username]

    def prompt(self, slug):
        if slug not in self.prompts:
            raise NotFound(f"'{slug}' is not the demo's prompt here", code="not_demo_prompt")
        return self.prompts[slug]

    # --- who approves, and the eval evidence ---------------------------------------------------

    def prepare(self, prompt):
        self.name_approvers(prompt)
        gate = (self.world["prompts"].get(prompt.slug) or {}).get("gate")
        if gate:
            self.gate(prompt, gate)

    def name_approvers(self, prompt):
        if prompt.tier > 1 or NamedApprover.objects.filter(prompt=prompt).exists():
            return  # Tier-2/3 need no approver; named already: whoever named them keeps them
        team = prompt.team.slug
        owner = self.who(f"{team}-owner")
        groups = [self.approver_group(prompt.team, owner).slug] if self.group_on.get(prompt.slug) == team else []
        administration.set_named_approvers(
            actor=owner, prompt=prompt, approvers=[f"{team}-approver", f"{team}-approver-2"], approver_groups=groups
        )

    def approver_group(self, team, owner):
        spec = self.world["teams"][team.slug]["reviewers"]
        group = ApproverGroup.objects.filter(team=team, slug=f"{team.slug}-reviewers").first()
        if group is None:
            group = administration.save_approver_group(
                actor=owner, team=team, slug=f"{team.slug}-reviewers", name=spec["name"],
                members=[f"{team.slug}-{seat}" for seat in spec["members"]],
            )
            self.created["approver groups"] += 1
        return group

    def gate(self, prompt, plan):
        suite = self.suite(prompt, plan["suite"])
        shared = {self.shared_suite(slug): rate for slug, rate in (plan.get("shared") or {}).items()}
        if not Gate.objects.filter(prompt=prompt).exists():
            set_gate(
                actor=self.who(f"{prompt.team.slug}-owner"), prompt=prompt,
                suites=[{"suite": suite.slug, "min_pass_rate": plan["min_pass_rate"]}]
                + [{"suite": s.slug, "min_pass_rate": rate} for s, rate in shared.items()],
                max_regression=plan["max_regression"],
            )
        for number in plan["runs"]:
            for each in (suite, *shared):
                self.run(prompt, prompt.versions.get(number=number), each)

    def shared_suite(self, slug):
        """A shared suite the gate names: the attack suite, loaded as ``load_attack_suites`` would."""
        if slug != attack_suites.SLUG:
            raise ValueError(f"world.yaml: the demo knows one shared suite, {attack_suites.SLUG}, not '{slug}'")
        suite, added = load_shared_suite(actor=Actor.for_system("bootstrap_demo"), spec=attack_suites.SUITE)
        self.created["suites"] += int(added == len(attack_suites.SUITE["cases"]))
        return suite

    def suite(self, prompt, slug):
        suite = Suite.objects.filter(slug=slug).first()
        if suite is None:
            author = self.who(f"{prompt.team.slug}-author")
            suite = create_suite(
                actor=author, slug=slug, name=f"{prompt.name}: core checks", team=prompt.team,
                description=f"What every version of {prompt.slug} must carry and must leave out.",
            )
            add_cases(actor=author, suite=suite, cases=files.cases(slug))
            self.created["suites"] += 1
        return suite

    def run(self, prompt, version, suite):
        """A finished run of ``suite`` on ``version``, run here and now on the offline provider."""
        if EvalRun.objects.filter(content_hash=version.content_hash, suite=suite, status__in=SCORED).exists():
            return
        run = start_run(
            actor=self.who(f"{prompt.team.slug}-author"), prompt=prompt, version=version, suite=suite,
            trigger=EvalRun.PRE_RELEASE,
        )
        runner.execute(run.pk)  # in this process; the worker finds it finished when the signal comes
        self.created["eval runs"] += 1

    # --- the deploy requests -------------------------------------------------------------------

    def tell(self, steps):
        """One story's steps in order. Each is ``{kind: {by: username, ...}}``; ``approve``, ``reject``
        and ``deploy`` act on the story's latest request, the other kinds open the next one."""
        request = None
        for step in steps:
            [(kind, args)] = step.items()
            take = getattr(self, f"_{kind}", None) if kind in STEPS else None
            if take is None:
                raise ValueError(f"world.yaml: a story step is one of {', '.join(STEPS)}, not '{kind}'")
            request = take(request, self.who(args["by"]), **{k: v for k, v in args.items() if k != "by"})

    def _open(self, request, actor, *, prompt, version, rationale, canary_percent=None):
        self.created["deploy requests"] += 1
        prompt = self.prompt(prompt)
        return flow.open_request(
            actor=actor, prompt=prompt, version=prompt.versions.get(number=version), environment=self.production,
            rationale=rationale, canary_percent=canary_percent,
        )

    def _approve(self, request, actor, *, comment=""):
        self.created["decisions"] += 1
        flow.approve(actor=actor, request=request, comment=comment, signature=Signature(SIGNED_BY, timezone.now()))
        return request

    def _reject(self, request, actor, *, comment):
        self.created["decisions"] += 1
        flow.reject(actor=actor, request=request, comment=comment, signature=Signature(SIGNED_BY, timezone.now()))
        return request

    def _deploy(self, request, actor):
        flow.deploy(actor=actor, request=request)
        return request

    def _break_glass(self, request, actor, *, prompt, version, reason):
        self.created["deploy requests"] += 1
        prompt = self.prompt(prompt)
        return flow.break_glass_rollback(
            actor=actor, prompt=prompt, environment=self.production, version=prompt.versions.get(number=version),
            reason=reason,
        )

    def _rollback(self, request, actor, *, prompt, rationale):
        self.created["deploy requests"] += 1
        return flow.open_rollback(actor=actor, prompt=self.prompt(prompt), environment=self.production,
                                  rationale=rationale)

    def _tier_change(self, request, actor, *, prompt, tier, rationale):
        self.created["deploy requests"] += 1
        return flow.open_tier_change(actor=actor, prompt=self.prompt(prompt), target_tier=tier, rationale=rationale)
