"""The hash chain: ``hash = sha256(prev_hash + canonical JSON of the event's fields)``.

One implementation, in the standard library only, shared with the offline verifier and the SDK:
``promptledger.verification.chain``, re-exported here for the app's modules."""

from promptledger.verification.chain import (  # noqa: F401 - re-exported
    CHECKPOINT_FIELDS,
    EVENT_FIELDS,
    GENESIS,
    canonical,
    checkpoint_hash,
    checkpoint_payload,
    event_hash,
    iso,
)
