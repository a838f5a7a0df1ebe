"""Presentation of run comparisons: signed deltas of cost, latency and tokens, and the request
page's gate comparisons (``evals/_gate_comparisons.html``, which loads them itself so the page that
includes it passes nothing)."""

from django import template
from django.utils.html import format_html

from core.auth import actor_from

from .. import gate_comparisons as comparisons

register = template.Library()

UNITS = {
    "cost_usd": ("$", "", 4),
    "latency_ms": ("", " ms", 0),
    "input_tokens": ("", "", 0),
    "output_tokens": ("", "", 0),
}
COSTLY = ("cost_usd", "latency_ms")  # more of these is worse


@register.simple_tag
def signed(value, measure, plain=False):
    """``+$0.0012``, ``−35 ms``, ``+12``; ``—`` when unknown. With ``plain`` no sign (a total)."""
    if value is None:
        return "—"
    prefix, suffix, places = UNITS[measure]
    number = f"{abs(value):,.{places}f}"
    if plain:
        return f"{prefix}{number}{suffix}"
    if round(value, places) == 0:
        return format_html('<span class="delta-none">±{}0{}</span>', prefix, suffix)
    sign = "+" if value > 0 else "−"
    tone = ("delta-down" if value > 0 else "delta-up") if measure in COSTLY else "delta-neutral"
    return format_html('<span class="{}">{}{}{}{}</span>', tone, sign, prefix, number, suffix)


@register.simple_tag
def money(value):
    return "—" if value is None else f"${value:,.4f}"


@register.simple_tag(takes_context=True)
def gate_comparisons(context, prompt, version, environment, baseline=None):
    """The candidate's run against the live version's run for each of the prompt's gate suites
    (``evals.gate_comparisons.for_version``), for the viewer of the page."""
    request = context.get("request")
    if request is None or version is None or environment is None:
        return []
    return comparisons.for_version(
        actor_from(request), prompt=prompt, version=version, environment=environment, baseline=baseline
    )
