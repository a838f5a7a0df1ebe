"""The kill switch in the browser: per environment, from the prompt page, to a confirmation that names
what stops (the prompt, the environment, the version no longer served, and what clients get: 423
``prompt_disabled``, DESIGN.md) and asks why; then ``services.set_kill_switch``, the service the API's
``POST /prompts/{slug}/kill-switch`` calls, which records the audit event and the webhook in its
transaction. Turning it off again is the same page the other way round."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from core import access
from core.errors import DomainError
from core.pages import registry_page

from . import selectors, services
from .forms_setup import KillSwitchForm
from .models import Deployment
from .services.deployments import get_environment


def _consequences(prompt, environment, pointer, disabled):
    """What the switch changes, in words the confirmation shows."""
    served = []
    if pointer is not None and pointer.version_id:
        served.append(f"v{pointer.version.number}")
        if pointer.canary_version_id:
            served.append(f"its canary v{pointer.canary_version.number} ({pointer.canary_percent}%)")
    return {
        "served": served,
        "already": pointer is not None and pointer.disabled == disabled,
        "disabled_reason": pointer.disabled_reason if pointer is not None else "",
    }


@registry_page
@require_http_methods(["GET", "POST"])
def kill_switch(request, actor, slug):
    prompt = selectors.get_visible_prompt(actor=actor, slug=slug)
    access.require(actor, "kill_switch.set", team=prompt.team)  # nobody reads a confirmation they cannot give
    data = request.POST if request.method == "POST" else request.GET
    environment = get_environment(data.get("environment", ""))
    pointer = (
        Deployment.objects.filter(prompt=prompt, environment=environment)
        .select_related("version", "canary_version")
        .first()
    )
    wanted = data.get("disabled", "true" if pointer is None or not pointer.disabled else "false")
    initial = {"environment": environment.slug, "disabled": wanted}
    form = KillSwitchForm(data if request.method == "POST" else None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            disabled = form.cleaned_data["disabled"]
            try:
                pointer = services.set_kill_switch(
                    actor=actor, prompt=prompt, environment=environment, disabled=disabled,
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as exc:
                form.add_domain_errors(exc)
                status = exc.status
            else:
                if disabled:
                    messages.warning(
                        request, f"Kill switch on: {prompt.slug} is no longer served in {environment.name}; "
                        "clients get 423 prompt_disabled.",
                    )
                else:
                    messages.success(request, f"Kill switch off: {prompt.slug} is served in {environment.name} again.")
                return redirect("registry:prompt-detail", slug=prompt.slug)
    disabled = wanted != "false"
    context = {
        "section": "prompts", "prompt": prompt, "environment": environment, "pointer": pointer, "form": form,
        "stopping": disabled, **_consequences(prompt, environment, pointer, disabled),
    }
    return render(request, "registry/kill_switch.html", context, status=status)
