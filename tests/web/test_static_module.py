"""``GET {prefix}/static/rindle-upload.js``: the browser module served by the upload API
mount over real loopback HTTP (WSGI and native ASGI): its bytes are the package data, its
type, security and caching headers exact, ``If-None-Match`` answered 304, ``HEAD`` bodiless,
other methods 405."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from importlib import resources
from typing import Any

import pytest
import requests

from rindle.web import upload_api_asgi, upload_api_wsgi
from rindle.web.static import CACHE_CONTROL, script_bytes
from tests.web.conftest import header_actor, serve_asgi, serve_wsgi
from tests.web.static_kit import static_app

SOURCE = resources.files("rindle.web").joinpath("assets/rindle-upload.js").read_bytes()
ETAG = '"' + hashlib.sha256(SOURCE).hexdigest()[:32] + '"'


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[str]:
    """The upload API mounted at ``/api`` (WSGI under rindle's server, ASGI under uvicorn),
    once per module: the route reads no database (the app has none migrated)."""
    app = static_app(tmp_path_factory.mktemp("static"))
    serve: Callable[..., AbstractContextManager[str]]
    mounted: Any
    if request.param == "wsgi":
        mounted, serve = upload_api_wsgi(app, authorize=header_actor, mount="/api"), serve_wsgi
    else:
        mounted, serve = upload_api_asgi(app, authorize=header_actor, mount="/api"), serve_asgi
    with serve(mounted) as url:
        yield f"{url}/api"


def test_the_module_is_served_with_script_headers(base: str) -> None:
    answer = requests.get(f"{base}/static/rindle-upload.js", timeout=30)
    assert answer.status_code == 200
    assert answer.content == SOURCE == script_bytes("rindle-upload.js")[0]
    assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert answer.headers["Content-Length"] == str(len(SOURCE))
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Cross-Origin-Resource-Policy"] == "same-site"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["Cache-Control"] == CACHE_CONTROL == "public, max-age=3600"
    assert answer.headers["ETag"] == ETAG
    assert b"export async function upload(" in SOURCE


def test_if_none_match_is_304_and_head_has_no_body(base: str) -> None:
    url = f"{base}/static/rindle-upload.js"
    for tags in (ETAG, f"W/{ETAG}", f'"other", {ETAG}', "*"):
        again = requests.get(url, headers={"If-None-Match": tags}, timeout=30)
        assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", ETAG)
    stale = requests.get(url, headers={"If-None-Match": '"stale"'}, timeout=30)
    assert (stale.status_code, stale.content) == (200, SOURCE)
    head = requests.head(url, timeout=30)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Length"] == str(len(SOURCE))


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(base: str, method: str) -> None:
    answer = requests.request(method, f"{base}/static/rindle-upload.js", timeout=30)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "GET, HEAD"
    assert answer.json()["error"]["code"] == "method_not_allowed"
