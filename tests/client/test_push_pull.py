"""Prompts as code against a live server: ``promptledger push``, ``diff`` and ``pull`` run in-process
through the CLI's ``main``. Pushing twice creates nothing, a bad file is named with its line and
nothing is applied, pull then push changes nothing, and ``diff`` exits 0 only when nothing differs."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from core.actors import Actor
from promptledger import prompt_files
from promptledger.cli import main
from registry.models import Environment, Prompt, PromptVersion
from registry.services import create_version, issue_token, set_deployment, set_kill_switch
from tests.factories import PromptFactory

ROOT = Path(__file__).resolve().parents[2]

PROMPT = """\
slug: {slug}
name: Letter {n}
team: payments
tier: {tier}
owner: owner
tags: [letters, batch-{group}]
data_categories: [pii]
model:
  provider: offline
  name: offline-echo-1
  params: {{temperature: 0.2, max_tokens: 300}}
variables:
  name: {{type: string}}
  amount: {{type: number, required: false, description: "  in euros  "}}
  tone: {{type: string, default: "warm"}}
messages:
  - role: system
    content: |
      You write letter {n} for a bank.
      Keep it under {{{{ 120 }}}} words — «politely».
  - role: user
    content: "Write to {{{{ name }}}} in a {{{{ tone }}}} tone."
message: first import
"""


def prompt_text(n, *, slug=None, tier=2):
    return PROMPT.format(slug=slug or f"letter-{n:02d}", n=n, tier=tier, group=n % 3)


def write_prompts(directory, count=20):
    """``count`` prompt files, some in sub-folders, some ``.yml``."""
    paths = []
    for n in range(count):
        folder = directory / ("retail" if n % 2 else "business") / ("" if n % 4 else "archive")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"letter-{n:02d}.{'yml' if n % 5 == 0 else 'yaml'}"
        path.write_text(prompt_text(n), encoding="utf-8")
        paths.append(path)
    return paths


@dataclass
class Done:
    code: int
    out: str
    err: str


@pytest.fixture
def promptledger(transactional_db, live_server, cast, monkeypatch, capsys):
    """``promptledger("push", DIR)`` runs the CLI against the live server as the team's owner."""
    _, token = issue_token(actor=Actor.for_system(), user=cast["owner"], scopes=["prompts:read", "prompts:write"])
    monkeypatch.setenv("PROMPTLEDGER_URL", live_server.url)
    monkeypatch.setenv("PROMPTLEDGER_TOKEN", token)
    capsys.readouterr()

    def run(*argv):
        code = main([str(arg) for arg in argv])
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


def counts():
    return Prompt.objects.count(), PromptVersion.objects.count()


def test_pushing_twenty_files_creates_them_and_pushing_again_creates_nothing(promptledger, tmp_path):
    write_prompts(tmp_path)
    first = promptledger("push", tmp_path)
    assert first.code == 0, first.err
    assert "Plan: 20 new prompt(s), 0 new version(s)" in first.out
    assert first.out.count(": created v1") == 20
    assert counts() == (20, 20)
    letter = Prompt.objects.get(slug="letter-07")
    assert (letter.name, letter.tier, letter.owner.username) == ("Letter 7", 2, "owner")
    assert letter.tags == ["batch-1", "letters"]
    assert letter.versions.get().change_note == "first import"
    updated = dict(Prompt.objects.values_list("slug", "updated_at"))

    again = promptledger("push", tmp_path)
    assert again.code == 0, again.err
    assert "0 new prompt(s), 0 new version(s), 0 prompt(s) with details to update, 20 unchanged" in again.out
    assert "Nothing to push." in again.out
    assert counts() == (20, 20)
    assert dict(Prompt.objects.values_list("slug", "updated_at")) == updated


def test_the_local_content_hash_is_the_servers(promptledger, tmp_path):
    write_prompts(tmp_path, count=1)
    assert promptledger("push", tmp_path).code == 0
    (file,) = prompt_files.load_directory(tmp_path)
    assert prompt_files.content_hash(file.content()) == PromptVersion.objects.get().content_hash


def test_a_changed_file_becomes_a_new_version_and_its_details_are_updated(promptledger, tmp_path):
    (path,) = write_prompts(tmp_path, count=1)
    assert promptledger("push", tmp_path).code == 0
    text = path.read_text().replace("Letter 0", "Letter zero").replace("for a bank", "for a small bank")
    path.write_text(text.replace("message: first import", "message: smaller bank"))
    pushed = promptledger("push", tmp_path)
    assert pushed.code == 0, pushed.err
    assert "~ letter-00: new version (latest is v1)" in pushed.out
    assert "~ letter-00: name 'Letter 0' -> 'Letter zero'" in pushed.out
    assert "letter-00: created v2" in pushed.out
    prompt = Prompt.objects.get(slug="letter-00")
    assert prompt.name == "Letter zero"
    assert prompt.versions.get(number=2).change_note == "smaller bank"


@pytest.mark.parametrize(
    ("broken", "line", "says"),
    [
        (lambda t: t.replace("  - role: user\n", "  - role: user\n   oops: [\n"), 22, "YAML syntax error"),
        (lambda t: t.replace("team: payments\n", ""), 1, "missing required key 'team'"),
        (lambda t: t.replace("tier: 2", "tier: high"), 4, "tier must be 0, 1, 2 or 3, not text"),
        (lambda t: t.replace("owner: owner\n", "owner: owner\ncolour: blue\n"), 6, "unknown key 'colour'"),
        (lambda t: t.replace("  params:", "  temperature: 1\n  params:"), 11, "unknown key 'model.temperature'"),
        (lambda t: t.replace("in a {{ tone }} tone", "in a {{ mood }} tone"), 22,
         "messages[1].content: line 1: 'mood' is not a declared variable"),
        (lambda t: t.replace("under {{ 120 }} words", "under {{ limit }} words"), 20,
         "messages[0].content: 'limit' is not a declared variable"),
        (lambda t: t.replace("name: Letter 3\n", "name: Letter 3\nname: again\n"), 3, "duplicate key 'name'"),
    ],
    ids=["syntax", "missing", "type", "unknown", "unknown-model-key", "undeclared", "undeclared-in-block", "dup"],
)
def test_a_bad_file_is_named_with_its_line_and_nothing_is_applied(promptledger, tmp_path, broken, line, says):
    paths = write_prompts(tmp_path)
    bad = paths[3]
    bad.write_text(broken(bad.read_text()))
    done = promptledger("push", tmp_path)
    assert done.code == 2
    assert f"{bad}:{line}: " in done.err
    assert says in done.err
    assert "nothing was applied" in done.err
    assert counts() == (0, 0)


def test_a_slug_declared_twice_names_both_files(promptledger, tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "deeper" / "b.yml"
    second.parent.mkdir()
    first.write_text(prompt_text(1))
    second.write_text(prompt_text(2, slug="letter-01"))
    done = promptledger("push", tmp_path)
    assert done.code == 2
    assert f"{second}:1: slug 'letter-01' is also declared in {first}:1" in done.err
    assert counts() == (0, 0)


def test_a_model_the_register_lacks_is_refused_before_anything_is_applied(promptledger, tmp_path):
    paths = write_prompts(tmp_path, count=3)
    paths[2].write_text(paths[2].read_text().replace("offline-echo-1", "offline-echo-9"))
    done = promptledger("push", tmp_path)
    assert done.code == 2
    assert f"{paths[2]}:10: model.name: offline:offline-echo-9 is not in the model register" in done.err
    assert counts() == (0, 0)


def test_a_refusal_by_the_server_names_the_file_and_the_rest_is_applied(promptledger, tmp_path):
    paths = write_prompts(tmp_path, count=2)
    paths[1].write_text(paths[1].read_text().replace("owner: owner", "owner: outsider"))
    done = promptledger("push", tmp_path)
    assert done.code == 1
    assert f"{paths[1]}:1: letter-01: creating the prompt refused:" in done.err
    assert f"{paths[1]}:5: owner: the owner must be a member of team 'payments'" in done.err
    assert list(Prompt.objects.values_list("slug", flat=True)) == ["letter-00"]


def test_dry_run_shows_the_plan_and_applies_nothing(promptledger, tmp_path):
    write_prompts(tmp_path, count=4)
    done = promptledger("push", tmp_path, "--dry-run")
    assert done.code == 0, done.err
    assert "+ letter-02: new prompt (team payments, tier 2, owner owner) with version 1" in done.out
    assert "Dry run: nothing applied." in done.out
    assert counts() == (0, 0)


def test_a_tier_difference_is_left_to_the_approval_flow(promptledger, tmp_path):
    (path,) = write_prompts(tmp_path, count=1)
    assert promptledger("push", tmp_path).code == 0
    path.write_text(path.read_text().replace("tier: 2", "tier: 3"))
    done = promptledger("push", tmp_path)
    assert done.code == 1
    assert "! letter-00: tier is 2 on the server, 3 in" in done.out
    assert "lowering it a tier-change request approved under the current tier" in done.out
    assert Prompt.objects.get().tier == 2
    assert promptledger("diff", tmp_path).code == 1


def test_diff_exits_0_when_nothing_would_change_and_1_with_the_change_when_something_would(promptledger, tmp_path):
    (path,) = write_prompts(tmp_path, count=1)
    assert promptledger("push", tmp_path).code == 0
    same = promptledger("diff", tmp_path)
    assert same.code == 0, same.err
    assert "---" not in same.out
    path.write_text(path.read_text().replace("for a bank", "for a credit union"))
    changed = promptledger("diff", tmp_path)
    assert changed.code == 1
    assert "--- letter-00 v1 (server)" in changed.out
    assert "-    You write letter 0 for a bank.\n+    You write letter 0 for a credit union.\n" in changed.out
    assert counts() == (1, 1)
    new = tmp_path / "new.yaml"
    new.write_text(prompt_text(5))
    assert "--- /dev/null" in promptledger("diff", tmp_path).out


@pytest.fixture
def deployed(cast):
    """Prompts in three states in production: v1 live under a v2 latest, kill-switched, and a
    response schema; and one deployed only to staging."""
    owner = Actor(user=cast["owner"])
    production, staging = Environment.objects.get(slug="production"), Environment.objects.get(slug="staging")
    made = {}
    for slug in ("alpha", "beta", "gamma", "delta"):
        prompt = PromptFactory(
            slug=slug, name=f"{slug.title()} prompt", team=cast["team"], tier=1, owner=cast["owner"],
            tags=["pulled"], data_categories=["pii", "financial"], description="Line one.\nLine two.",
        )
        v1, _ = create_version(
            actor=Actor(user=cast["author"]), prompt=prompt,
            messages=[{"role": "system", "content": f"Help {{{{ who }}}} with {slug}.\n\nTrailing space:  \n"}],
            variables={"who": {"type": "string", "description": "the customer"}, "limit": {"type": "integer",
                                                                                            "default": 3}},
            model={"provider": "offline", "name": "offline-echo-1", "params": {"top_p": 0.9, "temperature": 0},
                   "response_schema": {"type": "object", "required": ["answer"]} if slug == "gamma" else None},
            message="v1",
        )
        made[slug] = v1
        create_version(actor=Actor(user=cast["author"]), prompt=prompt,
                       messages=[{"role": "system", "content": "Newer {{ who }}."}],
                       variables={"who": {"type": "string"}},
                       model={"provider": "offline", "name": "offline-echo-1"}, message="v2")
        set_deployment(actor=owner, prompt=prompt, environment=staging if slug == "delta" else production, version=v1)
    set_kill_switch(actor=owner, prompt=Prompt.objects.get(slug="beta"), environment=production, disabled=True,
                    reason="incident 7")
    return made


def test_pull_then_push_changes_nothing_and_pulling_twice_writes_the_same_bytes(promptledger, tmp_path, deployed):
    pulled = promptledger("pull", "--environment", "production", tmp_path)
    assert pulled.code == 0, pulled.err
    assert "Pulled 3 prompt(s) deployed to production: 3 written, 0 already up to date." in pulled.out
    assert "beta: kill-switched in production; writing its deployed v1 all the same" in pulled.out
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == ["alpha.yaml", "beta.yaml", "gamma.yaml"]
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert "response_schema:\n    required:\n    - answer\n    type: object\n" in before["gamma.yaml"].decode()

    versions = PromptVersion.objects.count()
    pushed = promptledger("push", tmp_path)
    assert pushed.code == 0, pushed.out + pushed.err
    assert "= alpha: content is v1 (latest is v2); no version to create" in pushed.out
    assert "Nothing to push." in pushed.out
    assert PromptVersion.objects.count() == versions
    assert promptledger("diff", tmp_path).code == 0

    again = promptledger("pull", "-e", "production", tmp_path)
    assert again.code == 0, again.err
    assert "0 written, 3 already up to date" in again.out
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_pull_writes_into_the_file_that_already_declares_the_slug(promptledger, tmp_path, deployed):
    kept = tmp_path / "team" / "the-alpha-prompt.yml"
    kept.parent.mkdir()
    kept.write_text("slug: alpha\nname: stale\n")
    assert promptledger("pull", "-e", "production", tmp_path).code == 0
    assert not (tmp_path / "alpha.yaml").exists()
    names = {file.slug: (file.path, file.data["name"]) for file in prompt_files.load_directory(tmp_path)}
    assert names["alpha"] == (str(kept), "Alpha prompt")


def test_pull_never_writes_outside_its_folder_whatever_slug_the_server_sends(promptledger, tmp_path, deployed):
    # A slug the services would refuse, as a compromised server or database might send it.
    Prompt.objects.filter(slug="gamma").update(slug="../escaped")
    target = tmp_path / "pulled"
    pulled = promptledger("pull", "-e", "production", target)
    assert "'../escaped', which is not a slug; not written" in pulled.out + pulled.err
    assert not (tmp_path / "escaped.yaml").exists()
    assert sorted(path.name for path in target.iterdir()) == ["alpha.yaml", "beta.yaml"]
