"""Delivery: URLs for assets and the embedded WSGI app that serves local storage.

``wsgi_app(app)`` serves signed GETs (with ``Range``) and presigned PUTs of local objects;
``content_disposition`` builds the ``Content-Disposition`` header (reference §7.4).
"""

from __future__ import annotations

from rindle.delivery.disposition import content_disposition
from rindle.delivery.wsgi import DeliveryApp, wsgi_app

__all__ = ["DeliveryApp", "content_disposition", "wsgi_app"]
