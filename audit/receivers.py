"""Sign-ins and sign-outs come from Django's auth views, so they are recorded from Django's auth
signals; every other event is recorded explicitly by the service that makes the change."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from core import request_context

from . import events
from .transactions import change


def _actor(request, user):
    from core.actors import Actor

    return Actor(user=user, **request_context.context(request.META if request is not None else {}))


@receiver(user_logged_in, dispatch_uid="audit-login")
def _logged_in(sender, request, user, **kwargs):
    with change():
        events.login(_actor(request, user))


@receiver(user_logged_out, dispatch_uid="audit-logout")
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        with change():
            events.logout(_actor(request, user))


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    # Django passes credentials with the password already masked. The typed username is kept only
    # when it names an account: anything else may be a password typed in the wrong field.
    from django.contrib.auth import get_user_model

    typed = str(credentials.get("username", ""))[:150]
    if request is not None and _past_the_limit(typed, request_context.client_ip(request.META)):
        return  # locked out: the lockout was recorded once; each attempt meanwhile is not
    known = bool(typed) and get_user_model().objects.filter(username=typed).exists()
    with change():
        events.login_failed(_actor(request, None), username=typed if known else None)


def _past_the_limit(username, ip_address):
    """Whether this username and address have failed more often than the sign-in limit (so the
    attempt was refused unchecked, and the trail already holds the lockout)."""
    from axes.models import AccessAttempt
    from django.conf import settings

    failures = AccessAttempt.objects.filter(username=username, ip_address=ip_address).values_list(
        "failures_since_start", flat=True
    ).first()
    return failures is not None and failures > settings.AXES_FAILURE_LIMIT


@receiver(user_locked_out, dispatch_uid="audit-locked-out")
def _locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    from django.conf import settings
    from django.contrib.auth import get_user_model

    if _past_the_limit(username, ip_address):
        return  # django-axes says "locked out" at every attempt past the limit; the trail, once
    known = bool(username) and get_user_model().objects.filter(username=username).exists()
    with change():
        events.login_locked_out(_actor(request, None), username=username if known else None,
                                minutes=int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
