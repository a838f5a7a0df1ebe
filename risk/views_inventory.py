"""The data inventory in the browser: which prompts touch which data, where they are live and who
approves them, filtered in one click (``?category=phi&environment=production``), and the same rows
as CSV or JSON."""

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.errors import ValidationFailed
from core.pages import registry_page
from core.tiers import TIERS, check_tier
from registry.models import Environment, Team

from . import inventory

PAGE_SIZE = 100  # the exports hold every row; the page shows them a hundred at a time
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def _filters(request):
    """The query's filters, each checked: an unknown category, environment or tier is a 400 naming it."""
    category = request.GET.get("category", "").strip().lower()
    if category and category not in (inventory.NONE, inventory.UNDECLARED, *settings.PROMPTLEDGER_DATA_CATEGORIES):
        raise ValidationFailed(f"no data category '{category[:40]}'", field_errors={"category": ["unknown category"]})
    environment = request.GET.get("environment", "").strip()
    if environment and not Environment.objects.filter(slug=environment).exists():
        raise ValidationFailed(f"no environment '{environment[:40]}'",
                               field_errors={"environment": ["unknown environment"]})
    tier = request.GET.get("tier", "").strip()
    if tier:
        tier = int(check_tier(int(tier) if tier.isdigit() else tier))
    return {"category": category, "environment": environment, "tier": tier, "team": request.GET.get("team", "")[:100]}


@registry_page
@require_GET
def inventory_page(request, actor):
    filters = _filters(request)
    page = Paginator(inventory.matching(actor, **filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v not in ("", None))
    context = {
        "section": "models", "items": inventory.rows_for(list(page.object_list)), "page": page,
        "filters": filters, "query": query,
        "categories": [*settings.PROMPTLEDGER_DATA_CATEGORIES, inventory.NONE, inventory.UNDECLARED],
        "environments": list(Environment.objects.order_by("position").values_list("slug", flat=True)),
        "tiers": [int(t) for t in TIERS], "teams": list(Team.objects.order_by("slug").values_list("slug", flat=True)),
    }
    return render(request, "risk/inventory.html", context)


@registry_page
@require_GET
def inventory_export(request, actor):
    kind = request.GET.get("format", "csv")
    if kind not in FORMATS:
        raise ValidationFailed(f"no export format '{kind[:20]}'", field_errors={"format": ["csv or json"]})
    filters = _filters(request)
    items = inventory.rows(actor, **filters)
    body = inventory.as_csv(items) if kind == "csv" else inventory.as_json(items, filters)
    response = HttpResponse(body, content_type=FORMATS[kind])
    response["Content-Disposition"] = f'attachment; filename="data-inventory.{kind}"'
    return response
