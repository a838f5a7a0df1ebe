"""The verifier's command line, shared by ``python -m audit.verify FILE`` (the server's checkout) and
``promptledger verify FILE`` (the SDK): a JSONL audit export or an evidence pack (ZIP), checked with
the standard library alone. Exit 0 when intact; 1 naming the first problem (the event, or the file
of a pack); 2 when the file cannot be read.

It always says which keys the verdict rests on, and warns when none was pinned with
``--public-key``: the keys a file lists itself prove it consistent, not who signed it.
"""

import argparse
import sys

from .pack import is_pack, verify_pack
from .trail import verify_file

NOT_PINNED = (
    "WARNING: no --public-key was given, so the keys the file lists itself were trusted: this proves the file "
    "is consistent, not that your Promptledger server signed it. Pin the server's key (`manage.py "
    "audit_public_key` prints it) with --public-key KEY."
)


def add_arguments(parser):
    parser.add_argument("file", help="a JSONL export of the audit trail, or an evidence pack (.zip)")
    parser.add_argument(
        "--public-key",
        action="append",
        help="base64 Ed25519 public key to trust; give it once per key when the file spans a key rotation "
        "(default: the keys the file lists; pass your own copies to rule out a re-signed file)",
    )
    parser.add_argument(
        "--stream-copy",
        action="store_true",
        help="the file is a SIEM's copy from an audit stream: event lines without a manifest (docs/siem.md)",
    )


def run(path, public_keys, *, stream_copy=False, out=None, err=None):
    """Verify ``path`` and print the verdict; returns the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        pack = is_pack(path)
        report = (
            verify_pack(path, public_key=public_keys) if pack
            else verify_file(path, public_key=public_keys, stream_copy=stream_copy)
        )
    except OSError as exc:
        print(f"cannot read {path}: {exc}", file=err)
        return 2
    except (KeyError, TypeError, AttributeError) as exc:  # a line of the right JSON but the wrong shape
        print(f"BROKEN at changed: a record of {path} is malformed ({exc!r})", file=out)
        if not public_keys:
            print(NOT_PINNED, file=err)
        return 1
    print(report.summary(), file=out)
    for problem in report.problems[1:]:
        print(f"  also: {problem}", file=out)
    how = "pinned with --public-key" if report.pinned else "listed in the file itself, NOT pinned"
    for key_id, public_key in sorted(report.trusted_keys.items()):
        print(f"trusted key id {key_id} ({how}): {public_key}", file=out)
    if not report.trusted_keys:
        print("trusted no key: the file lists none, so no signature was checked", file=out)
    if not report.pinned:
        print(NOT_PINNED, file=err)
    return 0 if report.ok else 1


def main(argv=None, *, prog="python -m audit.verify"):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args.file, args.public_key, stream_copy=args.stream_copy)
