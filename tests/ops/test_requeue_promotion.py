"""requeue re-runs a promotion that gave up (SQLite and PostgreSQL), from the command line."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import func, select

from rindle import Rindle
from rindle.domain.models import Job
from rindle.hookspecs import hookimpl
from rindle.jobs.kinds import PROMOTE
from tests.ops.test_ops_cli import invoke  # noqa: F401  (the fixture)


class ModelAnalyzer:
    """An analyzer that needs a model file on disk: until the operator puts it there, every
    promotion attempt fails with ``FileNotFoundError`` (retried, then given up)."""

    def __init__(self, model: Path) -> None:
        self.model = model

    @hookimpl
    def rindle_analyze(self, path: Path, asset: Any, probe: Any) -> Any:
        return {"model": self.model.read_text()}


def _jobs(app: Rindle) -> dict[str, int]:
    with app.db.sessionmaker() as s:
        return dict(s.execute(select(Job.state, func.count()).where(Job.kind == PROMOTE)
                              .group_by(Job.state)).all())


def _jpeg() -> io.BytesIO:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(buf, "JPEG")
    return io.BytesIO(buf.getvalue())


def test_given_up_promotion_is_rerun_once_and_the_asset_ends_ready(
        opsapp: Rindle, invoke: Callable[..., Any], tmp_path: Path) -> None:  # noqa: F811
    model = tmp_path / "model.txt"
    opsapp.pm.register(ModelAnalyzer(model), name="model-analyzer")
    asset = opsapp.upload("gallery", _jpeg(), filename="a.jpg")
    opsapp.jobs.drain(with_scheduled=True)  # three attempts, then discarded
    assert opsapp.get_asset(asset.id).state == "analyzing"
    assert _jobs(opsapp) == {"discarded": 1}
    status = opsapp.ops.runtime_status()
    assert status.promotions_given_up == [str(asset.id)]
    assert status.discarded[0]["asset_id"] == str(asset.id)
    assert f"rindle requeue {asset.id}  (its promotion gave up" in status.render()

    model.write_text("v1")  # the operator fixes the cause, then re-runs
    first = invoke("--json", "requeue", str(asset.id))
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {"asset_id": str(asset.id), "promotion": "requeued",
                                        "requeued": [], "skipped": {}, "errors": 0}
    assert _jobs(opsapp) == {"discarded": 1, "available": 1}
    second = invoke("requeue", str(asset.id))  # the job is live: nothing changes
    assert second.exit_code == 0, second.output
    assert "promotion already_queued" in second.output
    assert _jobs(opsapp) == {"discarded": 1, "available": 1}

    opsapp.jobs.drain()
    done = opsapp.get_asset(asset.id)
    assert done.state == "ready" and done.meta == {"model": "v1"}
    assert {v.state for v in done.variants.values()} == {"ready"}
    third = json.loads(invoke("--json", "requeue", str(asset.id)).output)
    assert third["promotion"] == "" and third["requeued"] == []
    assert _jobs(opsapp) == {"discarded": 1, "completed": 1}
    assert opsapp.ops.runtime_status().promotions_given_up == []  # ready: nothing to re-run


def test_requeue_keeps_a_direct_uploads_promotion_arguments(opsapp: Rindle) -> None:
    asset = opsapp.upload("gallery", _jpeg(), filename="a.jpg")
    args = {"asset_id": str(asset.id), "direct": True, "max_bytes": 12345}
    with opsapp.db.transaction() as s:  # as a direct upload's promotion that gave up
        job = s.scalars(select(Job).where(Job.kind == PROMOTE)).one()
        job.args, job.state = args, "discarded"
    assert opsapp.requeue_variants(asset.id).promotion == "requeued"
    with opsapp.db.sessionmaker() as s:
        live = s.scalars(select(Job).where(Job.kind == PROMOTE, Job.state == "available")).one()
    assert live.args == args and live.attempt == 0
    assert live.unique_key == f"promote:{asset.id}"


def test_requeue_without_a_given_up_promotion_changes_nothing(opsapp: Rindle) -> None:
    asset = opsapp.upload("gallery", _jpeg(), filename="a.jpg")
    assert opsapp.requeue_variants(asset.id).promotion == "already_queued"
    with opsapp.db.transaction() as s:  # promotion completed, yet the row still analyzing
        s.scalars(select(Job).where(Job.kind == PROMOTE)).one().state = "completed"
    assert opsapp.requeue_variants(asset.id).promotion == "no_job"
    assert _jobs(opsapp) == {"completed": 1}


def test_runtime_status_skips_given_up_jobs_whose_arguments_name_no_asset(
        opsapp: Rindle) -> None:
    asset = opsapp.upload("gallery", _jpeg(), filename="a.jpg")
    with opsapp.db.transaction() as s:
        job = s.scalars(select(Job).where(Job.kind == PROMOTE)).one()
        job.args, job.state = {"asset_id": "'; DROP TABLE rindle_assets; --"}, "discarded"
        s.add(Job(queue="promote", kind=PROMOTE, args={"asset_id": 7}, state="discarded",
                  attempt=3, max_attempts=3))
    status = opsapp.ops.runtime_status()
    assert status.discarded_jobs == 2 and status.promotions_given_up == []
    assert sorted(str(j["asset_id"]) for j in status.discarded) == [
        "'; DROP TABLE rindle_assets; --", "None"]
    assert opsapp.get_asset(asset.id).state == "analyzing"
