"""tus upload throughput against a single presigned PUT, on the same local storage.

One server process serves both the delivery app (presigned PUTs) and the tus server; the
app uses SQLite and local storage, and the bench process plays the host (initiate, sign
and verify for the PUT) and the client. Each round uploads the same 200 MiB file twice:
once with tus (creation, then PATCHes of 5 MiB, the last one completing the upload and
running the trust gate), once as one presigned PUT followed by verify; which goes first
alternates. Both contenders always share the server and the client settings, on two
servers in turn, with a client that keeps one connection per upload (HTTP/1.1 keep-alive,
as tus clients and browsers do):

* ``threading``: rindle's own threading server (``rindle serve``; wsgiref with HTTP/1.1
  persistent connections).
* ``uvicorn``: the ASGI apps under uvicorn (HTTP/1.1 keep-alive).

``--close`` makes the client open a new connection for every request instead (an
HTTP/1.0 client; then tus pays one connection per chunk).

Prints both throughputs (best of the rounds) and the ratio, as the median of each round's
tus/PUT ratio (the two uploads of a round see the same load), with the load average. Bar:
tus >= 0.8x the presigned PUT.

    python bench/tus.py [--mib 200] [--chunk-mib 5] [--rounds 7] [--server both] [--close]
        [--dir /dev/shm]

Everything (database, storage, source file) lives under ``--dir``: ``/dev/shm`` when
present (memory: the protocol cost is what is measured), else the default temp dir; pass
``--dir /tmp`` for disk.

Exits 1 if an upload did not store exactly the bytes sent (correctness), not for a slow
machine. Figures and where a chunk's time goes: ``bench/RESULTS.md``, section
``bench/tus.py``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

os.environ.setdefault("RINDLE_DISABLE_PLUGIN_AUTOLOAD", "1")

from rindle import Profile, Rindle
from rindle.cli.serve import make_threading_server
from rindle.delivery import asgi_app as delivery_asgi
from rindle.delivery import wsgi_app as delivery_wsgi
from rindle.storage.local import LocalStorage
from rindle.testing.servers import free_port, serving
from rindle.web import tus_asgi, tus_wsgi

MIB = 1024 * 1024


class Bench(Profile):
    name = "bench"
    allow_mime = ("image/jpeg",)
    max_bytes = 1024 * MIB


def _actor(request: Any, profile: type[Profile]) -> str:
    return "bench"


def _router(tus: Callable[..., Iterable[bytes]], media: Callable[..., Iterable[bytes]]
            ) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        target = tus if str(environ.get("PATH_INFO", "")).startswith("/files") else media
        return target(environ, start_response)
    return app


class Client:
    """The client of both uploads: :mod:`http.client` with 1 MiB send blocks. With
    ``keep_alive`` one connection carries every request of an upload (as tus clients and
    browsers do); without, each request opens its own and closes it after the answer."""

    def __init__(self, base: str, *, keep_alive: bool) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port
        self.keep_alive = keep_alive
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=300,
                                                    blocksize=MIB)
        return self._conn

    def close(self) -> None:
        """Close the open connection, if any."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def send(self, url: str, method: str, headers: dict[str, str],
             body: bytes | BinaryIO | Slice | None = None) -> tuple[int, dict[str, str]]:
        """One request; ``(status, lower-case headers)``."""
        parts = urlsplit(url)
        conn = self._connection()
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            conn.request(method, target, body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}
        finally:
            if not self.keep_alive:
                self.close()


class Slice:
    """The next ``n`` bytes of ``f`` as a ``read(size)`` body: a chunk is streamed from the
    file in the client's 1 MiB blocks, exactly like the PUT's body (not read whole into
    memory first)."""

    def __init__(self, f: BinaryIO, n: int) -> None:
        self.f, self.left = f, n

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes, never past the slice."""
        want = self.left if size < 0 else min(size, self.left)
        data = self.f.read(want)
        self.left -= len(data)
        return data


def tus_upload(client: Client, base: str, source: Path, size: int, chunk: int) -> str:
    """Upload ``source`` through the tus server; returns the asset id."""
    tus = {"Tus-Resumable": "1.0.0"}
    status, made = client.send(f"{base}/files/", "POST", {
        **tus, "Upload-Length": str(size), "Content-Length": "0",
        "Upload-Metadata": "filename YmlnLmpwZw==,profile YmVuY2g="})
    assert status == 201, status
    location = made["location"]
    offset = 0
    asset = ""
    with open(source, "rb") as f:
        while offset < size:
            step = min(chunk, size - offset)
            f.seek(offset)
            status, answer = client.send(location, "PATCH", {
                **tus, "Upload-Offset": str(offset), "Content-Length": str(step),
                "Content-Type": "application/offset+octet-stream"}, Slice(f, step))
            assert status == 204, status
            offset = int(answer["upload-offset"])
            asset = answer.get("rindle-asset-id", asset)
    return asset


def put_upload(client: Client, app: Rindle, source: Path, size: int) -> str:
    """Upload ``source`` with one presigned PUT, then verify; returns the asset id."""
    session = app.initiate_upload("bench", filename="big.jpg", byte_size=size,
                                  content_type="image/jpeg")
    signed = app.sign_upload(session.id)
    with open(source, "rb") as f:
        status, _ = client.send(signed.url, "PUT",
                                {**signed.headers, "Content-Length": str(size)}, f)
    assert status == 201, status
    return str(app.verify_upload(session.id).id)


def build_app(tmp: Path, port: int) -> Rindle:
    """The bench app: SQLite and local storage under ``tmp``, URLs on ``port``."""
    return Rindle(database_url=f"sqlite:///{tmp / 'bench.db'}", secret_key="bench",
                  load_entrypoints=False, profiles=[Bench], tmp_dir=tmp / "tmp",
                  storages={"default": {"backend": "local", "root": str(tmp / "media"),
                                        "base_url": f"http://127.0.0.1:{port}"}})


def _asgi_router(tus: Any, media: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        target = tus if str(scope.get("path", "")).startswith("/files") else media
        await target(scope, receive, send)
    return app


def serve(tmp: Path, port: int, kind: str) -> None:
    """The server process: delivery (presigned PUTs) and tus on one server, ``kind``
    ``threading`` (rindle's, WSGI) or ``uvicorn`` (the ASGI apps, keep-alive)."""
    app = build_app(tmp, port)
    if kind == "uvicorn":
        import uvicorn

        router = _asgi_router(tus_asgi(app, authorize=_actor, mount="/files"),
                              delivery_asgi(app))
        uvicorn.run(router, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                    access_log=False, http=_uvicorn_http())
        return
    server = make_threading_server(
        _router(tus_wsgi(app, authorize=_actor, mount="/files"), delivery_wsgi(app)),
        "127.0.0.1", port, quiet=True)
    server.serve_forever()


def _uvicorn_http() -> str:
    """uvicorn's HTTP parser: ``httptools`` (C, uvicorn[standard]) when installed, else
    ``h11`` (pure Python, slower for both uploads alike)."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


#: Why each server: printed with its figures.
SERVERS = {
    "threading": "rindle's threading server (rindle serve; wsgiref, HTTP/1.1 persistent "
                 "connections)",
    "uvicorn": f"uvicorn ({_uvicorn_http()}) with the ASGI apps, HTTP/1.1 keep-alive",
}


def run_server(kind: str, tmp: Path, source: Path, args: argparse.Namespace
               ) -> tuple[dict[str, float], list[float], bool]:
    """``args.rounds`` rounds of both uploads against a ``kind`` server: the best
    throughput of each (MiB/s), each round's tus/PUT ratio, and whether every upload
    stored exactly ``args.mib`` MiB."""
    size = args.mib * MIB
    port = free_port()
    app = build_app(tmp, port)  # the host's process: initiate, sign, verify
    storage = app.storage()
    assert isinstance(storage, LocalStorage)
    base = f"http://127.0.0.1:{port}"
    best = {"tus": 0.0, "put": 0.0}
    paired: list[float] = []  # per round: tus throughput / PUT throughput
    ok = True
    with serving([sys.executable, __file__, "--serve", str(tmp), str(port), kind],
                 ready_url=f"{base}/files/", name=f"bench server ({kind})"):
        for number in range(args.rounds):
            this_round: dict[str, float] = {}
            # alternate which goes first, so a load burst or a warm cache favours neither
            for name in ("put", "tus") if number % 2 == 0 else ("tus", "put"):
                client = Client(base, keep_alive=not args.close)
                started = time.perf_counter()
                if name == "tus":
                    asset_id = tus_upload(client, base, source, size, args.chunk_mib * MIB)
                else:
                    asset_id = put_upload(client, app, source, size)
                elapsed = time.perf_counter() - started
                client.close()
                best[name] = max(best[name], args.mib / elapsed)
                this_round[name] = args.mib / elapsed
                stored = storage.path_for(app.get_asset(asset_id).storage_key)
                ok = ok and stored.stat().st_size == size
                stored.unlink()
            paired.append(this_round["tus"] / this_round["put"])
    app.close()
    return best, paired, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--chunk-mib", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--server", choices=[*SERVERS, "both"], default="both")
    parser.add_argument("--close", action="store_true",
                        help="a new connection per request (default: one per upload)")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the database, storage and source file live (default: "
                             "/dev/shm when present, so disk writeback does not swamp the "
                             "protocol cost being measured)")
    parser.add_argument("--serve", nargs=3, metavar=("DIR", "PORT", "KIND"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), args.serve[2])
        return 0
    ok = True
    print(f"{args.mib} MiB, tus in {args.chunk_mib} MiB PATCHes vs one presigned PUT, "
          f"{args.rounds} rounds, under {args.dir or tempfile.gettempdir()}, "
          f"{'a new connection per request' if args.close else 'one connection per upload'}"
          "; load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="rindle-bench-tus-", dir=args.dir) as tmp_name:
        tmp = Path(tmp_name)
        source = tmp / "source.bin"
        with open(source, "wb") as out:
            for _ in range(args.mib):
                out.write(os.urandom(MIB))
        schema = build_app(tmp, 0)
        schema.migrate()
        schema.close()
        for kind in (SERVERS if args.server == "both" else [args.server]):
            best, paired, fine = run_server(kind, tmp, source, args)
            ok = ok and fine
            ratio = statistics.median(paired)
            print(f"\n{kind}: {SERVERS[kind]}")
            print(f"  tus ({args.chunk_mib} MiB PATCHes): {best['tus']:.1f} MiB/s (best)")
            print(f"  presigned PUT (one request):  {best['put']:.1f} MiB/s (best)")
            print(f"  ratio of the bests: {best['tus'] / best['put']:.2f}x; per round: "
                  + ", ".join(f"{r:.2f}x" for r in paired))
            print(f"  ratio tus/PUT (median of rounds): {ratio:.2f}x "
                  f"(bar >= 0.80x: {'met' if ratio >= 0.8 else 'MISSED'})")
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if not ok:
        print("an upload stored the wrong number of bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
