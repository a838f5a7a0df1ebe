"""Promptledger's client side: a Python client and the ``promptledger`` CLI.

It speaks only the REST API, with the standard library, and imports nothing from Django or the
server's apps, so an application can depend on it without the server's code.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("promptledger")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
