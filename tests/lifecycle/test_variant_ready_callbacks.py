"""The app's ``on_variant_ready`` callbacks run inside the transaction that marks a variant
ready: what they write commits with the ready state, or not at all."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rindle import Rindle
from rindle.context import AppContext
from rindle.domain.models import Asset, Job, Variant
from rindle.streaming.ingest import enqueue_server_push
from rindle.wiring import NOOP
from tests.lifecycle.conftest import Photo, jpeg_bytes


def test_the_core_callbacks_are_streamings_server_push_ingest(photo_app: Rindle) -> None:
    assert photo_app.on_variant_ready == [enqueue_server_push]
    assert photo_app.on_variant_ready is photo_app.on_variant_ready  # one list per app


def test_each_ready_variant_runs_the_callbacks_in_its_transaction(photo_app: Rindle,
                                                                  files: Any) -> None:
    seen: list[tuple[str, str, str]] = []

    def record(app: AppContext, session: Session, asset: Asset, variant_name: str,
               recipe_digest: str) -> None:
        assert app is photo_app.context  # the frozen Context, not the Rindle facade
        row = session.scalars(select(Variant).where(Variant.asset_id == asset.id,
                                                    Variant.name == variant_name)).one()
        assert row.state == "ready"  # the transition is already in this session
        app.jobs.enqueue(session, NOOP, {"variant": variant_name})
        seen.append((str(asset.id), variant_name, recipe_digest))

    photo_app.on_variant_ready.append(record)
    asset = photo_app.upload("photo", files("a.jpg", jpeg_bytes()))
    photo_app.jobs.drain(["promote", "process"])
    assert sorted(seen) == [(str(asset.id), name, Photo.recipe_digest(name))
                            for name in ("large", "thumb")]
    with photo_app.db.sessionmaker() as s:
        noops = s.scalars(select(Job).where(Job.kind == NOOP)).all()
    assert sorted(job.args["variant"] for job in noops) == ["large", "thumb"]


def test_a_failing_callback_rolls_the_ready_state_back(photo_app: Rindle, files: Any) -> None:
    def fail(app: AppContext, session: Session, asset: Asset, variant_name: str,
             recipe_digest: str) -> None:
        app.jobs.enqueue(session, NOOP, {"variant": variant_name})
        raise RuntimeError("callback failed")

    photo_app.on_variant_ready.append(fail)
    asset = photo_app.upload("photo", files("a.jpg", jpeg_bytes()))
    photo_app.jobs.drain(["promote"])
    photo_app.jobs.drain(["process"], limit=2)  # one attempt of each variant job
    variants = photo_app.get_asset(asset.id).variants
    for name in ("large", "thumb"):
        assert variants[name].state != "ready"
    with photo_app.db.sessionmaker() as s:
        assert s.scalars(select(Job).where(Job.kind == NOOP)).all() == []
