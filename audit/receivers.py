"""Sign-ins and sign-outs come from Django's auth views, so they are recorded from Django's auth
signals; every other event is recorded explicitly by the service that makes the change."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from . import events, request_context
from .transactions import change


def _actor(request, user):
    from registry.actors import Actor

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
    known = bool(typed) and get_user_model().objects.filter(username=typed).exists()
    with change():
        events.login_failed(_actor(request, None), username=typed if known else None)
