"""app.cancel_processing: queued, executing and retry-pending variant jobs are cancelled,
their variants move to ``cancelled`` through the FSM, a running job never brings its
variant back, and the telemetry goes out after commit. SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rindle import Rindle, hookimpl
from rindle.domain.models import Job, ProcessingRun, Variant
from rindle.errors import NotFound
from rindle.processing.cancel import CancelledProcessing
from rindle.processing.variants import _orphaned
from tests.domain.attach_kit import uploaded


@pytest.fixture
def app(shared_app: Rindle) -> Rindle:
    # a database shared by the module: every test leaves no live job behind, and each
    # reads only its own asset's rows
    return shared_app


def variant_rows(app: Rindle, asset_id: uuid.UUID) -> dict[str, tuple[str, str | None]]:
    with app.db.sessionmaker() as s:
        return {v.name: (v.state, v.error_reason) for v in s.scalars(
            select(Variant).where(Variant.asset_id == asset_id))}


def job_states(app: Rindle, asset_id: uuid.UUID) -> dict[str, str]:
    with app.db.sessionmaker() as s:
        return {j.args["variant"]: j.state for j in s.scalars(
            select(Job).where(Job.kind == "rindle.process_variant"))
            if j.args["asset_id"] == str(asset_id)}


def promoted(app: Rindle) -> uuid.UUID:
    """A ``thumbed`` asset promoted, its two process jobs still queued."""
    asset = uploaded(app, "thumbed", run=False)
    assert app.jobs.drain(["promote"]) == 1
    assert job_states(app, asset.id) == {"small": "available", "tiny": "available"}
    return asset.id


CANCELLED = {"small": ("cancelled", "cancelled"), "tiny": ("cancelled", "cancelled")}


def test_queued_jobs_are_cancelled_and_telemetry_follows_the_commit(app: Rindle) -> None:
    aid = promoted(app)
    seen: list[tuple[str, dict[str, Any], tuple[str, str | None]]] = []

    def handler(event: str, measurements: dict[str, Any], metadata: dict[str, Any]) -> None:
        if event in ("rindle.asset.processing_cancelled", "rindle.variant.state_change"):
            # emitted after commit: a fresh session already sees the cancelled rows
            seen.append((event, measurements, variant_rows(app, aid)["small"]))

    detach = app.telemetry.attach(handler)
    try:
        result = app.cancel_processing(aid)
    finally:
        detach()
    assert result == CancelledProcessing(aid, ("small", "tiny"), 2)
    assert variant_rows(app, aid) == CANCELLED
    assert job_states(app, aid) == {"small": "cancelled", "tiny": "cancelled"}
    assert [e for e, _, _ in seen] == ["rindle.variant.state_change"] * 2 + [
        "rindle.asset.processing_cancelled"]
    assert {row for _, _, row in seen} == {("cancelled", "cancelled")}
    assert seen[-1][1] == {"variants": 2, "jobs": 2}
    assert app.get_asset(aid).state == "degraded"
    assert app.jobs.drain() == 0  # nothing left to run
    assert app.cancel_processing(str(aid)) == CancelledProcessing(aid, (), 0)  # idempotent
    assert app.requeue_variants(aid).requeued == ["small", "tiny"]
    app.jobs.drain()
    assert list(app.ready_variants(aid)) == ["small", "tiny"]
    assert app.get_asset(aid).state == "ready"


def test_a_claimed_job_that_has_not_started_stops_at_its_start(
        app: Rindle, caplog: pytest.LogCaptureFixture) -> None:
    aid = promoted(app)
    [job] = app.jobs.claim(["process"], "worker-1", limit=1)
    assert app.cancel_processing(aid) == CancelledProcessing(aid, ("small", "tiny"), 2)
    with caplog.at_level(logging.INFO, logger="rindle.jobs.queue"):
        assert app.jobs.execute(job) == "cancelled"
    assert [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "rindle.jobs.queue"] == [
        ("INFO", f"rindle.job.cancelled_while_running id={job.id} kind=rindle.process_variant:"
                 " outcome not recorded")]
    assert variant_rows(app, aid) == CANCELLED
    assert job_states(app, aid) == {"small": "cancelled", "tiny": "cancelled"}
    with app.db.sessionmaker() as s:
        assert s.scalars(select(ProcessingRun).where(
            ProcessingRun.asset_id == aid)).all() == []  # no run was opened


class _CancelMidRender:
    """Cancels the asset's processing while its first variant renders (the variant is
    ``processing`` and the job ``executing``), then lets the real processor render."""

    def __init__(self, app: Rindle, asset_id: uuid.UUID) -> None:
        self.app, self.asset_id = app, asset_id
        self.result: CancelledProcessing | None = None

    @hookimpl
    def rindle_transcode(self, source: Path, spec: Any, workdir: Path,
                         max_pixels: int | None) -> None:
        if self.result is None:
            self.result = self.app.cancel_processing(self.asset_id)


def test_an_executing_job_does_not_resurrect_its_variant(app: Rindle) -> None:
    aid = promoted(app)
    plugin = _CancelMidRender(app, aid)
    app.pm.register(plugin, name="cancel-mid-render")
    assert app.jobs.drain() == 1  # the second job was cancelled before it ran
    assert plugin.result == CancelledProcessing(aid, ("small", "tiny"), 2)
    assert variant_rows(app, aid) == CANCELLED
    assert app.ready_variants(aid) == {}
    assert job_states(app, aid) == {"small": "cancelled", "tiny": "cancelled"}
    with app.db.sessionmaker() as s:
        runs = [(r.variant_name, r.state, r.error_reason)
                for r in s.scalars(select(ProcessingRun).where(ProcessingRun.asset_id == aid))]
    assert runs == [("small", "failed", "cancelled")]
    assert app.get_asset(aid).state == "degraded"
    # the run stored its rendition before its guarded write failed; it deleted it after
    assert variant_objects(app, aid) == []


def variant_objects(app: Rindle, asset_id: uuid.UUID) -> list[str]:
    """The variant objects stored in the asset's folder (``<profile>/<asset>/``)."""
    root: Path = app.storage().root  # type: ignore[attr-defined]
    folder = root / "thumbed" / str(asset_id)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.rglob("*")
                  if p.is_file() and p.name.startswith(("small-", "tiny-")))


@pytest.mark.parametrize(("row", "orphaned"), [
    (None, True),  # the variant is gone
    (Variant(state="cancelled", recipe_digest="d1", storage_key=None), True),
    (Variant(state="cancelled", recipe_digest="d1", storage_key="p/a/small-d1.jpg"), False),
    (Variant(state="processing", recipe_digest="d1", storage_key=None), False),  # same run
    (Variant(state="ready", recipe_digest="d1", storage_key="p/a/small-d1.jpg"), False),
    (Variant(state="processing", recipe_digest="d2", storage_key=None), True),  # new recipe
    (Variant(state="ready", recipe_digest="d2", storage_key="p/a/small-d2.jpg"), True),
])
def test_which_stored_object_a_refused_run_deletes(row: Variant | None,
                                                    orphaned: bool) -> None:
    """A run of the same recipe still under way (or done) stores the same key: kept."""
    assert _orphaned(row, "p/a/small-d1.jpg", "d1") is orphaned


class _FailTiny:
    @hookimpl
    def rindle_transcode(self, source: Path, spec: Any, workdir: Path,
                         max_pixels: int | None) -> None:
        if spec.width == 4:
            raise RuntimeError("tiny renderer down")


def test_a_failed_variant_with_its_retry_pending_is_cancelled(app: Rindle) -> None:
    aid = promoted(app)
    app.pm.register(_FailTiny(), name="fail-tiny")
    app.jobs.drain()
    assert variant_rows(app, aid)["tiny"][0] == "failed"
    assert job_states(app, aid) == {"small": "completed", "tiny": "retryable"}
    assert app.cancel_processing(aid) == CancelledProcessing(aid, ("tiny",), 1)
    assert variant_rows(app, aid) == {"small": ("ready", None), "tiny": CANCELLED["tiny"]}
    assert job_states(app, aid) == {"small": "completed", "tiny": "cancelled"}
    assert app.jobs.drain(with_scheduled=True) == 0


def test_a_failed_variant_without_a_live_job_stays_failed(app: Rindle) -> None:
    aid = promoted(app)
    app.pm.register(_FailTiny(), name="fail-tiny")
    app.jobs.drain(with_scheduled=True)  # the tiny job retries until it is discarded
    assert job_states(app, aid)["tiny"] == "discarded"
    assert app.cancel_processing(aid) == CancelledProcessing(aid, (), 0)
    assert variant_rows(app, aid)["tiny"][0] == "failed"


def test_an_asset_without_variants_has_nothing_to_cancel(app: Rindle) -> None:
    plain = uploaded(app)  # profile "pic" declares no variants
    assert app.cancel_processing(plain.id) == CancelledProcessing(plain.id, (), 0)
    assert app.get_asset(plain.id).state == "available"


def test_cancel_processing_of_an_unknown_asset_is_not_found(app: Rindle) -> None:
    for bad in (uuid.uuid4(), "nope"):
        with pytest.raises(NotFound) as info:
            app.cancel_processing(bad)
        assert info.value.code == "not_found"
