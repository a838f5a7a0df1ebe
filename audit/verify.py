"""Verify an audit trail offline: ``python -m audit.verify FILE [--public-key KEY ...]`` checks a
JSONL export (the hash chain, the signed checkpoints, the signed manifest) or an evidence pack (a
ZIP: every file against its manifest, the manifest against the signed chain) with the standard
library alone, even under ``python -S`` from the repository root.

The implementation is the SDK's, ``promptledger.verification`` (so ``promptledger verify FILE`` is
the same check); ``manage.py verify_audit`` feeds the same ``Verifier`` from the database. Exit 0
when intact; 1 naming the first bad event or file; 2 when the file cannot be read.
"""

import sys

from promptledger.verification.command import main as _main
from promptledger.verification.pack import verify_pack  # noqa: F401 - re-exported
from promptledger.verification.trail import (  # noqa: F401 - re-exported
    PINNED_HINT,
    Problem,
    Report,
    Verifier,
    key_id_of,
    verify_file,
    verify_lines,
)


def main(argv=None):
    return _main(argv, prog="python -m audit.verify")


if __name__ == "__main__":
    sys.exit(main())
