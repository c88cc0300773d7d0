"""WSGI entry point."""

from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Import every view now, then move everything loaded so far out of the garbage collector's
# sight: its full collections otherwise walk the whole of Django at every turn while ingest
# allocates a few hundred thousand short-lived objects per request. That was a fifth of the
# CPU of an OTLP request (bench/otlp_stages.py --no-freeze shows it).
get_resolver().url_patterns  # noqa: B018
gc.freeze()
