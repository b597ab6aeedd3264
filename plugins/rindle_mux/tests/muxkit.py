"""Test kit of rindle-mux: a loopback HTTP server answering recorded-shape Mux JSON, an
RSA test key pair, webhook signing, and rindle apps (SQLite and PostgreSQL) whose
``[streaming.mux]`` points at it.

No Mux emulator exists, so :class:`FakeMux` is a small stdlib ``http.server`` that keeps
assets and uploads in memory and answers the REST shapes of ``fixtures/`` (reference
backends.md §4): ``{"data": ...}`` bodies, 404 for unknown assets, 401 without the right
Basic credentials, and scripted answers (``script``) for 429/5xx sequences.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import rindle_mux.plugin
from rindle import Delivery, Profile, Rindle, variants
from rindle.domain.models import Asset, ProviderAsset, Variant, utcnow
from rindle.plugins import make_plugin_manager
from rindle.streaming import sign
from rindle.streaming.ingest import enqueue_server_push

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN_ID, TOKEN_SECRET = "test-token-id", "test-token-secret-do-not-log-0001"
WEBHOOK_SECRET = "whsec-test-0123456789abcdef0123456789abcdef"
OLD_SECRET = "whsec-old-fedcba9876543210fedcba9876543210"
SIGNING_KEY_ID = "signing-key-id-test-0001"
ASSET_ID = "AbCd1234EfGh5678IjKl9012MnOp3456QrSt"
PLAYBACK_ID = "playback-id-test-fixture-1234"


def fixture(name: str) -> dict[str, Any]:
    """A JSON fixture from ``fixtures/`` (a REST ``data`` object or a webhook envelope)."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    authorization: str | None


@dataclass
class FakeMux:
    """State of the loopback Mux: assets by id, uploads by id, scripted answers, requests."""

    url: str = ""
    assets: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    script: dict[tuple[str, str], list[tuple[int, Any, dict[str, str]]]] = field(
        default_factory=dict)
    requests: list[Recorded] = field(default_factory=list, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.assets.clear()
            self.uploads.clear()
            self.script.clear()
            self.requests.clear()

    def then(self, method: str, path: str, status: int, body: Any = None,
             headers: dict[str, str] | None = None) -> None:
        """Answer the next ``method path`` with ``status``/``body`` (before the normal logic)."""
        with self.lock:
            self.script.setdefault((method, path), []).append((status, body, headers or {}))

    def calls(self, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if method is None or r.method == method]

    # --- the server side ---------------------------------------------------------------

    def answer(self, method: str, path: str, body: Any, auth: str | None
               ) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append(Recorded(method, path, body, auth))
            queued = self.script.get((method, path))
            if queued:
                return queued.pop(0)
        expected = "Basic " + base64.b64encode(f"{TOKEN_ID}:{TOKEN_SECRET}".encode()).decode()
        if auth != expected:
            return 401, {"error": {"type": "unauthorized", "messages": ["bad token"]}}, {}
        parts = path.strip("/").split("/")
        if parts[:3] == ["video", "v1", "assets"]:
            if len(parts) == 3 and method == "POST":
                data = dict(fixture("asset_create_201"),
                            id=uuid.uuid4().hex + uuid.uuid4().hex[:4])
                data["playback_policies"] = body.get("playback_policies")
                with self.lock:
                    self.assets[data["id"]] = data
                return 201, {"data": data}, {}
            if len(parts) == 3 and method == "GET":
                return 200, {"data": list(self.assets.values())}, {}
            if len(parts) == 4:
                asset = self.assets.get(parts[3])
                if asset is None:
                    return 404, {"error": {"type": "not_found", "messages": ["not found"]}}, {}
                if method == "GET":
                    return 200, {"data": asset}, {}
                if method == "DELETE":
                    with self.lock:
                        self.assets.pop(parts[3], None)
                    return 204, None, {}
        if parts[:3] == ["video", "v1", "uploads"]:
            if len(parts) == 3 and method == "POST":
                data = dict(fixture("upload_create_201"), id="upl" + uuid.uuid4().hex,
                            cors_origin=body.get("cors_origin"),
                            new_asset_settings=body.get("new_asset_settings"))
                with self.lock:
                    self.uploads[data["id"]] = data
                return 201, {"data": data}, {}
            if len(parts) == 5 and parts[4] == "cancel" and method == "PUT":
                upload = self.uploads.get(parts[3])
                if upload is None:
                    return 404, {"error": {"type": "not_found"}}, {}
                upload["status"] = "cancelled"
                return 200, {"data": upload}, {}
        return 404, {"error": {"type": "not_found"}}, {}


def _handler(state: FakeMux) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, answer, headers = state.answer(self.command, self.path, body,
                                                   self.headers.get("Authorization"))
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


@pytest.fixture(scope="session")
def mux_server() -> Iterator[FakeMux]:
    """The loopback Mux for the whole run (a thread; shut down at the end)."""
    state = FakeMux()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-mux", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def mux(mux_server: FakeMux) -> FakeMux:
    """The loopback Mux, emptied for this test."""
    mux_server.reset()
    return mux_server


@dataclass(frozen=True)
class KeyPair:
    private_pem: str  # PKCS#1
    pkcs8_pem: str
    public: rsa.RSAPublicKey


@pytest.fixture(scope="session")
def keypair() -> KeyPair:
    """A throwaway RSA-2048 pair made for this run (never a real key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs1 = key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()).decode()
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    return KeyPair(pkcs1, pkcs8, key.public_key())


def sign_header(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``."""
    ts = int(dt.datetime.now(dt.UTC).timestamp()) if timestamp is None else timestamp
    return f"t={ts},v1={sign(body, secret, ts)}"


class Clip(Profile):
    name = "clip"
    allow_mime = ("video/mp4",)
    variants = {"web_720p": variants.Video(preset="web_720p")}
    delivery = Delivery(public=False, signed_url_ttl=600,
                        streaming={"provider": "mux", "playback_policy": "signed",
                                   "ingest_mode": "server_push", "source_variant": "web_720p"})


def mux_settings(mux: FakeMux, keypair: KeyPair, **extra: Any) -> dict[str, Any]:
    """A ``[streaming.mux]`` table pointing at the loopback server (fast retries)."""
    return {"mux": {"token_id": TOKEN_ID, "token_secret": TOKEN_SECRET,
                    "signing_key_id": SIGNING_KEY_ID,
                    "signing_private_key": base64.b64encode(keypair.private_pem.encode()
                                                            ).decode(),
                    "webhook_secrets": [WEBHOOK_SECRET, OLD_SECRET], "base_url": mux.url,
                    "retry_backoff_seconds": 0.01, "retry_backoff_cap_seconds": 0.05,
                    **extra}}


@pytest.fixture
def make_mux_app(make_app: Callable[..., Rindle], mux: FakeMux, keypair: KeyPair
                 ) -> Callable[..., Rindle]:
    """Factory: a migrated app (this test's dialect) with rindle-mux and profile ``clip``;
    keywords join its ``[streaming.mux]`` table, ``app_options`` its other ``Rindle()``
    options."""

    def factory(app_options: dict[str, Any] | None = None, **extra: Any) -> Rindle:
        pm = make_plugin_manager(load_entrypoints=False)
        pm.register(rindle_mux.plugin, name="mux")
        return make_app(**{"plugin_manager": pm, "profiles": [Clip],
                           "streaming": mux_settings(mux, keypair, **extra),
                           **(app_options or {})})

    return factory


@pytest.fixture
def mux_app(make_mux_app: Callable[..., Rindle]) -> Rindle:
    """An app with rindle-mux on this test's database."""
    return make_mux_app()


@pytest.fixture
def events(mux_app: Rindle) -> Iterator[list[tuple[str, dict[str, Any], dict[str, Any]]]]:
    """Every telemetry event the app emits during the test."""
    seen: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    detach = mux_app.telemetry.attach(lambda e, m, md: seen.append((e, m, md)))
    yield seen
    detach()


def add_row(app: Rindle, *, state: str = "processing", provider_asset_id: str | None
            = ASSET_ID, age: dt.timedelta = dt.timedelta(seconds=120),
            **values: Any) -> ProviderAsset:
    """Insert an asset of profile ``clip`` and its Mux row, last updated ``age`` ago."""
    when = utcnow() - age
    with app.db.transaction() as s:
        asset = Asset(profile="clip", storage_key=f"clip/{uuid.uuid4()}/original.mp4",
                      state="ready", kind="video", content_type="video/mp4")
        s.add(asset)
        s.flush()
        fields = {"playback_policy": "signed", "ingest_mode": "server_push", **values}
        row = ProviderAsset(asset_id=asset.id, profile="clip", provider_name="mux",
                            provider_asset_id=provider_asset_id, state=state,
                            inserted_at=when, updated_at=when, **fields)
        s.add(row)
    return row


def reload(app: Rindle, row: ProviderAsset) -> ProviderAsset:
    with app.db.sessionmaker() as s:
        fresh = s.get(ProviderAsset, row.id)
        assert fresh is not None
        return fresh


def ready_clip(app: Rindle) -> tuple[Asset, Variant]:
    """Insert a ready ``clip`` asset with a ready ``web_720p`` variant (no bytes stored) and
    enqueue its server-push ingest job, in one transaction."""
    digest = Clip.recipe_digest("web_720p")
    with app.db.transaction() as s:
        asset = Asset(profile="clip", storage_key=f"clip/{uuid.uuid4()}/original.mp4",
                      state="ready", kind="video", content_type="video/mp4")
        s.add(asset)
        s.flush()
        variant = Variant(asset_id=asset.id, name="web_720p", state="ready",
                          recipe_digest=digest, output_kind="video",
                          storage_key=f"clip/{asset.id}/web_720p-{digest[:8]}.mp4")
        s.add(variant)
        enqueue_server_push(app, s, asset, "web_720p", digest)
    return asset, variant
