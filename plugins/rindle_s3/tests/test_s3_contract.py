"""S3Storage honours the storage contract, against a real moto server over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rindle.testing.storage import StorageContract
from rindle_s3 import S3Storage


class TestS3StorageContract(StorageContract):
    @pytest.fixture
    def storage(self, s3: S3Storage) -> S3Storage:
        return s3


class TestPrefixedS3StorageContract(StorageContract):
    """The same contract when every key lives under a prefix inside a shared bucket."""

    @pytest.fixture
    def storage(self, moto_endpoint: str, make_bucket: Callable[[], str]) -> S3Storage:
        return S3Storage(name="default", bucket=make_bucket(), prefix="/tenant-a/",
                         endpoint_url=moto_endpoint, region="us-east-1",
                         access_key_id="testing", secret_access_key="testing")
