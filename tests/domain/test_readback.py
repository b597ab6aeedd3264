"""Reading attachments back: app.attachment, app.attachments and app.ready_variants each
answer with exactly one SQL statement, variants loaded, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from rindle import Rindle
from rindle.domain.fsm import variant as variant_fsm
from rindle.domain.models import Asset
from rindle.errors import NotFound, UsageError
from tests.domain.attach_kit import statements, uploaded

Who = tuple[str, str]


@pytest.fixture
def app(shared_app: Rindle) -> Rindle:
    return shared_app  # shared database: each test has its own owner


def test_attachment_is_one_statement_with_variants_loaded(app: Rindle, owner: Who) -> None:
    asset = uploaded(app, "thumbed")
    app.attach(asset.id, owner, "avatar")
    with statements(app.db.engine) as sql:
        got = app.attachment(owner, "avatar")
    assert len(sql) == 1 and sql[0].lstrip().upper().startswith("SELECT")
    assert isinstance(got, Asset) and got.id == asset.id and got.state == "ready"
    with statements(app.db.engine) as sql:  # the session is closed: nothing loads lazily
        names = {n: (v.state, v.width) for n, v in got.variants.items()}
    assert names == {"small": ("ready", 8), "tiny": ("ready", 4)} and sql == []


def test_attachment_of_an_empty_slot_is_none(app: Rindle, owner: Who) -> None:
    with statements(app.db.engine) as sql:
        assert app.attachment(owner, "avatar") is None
    assert len(sql) == 1


def test_attachment_of_a_collection_slot_points_to_attachments(app: Rindle, owner: Who) -> None:
    app.attach(uploaded(app).id, owner, "photos", collection=True)
    with pytest.raises(UsageError) as info:
        app.attachment(owner, "photos")
    assert info.value.code == "slot_is_collection"
    assert "app.attachments(owner)[slot]" in info.value.message


def test_attachments_is_one_statement_by_slot_name_and_position(app: Rindle, owner: Who) -> None:
    avatar = uploaded(app, "thumbed")
    photos = [uploaded(app) for _ in range(3)]
    app.attach(avatar.id, owner, "avatar")
    for p in photos:
        app.attach(p.id, owner, "photos", collection=True)
    app.reorder(owner, "photos", [photos[2].id, photos[0].id, photos[1].id])
    neighbour = (owner[0], owner[1] + "8")  # another owner
    app.attach(uploaded(app).id, neighbour, "photos", collection=True)
    app.attach(avatar.id, ("team", owner[1]), "logo")  # same id, other owner type
    with statements(app.db.engine) as sql:
        held = app.attachments(owner)
    assert len(sql) == 1 and sql[0].lstrip().upper().startswith("SELECT")
    assert list(held) == ["avatar", "photos"]
    single, collection = held["avatar"], held["photos"]
    assert isinstance(single, Asset) and single.id == avatar.id
    assert isinstance(collection, list)
    assert [a.id for a in collection] == [photos[2].id, photos[0].id, photos[1].id]
    with statements(app.db.engine) as sql:
        assert sorted(single.variants) == ["small", "tiny"]
        assert [a.variants for a in collection] == [{}, {}, {}]
    assert sql == []


def test_a_one_asset_collection_is_still_a_list(app: Rindle, owner: Who) -> None:
    only = uploaded(app, "gallery")
    app.attach(only.id, owner, "album")  # Gallery.collection = True
    held = app.attachments(owner)
    assert isinstance(held["album"], list) and [a.id for a in held["album"]] == [only.id]


def test_attachments_of_an_owner_with_nothing_is_empty(app: Rindle, owner: Who) -> None:
    with statements(app.db.engine) as sql:
        assert app.attachments(owner) == {}
    assert len(sql) == 1


def test_owner_type_must_be_a_non_empty_string(app: Rindle) -> None:
    for bad in (("", 1), (7, 1)):
        with pytest.raises(UsageError) as info:
            app.attachments(bad)  # type: ignore[arg-type]
        assert info.value.code == "invalid_owner"
        with pytest.raises(UsageError):
            app.attachment(bad, "avatar")  # type: ignore[arg-type]


def test_ready_variants_is_one_statement_and_only_ready_ones(app: Rindle) -> None:
    asset = uploaded(app, "thumbed")
    with statements(app.db.engine) as sql:
        ready = app.ready_variants(asset.id)
    assert len(sql) == 1
    assert list(ready) == ["small", "tiny"]
    assert {v.state for v in ready.values()} == {"ready"}
    assert ready["small"].storage_key and ready["small"].content_type == "image/jpeg"
    with app.db.transaction() as s:
        variant_fsm.transition(s, ready["tiny"].id, "ready", "stale")
    assert list(app.ready_variants(str(asset.id))) == ["small"]


def test_ready_variants_of_an_asset_with_none_ready_is_empty(app: Rindle) -> None:
    waiting = uploaded(app, "thumbed", run=False)  # promote has not run: no variants yet
    assert app.ready_variants(waiting.id) == {}
    plain = uploaded(app)  # no variants declared
    assert app.ready_variants(plain.id) == {}


def test_ready_variants_of_an_unknown_asset_is_not_found(app: Rindle) -> None:
    for bad in (uuid.uuid4(), "not-a-uuid"):
        with statements(app.db.engine) as sql, pytest.raises(NotFound) as info:
            app.ready_variants(bad)
        assert info.value.code == "not_found"
        assert len(sql) == (1 if isinstance(bad, uuid.UUID) else 0)
