from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Approvals"

    def ready(self):
        from core import vocabulary

        from . import events

        vocabulary.describe(events.LABELS, events.GROUPS)  # what the audit log calls this app's actions
        from registry import panels

        from . import views

        panels.add_to_prompt_page("approvals", views.prompt_panel)

        from registry import hooks

        from . import administration
        from .policy import policy_for

        hooks.provide("named_approvers", administration.approvers_of)
        hooks.provide("set_named_approvers", administration.set_named_approvers)
        hooks.provide("gate_required", lambda prompt: policy_for(prompt.tier).requires_gate)
