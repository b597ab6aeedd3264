"""Asset aggregate recompute (reference §3.1) through the asset FSM, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rindle.database import Database
from rindle.domain.aggregate import decide, recompute
from rindle.domain.fsm import asset as asset_fsm
from rindle.domain.fsm import variant as variant_fsm
from rindle.domain.models import Asset, ProcessingRun, Variant
from rindle.errors import NotFound
from rindle.telemetry import Telemetry

PROFILE = "gallery"

RULES = [
    ([], None),
    (["purged"], None),
    (["purged", "purged"], None),
    (["ready"], "ready"),
    (["ready", "ready", "purged"], "ready"),
    (["ready", "failed"], "degraded"),
    (["cancelled"], "degraded"),
    (["failed", "processing", "planned"], "degraded"),
    (["purged", "cancelled"], "degraded"),
    (["ready", "planned"], "transcoding"),
    (["queued"], "transcoding"),
    (["processing", "ready"], "transcoding"),
    (["stale", "ready"], "transcoding"),
    (["missing"], "transcoding"),
    (["ready", "purged", "stale"], "transcoding"),
]


@pytest.mark.parametrize(("variant_states", "expected"), RULES)
def test_decide_rules(variant_states: list[str], expected: str | None) -> None:
    assert decide(variant_states) == expected
    assert decide(reversed(variant_states)) == expected  # order never matters


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def make_asset(s: Session, state: str, variant_states: list[str]) -> uuid.UUID:
    row = Asset(storage_key=f"{PROFILE}/{uuid.uuid4()}", profile=PROFILE, state=state)
    s.add(row)
    s.flush()
    for i, vstate in enumerate(variant_states):
        s.add(Variant(asset_id=row.id, name=f"v{i}", recipe_digest="a" * 64, state=vstate))
    s.flush()
    return row.id


def asset_state(db: Database, asset_id: uuid.UUID) -> str:
    with db.transaction() as s:
        return s.execute(select(Asset.state).where(Asset.id == asset_id)).scalar_one()


# (asset state before, variant states, expected return, asset state after)
CASES = [
    ("available", ["planned", "planned"], "transcoding", "transcoding"),
    ("available", ["ready"], "ready", "ready"),
    ("available", ["failed"], "degraded", "degraded"),
    ("available", [], None, "available"),
    ("processing", ["ready"], "ready", "ready"),
    ("processing", ["queued"], "transcoding", "transcoding"),
    ("processing", ["cancelled"], "degraded", "degraded"),
    ("transcoding", ["ready", "ready"], "ready", "ready"),
    ("transcoding", ["ready", "failed"], "degraded", "degraded"),
    ("transcoding", ["ready", "processing"], None, "transcoding"),
    ("ready", ["ready", "queued"], "transcoding", "transcoding"),
    ("ready", ["ready", "failed"], "degraded", "degraded"),
    ("ready", ["ready", "purged"], None, "ready"),
    ("degraded", ["ready", "ready"], "ready", "ready"),
    ("degraded", ["ready", "queued"], "transcoding", "transcoding"),
    ("degraded", ["failed"], None, "degraded"),
    ("degraded", ["purged"], None, "degraded"),
    # outside the aggregate states nothing moves, whatever the variants say
    ("staged", ["ready"], None, "staged"),
    ("analyzing", ["ready"], None, "analyzing"),
    ("promoting", ["failed"], None, "promoting"),
    ("quarantined", ["ready"], None, "quarantined"),
    ("deleted", ["failed"], None, "deleted"),
]


def test_recompute_table(db: Database) -> None:
    telemetry, events = Telemetry(), []
    telemetry.attach(lambda name, meas, meta: events.append((name, meta)))
    for before, variants, returned, after in CASES:
        with db.transaction() as s:
            aid = make_asset(s, before, variants)
        events.clear()
        with db.transaction() as s:
            assert recompute(s, aid, telemetry=telemetry) == returned, (before, variants)
        assert asset_state(db, aid) == after, (before, variants)
        if returned is None:
            assert events == []
        else:
            assert events == [("rindle.asset.state_change",
                               {"from": before, "to": after, "profile": PROFILE,
                                "adapter": "unknown"})]


def test_recompute_missing_asset(db: Database) -> None:
    with pytest.raises(NotFound), db.transaction() as s:
        recompute(s, uuid.uuid4())


def test_recompute_sees_variant_changes_in_the_same_transaction(db: Database) -> None:
    with db.transaction() as s:
        aid = make_asset(s, "transcoding", ["processing"])
        vid = s.execute(select(Variant.id).where(Variant.asset_id == aid)).scalar_one()
    with db.transaction() as s:
        variant_fsm.transition(s, vid, "processing", "failed", values={"error_reason": "boom"})
        assert recompute(s, aid) == "degraded"
        variant_fsm.transition(s, vid, "failed", "queued")
        assert recompute(s, aid) == "transcoding"
        variant_fsm.transition(s, vid, "queued", "processing")
        variant_fsm.transition(s, vid, "processing", "ready")
        assert recompute(s, aid) == "ready"
    assert asset_state(db, aid) == "ready"


def test_sibling_variants_finishing_together_leave_the_asset_ready(db: Database) -> None:
    """Two workers each finish one of two variants; the asset lock serialises the recomputes."""
    for _ in range(3):
        with db.transaction() as s:
            aid = make_asset(s, "transcoding", ["processing", "processing"])
            vids = list(s.execute(select(Variant.id).where(Variant.asset_id == aid)).scalars())
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def finish(vid: uuid.UUID, gate: Any = barrier, errs: Any = errors,
                   asset_id: uuid.UUID = aid) -> None:
            try:
                gate.wait()
                with db.transaction() as s:
                    variant_fsm.transition(s, vid, "processing", "ready")
                    recompute(s, asset_id)
            except BaseException as exc:
                errs.append(exc)

        threads = [threading.Thread(target=finish, args=(v,)) for v in vids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert asset_state(db, aid) == "ready"


def test_recomputes_after_child_row_inserts_do_not_deadlock(db: Database) -> None:
    """Two variant jobs of one asset each insert a processing run (a child row: PostgreSQL
    takes FOR KEY SHARE on the asset), then recompute at the same moment. With FOR UPDATE on
    the asset each waited for the other's key-share lock: a deadlock, one job failed and
    retried later (seen in CI). FOR NO KEY UPDATE serialises them without the cycle."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: SQLite serialises writers on one database lock, so two "
                    "transactions cannot both hold a child-row insert open")
    with db.transaction() as s:
        aid = make_asset(s, "transcoding", ["processing", "processing"])
        vids = list(s.execute(select(Variant.id).where(Variant.asset_id == aid)).scalars())
    barrier = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []

    def finish(index: int, vid: uuid.UUID) -> None:
        try:
            with db.transaction() as s:
                s.add(ProcessingRun(asset_id=aid, variant_name=f"v{index}", worker="w",
                                    state="succeeded"))
                s.flush()  # the insert's FOR KEY SHARE on the asset is held from here
                variant_fsm.transition(s, vid, "processing", "ready")
                barrier.wait()  # both hold their key-share lock before either recomputes
                recompute(s, aid)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=finish, args=(i, v)) for i, v in enumerate(vids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert errors == []
    assert asset_state(db, aid) == "ready"


def test_every_recompute_move_is_an_asset_fsm_edge() -> None:
    for src in asset_fsm.AGGREGATE_STATES:
        for states, _ in RULES:
            target = decide(states)
            if target is not None and target != src:
                assert asset_fsm.can_transition(src, target), (src, target)
