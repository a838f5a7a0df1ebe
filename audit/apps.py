from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from core import vocabulary

        from . import events

        vocabulary.describe(events.LABELS, events.GROUPS)  # what the audit log calls this app's actions
        from . import checks_deploy, receivers  # noqa: F401 - registers the deploy check and auth receivers
