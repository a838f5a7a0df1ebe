"""The approval flow: open a request, decide on it, deploy it, roll back, break glass, sign the
review. Each function checks permission, writes its change and records its audit event in one
transaction; each decision and each deploy takes the request's row lock first, so two approvals
at once are counted once each and two deploys at once deploy once (the other gets 409).

Whether a person may decide and whether a request may deploy is answered by
``approvals.requirements``, checked again inside the deploy's transaction.
"""

from .break_glass import break_glass_rollback
from .decisions import approve, reject, sign_review, withdraw_decision
from .deploys import deploy
from .requests import open_request, open_rollback, open_tier_change, previous_live_version, withdraw_request
from .signatures import Signature, idp_signature, needs_reauth, signature_for

__all__ = [
    "Signature",
    "approve",
    "break_glass_rollback",
    "deploy",
    "idp_signature",
    "needs_reauth",
    "open_request",
    "open_rollback",
    "open_tier_change",
    "previous_live_version",
    "reject",
    "sign_review",
    "signature_for",
    "withdraw_decision",
    "withdraw_request",
]
