"""The upload JSON API over real loopback HTTP: the Uppy-shaped answers, the presigned PUT
flow through the delivery app, actor isolation, every error path with its code and status,
and the same API as a native ASGI app under uvicorn."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
import requests

from rindle import Rindle
from rindle.cli.serve import make_threading_server
from rindle.delivery import wsgi_app as delivery_wsgi
from rindle.domain.models import UploadSession
from rindle.errors import ConfigError
from rindle.testing.servers import free_port
from rindle.web import upload_api_asgi, upload_api_wsgi
from tests.apps import MakeApp, local_storage
from tests.web.conftest import MAX_BYTES, Other, Photo, header_actor, serve_asgi, serve_wsgi

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60


class Client:
    """JSON requests to the API as one actor."""

    def __init__(self, base: str, actor: str | None) -> None:
        self.base, self.actor = base, actor

    def __call__(self, method: str, path: str, payload: Any = None,
                 headers: dict[str, str] | None = None, data: bytes | None = None
                 ) -> requests.Response:
        sent = {"X-Actor": self.actor} if self.actor else {}
        sent.update(headers or {})
        return requests.request(method, f"{self.base}{path}", json=payload, data=data,
                                headers=sent, timeout=30)


def code(answer: requests.Response) -> str:
    return str(answer.json()["error"]["code"])


def _joined(api: Callable[..., Iterable[bytes]], media: Callable[..., Iterable[bytes]]
            ) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        target = api if str(environ.get("PATH_INFO", "")).startswith("/api/") else media
        return target(environ, start_response)
    return app


@pytest.fixture
def served(make_app: MakeApp, tmp_path: Path) -> Iterator[tuple[Rindle, str]]:
    """The API under /api and the delivery app (presigned PUTs) on one loopback server."""
    port = free_port()
    app = make_app(profiles=[Photo, Other], storages={"default": {
        "backend": "local", "root": str(tmp_path / "media"),
        "base_url": f"http://127.0.0.1:{port}"}})
    api = upload_api_wsgi(app, authorize=header_actor, mount="/api", max_json_bytes=4096)
    server = make_threading_server(_joined(api, delivery_wsgi(app)), "127.0.0.1", port,
                                   quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{port}/api"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def start(client: Client, **overrides: Any) -> requests.Response:
    body = {"profile": "photo", "filename": "cat.jpg", "content_type": "image/jpeg",
            "size": len(JPEG), **overrides}
    return client("POST", "/uploads", body)


def test_presigned_flow_shapes(served: tuple[Rindle, str]) -> None:
    app, base = served
    alice = Client(base, "alice")
    made = start(alice)
    assert made.status_code == 201
    session = made.json()
    assert set(session) == {"id", "uploadId", "key", "strategy", "state", "asset_id",
                            "expires_at"}
    assert session["uploadId"] == session["id"]
    assert session["strategy"] == "presigned_put" and session["state"] == "initialized"
    signed = alice("POST", f"/uploads/{session['id']}/sign")
    assert signed.status_code == 200
    params = signed.json()
    assert set(params) == {"method", "url", "fields", "headers", "expires_at"}
    assert params["method"] == "PUT" and params["fields"] == {}
    assert params["headers"] == {"Content-Type": "image/jpeg"}
    put = requests.put(params["url"], data=JPEG, headers=params["headers"], timeout=30)
    assert put.status_code == 201
    verified = alice("POST", f"/uploads/{session['id']}/verify")
    assert verified.status_code == 200
    assert verified.json() == {"id": session["id"], "asset_id": session["asset_id"],
                               "state": "validating", "session_state": "completed"}
    assert local_storage(app).path_for(session["key"]).read_bytes() == JPEG
    again = alice("POST", f"/uploads/{session['id']}/verify")
    assert again.status_code == 409 and code(again) == "invalid_transition"


def test_sessions_are_bound_to_their_actor(served: tuple[Rindle, str]) -> None:
    _, base = served
    alice, bob, nobody = Client(base, "alice"), Client(base, "bob"), Client(base, None)
    sid = start(alice).json()["id"]
    for method, path, body in (("POST", f"/uploads/{sid}/sign", None),
                               ("POST", f"/uploads/{sid}/verify", None),
                               ("GET", f"/uploads/{sid}/parts", None),
                               ("POST", f"/uploads/{sid}/parts/1", None),
                               ("POST", f"/uploads/{sid}/complete",
                                {"parts": [{"PartNumber": 1, "ETag": "x"}]}),
                               ("DELETE", f"/uploads/{sid}", None)):
        for other in (bob, nobody):
            answer = other(method, path, body)
            assert answer.status_code == 404, (method, path, answer.text)
            assert code(answer) == "not_found"
    refused = start(nobody)
    assert refused.status_code == 403 and code(refused) == "forbidden"
    mallory = start(Client(base, "mallory"), profile="other", filename="a.png",
                    content_type="image/png")
    assert mallory.status_code == 403
    assert alice("POST", f"/uploads/{sid}/sign").status_code == 200
    aborted = alice("DELETE", f"/uploads/{sid}")
    assert aborted.status_code == 200 and aborted.json() == {"id": sid, "state": "aborted"}


def test_error_paths(served: tuple[Rindle, str]) -> None:
    app, base = served
    alice = Client(base, "alice")
    cases: list[tuple[requests.Response, int, str]] = [
        (start(alice, size=MAX_BYTES + 1), 413, "max_bytes_exceeded"),
        (start(alice, filename="run.exe"), 415, "extension_not_allowed"),
        (start(alice, content_type="text/html"), 415, "mime_not_allowed"),
        (start(alice, profile="nope"), 422, "unknown_profile"),
        (start(alice, size=-1), 422, "invalid_upload"),
        (start(alice, size="12"), 422, "invalid_upload"),
        (start(alice, strategy="tus"), 422, "upload_unsupported"),
        (start(alice, strategy="multipart"), 422, "upload_unsupported"),
        (alice("POST", "/uploads", data=b"{not json", headers={
            "Content-Type": "application/json"}), 400, "invalid_json"),
        (alice("POST", "/uploads", data=b"[1, 2]", headers={
            "Content-Type": "application/json"}), 400, "invalid_json"),
        (alice("POST", "/uploads", data=b'{"profile": "photo"}', headers={
            "Content-Type": "text/plain"}), 415, "unsupported_media_type"),
        (alice("POST", "/uploads", data=b" " * 4097, headers={
            "Content-Type": "application/json"}), 413, "request_too_large"),
        (alice("GET", "/uploads"), 405, "method_not_allowed"),
        (alice("GET", "/nothing"), 404, "not_found"),
        (alice("POST", "/uploads/not-a-uuid/sign"), 404, "not_found"),
    ]
    for answer, status, expected in cases:
        assert (answer.status_code, code(answer)) == (status, expected), answer.text
    at_limit = start(alice, size=MAX_BYTES)
    assert at_limit.status_code == 201
    sid = start(alice).json()["id"]
    early = alice("POST", f"/uploads/{sid}/verify")
    assert early.status_code == 409  # signed never: not an edge
    alice("POST", f"/uploads/{sid}/sign")
    missing = alice("POST", f"/uploads/{sid}/verify")
    assert missing.status_code == 409 and code(missing) == "storage_object_missing"
    bad_part = alice("POST", f"/uploads/{sid}/parts/0")
    assert bad_part.status_code == 422 and code(bad_part) == "invalid_multipart_parts"
    not_multipart = alice("POST", f"/uploads/{sid}/parts/1")
    assert not_multipart.status_code == 422 and code(not_multipart) == "upload_unsupported"
    assert alice("DELETE", f"/uploads/{sid}").status_code == 200
    closed = alice("POST", f"/uploads/{sid}/sign")
    assert closed.status_code == 409 and code(closed) == "invalid_transition"
    late = start(alice).json()["id"]
    with app.db.transaction() as s:
        row = s.get(UploadSession, uuid.UUID(late))
        assert row is not None
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    expired = alice("POST", f"/uploads/{late}/sign")
    assert expired.status_code == 410 and code(expired) == "session_expired"


def test_mounting_needs_authorize(web_app: Rindle) -> None:
    with pytest.raises(ConfigError, match="authorize"):
        upload_api_wsgi(web_app)
    with pytest.raises(ConfigError, match="authorize"):
        upload_api_asgi(web_app)
    with serve_wsgi(upload_api_wsgi(web_app, development_only=True)) as base:
        made = requests.post(f"{base}/uploads", json={
            "profile": "photo", "filename": "cat.jpg", "size": 10}, timeout=30)
        assert made.status_code == 201


def test_asgi_api(web_app: Rindle) -> None:
    with serve_asgi(upload_api_asgi(web_app, authorize=header_actor, mount="/api")) as base:
        alice, bob = Client(base + "/api", "alice"), Client(base + "/api", "bob")
        made = start(alice)
        assert made.status_code == 201
        sid = made.json()["id"]
        signed = alice("POST", f"/uploads/{sid}/sign")
        assert signed.status_code == 200 and signed.json()["method"] == "PUT"
        assert bob("POST", f"/uploads/{sid}/verify").status_code == 404
        assert code(alice("POST", "/uploads", data=b"{", headers={
            "Content-Type": "application/json"})) == "invalid_json"
        missing = alice("POST", f"/uploads/{sid}/verify")
        assert missing.status_code == 409 and code(missing) == "storage_object_missing"


def test_a_host_misconfiguration_is_a_500_without_details(web_app: Rindle) -> None:
    def too_long(request: Any, profile: Any) -> str:
        return "x" * 256  # one past MAX_ACTOR_LENGTH

    with serve_wsgi(upload_api_wsgi(web_app, authorize=too_long)) as base:
        answer = requests.post(f"{base}/uploads", timeout=30, json={
            "profile": "photo", "filename": "cat.jpg", "size": 10})
    assert answer.status_code == 500
    assert answer.json() == {"error": {"code": "config_error", "message":
                                       "the server could not complete the request"}}
    with serve_wsgi(upload_api_wsgi(web_app, authorize=lambda r, p: "x" * 255)) as base:
        at_limit = requests.post(f"{base}/uploads", timeout=30, json={
            "profile": "photo", "filename": "cat.jpg", "size": 10})
    assert at_limit.status_code == 201
