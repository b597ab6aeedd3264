"""``[delivery] accel_redirect`` (nginx) and ``x_sendfile`` (Apache, lighttpd): Python
checks every request exactly as before and only then hands the file over.

Real servers on loopback: rindle's threaded delivery server, and Debian's nginx in front of
it running the ``nginx`` block of guides/production.md (tests/nginx_front.py). Both
database dialects. Attack cases: tampered tokens, paths leaving the root (dot segments,
encoded dots and slashes, absolute, backslash, NUL), a symbolic link out of the root,
keys nginx would decode differently (``%``, ``?``), unpromoted and quarantined assets,
direct requests for the internal location; none of them gets a byte of a file from nginx.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import pytest

from rindle import Rindle
from rindle.cli.serve import make_threading_server
from rindle.config import DeliverySettings
from rindle.delivery import wsgi_app
from rindle.domain.models import Asset
from rindle.errors import ConfigError
from rindle.ids import uuid7
from rindle.storage.local import LocalStorage
from tests.apps import MakeApp
from tests.nginx_front import NGINX, NginxFront

SECURITY = {"content-security-policy": "default-src 'none'; sandbox",
            "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}
DATA = bytes(range(256)) * 40 + b"tail"  # 10244 bytes, every byte value


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def request(port: int, target: str, method: str = "GET",
            headers: dict[str, str] | None = None) -> Answer:
    """One request with ``target`` sent verbatim (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
    finally:
        conn.close()


def target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + "?" + parts.query


class _Slot:
    def __init__(self) -> None:
        self.target: WSGIApplication | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        assert self.target is not None
        return self.target(environ, start_response)


@dataclass
class Stack:
    """The app, its storage, the delivery server's port and nginx in front."""

    app: Rindle
    upstream_port: int
    front: NginxFront

    @property
    def storage(self) -> LocalStorage:
        storage = self.app.storage()
        assert isinstance(storage, LocalStorage)
        return storage

    def publish(self, key: str, data: bytes = DATA, *, state: str = "ready",
                content_type: str = "image/png") -> str:
        """:func:`put_asset` on this stack's app."""
        return put_asset(self.app, key, data, state=state, content_type=content_type)

    def via_nginx(self, path: str, method: str = "GET", **headers: str) -> Answer:
        return request(self.front.port, path, method, headers)

    def direct(self, path: str, method: str = "GET", **headers: str) -> Answer:
        return request(self.upstream_port, path, method, headers)


@contextlib.contextmanager
def delivery_server(application: WSGIApplication) -> Iterator[int]:
    """rindle serve's threaded server for ``application`` on a free loopback port."""
    server = make_threading_server(application, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def put_asset(app: Rindle, key: str, data: bytes = DATA, *, state: str = "ready",
              content_type: str = "image/png") -> str:
    """Store ``data`` at ``key`` of the default local storage as an asset's original;
    returns the request target of a signed GET."""
    storage = app.storage()
    assert isinstance(storage, LocalStorage)
    path = storage.path_for(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    with app.db.transaction() as s:
        s.add(Asset(id=uuid7(), state=state, storage_key=key, profile="test",
                    content_type=content_type))
    return target(storage.url(key, expires_in=600))


@dataclass
class Front:
    """nginx and the delivery server for the whole module; each test plugs its app in."""

    slot: _Slot
    upstream_port: int
    nginx: NginxFront
    root: Path


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """Debian's nginx running the guide's block, in front of rindle serve's threaded server
    (started once per module: the app behind it changes per test)."""
    if not NGINX.exists():
        pytest.fail("nginx is missing: run scripts/system-deps.sh (Debian package nginx)")
    work = tmp_path_factory.mktemp("accel")
    root = work / "media"
    root.mkdir()
    slot = _Slot()
    with delivery_server(slot) as upstream_port:
        nginx = NginxFront(work / "nginx", upstream_port=upstream_port, root=root)
        with nginx:
            yield Front(slot, upstream_port, nginx, root)


@pytest.fixture
def stack(front: Front, make_app: MakeApp) -> Iterator[Stack]:
    """``accel_redirect = "/protected/"`` behind nginx, on a fresh database (both dialects);
    the storage root is the one nginx aliases, so each test uses keys of its own."""
    app = make_app(storages={"default": {"backend": "local", "root": str(front.root),
                                         "base_url": front.nginx.base_url}},
                   delivery={"accel_redirect": "/protected/"})
    front.slot.target = wsgi_app(app)
    try:
        yield Stack(app, front.upstream_port, front.nginx)
    finally:
        front.slot.target = None


def nginx_etag(path: Path) -> str:
    """The ETag nginx's static module gives a file (rindle's own has another shape)."""
    st = path.stat()
    return f'"{int(st.st_mtime):x}-{st.st_size:x}"'


# --- through nginx ------------------------------------------------------------------------


def test_full_get_is_sent_by_nginx_with_the_apps_headers(stack: Stack) -> None:
    url = stack.publish("photo/a1/original.png")
    got = stack.via_nginx(url)
    assert got.status == 200 and got.body == DATA
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-length"] == str(len(DATA))
    assert got.headers["etag"] == nginx_etag(stack.storage.path_for("photo/a1/original.png"))
    assert re.fullmatch(r"private, max-age=(600|599)", got.headers["cache-control"])
    assert "expires" in got.headers
    for name, value in SECURITY.items():
        assert got.headers[name] == value, name
    assert "x-accel-redirect" not in got.headers


def test_range_requests_are_answered_by_nginx(stack: Stack) -> None:
    url = stack.publish("photo/a2/original.png")
    size = len(DATA)
    got = stack.via_nginx(url, Range="bytes=10-19")
    assert (got.status, got.body) == (206, DATA[10:20])
    assert got.headers["content-range"] == f"bytes 10-19/{size}"
    assert got.headers["content-security-policy"] == SECURITY["content-security-policy"]
    last = stack.via_nginx(url, Range=f"bytes={size - 1}-")  # the last byte: satisfiable
    assert (last.status, last.body) == (206, DATA[-1:])
    suffix = stack.via_nginx(url, Range="bytes=-4")
    assert (suffix.status, suffix.body) == (206, b"tail")
    past = stack.via_nginx(url, Range=f"bytes={size}-")  # one past the end
    assert past.status == 416
    assert past.headers["content-range"] == f"bytes */{size}"
    assert DATA[:64] not in past.body


def test_head_and_conditional_get(stack: Stack) -> None:
    url = stack.publish("photo/a3/original.png")
    head = stack.via_nginx(url, "HEAD")
    assert (head.status, head.body) == (200, b"")
    assert head.headers["content-length"] == str(len(DATA))
    etag = stack.via_nginx(url).headers["etag"]
    again = stack.via_nginx(url, **{"If-None-Match": etag})
    assert (again.status, again.body) == (304, b"")


def test_a_tampered_token_is_refused_by_python_and_nginx_never_serves(stack: Stack) -> None:
    url = stack.publish("photo/a4/original.png")
    for forged in (url.replace("token=", "token=A"), url.split("?")[0] + "?token=",
                   url.split("?")[0], url.replace("/a4/", "/a5/")):
        got = stack.via_nginx(forged)
        assert got.status in (403, 404), (forged, got.status)
        assert DATA[:64] not in got.body
        assert got.body.startswith((b"forbidden: ", b"not found"))
        assert got.headers["content-type"] == "text/plain; charset=utf-8"
        for name, value in SECURITY.items():
            assert got.headers[name] == value


def test_the_internal_location_is_not_reachable_from_outside(stack: Stack) -> None:
    stack.publish("photo/a6/original.png")
    for path in ("/protected/photo/a6/original.png", "/protected/", "/protected",
                 "/PROTECTED/photo/a6/original.png", "/media/../protected/photo/a6/original.png",
                 "/%70rotected/photo/a6/original.png"):
        got = stack.via_nginx(path)
        assert got.status in (400, 403, 404), (path, got.status)
        assert DATA[:64] not in got.body, path


def test_unusual_keys_are_percent_encoded_and_served(stack: Stack) -> None:
    key = "photo/a7/ünï cødé #1+x.png"
    url = stack.publish(key)
    answer = stack.direct(url)
    assert answer.headers["x-accel-redirect"] == "/protected/" + quote(key, safe="/")
    assert answer.headers["x-accel-redirect"].isascii()
    got = stack.via_nginx(url)
    assert (got.status, got.body) == (200, DATA)


def test_keys_nginx_would_decode_differently_are_streamed_by_python(stack: Stack) -> None:
    # handed to nginx, "%" would be decoded once more and "?" would end the path: Python
    # streams such a key itself
    for key in ("photo/a8/100%2e.png", "photo/a8/what?.png"):
        url = stack.publish(key)
        direct = stack.direct(url)
        assert direct.status == 200 and direct.body == DATA, key
        assert "x-accel-redirect" not in direct.headers
        assert stack.via_nginx(url).body == DATA, key


# --- the Python answer itself -------------------------------------------------------------


def test_the_app_answers_with_the_header_and_no_body(stack: Stack) -> None:
    url = stack.publish("photo/b1/original.png", content_type="image/svg+xml")
    got = stack.direct(url)
    assert got.status == 200 and got.body == b""
    assert got.headers["x-accel-redirect"] == "/protected/photo/b1/original.png"
    assert got.headers["content-length"] == "0"
    assert got.headers["content-type"] == "image/svg+xml"
    assert got.headers["content-disposition"].startswith("attachment")  # never inline SVG
    for name, value in SECURITY.items():
        assert got.headers[name] == value
    # nginx keeps the disposition: an SVG is never rendered on the media origin
    through = stack.via_nginx(url)
    assert through.headers["content-disposition"].startswith("attachment")
    assert through.body == DATA


#: Request paths that would leave the storage root, raw and percent-encoded.
ESCAPES = ("/media/photo/../../etc/passwd", "/media/photo/%2e%2e/%2e%2e/etc/passwd",
           "/media/photo/..%2f..%2fetc/passwd", "/media//etc/passwd", "/media/photo/./x.png",
           "/media/photo\\..\\x.png", "/media/photo/%00.png", "/media/%2fetc/passwd")


def test_paths_leaving_the_root_never_reach_nginx(stack: Stack) -> None:
    url = stack.publish("photo/c1/original.png")
    token = url.split("?", 1)[1]
    for path in ESCAPES:
        got = stack.direct(f"{path}?{token}")
        assert got.status in (400, 403, 404), (path, got.status)
        assert "x-accel-redirect" not in got.headers, path
        through = stack.via_nginx(f"{path}?{token}")
        assert through.status in (400, 403, 404), (path, through.status)
        assert b"root:" not in through.body and DATA[:64] not in through.body, path


def test_a_symlink_out_of_the_root_is_not_handed_over(stack: Stack, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_bytes(b"outside the storage root")
    link = stack.storage.path_for("photo/d1/original.png")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)  # the other dialect's run made it
    os.symlink(secret, link)
    with stack.app.db.transaction() as s:
        s.add(Asset(id=uuid7(), state="ready", storage_key="photo/d1/original.png",
                    profile="test", content_type="image/png"))
    url = target(stack.storage.url("photo/d1/original.png", expires_in=600))
    got = stack.direct(url)
    assert got.status == 404 and "x-accel-redirect" not in got.headers
    assert b"outside" not in stack.via_nginx(url).body


def test_undeliverable_assets_are_not_handed_over(stack: Stack) -> None:
    for state in ("staged", "analyzing", "quarantined", "deleted"):
        url = stack.publish(f"photo/e-{state}/original.png", state=state)
        got = stack.direct(url)
        assert got.status == 404 and "x-accel-redirect" not in got.headers, state
        assert stack.via_nginx(url).body == b"not found\n", state


def test_x_sendfile_names_the_file(make_app: MakeApp) -> None:
    app = make_app(delivery={"x_sendfile": True})
    key = "photo/f1/a b.png"
    url = put_asset(app, key)
    with delivery_server(wsgi_app(app)) as port:
        got = request(port, url)
    assert got.status == 200 and got.body == b""
    storage = app.storage()
    assert isinstance(storage, LocalStorage)
    assert got.headers["x-sendfile"] == quote(str(storage.path_for(key)), safe="/")
    assert "x-accel-redirect" not in got.headers
    assert got.headers["x-content-type-options"] == "nosniff"


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["protected/", "/protected", "/", "/a/../b/", "/a b/",
                                   "/%2e%2e/", "/a?b/", "http://x/protected/", 1, True])
def test_bad_accel_redirect_is_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"\[delivery\] accel_redirect must be"):
        DeliverySettings.parse({"accel_redirect": value})


def test_settings_defaults_and_exclusivity() -> None:
    plain = DeliverySettings.parse({})
    assert (plain.accel_redirect, plain.x_sendfile) == (None, False)
    assert DeliverySettings.parse({"accel_redirect": "/a/b-c_d.e~/"}).accel_redirect == \
        "/a/b-c_d.e~/"
    with pytest.raises(ConfigError, match="not both"):
        DeliverySettings.parse({"accel_redirect": "/protected/", "x_sendfile": True})
    with pytest.raises(ConfigError, match="x_sendfile must be true or false"):
        DeliverySettings.parse({"x_sendfile": "yes"})
    with pytest.raises(ConfigError, match="unknown"):
        DeliverySettings.parse({"accel_redirect_prefix": "/p/"})


def test_accel_redirect_serves_one_local_storage(make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app(storages={
        "default": {"backend": "local", "root": str(tmp_path / "a")},
        "archive": {"backend": "local", "root": str(tmp_path / "b"), "url_prefix": "/arch"}},
        delivery={"accel_redirect": "/protected/"})
    with pytest.raises(ConfigError, match="accel_redirect hands files to one nginx location"):
        wsgi_app(app)


def test_without_the_setting_python_streams(make_app: MakeApp) -> None:
    app = make_app()
    url = put_asset(app, "photo/g1/original.png")
    with delivery_server(wsgi_app(app)) as port:
        got = request(port, url)
    assert (got.status, got.body) == (200, DATA)
    assert "x-accel-redirect" not in got.headers and "x-sendfile" not in got.headers


def test_the_asgi_app_hands_over_the_same_way(make_app: MakeApp) -> None:
    from rindle.delivery import asgi_app
    from tests.uvicorn_server import UvicornThread

    app = make_app(delivery={"accel_redirect": "/protected/"})
    url = put_asset(app, "photo/h1/ünï.png")
    server = UvicornThread()
    server.start(asgi_app(app))
    try:
        got = request(server.port, url)
        tampered = request(server.port, url.replace("token=", "token=A"))
    finally:
        server.stop()
    assert got.status == 200 and got.body == b""
    assert got.headers["x-accel-redirect"] == "/protected/photo/h1/%C3%BCn%C3%AF.png"
    for name, value in SECURITY.items():
        assert got.headers[name] == value
    assert tampered.status == 403 and "x-accel-redirect" not in tampered.headers
