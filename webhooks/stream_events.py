"""One function per audit event type of the audit stream's configuration, called explicitly by
``webhooks.stream_services`` inside its change. The URL is recorded as scheme and host with a
fingerprint (a path or query may carry a token), the receiver's token never; batches delivered
are not audited (each would be an event to stream: the log would feed itself)."""

import hashlib

from audit.services import record


def stream_state(stream):
    return {
        "name": stream.name,
        "url": stream.display_url,
        "url_sha256": hashlib.sha256(stream.url.encode()).hexdigest()[:16],
        "format": stream.format,
        "sourcetype": stream.sourcetype,
        "batch_size": stream.batch_size,
        "interval_seconds": stream.interval_seconds,
        "active": stream.active,
        "has_token": bool(stream.token),
    }


def stream_created(actor, stream):
    data = {**stream_state(stream), "cursor": stream.cursor}
    return record(actor=actor, action="audit_stream.created", target_type="audit_stream", target_id=stream.pk,
                  data=data)


def stream_updated(actor, stream, *, before, token_changed=False):
    after = stream_state(stream)
    changes = {k: {"before": before[k], "after": after[k]} for k in after if before.get(k) != after[k]}
    return record(actor=actor, action="audit_stream.updated", target_type="audit_stream", target_id=stream.pk,
                  data={"name": stream.name, "changes": changes, "token_replaced": token_changed})


def stream_paused(actor, stream):
    return record(actor=actor, action="audit_stream.paused", target_type="audit_stream", target_id=stream.pk,
                  data={"name": stream.name, "cursor": stream.cursor})


def stream_resumed(actor, stream):
    return record(actor=actor, action="audit_stream.resumed", target_type="audit_stream", target_id=stream.pk,
                  data={"name": stream.name, "cursor": stream.cursor})


# What the audit log calls these actions, and the prefix it offers as one filter choice
# (core.vocabulary; described when the app starts).
LABELS = {
    "audit_stream.created": "Audit stream created",
    "audit_stream.updated": "Audit stream changed",
    "audit_stream.paused": "Audit stream paused",
    "audit_stream.resumed": "Audit stream resumed",
}
GROUPS = {
    "audit_stream.": "Audit streams (SIEM)",
}
