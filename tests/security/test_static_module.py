"""Attacks on ``{prefix}/static/``: only the named module is served; no other name, no path
(traversal, encoded or not, a package file, the Python sources) reaches the file system,
and the answer can never be sniffed into HTML or run as a document."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from rindle.web import upload_api_wsgi
from tests.web.conftest import header_actor, serve_wsgi
from tests.web.static_kit import static_app


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The upload API at ``/api``, once per module (the route reads no database)."""
    app = static_app(tmp_path_factory.mktemp("static"))
    with serve_wsgi(upload_api_wsgi(app, authorize=header_actor, mount="/api")) as url:
        yield f"{url}/api"


@pytest.mark.parametrize("path", [
    "static/", "static/rindle-upload.JS", "static/rindle-upload.js.map",
    "static/static.py", "static/__init__.py", "static/assets/rindle-upload.js",
    "static/../static/rindle-upload.js/..", "static/%2e%2e/static.py",
    "static/..%2fstatic.py", "static/rindle-upload.js/extra", "static/rindle-upload.js%00",
    "static/RINDLE-UPLOAD.JS", "assets/rindle-upload.js", "static/.%2e/http.py",
])
def test_only_the_module_is_served(base: str, path: str) -> None:
    answer = requests.get(f"{base}/{path}", timeout=30)
    assert answer.status_code == 404, path
    assert answer.json()["error"]["code"] == "not_found"
    assert b"export" not in answer.content


def test_the_module_cannot_be_taken_for_a_document(base: str) -> None:
    answer = requests.get(f"{base}/static/rindle-upload.js",
                          headers={"Accept": "text/html"}, timeout=30)
    assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    # were it opened as a page, it could run nothing and load nothing
    assert answer.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_no_authorization_is_needed_and_none_is_asked(base: str) -> None:
    refused = requests.get(f"{base}/static/rindle-upload.js", headers={"X-Actor": ""},
                           timeout=30)
    assert refused.status_code == 200
    assert "Set-Cookie" not in refused.headers and "Vary" not in refused.headers
