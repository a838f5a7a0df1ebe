"""The page frame every app's browser views share: sign-in required, the actor resolved once, and
every ``DomainError`` turned into one error page that says what happened and what to do next."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from . import request_context
from .auth import actor_from
from .errors import DomainError, NotFound, PermissionDenied

_ERROR_PAGES = {
    NotFound: ("Not found", "The address may be mistyped, or the prompt belongs to a team you are not a member of."),
    PermissionDenied: ("You do not have access to this", "Ask an owner of the team for the role you need."),
}


def error_page(request, exc):
    """The page for a ``DomainError``: its status, what happened and what to do next."""
    title, advice = next(
        (page for kind, page in _ERROR_PAGES.items() if isinstance(exc, kind)),
        ("That did not work", "Go back, check what you entered and try again."),
    )
    context = {"status": exc.status, "title": title, "detail": exc.detail, "advice": advice,
               "request_id": request_context.request_id(request.META)}
    return render(request, "error.html", context, status=exc.status)


def registry_page(view):
    """Sign-in required; a ``DomainError`` raised anywhere in the view becomes its error page."""

    @login_required
    @wraps(view)
    def page(request, *args, **kwargs):
        try:
            return view(request, actor_from(request), *args, **kwargs)
        except DomainError as exc:
            return error_page(request, exc)

    return page
