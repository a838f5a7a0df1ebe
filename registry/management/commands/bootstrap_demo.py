"""``manage.py bootstrap_demo [--password P]``: load the demo world through the services.

Three teams, a user for each team role (two approvers per team, as Tier-0 needs) plus the site
roles, the model register, a dozen prompts across all tiers with their version histories,
deployed to development, staging and production (one canary, one kill switch). On top, the
approval flow (``_demo_approvals``): named approvers and approver groups, gate suites with finished
eval runs, and deploy requests in every state. Ends with a table of logins.

Idempotent: whatever exists is left as it is, so running it again (``run_embedded`` does on
every start) neither fails nor undoes changes made since. A prompt that exists is skipped whole
(versions and deployments included): the load is one transaction, so an existing demo prompt is
complete, and a prompt of the same name made by someone else is not ours to change. The approval
flow is loaded once, when none of its deploy requests exists yet.
"""

import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, make_password
from django.core.management.base import BaseCommand, CommandError

from audit.transactions import change
from registry import services
from registry.actors import Actor
from registry.errors import DomainError
from registry.models import Environment, LLMModel, Membership, Prompt, SiteRole, Team

from . import _demo_approvals as approvals_demo
from . import _demo_data as demo

DEFAULT_PASSWORD = "promptledger-demo"  # noqa: S105 - a demo login, printed on purpose


class Command(BaseCommand):
    help = "Create demo teams, users, models, prompts, versions and deployments (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            default=DEFAULT_PASSWORD,
            help=f"password for the demo users it creates (default: {DEFAULT_PASSWORD}); existing users keep theirs",
        )

    def handle(self, password, **options):
        if not password:
            raise CommandError("--password must not be empty")
        self.created = {"users": 0, "teams": 0, "models": 0, "prompts": 0, "versions": 0, "deployments": 0}
        self.system = Actor.for_system("bootstrap_demo")
        # One hash for every demo user, made when the first is created: hashing once (and not at
        # all on a second run) keeps the command fast, and the demo users share the printed
        # password anyway.
        self.password, self.password_hash = password, None
        self.notes = []
        try:
            with change():  # one change: the chain lock first (audit.transactions)
                logins = self.create_users()
                self.create_teams()
                self.create_models()
                for spec in demo.PROMPTS:
                    self.create_prompt(spec)
                self.load_approvals()
        except DomainError as exc:
            raise CommandError(f"demo data was refused ({exc.code}): {exc.detail} {exc.field_errors or ''}") from exc
        self.report(logins, password)

    # --- people -----------------------------------------------------------------------------

    def user(self, username, *, superuser=False):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if self.password_hash is None:
                self.password_hash = make_password(self.password)
            user = User(
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
        logins = []
        for username, role, superuser in demo.SITE_USERS:
            user = self.user(username, superuser=superuser)
            if not SiteRole.objects.filter(user=user, role=role).exists():
                services.grant_site_role(actor=self.system, username=user.username, role=role)
            logins.append((user, f"site {role}" + (" (superuser)" if superuser else "")))
        for team_slug, _ in demo.TEAMS:
            for seat, role in demo.TEAM_SEATS:
                logins.append((self.user(f"{team_slug}-{seat}"), f"{role} of {team_slug}"))
        return logins

    def create_teams(self):
        for slug, name in demo.TEAMS:
            team = Team.objects.filter(slug=slug).first()
            if team is None:
                team = services.create_team(actor=self.system, slug=slug, name=name)
                self.created["teams"] += 1
            members = set(Membership.objects.filter(team=team).values_list("user__username", flat=True))
            for seat, role in demo.TEAM_SEATS:
                username = f"{slug}-{seat}"
                if username not in members:  # never change a role someone has set since
                    services.add_member(actor=self.system, team=team, username=username, role=role)

    def create_models(self):
        today = datetime.date.today()
        for provider, model_id, status, failure_modes in demo.LLM_MODELS:
            if LLMModel.objects.filter(provider=provider, model_id=model_id).exists():
                continue
            services.create_llm_model(
                actor=self.system,
                provider=provider,
                model_id=model_id,
                owner="risk",
                status=status,
                failure_modes=failure_modes,
                last_reviewed_at=today - datetime.timedelta(days=30),
            )
            self.created["models"] += 1

    # --- prompts ----------------------------------------------------------------------------

    def create_prompt(self, spec):
        if Prompt.objects.filter(slug=spec["slug"]).exists():
            # Loaded by an earlier run (the whole load is one transaction, so with all its versions
            # and deployments) or someone's own prompt of that name: leave it alone either way.
            return
        team = Team.objects.get(slug=spec["team"])
        author = Actor(user=get_user_model().objects.get(username=f"{team.slug}-author"))
        owner = Actor(user=get_user_model().objects.get(username=f"{team.slug}-owner"))
        prompt = services.create_prompt(
            actor=author,
            slug=spec["slug"],
            name=spec["name"],
            team=team,
            tier=spec["tier"],
            owner=owner.username,
            tags=spec["tags"],
            data_categories=spec["data_categories"],
            description=spec["description"],
        )
        self.created["prompts"] += 1
        versions = {}
        for number, body in enumerate(spec["versions"], start=1):
            version, created = services.create_version(
                actor=owner if body["by"] == "owner" else author,
                prompt=prompt,
                messages=body["messages"],
                variables=body["variables"],
                model=body["model"],
                message=body["note"],
            )
            versions[number] = version
            self.created["versions"] += int(created)
        self.deploy(spec, prompt, versions, owner)

    def deploy(self, spec, prompt, versions, owner):
        plan = spec.get("deploy") or demo.default_deploy(len(versions))
        canary = spec.get("canary") or {}
        kill = spec.get("kill_switch") or {}
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
                approver = Actor(user=get_user_model().objects.get(username=f"{prompt.team.slug}-approver"))
                services.set_kill_switch(
                    actor=approver, prompt=prompt, environment=env, disabled=True, reason=kill["reason"]
                )

    # --- the approval flow ------------------------------------------------------------------

    def load_approvals(self):
        """Once: skipped whenever the demo's deploy requests exist. Over a demo world an older
        version of this command loaded, it is added on top, leaving out (with a note) what a
        service refuses there because that world was changed since."""
        story = approvals_demo.ApprovalsDemo(demo.PROMPTS, strict=self.created["prompts"] == len(demo.PROMPTS))
        if story.already_loaded():
            return
        story.load()
        self.created.update(story.created)
        self.notes += story.notes

    # --- output -----------------------------------------------------------------------------

    def report(self, logins, password):
        made = ", ".join(f"{count} {what}" for what, count in self.created.items() if count)
        self.stdout.write(self.style.SUCCESS(f"Demo data: created {made}.") if made else "Demo data: already loaded.")
        for note in self.notes:
            self.stdout.write(self.style.WARNING(note))
        known = {}  # hash → whether the given password opens it (every demo user shares one hash)
        rows = []
        for user, roles in logins:
            if user.password not in known:
                known[user.password] = check_password(password, user.password)
            rows.append((user.username, password if known[user.password] else "(set earlier)", roles))
        header = ("username", "password", "roles")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
        line = "  ".join("-" * w for w in widths)
        self.stdout.write("\nDemo logins:")
        for row in [header, None, *rows]:
            cells = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) if row else line
            self.stdout.write(cells.rstrip())
