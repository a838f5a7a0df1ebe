"""People's accounts: creation, activation, the staff and superuser flags, and passwords.

Only here, audited, and admins only (an operator's ``manage.py user`` acts as the system). Django's
own User and Group admin is not registered: a superuser ticking ``is_superuser`` on someone, or
resetting a named approver's password, would otherwise leave no trace, and one person could then
satisfy a rule that asks for two. Events never carry a password or its hash.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from audit import events
from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.errors import Conflict, NotFound, ValidationFailed

from .validation import check_text

FLAGS = ("is_active", "is_staff", "is_superuser")


def _user(username, *, lock=False):
    queryset = get_user_model().objects
    user = (lock_rows(queryset) if lock else queryset).filter(username=username).first()
    if user is None:
        raise NotFound(f"no user '{username}'", code="unknown_user")
    return user


def _check_password(password, user):
    if not isinstance(password, str) or not password:
        raise ValidationFailed("a password is required", field_errors={"password": ["this field is required"]})
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationFailed("the password is too weak", code="weak_password",
                               field_errors={"password": list(exc.messages)}) from exc


@retry_transient
def create_user(*, actor, username, email="", password=None):
    """A new, active account without any flag; with no password it can sign in only once one is set."""
    access.require(actor, "user.create")
    username = check_text(username, "username", max_length=150)
    email = check_text(email, "email", required=False, max_length=254)
    model = get_user_model()
    candidate = model(username=username, email=email)
    if password is not None:
        _check_password(password, candidate)
    try:
        with change():
            user = model.objects.create_user(username=username, email=email, password=password)
            events.user_created(actor, user)
    except IntegrityError as exc:
        raise Conflict(f"user '{username}' already exists", code="username_taken",
                       field_errors={"username": ["already taken"]}) from exc
    return user


@retry_transient
def set_user_flags(*, actor, username, **flags):
    """Set ``is_active``, ``is_staff`` and ``is_superuser`` (each True, False or left out). A
    deactivated person's tokens and sessions stop working at once (both check ``is_active``)."""
    access.require(actor, "user.flags")
    unknown = set(flags) - set(FLAGS)
    if unknown:
        raise ValidationFailed("unknown flags", field_errors={k: [f"one of {', '.join(FLAGS)}"] for k in unknown})
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ValidationFailed(f"{name} is true or false", field_errors={name: ["expected a boolean"]})
    with change():
        user = _user(username, lock=True)
        before = {name: getattr(user, name) for name in FLAGS}
        for name, value in flags.items():
            setattr(user, name, value)
        after = {name: getattr(user, name) for name in FLAGS}
        if after != before:
            user.save(update_fields=[name for name in FLAGS if before[name] != after[name]])
            events.user_flags_changed(actor, user, before=before, after=after)
    return user


@retry_transient
def set_password(*, actor, username, password):
    """Set someone's password (checked against the site's password validators)."""
    access.require(actor, "user.password")
    with change():
        user = _user(username, lock=True)
        _check_password(password, user)
        user.set_password(password)
        user.save(update_fields=["password"])
        events.user_password_set(actor, user)
    return user
