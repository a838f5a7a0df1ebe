"""Browser pages of audit streams to a SIEM (/settings/webhooks/streams/): admins create, change,
pause and resume them; admins and compliance see each one's cursor, lag, last success and last
error. As thin as the webhook pages: every rule is ``webhooks.stream_services``'."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import Conflict, ValidationFailed
from core.pages import registry_page

from . import stream_services
from .stream_forms import StreamEditForm, StreamForm


@registry_page
def stream_list(request, actor):
    context = {
        "section": "webhooks",
        "streams": stream_services.streams(actor),
        "may_manage": stream_services.may_manage(actor),
    }
    return render(request, "webhooks/stream_list.html", context)


@registry_page
@require_http_methods(["GET", "POST"])
def stream_new(request, actor):
    stream_services.require_may_manage(actor)
    form = StreamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            stream = stream_services.create_stream(actor=actor, **form.changes())
        except ValidationFailed as exc:
            form.add_domain_errors(exc)
        else:
            messages.success(request, f"Audit stream {stream.name} created: it starts sending within seconds.")
            return redirect("webhooks:stream", stream_id=stream.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "webhooks/stream_new.html", {"section": "webhooks", "form": form}, status=status)


def _detail(request, actor, stream, form=None, status=200):
    may_manage = stream_services.may_manage(actor)
    context = {
        "section": "webhooks",
        "stream": stream,
        "may_manage": may_manage,
        "form": form or (StreamEditForm.for_stream(stream) if may_manage else None),
    }
    return render(request, "webhooks/stream_detail.html", context, status=status)


@registry_page
def stream_detail(request, actor, stream_id):
    stream = stream_services.get_stream(actor=actor, stream_id=stream_id)
    return _detail(request, actor, stream)


@registry_page
def stream_status(request, actor, stream_id):
    """The status block alone (cursor, lag, last success and error): htmx refreshes it every 5 s."""
    stream = stream_services.get_stream(actor=actor, stream_id=stream_id)
    if not request.headers.get("HX-Request"):
        return redirect("webhooks:stream", stream_id=stream.pk)
    response = render(request, "webhooks/_stream_status.html", {"stream": stream})
    patch_vary_headers(response, ["HX-Request"])
    return response


@registry_page
@require_POST
def stream_edit(request, actor, stream_id):
    stream = stream_services.get_stream(actor=actor, stream_id=stream_id)
    stream_services.require_may_manage(actor)
    form = StreamEditForm.for_stream(stream, data=request.POST)
    if form.is_valid():
        try:
            stream_services.update_stream(actor=actor, stream=stream, **form.changes())
        except ValidationFailed as exc:
            form.add_domain_errors(exc)
        else:
            messages.success(request, "Audit stream saved.")
            return redirect("webhooks:stream", stream_id=stream.pk)
    return _detail(request, actor, stream, form=form, status=400)


@registry_page
@require_POST
def stream_pause(request, actor, stream_id):
    """Pause an active stream, or resume a paused one (the form says which)."""
    stream = stream_services.get_stream(actor=actor, stream_id=stream_id)
    active = request.POST.get("active") == "true"
    try:
        stream_services.set_active(actor=actor, stream=stream, active=active)
    except Conflict as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, "Stream resumed: it catches up from its cursor." if active
                         else "Stream paused: nothing is sent until it is resumed; its cursor waits.")
    return redirect("webhooks:stream", stream_id=stream.pk)
