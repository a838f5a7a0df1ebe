"""Rules about where code lives, checked on the source: each holds a decision of the house style
that is cheap to break by accident."""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("registry", "approvals", "evals", "webhooks", "audit", "config", "risk", "sso")


def _sources():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path, ast.parse(path.read_text())


def test_audit_events_are_written_only_by_each_apps_events_module():
    """One function per event type (Saleor's order/events.py): services call ``events.x(...)``,
    never ``record(...)`` with an action string of their own."""
    writers = []
    for path, tree in _sources():
        if path.name.endswith("events.py") or path.parts[-2:] == ("audit", "services.py"):  # stream_events.py too
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "record":
                writers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert writers == [], f"audit events written outside an events module: {writers}"


def test_reading_a_tier_policy_never_writes_one():
    """Policies are seeded by a migration; the read path is a plain lookup (no get_or_create)."""
    source = (ROOT / "approvals" / "policy.py").read_text()
    assert "get_or_create" not in source and ".save(" not in source and ".create(" not in source


def test_the_tier_range_is_written_once():
    """Tiers are core.tiers.Tier: no module spells the range out again."""
    spelled = []
    for path, _tree in _sources():
        if path.name == "tiers.py":
            continue
        text = path.read_text()
        for pattern in (r"0 <= \w+ <= 3", r"range\(4\)", r"\(0, 1, 2, 3\)", r'\{"0", "1", "2", "3"\}'):
            if re.search(pattern, text):
                spelled.append(f"{path.relative_to(ROOT)}: {pattern}")
    assert spelled == []


def test_the_apps_import_only_the_layers_below_them():
    """import-linter's contract (.importlinter): config, approvals, evals, webhooks, registry, audit,
    the SDK's promptledger, each importing only those below it. The edges that still cross are listed
    there one by one; a new one fails here, and a listed one that is gone must leave the list."""
    done = subprocess.run(  # noqa: S603 - the venv's own lint-imports, fixed arguments
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT, capture_output=True,
        text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def _cycles(edges):
    """The strongly connected groups of more than one node (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_app_has_an_import_cycle_among_its_modules():
    """Inside each app, its modules (a package counted as one: ``evals.runner``) import one another
    without a cycle, imports inside functions included: a cycle hidden in a function is still one."""
    import grimp

    packages = (*APPS, "core", "demo")
    graph = grimp.build_graph(*packages)
    cycles = {}
    for app in packages:
        def part(module, app=app):
            return ".".join(module.split(".")[:2])

        edges = {}
        for module in graph.modules:
            if module.split(".")[0] != app or module == app:
                continue
            edges.setdefault(part(module), set())
            for imported in graph.find_modules_directly_imported_by(module):
                if imported.split(".")[0] == app and imported != app and part(imported) != part(module):
                    edges[part(module)].add(part(imported))
                    edges.setdefault(part(imported), set())
        if found := _cycles(edges):
            cycles[app] = found
    assert cycles == {}


def test_every_action_an_app_records_is_described_by_that_app():
    """Each app's events.py describes the actions it records (LABELS, core.vocabulary); the audit
    log's labels and filter come from there, and no app lists another's actions."""
    from core import vocabulary

    pattern = re.compile(r"^[a-z_]+\.[a-z_]+$")
    undescribed, foreign = {}, {}
    for path in sorted(ROOT.glob("*/*events.py")):
        text = path.read_text()
        if "import record" not in text:
            continue  # not an audit vocabulary (webhooks/events.py names webhook events)
        tree = ast.parse(text)
        own = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "LABELS" for t in node.targets):
                own = {key.value for key in node.value.keys}
        in_labels = {
            id(n) for node in tree.body if isinstance(node, ast.Assign)
            and any(getattr(t, "id", "") in ("LABELS", "GROUPS") for t in node.targets) for n in ast.walk(node)
        }
        recorded = {
            n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and pattern.match(n.value)
            and id(n) not in in_labels
        }
        if recorded - own:
            undescribed[path.parent.name] = sorted(recorded - own)
        if own - recorded:
            foreign[path.parent.name] = sorted(own - recorded)
    assert undescribed == {} and foreign == {}
    assert "Signed in" == vocabulary.label("auth.login") and vocabulary.label("sso.roles_synced") != "sso.roles_synced"


def test_every_app_of_the_project_ships_in_the_server_wheel():
    """``pip install .`` packages only what pyproject's ``packages.find`` includes; an app missing
    there works from a checkout (its folder is on the path) and fails in a wheel installed elsewhere."""
    import fnmatch
    import tomllib

    from django.conf import settings

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    ours = [app for app in settings.INSTALLED_APPS if (ROOT / app.split(".")[0]).is_dir()]
    missing = [app for app in ours if not any(fnmatch.fnmatch(app, pattern) for pattern in include)]
    assert ours and missing == [], f"apps left out of the wheel: {missing}"
