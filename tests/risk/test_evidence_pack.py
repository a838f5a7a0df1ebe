"""A Tier-0 deploy's evidence pack: every section present and true to the deploy, building it audited
and sealed into the signed chain, and the whole pack verified offline under ``python -S`` by
``audit.verify`` and by the SDK's ``promptledger verify``, failing for one changed byte in each kind
of file, a removed file, an added file and the wrong key, and warning when no key is pinned."""

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from audit import signing
from audit.models import AuditCheckpoint, AuditEvent
from risk.evidence.builder import build_evidence_pack
from tests.approvals.conftest import act, flow, production  # noqa: F401 - the Tier-0 world
from tests.risk.evidence_world import deployed  # noqa: F401 - the deployed request

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("request", "version", "policy", "decisions", "gate", "model")


def build(flow, request, who="compliance"):  # noqa: F811 - the fixture's value
    return build_evidence_pack(actor=act(flow[who]), request_id=request.pk)


def members(content):
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(path, files):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def offline(path, *keys, sdk=False):
    """The verifier with no site-packages: ``python -S -m audit.verify`` from the checkout, or the
    SDK's ``python -S -m promptledger verify`` with only sdk/ on the path."""
    pins = [arg for key in keys for arg in ("--public-key", key)]
    if sdk:
        command = [sys.executable, "-S", "-m", "promptledger", "verify", str(path), *pins]
        env = {"PYTHONPATH": str(REPO / "sdk"), "PATH": os.environ.get("PATH", "")}
        cwd = path.parent
    else:
        command = [sys.executable, "-S", "-m", "audit.verify", str(path), *pins]
        env, cwd = {"PATH": os.environ.get("PATH", "")}, REPO
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_pack_holds_every_section_of_the_tier_0_deploy(flow, deployed):  # noqa: F811
    files = members(build(flow, deployed).content)
    expected = {f"evidence/{name}.json" for name in SECTIONS} | {
        "report.html", "manifest.json", "seal.jsonl", "audit/events.jsonl", "audit/checkpoint.json",
    }
    assert set(files) == expected
    section = {name: json.loads(files[f"evidence/{name}.json"]) for name in SECTIONS}

    request = section["request"]
    assert request["prompt"]["tier"] == 0 and request["prompt"]["data_categories"] == ["pii", "financial"]
    assert request["deploy_request"]["status"] == "deployed" and request["deploy_request"]["deployed_by"] == "owner"

    version = section["version"]
    assert version["version"]["messages"][0]["content"] == "Dear {{ name }}, here is your letter."
    assert version["version"]["content_hash"] == deployed.content_hash
    assert version["live_when_opened"]["number"] == 1 and version["diff"]["against"] == 1
    assert "+Dear {{ name }}, here is your letter." in version["diff"]["text"]

    policy = section["policy"]
    assert policy["opened_under"]["tier"] == 0 and policy["opened_under"]["required_approvals"] == 2
    assert policy["in_force_at_deploy"]["version"] == deployed.policy_snapshot["version"]

    decisions = section["decisions"]["decisions"]
    assert [(d["person"], d["decision"], d["withdrawn_at"] is not None) for d in decisions] == [
        ("approver", "reject", True), ("approver", "approve", False), ("approver2", "approve", False),
    ]
    assert decisions[0]["comment"] == "say who it is from"
    assert all(d["signature"]["method"] == "session" and d["signature"]["authenticated_at"] for d in decisions)
    assert {d["binding"]["policy_version"] for d in decisions} == {deployed.policy_snapshot["version"]}

    gate = section["gate"]
    assert gate["evaluation"]["passed"] is True
    assert gate["recorded_at_deploy"]["gate"]["met"] is True
    used = {run["id"]: run for run in gate["runs"]}
    check = gate["evaluation"]["checks"][0]
    assert set(used) == {check["run"], check["baseline_run"]}
    ours = used[check["run"]]
    assert ours["version"] == 2 and ours["pass_rate"] == pytest.approx(2 / 3)
    assert ours["failing_cases"] == 1 and ours["failing"][0]["vars"] == {"name": "Linus"}

    model = section["model"]
    assert model["register_entry"]["model_id"] == deployed.version.llm_model.model_id
    assert model["latest_review"]["decision"] == "keep" and model["latest_review"]["reviewer"] == "riskofficer"
    assert model["latest_review"]["signature"]["method"] == "password"

    actions = [json.loads(line)["action"] for line in files["audit/events.jsonl"].splitlines()
               if json.loads(line)["record"] == "event"]
    assert actions[0] == "deploy_request.opened" and actions[-1] == "deploy_request.deployed" or (
        "deploy_request.deployed" in actions)
    for action in ("deploy_request.rejected", "deploy_request.decision_withdrawn", "deploy_request.approved",
                   "deployment.changed", "gate.evaluated", "eval_run.completed"):
        assert action in actions, action
    covering = json.loads(files["audit/checkpoint.json"])
    last = max(json.loads(line)["sequence"] for line in files["audit/events.jsonl"].splitlines()
               if json.loads(line)["record"] == "event")
    assert covering["sequence"] >= last

    report = files["report.html"].decode()
    for text in ("Tier policy in force", "Approvals and rejections", "say who it is from", "Eval gate",
                 "Linus", "riskofficer", "pii, financial", "Diff against what was live", "deploy_request.deployed"):
        assert text in report, text
    assert "<script" not in report and "<link" not in report and "src=" not in report and "http" not in report


def test_building_the_pack_is_audited_and_seals_its_manifest_into_the_signed_chain(flow, deployed):  # noqa: F811
    pack = build(flow, deployed)
    files = members(pack.content)
    sealed = AuditEvent.objects.get(action="evidence_pack.exported")
    assert sealed.actor_username == "compliance" and sealed.target_id == str(deployed.pk)
    assert sealed.data["manifest_sha256"] == hashlib.sha256(files["manifest.json"]).hexdigest() == pack.manifest_sha256
    checkpoint = AuditCheckpoint.objects.get(sequence=sealed.sequence)
    assert checkpoint.head_hash == sealed.hash
    seal = [json.loads(line) for line in files["seal.jsonl"].splitlines()]
    assert [line["record"] for line in seal] == ["event", "checkpoint"]
    assert seal[0]["hash"] == sealed.hash and seal[1]["checkpoint_hash"] == checkpoint.checkpoint_hash
    manifest = json.loads(files["manifest.json"])
    assert manifest["keys"] == {signing.key_id(): signing.public_key_b64()}
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == hashlib.sha256(files[name]).hexdigest()


@pytest.fixture
def pack_file(flow, deployed, tmp_path):  # noqa: F811
    path = tmp_path / "evidence.zip"
    path.write_bytes(build(flow, deployed).content)
    return path


@pytest.mark.parametrize("sdk", [False, True], ids=["audit.verify", "promptledger verify"])
def test_the_pack_verifies_offline_with_the_standard_library_alone(pack_file, sdk):
    key = signing.public_key_b64()
    done = offline(pack_file, key, sdk=sdk)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("OK: evidence pack of deploy request #")
    assert f"trusted key id {signing.key_id()} (pinned with --public-key)" in done.stdout
    assert "WARNING" not in done.stderr


def _changed(content):
    """One byte changed, in the middle of the file, staying printable."""
    middle = len(content) // 2
    return content[:middle] + bytes([content[middle] ^ 0x01]) + content[middle + 1 :]


@pytest.mark.parametrize("name", [
    "report.html", "evidence/request.json", "evidence/version.json", "evidence/decisions.json",
    "evidence/gate.json", "evidence/model.json", "evidence/policy.json", "audit/events.jsonl",
    "audit/checkpoint.json", "manifest.json", "seal.jsonl",
])
def test_one_changed_byte_in_any_file_fails_naming_it(pack_file, name, tmp_path):
    files = members(pack_file.read_bytes())
    files[name] = _changed(files[name])
    tampered = write_zip(tmp_path / "tampered.zip", files)
    for sdk in (False, True):
        done = offline(tampered, signing.public_key_b64(), sdk=sdk)
        assert done.returncode == 1, done.stdout
        assert done.stdout.startswith(f"BROKEN at {name}: "), done.stdout


def test_a_removed_file_and_an_added_file_fail_naming_them(pack_file, tmp_path):
    files = members(pack_file.read_bytes())
    removed = {name: content for name, content in files.items() if name != "evidence/gate.json"}
    done = offline(write_zip(tmp_path / "removed.zip", removed), signing.public_key_b64())
    assert done.returncode == 1 and done.stdout.startswith("BROKEN at evidence/gate.json: "), done.stdout
    assert "removed" in done.stdout
    added = {**files, "evidence/extra.json": b"{}\n"}
    done = offline(write_zip(tmp_path / "added.zip", added), signing.public_key_b64())
    assert done.returncode == 1 and done.stdout.startswith("BROKEN at evidence/extra.json: "), done.stdout
    assert "added" in done.stdout
    without_seal = {name: content for name, content in files.items() if name != "seal.jsonl"}
    done = offline(write_zip(tmp_path / "unsealed.zip", without_seal), signing.public_key_b64())
    assert done.returncode == 1 and done.stdout.startswith("BROKEN at seal.jsonl: "), done.stdout


def test_a_changed_byte_in_the_zip_itself_fails(pack_file):
    raw = bytearray(pack_file.read_bytes())
    raw[200] ^= 0x01  # inside the first member's compressed data
    pack_file.write_bytes(bytes(raw))
    done = offline(pack_file, signing.public_key_b64())
    assert done.returncode == 1 and done.stdout.startswith("BROKEN at "), done.stdout


def test_another_key_fails_and_no_key_warns(pack_file):
    other = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="  # RFC 8032 test 1's public key
    wrong = offline(pack_file, other)
    assert wrong.returncode == 1
    assert wrong.stdout.startswith("BROKEN at seal.jsonl: ") and "not among the keys given" in wrong.stdout
    unpinned = offline(pack_file)
    assert unpinned.returncode == 0, unpinned.stdout
    assert f"trusted key id {signing.key_id()} (listed in the file itself, NOT pinned)" in unpinned.stdout
    assert "WARNING: no --public-key was given" in unpinned.stderr


def test_a_request_that_went_nowhere_has_no_pack(flow, production):  # noqa: F811
    from approvals import services as approvals
    from core.errors import Conflict

    request = approvals.open_request(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, version=flow["v2"], environment=production,
        rationale="not yet",
    )
    with pytest.raises(Conflict) as refused:
        build(flow, request)
    assert refused.value.code == "not_deployed"
    assert not AuditEvent.objects.filter(action="evidence_pack.exported").exists()
