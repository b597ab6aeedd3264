"""Local storage honours the storage contract every backend plugin is held to."""

from __future__ import annotations

from pathlib import Path

import pytest

from rindle.storage.local import LocalStorage
from rindle.testing.storage import StorageContract


class TestLocalStorageContract(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> LocalStorage:
        return LocalStorage(name="default", root=tmp_path / "media", secret_key="k" * 32)
