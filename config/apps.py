"""The project package as an app, for what belongs to the whole deployment rather than one app:
its checks (``config.checks``: the production essentials). It sits above every app, so it may import
them all (.importlinter's layers); nothing imports it."""

from django.apps import AppConfig


class ProjectConfig(AppConfig):
    name = "config"
    verbose_name = "Promptledger deployment"

    def ready(self):
        from . import checks  # noqa: F401 - registers the production essentials with `manage.py check`
