"""``Authorization: Bearer <token>``: the token's sha256 is looked up; revoked, expired and
inactive-user tokens are refused. The request's actor carries the token so services see its
scopes. ``bearer_secret``, ``refuse_token`` and ``note_token_used`` are the rules themselves, shared
with resolve, which looks its token up in the same query as the pointer."""
import hashlib
import time

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from . import request_context, session_auth, throttling
from .actors import Actor
from .models import APIToken

_LAST_USED_EVERY = 300  # seconds between last_used_at writes per token and process
_last_written = {}
BEARER_CHALLENGE = 'Bearer realm="promptledger"'


def hash_token(raw):
    """What is stored of a token: its sha256, never the secret."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def bearer_secret(meta):
    """The secret of an ``Authorization: Bearer <token>`` header, or ``None`` when the request
    carries other credentials or none (so session authentication may apply)."""
    header = meta.get("HTTP_AUTHORIZATION", "")
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    parts = header.split()
    if not parts or parts[0].lower() != "bearer":
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed("malformed Authorization header: use 'Bearer <token>'")
    if not parts[1].isascii():
        raise exceptions.AuthenticationFailed("the token is not valid")
    return parts[1]


def token_refusal(*, found, revoked, user_active, expired):
    """Why a token is refused (the 401's detail), or ``None`` when it may be used: it exists, is
    live and belongs to an active user."""
    if not found or revoked or not user_active:
        return "the token is not valid or was revoked"
    if expired:
        return "the token has expired"
    return None


def refuse_token(*, found, revoked, user_active, expired, meta):
    """Raise ``AuthenticationFailed`` when ``token_refusal`` says so; a refusal counts against the
    caller's address (``throttling.note_bad_token``)."""
    reason = token_refusal(found=found, revoked=revoked, user_active=user_active, expired=expired)
    if reason is not None:
        throttling.note_bad_token(meta)
        raise exceptions.AuthenticationFailed(reason)


def token_use_due(key_hash):
    """Whether ``note_token_used`` would write now (a resolve answered from memory leaves that
    write to the usual path, which does it with Django's connection handling)."""
    return time.monotonic() - _last_written.get(key_hash, -_LAST_USED_EVERY) >= _LAST_USED_EVERY


def note_token_used(token_id, key_hash):
    """Record ``last_used_at``, at most once per ``_LAST_USED_EVERY`` per token and process: a write
    on every request would cost more than the request itself. Keyed by the hash, which is never
    reused, where a row id can be (SQLite reuses the highest one after a delete)."""
    if token_use_due(key_hash):
        _last_written[key_hash] = time.monotonic()
        APIToken.objects.filter(pk=token_id).update(last_used_at=timezone.now())


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        raw = bearer_secret(request.META)
        if raw is None:
            return None
        throttling.refuse_while_guessing(request.META)
        token = APIToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
        refuse_token(
            found=token is not None,
            revoked=token is not None and token.revoked_at is not None,
            user_active=token is not None and token.user.is_active,
            expired=token is not None and token.expires_at is not None and token.expires_at <= timezone.now(),
            meta=request.META,
        )
        note_token_used(token.pk, token.key_hash)
        return token.user, token

    def authenticate_header(self, request):
        return BEARER_CHALLENGE


def actor_from(request):
    """The Actor for a DRF or Django request (token-scoped when a token authenticated it)."""
    auth = getattr(request, "auth", None)
    token = auth if isinstance(auth, APIToken) else None
    session = getattr(request, "session", None) if token is None else None
    return Actor(
        user=request.user if request.user.is_authenticated else None,
        token=token,
        authenticated_at=session_auth.authenticated_at(session),
        **request_context.context(request.META),
    )


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A token from Settings → API tokens, "
                "`POST /api/v1/tokens/` or `manage.py issue_token`."}
