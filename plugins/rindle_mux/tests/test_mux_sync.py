"""The per-row sync worker against the loopback Mux, case by case (seed
mux-sync-provider-asset.md), and the coordinator that fans it out, on both dialects."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from muxkit import ASSET_ID, PLAYBACK_ID, FakeMux, add_row, fixture, reload
from sqlalchemy import select

from rindle import Rindle
from rindle.domain.models import Job
from rindle.errors import ProviderSyncFailed
from rindle.streaming.jobs import SYNC

METADATA_KEYS = {"profile", "provider", "asset_id", "provider_state", "age_ms", "no_change"}
Events = list[tuple[str, dict[str, Any], dict[str, Any]]]


def _sync_events(events: Events) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [e for e in events if e[0].startswith("rindle.provider.sync.")]


def test_stuck_row_is_errored_without_calling_mux(mux_app: Rindle, mux: FakeMux,
                                                 events: Events) -> None:
    row = add_row(mux_app, state="processing", age=dt.timedelta(seconds=7300))
    result = mux_app.streaming.sync_provider_asset(row.id)
    assert (result.outcome, result.state) == ("stuck", "errored")
    assert mux.requests == []  # the provider was never asked
    fresh = reload(mux_app, row)
    assert fresh.state == "errored"
    assert fresh.last_sync_error == "stuck in :processing past threshold"
    [(name, meas, meta)] = _sync_events(events)
    assert name == "rindle.provider.sync.stuck"
    assert set(meta) == METADATA_KEYS
    assert meta["provider_state"] == "errored" and meta["no_change"] is False
    assert meta["asset_id"] == "...QrSt" and meta["profile"] == "clip"
    assert meta["provider"] == "mux" and isinstance(meas["system_time"], int)
    # age_ms is measured before the write: past the threshold, not ~0
    assert isinstance(meta["age_ms"], int) and meta["age_ms"] > 7200 * 1000


def test_threshold_is_strictly_greater_and_configurable(make_mux_app: Any, mux: FakeMux
                                                        ) -> None:
    app = make_mux_app(provider_stuck_threshold_seconds=60)
    mux.assets[ASSET_ID] = fixture("asset_get_processing")
    row = add_row(app, state="processing", age=dt.timedelta(seconds=0))
    at_threshold = reload(app, row).updated_at + dt.timedelta(seconds=60)
    assert app.streaming.sync_provider_asset(row.id, now=at_threshold).outcome == "resolved"
    past = at_threshold + dt.timedelta(seconds=1)  # both measured from the row, not a clock
    result = app.streaming.sync_provider_asset(row.id, now=past)
    assert result.outcome == "stuck"
    assert reload(app, row).last_sync_error == "stuck in :processing past threshold"


def test_resolved_with_a_transition_persists_state_and_playback_ids(
        mux_app: Rindle, mux: FakeMux, events: Events) -> None:
    mux.assets[ASSET_ID] = fixture("asset_get_ready")
    row = add_row(mux_app, state="processing", age=dt.timedelta(seconds=300))
    result = mux_app.streaming.sync_provider_asset(row.id)
    assert (result.outcome, result.state, result.no_change) == ("resolved", "ready", False)
    fresh = reload(mux_app, row)
    assert fresh.state == "ready" and fresh.playback_ids == [PLAYBACK_ID]
    assert fresh.updated_at > row.updated_at
    [(name, _, meta)] = _sync_events(events)
    assert name == "rindle.provider.sync.resolved"
    assert set(meta) == METADATA_KEYS
    assert meta == {"profile": "clip", "provider": "mux", "asset_id": "...QrSt",
                    "provider_state": "ready", "age_ms": meta["age_ms"], "no_change": False}
    assert 300_000 <= meta["age_ms"] < 3_600_000  # the pre-update age
    [call] = mux.calls("GET")
    assert call.path == f"/video/v1/assets/{ASSET_ID}"
    # the state change also went through the FSM (its own event)
    assert any(e[0] == "rindle.provider_asset.state_change" and e[2]["to"] == "ready"
               for e in events)


def test_resolved_without_change_writes_nothing(mux_app: Rindle, mux: FakeMux,
                                                events: Events) -> None:
    mux.assets[ASSET_ID] = fixture("asset_get_processing")  # preparing -> processing
    row = add_row(mux_app, state="processing", age=dt.timedelta(seconds=900),
                  playback_ids=["old-id"])
    result = mux_app.streaming.sync_provider_asset(row.id)
    assert (result.outcome, result.no_change) == ("resolved", True)
    fresh = reload(mux_app, row)
    assert fresh.updated_at == row.updated_at  # no write at all
    assert fresh.playback_ids == ["old-id"]  # not refreshed on no_change
    [(name, _, meta)] = _sync_events(events)
    assert name == "rindle.provider.sync.resolved" and set(meta) == METADATA_KEYS
    assert meta["no_change"] is True and meta["provider_state"] == "processing"
    assert meta["age_ms"] >= 900_000  # time since the last real change: keeps growing
    again = mux_app.streaming.sync_provider_asset(row.id)
    assert again.age_ms is not None and result.age_ms is not None
    assert again.age_ms >= result.age_ms


def test_mux_404_errors_the_row_and_emits_resolved(mux_app: Rindle, mux: FakeMux,
                                                   events: Events) -> None:
    row = add_row(mux_app, state="processing")
    result = mux_app.streaming.sync_provider_asset(ASSET_ID)  # the provider id works too
    assert (result.outcome, result.state) == ("resolved", "errored")
    fresh = reload(mux_app, row)
    assert fresh.state == "errored" and fresh.last_sync_error == "mux asset not found"
    [(name, _, meta)] = _sync_events(events)
    assert name == "rindle.provider.sync.resolved" and set(meta) == METADATA_KEYS
    assert meta["provider_state"] == "errored" and meta["no_change"] is False


def test_unreachable_live_state_reconciles_to_errored(mux_app: Rindle, mux: FakeMux) -> None:
    mux.assets[ASSET_ID] = dict(fixture("asset_get_ready"), status="weird_new_status")
    row = add_row(mux_app, state="processing")
    assert mux_app.streaming.sync_provider_asset(row.id).state == "errored"
    assert reload(mux_app, row).last_sync_error == "live state  not reachable from processing"


def test_live_errored_keeps_the_mux_message(mux_app: Rindle, mux: FakeMux) -> None:
    mux.assets[ASSET_ID] = fixture("asset_get_errored")
    row = add_row(mux_app, state="processing")
    mux_app.streaming.sync_provider_asset(row.id)
    assert reload(mux_app, row).last_sync_error == (
        "input_error: Failed to fetch input from signed URL")


def test_other_errors_leave_a_breadcrumb_and_propagate(mux_app: Rindle, mux: FakeMux,
                                                       events: Events) -> None:
    row = add_row(mux_app, state="processing")
    for _ in range(4):  # 1 try + 3 retries, all 503
        mux.then("GET", f"/video/v1/assets/{ASSET_ID}", 503, {"error": {}})
    with pytest.raises(ProviderSyncFailed) as info:
        mux_app.streaming.sync_provider_asset(row.id)
    assert info.value.status == 503 and ASSET_ID not in str(info.value)
    fresh = reload(mux_app, row)
    assert fresh.state == "processing"
    assert fresh.last_sync_error == "provider_unavailable: mux get asset failed: HTTP 503"
    assert _sync_events(events) == []
    assert len(mux.calls("GET")) == 4


def test_retry_after_429_then_success(mux_app: Rindle, mux: FakeMux) -> None:
    mux.assets[ASSET_ID] = fixture("asset_get_ready")
    mux.then("GET", f"/video/v1/assets/{ASSET_ID}", 429, {"error": {}}, {"Retry-After": "1"})
    row = add_row(mux_app, state="processing")
    assert mux_app.streaming.sync_provider_asset(row.id).state == "ready"
    assert len(mux.calls("GET")) == 2


def test_concurrent_update_is_never_overwritten(mux_app: Rindle, mux: FakeMux,
                                                events: Events) -> None:
    """The row moves (a webhook won) between the sync's read and its write: the guarded
    UPDATE matches nothing, the newer state stays, and no resolved event claims otherwise."""
    from rindle.domain.fsm import provider_asset as fsm

    mux.assets[ASSET_ID] = fixture("asset_get_errored")
    row = add_row(mux_app, state="processing")
    original = mux_app.streaming.provider("mux").get_asset

    def racing_get(provider_asset_id: str) -> Any:
        live = original(provider_asset_id)
        with mux_app.db.transaction() as s:  # the concurrent writer
            fsm.transition(s, row.id, "processing", "ready")
        return live

    provider = mux_app.streaming.provider("mux")
    provider.get_asset = racing_get  # type: ignore[method-assign]
    result = mux_app.streaming.sync_provider_asset(row.id)
    assert result.outcome == "raced"
    assert reload(mux_app, row).state == "ready"
    assert _sync_events(events) == []


def test_sync_job_runs_through_the_queue(mux_app: Rindle, mux: FakeMux) -> None:
    mux.assets[ASSET_ID] = fixture("asset_get_ready")
    row = add_row(mux_app, state="processing")
    report = mux_app.streaming.sync_due()
    assert (report.rows_scanned, report.jobs_enqueued) == (1, 1)
    with mux_app.db.sessionmaker() as s:
        [job] = s.execute(select(Job).where(Job.kind == SYNC)).scalars().all()
    assert job.queue == "provider" and job.args == {"provider_asset_row_id": str(row.id)}
    assert ASSET_ID not in str(job.args) and ASSET_ID not in (job.unique_key or "")
    assert mux_app.jobs.drain(["provider"]) == 1
    assert reload(mux_app, row).state == "ready"
