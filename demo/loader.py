"""The demo world, loaded from ``demo/data`` (``demo.files``) through the services.

Three teams with a user in each seat plus the site roles (one team with a monthly eval budget),
the model register, the prompts with their version histories deployed to development, staging and
production (one canary, one kill switch), then the approval flow (``demo.story``).

Idempotent: whatever exists is left as it is, so loading again (``run_embedded`` does on every
start) neither fails nor undoes changes made since. A prompt that exists is skipped whole (versions
and deployments included): the load is one transaction, so an existing demo prompt is complete,
and a prompt of the same name made by someone else is not ours to change.
"""

import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from audit.transactions import change
from core.actors import Actor
from core.models import Membership, SiteRole, Team
from evals import budgets
from evals.models import TeamBudget
from registry import services
from registry.models import Environment, LLMModel, Prompt

from . import files, register
from .story import Story


class DemoWorld:
    """``load()`` writes what is missing; then ``created`` counts it, ``logins`` lists each demo user
    with their roles, and ``notes`` says what was left out."""

    def __init__(self, *, password):
        self.world = files.world()
        self.prompts = files.prompts()  # every prompt file checked before anything is written
        self.created = {"users": 0, "teams": 0, "models": 0, "prompts": 0, "versions": 0, "deployments": 0,
                        "budgets": 0}
        self.system = Actor.for_system("bootstrap_demo")
        # One hash for every demo user, made when the first is created: hashing once (and not at all
        # on a second run) keeps the command fast, and the demo users share the printed password anyway.
        self.password, self.password_hash = password, None
        self.logins, self.notes = [], []

    def load(self):
        with change():  # one change: the chain lock first (audit.transactions)
            self.create_users()
            self.create_teams()
            self.create_models()
            for prompt in self.prompts:
                self.create_prompt(prompt)
            story = Story(self.world, teams={p.slug: p.team for p in self.prompts},
                          strict=self.created["prompts"] == len(self.prompts))
            if not story.already_loaded():
                story.load()
                self.created.update(story.created)
                self.notes += story.notes
            register.load(self.world, self.created)  # after the story: see demo/register.py

    # --- people -------------------------------------------------------------------------------

    def user(self, username, *, superuser=False):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            if self.password_hash is None:
                self.password_hash = make_password(self.password)
            user = get_user_model()(
                username=username,
                email=f"{username}@demo.promptledger.test",
                is_staff=superuser,
                is_superuser=superuser,
                password=self.password_hash,
            )
            user.save()
            self.created["users"] += 1
        return user

    def create_users(self):
        """Users, then site roles through the audited service. Accounts themselves are Django's
        (no registry state), so they are the only rows written directly."""
        for username, seat in self.world["site_users"].items():
            superuser = seat.get("superuser", False)
            user = self.user(username, superuser=superuser)
            if not SiteRole.objects.filter(user=user, role=seat["role"]).exists():
                services.grant_site_role(actor=self.system, username=username, role=seat["role"])
            self.logins.append((user, f"site {seat['role']}" + (" (superuser)" if superuser else "")))
        for team in self.world["teams"]:
            for seat, role in self.world["seats"].items():
                self.logins.append((self.user(f"{team}-{seat}"), f"{role} of {team}"))

    def create_teams(self):
        for slug, team_spec in self.world["teams"].items():
            team = Team.objects.filter(slug=slug).first()
            if team is None:
                team = services.create_team(actor=self.system, slug=slug, name=team_spec["name"])
                self.created["teams"] += 1
            members = set(Membership.objects.filter(team=team).values_list("user__username", flat=True))
            for seat, role in self.world["seats"].items():
                if f"{slug}-{seat}" not in members:  # never change a role someone has set since
                    services.add_member(actor=self.system, team=team, username=f"{slug}-{seat}", role=role)
            if team_spec.get("monthly_eval_budget_usd") and not TeamBudget.objects.filter(team=team).exists():
                owner = Actor(user=get_user_model().objects.get(username=f"{slug}-owner"))
                budgets.set_budget(actor=owner, team=team, monthly_usd=team_spec["monthly_eval_budget_usd"])
                self.created["budgets"] += 1

    def create_models(self):
        reviewed = datetime.date.today() - datetime.timedelta(days=30)
        for entry in self.world["models"]:
            if LLMModel.objects.filter(provider=entry["provider"], model_id=entry["model_id"]).exists():
                continue
            services.create_llm_model(actor=self.system, owner="risk", last_reviewed_at=reviewed, **entry)
            self.created["models"] += 1

    # --- prompts ------------------------------------------------------------------------------

    def create_prompt(self, demo_prompt):
        if Prompt.objects.filter(slug=demo_prompt.slug).exists():
            # Loaded by an earlier run (the whole load is one transaction, so with all its versions and
            # deployments) or someone's own prompt of that name: leave it alone either way.
            return
        details = demo_prompt.details()
        team = Team.objects.get(slug=details.pop("team"))
        author = Actor(user=get_user_model().objects.get(username=f"{team.slug}-author"))
        owner = Actor(user=get_user_model().objects.get(username=details["owner"]))
        prompt = services.create_prompt(actor=author, slug=demo_prompt.slug, team=team, **details)
        self.created["prompts"] += 1
        spec = self.world["prompts"].get(prompt.slug) or {}
        versions = {}
        for number, file in enumerate(demo_prompt.versions, start=1):
            version, created = services.create_version(
                actor=owner if number in spec.get("owner_wrote", ()) else author,
                prompt=prompt,
                message=file.data.get("message") or "",
                **file.content(),
            )
            versions[number] = version
            self.created["versions"] += int(created)
        self.deploy(prompt, spec, versions, owner)

    def deploy(self, prompt, spec, versions, owner):
        """Production one version behind the newest, staging and development on the newest, unless
        the prompt's ``deploy`` says otherwise; then its canary and kill switch."""
        newest = len(versions)
        plan = spec.get("deploy") or {"production": max(1, newest - 1), "staging": newest, "development": newest}
        canary, kill = spec.get("canary") or {}, spec.get("kill_switch") or {}
        environments = {env.slug: env for env in Environment.objects.filter(slug__in=plan)}
        for slug, number in plan.items():
            env = environments.get(slug)
            if env is None:  # PROMPTLEDGER_ENVIRONMENTS does not have it here
                continue
            with_canary = canary.get("environment") == slug
            services.set_deployment(
                actor=owner,
                prompt=prompt,
                environment=env,
                version=versions[number],
                canary_version=versions[canary["version"]] if with_canary else None,
                canary_percent=canary["percent"] if with_canary else None,
            )
            self.created["deployments"] += 1
            if kill.get("environment") == slug:
                services.set_kill_switch(
                    actor=Actor(user=get_user_model().objects.get(username=kill["by"])),
                    prompt=prompt, environment=env, disabled=True, reason=kill["reason"],
                )
