"""Profiles and promoted-asset rows for the URL tests (app.url, app.urls, the authorizer)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rindle import Delivery, Profile, Rindle, variants
from rindle.domain.models import Asset, Variant
from rindle.ids import uuid7
from tests.domain.attach_kit import module_db_url

__all__ = ["URL_PROFILES", "Brief", "Poster", "Shot", "add_asset", "make_url_app",
           "module_db_url"]


class Shot(Profile):
    """Private, with one image variant; the app's default TTL."""

    name = "shot"
    allow_mime = ("image/jpeg",)
    variants = {"thumb": variants.Image(mode="fill", width=64, height=64, format="webp")}
    delivery = Delivery(public=False)


class Poster(Profile):
    """Public, with one image variant."""

    name = "poster"
    allow_mime = ("image/jpeg",)
    variants = {"thumb": variants.Image(mode="fit", width=32, format="webp")}
    delivery = Delivery(public=True)


class Brief(Profile):
    """Private, no variants, a 60-second TTL."""

    name = "brief"
    allow_mime = ("image/jpeg",)
    delivery = Delivery(public=False, signed_url_ttl=60)


URL_PROFILES = [Shot, Poster, Brief]


def add_asset(app: Rindle, profile: str = "shot", *, state: str = "ready",
              variant_state: str | None = "ready") -> uuid.UUID:
    """Record an asset as promotion leaves it (original ``<profile>/<id>.jpg``) and, unless
    ``variant_state`` is None, its ``thumb`` row (``<profile>/<id>/thumb.webp`` when
    ready)."""
    aid = uuid7()
    with app.db.transaction() as s:
        s.add(Asset(id=aid, state=state, storage_key=f"{profile}/{aid}.jpg", profile=profile,
                    content_type="image/jpeg"))
        s.flush()
        if variant_state is not None:
            s.add(Variant(asset_id=aid, name="thumb", state=variant_state, recipe_digest="d",
                          storage_key=f"{profile}/{aid}/thumb.webp"
                          if variant_state == "ready" else None,
                          content_type="image/webp"))
    return aid


@pytest.fixture
def make_url_app(module_db_url: str, tmp_path: Path) -> Iterator[Callable[..., Rindle]]:
    """Factory: a :class:`Rindle` with :data:`URL_PROFILES` on the module's shared database
    (one per dialect; tests keep apart by using only the assets they add); keyword options
    override. Closed after the test."""
    apps: list[Rindle] = []

    def factory(**options: Any) -> Rindle:
        opts: dict[str, Any] = {
            "database_url": module_db_url, "secret_key": "test-secret",
            "profiles": URL_PROFILES, "tmp_dir": str(tmp_path / "tmp"),
            "storages": {"default": {"backend": "local", "root": str(tmp_path / "media")}},
            "load_entrypoints": False}
        opts.update(options)
        app = Rindle(**opts)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.close()
