"""GCSStorage honours the storage contract, against a real gcp-storage-emulator over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rindle.testing.storage import StorageContract
from rindle_gcs import GCSStorage


class TestGCSStorageContract(StorageContract):
    @pytest.fixture
    def storage(self, store: GCSStorage) -> GCSStorage:
        return store


class TestPrefixedGCSStorageContract(StorageContract):
    """The same contract when every key lives under a prefix inside a shared bucket."""

    @pytest.fixture
    def storage(self, gcs_emulator: str, make_bucket: Callable[[], str],
                credentials_file: Path) -> GCSStorage:
        return GCSStorage(name="default", bucket=make_bucket(), prefix="/tenant-a/",
                          project="rindle-test", credentials_file=str(credentials_file))
