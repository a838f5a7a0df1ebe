"""The access table is the one home of who may do what: every service that opens an audited
change asks it for a named action, every entry is used, an unknown action cannot run, and the
published table (docs/access.md) is the table itself."""

import ast
import importlib
from pathlib import Path

import pytest

from core import access
from core.actors import Actor
from core.errors import PermissionDenied

ROOT = Path(__file__).resolve().parent.parent
APPS = ("registry", "approvals", "evals", "webhooks", "audit", "risk", "sso")


def _modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            yield path, ast.parse(path.read_text())


def _name(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _access_calls(tree):
    """(call, action) for each action an access.require / access.may call can ask for."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and _name(node.func.value) == "access"
            and node.func.attr in ("require", "may")
        ):
            argument = node.args[1] if len(node.args) > 1 else ast.Constant(None)
            names = [c.value for c in ast.walk(argument) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
            for name in names or [None]:
                yield node, name


def _guarded_services():
    """Each function decorated with retry_transient (a service opening an audited change), with
    whether it or a function of its module that it calls asks the table."""
    for path, tree in _modules():
        functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        asks = {name for name, fn in functions.items() if any(True for _ in _access_calls(fn))}
        calls = {
            name: {_name(c.func) for c in ast.walk(fn) if isinstance(c, ast.Call)} & set(functions)
            for name, fn in functions.items()
        }
        changed = True
        while changed:  # a helper of a helper that asks counts too
            before = len(asks)
            asks |= {name for name, called in calls.items() if called & asks}
            changed = len(asks) != before
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for name, fn in functions.items():
            if any(_name(d) == "retry_transient" for d in fn.decorator_list):
                yield f"{module}.{name}", name in asks


def test_every_service_that_changes_state_asks_the_table():
    services = dict(_guarded_services())
    assert len(services) >= 40, "the scan found too few services: has the layout changed?"
    unguarded = sorted(name for name, asks in services.items() if not asks and name not in access.INTERNAL)
    assert unguarded == [], f"these services change state without an access rule: {unguarded}"
    stale = sorted(set(access.INTERNAL) - set(services))
    assert stale == [], f"INTERNAL names services that no longer exist: {stale}"


def test_every_action_named_in_code_has_an_entry_and_every_entry_is_used():
    named = {action for _, tree in _modules() for _, action in _access_calls(tree) if action}
    missing = sorted(named - set(access.ACTIONS))
    assert missing == [], f"actions asked for but not in the table: {missing}"
    unused = sorted(set(access.ACTIONS) - named)
    assert unused == [], f"table entries no code asks for: {unused}"


def test_no_permission_rule_is_written_outside_the_table():
    """The old helpers are gone: nothing decides access by comparing roles itself."""
    offenders = []
    for path, tree in _modules():
        if path.name == "access.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in {
                "require_team_role", "has_team_role", "require_site_role", "require_scope",
            }:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


@pytest.mark.django_db
def test_an_action_missing_from_the_table_cannot_run(cast):
    admin = Actor(user=cast["admin"])
    with pytest.raises(access.UnknownAction):
        access.require(admin, "prompt.delete_everything")
    with pytest.raises(access.UnknownAction):
        access.may(admin, "prompt.delete_everything")


@pytest.mark.django_db
def test_the_refusal_says_what_is_missing(cast):
    team = cast["team"]
    viewer, outsider = Actor(user=cast["viewer"]), Actor(user=cast["outsider"])
    with pytest.raises(PermissionDenied) as low:
        access.require(viewer, "version.create", team=team)
    assert low.value.code == "role_too_low" and "'author' role" in low.value.detail
    with pytest.raises(PermissionDenied) as stranger:
        access.require(outsider, "version.create", team=team)
    assert stranger.value.code == "not_team_member"
    with pytest.raises(PermissionDenied) as site_wide:
        access.require(Actor(user=cast["owner"]), "webhook.manage", team=None)
    assert site_wide.value.code == "admin_only"
    with pytest.raises(PermissionDenied) as system:
        access.require(Actor.for_system(), "break_glass", team=team)
    assert system.value.code == "not_a_person"


def test_the_published_table_is_the_table():
    published = (ROOT / "docs" / "access.md").read_text()
    assert published == access.as_markdown(), "docs/access.md is stale: python manage.py access_table > docs/access.md"


def test_every_entry_names_a_real_scope_and_role():
    from registry.models import APIToken, Membership, SiteRole

    roles = {r for r, _ in SiteRole.ROLE_CHOICES}
    for action, entry in access.ACTIONS.items():
        assert entry.scope in APIToken.SCOPES, action
        assert entry.team_role in (None, *Membership.RANK), action
        assert entry.site_roles <= roles, action
        assert entry.summary, action
    assert importlib.import_module("registry.management.commands.access_table")


@pytest.mark.django_db
def test_teams_of_counts_active_members_at_or_above_the_role(cast):
    owner, viewer = Actor(user=cast["owner"]), Actor(user=cast["viewer"])
    assert list(access.teams_of(owner).values_list("slug", flat=True)) == ["payments"]
    assert list(access.teams_of(viewer, access.AUTHOR)) == []
    assert list(access.teams_of(owner, access.OWNER).values_list("slug", flat=True)) == ["payments"]
    cast["owner"].is_active = False
    cast["owner"].save(update_fields=["is_active"])
    assert list(access.teams_of(Actor(user=cast["owner"]))) == []
    assert list(access.teams_of(Actor.for_system())) == []
