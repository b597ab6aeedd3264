"""regenerate-variants, verify-storage, requeue, reprobe on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from rindle import Rindle
from rindle.domain.models import Asset, Job, Variant
from rindle.errors import ObjectNotFound, StorageError, UsageError
from rindle.ops.regenerate import regenerate_variants
from rindle.storage.local import LocalStorage
from tests.apps import local_storage


def variant_states(app: Rindle) -> dict[str, int]:
    with app.db.sessionmaker() as s:
        return dict(s.execute(select(Variant.state, func.count()).group_by(Variant.state)).all())


def jobs(app: Rindle) -> int:
    with app.db.sessionmaker() as s:
        return int(s.scalar(select(func.count()).select_from(Job)) or 0)


def test_regenerate_marks_drift_stale_and_enqueues_once(opsapp: Rindle, seed: Callable[..., Any]
                                                        ) -> None:
    seed(3, digest="0" * 64)            # rendered from an old recipe
    seed(2)                              # current: untouched
    seed(1, state="missing")
    seed(1, state="failed")              # not this verb's business
    report = regenerate_variants(opsapp, batch_size=2)
    assert report.marked_stale == 6      # 3 assets x 2 variants
    assert report.enqueued == 8 and report.skipped == 0 and report.errors == 0
    states = variant_states(opsapp)
    assert states == {"queued": 8, "ready": 4, "failed": 2}
    again = opsapp.ops.regenerate_variants()
    assert (again.marked_stale, again.enqueued, again.skipped) == (0, 0, 0)
    assert jobs(opsapp) == 8


def test_regenerate_filters_and_unknown_profile(opsapp: Rindle, seed: Callable[..., Any]) -> None:
    from tests.ops.conftest import Docs

    seed(1, digest="1" * 64)
    seed(1, profile=Docs, digest="1" * 64)
    report = opsapp.ops.regenerate_variants(profile="gallery", variant="thumb")
    assert report.marked_stale == 1 and report.enqueued == 1
    with pytest.raises(UsageError, match="unknown profile"):
        opsapp.ops.regenerate_variants(profile="nope")


def test_regenerated_variant_gets_a_new_key_with_the_new_digest(opsapp: Rindle) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), "navy").save(buf, "JPEG")
    asset = opsapp.upload("gallery", io.BytesIO(buf.getvalue()), filename="x.jpg")
    opsapp.jobs.drain()
    current = opsapp.get_asset(asset.id).variants["thumb"]
    old_key = f"gallery/{asset.id}/thumb-{'f' * 64}.webp"
    root: Path = local_storage(opsapp).root
    (root / (current.storage_key or "")).rename(root / old_key)
    with opsapp.db.transaction() as s:  # as if rendered by an older recipe
        row = s.get(Variant, current.id)
        assert row is not None
        row.recipe_digest, row.storage_key = "f" * 64, old_key
    opsapp.ops.regenerate_variants()
    opsapp.jobs.drain()
    new = opsapp.get_asset(asset.id).variants["thumb"]
    assert new.state == "ready" and new.recipe_digest != "f" * 64
    assert new.storage_key != old_key and new.recipe_digest in (new.storage_key or "")
    assert opsapp.storage().head(new.storage_key or "").size > 0
    with pytest.raises(ObjectNotFound):
        opsapp.storage().head(old_key)


def test_verify_storage_flips_only_vanished_objects(opsapp: Rindle, seed: Callable[..., Any]
                                                    ) -> None:
    assets = seed(4)
    root: Path = local_storage(opsapp).root
    with opsapp.db.sessionmaker() as s:
        gone = s.scalars(select(Variant).where(Variant.asset_id == assets[0].id)).all()
    for v in gone:
        (root / (v.storage_key or "")).unlink()
    (root / assets[1].storage_key).unlink()  # an original
    report = opsapp.ops.verify_storage(concurrency=3)
    assert (report.checked, report.present, report.missing, report.errors) == (8, 6, 2, 0)
    assert report.originals_missing == 1 and report.exit_code == 0
    assert variant_states(opsapp) == {"ready": 6, "missing": 2}
    assert opsapp.ops.verify_storage().missing == 0  # idempotent


class FlakyStorage(LocalStorage):
    """Real local storage that fails (like a network error) for keys containing 'boom'."""

    def head(self, key: str) -> Any:
        if "boom" in key:
            raise StorageError("connection reset by peer")
        return super().head(key)

    def exists_many(self, keys: Sequence[str]) -> Sequence[bool | Exception]:
        answers = list(super().exists_many(keys))
        return [StorageError("connection reset by peer") if "boom" in key else answer
                for key, answer in zip(keys, answers, strict=True)]

    def list(self, prefix: str = "") -> Any:
        if "boom" in prefix:
            raise StorageError("connection reset by peer")
        return super().list(prefix)


@pytest.mark.parametrize("path", ["stat", "list", "head"])
def test_verify_storage_counts_infrastructure_errors_and_flips_nothing(
        opsapp: Rindle, seed: Callable[..., Any], path: str) -> None:
    """Whichever way the backend is asked (local stat, folder listing, HEAD per key)."""
    assets = seed(3)
    real = local_storage(opsapp)
    flaky = FlakyStorage(name="default", root=real.root, secret_key="x")
    drop = {"stat": set(), "list": {"local"}, "head": {"local", "list"}}[path]
    flaky.capabilities = frozenset(flaky.capabilities - drop)
    opsapp._storages["default"] = flaky
    with opsapp.db.transaction() as s:  # route one asset's keys through the failing path
        for v in s.scalars(select(Variant).where(Variant.asset_id == assets[0].id)):
            v.storage_key = f"gallery/boom/{v.name}.jpg"
    report = opsapp.ops.verify_storage()
    assert report.errors == 2 and report.missing == 0 and report.present == 4
    assert report.exit_code == 1
    assert variant_states(opsapp) == {"ready": 6}


def test_requeue_touches_only_failed_and_cancelled(opsapp: Rindle, seed: Callable[..., Any]
                                                   ) -> None:
    [asset] = seed(1, state="failed")
    with opsapp.db.transaction() as s:
        large = s.scalars(select(Variant).where(Variant.name == "large")).one()
        large.state = "ready"
    report = opsapp.requeue_variants(asset.id)
    assert report.requeued == ["thumb"] and report.skipped == {"large": "ready"}
    assert variant_states(opsapp) == {"queued": 1, "ready": 1}
    assert opsapp.requeue_variants(asset.id).requeued == []
    with pytest.raises(UsageError, match="unknown variant"):
        opsapp.requeue_variants(asset.id, ["nope"])


def test_reprobe_rewrites_probe_fields_only(opsapp: Rindle) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (120, 80), "red").save(buf, "JPEG")
    asset = opsapp.upload("gallery", io.BytesIO(buf.getvalue()), filename="r.jpg")
    opsapp.jobs.drain()
    with opsapp.db.transaction() as s:
        row = s.get(Asset, asset.id)
        assert row is not None
        row.width, row.height = 1, 1
    report = opsapp.reprobe(asset.id)
    assert report.changed == {"width": 120, "height": 80}
    fresh = opsapp.get_asset(asset.id)
    assert (fresh.width, fresh.height, fresh.state) == (120, 80, "ready")
    assert opsapp.reprobe(asset.id).changed == {}
