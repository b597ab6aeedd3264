"""The browser tests' host: one loopback origin serving everything a page needs.

* ``/api/...``: rindle's upload JSON API (and its ``/api/static/rindle-upload.js``);
* ``/tus/...``: rindle's tus server (default profile ``photo``);
* ``/api/events``: rindle's Server-Sent Events stream;
* ``/app/page/<name>``: a page of ``tests/browser/pages``; ``/app/npm/<path>``: a file of
  the npm install (Uppy's and tus-js-client's browser bundles); ``/app/files/<name>``: a
  file the test generated; ``/app/variant?asset=&name=``: 302 to the variant's signed URL;
  ``/app/state?asset=``: the asset's and its variants' states; ``/app/events-url?asset=``:
  the SSE URL with a token for that asset (``app.subscribe_token``);
* anything else: the delivery app (presigned PUTs and signed GETs of local storage).

Authorization is the ``actor`` cookie (none: refused). Run as a process
(``python -m tests.browser.host OPTIONS.json``) for the kill-and-restart test: with
``hold_at`` set, the first tus PATCH at an offset of at least ``hold_at`` writes ``marker``
(JSON ``{"offset", "path"}``) and never answers, so the test kills the process while the
server's offset is exactly known; every tus PATCH's ``Upload-Offset`` is appended to
``patch_log``.
"""

from __future__ import annotations

import json
import mimetypes
import sys
import threading
from collections.abc import Callable, Iterable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from rindle import Profile, Rindle, variants

PAGES = Path(__file__).resolve().parent / "pages"
MIB = 1024 * 1024

StartResponse = Callable[..., Any]


class Photo(Profile):
    """What every browser test uploads (guides/browser_uploads.md's profile)."""

    name = "photo"
    allow_mime = ("image/jpeg", "image/png")
    max_bytes = 40 * MIB
    variants = {"thumb": variants.Image(mode="fill", width=64, height=64, format="png")}


PROFILES = [Photo]


def cookie_actor(request: Any, profile: type[Profile]) -> str | None:
    """The hosts' ``authorize``: the ``actor`` cookie of the WSGI environ (none: refused)."""
    jar = SimpleCookie(str(request.get("HTTP_COOKIE", "")))
    morsel = jar.get("actor")
    return morsel.value if morsel is not None and morsel.value else None


def _send(start: StartResponse, status: str, body: bytes, ctype: str,
          extra: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    start(status, [("Content-Type", ctype), ("Content-Length", str(len(body))),
                   ("Cache-Control", "no-store"), *extra])
    return [body]


def _json(start: StartResponse, payload: Any, status: str = "200 OK") -> list[bytes]:
    return _send(start, status, json.dumps(payload).encode(), "application/json")


def _file(start: StartResponse, folder: Path, name: str) -> list[bytes]:
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()) or not path.is_file():
        return _send(start, "404 Not Found", b"not found", "text/plain")
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix in (".js", ".mjs"):
        ctype = "text/javascript"
    return _send(start, "200 OK", path.read_bytes(), ctype)


def build(app: Rindle, *, npm_dir: Path, files_dir: Path,
          hold_at: int | None = None, marker: Path | None = None,
          patch_log: Path | None = None, fail_puts: int = 0,
          put_log: list[str] | None = None) -> Host:
    """The host's WSGI app for ``app`` (routes in the module docstring). The first
    ``fail_puts`` presigned PUTs are answered 503 unread; ``put_log`` gets the status code
    of every PUT to the delivery app."""
    from rindle.delivery import wsgi_app as delivery_wsgi
    from rindle.web import tus_wsgi, upload_api_wsgi
    from rindle.web.events import wsgi_app as events_wsgi

    api = upload_api_wsgi(app, authorize=cookie_actor, mount="/api",
                          multipart_threshold=5 * MIB)
    tus = tus_wsgi(app, authorize=cookie_actor, mount="/tus", profile="photo")
    delivery = delivery_wsgi(app)
    events = events_wsgi(app, mount="/api")
    held = threading.Event()  # set forever once a PATCH was held: never answered

    def tus_watch(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        method = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE") or environ["REQUEST_METHOD"]
        if method == "PATCH":
            offset = int(environ.get("HTTP_UPLOAD_OFFSET", "-1"))
            if patch_log is not None:
                with patch_log.open("a") as log:
                    log.write(f"{offset}\n")
            if hold_at is not None and marker is not None and offset >= hold_at:
                marker.write_text(json.dumps({"offset": offset,
                                              "path": environ["PATH_INFO"]}))
                held.wait()  # the test kills this process now
        return tus(environ, start)

    failures = [fail_puts]

    def delivery_watch(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "PUT":
            return delivery(environ, start)
        if failures[0] > 0:
            failures[0] -= 1
            if put_log is not None:
                put_log.append("503")
            return _send(start, "503 Service Unavailable", b"try again", "text/plain")

        def logged(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            if put_log is not None:
                put_log.append(status.split()[0])
            return start(status, headers, *rest)

        return delivery(environ, logged)

    def app_routes(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"][len("/app/"):]
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if path.startswith("page/"):
            return _file(start, PAGES, path[len("page/"):])
        if path.startswith("npm/"):
            return _file(start, npm_dir / "node_modules", path[len("npm/"):])
        if path.startswith("files/"):
            return _file(start, files_dir, path[len("files/"):])
        if path == "variant":
            url = app.url(query["asset"], query["name"])
            start("302 Found", [("Location", url), ("Content-Length", "0")])
            return [b""]
        if path == "state":
            asset = app.get_asset(query["asset"])
            return _json(start, {"state": asset.state, "variants": {
                name: "ready" for name in app.ready_variants(asset.id)}})
        if path == "events-url":
            token = app.subscribe_token([query["asset"]], expires_in=300)
            return _json(start, {"url": f"/api/events?token={token}"})
        return _send(start, "404 Not Found", b"not found", "text/plain")

    def host(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", "/"))
        if path == "/api/events":
            return events(environ, start)
        if path.startswith("/api/") or path == "/api":
            return api(environ, start)
        if path.startswith("/tus/") or path == "/tus":
            return tus_watch(environ, start)
        if path.startswith("/app/"):
            return app_routes(environ, start)
        return delivery_watch(environ, start)

    return Host(host, events.core.close)


class Host:
    """The host's WSGI callable; :meth:`close` stops the SSE stream's listener thread."""

    def __init__(self, app: Callable[..., Iterable[bytes]], close: Callable[[], None]) -> None:
        self.app = app
        self.close = close

    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        """Answer one request (routes in the module docstring)."""
        return self.app(environ, start)


def app_options(database_url: str, root: Path, tmp_dir: Path, base_url: str) -> dict[str, Any]:
    """``Rindle(**options)`` for a host on ``base_url`` over local storage at ``root``."""
    return {"database_url": database_url, "secret_key": "browser-test-secret",
            "storages": {"default": {"backend": "local", "root": str(root),
                                     "base_url": base_url}},
            "tmp_dir": str(tmp_dir), "load_entrypoints": False, "profiles": PROFILES}


def main(argv: list[str]) -> None:
    """Serve the host on ``port`` of the options file until killed."""
    from rindle.cli.serve import make_threading_server

    opts = json.loads(Path(argv[0]).read_text())
    app = Rindle(**app_options(opts["database_url"], Path(opts["root"]), Path(opts["tmp_dir"]),
                               f"http://127.0.0.1:{opts['port']}"))
    host = build(app, npm_dir=Path(opts["npm_dir"]), files_dir=Path(opts["files_dir"]),
                 hold_at=opts.get("hold_at"),
                 marker=Path(opts["marker"]) if opts.get("marker") else None,
                 patch_log=Path(opts["patch_log"]) if opts.get("patch_log") else None)
    server = make_threading_server(host, "127.0.0.1", int(opts["port"]), quiet=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
