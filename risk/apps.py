"""The risk and compliance workspace: the model register's pages, its quarterly reviews, the
per-tier rule on deploying over an overdue review, and the quarterly access review. It sits above
approvals and reaches into the deploy check only through ``registry.hooks``
(``deploy_requirements``), so approvals never imports it."""

from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "risk"
    verbose_name = "Model risk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from core import vocabulary

        from . import events

        vocabulary.describe(events.LABELS, events.GROUPS)  # what the audit log calls this app's actions
        from registry import hooks

        from . import deploy_checks

        # approvals.requirements.checklist asks for these with every deploy and every request page.
        hooks.provide("deploy_requirements", deploy_checks.requirements)
