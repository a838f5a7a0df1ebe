"""``manage.py load_attack_suites``: create (or top up) the shared attack suite through the services.

Idempotent: an existing suite with all its cases is left alone; new cases in a newer release of
the suite are appended."""

from django.core.management.base import BaseCommand

from core.actors import Actor
from evals import attack_suites, services
from evals.models import Suite


class Command(BaseCommand):
    help = "Load the shared attack suite (prompt injection, system-prompt extraction, PII leakage, jailbreak)."

    def handle(self, **options):
        actor = Actor.for_system("load_attack_suites")
        spec = attack_suites.SUITE
        suite = Suite.objects.filter(slug=spec["slug"]).first()
        if suite is None:
            suite = services.create_suite(
                actor=actor, slug=spec["slug"], name=spec["name"], team=None, description=spec["description"]
            )
        have = suite.cases.count()
        missing = spec["cases"][have:]
        if missing:
            services.add_cases(actor=actor, suite=suite, cases=missing)
        self.stdout.write(f"{spec['slug']}: {have + len(missing)} cases ({len(missing)} added)")
