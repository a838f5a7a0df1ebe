from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "sso"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Single sign-on"

    def ready(self):
        from core import vocabulary

        from . import events

        vocabulary.describe(events.LABELS, events.GROUPS)  # what the audit log calls this app's actions
        from registry import hooks

        from . import checks  # noqa: F401 - registers the configuration checks
        from .identities import is_idp_account, reauth_url

        # Approvals asks these without importing sso: whether a person signs in at the IdP (their
        # signature must then come from it), and where to send them to sign in again.
        hooks.provide("idp_account", is_idp_account)
        hooks.provide("idp_reauth_url", reauth_url)
