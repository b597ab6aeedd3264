"""The coordinator's selection, the stuck check and guarded FSM writes, on both dialects.

None of these paths may call the provider (``LoopProvider.get_asset`` fails the test)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import select

from rindle import Rindle
from rindle.domain.fsm import provider_asset as fsm
from rindle.domain.models import Job, ProviderAsset, utcnow
from rindle.errors import InvalidTransition
from rindle.streaming.jobs import SYNC, sync_unique_key

from .conftest import add_row


def _sync_jobs(app: Rindle) -> list[Job]:
    with app.db.sessionmaker() as s:
        return list(s.execute(select(Job).where(Job.kind == SYNC).order_by(Job.id))
                    .scalars().all())


def test_coordinator_selects_waiting_rows_oldest_first_bounded(make_stream_app: Any) -> None:
    app: Rindle = make_stream_app(provider_polling_batch_size=3,
                                  provider_polling_floor_seconds=30)
    now = utcnow()  # ages and the tick share one instant: no row ages into the floor
    ages = [400, 100, 300, 200, 50]
    waiting = [add_row(app, state="processing" if i % 2 else "uploading",
                       age=dt.timedelta(seconds=a), now=now) for i, a in enumerate(ages)]
    add_row(app, state="processing", age=dt.timedelta(seconds=10), now=now)  # inside the floor
    add_row(app, state="ready", age=dt.timedelta(seconds=900), now=now)
    add_row(app, state="errored", age=dt.timedelta(seconds=900), now=now)
    add_row(app, state="pending", age=dt.timedelta(seconds=900), now=now)
    add_row(app, state="processing", provider_asset_id=None, age=dt.timedelta(seconds=900),
            now=now)
    add_row(app, state="processing", age=dt.timedelta(seconds=900), provider_name="other",
            now=now)
    report = app.streaming.sync_due(now=now)
    assert (report.rows_scanned, report.jobs_enqueued, report.jobs_conflicted) == (3, 3, 0)
    assert report.floor_seconds == {"loop": 30}
    oldest = sorted(waiting, key=lambda r: r.updated_at)[:3]
    jobs = _sync_jobs(app)
    assert [j.args["provider_asset_row_id"] for j in jobs] == [str(r.id) for r in oldest]
    assert all(j.queue == "provider" and j.unique_key == sync_unique_key(
        j.args["provider_asset_row_id"]) for j in jobs)
    # a second tick before the jobs ran enqueues nothing new
    again = app.streaming.sync_due(now=now)
    assert (again.rows_scanned, again.jobs_enqueued, again.jobs_conflicted) == (3, 0, 3)
    assert len(_sync_jobs(app)) == 3
    assert report.to_dict()["rows_scanned"] == 3


def test_rows_without_a_provider_id_are_reaped_once_stuck(stream_app: Rindle) -> None:
    fresh = add_row(stream_app, state="uploading", provider_asset_id=None,
                    age=dt.timedelta(seconds=600))
    stuck = add_row(stream_app, state="uploading", provider_asset_id=None,
                    age=dt.timedelta(hours=3))
    report = stream_app.streaming.sync_due()
    assert report.jobs_enqueued == 1
    assert [j.args["provider_asset_row_id"] for j in _sync_jobs(stream_app)] == [str(stuck.id)]
    assert stream_app.jobs.drain(["provider"]) == 1
    with stream_app.db.sessionmaker() as s:
        states = {r.id: r.state for r in s.execute(select(ProviderAsset)).scalars()}
    assert states == {fresh.id: "uploading", stuck.id: "errored"}


def test_stuck_rows_error_without_calling_the_provider(stream_app: Rindle) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    stream_app.telemetry.attach(lambda e, m, md: events.append((e, md)))
    row = add_row(stream_app, state="uploading", age=dt.timedelta(hours=3))
    result = stream_app.streaming.sync_provider_asset(str(row.id))
    assert (result.outcome, result.state) == ("stuck", "errored")
    assert stream_app.streaming.provider("loop").asked == []  # type: ignore[attr-defined]
    with stream_app.db.sessionmaker() as s:
        fresh = s.get(ProviderAsset, row.id)
        assert fresh is not None
        assert (fresh.state, fresh.last_sync_error) == (
            "errored", "stuck in :uploading past threshold")
    [meta] = [md for e, md in events if e == "rindle.provider.sync.stuck"]
    assert set(meta) == {"profile", "provider", "asset_id", "provider_state", "age_ms",
                         "no_change"}
    assert meta["age_ms"] >= 3 * 3600 * 1000 and meta["asset_id"] == "..." + str(
        row.provider_asset_id)[-4:]


def test_sync_of_missing_or_idless_rows_asks_nobody(stream_app: Rindle) -> None:
    assert stream_app.streaming.sync_provider_asset("no-such-provider-id").outcome == "missing"
    row = add_row(stream_app, state="uploading", provider_asset_id=None)
    assert stream_app.streaming.sync_provider_asset(row.id).outcome == "skipped"


def test_guarded_transition_never_overwrites_a_concurrent_update(stream_app: Rindle) -> None:
    row = add_row(stream_app, state="processing")
    with stream_app.db.transaction() as s:  # the other writer wins
        fsm.transition(s, row.id, "processing", "ready")
    with pytest.raises(InvalidTransition, match="another worker moved it first"), \
            stream_app.db.transaction() as s:
        fsm.transition(s, row.id, "processing", "errored",
                       values={"last_sync_error": "late"})
    with stream_app.db.sessionmaker() as s:
        fresh = s.get(ProviderAsset, row.id)
        assert fresh is not None and (fresh.state, fresh.last_sync_error) == ("ready", None)


def test_racing_writers_exactly_one_wins(stream_app: Rindle) -> None:
    row = add_row(stream_app, state="processing")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def write(target: str) -> None:
        barrier.wait()
        try:
            with stream_app.db.transaction() as s:
                fsm.transition(s, row.id, "processing", target)
            outcomes[target] = "won"
        except InvalidTransition:
            outcomes[target] = "lost"

    threads = [threading.Thread(target=write, args=(t,)) for t in ("ready", "errored")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes.values()) == ["lost", "won"]
    winner = next(t for t, o in outcomes.items() if o == "won")
    with stream_app.db.sessionmaker() as s:
        fresh = s.get(ProviderAsset, row.id)
        assert fresh is not None and fresh.state == winner


def test_fsm_table_is_the_reference_one() -> None:
    assert {k: set(v) for k, v in fsm.allowed_transitions().items()} == {
        "pending": {"uploading", "errored", "deleted"},
        "uploading": {"processing", "errored", "deleted"},
        "processing": {"ready", "errored"},
        "ready": {"errored", "deleted"},
        "errored": {"deleted", "processing"},
        "deleted": set()}
    assert not fsm.can_transition("ready", "ready")
    assert utcnow().tzinfo is not None


@pytest.mark.parametrize("commit", [False, True])
def test_a_bound_sync_reports_after_the_hosts_commit(stream_app: Rindle, commit: bool) -> None:
    from sqlalchemy import create_engine

    events: list[str] = []
    stream_app.telemetry.attach(lambda e, m, md: events.append(e))
    row = add_row(stream_app, state="uploading", age=dt.timedelta(hours=3))
    host = create_engine(stream_app.db.url)
    try:
        with host.connect() as conn:
            with stream_app.db.bind(conn):
                result = stream_app.streaming.sync_provider_asset(str(row.id))
            assert (result.outcome, events) == ("stuck", [])  # nothing said yet
            conn.commit() if commit else conn.rollback()
    finally:
        host.dispose()
    assert events == (["rindle.provider_asset.state_change", "rindle.provider.sync.stuck"]
                      if commit else [])
    with stream_app.db.sessionmaker() as s:
        state = s.scalar(select(ProviderAsset.state).where(ProviderAsset.id == row.id))
    assert state == ("errored" if commit else "uploading")
