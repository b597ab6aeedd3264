"""Delivery: URLs for assets and the embedded web app that serves local storage.

``wsgi_app(app)`` (WSGI) and ``asgi_app(app)`` (native ASGI 3) serve signed GETs (with
``Range``) and presigned PUTs of local objects;
``content_disposition`` builds the ``Content-Disposition`` header.

The names load on first use (PEP 562): importing a light submodule such as
``rindle.delivery.headers`` (as ``rindle serve`` does at CLI startup) must not pull in the
WSGI app, the ORM and SQLAlchemy, or ``rindle --help`` slows down.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rindle.delivery.asgi import DeliveryASGIApp, asgi_app
    from rindle.delivery.disposition import content_disposition
    from rindle.delivery.wsgi import DeliveryApp, wsgi_app

_LAZY: dict[str, str] = {
    "DeliveryASGIApp": "rindle.delivery.asgi",
    "DeliveryApp": "rindle.delivery.wsgi",
    "asgi_app": "rindle.delivery.asgi",
    "content_disposition": "rindle.delivery.disposition",
    "wsgi_app": "rindle.delivery.wsgi",
}

__all__ = ["DeliveryASGIApp", "DeliveryApp", "asgi_app", "content_disposition", "wsgi_app"]

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name not in _LAZY:
            raise AttributeError(f"module 'rindle.delivery' has no attribute {name!r}")
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))
