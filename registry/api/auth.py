"""``Authorization: Bearer <token>``: the token's sha256 is looked up; revoked, expired and
inactive-user tokens are refused. The request's actor carries the token so services see its
scopes."""
import time

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from ..actors import Actor
from ..models import APIToken
from ..services.tokens import hash_token

_LAST_USED_EVERY = 300  # seconds between last_used_at writes per token and process
_last_written = {}


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("malformed Authorization header: use 'Bearer <token>'")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("the token is not valid") from exc
        token = (
            APIToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
        )
        now = timezone.now()
        if token is None or token.revoked_at is not None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("the token is not valid or was revoked")
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("the token has expired")
        tick = time.monotonic()
        if tick - _last_written.get(token.pk, -_LAST_USED_EVERY) >= _LAST_USED_EVERY:
            _last_written[token.pk] = tick
            APIToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="promptledger"'


def actor_from(request):
    """The Actor for a DRF or Django request (token-scoped when a token authenticated it)."""
    auth = getattr(request, "auth", None)
    meta = request.META
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    return Actor(
        user=request.user if request.user.is_authenticated else None,
        token=auth if isinstance(auth, APIToken) else None,
        request_id=meta.get("HTTP_X_REQUEST_ID", ""),
        ip=(forwarded.split(",")[0].strip() if forwarded else meta.get("REMOTE_ADDR", "")),
        user_agent=meta.get("HTTP_USER_AGENT", "")[:300],
    )


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "registry.api.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A token from `manage.py issue_token`."}
