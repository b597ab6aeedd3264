"""``verify-storage`` on S3 checks each live asset's original and its variants from the same
key-range listing: every stored object is listed once by the real moto server, not once per
walk (SQLite and PostgreSQL, moto over HTTP)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from tests.apps import MakeApp

from rindle import Profile, Rindle, variants
from rindle.domain.models import Asset, Variant, utcnow
from rindle.ids import uuid7
from rindle.ops.verify_storage import verify_storage
from rindle_s3 import S3Storage

DIGEST = "ab" * 32


class Shelf(Profile):
    name = "shelf"
    variants = {"thumb": variants.Image(mode="fill", width=32, height=32, format="webp"),
                "wide": variants.Image(mode="fit", width=64, height=64, format="webp")}


class Requests:
    """What the server answered to each ``ListObjectsV2`` and ``HeadObject`` of a client."""

    def __init__(self, storage: S3Storage) -> None:
        self.listed: Counter[str] = Counter()  # S3 key -> listings that held it
        self.max_keys: list[int] = []  # the MaxKeys of each listing answer, in order
        self.heads = 0
        events = storage.client.meta.events
        events.register("after-call.s3.ListObjectsV2", self._listing)
        events.register("after-call.s3.HeadObject", self._head)

    def _listing(self, parsed: dict[str, Any], **_: Any) -> None:
        self.max_keys.append(int(parsed["MaxKeys"]))
        self.listed.update(obj["Key"] for obj in parsed.get("Contents", []))

    def _head(self, **_: Any) -> None:
        self.heads += 1


class Catalogue:
    """Asset and variant rows inserted as given, and the objects put for those stored."""

    def __init__(self, app: Rindle) -> None:
        self.app = app
        self.storage: S3Storage = app.storage("default")  # type: ignore[assignment]
        self.stored: list[str] = []
        self.variant_ids: dict[str, Any] = {}
        self.asset_ids: dict[str, Any] = {}

    def asset(self, name: str, state: str = "ready", *, original: bool = True,
              **variant_states: tuple[str, bool]) -> None:
        """Asset ``name`` (ids in call order); each variant is ``(state, object stored)``."""
        now, aid = utcnow(), uuid7()
        self.asset_ids[name] = aid
        key = f"shelf/{aid}/o.jpg"
        rows = []
        for variant, (vstate, stored) in variant_states.items():
            vkey = f"shelf/{aid}/{variant}-{DIGEST}.webp"
            vid = uuid7()
            self.variant_ids[f"{name}.{variant}"] = vid
            rows.append({"id": vid, "asset_id": aid, "name": variant, "state": vstate,
                         "recipe_digest": DIGEST, "storage_key": vkey, "output_kind": "image",
                         "inserted_at": now, "updated_at": now})
            if stored:
                self.put(vkey)
        with self.app.db.engine.begin() as conn:
            conn.execute(insert(Asset), [{
                "id": aid, "state": state, "storage_key": key, "profile": "shelf",
                "kind": "image", "metadata": {}, "inserted_at": now, "updated_at": now}])
            if rows:
                conn.execute(insert(Variant), rows)
        if original:
            self.put(key)

    def put(self, key: str) -> None:
        self.storage.client.put_object(Bucket=self.storage.bucket, Key=key, Body=b"x")
        self.stored.append(key)

    def variant_state(self, name: str) -> tuple[str, str | None]:
        with self.app.db.engine.connect() as conn:
            row = conn.execute(select(Variant.state, Variant.error_reason).where(
                Variant.id == self.variant_ids[name])).one()
        return row[0], row[1]


@pytest.fixture
def shelf(make_app: MakeApp, s3_settings: dict[str, str]) -> Catalogue:
    """Seven live assets: one available with no variant rows yet (a6, made first, so first
    in key order), then six ready with a thumb and a wide variant (a2's wide failed with
    its object left behind, a3's thumb object gone, a4's original gone)."""
    app = make_app(profiles=[Shelf], storages={"default": s3_settings}, load_entrypoints=True)
    shelf = Catalogue(app)
    shelf.asset("a6", "available")
    ok = ("ready", True)
    for i in range(6):
        shelf.asset(f"a{i}", original=i != 4, thumb=("ready", i != 3),
                    wide=("failed", True) if i == 2 else ok)
    return shelf


def test_each_object_is_listed_once_for_originals_and_variants_together(
        shelf: Catalogue) -> None:
    seen = Requests(shelf.storage)
    report = verify_storage(shelf.app.ops.app, batch_size=3)
    assert (report.checked, report.present, report.missing, report.errors,
            report.fsm_blocked) == (11, 10, 1, 0, 0)
    assert (report.originals_checked, report.originals_missing) == (7, 1)
    assert shelf.variant_state("a3.thumb") == ("missing", "storage_object_missing")
    assert shelf.variant_state("a2.wide") == ("failed", None)
    # pages: [a6] (available), [a0 a1 a2], [a3 a4 a5] (ready); one request each, asking
    # for one object per key the page checks. a2's left-behind wide object lies past the
    # second page's last key: never listed. Every other stored object: exactly once (the
    # third page asks for 9 with 2 of them gone; nothing is stored past a5 to overshoot to)
    assert seen.max_keys == [1, 8, 9]
    left_behind = f"shelf/{shelf.asset_ids['a2']}/wide-{DIGEST}.webp"
    assert left_behind in shelf.stored
    assert seen.listed == Counter({key: 1 for key in shelf.stored if key != left_behind})
    assert seen.heads == 0


def test_a_variant_only_pass_lists_its_range_at_the_density_it_finds(
        shelf: Catalogue) -> None:
    seen = Requests(shelf.storage)
    report = shelf.app.ops.verify_storage(variant="wide")
    assert (report.checked, report.present, report.missing, report.errors) == (5, 5, 0, 0)
    assert report.originals_checked == 0
    # 5 wide keys from a0 to a5: the first request asks for 5 objects and passes 2 of
    # them; at that density the 3 left need 8 more, then 1 more: 4
    assert seen.max_keys == [5, 8, 4]
    assert max(seen.listed.values()) == 1 and seen.heads == 0


def test_ready_variants_of_assets_that_are_not_live_are_still_checked(
        make_app: MakeApp, s3_settings: dict[str, str]) -> None:
    app = make_app(profiles=[Shelf], storages={"default": s3_settings}, load_entrypoints=True)
    shelf = Catalogue(app)
    shelf.asset("r", thumb=("ready", True), wide=("ready", True))
    shelf.asset("p", "processing", thumb=("ready", True), wide=("ready", False))
    shelf.asset("q", "degraded", thumb=("ready", True), wide=("failed", False))
    shelf.asset("z", "quarantined", original=False)
    seen = Requests(shelf.storage)
    report = app.ops.verify_storage()
    # originals: only r's (live); variants: r's two, p's two, q's thumb
    assert (report.checked, report.present, report.missing, report.errors) == (5, 4, 1, 0)
    assert (report.originals_checked, report.originals_missing) == (1, 0)
    assert shelf.variant_state("p.wide") == ("missing", "storage_object_missing")
    assert shelf.variant_state("p.thumb") == ("ready", None)
    # r's page (3 keys), then the other assets' variants: p.thumb .. q.thumb
    assert seen.max_keys == [3, 3] and seen.heads == 0


def test_every_query_of_the_single_walk_is_an_index_search_without_statistics(
        shelf: Catalogue, dialect: str) -> None:
    """SQLite without ``ANALYZE`` picked the state index for the page's variant lookup
    while it named ``state = 'ready'``: every page scanned every ready variant. Each query
    of the pass must search an index, never scan a table or sort."""
    if dialect != "sqlite":
        pytest.skip("PostgreSQL plans by cost from statistics; SQLite's plan is the one "
                    "that went wrong without them")
    statements: dict[str, Any] = {}

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "media_variants" in statement or "media_assets" in statement:
            statements.setdefault(statement, parameters)

    engine = shelf.app.db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        verify_storage(shelf.app.ops.app, batch_size=3)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    with engine.connect() as conn:
        assert not conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'").all()
        plans = {sql: " | ".join(row[-1] for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + sql, params).all())
            for sql, params in statements.items() if sql.lstrip().startswith("SELECT")}
    lookup = {plan for sql, plan in plans.items() if "media_variants.asset_id IN" in sql}
    assert lookup == {"SEARCH media_variants USING INDEX uq_media_variants_asset_id_name "
                      "(asset_id=? AND name=?)"}
    for sql, plan in plans.items():
        assert "SEARCH" in plan and "SCAN" not in plan and "TEMP B-TREE" not in plan, \
            f"{plan}\n{sql}"
