"""The prompt file: one prompt as YAML, read with the line of every key and written back stably.

``load_directory`` reads every ``*.yaml`` / ``*.yml`` file under a directory and either returns
them all, checked, or raises ``PromptFilesInvalid`` listing every problem as ``path:line: what``
(a YAML syntax error, a missing key, a wrong type, an unknown key, a template using an undeclared
variable, a slug declared twice), so a caller can refuse to apply anything. ``dump_prompt``
writes a prompt in one fixed key order and style, so the same prompt always gives the same bytes.
``content_hash`` is the rule itself, not a copy: sha256 of the canonical JSON of messages,
variables (in their full form) and model; the server's ``registry.services.prompts`` calls it.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .client import PromptledgerError
from .templates import TemplateError, check_messages, normalize_variables

METADATA_KEYS = ("slug", "name", "description", "team", "tier", "owner", "tags", "data_categories")
FILE_KEYS = (*METADATA_KEYS, "model", "variables", "messages", "message")
REQUIRED_KEYS = ("slug", "name", "team", "tier", "owner", "data_categories", "model", "messages")
MODEL_KEYS = ("provider", "name", "params", "response_schema")
DECLARATION_ORDER = ("type", "required", "default", "description")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_FIELD_PART = re.compile(r"[^.\[\]]+|\[\d+\]")
_TEMPLATE_LINE = re.compile(r"^line (\d+): ")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file, at a line when it is known."""

    path: str
    line: int | None
    message: str

    def __str__(self):
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


class PromptFilesInvalid(PromptledgerError):
    """Some prompt files are unusable; ``problems`` lists each. Nothing was applied."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the prompt files; nothing was applied")


def field_path(field):
    """``"messages[0].content"`` → ``("messages", 0, "content")``: the server's field names as keys."""
    return tuple(int(part[1:-1]) if part.startswith("[") else part for part in _FIELD_PART.findall(field))


@dataclass(frozen=True)
class PromptFile:
    """A checked prompt file: ``data`` as written, ``lines`` maps each key path to its line."""

    path: str
    data: dict
    lines: dict
    styles: dict

    @property
    def slug(self):
        return self.data["slug"]

    def line(self, keys=()):
        """The line of ``keys`` (a key path), or of the nearest enclosing key that has one."""
        keys = tuple(str(k) if not isinstance(k, int) else k for k in keys)
        while keys and keys not in self.lines:
            keys = keys[:-1]
        return self.lines.get(keys, 1)

    def problem(self, field, message):
        """A ``Problem`` at the line of a field named the server's way (``messages[0].content``);
        a template's own ``line N:`` becomes the file's line when the template is a ``|`` block."""
        keys = field_path(field)
        line = self.line(keys)
        found = _TEMPLATE_LINE.match(message)
        if found and keys in self.lines and self.styles.get(keys) == "|":
            line, message = line + int(found.group(1)), message[found.end():]
        return Problem(self.path, line, f"{field}: {message}" if field else message)

    def metadata(self):
        """The prompt's details as the server keeps them (trimmed text, sorted lowercase labels)."""
        data = self.data
        return {
            "name": data["name"].strip(),
            "description": (data.get("description") or "").strip(),
            "team": data["team"],
            "tier": data["tier"],
            "owner": data["owner"],
            "tags": labels(data.get("tags")),
            "data_categories": labels(data.get("data_categories")),
        }

    def content(self):
        """Messages, variables and model exactly as the server will hash them."""
        model = self.data["model"]
        variables = {
            name: {**spec, "description": spec["description"].strip()} if isinstance(spec.get("description"), str)
            else spec
            for name, spec in (self.data.get("variables") or {}).items()
        }
        return {
            "messages": [{"role": m["role"], "content": m["content"]} for m in self.data["messages"]],
            "variables": normalize_variables(variables),
            "model": {
                "provider": model["provider"],
                "name": model["name"].strip(),
                "params": model.get("params") or {},
                "response_schema": model.get("response_schema"),
            },
        }


def labels(values):
    return sorted({value.strip().lower() for value in values or [] if value.strip()})


def content_hash(content):
    """sha256 of the canonical JSON of ``{messages, variables, model}``, as the server computes it."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- reading ------------------------------------------------------------------------------------


def _index(node, prefix, lines, styles, duplicates):
    """Record the line (1-based) of every key and list item under ``node``, and duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            keys = (*prefix, str(key_node.value))
            if keys in lines:
                duplicates.append((key_node.start_mark.line + 1, f"duplicate key '{key_node.value}' (first on line "
                                   f"{lines[keys]})"))
                continue
            lines[keys] = key_node.start_mark.line + 1
            if isinstance(value_node, yaml.ScalarNode):
                styles[keys] = value_node.style
            _index(value_node, keys, lines, styles, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            lines[(*prefix, position)] = item.start_mark.line + 1
            _index(item, (*prefix, position), lines, styles, duplicates)


def _kind(value):
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", int: "a number", float: "a number",
            type(None): "empty"}.get(type(value), type(value).__name__)


def _not_json(value, keys=()):
    """The key path of the first value JSON cannot carry (a YAML date, say), or ``None``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return (*keys, key)
            found = _not_json(item, (*keys, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found = _not_json(item, (*keys, position))
            if found is not None:
                return found
    elif not isinstance(value, str | int | float | bool | type(None)):
        return keys
    return None


def _check_shape(data):
    """``(key path, message)`` for every problem of shape: keys, required keys, types."""
    if not isinstance(data, dict):
        return [((), f"a prompt file is a mapping (slug: ..., name: ...), not {_kind(data)}")]
    problems = [((key,), f"unknown key '{key}'; a prompt file has {', '.join(FILE_KEYS)}")
                for key in data if key not in FILE_KEYS]
    problems += [((), f"missing required key '{key}'") for key in REQUIRED_KEYS if key not in data]

    def expect(keys, value, ok, what):
        if not ok(value):
            problems.append((keys, f"{'.'.join(map(str, keys))} must be {what}, not {_kind(value)}"))
            return False
        return True

    text = lambda v: isinstance(v, str) and v.strip() != ""  # noqa: E731
    for key in ("name", "team", "owner"):
        if key in data:
            expect((key,), data[key], text, "non-empty text")
    if "slug" in data and expect(("slug",), data["slug"], text, "non-empty text"):
        if not SLUG.match(data["slug"]) or len(data["slug"]) > 100:
            problems.append((("slug",), f"slug '{data['slug']}' must be lowercase letters, digits and single "
                             "hyphens, at most 100 characters"))
    for key in ("description", "message"):
        if data.get(key) is not None:
            expect((key,), data[key], lambda v: isinstance(v, str), "text")
    if "tier" in data:
        expect(("tier",), data["tier"], lambda v: type(v) is int and 0 <= v <= 3, "0, 1, 2 or 3")
    for key in ("tags", "data_categories"):
        if data.get(key) is not None:
            expect((key,), data[key], lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                   "a list of text")
    if "model" in data and expect(("model",), data["model"], lambda v: isinstance(v, dict), "a mapping"):
        model = data["model"]
        problems += [(("model", key), f"unknown key 'model.{key}'; a model has {', '.join(MODEL_KEYS)}")
                     for key in model if key not in MODEL_KEYS]
        for key in ("provider", "name"):
            if key not in model:
                problems.append((("model",), f"missing required key 'model.{key}'"))
            else:
                expect(("model", key), model[key], text, "non-empty text")
        if model.get("params") is not None:
            expect(("model", "params"), model["params"], lambda v: isinstance(v, dict), "a mapping")
        if model.get("response_schema") is not None:
            expect(("model", "response_schema"), model["response_schema"], lambda v: isinstance(v, dict),
                   "a mapping (a JSON schema) or empty")
    if data.get("variables") is not None:
        expect(("variables",), data["variables"], lambda v: isinstance(v, dict), "a mapping of name to declaration")
    if "messages" in data and expect(("messages",), data["messages"], lambda v: isinstance(v, list) and v,
                                     "a non-empty list of {role, content}"):
        for position, message in enumerate(data["messages"]):
            keys = ("messages", position)
            if expect(keys, message, lambda v: isinstance(v, dict), "a mapping {role, content}"):
                problems += [((*keys, key), f"unknown key '{key}'; a message has role and content")
                             for key in message if key not in ("role", "content")]
                problems += [(keys, f"missing required key '{key}'") for key in ("role", "content")
                             if key not in message]
    unusable = _not_json(data)
    if unusable is not None and not problems:
        problems.append((unusable, "this value is not plain text, a number, true/false or a list/mapping "
                                   "(a date? quote it)"))
    return problems


def _check_templates(data):
    """``(field, message)`` for each variable declaration or template the server would refuse."""
    try:
        declared = normalize_variables(data.get("variables") or {})
        check_messages(data["messages"], declared, max_bytes=2**62)  # the size limit is the server's to apply
    except TemplateError as exc:
        return [(field, message) for field, messages in exc.field_errors.items() for message in messages]
    return []


def read_prompt_file(path, shown=None):
    """``(PromptFile or None, [Problem])`` for one file; the file is usable when no problem."""
    shown = shown or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(shown, None, f"cannot read it: {exc}")]
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        return None, [Problem(shown, mark.line + 1 if mark else None, f"YAML syntax error: {what}")]
    except yaml.YAMLError as exc:
        return None, [Problem(shown, None, f"YAML error: {exc}")]
    finally:
        loader.dispose()
    if node is None:
        return None, [Problem(shown, None, "the file is empty")]
    lines, styles, duplicates = {}, {}, []
    _index(node, (), lines, styles, duplicates)
    file = PromptFile(shown, data, lines, styles)
    problems = [Problem(shown, line, message) for line, message in duplicates]
    problems += [Problem(shown, file.line(keys), message) for keys, message in _check_shape(data)]
    if not problems:
        problems = [file.problem(field, message) for field, message in _check_templates(data)]
    return (None if problems else file), problems


def prompt_paths(directory):
    """Every ``*.yaml`` / ``*.yml`` file under ``directory``, sorted, skipping hidden folders."""
    root = Path(directory)
    return sorted(
        path for path in root.rglob("*")
        if path.suffix in (".yaml", ".yml") and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def load_directory(directory):
    """Every prompt file under ``directory``, checked; raises ``PromptFilesInvalid`` naming each
    problem (a slug declared twice names both files), or ``PromptledgerError`` when there are none."""
    if not Path(directory).is_dir():
        raise PromptledgerError(f"{directory}: not a directory")
    paths = prompt_paths(directory)
    if not paths:
        raise PromptledgerError(f"{directory}: no prompt files (*.yaml, *.yml) in it")
    files, problems, by_slug = [], [], {}
    for path in paths:
        file, found = read_prompt_file(path)
        problems += found
        if file is None:
            continue
        first = by_slug.setdefault(file.slug, file)
        if first is not file:
            problems.append(Problem(file.path, file.line(("slug",)), f"slug '{file.slug}' is also declared in "
                                    f"{first.path}:{first.line(('slug',))}"))
            continue
        files.append(file)
    if problems:
        raise PromptFilesInvalid(problems)
    return files


# --- writing ------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line text as ``|`` blocks (PyYAML quotes what a block cannot hold)."""


_Dumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None),
)


def _sorted(value):
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def prompt_document(metadata, content, *, slug, message=None):
    """The prompt file's mapping, keys in the one order every file uses."""
    document = {"slug": slug, "name": metadata["name"]}
    if metadata.get("description"):
        document["description"] = metadata["description"]
    document.update({
        "team": metadata["team"],
        "tier": metadata["tier"],
        "owner": metadata["owner"],
        "tags": labels(metadata.get("tags")),
        "data_categories": labels(metadata.get("data_categories")),
    })
    model = content["model"]
    document["model"] = {
        "provider": model["provider"],
        "name": model["name"],
        "params": _sorted(model.get("params") or {}),
        "response_schema": _sorted(model.get("response_schema")),
    }
    document["variables"] = {
        name: {key: _sorted(spec[key]) for key in DECLARATION_ORDER if key in spec}
        for name, spec in sorted((content.get("variables") or {}).items())
    }
    document["messages"] = [{"role": m["role"], "content": m["content"]} for m in content["messages"]]
    if message:
        document["message"] = message
    return document


def dump_prompt(metadata, content, *, slug, message=None):
    """The prompt as YAML text: same prompt, same bytes."""
    return yaml.dump(
        prompt_document(metadata, content, slug=slug, message=message),
        Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096,
    )
