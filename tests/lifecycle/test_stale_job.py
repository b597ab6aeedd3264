"""A stale variant job (its row moved on since it started) never overwrites a newer result."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from rindle import Rindle
from rindle.domain.models import ProcessingRun, Variant
from rindle.processing import variants as processing
from tests.lifecycle.conftest import Photo, jpeg_bytes


def test_a_stale_job_cannot_overwrite_a_newer_result(photo_app: Rindle, files: Any) -> None:
    asset = photo_app.upload("photo", files("a.jpg", jpeg_bytes()))
    photo_app.jobs.drain(["promote"])
    digest = Photo.recipe_digest("thumb")
    fresh = photo_app.get_asset(asset.id)
    run_id = processing._start(photo_app, fresh, "thumb", digest, 1, "old-worker")
    assert run_id is not None
    # meanwhile another worker took the row over and finished it with a newer recipe
    with photo_app.db.transaction() as s:
        row = s.scalars(select(Variant).where(Variant.asset_id == asset.id,
                                              Variant.name == "thumb")).one()
        row.state, row.recipe_digest, row.storage_key = "ready", "e" * 64, "newer/key.webp"
    outcome = processing._finish(photo_app, fresh, "thumb", digest, run_id, "old/key.webp",
                                 10, {"content_type": "image/webp"})
    assert outcome == "ready"  # the row's own state, untouched by the stale job
    after = photo_app.get_asset(asset.id).variants["thumb"]
    assert (after.recipe_digest, after.storage_key) == ("e" * 64, "newer/key.webp")
    with photo_app.db.sessionmaker() as s:
        run = s.get(ProcessingRun, run_id)
        assert run is not None and (run.state, run.error_reason) == ("failed", "stale_job")
