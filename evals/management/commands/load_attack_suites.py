"""``manage.py load_attack_suites``: create (or top up) the shared attack suite through the services.

Idempotent: an existing suite with all its cases is left alone; new cases in a newer release of
the suite are appended."""

from django.core.management.base import BaseCommand

from core.actors import Actor
from evals import attack_suites, services


class Command(BaseCommand):
    help = "Load the shared attack suite (prompt injection, system-prompt extraction, PII leakage, jailbreak)."

    def handle(self, **options):
        actor = Actor.for_system("load_attack_suites")
        suite, added = services.load_shared_suite(actor=actor, spec=attack_suites.SUITE)
        self.stdout.write(f"{suite.slug}: {suite.cases.count()} cases ({added} added)")
