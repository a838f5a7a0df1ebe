"""The demo's data files in ``demo/data``, read and checked before anything is written.

- ``prompts/<team>/<slug>/v1.yaml, v2.yaml, ...``: a prompt's versions, oldest first, each a prompt
  file of the client's prompts-as-code format, read by the SDK's own reader (so a file the demo
  takes is a file ``promptledger push`` takes). The details (name, tier, tags, ...) are the same in
  every version;
- ``suites/<slug>.jsonl``: a suite's cases, one a line, as ``POST /api/v1/suites/{slug}/cases/`` takes them;
- ``world.yaml``: everything else (its comments say what each part is).
"""

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from evals.case_files import CaseFileError, read_jsonl
from promptledger.prompt_files import Problem, PromptFilesInvalid, prompt_paths, read_prompt_file

DATA = Path(__file__).resolve().parent / "data"
VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.yaml$")


@dataclass(frozen=True)
class DemoPrompt:
    """One demo prompt: ``versions`` are its checked prompt files, v1 first."""

    slug: str
    team: str
    versions: list

    def details(self):
        """The prompt as the registry keeps it (``PromptFile.metadata``): name, team, tier, owner, ..."""
        return self.versions[0].metadata()


def world():
    """``world.yaml`` as a mapping."""
    return yaml.safe_load((DATA / "world.yaml").read_text(encoding="utf-8"))


def prompts():
    """Every demo prompt in path order; raises ``PromptFilesInvalid`` naming each problem."""
    root = DATA / "prompts"
    folders, problems = {}, []
    for path in prompt_paths(root):
        shown = str(path.relative_to(DATA.parent.parent))
        named = VERSION_FILE.match(path.name)
        if named is None or len(path.relative_to(root).parts) != 3:
            problems.append(Problem(shown, None, "a demo prompt's versions are prompts/<team>/<slug>/v<n>.yaml"))
            continue
        file, found = read_prompt_file(path, shown)
        problems += found
        if file is not None:
            folders.setdefault(path.parent, {})[int(named.group(1))] = file
    loaded = []
    for folder, numbered in folders.items():
        versions = [numbered[number] for number in sorted(numbered)]
        shown = str(folder.relative_to(DATA.parent.parent))
        if sorted(numbered) != list(range(1, len(versions) + 1)):
            problems.append(Problem(shown, None, "the versions are v1.yaml, v2.yaml, ... with none missing"))
        if {(file.slug, file.data["team"]) for file in versions} != {(folder.name, folder.parent.name)}:
            problems.append(Problem(shown, None, f"every version says slug: {folder.name}, team: {folder.parent.name}"))
        if any(file.metadata() != versions[0].metadata() for file in versions):
            problems.append(Problem(shown, None, "the details (name, description, tier, owner, tags, data "
                                    "categories) differ between versions"))
        loaded.append(DemoPrompt(folder.name, folder.parent.name, versions))
    if problems:
        raise PromptFilesInvalid(problems)
    return loaded


def cases(suite_slug):
    """The cases of ``suites/<suite_slug>.jsonl``, as the cases API takes them."""
    path = DATA / "suites" / f"{suite_slug}.jsonl"
    try:
        return read_jsonl(path.read_text(encoding="utf-8"))[0]
    except (OSError, CaseFileError) as exc:
        raise CaseFileError(f"{path.relative_to(DATA.parent.parent)}: {exc}") from exc
