"""app.urls(): many assets' URLs in one query, each what app.url() answers.

The gallery test counts the SQL statements the database receives (a SQLAlchemy
``before_cursor_execute`` listener on rindle's engine), not time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from rindle import Rindle
from rindle.clock import ManualClock
from rindle.domain.models import Asset
from rindle.errors import AssetNotReady, NotFound
from rindle.ids import uuid7
from tests.delivery_kit import add_asset

NOW = dt.datetime(2026, 3, 2, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def gallery_app(make_url_app: Callable[..., Rindle]) -> Rindle:
    app = make_url_app()
    app.jobs.clock = ManualClock(NOW)
    return app


@contextmanager
def statements(app: Rindle) -> Iterator[list[str]]:
    """Every SQL statement rindle's engine sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(app.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(app.db.engine, "before_cursor_execute", record)


def test_a_gallery_of_50_assets_with_a_variant_takes_at_most_two_statements(
        gallery_app: Rindle) -> None:
    ids = [add_asset(gallery_app) for _ in range(50)]
    gallery_app.db.check_schema_once()  # the once-per-process schema check is not counted
    with statements(gallery_app) as seen:
        urls = gallery_app.urls(ids, "thumb")
    assert len(seen) <= 2, seen
    assert [s for s in seen if s.lstrip().upper().startswith("SELECT")] == seen[-1:]
    assert list(urls) == ids
    assert all(f"/{aid}/thumb.webp?token=" in urls[aid] for aid in ids)
    assert urls == {aid: gallery_app.url(aid, "thumb") for aid in ids}


def test_asset_objects_with_their_variants_need_no_query(gallery_app: Rindle) -> None:
    assets = [gallery_app.get_asset(add_asset(gallery_app)) for _ in range(5)]
    gallery_app.db.check_schema_once()
    with statements(gallery_app) as seen:
        urls = gallery_app.urls(assets, "thumb")
        originals = gallery_app.urls(assets)
    assert seen == []
    assert urls == {a.id: gallery_app.url(a.id, "thumb") for a in assets}
    assert originals == {a.id: gallery_app.url(a.id) for a in assets}


def test_objects_ids_and_strings_mix_in_the_order_given(gallery_app: Rindle) -> None:
    a, b, c = (add_asset(gallery_app) for _ in range(3))
    loaded = gallery_app.get_asset(b)
    with gallery_app.db.sessionmaker() as s:  # an Asset without its variants loaded
        bare = s.get(Asset, c)
    assert bare is not None
    urls = gallery_app.urls([str(a), loaded, bare, a, c], "thumb")
    assert list(urls) == [a, b, c]  # a duplicate keeps its first place
    assert urls == {x: gallery_app.url(x, "thumb") for x in (a, b, c)}


def test_what_cannot_be_delivered_is_left_out(gallery_app: Rindle) -> None:
    good = add_asset(gallery_app)
    deleted = add_asset(gallery_app, state="deleted")
    staged = add_asset(gallery_app, state="staged", variant_state=None)
    quarantined = add_asset(gallery_app, state="quarantined", variant_state=None)
    urls = gallery_app.urls([good, deleted, staged, quarantined, uuid7(), "not-a-uuid",
                             42],  # type: ignore[list-item]
                            "thumb")
    assert list(urls) == [good]
    with pytest.raises(NotFound):
        gallery_app.url(deleted, "thumb")
    with pytest.raises(AssetNotReady) as err:
        gallery_app.url(staged, "thumb")
    assert err.value.code == "asset_not_ready"


def test_a_variant_not_ready_falls_back_to_the_original_as_url_does(
        gallery_app: Rindle) -> None:
    planned = add_asset(gallery_app, variant_state="planned")
    without = add_asset(gallery_app, variant_state=None)
    urls = gallery_app.urls([planned, without], "thumb")
    assert f"/shot/{planned}.jpg?token=" in urls[planned]
    assert urls == {planned: gallery_app.url(planned, "thumb"),
                    without: gallery_app.url(without, "thumb")}


def test_a_variant_no_profile_declares_is_not_found(gallery_app: Rindle) -> None:
    aid = add_asset(gallery_app)
    with pytest.raises(NotFound) as err:
        gallery_app.urls([aid], "huge")
    assert err.value.code == "not_found" and "huge" in str(err.value)


def test_public_assets_get_plain_urls(gallery_app: Rindle) -> None:
    public = add_asset(gallery_app, profile="poster")
    private = add_asset(gallery_app)
    urls = gallery_app.urls([public, private], "thumb")
    assert urls[public] == gallery_app.url(public, "thumb")
    assert "token=" in urls[private]
    storage = gallery_app.storage()
    assert urls[public] == storage.url(f"poster/{public}/thumb.webp", expires_in=None)


def test_no_assets_no_query(gallery_app: Rindle) -> None:
    gallery_app.db.check_schema_once()
    with statements(gallery_app) as seen:
        assert gallery_app.urls([]) == {}
        assert gallery_app.urls(["nope"]) == {}
    assert seen == []
