"""When a browser session last proved who its person is: at sign-in, and again each time the
password is typed for an electronic signature. Kept in the session itself, so it belongs to this
browser and no other: an old session does not become fresh because its person signed in elsewhere
(``user.last_login`` would say so). The approval service reads it through the actor."""

from datetime import datetime

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

SESSION_KEY = "promptledger.authenticated_at"


def stamp(session, when=None):
    session[SESSION_KEY] = (when or timezone.now()).isoformat()


def authenticated_at(session):
    """The session's last authentication, or None when it has none (ask for the password)."""
    value = session.get(SESSION_KEY) if session is not None else None
    try:
        return datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


@receiver(user_logged_in, dispatch_uid="session-authenticated-at")
def _signed_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        stamp(request.session)
