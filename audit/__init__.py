"""The append-only, hash-chained audit log. Importing this package must not import Django:
``python -m audit.verify FILE`` runs with the standard library alone.

Its offline verification is the SDK's package (``promptledger.verification``), which the server's
distribution ships. Run from a checkout where it is not installed (``python -S``, no site-packages),
the checkout's own ``sdk/`` folder is where it is found."""

import importlib.util
import os
import sys

if importlib.util.find_spec("promptledger") is None:
    _SDK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sdk")
    if os.path.isdir(_SDK):
        sys.path.append(_SDK)
