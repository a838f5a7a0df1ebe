"""Print the access table (core/access.py) as Markdown: the source of docs/access.md."""

from django.core.management.base import BaseCommand

from core.access import as_markdown


class Command(BaseCommand):
    help = "Print who may do what (every service action's scope and roles) as Markdown."

    def handle(self, *args, **options):
        self.stdout.write(as_markdown(), ending="")
