"""The canary bucket of a caller's unit id, shared by the server and the client.

The server sends a unit to the canary version when its bucket is under the canary's percentage,
so every unit in one bucket gets the same version: the client caches one answer per bucket
(at most 100 per prompt and environment) instead of one per unit, and stays right because both
sides compute the bucket here.
"""

import hashlib


def canary_bucket(slug, environment, unit):
    """A stable bucket 0..99 for a unit id, so a caller's unit always gets the same side."""
    digest = hashlib.sha256(f"{slug}\x00{environment}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100
