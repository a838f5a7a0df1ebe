"""``manage.py run_embedded``: the one-command demo. Migrates, loads the demo data, starts a
Celery worker on the embedded broker beside the web server, and prints the URL and logins."""

import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate, load demo data, and run web + worker on the embedded defaults."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--no-worker", action="store_true")

    def handle(self, host, port, no_worker, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("bootstrap_demo")
        call_command("load_attack_suites")
        call_command("audit_checkpoint")  # sign the head now; beat keeps the heartbeat going
        worker = None
        if not no_worker:
            # The worker also runs beat (-B), which writes the audit heartbeat checkpoints.
            argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "--beat", "--loglevel", "WARNING"]
            argv += ["--pool", "threads", "--concurrency", "4", "--schedule", str(settings.VAR_DIR / "celerybeat")]
            worker = subprocess.Popen(argv)  # noqa: S603 - fixed argv, our own interpreter
        self.stdout.write(self.style.SUCCESS(f"\nPromptledger is at http://{host}:{port}/  (API docs: /api/docs/)"))
        self.stdout.write(f"Database: {settings.DATABASES['default']['NAME']}\n")
        # SIGTERM (as from a process manager) unwinds like Ctrl-C, so the worker is stopped too.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        try:
            call_command("runserver", f"{host}:{port}", use_reloader=False)
        finally:
            if worker is not None:
                worker.terminate()
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()
