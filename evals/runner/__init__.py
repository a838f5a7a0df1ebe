"""Running an eval: PostgreSQL holds the truth, the broker only signals.

A worker claims pending items (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) with a short lease that a
heartbeat renews while it runs, runs them concurrently in a rolling window, and writes each result
in the transaction that marks its item done — conditionally on still holding the lease, and under a
unique (run, case) constraint, so a case is written once however often it is claimed. Items whose
lease expired (a killed worker) come back: ``reap`` takes them back, gives their run a worker again
and records it on the run, and closes with an error a case that lost its worker on every one of
``PROMPTLEDGER_EVAL_MAX_CLAIMS`` claims. Cancelling is a flag checked before each call.

One module per concept: ``leasing`` (claiming items, writing results under a lease, the reaper),
``driving`` (``execute``: calling the provider, scoring, batching results) and ``finishing``
(``finalize``, the summary, progress).
"""

from .driving import execute
from .finishing import finalize, progress, summarize
from .leasing import claim, reap, renew, write_result, write_results

__all__ = [
    "claim", "execute", "finalize", "progress", "reap", "renew", "summarize", "write_result", "write_results",
]
