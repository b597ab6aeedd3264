"""Attach, replace, detach and purge: the last detach removes every object and row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from rindle import Rindle
from rindle.domain.models import Asset, Variant
from rindle.errors import NotFound
from tests.apps import local_storage
from tests.lifecycle.conftest import jpeg_bytes


def objects_for(app: Rindle, asset_id: object) -> list[Path]:
    root: Path = local_storage(app).root
    return [p for p in root.rglob("*") if p.is_file() and str(asset_id) in str(p)]


def ready_asset(app: Rindle, files: Any, name: str = "a.jpg") -> Asset:
    asset = app.upload("photo", files(name, jpeg_bytes()))
    app.jobs.drain()
    return app.get_asset(asset.id)


def test_detaching_the_last_attachment_purges_everything(photo_app: Rindle, files: Any) -> None:
    asset = ready_asset(photo_app, files)
    assert len(objects_for(photo_app, asset.id)) == 3  # original + 2 variants
    photo_app.attach(asset.id, ("user", 42), "avatar")
    assert photo_app.detach(("user", "42"), "avatar") is True
    assert photo_app.get_asset(asset.id).state == "deleted"
    photo_app.jobs.drain()
    with pytest.raises(NotFound):
        photo_app.get_asset(asset.id)
    assert objects_for(photo_app, asset.id) == []
    with photo_app.db.sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Variant)) == 0
    assert photo_app.detach(("user", "42"), "avatar") is False  # idempotent


def test_shared_assets_survive_until_the_last_owner_lets_go(photo_app: Rindle,
                                                            files: Any) -> None:
    asset = ready_asset(photo_app, files)
    photo_app.attach(asset.id, ("user", 1), "avatar")
    photo_app.attach(asset.id, ("team", 9), "logo")
    photo_app.detach(("user", 1), "avatar")
    photo_app.jobs.drain()
    assert photo_app.get_asset(asset.id).state == "ready"
    photo_app.detach(("team", 9), "logo")
    photo_app.jobs.drain()
    with pytest.raises(NotFound):
        photo_app.get_asset(asset.id)


def test_replacing_a_slot_releases_the_old_asset(photo_app: Rindle, files: Any) -> None:
    first = ready_asset(photo_app, files, "1.jpg")
    second = ready_asset(photo_app, files, "2.jpg")
    photo_app.attach(first.id, ("user", 7), "avatar")
    same = photo_app.attach(first.id, ("user", 7), "avatar")
    assert same.asset_id == first.id
    photo_app.attach(second.id, ("user", 7), "avatar")
    photo_app.jobs.drain()
    with pytest.raises(NotFound):
        photo_app.get_asset(first.id)
    assert photo_app.get_asset(second.id).state == "ready"


def test_deleted_assets_cannot_be_attached_or_delivered(photo_app: Rindle, files: Any) -> None:
    asset = ready_asset(photo_app, files)
    photo_app.attach(asset.id, ("user", 1), "avatar")
    photo_app.detach(("user", 1), "avatar")
    from rindle.errors import InvalidTransition

    with pytest.raises(InvalidTransition):
        photo_app.attach(asset.id, ("user", 2), "avatar")
    with pytest.raises(NotFound):
        photo_app.url(asset.id)
