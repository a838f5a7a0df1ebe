from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "evals"
    verbose_name = "Evals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from core import vocabulary

        from . import events

        vocabulary.describe(events.LABELS, events.GROUPS)  # what the audit log calls this app's actions
        from registry import panels

        from . import drift, views
        from .runner import finishing

        if drift.check_drift not in finishing.scheduled_run_finished:
            finishing.scheduled_run_finished.append(drift.check_drift)

        panels.add_to_prompt_page("pass_rates", lambda actor, prompt: views.pass_rate_chart(prompt))
        panels.add_to_prompt_page("drift", views.drift_panel)
        panels.add_to_version_page(views.run_panel)
        from . import views_costs

        panels.add_to_team_page("team_budget", views_costs.team_budget_panel)

        # The registry's gate page (registry/views_setup.py) reads and sets the gate through these.
        from registry import hooks

        from . import gates, suite_fit

        hooks.provide("gate_config", gates.gate_config)
        hooks.provide("set_gate", gates.set_gate)
        hooks.provide("gate_suites", suite_fit.runnable_suites)
        hooks.provide("gate_verdict", lambda **kwargs: gates.evaluate_gate(**kwargs, record_decision=False))
