"""The data inventory: every prompt the actor can see, with its data categories, tier, team, owner,
pinned model and provider (its newest version's), where it is live, its named approvers and its last
recorded gate result, filtered by category, environment, tier and team. The page and the CSV/JSON
exports read the same rows, in a fixed number of queries however many prompts there are."""

import csv
import io
import json
from collections import defaultdict

from django.contrib.auth import get_user_model
from django.db.models import Max

from approvals.policy import named_approvers_by_prompt
from audit.models import AuditEvent
from audit.spreadsheet import safe_cell
from registry.models import Deployment, Prompt, PromptVersion
from registry.permissions import visible_prompts

NONE = "none"  # declared: touches none of the categories (registry.services.prompts.NO_DATA)
UNDECLARED = "undeclared"  # the filter for prompts that declare nothing (Tier-0 and Tier-1 may not)
COLUMNS = ["prompt", "name", "tier", "team", "owner", "data_categories", "provider", "model", "live",
           "named_approvers", "last_gate"]


def rows(actor, *, category="", environment="", tier=None, team=""):
    """One dict per visible prompt matching the filters, ordered by tier then slug (the exports)."""
    return rows_for(list(matching(actor, category=category, environment=environment, tier=tier, team=team)))


def matching(actor, *, category="", environment="", tier=None, team=""):
    """The visible prompts matching the filters, ordered by tier then slug: the page takes one page
    of them to ``rows_for``, the exports all."""
    qs = visible_prompts(actor, Prompt.objects.select_related("team", "owner"))
    if tier not in (None, ""):
        qs = qs.filter(tier=tier)
    if team:
        qs = qs.filter(team__slug=team)
    if category == UNDECLARED:
        qs = qs.filter(data_categories=[])
    elif category:
        qs = qs.filter(data_categories__icontains=f'"{category.lower()}"')  # slugs: exact list members
    if environment:
        live = Deployment.objects.filter(environment__slug=environment, version__isnull=False)
        qs = qs.filter(pk__in=live.values("prompt_id"))
    return qs.order_by("tier", "slug")


def rows_for(prompts):
    """One dict per prompt of ``prompts`` (a list), in a fixed number of queries."""
    ids = [p.pk for p in prompts]
    newest = dict(
        PromptVersion.objects.filter(prompt_id__in=ids).values("prompt_id").annotate(n=Max("number"))
        .values_list("prompt_id", "n")
    )
    pinned = {  # the model of each prompt's newest version
        v.prompt_id: v.llm_model
        for v in PromptVersion.objects.filter(prompt_id__in=ids, number__in=set(newest.values()))
        .select_related("llm_model")
        if v.number == newest[v.prompt_id]
    }
    live = defaultdict(list)
    for prompt_id, env, number, disabled in Deployment.objects.filter(
        prompt_id__in=ids, version__isnull=False
    ).order_by("environment__position").values_list("prompt_id", "environment__slug", "version__number", "disabled"):
        live[prompt_id].append({"environment": env, "version": number, "disabled": disabled})
    approver_ids = named_approvers_by_prompt(ids)
    names = dict(get_user_model().objects.filter(
        pk__in={uid for uids in approver_ids.values() for uid in uids}
    ).values_list("pk", "username"))
    slugs = [p.slug for p in prompts]
    last = AuditEvent.objects.filter(action="gate.evaluated", prompt__in=slugs).values("prompt").annotate(
        last=Max("sequence")).values_list("last", flat=True)
    gates = {
        e.prompt: {"passed": e.data.get("passed"), "version": e.target_id.rsplit("@", 1)[-1],
                   "environment": e.data.get("environment"), "at": e.occurred_at.isoformat()}
        for e in AuditEvent.objects.filter(sequence__in=list(last))
    }
    result = []
    for prompt in prompts:
        model = pinned.get(prompt.pk)
        result.append({
            "prompt": prompt.slug, "name": prompt.name, "tier": prompt.tier, "team": prompt.team.slug,
            "owner": prompt.owner.get_username(), "data_categories": list(prompt.data_categories),
            "provider": model.provider if model else None, "model": model.model_id if model else None,
            "live": live[prompt.pk], "named_approvers": sorted(names[u] for u in approver_ids[prompt.pk] if u in names),
            "last_gate": gates.get(prompt.slug),
        })
    return result


def as_json(items, filters):
    return json.dumps({"filters": filters, "count": len(items), "prompts": items}, indent=2, default=str)


def as_csv(items):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for item in items:
        gate = item["last_gate"]
        writer.writerow([safe_cell(v) for v in (
            item["prompt"], item["name"], item["tier"], item["team"], item["owner"],
            " ".join(item["data_categories"]) or UNDECLARED, item["provider"] or "", item["model"] or "",
            " ".join(f"{x['environment']}:v{x['version']}{'(off)' if x['disabled'] else ''}" for x in item["live"]),
            " ".join(item["named_approvers"]),
            "" if gate is None else f"{'passed' if gate['passed'] else 'failed'} v{gate['version']} "
                                    f"{gate['environment']} {gate['at']}",
        )])
    return out.getvalue()
