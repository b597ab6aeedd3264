"""Seeded catalogues for the Day-2 operation tests."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from rindle import Profile, Rindle, variants
from rindle.domain.models import Asset, Variant
from rindle.ids import uuid7
from tests.apps import MakeApp


class Gallery(Profile):
    name = "gallery"
    variants = {
        "thumb": variants.Image(mode="fill", width=32, height=32, format="webp"),
        "large": variants.Image(mode="fit", width=200),
    }


class Docs(Profile):
    name = "docs"
    variants = {"small": variants.Image(mode="fit", width=50)}


PROFILES = [Gallery, Docs]
#: The same profiles as a rindle.toml ``profiles`` list, for the command-line tests.
CONFTEST_PROFILES = '"tests.ops.conftest:Gallery", "tests.ops.conftest:Docs"'


@pytest.fixture
def opsapp(make_app: MakeApp) -> Rindle:
    return make_app(profiles=PROFILES)


@pytest.fixture
def seed(opsapp: Rindle) -> Callable[..., list[Asset]]:
    """Insert ``n`` assets of ``profile`` with every variant in ``state`` (files written)."""

    def make(n: int, *, profile: type[Profile] = Gallery, state: str = "ready",
             asset_state: str = "ready", digest: str | None = None,
             write_files: bool = True) -> list[Asset]:
        storage = opsapp.storage()
        out = []
        with opsapp.db.transaction() as s:
            for _ in range(n):
                aid = uuid7()
                key = f"{profile.name}/{aid}/orig.jpg"
                asset = Asset(id=aid, profile=profile.name, storage_key=key, state=asset_state,
                              content_type="image/jpeg")
                s.add(asset)
                s.flush()
                if write_files:
                    storage.put(key, io.BytesIO(b"original"))
                for name, _spec in profile.variant_specs():
                    d = digest or profile.recipe_digest(name)
                    vkey = f"{profile.name}/{aid}/{name}-{d}.jpg" if state != "planned" else None
                    s.add(Variant(asset_id=aid, name=name, state=state, recipe_digest=d,
                                  storage_key=vkey))
                    if write_files and vkey:
                        storage.put(vkey, io.BytesIO(b"variant"))
                out.append(asset)
        return out

    return make
