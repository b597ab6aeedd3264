"""A real moto S3 server on loopback for the whole run, and storages pointing at it."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest

from rindle.testing.servers import free_port, serving
from rindle_s3 import S3Storage

CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}
REGION = "us-east-1"



@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a ``moto.server`` child process (stopped at the end)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                 ready_url=f"{url}/moto-api/reset", ready_data=b"", name="moto server"):
        yield url


@pytest.fixture
def make_bucket(moto_endpoint: str) -> Callable[[], str]:
    """Create a fresh, empty bucket; returns its name."""
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION,
                          aws_access_key_id="testing", aws_secret_access_key="testing")

    def make() -> str:
        name = f"rindle-{uuid.uuid4().hex[:16]}"
        client.create_bucket(Bucket=name)
        return name

    return make


@pytest.fixture
def s3_settings(moto_endpoint: str, make_bucket: Callable[[], str]) -> dict[str, str]:
    """A ``[storages.NAME]`` table for a fresh bucket on the moto server."""
    return {"backend": "s3", "bucket": make_bucket(), "endpoint_url": moto_endpoint,
            "region": REGION, **CREDENTIALS}


@pytest.fixture
def s3(s3_settings: dict[str, str]) -> S3Storage:
    """An :class:`S3Storage` on a fresh bucket."""
    settings = {k: v for k, v in s3_settings.items() if k != "backend"}
    return S3Storage(name="default", **settings)
