"""A real moto S3 server on loopback for the whole run, and storages pointing at it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest

from rindle_s3 import S3Storage

CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a ``moto.server`` child process (stopped at the end)."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/reset", data=b"", timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"moto server exited at start-up: {err[-2000:]}")
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("moto server did not answer within 30 s")
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


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
