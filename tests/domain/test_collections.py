"""Collection slots: ordered lists of assets with positions 0..n-1, on SQLite and
PostgreSQL. Inserting, moving, reordering, detaching (with the purge semantics of a single
slot), the errors and their codes, the slot lock under concurrency and the migration."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError

from rindle import Rindle
from rindle.database import Database
from rindle.domain.models import Asset, Attachment, Job
from rindle.errors import NotFound, UsageError
from rindle.testing.postgres import TempPostgres
from tests.apps import MakeApp
from tests.domain.attach_kit import PROFILES, stored

Who = tuple[str, str]


@pytest.fixture
def app(shared_app: Rindle) -> Rindle:
    return shared_app


def rows(app: Rindle, owner: Who, slot: str = "photos") -> list[tuple[uuid.UUID, int, bool]]:
    """(asset_id, position, collection) of the owner's slot, in position order."""
    with app.db.sessionmaker() as s:
        return [(r.asset_id, r.position, r.collection) for r in s.scalars(
            select(Attachment).where(Attachment.owner_type == owner[0],
                                     Attachment.owner_id == owner[1], Attachment.slot == slot)
            .order_by(Attachment.position))]


def order(app: Rindle, owner: Who, slot: str = "photos") -> list[uuid.UUID]:
    held = app.attachments(owner).get(slot, [])
    assert isinstance(held, list)
    return [a.id for a in held]


def code_of(call: Callable[[], object]) -> str:
    with pytest.raises(UsageError) as info:
        call()
    return info.value.code


@pytest.fixture
def three(app: Rindle, owner: Who) -> list[uuid.UUID]:
    """Three assets appended to the collection ``photos`` (positions 0, 1, 2)."""
    ids = [stored(app).id for _ in range(3)]
    for i, aid in enumerate(ids):
        row = app.attach(aid, owner, "photos", collection=True)
        assert (row.position, row.collection) == (i, True)
    return ids


# --- inserting ------------------------------------------------------------------------------

def test_appending_keeps_insertion_order(app: Rindle, owner: Who, three: list[uuid.UUID]) -> None:
    assert order(app, owner) == three
    assert [(p, c) for _, p, c in rows(app, owner)] == [(0, True), (1, True), (2, True)]


def fill(app: Rindle, owner: Who, slot: str, n: int) -> list[uuid.UUID]:
    """``n`` fresh assets appended to the owner's collection ``slot``."""
    ids = [stored(app).id for _ in range(n)]
    for aid in ids:
        app.attach(aid, owner, slot, collection=True)
    return ids


def test_insert_at_a_position_moves_the_rest_down(app: Rindle, owner: Who) -> None:
    for position, expected in [(0, [9, 0, 1, 2]), (1, [0, 9, 1, 2]), (2, [0, 1, 9, 2]),
                               (3, [0, 1, 2, 9])]:
        slot = f"photos{position}"
        three = fill(app, owner, slot, 3)
        new = stored(app).id
        row = app.attach(new, owner, slot, position=position)
        assert row.position == position
        by_index = {**dict(enumerate(three)), 9: new}
        assert order(app, owner, slot) == [by_index[i] for i in expected]
        assert [p for _, p, _ in rows(app, owner, slot)] == [0, 1, 2, 3]


def test_a_position_past_the_end_or_negative_is_refused(app: Rindle, owner: Who,
                                                        three: list[uuid.UUID]) -> None:
    new = stored(app).id  # len is 3: 3 appends, 4 (len + 1) is one past the limit
    for position in (4, -1, 10**6):
        with pytest.raises(UsageError) as info:
            app.attach(new, owner, "photos", position=position)
        assert info.value.code == "position_out_of_range"
        assert info.value.message == (
            f"position {position} is outside 0..3 for collection 'photos'; use 0..3 "
            "(3 appends, as leaving position out does)")
    assert order(app, owner) == three


def test_position_into_an_empty_collection(app: Rindle, owner: Who) -> None:
    first, second = stored(app).id, stored(app).id
    assert code_of(lambda: app.attach(first, owner, "photos", position=1,
                                      collection=True)) == "position_out_of_range"
    assert app.attach(first, owner, "photos", position=0, collection=True).position == 0
    assert app.attach(second, owner, "photos", position=1).position == 1  # slot says many


def test_a_position_must_be_an_int(app: Rindle, owner: Who, three: list[uuid.UUID]) -> None:
    new = stored(app).id
    for bad in (True, 1.0, "1"):
        with pytest.raises(UsageError) as info:
            app.attach(new, owner, "photos", position=bad)  # type: ignore[arg-type]
        assert info.value.code == "invalid_position"
    assert order(app, owner) == three


def test_reattaching_a_member_keeps_one_row_or_moves_it(app: Rindle, owner: Who,
                                                       three: list[uuid.UUID]) -> None:
    again = app.attach(three[1], owner, "photos")
    assert again.position == 1 and order(app, owner) == three
    moved = app.attach(three[2], owner, "photos", position=0)
    assert moved.position == 0 and order(app, owner) == [three[2], three[0], three[1]]
    with pytest.raises(UsageError) as info:  # a move has n - 1 as its last place
        app.attach(three[0], owner, "photos", position=3)
    assert info.value.code == "position_out_of_range"
    assert "outside 0..2" in info.value.message and "moves within it" in info.value.message
    assert len(rows(app, owner)) == 3


# --- single or collection -----------------------------------------------------------------

def test_profile_collection_makes_an_empty_slot_a_collection(app: Rindle, owner: Who) -> None:
    a, b = stored(app, "gallery").id, stored(app, "gallery").id
    app.attach(a, owner, "album")
    app.attach(b, owner, "album")
    assert order(app, owner, "album") == [a, b]
    single = stored(app, "gallery").id  # collection=False wins on an empty slot
    assert app.attach(single, owner, "cover", collection=False).collection is False
    cover = app.attachments(owner)["cover"]
    assert isinstance(cover, Asset) and cover.id == single


def test_the_slot_kind_once_set_must_be_respected(
        app: Rindle, owner: Who, three: list[uuid.UUID]) -> None:
    single, other = stored(app).id, stored(app).id
    app.attach(single, owner, "avatar")
    assert code_of(lambda: app.attach(other, owner, "photos", collection=False)
                   ) == "slot_is_collection"
    assert code_of(lambda: app.attach(other, owner, "avatar", collection=True)
                   ) == "slot_is_single"
    assert code_of(lambda: app.attach(other, owner, "avatar", position=0)) == "not_a_collection"
    # leaving collection out follows what the slot holds, whatever the profile says
    gallery = stored(app, "gallery").id
    assert app.attach(gallery, owner, "avatar").collection is False
    assert app.attachment(owner, "avatar").id == gallery  # type: ignore[union-attr]
    assert order(app, owner) == three


def test_single_slots_still_replace_and_release(app: Rindle, owner: Who) -> None:
    first, second = stored(app).id, stored(app).id
    app.attach(first, owner, "avatar")
    row = app.attach(second, owner, "avatar")
    assert (row.position, row.collection) == (0, False)
    assert app.get_asset(first).state == "deleted"
    assert rows(app, owner, "avatar") == [(second, 0, False)]


# --- reorder -------------------------------------------------------------------------------

def test_reorder_writes_the_given_permutation(
        app: Rindle, owner: Who, three: list[uuid.UUID]) -> None:
    wanted = [three[2], three[0], three[1]]
    got = app.reorder(owner, "photos", [str(wanted[0]), wanted[1], wanted[2]])
    assert [(r.asset_id, r.position) for r in got] == [(a, i) for i, a in enumerate(wanted)]
    assert order(app, owner) == wanted
    assert [r.asset_id for r in app.reorder(owner, "photos", wanted)] == wanted  # no-op


def test_reorder_refuses_anything_but_a_permutation(app: Rindle, owner: Who,
                                                    three: list[uuid.UUID]) -> None:
    stranger = stored(app).id
    cases: dict[str, list[uuid.UUID | str]] = {
        "missing": [three[1], three[0]],
        "extra": [three[2], three[1], three[0], stranger],
        "duplicate": [three[2], three[2], three[0]],
        "empty": [],
    }
    messages = {}
    for case, ids in cases.items():
        with pytest.raises(UsageError) as info:
            app.reorder(owner, "photos", ids)
        assert info.value.code == "not_a_permutation"
        messages[case] = info.value.message
    assert f"missing: {three[2]}; not in the slot: -; repeated: -." in messages["missing"]
    assert f"not in the slot: {stranger};" in messages["extra"]
    assert (f"missing: {three[1]}; not in the slot: -; repeated: {three[2]}."
            in messages["duplicate"])
    assert "needs each of its 3 asset(s) exactly once" in messages["empty"]
    assert order(app, owner) == three  # nothing changed


def test_reorder_of_a_single_or_empty_slot(app: Rindle, owner: Who) -> None:
    single = stored(app).id
    app.attach(single, owner, "avatar")
    assert code_of(lambda: app.reorder(owner, "avatar", [single])) == "not_a_collection"
    assert app.reorder(owner, "nothing", []) == []
    assert code_of(lambda: app.reorder(owner, "nothing", [single])) == "not_a_permutation"
    with pytest.raises(NotFound):
        app.reorder(owner, "nothing", ["not-a-uuid"])


# --- detach --------------------------------------------------------------------------------

def test_detach_from_a_collection_needs_the_asset(
        app: Rindle, owner: Who, three: list[uuid.UUID]) -> None:
    with pytest.raises(UsageError) as info:
        app.detach(owner, "photos")
    assert info.value.code == "asset_id_required"
    assert "app.detach(owner, slot, asset_id)" in info.value.message
    assert app.detach(owner, "photos", stored(app).id) is False  # not a member
    assert order(app, owner) == three


def test_detach_closes_the_gap_and_purges_what_no_one_holds(app: Rindle, owner: Who,
                                                            three: list[uuid.UUID]) -> None:
    app.attach(three[0], ("team", 1), "logo")  # three[0] is held elsewhere too
    assert app.detach(owner, "photos", three[1]) is True
    assert [(a, p) for a, p, _ in rows(app, owner)] == [(three[0], 0), (three[2], 1)]
    assert app.get_asset(three[1]).state == "deleted"
    with app.db.sessionmaker() as s:
        purge = s.scalars(select(Job).where(Job.unique_key == f"purge:{three[1]}")).all()
    assert [(j.kind, j.state) for j in purge] == [("rindle.purge", "available")]
    assert app.detach(owner, "photos", three[0]) is True
    assert app.get_asset(three[0]).state == "available"  # the team still holds it
    assert app.detach(owner, "photos", str(three[2])) is True
    assert rows(app, owner) == [] and "photos" not in app.attachments(owner)
    app.jobs.drain()
    for gone in (three[1], three[2]):
        with pytest.raises(NotFound):
            app.get_asset(gone)
    assert app.get_asset(three[0]).state == "available"


def test_detach_of_a_single_slot_with_an_asset_id_only_takes_that_asset(
        app: Rindle, owner: Who) -> None:
    held, other = stored(app).id, stored(app).id
    app.attach(held, owner, "avatar")
    assert app.detach(owner, "avatar", other) is False
    assert app.attachment(owner, "avatar").id == held  # type: ignore[union-attr]
    assert app.detach(owner, "avatar", held) is True
    assert app.detach(owner, "avatar") is False


# --- the schema and concurrency -------------------------------------------------------------

def test_the_unique_indexes_refuse_a_shared_position_or_a_repeated_asset(
        app: Rindle, owner: Who, three: list[uuid.UUID]) -> None:
    for clash in ({"asset_id": stored(app).id, "position": 1},
                  {"asset_id": three[0], "position": 3}):
        with pytest.raises(IntegrityError), app.db.transaction() as s:
            s.add(Attachment(owner_type=owner[0], owner_id=owner[1], slot="photos",
                             collection=True, **clash))
    assert order(app, owner) == three


def test_racing_attaches_get_distinct_positions(app: Rindle, owner: Who) -> None:
    ids = [stored(app).id for _ in range(6)]
    errors: list[BaseException] = []

    def attach(aid: uuid.UUID) -> None:
        try:
            app.attach(aid, owner, "photos", collection=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attach, args=(aid,)) for aid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(order(app, owner)) == sorted(ids)
    assert [p for _, p, _ in rows(app, owner)] == [0, 1, 2, 3, 4, 5]


@pytest.fixture
def pg_app(pg_server: TempPostgres, tmp_path: Path) -> Iterator[Rindle]:
    name = f"coll_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = pg_server.create_database(name, template="rindle_template")
    app = Rindle(database_url=url, secret_key="test-secret", profiles=PROFILES,
                 storages={"default": {"backend": "local", "root": str(tmp_path / "m")}},
                 tmp_dir=str(tmp_path / "tmp"), load_entrypoints=False)
    yield app
    app.close()
    pg_server.drop_database(name)


def test_postgresql_second_attach_waits_for_the_first_on_the_slot_lock(
        pg_app: Rindle, owner: Who) -> None:
    app = pg_app
    first, second = stored(app).id, stored(app).id
    locked, proceed = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def hold(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if "pg_advisory_xact_lock" in sql and threading.current_thread().name == "first":
            locked.set()
            assert proceed.wait(30)

    def attach(aid: uuid.UUID) -> None:
        try:
            results[threading.current_thread().name] = app.attach(aid, owner, "photos",
                                                                  collection=True)
        except BaseException as exc:
            results[threading.current_thread().name] = exc

    event.listen(app.db.engine, "after_cursor_execute", hold)
    a = threading.Thread(target=attach, args=(first,), name="first")
    b = threading.Thread(target=attach, args=(second,), name="second")
    try:
        a.start()
        assert locked.wait(30)  # the first holds the slot lock, its transaction open
        b.start()
        deadline = time.monotonic() + 30
        with app.db.engine.connect() as probe:  # the second is queued on that lock
            while not probe.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND NOT granted")).scalar():
                assert time.monotonic() < deadline, "the second attach never waited"
                probe.rollback()
        proceed.set()
        a.join(30)
        b.join(30)
    finally:
        proceed.set()
        event.remove(app.db.engine, "after_cursor_execute", hold)
    assert [type(results[n]).__name__ for n in ("first", "second")] == ["Attachment"] * 2
    assert (results["first"].position, results["second"].position) == (0, 1)
    assert order(app, owner) == [first, second]


def test_migration_adds_positions_and_refuses_to_downgrade_a_crowded_slot(
        make_app: MakeApp, db_url: str, owner: Who) -> None:
    app = make_app(profiles=PROFILES)
    for _ in range(3):
        app.attach(stored(app).id, owner, "photos", collection=True)
    single = stored(app).id
    app.attach(single, owner, "avatar")
    app.close()
    db = Database(db_url)
    with pytest.raises(RuntimeError, match="2 attachment"):
        db.downgrade("0004")
    assert db.current_revision() == db.head_revision()
    with db.engine.begin() as conn:  # leave one asset per slot, at position 0
        conn.execute(text("DELETE FROM media_attachments WHERE position > 0"))
    db.downgrade("0004")
    with db.engine.connect() as conn:
        columns = [r[1] for r in conn.execute(text(
            "SELECT 0, column_name FROM information_schema.columns WHERE table_name = "
            "'media_attachments'" if db.dialect_name == "postgresql"
            else "SELECT 0, name FROM pragma_table_info('media_attachments')"))]
    assert "position" not in columns and "collection" not in columns
    db.migrate()
    with db.engine.connect() as conn:
        got = sorted((r.slot, r.position, bool(r.collection)) for r in conn.execute(text(
            "SELECT slot, position, collection FROM media_attachments")))
    assert got == [("avatar", 0, False), ("photos", 0, False)]
    with db.engine.connect() as conn:
        assert conn.execute(select(Asset.id).where(Asset.id == single)).scalar() == single
    db.dispose()


def test_profile_collection_must_be_a_bool() -> None:
    from rindle import Profile
    from rindle.errors import ProfileError

    with pytest.raises(ProfileError) as info:
        class Album(Profile):
            name = "album"
            collection = "yes"  # type: ignore[assignment]
    assert info.value.key == "collection"
    assert "collection must be True or False, got 'yes'" in str(info.value)
