"""A FastAPI app embedding rindle: an upload page and a gallery (see README.md)."""

from examples.fastapi_app.app import Photo, create_app

__all__ = ["Photo", "create_app"]
