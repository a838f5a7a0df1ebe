"""``python -m promptledger`` runs the CLI, like the ``promptledger`` console script.

``verify`` is dispatched before the CLI is imported: the verifier needs the standard library alone
(``python -S -m promptledger verify FILE`` works with nothing installed), the other commands need
the client's dependencies."""

import sys

if sys.argv[1:2] == ["verify"]:
    from .verification.command import main as verify

    sys.exit(verify(sys.argv[2:], prog="promptledger verify"))

from .cli import main  # noqa: E402 - after the dependency-free path above

sys.exit(main())
