"""Error pages: JSON for /api/ paths, a page that says what to do next everywhere else. Both give
the request's id (``request_id`` in the JSON, "Reference" on the page) for the user to quote to an
administrator, who finds the request's log lines and audit events by it."""

from django.shortcuts import render

from core import request_context
from registry.api.errors import json_error


def answer(request, status, code, title, advice, *, detail=None, field_errors=None):
    """The error in the caller's language: JSON (``detail`` or the title) under /api/, else the page."""
    if request.path.startswith("/api/"):
        return json_error(code, detail or title, status, field_errors)
    request_id = request_context.request_id(request.META)
    context = {"status": status, "title": title, "advice": advice, "request_id": request_id}
    return render(request, "error.html", context, status=status)


def bad_request(request, exception=None):
    return answer(request, 400, "bad_request", "Bad request", "Check the address and the form, then try again.")


def permission_denied(request, exception=None):
    return answer(
        request,
        403,
        "forbidden",
        "You do not have access to this",
        "Ask an owner of the team to add you with the role you need.",
    )


def page_not_found(request, exception=None):
    return answer(
        request,
        404,
        "not_found",
        "Not found",
        "The address may be mistyped, or the item is in a team you are not a member of.",
    )


def server_error(request):
    return answer(
        request,
        500,
        "server_error",
        "Something went wrong on our side",
        "Nothing you submitted was half-saved. Try again; if it keeps happening, tell your administrator.",
    )
