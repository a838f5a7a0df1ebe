"""Evidence packs: everything an auditor needs about one deploy in one ZIP, checked offline.
``builder.build_evidence_pack`` is the service; ``sections`` reads what goes in it."""
