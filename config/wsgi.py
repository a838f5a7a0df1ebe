"""WSGI entry point (gunicorn ``config.wsgi:application``).

Garbage collection is tuned for a threaded server: the modules, URLconf and settings loaded here
live as long as the process, so ``gc.freeze()`` moves them out of the collector's sight, and the
first generation is collected every 50,000 allocations rather than 700. A full collection stops
every thread of the worker; with the defaults those pauses were the slowest 1 % of requests
(bench/load.py: write p99 670 ms before, 470 ms after, at 16 clients; docs/concurrency.md).
"""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from config.resolve_path import ResolveFromMemory  # noqa: E402 - needs the settings configured above

# Bearer resolves this process can answer from memory are answered ahead of Django's handler
# (docs/resolve-cache.md); every other request goes to Django.
application = ResolveFromMemory(django_application)
get_resolver().url_patterns  # noqa: B018 - import every view now, before the freeze
gc.freeze()
gc.set_threshold(50_000, 20, 100)
