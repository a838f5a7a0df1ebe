"""Offline verification of Promptledger's audit trail, in the standard library alone: the hash
chain and its canonical JSON (``chain``), Ed25519 signature checks (``ed25519``), a JSONL export's
events, checkpoints and signed manifest (``trail``) and a deploy's evidence pack (``pack``).

This is the one implementation: the server's ``audit.chain``, ``audit.ed25519`` and ``audit.verify``
re-export it, and ``promptledger verify FILE`` and ``python -m audit.verify FILE`` run the same
``command``, so an auditor needs neither the server nor any dependency to check an export or a pack.
Nothing here may import anything outside the standard library (tests run it under ``python -S``).
"""
