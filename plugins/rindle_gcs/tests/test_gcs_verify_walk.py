"""``verify-storage`` on GCS (a backend that lists folders, not key ranges) checks an
asset's original and its variants from one listing of the asset's folder: each folder is
listed once per pass, not once per walk (SQLite and PostgreSQL, the GCS emulator)."""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterator

import pytest
from tests.apps import MakeApp

from rindle.storage import ObjectInfo
from rindle.testing.lifecycle import LifecyclePhoto, jpeg


def test_each_asset_folder_is_listed_once(make_app: MakeApp, gcs_settings: dict[str, str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(profiles=[LifecyclePhoto], storages={"default": gcs_settings},
                   load_entrypoints=True)
    assets = [app.upload("photo", jpeg((40, 30)), filename=f"{i}.jpg") for i in range(3)]
    app.worker(cron=False).run_until_empty(timeout=60)
    storage = app.storage()
    folders = {posixpath.dirname(asset.storage_key) + "/" for asset in assets}
    gone = next(info.key for info in storage.list(sorted(folders)[1])
                if "/thumb" in info.key)
    storage.delete(gone)
    listed: Counter[str] = Counter()
    real = storage.list

    def counting(prefix: str = "") -> Iterator[ObjectInfo]:
        listed[prefix] += 1
        return real(prefix)

    monkeypatch.setattr(storage, "list", counting)
    report = app.ops.verify_storage()
    assert (report.checked, report.present, report.missing, report.errors) == (6, 5, 1, 0)
    assert (report.originals_checked, report.originals_missing) == (3, 0)
    assert listed == Counter(dict.fromkeys(folders, 1))
