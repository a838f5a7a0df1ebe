"""One verifier, not two: the server's ``audit.chain``, ``audit.ed25519`` and ``audit.verify`` are
the SDK's ``promptledger.verification`` (the same objects), so ``python -m audit.verify`` and
``promptledger verify`` can never disagree."""

from audit import chain as audit_chain
from audit import ed25519 as audit_ed25519
from audit import verify as audit_verify
from promptledger.verification import chain, command, ed25519, pack, trail


def test_the_server_re_exports_the_sdks_verifier():
    assert audit_chain.event_hash is chain.event_hash and audit_chain.canonical is chain.canonical
    assert audit_chain.checkpoint_payload is chain.checkpoint_payload and audit_chain.iso is chain.iso
    assert audit_ed25519.verify is ed25519.verify
    assert audit_verify.Verifier is trail.Verifier and audit_verify.verify_file is trail.verify_file
    assert audit_verify.verify_pack is pack.verify_pack
    assert audit_verify._main is command.main
