"""Configuration checks (``manage.py check``): a group map that does not parse, or SSO-only mode
with no issuer, is an error before any sign-in meets it."""

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from . import provider
from .roles import group_map


@register()
def sso_configuration(app_configs, **kwargs):
    problems = []
    try:
        group_map()
    except ImproperlyConfigured as exc:
        problems.append(Error(str(exc), id="sso.E001"))
    if settings.PROMPTLEDGER_SSO_ONLY and not provider.enabled():
        problems.append(Error(
            "PROMPTLEDGER_SSO_ONLY is on but PROMPTLEDGER_OIDC_ISSUER or PROMPTLEDGER_OIDC_CLIENT_ID is not set",
            id="sso.E002",
        ))
    if provider.enabled() and not settings.OIDC_RP_CLIENT_SECRET:
        problems.append(Error("PROMPTLEDGER_OIDC_CLIENT_SECRET is not set", id="sso.E003"))
    return problems
