"""Rotating the audit signing key: a new key signs from now on, the old public key is retired
(listed outside the database, ``audit.keyring``), so older checkpoints and exports still verify.

A file-held key is rotated here, in an order that leaves a working state whatever step fails:
the new seed is written beside the key file first (nothing changed yet), the old public key is
added to the retired keys (harmless while it still signs), then the new file replaces the old one
in one rename. The rotation is then recorded (``audit.key_rotated``) and a checkpoint is signed
with the new key at once. A key held in the environment cannot be changed by a process: the
operator sets it, and records the rotation afterwards (``record_manual_rotation``).
docs/audit-keys.md is the procedure.
"""

import fcntl
import os
from dataclasses import dataclass

from django.utils import timezone

from core import access

from . import events, keyring, signing
from .chain import iso
from .services import write_checkpoint
from .transactions import change


class RotationError(Exception):
    """The rotation cannot go ahead; the message says why and what to do."""


@dataclass
class Rotation:
    old_key_id: str
    old_public_key: str
    new_key_id: str
    new_public_key: str
    retired_file: str
    checkpoint: object  # the first checkpoint signed by the new key


@dataclass
class EnvSteps:
    """What an operator does to rotate a key held in ``PROMPTLEDGER_AUDIT_SIGNING_KEY``."""

    old_key_id: str
    old_public_key: str
    new_seed: str  # secret: printed once for the operator to set
    new_key_id: str
    new_public_key: str
    retired_setting: str  # the new value of PROMPTLEDGER_AUDIT_RETIRED_KEYS


def _write_new_key_file(path, seed_b64):
    """The new seed in a file beside ``path`` (0600, flushed), not yet in its place."""
    temporary = path.with_name(f".{path.name}.new")
    if temporary.exists():
        temporary.unlink()  # left by a rotation that failed before its rename
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(seed_b64 + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return temporary


def _sync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rotate_signing_key(*, actor):
    """Rotate the file-held signing key (see the module's docstring); returns a ``Rotation``.
    Raises ``RotationError`` when the key is held in the environment (``env_rotation_steps``
    says what to do instead) or a file cannot be written, with nothing changed."""
    access.require(actor, "audit.rotate_key")
    if signing.from_env():
        raise RotationError(
            "the signing key is held in PROMPTLEDGER_AUDIT_SIGNING_KEY, which a process cannot change"
        )
    path = signing.key_file()
    old = signing.current()
    lock_path = path.with_name(f".{path.name}.lock")
    with open(os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two operators rotating at once: one after the other
        signing.private_key.cache_clear()
        if signing.current().key_id != old.key_id:
            raise RotationError("the key was rotated by someone else meanwhile; check `manage.py audit_public_key`")
        seed = signing.generate_seed_b64()
        new_key_id, new_public = signing.public_of_seed_b64(seed)
        try:
            temporary = _write_new_key_file(path, seed)
        except OSError as exc:
            raise RotationError(f"cannot write the new key beside {path}: {exc}; nothing was changed") from exc
        try:
            retired = keyring.append_retired(
                old.public_b64, note=f"key id {old.key_id}, retired {iso(timezone.now())} for {new_key_id}"
            )
        except (OSError, ValueError) as exc:
            temporary.unlink(missing_ok=True)
            raise RotationError(f"cannot list the old key as retired: {exc}; nothing was changed") from exc
        os.replace(temporary, path)
        _sync_dir(path.parent)
        signing.private_key.cache_clear()
    if signing.key_id() != new_key_id:
        raise RotationError(f"the key file {path} does not hold the new key after the rotation; check it")
    return Rotation(
        old_key_id=old.key_id,
        old_public_key=old.public_b64,
        new_key_id=new_key_id,
        new_public_key=new_public,
        retired_file=str(retired),
        checkpoint=_record(actor, old.key_id, old.public_b64, key_source="file"),
    )


def _record(actor, old_key_id, old_public_key, *, key_source):
    """The rotation's event, then a checkpoint of the head (that event included) signed by the
    key signing now. No row is locked, so the append cannot deadlock and needs no retry."""
    new = signing.current()
    with change():
        events.audit_key_rotated(
            actor,
            old_key_id=old_key_id,
            new_key_id=new.key_id,
            old_public_key=old_public_key,
            new_public_key=new.public_b64,
            key_source=key_source,
        )
    return write_checkpoint()


def env_rotation_steps():
    """A new seed and the settings an operator changes to rotate an environment-held key.
    Changes nothing."""
    old = signing.current()
    seed = signing.generate_seed_b64()
    new_key_id, new_public = signing.public_of_seed_b64(seed)
    ring = keyring.load()
    listed = [key.public_b64 for key in ring.retired if key.source.startswith("PROMPTLEDGER_AUDIT_RETIRED_KEYS")]
    return EnvSteps(
        old_key_id=old.key_id,
        old_public_key=old.public_b64,
        new_seed=seed,
        new_key_id=new_key_id,
        new_public_key=new_public,
        retired_setting=",".join([*listed, old.public_b64]),
    )


def record_manual_rotation(*, actor, old_key_id):
    """Record a rotation an operator made by hand (an environment-held key, or a file replaced by
    hand) and sign a checkpoint with the new key. The old key must be retired already and differ
    from the current one, so the event never claims a rotation that did not happen."""
    access.require(actor, "audit.rotate_key")
    signing.private_key.cache_clear()
    ring = keyring.load()
    if ring.current.key_id == old_key_id:
        raise RotationError(
            f"key id {old_key_id} is still the current signing key: set the new key and restart first"
        )
    old = next((key for key in ring.retired if key.key_id == old_key_id), None)
    if old is None:
        raise RotationError(
            f"key id {old_key_id} is not among the retired keys: add its public key to "
            f"{keyring.unknown_key_hint()} first, or older checkpoints will not verify"
        )
    source = "env" if signing.from_env() else "file"
    return _record(actor, old.key_id, old.public_b64, key_source=source)
