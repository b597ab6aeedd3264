"""Routing of the delivery app: methods, unknown paths, traversal, prefixes, mount."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from rindle import Rindle
from rindle.delivery import wsgi_app
from rindle.domain.models import Asset
from rindle.errors import ConfigError

from .conftest import Served, files_under

KEY = "doc/0190/a.txt"


def test_other_methods_are_405_with_allow(served: Served) -> None:
    served.storage.put(KEY, io.BytesIO(b"hello"))
    url = served.storage.url(KEY, expires_in=60)
    for method in ("DELETE", "POST", "PATCH", "OPTIONS"):
        resp = served.request(method, url)
        assert resp.status == 405, method
        assert resp.header("Allow") == "GET, HEAD, PUT"
    assert served.storage.path_for(KEY).read_bytes() == b"hello"


@pytest.mark.parametrize("path", ["/", "/other/x", "/mediax/a", "/webhooks/mux", "/media"])
def test_paths_outside_the_routes_are_404(served: Served, path: str) -> None:
    assert served.request("GET", path).status == 404


@pytest.mark.parametrize("path", [
    "/media/../secret.txt",
    "/media/doc/../../secret.txt",
    "/media/doc/%2e%2e/%2E%2E/secret.txt",
    "/media/doc//a.txt",
    "/media/./doc/a.txt",
    "/media//etc/passwd",
    "/media/doc/a%00.txt",
    "/media/doc\\..\\a.txt",
    "/media/%ff%fe",
])
def test_traversal_and_bad_keys_are_400(served: Served, tmp_path: Path, path: str) -> None:
    (tmp_path / "secret.txt").write_text("top secret")
    for method in ("GET", "PUT"):
        resp = served.request(method, path + "?token=x", b"evil" if method == "PUT" else None)
        assert resp.status == 400, (method, path)
        assert b"top secret" not in resp.body
    assert (tmp_path / "secret.txt").read_text() == "top secret"
    assert files_under(served.storage.root) == []


def test_storages_are_routed_by_url_prefix(serve: Callable[..., Served], tmp_path: Path) -> None:
    served = serve(storages={
        "default": {"backend": "local", "root": str(tmp_path / "a")},
        "private": {"backend": "local", "root": str(tmp_path / "b"), "url_prefix": "/private"},
        "rooted": {"backend": "local", "root": str(tmp_path / "c"), "url_prefix": "/"},
    })
    for name in ("default", "private", "rooted"):
        served.app.storage(name).put(f"doc/0190/{name}.txt", io.BytesIO(name.encode()))
        served.register(f"doc/0190/{name}.txt", "text/plain")
    for name, prefix in (("default", "/media/"), ("private", "/private/"), ("rooted", "/doc/")):
        url = served.app.storage(name).url(f"doc/0190/{name}.txt", expires_in=60)
        assert url.split(str(served.port), 1)[1].startswith(prefix)
        resp = served.request("GET", url)
        assert (resp.status, resp.body) == (200, name.encode())
    assert [r.prefix for r in served.wsgi.routes] == ["/webhooks", "/private", "/media", ""]
    assert served.request("GET", "/webhooks/mux").status == 404


def test_two_local_storages_on_one_prefix_are_refused(tmp_path: Path) -> None:
    app = Rindle(database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key="s",
                 storages={"a": {"backend": "local", "root": str(tmp_path / "a")},
                           "b": {"backend": "local", "root": str(tmp_path / "b")}},
                 load_entrypoints=False)
    with pytest.raises(ConfigError, match="'a' and 'b' both use url_prefix '/media'"):
        wsgi_app(app)
    hooks = Rindle(database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key="s",
                   storages={"a": {"backend": "local", "root": str(tmp_path / "a"),
                                   "url_prefix": "/webhooks/"}},
                   load_entrypoints=False)
    with pytest.raises(ConfigError, match="reserved for webhooks"):
        wsgi_app(hooks)
    with pytest.raises(ValueError, match="max_put_bytes"):
        wsgi_app(hooks, max_put_bytes=-1)


def _call(application: Any, path: str, query: str = "") -> tuple[str, bytes]:
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None
                       ) -> Callable[[bytes], object]:
        seen.append(status)
        return lambda data: None

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
               "wsgi.input": io.BytesIO()}
    body: Iterable[bytes] = application(environ, start_response)
    try:
        data = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close:
            close()
    return seen[0], data


def test_mount_prefix_is_stripped_before_routing(tmp_path: Path) -> None:
    app = Rindle(database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key="s",
                 storages={"default": {"backend": "local", "root": str(tmp_path / "m")}},
                 load_entrypoints=False)
    app.migrate()
    app.storage().put(KEY, io.BytesIO(b"mounted"))
    with app.db.transaction() as s:
        s.add(Asset(state="ready", storage_key=KEY, profile="p", content_type="text/plain"))
    query = app.storage().url(KEY, expires_in=60).split("?", 1)[1]
    mounted = wsgi_app(app, mount="/rindle")
    assert _call(mounted, "/rindle/media/" + KEY, query) == ("200 OK", b"mounted")
    assert _call(mounted, "/media/" + KEY, query)[0] == "404 Not Found"
    assert _call(wsgi_app(app), "/media/" + KEY, query) == ("200 OK", b"mounted")
