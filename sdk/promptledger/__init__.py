"""Promptledger's client side: a Python client and the ``promptledger`` CLI, distributed as
``promptledger-sdk`` (never ``pip install promptledger``: that name on PyPI is another project's).

It speaks only the REST API, with the standard library (Jinja2 to render, PyYAML for prompt files),
and imports nothing from Django or the server's apps, so an application can depend on it without
the server's code. The server's distribution, ``promptledger-server``, is built with this same
package inside it: the content hash, canary buckets, webhook signatures and template rules the
server uses are these modules.
"""

__version__ = "0.1.0"  # sdk/pyproject.toml reads the distribution's version from here
