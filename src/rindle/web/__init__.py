"""Browser-facing web surfaces, each a WSGI and a native ASGI app mountable under a prefix.

* :mod:`rindle.web.upload_api`: the upload JSON API (direct uploads, shaped for Uppy's
  ``@uppy/aws-s3``): ``upload_api_wsgi(app, authorize=...)`` / ``upload_api_asgi``.
* :mod:`rindle.web.tus`: a tus 1.0.0 server: ``tus_wsgi(app, authorize=...)`` /
  ``tus_asgi``.
* :mod:`rindle.web.events`: live progress, a Server-Sent Events stream of state changes
  for the assets a subscribe token (``app.subscribe_token``) names: ``events_wsgi(app)`` /
  ``events_asgi``.

The upload API and the tus server bind every session to the actor the host's
``authorize(request, profile)`` returns (:mod:`rindle.web.auth`). Cross-origin browsers
need CORS answers from the host (wrap the app in its CORS middleware); the tus server
already lists its headers in ``Access-Control-Expose-Headers``. The names load on first
use (PEP 562).
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rindle.web.events import asgi_app as events_asgi
    from rindle.web.events import wsgi_app as events_wsgi
    from rindle.web.tus import asgi_app as tus_asgi
    from rindle.web.tus import wsgi_app as tus_wsgi
    from rindle.web.upload_api import asgi_app as upload_api_asgi
    from rindle.web.upload_api import wsgi_app as upload_api_wsgi

_LAZY: dict[str, tuple[str, str]] = {
    "events_asgi": ("rindle.web.events", "asgi_app"),
    "events_wsgi": ("rindle.web.events", "wsgi_app"),
    "tus_asgi": ("rindle.web.tus", "asgi_app"),
    "tus_wsgi": ("rindle.web.tus", "wsgi_app"),
    "upload_api_asgi": ("rindle.web.upload_api", "asgi_app"),
    "upload_api_wsgi": ("rindle.web.upload_api", "wsgi_app"),
}

__all__ = ["events_asgi", "events_wsgi", "tus_asgi", "tus_wsgi", "upload_api_asgi",
           "upload_api_wsgi"]

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name not in _LAZY:
            raise AttributeError(f"module 'rindle.web' has no attribute {name!r}")
        module, attr = _LAZY[name]
        value = getattr(_importlib.import_module(module), attr)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))
