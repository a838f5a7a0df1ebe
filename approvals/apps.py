from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Approvals"

    def ready(self):
        from registry import panels

        from . import views

        panels.add_to_prompt_page("approvals", views.prompt_panel)
