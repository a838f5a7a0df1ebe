"""``{% sso_sign_in as sso %}``: what the login page offers (an IdP button, the password form)."""

from django import template
from django.conf import settings
from django.urls import reverse

from .. import provider

register = template.Library()


@register.simple_tag(takes_context=True)
def sso_sign_in(context):
    request = context.get("request")
    enabled = provider.enabled()
    sso_only = enabled and settings.PROMPTLEDGER_SSO_ONLY
    url = ""
    if enabled:
        url = reverse("oidc_authentication_init")
        next_url = context.get("next") or ""
        if next_url:
            from django.utils.http import urlencode

            url += "?" + urlencode({"next": next_url})
    return {
        "enabled": enabled,
        "url": url,
        "name": settings.PROMPTLEDGER_OIDC_DISPLAY_NAME,
        # In SSO-only mode the password form is for the break-glass accounts, behind a link.
        "show_password_form": not sso_only or (request is not None and request.GET.get("local") == "1"),
        "sso_only": sso_only,
    }
