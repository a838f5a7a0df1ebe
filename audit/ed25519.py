"""Ed25519 signature verification in pure Python: ``promptledger.verification.ed25519``, the one
implementation (shared with the SDK's ``promptledger verify``), re-exported for the app."""

from promptledger.verification.ed25519 import verify  # noqa: F401 - re-exported
