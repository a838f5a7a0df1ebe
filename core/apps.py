from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "People and access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import runtime_dirs

        runtime_dirs.prepare()  # before any connection opens the embedded database in VAR_DIR
        # Imported for the receivers they connect (ruff must not drop them as unused):
        from . import (
            metrics,  # noqa: F401 - the metrics directory, cleaned at start where safe; the deploy check
            private_files,  # noqa: F401 - keeps the embedded SQLite files owner-only
            session_auth,  # noqa: F401 - binds re-authentication to the browser session
        )
