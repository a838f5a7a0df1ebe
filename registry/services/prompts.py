"""Prompts and their immutable versions.

``create_version`` guarantees gap-free numbers under concurrent pushes (the prompt row is locked
while the next number is taken) and returns the existing version, not a new one, when the
content is identical.
"""


from django.conf import settings
from django.db import IntegrityError

from audit import events
from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.errors import Conflict, DomainError, PermissionDenied, ValidationFailed
from core.tiers import check_tier
from promptledger import prompt_files

from .. import hooks, rendering
from ..models import LLMModel, Membership, Prompt, PromptVersion, Team
from .validation import check_labels, check_slug, check_storable, check_text, get_active_user

MODEL_KEYS = {"provider", "name", "params", "response_schema"}


def content_hash(*, messages, variables, model):
    """sha256 of the canonical JSON of messages + variables + model (DESIGN.md). The rule is the
    client package's, so ``promptledger push`` computes exactly what the server stores."""
    return prompt_files.content_hash({"messages": messages, "variables": variables, "model": model})


def _check_owner(username, team):
    owner = get_active_user(username, "owner")
    if not Membership.objects.filter(team=team, user=owner, user__is_active=True).exists():
        raise ValidationFailed(
            f"'{username}' is not a member of team '{team.slug}'",
            code="owner_not_member",
            field_errors={"owner": [f"the owner must be a member of team '{team.slug}'"]},
        )
    return owner


NO_DATA = "none"  # declared: the prompt touches none of the data categories
DECLARING_TIERS = (0, 1)  # tiers whose prompts must declare their data categories ("none" counts)


def data_category_values():
    """What ``data_categories`` may hold: the configured categories, and ``none`` on its own."""
    return [*settings.PROMPTLEDGER_DATA_CATEGORIES, NO_DATA]


def check_data_categories(values):
    clean = check_labels(values, "data_categories", allowed=data_category_values())
    if NO_DATA in clean and len(clean) > 1:
        raise ValidationFailed(
            "'none' cannot be combined with a data category",
            field_errors={"data_categories": ["'none' stands alone: it declares that the prompt touches none of them"]},
        )
    return clean


def require_declared_data(tier, categories):
    """Tier-0 and Tier-1 prompts say which data they touch: at least one category, or ``none``."""
    if int(tier) in DECLARING_TIERS and not categories:
        raise ValidationFailed(
            f"a Tier-{int(tier)} prompt must declare the data it touches",
            code="data_categories_required",
            field_errors={"data_categories": [
                "required for tiers 0 and 1: choose the categories it touches, or 'none' when it touches none"
            ]},
        )


@retry_transient
def create_prompt(*, actor, slug, name, team, tier, owner, tags=None, data_categories=None, description=""):
    """Create a prompt in a team; authors and above of that team."""
    if not isinstance(team, Team):
        raise ValidationFailed("team is required", field_errors={"team": ["an existing team's slug"]})
    access.require(actor, "prompt.create", team=team)
    check_slug(slug)
    name = check_text(name, "name")
    tier = check_tier(tier)
    fields = {
        "slug": slug,
        "name": name,
        "team": team,
        "tier": tier,
        "owner": _check_owner(owner, team),
        "tags": check_labels(tags, "tags"),
        "data_categories": check_data_categories(data_categories),
        "description": check_text(description, "description", required=False, max_length=5000),
    }
    require_declared_data(tier, fields["data_categories"])
    try:
        with change():
            prompt = Prompt.objects.create(**fields)
            events.prompt_created(actor, prompt)
            return prompt
    except IntegrityError as exc:
        raise Conflict(
            f"prompt '{slug}' already exists", code="slug_taken", field_errors={"slug": ["already taken"]}
        ) from exc


@retry_transient
def update_prompt(*, actor, prompt, **changes):
    """Change a prompt's details. Authors edit name, description and tags; owners (the team role)
    also change owner, data categories, named approvers and raise the tier. Lowering the tier is
    refused here: it is a tier-change request needing the approvals of the current tier."""
    allowed = {"name", "description", "tags", "data_categories", "owner", "tier", "approvers", "approver_groups"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(
            "these fields cannot be changed", field_errors={k: ["read-only or unknown"] for k in sorted(unknown)}
        )
    sensitive = {"owner", "data_categories", "tier", "approvers", "approver_groups"} & set(changes)
    access.require(actor, "prompt.govern" if sensitive else "prompt.edit", team=prompt.team)
    with change():
        row = lock_rows(Prompt.objects).get(pk=prompt.pk)
        before = events.prompt_state(row)
        if "name" in changes:
            row.name = check_text(changes["name"], "name")
        if "description" in changes:
            row.description = check_text(changes["description"], "description", required=False, max_length=5000)
        if "tags" in changes:
            row.tags = check_labels(changes["tags"], "tags")
        if "data_categories" in changes:
            row.data_categories = check_data_categories(changes["data_categories"])
        if "owner" in changes:
            row.owner = _check_owner(changes["owner"], row.team)
        if "tier" in changes:
            tier = check_tier(changes["tier"])
            if tier > row.tier:  # a larger number is a less critical tier
                raise PermissionDenied(
                    f"lowering tier {row.tier} to {tier} needs the approvals of tier {row.tier}: open a tier-change "
                    f"request (POST /api/v1/deploy-requests/ with kind 'tier_change')",
                    code="tier_lowering_needs_approval",
                )
            row.tier = tier
        if "tier" in changes or "data_categories" in changes:  # a prompt declared before the rule can still be renamed
            require_declared_data(row.tier, row.data_categories)
        row.save()
        if events.prompt_state(row) != before:
            events.prompt_updated(actor, row, before=before)
        if "approvers" in changes or "approver_groups" in changes:
            set_named_approvers = hooks.provided("set_named_approvers")
            if set_named_approvers is None:  # no app that keeps approvers is installed
                raise ValidationFailed("named approvers are not kept here", field_errors={"approvers": ["unknown"]})
            set_named_approvers(
                actor=actor, prompt=row, approvers=changes.get("approvers"),
                approver_groups=changes.get("approver_groups"),
            )
    return row


def normalize_model_config(model):
    """The shape of ``model`` (what the content hash covers), without consulting the register."""
    if not isinstance(model, dict):
        raise ValidationFailed(
            "model is required", field_errors={"model": ['expected {"provider": ..., "name": ..., "params": {...}}']}
        )
    unknown = set(model) - MODEL_KEYS
    if unknown:
        raise ValidationFailed(
            "unknown model keys",
            field_errors={"model": [f"unknown keys {sorted(unknown)}; allowed: {sorted(MODEL_KEYS)}"]},
        )
    provider, name = model.get("provider"), model.get("name")
    params = model.get("params") or {}
    schema = model.get("response_schema")
    errors = {}
    if not isinstance(params, dict):
        errors["model.params"] = ['params is an object, e.g. {"temperature": 0}']
    if schema is not None and not isinstance(schema, dict):
        errors["model.response_schema"] = ["a JSON schema object, or null"]
    if errors:
        raise ValidationFailed("the model config is invalid", field_errors=errors)
    return {"provider": provider, "name": name, "params": params, "response_schema": schema}


def registered_model(model):
    """The register entry a new version's model must be: registered and not retired."""
    provider, name = model["provider"], model["name"]
    entry = LLMModel.objects.filter(provider=provider, model_id=name).first()
    if entry is None:
        known = list(LLMModel.objects.filter(provider=provider).values_list("model_id", flat=True)[:20])
        raise ValidationFailed(
            f"'{name}' is not a registered {provider} model",
            code="unregistered_model",
            field_errors={
                "model.name": [
                    f"not in the model register for provider '{provider}'; registered: {', '.join(known) or 'none'}"
                ]
            },
        )
    if entry.status == LLMModel.RETIRED:
        raise ValidationFailed(
            f"{provider}:{name} is retired",
            code="model_retired",
            field_errors={"model.name": ["this model is retired in the register; pick an approved one"]},
        )
    return entry


@retry_transient
def create_version(*, actor, prompt, messages, variables, model, message=""):
    """Write a new immutable version, or return the identical existing one.

    Identical content returns the existing version even if its model has since been retired, so
    pushing a repository again is always a no-op. Returns ``(version, created)``.
    """
    access.require(actor, "version.create", team=prompt.team)
    for field, value in (("messages", messages), ("variables", variables), ("model", model)):
        check_storable(value, field)
    declared = rendering.normalize_variables(variables)
    rendering.check_messages(messages, declared)
    messages = [{"role": m["role"], "content": m["content"]} for m in messages]
    model = normalize_model_config(model)
    note = check_text(message, "message", required=False, max_length=5000)
    digest = content_hash(messages=messages, variables=declared, model=model)
    existing = PromptVersion.objects.filter(prompt=prompt, content_hash=digest).first()
    if existing is not None:
        return existing, False
    llm_model = registered_model(model)
    with change():
        # The lock on the prompt row serializes pushes to one prompt: numbers stay gap-free.
        lock_rows(Prompt.objects).filter(pk=prompt.pk).first()
        existing = PromptVersion.objects.filter(prompt=prompt, content_hash=digest).first()
        if existing is not None:
            return existing, False
        parent = PromptVersion.objects.filter(prompt=prompt).order_by("-number").first()
        version = PromptVersion.objects.create(
            prompt=prompt,
            number=(parent.number + 1) if parent else 1,
            messages=messages,
            variables=declared,
            model_config=model,
            llm_model=llm_model,
            change_note=note,
            author=actor.user,
            parent=parent,
            content_hash=digest,
        )
        events.version_created(actor, version)
        hooks.announce("version_created", actor=actor, version=version)
    return version, True


class FirstVersionRefused(Exception):
    """``create_prompt_with_first_version`` refused the version (its own fields at fault, not the
    prompt's); ``error`` is the service's domain error. Nothing was written."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


@retry_transient
def create_prompt_with_first_version(*, actor, version, **prompt_fields):
    """A prompt and its version 1 in one audited change: both are written, with their audit
    events, or neither. ``create_prompt`` and ``create_version`` each check their own permission;
    ``version`` holds ``create_version``'s fields. Returns ``(prompt, version)``."""
    with change():
        prompt = create_prompt(actor=actor, **prompt_fields)
        try:
            first, _ = create_version(actor=actor, prompt=prompt, **version)
        except DomainError as exc:
            raise FirstVersionRefused(exc) from exc
    return prompt, first
