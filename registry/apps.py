from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Prompt registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import (
            private_files,  # noqa: F401 - keeps the embedded SQLite files owner-only
            session_auth,  # noqa: F401 - connects the sign-in receiver
        )
