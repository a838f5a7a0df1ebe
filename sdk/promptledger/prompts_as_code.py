"""Prompts as code: a directory of prompt files (see ``prompt_files``) kept in step with the server.

``make_plan`` reads every file first and refuses them all (``PromptFilesInvalid``) when any is bad,
then compares each with the server: a new prompt, a new version (the file's content hash matches
none of the prompt's versions), details to update (name, description, tags, data categories), and
differences push leaves alone (team, tier and owner: a tier change needs the approvals of the
current tier, so it goes through the approval flow, never through a file). ``apply_plan`` makes
exactly the planned changes, reporting each refusal against its file. ``pull`` writes the version
deployed to an environment back as files, byte-stable, so pulling then pushing changes nothing.
"""

import difflib
import os
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .client import APIError, Forbidden, NotFound, PromptDisabled, PromptledgerError
from .prompt_files import (
    SLUG,
    Problem,
    PromptFilesInvalid,
    content_hash,
    dump_prompt,
    labels,
    load_directory,
    prompt_paths,
)

UPDATED_BY_PUSH = ("name", "description", "tags", "data_categories")
LEFT_ALONE = {
    "team": "push does not move a prompt to another team",
    "tier": "push does not change a tier: raising criticality is a change by a team owner, lowering it a "
            "tier-change request approved under the current tier",
    "owner": "push does not change the named owner: a team owner does, on the prompt's page or with "
             "PATCH /api/v1/prompts/{slug}/",
}


def _quoted(slug):
    return urllib.parse.quote(slug, safe="")


@dataclass
class PromptPlan:
    """What push would do for one file. ``action``: ``create`` (a new prompt and its first
    version), ``version`` (a new version) or ``none``; ``same_as`` is the existing version with the
    file's content; ``updates`` and ``left_alone`` map a field to ``(server value, file value)``."""

    file: object
    action: str
    server: dict | None = None
    latest: dict | None = None
    same_as: int | None = None
    updates: dict = field(default_factory=dict)
    left_alone: dict = field(default_factory=dict)

    @property
    def slug(self):
        return self.file.slug

    @property
    def changes(self):
        return self.action != "none" or bool(self.updates)


def _find_version(client, slug, digest, latest):
    """The version of ``slug`` with content hash ``digest``: the latest first, then the others."""
    if latest and latest["content_hash"] == digest:
        return latest
    if latest and latest["number"] > 1:
        for version in client.paginate(f"prompts/{_quoted(slug)}/versions/", query={"page_size": 200}):
            if version["content_hash"] == digest:
                return version
    return None


def plan_one(client, file):
    try:
        server = client.get_json(f"prompts/{_quoted(file.slug)}/")
    except NotFound:
        return PromptPlan(file, "create")
    latest = None
    if server.get("latest_version"):
        latest = client.get_json(f"prompts/{_quoted(file.slug)}/versions/{server['latest_version']}/")
    same = _find_version(client, file.slug, content_hash(file.content()), latest)
    wanted = file.metadata()
    plan = PromptPlan(file, "none" if same else "version", server, latest, same and same["number"])
    have = {"name": server.get("name"), "description": server.get("description") or "",
            "tags": labels(server.get("tags")), "data_categories": labels(server.get("data_categories"))}
    for key in UPDATED_BY_PUSH:
        if have[key] != wanted[key]:
            plan.updates[key] = (have[key], wanted[key])
    for key in LEFT_ALONE:
        if server.get(key) != wanted[key]:
            plan.left_alone[key] = (server.get(key), wanted[key])
    return plan


def _check_models(client, plans):
    """Refuse, before anything is applied, a new version on a model the register lacks or retired."""
    pending = [plan for plan in plans if plan.action != "none"]
    registered = {}
    for provider in sorted({plan.file.content()["model"]["provider"] for plan in pending}):
        try:
            entries = list(client.paginate("llm-models/", query={"provider": provider, "page_size": 200}))
        except Forbidden:  # the register is not ours to read: the server will say at push time
            return
        registered.update({(provider, e["model_id"]): e["status"] for e in entries})
    problems = []
    for plan in pending:
        model = plan.file.content()["model"]
        status = registered.get((model["provider"], model["name"]))
        if status in (None, "retired"):
            why = "is not in the model register" if status is None else "is retired in the model register"
            problems.append(plan.file.problem("model.name", f"{model['provider']}:{model['name']} {why}"))
    if problems:
        raise PromptFilesInvalid(problems)


def make_plan(client, directory):
    """Read and check every file under ``directory`` (raising ``PromptFilesInvalid`` when any is
    bad), then compare each with the server; nothing is changed. Plans come sorted by slug."""
    files = load_directory(directory)
    plans = [plan_one(client, file) for file in sorted(files, key=lambda f: f.slug)]
    _check_models(client, plans)
    return plans


# --- showing a plan -----------------------------------------------------------------------------


def _shown(value):
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def plan_lines(plans):
    """Lines describing the plan: ``+`` new prompt, ``~`` a change, ``!`` left alone, ``=`` unchanged."""
    lines, counts = [], {"create": 0, "version": 0, "updates": 0, "none": 0}
    for plan in plans:
        where = f"  ({plan.file.path})"
        if plan.action == "create":
            meta = plan.file.metadata()
            lines.append(f"+ {plan.slug}: new prompt (team {meta['team']}, tier {meta['tier']}, owner "
                         f"{meta['owner']}) with version 1{where}")
        elif plan.action == "version":
            lines.append(f"~ {plan.slug}: new version (latest is v{plan.latest['number']}){where}"
                         if plan.latest else f"~ {plan.slug}: first version{where}")
        elif plan.latest and plan.same_as != plan.latest["number"]:
            lines.append(f"= {plan.slug}: content is v{plan.same_as} (latest is v{plan.latest['number']}); "
                         "no version to create")
        for key, (before, after) in plan.updates.items():
            lines.append(f"~ {plan.slug}: {key} {_shown(before)} -> {_shown(after)}")
        for key, (before, after) in plan.left_alone.items():
            lines.append(f"! {plan.slug}: {key} is {_shown(before)} on the server, {_shown(after)} in "
                         f"{plan.file.path}: {LEFT_ALONE[key]}")
        counts[plan.action] += 1
        counts["updates"] += bool(plan.updates)
    left = sum(bool(plan.left_alone) for plan in plans)
    summary = (f"Plan: {counts['create']} new prompt(s), {counts['version']} new version(s), {counts['updates']} "
               f"prompt(s) with details to update, {counts['none']} unchanged version(s)")
    lines.append(summary + (f"; {left} prompt(s) with differences push leaves alone." if left else "."))
    return lines


# --- applying -----------------------------------------------------------------------------------


def _refusal(file, error, doing):
    """Problems locating a server refusal in the file: one per field error, or one for the whole."""
    problems = [file.problem(name, message) for name, messages in error.field_errors.items()
                for message in (messages if isinstance(messages, list) else [messages])]
    head = Problem(file.path, file.line(("slug",)), f"{file.slug}: {doing} refused: {error}")
    return [head, *problems]


def apply_plan(client, plans, say):
    """Make the planned changes, prompt by prompt; ``say`` gets a line per change made. Returns the
    problems (server refusals, located in their files); one prompt's refusal does not stop the rest."""
    problems = []
    for plan in plans:
        slug, file = plan.slug, plan.file
        path = f"prompts/{_quoted(slug)}/"
        doing = "creating the prompt"
        try:
            if plan.action == "create":
                meta = file.metadata()
                client.post_json("prompts/", {"slug": slug, **meta}, accept=(201,))
                say(f"{slug}: created the prompt (team {meta['team']}, tier {meta['tier']})")
            if plan.action in ("create", "version"):
                doing = "pushing the version"
                body = {**file.content(), "message": file.data.get("message") or f"promptledger push {file.path}"}
                status, version = client.post_json(f"{path}versions/", body)
                say(f"{slug}: created v{version['number']}" if status == 201
                    else f"{slug}: unchanged, identical to v{version['number']}")
            if plan.updates:
                doing = "updating " + ", ".join(plan.updates)
                client.request("PATCH", path, json_body={key: after for key, (_, after) in plan.updates.items()})
                say(f"{slug}: updated {', '.join(plan.updates)}")
        except APIError as error:
            if error.status >= 500:
                raise
            problems += _refusal(file, error, doing)
    return problems


# --- diff ---------------------------------------------------------------------------------------


def diff_lines(plan):
    """A unified diff of the server's prompt (the version with the file's content, else the latest)
    against the file, both written in the file format, so only meaningful differences show."""
    if not plan.changes and not plan.left_alone:
        return []
    file = plan.file
    mine = dump_prompt(file.metadata(), file.content(), slug=file.slug).splitlines(keepends=True)
    theirs, label = [], "/dev/null"
    if plan.same_as is not None:  # the file's content is that version's, byte for byte
        theirs = dump_prompt(plan.server, file.content(), slug=file.slug)
        label = f"{file.slug} v{plan.same_as} (server)"
    elif plan.latest is not None:
        content = {key: plan.latest[key] for key in ("messages", "variables", "model")}
        theirs = dump_prompt(plan.server, content, slug=file.slug)
        label = f"{file.slug} v{plan.latest['number']} (server)"
    if theirs:
        theirs = theirs.splitlines(keepends=True)
    return list(difflib.unified_diff(theirs, mine, fromfile=label, tofile=file.path))


# --- pull ---------------------------------------------------------------------------------------


def _existing_files(root):
    """slug → path of the prompt files already under ``root`` (unreadable files are skipped)."""
    found = {}
    for path in prompt_paths(root):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and isinstance(data.get("slug"), str):
            found.setdefault(data["slug"], path)
    return found


def _write_if_changed(path, text):
    """Write atomically, and only when the bytes differ; returns whether it wrote."""
    data = text.encode("utf-8")
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def _deployed_version(client, prompt, environment, say):
    """The version of ``prompt`` live in ``environment`` (not a canary's), or ``None``."""
    slug = prompt["slug"]
    try:
        return client.resolve(slug, environment).data
    except NotFound as error:
        if error.code == "not_deployed":
            return None
        raise
    except PromptDisabled:  # kill-switched: the version is still the approved one, so write it
        detail = client.get_json(f"prompts/{_quoted(slug)}/")
        number = next((d["version"] for d in detail["deployments"] if d["environment"] == environment), None)
        if number is None:
            return None
        say(f"{slug}: kill-switched in {environment}; writing its deployed v{number} all the same")
        return client.get_json(f"prompts/{_quoted(slug)}/versions/{number}/") | {"version": number}


def pull(client, *, environment, directory, team=None, say):
    """Write every visible prompt deployed to ``environment`` as a file under ``directory``: into
    the file that already declares its slug, else ``{slug}.yaml``. Files are written only when their
    bytes change; nothing is deleted. Returns ``(written, unchanged, problems)``."""
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise PromptledgerError(f"{directory}: not a directory")
    existing = _existing_files(root) if root.exists() else {}
    written = unchanged = 0
    problems = []
    for prompt in client.paginate("prompts/", query={"team": team, "page_size": 200}):
        slug = prompt["slug"]
        if not isinstance(slug, str) or not SLUG.match(slug) or len(slug) > 100:
            # Only a valid slug becomes a file name: "../x" from a server must not write outside.
            problems.append(Problem(str(root), None, f"the server sent {slug!r}, which is not a slug; not written"))
            continue
        version = _deployed_version(client, prompt, environment, say)
        if version is None:
            continue
        path = existing.get(slug) or root / f"{slug}.yaml"
        if path.exists() and path != existing.get(slug):
            problems.append(Problem(str(path), None, f"is not the prompt file of {slug}; {slug} not written"))
            continue
        text = dump_prompt(prompt, version, slug=slug)
        if _write_if_changed(path, text):
            written += 1
            say(f"wrote {path} ({slug} v{version['version']})")
        else:
            unchanged += 1
    return written, unchanged, problems
