"""Guarded FSM persistence on SQLite and PostgreSQL: unit cases, races, telemetry, hypothesis.

Each hypothesis state machine drives one real row through random transitions and checks
that the database always holds the model's state, and only states reachable from the
initial one.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from rindle.database import Database
from rindle.domain.fsm import MACHINES, StateMachine, asset, provider_asset, variant
from rindle.domain.models import Asset, ProviderAsset, UploadSession, Variant, utcnow
from rindle.errors import InvalidTransition, NotFound
from rindle.ids import uuid7
from rindle.telemetry import Telemetry

PROFILE = "avatar"
Events = list[tuple[str, dict[str, Any], dict[str, Any]]]


def new_asset(s: Session, state: str = "staged") -> uuid.UUID:
    row = Asset(storage_key=f"{PROFILE}/{uuid.uuid4()}", profile=PROFILE, state=state)
    s.add(row)
    s.flush()
    return row.id


def new_variant(s: Session, state: str = "planned") -> uuid.UUID:
    row = Variant(asset_id=new_asset(s, "available"), name="thumb", recipe_digest="0" * 64,
                  state=state)
    s.add(row)
    s.flush()
    return row.id


def new_upload_session(s: Session, state: str = "initialized") -> uuid.UUID:
    row = UploadSession(asset_id=new_asset(s), upload_key=f"up/{uuid.uuid4()}", state=state,
                        expires_at=utcnow() + timedelta(hours=1))
    s.add(row)
    s.flush()
    return row.id


def new_provider_asset(s: Session, state: str = "pending") -> uuid.UUID:
    row = ProviderAsset(asset_id=new_asset(s, "ready"), profile=PROFILE, provider_name="mux",
                        state=state)
    s.add(row)
    s.flush()
    return row.id


FACTORIES: dict[str, Callable[[Session, str], uuid.UUID]] = {
    "asset": new_asset,
    "variant": new_variant,
    "upload_session": new_upload_session,
    "provider_asset": new_provider_asset,
}


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def recorded() -> tuple[Telemetry, Events]:
    telemetry, events = Telemetry(), []
    telemetry.attach(lambda name, meas, meta: events.append((name, meas, meta)))
    return telemetry, events


def state_of(db: Database, fsm: StateMachine, row_id: uuid.UUID) -> str | None:
    with db.transaction() as s:
        return s.execute(select(fsm.table.c.state).where(fsm.table.c.id == row_id)).scalar()


class _Rollback(Exception):
    pass


# --- guarded persistence -----------------------------------------------------------------


def test_transition_writes_state_values_and_loaded_object(db: Database) -> None:
    with db.transaction() as s:
        vid = new_variant(s, "processing")
        loaded = s.get(Variant, vid)
        assert loaded is not None
        before = loaded.updated_at
        result = variant.transition(s, vid, "processing", "failed",
                                    values={"error_reason": "unsupported_codec"})
        assert (result.entity, result.row_id, result.from_state, result.to_state) == (
            "variant", vid, "processing", "failed")
        assert result.metadata["profile"] == PROFILE
        assert (loaded.state, loaded.error_reason) == ("failed", "unsupported_codec")
        assert loaded.updated_at >= before
    with db.transaction() as s:
        row = s.get(Variant, vid)
        assert row is not None
        assert (row.state, row.error_reason) == ("failed", "unsupported_codec")


def test_row_inserted_in_the_same_unflushed_session_can_transition(db: Database) -> None:
    with db.transaction() as s:
        row = Asset(id=uuid7(), storage_key=f"k/{uuid.uuid4()}", profile=PROFILE)
        s.add(row)  # no flush: transition() flushes before its UPDATE
        asset.transition(s, row.id, "staged", "validating")
        assert row.state == "validating"
    assert state_of(db, asset.MACHINE, row.id) == "validating"


def test_illegal_edge_issues_no_update(db: Database) -> None:
    with db.transaction() as s:
        aid = new_asset(s, "staged")
    statements: list[str] = []
    listener = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        with pytest.raises(InvalidTransition) as info, db.transaction() as s:
            asset.transition(s, aid, "staged", "ready")
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert (info.value.from_state, info.value.to_state) == ("staged", "ready")
    assert not [sql for sql in statements if sql.lstrip().upper().startswith("UPDATE")]
    assert state_of(db, asset.MACHINE, aid) == "staged"


def test_wrong_from_state_never_overwrites(db: Database, recorded: Any) -> None:
    telemetry, events = recorded
    with db.transaction() as s:
        aid = new_asset(s, "transcoding")
    with pytest.raises(InvalidTransition) as info, db.transaction() as s:
        asset.transition(s, aid, "available", "processing", telemetry=telemetry)
    err = info.value
    assert (err.entity, err.from_state, err.to_state) == ("asset", "available", "processing")
    assert "it is now 'transcoding'" in str(err)
    assert state_of(db, asset.MACHINE, aid) == "transcoding"
    assert events == []


def test_missing_row(db: Database) -> None:
    ghost = uuid.uuid4()
    with pytest.raises(InvalidTransition, match="no such row"), db.transaction() as s:
        variant.transition(s, ghost, "planned", "queued")
    with pytest.raises(NotFound), db.transaction() as s:
        variant.transition_from_current(s, ghost, "queued")


def test_transition_from_current(db: Database) -> None:
    with db.transaction() as s:
        pid = new_provider_asset(s, "uploading")
    with db.transaction() as s:
        result = provider_asset.transition_from_current(
            s, pid, "errored", values={"last_sync_error": "mux asset not found"})
        assert result.from_state == "uploading"
        assert result.metadata["provider"] == "mux"
    with pytest.raises(InvalidTransition) as info, db.transaction() as s:
        provider_asset.transition_from_current(s, pid, "uploading")
    assert (info.value.from_state, info.value.to_state) == ("errored", "uploading")
    with db.transaction() as s:
        row = s.get(ProviderAsset, pid)
        assert row is not None
        assert (row.state, row.last_sync_error) == ("errored", "mux asset not found")


@pytest.mark.parametrize("values", [{"state": "ready"}, {"id": None}, {"nope": 1}])
def test_reserved_or_unknown_columns_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="cannot set"):
        asset.MACHINE._row_values("ready", values)


# --- telemetry ---------------------------------------------------------------------------


def test_committed_transition_emits_exactly_one_event(db: Database, recorded: Any) -> None:
    telemetry, events = recorded
    with db.transaction() as s:
        pid = new_provider_asset(s, "pending")
    with db.transaction() as s:
        provider_asset.transition(s, pid, "pending", "uploading", telemetry=telemetry)
        assert events == [], "emitted before commit"
    assert len(events) == 1
    name, meas, meta = events[0]
    assert name == "rindle.provider_asset.state_change"
    assert isinstance(meas["system_time"], int)
    assert meta == {"from": "pending", "to": "uploading", "profile": PROFILE, "provider": "mux",
                    "adapter": "unknown"}


def test_rolled_back_transaction_emits_nothing(db: Database, recorded: Any) -> None:
    telemetry, events = recorded
    with db.transaction() as s:
        aid = new_asset(s, "staged")
    with pytest.raises(_Rollback), db.transaction() as s:
        asset.transition(s, aid, "staged", "validating", telemetry=telemetry)
        raise _Rollback
    s = db.sessionmaker()
    asset.transition(s, aid, "staged", "validating", telemetry=telemetry)
    s.close()  # ends the transaction without commit
    assert events == []
    assert state_of(db, asset.MACHINE, aid) == "staged"


def test_savepoint_rollback_discards_only_its_events(db: Database, recorded: Any) -> None:
    telemetry, events = recorded
    with db.transaction() as s:
        vid = new_variant(s, "planned")
    with db.transaction() as s:
        variant.transition(s, vid, "planned", "queued", telemetry=telemetry, profile="explicit")
        with pytest.raises(_Rollback), s.begin_nested():
            variant.transition(s, vid, "queued", "processing", telemetry=telemetry)
            raise _Rollback
        with s.begin_nested():
            variant.transition(s, vid, "queued", "cancelled", telemetry=telemetry)
        assert events == []
    assert [(m["from"], m["to"], m["profile"]) for _, _, m in events] == [
        ("planned", "queued", "explicit"), ("queued", "cancelled", PROFILE)]
    assert state_of(db, variant.MACHINE, vid) == "cancelled"


# --- races ---------------------------------------------------------------------------------


def run_together(*calls: Callable[[], object]) -> list[BaseException | None]:
    """Run ``calls`` in threads released by one barrier; each one's exception, or None."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[BaseException | None] = [None] * len(calls)

    def run(i: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def move_asset(db: Database, row_id: uuid.UUID, src: str, dst: str) -> None:
    with db.transaction() as s:
        asset.transition(s, row_id, src, dst)


def test_two_workers_race_for_the_same_edge(db: Database) -> None:
    targets = ("processing", "transcoding")
    for _ in range(3):
        with db.transaction() as s:
            aid = new_asset(s, "available")
        outcomes = run_together(*(partial(move_asset, db, aid, "available", t) for t in targets))
        winners = [t for t, exc in zip(targets, outcomes, strict=True) if exc is None]
        losers = [exc for exc in outcomes if exc is not None]
        assert len(winners) == 1 and len(losers) == 1, outcomes
        assert isinstance(losers[0], InvalidTransition)
        assert (losers[0].from_state, losers[0].to_state) == (
            "available", next(t for t in targets if t != winners[0]))
        assert f"it is now {winners[0]!r}" in str(losers[0])
        assert state_of(db, asset.MACHINE, aid) == winners[0]


# --- hypothesis: one state machine per FSM, on the real database ---------------------------


def machine_for(fsm: StateMachine, db: Database) -> type[RuleBasedStateMachine]:
    states = [*sorted(fsm.states), "bogus"]
    create = FACTORIES[fsm.entity]

    class FsmMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.events: Events = []
            self.telemetry = Telemetry()
            self.telemetry.attach(lambda n, m, md: self.events.append((n, m, md)))
            with db.transaction() as s:
                self.row_id = create(s, fsm.initial)
            self.state = fsm.initial
            self.reachable = fsm.reachable(fsm.initial)

        def attempt(self, src: str, dst: str, *, current: bool = False,
                    rollback: bool = False) -> bool:
            seen = len(self.events)
            try:
                with db.transaction() as s:
                    if current:
                        fsm.transition_from_current(s, self.row_id, dst, telemetry=self.telemetry)
                    else:
                        fsm.transition(s, self.row_id, src, dst, telemetry=self.telemetry)
                    if rollback:
                        raise _Rollback
            except InvalidTransition as err:
                assert (err.entity, err.from_state, err.to_state) == (fsm.entity, src, dst)
                assert len(self.events) == seen
                return False
            except _Rollback:
                assert len(self.events) == seen
                return True
            assert len(self.events) == seen + 1
            name, _, meta = self.events[-1]
            assert name == fsm.event
            assert (meta["from"], meta["to"], meta["profile"]) == (src, dst, PROFILE)
            self.state = dst
            return True

        @rule(dst=st.sampled_from(states))
        def random_target(self, dst: str) -> None:
            expected = fsm.can_transition(self.state, dst)
            assert self.attempt(self.state, dst) == expected

        @precondition(lambda self: bool(fsm.allowed(self.state)))
        @rule(data=st.data())
        def allowed_target(self, data: st.DataObject) -> None:
            dst = data.draw(st.sampled_from(sorted(fsm.allowed(self.state))))
            assert self.attempt(self.state, dst)

        @rule(data=st.data(), dst=st.sampled_from(states))
        def stale_from_state(self, data: st.DataObject, dst: str) -> None:
            src = data.draw(st.sampled_from([x for x in states if x != self.state]))
            assert not self.attempt(src, dst)  # not an edge, or the guard finds the row moved

        @rule(dst=st.sampled_from(states))
        def from_current(self, dst: str) -> None:
            expected = fsm.can_transition(self.state, dst)
            assert self.attempt(self.state, dst, current=True) == expected

        @rule(dst=st.sampled_from(states))
        def rolled_back(self, dst: str) -> None:
            before = self.state
            self.attempt(self.state, dst, rollback=True)
            assert self.state == before

        @invariant()
        def row_holds_model_state(self) -> None:
            actual = state_of(db, fsm, self.row_id)
            assert actual == self.state
            assert actual in self.reachable

    FsmMachine.__name__ = f"{fsm.entity.title().replace('_', '')}Machine"
    return FsmMachine


@pytest.mark.parametrize("entity", sorted(MACHINES))
def test_fsm_state_machine_against_database(db: Database, entity: str) -> None:
    run_state_machine_as_test(
        machine_for(MACHINES[entity], db),
        settings=settings(max_examples=25, stateful_step_count=15, deadline=None,
                          database=None),
    )
