"""Rotating the audit signing key: a new key signs from then on, the old public key stays listed
(outside the database) so older checkpoints and exports still verify, and nothing else does."""

import json
import os
import re
import stat
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from audit import keyring, signing
from audit.checks import verify_database
from audit.checks_deploy import audit_retired_keys_readable
from audit.export import start_export
from audit.models import AuditCheckpoint, AuditEvent
from audit.rotation import RotationError, rotate_signing_key
from audit.services import write_checkpoint
from audit.verify import verify_file
from core.actors import Actor

REPO = Path(settings.BASE_DIR)
pytestmark = pytest.mark.usefixtures("postgres")


@pytest.fixture
def file_key(settings, tmp_path):
    """The signing key in a file (key 1), as an operator keeps it, instead of the tests' env key."""
    path = tmp_path / "keys" / "audit-signing.key"
    path.parent.mkdir()
    path.write_text(signing.generate_seed_b64() + "\n")
    path.chmod(0o600)
    settings.PROMPTLEDGER_AUDIT_SIGNING_KEY = ""
    settings.PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE = str(path)
    signing.private_key.cache_clear()
    return path


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def verify(**kwargs):
    return verify_database(save=False, max_checkpoint_age=0, **kwargs)


@pytest.fixture
def rotated(file_key, make_events):
    """Events and checkpoints under key 1, a rotation, more events and checkpoints under key 2."""
    make_events(3)
    write_checkpoint()
    old = (signing.key_id(), signing.public_key_b64())
    output = run("audit_rotate_key")
    make_events(2)
    write_checkpoint()
    return {"old_id": old[0], "old_public": old[1], "new_id": signing.key_id(),
            "new_public": signing.public_key_b64(), "output": output}


def test_after_a_rotation_the_new_key_signs_and_older_checkpoints_still_verify(rotated, file_key):
    old_id, new_id = rotated["old_id"], rotated["new_id"]
    assert new_id != old_id
    assert f"key id {old_id} → {new_id}" in rotated["output"]
    assert stat.S_IMODE(file_key.stat().st_mode) == 0o600
    assert not list(file_key.parent.glob(".*.new"))  # the new key went in by rename, nothing left over
    signed_by = list(AuditCheckpoint.objects.order_by("id").values_list("key_id", flat=True))
    assert signed_by == [old_id, new_id, new_id]  # the rotation's own checkpoint is signed by the new key
    retired = Path(settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE).read_text()
    assert rotated["old_public"] in retired and f"key id {old_id}" in retired
    report = verify()
    assert report.ok, report.summary()
    assert report.checkpoints == 3
    assert "OK: events 1..6" in run("verify_audit", "--max-checkpoint-age", "0")


def test_the_rotation_is_an_audit_event_in_the_chain_covered_by_the_new_keys_checkpoint(rotated):
    event = AuditEvent.objects.get(action="audit.key_rotated")
    assert (event.actor_type, event.actor_username) == ("system", "system")
    assert event.data == {
        "old_key_id": rotated["old_id"], "new_key_id": rotated["new_id"], "old_public_key": rotated["old_public"],
        "new_public_key": rotated["new_public"], "key_source": "file",
    }
    first_by_new_key = AuditCheckpoint.objects.filter(key_id=rotated["new_id"]).order_by("id").first()
    assert first_by_new_key.sequence == event.sequence  # signed straight away, the event included
    assert verify().ok


def test_removing_the_retired_key_fails_naming_its_key_id(rotated):
    retired = Path(settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE)
    retired.write_text("# emptied\n")
    report = verify()
    assert not report.ok
    first = report.problems[0]
    assert first.kind == "checkpoint" and first.sequence == 3
    assert f"signed by key id {rotated['old_id']}, which is neither the current key nor a retired one" in str(first)
    assert str(retired) in str(first)
    with pytest.raises(SystemExit) as failed:
        run("verify_audit", "--max-checkpoint-age", "0")
    assert failed.value.code == 1


def test_the_retired_keys_setting_works_like_the_file(rotated, settings):
    Path(settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE).unlink()
    assert not verify().ok
    settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS = [rotated["old_public"]]
    assert verify().ok


def test_verify_audit_trusts_exactly_the_keys_it_is_given(rotated):
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("verify_audit", "--max-checkpoint-age", "0", "--public-key", rotated["new_public"], stdout=out)
    assert f"key id {rotated['old_id']}" in out.getvalue() and "--public-key" in out.getvalue()
    both = run("verify_audit", "--max-checkpoint-age", "0",
               "--public-key", rotated["new_public"], "--public-key", rotated["old_public"])
    assert both.startswith("OK: ")


def test_a_tampered_retired_key_entry_fails(rotated):
    retired = Path(settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE)
    original = retired.read_text()
    # Another valid key in its place (someone listing a key of their own): the old checkpoints fail.
    other = signing.public_of_seed_b64(signing.generate_seed_b64())[1]
    retired.write_text(original.replace(rotated["old_public"], other))
    report = verify()
    assert not report.ok and f"key id {rotated['old_id']}" in report.summary()
    # A damaged entry: the list itself is reported, by verify_audit and by check --deploy.
    damaged = rotated["old_public"][:10] + rotated["old_public"][12:]
    retired.write_text(original.replace(rotated["old_public"], damaged))
    report = verify()
    assert not report.ok
    problems = [p for p in report.problems if p.kind == "keys"]
    assert problems and f"{retired} line 2 is not a base64 Ed25519 public key" in str(problems[0])
    warnings = audit_retired_keys_readable(None)
    assert [w.id for w in warnings] == ["promptledger.W021"]
    assert f"{retired} line 2" in warnings[0].msg
    retired.write_text(original)
    assert verify().ok and audit_retired_keys_readable(None) == []


def test_check_deploy_warns_on_an_unreadable_retired_keys_file(file_key, settings, tmp_path):
    settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE = str(tmp_path / "a-directory")
    os.mkdir(settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE)
    warnings = audit_retired_keys_readable(None)
    assert len(warnings) == 1 and "cannot be read" in warnings[0].msg and warnings[0].id == "promptledger.W021"
    settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS = ["not-a-key"]
    assert "PROMPTLEDGER_AUDIT_RETIRED_KEYS entry 1" in audit_retired_keys_readable(None)[1].msg


def _export(path):
    path.write_bytes(b"".join(start_export(actor=Actor.for_system(), format="jsonl", filters={})))
    return path


def _offline(path, *keys):
    pins = [arg for key in keys for arg in ("--public-key", key)]
    # -S: no site-packages at all, so neither Django nor cryptography can be imported.
    return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-S", "-m", "audit.verify", str(path), *pins],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )


def test_an_export_spanning_a_rotation_verifies_offline_with_both_keys_pinned(rotated, tmp_path):
    path = _export(tmp_path / "audit.jsonl")
    manifest = json.loads(path.read_text().splitlines()[-1])
    assert manifest["key_id"] == rotated["new_id"]
    assert manifest["keys"] == {rotated["old_id"]: rotated["old_public"], rotated["new_id"]: rotated["new_public"]}
    both = _offline(path, rotated["new_public"], rotated["old_public"])
    assert both.returncode == 0, both.stdout + both.stderr
    assert both.stdout.startswith("OK: events 1..")
    new_only = _offline(path, rotated["new_public"])
    assert new_only.returncode == 1
    assert f"signed by key id {rotated['old_id']}" in new_only.stdout and "--public-key" in new_only.stdout
    old_only = _offline(path, rotated["old_public"])  # the manifest is the new key's: it fails too
    assert old_only.returncode == 1
    assert f"the manifest is signed by key id {rotated['new_id']}" in old_only.stdout


def test_a_key_swapped_in_the_manifest_of_an_export_fails(rotated, tmp_path):
    path = _export(tmp_path / "audit.jsonl")
    lines = path.read_text().splitlines()
    manifest = json.loads(lines[-1])
    manifest["keys"][rotated["old_id"]] = rotated["new_public"]  # a key listed under another's id
    path.write_text("\n".join([*lines[:-1], json.dumps(manifest)]) + "\n")
    report = verify_file(path)
    assert not report.ok
    assert any(f"lists key id {rotated['old_id']} with a key that is not its own" in str(p) for p in report.problems)


def test_a_long_running_process_signs_with_the_new_key_once_the_file_changes(file_key, make_events):
    make_events(1)
    before = write_checkpoint().key_id
    assert signing.key_id() == before  # cached now
    # Another process (the operator's command) replaces the key file; this one clears nothing.
    replacement = file_key.with_name("replacement")
    replacement.write_text(signing.generate_seed_b64() + "\n")
    os.replace(replacement, file_key)
    after = write_checkpoint().key_id
    assert after != before and after == signing.key_id()


def test_an_env_held_key_is_not_changed_and_the_steps_are_printed(settings, make_events):
    make_events(2)
    write_checkpoint()
    old_id, old_public = signing.key_id(), signing.public_key_b64()
    counts = (AuditEvent.objects.count(), AuditCheckpoint.objects.count())
    env_before = settings.PROMPTLEDGER_AUDIT_SIGNING_KEY
    output = run("audit_rotate_key")
    assert "Nothing was changed" in output
    assert f"PROMPTLEDGER_AUDIT_RETIRED_KEYS={old_public}" in output
    new_seed = re.search(r"PROMPTLEDGER_AUDIT_SIGNING_KEY=(\S+)", output).group(1)
    new_id, new_public = signing.public_of_seed_b64(new_seed)
    assert f"key id will be {new_id}" in output and f"--record-from {old_id}" in output
    signing.private_key.cache_clear()
    assert (AuditEvent.objects.count(), AuditCheckpoint.objects.count()) == counts
    assert signing.key_id() == old_id and settings.PROMPTLEDGER_AUDIT_SIGNING_KEY == env_before
    assert not Path(settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE).exists()

    # Recording before the steps are done is refused: the event never claims a rotation that did not happen.
    with pytest.raises(Exception, match="still the current signing key"):
        run("audit_rotate_key", "--record-from", old_id)
    # The operator follows the steps (new environment, processes restarted) and records the rotation.
    settings.PROMPTLEDGER_AUDIT_SIGNING_KEY = new_seed
    settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS = [old_public]
    recorded = run("audit_rotate_key", "--record-from", old_id)
    assert f"from key id {old_id} to {new_id}" in recorded
    event = AuditEvent.objects.get(action="audit.key_rotated")
    assert (event.data["old_key_id"], event.data["new_key_id"], event.data["key_source"]) == (old_id, new_id, "env")
    assert AuditCheckpoint.objects.order_by("-id").first().key_id == new_id
    assert verify().ok
    assert new_public in run("audit_public_key")


def test_recording_a_rotation_whose_old_key_is_not_retired_is_refused(settings, make_events):
    make_events(1)
    old_id = signing.key_id()
    settings.PROMPTLEDGER_AUDIT_SIGNING_KEY = signing.generate_seed_b64()
    signing.private_key.cache_clear()
    with pytest.raises(Exception, match=f"key id {old_id} is not among the retired keys"):
        run("audit_rotate_key", "--record-from", old_id)
    assert not AuditEvent.objects.filter(action="audit.key_rotated").exists()


def test_a_rotation_with_no_retired_keys_file_changes_nothing(file_key, settings, make_events):
    make_events(1)
    settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE = ""
    before = file_key.read_text()
    with pytest.raises(RotationError, match="nothing was changed"):
        rotate_signing_key(actor=Actor.for_system())
    assert file_key.read_text() == before
    assert not list(file_key.parent.glob(".*.new"))
    assert not AuditEvent.objects.filter(action="audit.key_rotated").exists()


def test_only_admins_and_the_system_may_rotate(file_key, cast):
    from core.errors import PermissionDenied

    before = file_key.read_text()
    with pytest.raises(PermissionDenied):
        rotate_signing_key(actor=Actor(user=cast["compliance"]))
    assert file_key.read_text() == before


def test_audit_public_key_lists_the_retired_keys_and_ends_with_the_current_one(rotated):
    output = run("audit_public_key")
    assert f"key id {rotated['old_id']}: {rotated['old_public']}" in output
    assert "retired" in output.splitlines()[0]
    assert output.split()[-1] == rotated["new_public"]
    assert [key.key_id for key in keyring.load().retired] == [rotated["old_id"]]


def test_the_audit_page_shows_the_signing_keys(rotated, client, cast):
    client.force_login(cast["compliance"])
    body = client.get("/audit/").content.decode()
    assert "Signing keys" in body
    assert rotated["new_id"] in body and rotated["new_public"] in body
    assert rotated["old_id"] in body and rotated["old_public"] in body
    assert (
        f"python -m audit.verify FILE --public-key {rotated['new_public']} --public-key {rotated['old_public']}"
        in body.replace("&#x27;", "'")
    )


def test_a_second_rotation_keeps_both_older_keys(rotated, make_events, tmp_path):
    run("audit_rotate_key")
    make_events(1)
    write_checkpoint()
    third = signing.key_id()
    assert len({rotated["old_id"], rotated["new_id"], third}) == 3
    assert [key.key_id for key in keyring.load().retired] == [rotated["old_id"], rotated["new_id"]]
    assert verify().ok
    path = _export(tmp_path / "audit.jsonl")
    assert set(json.loads(path.read_text().splitlines()[-1])["keys"]) == {rotated["old_id"], rotated["new_id"], third}
    assert verify_file(path).ok
