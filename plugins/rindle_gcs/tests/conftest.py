"""A real gcp-storage-emulator on loopback for the whole run, a throwaway service-account
key to sign with, and storages pointing at the emulator through STORAGE_EMULATOR_HOST."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage as gcs

from rindle.testing.servers import free_port, serving
from rindle_gcs import GCSStorage

CLIENT_EMAIL = "rindle-test@rindle-test.iam.gserviceaccount.com"


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of an in-memory ``gcp_storage_emulator`` child process for
    the whole run (stopped at the end)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                  "--port", str(port), "--in-memory", "--quiet"],
                 ready_url=f"{url}/", name="gcp-storage-emulator",
                 cwd=tmp_path_factory.mktemp("gcs-emulator")):
        yield url


@pytest.fixture(autouse=True)
def emulator_env(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``STORAGE_EMULATOR_HOST`` set for each test of this suite only (never leaks into
    other suites of the same run), so clients reach the emulator exactly as real GCS."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    return gcs_emulator


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key made for this run (never a real credential)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def credentials_file(tmp_path_factory: pytest.TempPathFactory,
                     rsa_key: rsa.RSAPrivateKey) -> Path:
    """A service-account JSON key file, shaped like the ones Google issues."""
    pem = rsa_key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    path = tmp_path_factory.mktemp("gcs-key") / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "rindle-test",
        "private_key_id": uuid.uuid4().hex, "private_key": pem,
        "client_email": CLIENT_EMAIL, "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }))
    return path


@pytest.fixture(scope="session")
def admin_client(gcs_emulator: str) -> gcs.Client:
    """An unauthenticated client on the emulator, for arranging and inspecting buckets."""
    return gcs.Client(project="rindle-test", credentials=AnonymousCredentials(),
                      client_options={"api_endpoint": gcs_emulator})


@pytest.fixture
def make_bucket(admin_client: gcs.Client) -> Callable[[], str]:
    """Create a fresh, empty bucket; returns its name."""

    def make() -> str:
        name = f"rindle-{uuid.uuid4().hex[:16]}"
        admin_client.create_bucket(name)
        return name

    return make


@pytest.fixture
def gcs_settings(gcs_emulator: str, make_bucket: Callable[[], str],
                 credentials_file: Path) -> dict[str, str]:
    """A ``[storages.NAME]`` table for a fresh bucket, with a signing key."""
    return {"backend": "gcs", "bucket": make_bucket(), "project": "rindle-test",
            "credentials_file": str(credentials_file)}


@pytest.fixture
def store(gcs_settings: dict[str, str]) -> GCSStorage:
    """A signing-capable :class:`GCSStorage` on a fresh bucket."""
    settings = {k: v for k, v in gcs_settings.items() if k != "backend"}
    return GCSStorage(name="default", **settings)
