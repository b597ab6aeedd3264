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

Each round also sends the same bytes, the same way (5 MiB PATCHes, then one PUT), to a
*floor*: a body sink on the same server that runs no upload protocol at all (it reads the
body in rindle's blocks and appends it to a file). Its ratio is what this server, client
and machine allow any protocol of 5 MiB requests, before tus does anything.

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
from rindle.delivery.body import RequestBody
from rindle.storage.blocks import read_blocks
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


def _router(tus: Callable[..., Iterable[bytes]], media: Callable[..., Iterable[bytes]],
            sink: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        target = (tus if path.startswith("/files") else sink if path == "/sink"
                  else media)
        return target(environ, start_response)
    return app


def _sink_file(tmp: Path, method: str) -> int:
    """The floor's file: a PUT starts it again, a PATCH appends."""
    fd = os.open(tmp / "sink.bin", os.O_WRONLY | os.O_CREAT
                 | (os.O_TRUNC if method == "PUT" else 0), 0o600)
    os.lseek(fd, 0, os.SEEK_END)
    return fd


def _sink_wsgi(tmp: Path) -> Callable[..., Iterable[bytes]]:
    """The floor under WSGI: the body through :func:`read_blocks`, appended to a file."""
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = RequestBody.from_environ(environ)
        fd = _sink_file(tmp, str(environ["REQUEST_METHOD"]))
        try:
            for block in read_blocks(body):
                while block:
                    block = block[os.write(fd, block):]
        finally:
            os.close(fd)
        start_response("204 No Content", [("Content-Length", "0")])
        return [b""]
    return app


def _sink_asgi(tmp: Path) -> Any:
    """The floor under ASGI: each body message appended to a file."""
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        fd = _sink_file(tmp, str(scope["method"]))
        try:
            more = True
            while more:
                message = await receive()
                block = memoryview(message.get("body", b""))
                while block:
                    block = block[os.write(fd, block):]
                more = message.get("more_body", False)
        finally:
            os.close(fd)
        await send({"type": "http.response.start", "status": 204,
                    "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
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


def sink_upload(client: Client, base: str, source: Path, size: int, chunk: int | None
                ) -> None:
    """The floor: ``source`` to the sink in PATCHes of ``chunk`` bytes, or in one PUT
    (``chunk`` ``None``)."""
    with open(source, "rb") as f:
        if chunk is None:
            status, _ = client.send(f"{base}/sink", "PUT", {"Content-Length": str(size)}, f)
            assert status == 204, status
            return
        offset = 0
        while offset < size:
            step = min(chunk, size - offset)
            f.seek(offset)
            status, _ = client.send(f"{base}/sink", "PATCH", {
                "Content-Length": str(step),
                "Content-Type": "application/offset+octet-stream"}, Slice(f, step))
            assert status == 204, status
            offset += step


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


def _asgi_router(tus: Any, media: Any, sink: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        target = (tus if path.startswith("/files") else sink if path == "/sink"
                  else media)
        await target(scope, receive, send)
    return app


def serve(tmp: Path, port: int, kind: str) -> None:
    """The server process: delivery (presigned PUTs) and tus on one server, ``kind``
    ``threading`` (rindle's, WSGI) or ``uvicorn`` (the ASGI apps, keep-alive)."""
    app = build_app(tmp, port)
    if kind == "uvicorn":
        import uvicorn

        router = _asgi_router(tus_asgi(app, authorize=_actor, mount="/files"),
                              delivery_asgi(app), _sink_asgi(tmp))
        uvicorn.run(router, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                    access_log=False, http=_uvicorn_http())
        return
    server = make_threading_server(
        _router(tus_wsgi(app, authorize=_actor, mount="/files"), delivery_wsgi(app),
                _sink_wsgi(tmp)),
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
               ) -> tuple[dict[str, float], list[float], list[float], bool]:
    """``args.rounds`` rounds of both uploads and of the floor's two against a ``kind``
    server: the best throughput of each (MiB/s), each round's tus/PUT ratio and floor
    ratio (PATCHes/PUT to the sink), and whether every upload stored exactly
    ``args.mib`` MiB."""
    size = args.mib * MIB
    port = free_port()
    app = build_app(tmp, port)  # the host's process: initiate, sign, verify
    storage = app.storage()
    assert isinstance(storage, LocalStorage)
    base = f"http://127.0.0.1:{port}"
    best = {"tus": 0.0, "put": 0.0, "sink-patch": 0.0, "sink-put": 0.0}
    paired: list[float] = []  # per round: tus throughput / PUT throughput
    floor: list[float] = []  # per round: sink PATCHes throughput / sink PUT throughput
    ok = True
    sink = tmp / "sink.bin"
    with serving([sys.executable, __file__, "--serve", str(tmp), str(port), kind],
                 ready_url=f"{base}/files/", name=f"bench server ({kind})"):
        for number in range(args.rounds):
            this_round: dict[str, float] = {}
            # alternate which goes first, so a load burst or a warm cache favours neither
            order = ["put", "tus", "sink-put", "sink-patch"]
            for name in order if number % 2 == 0 else order[::-1]:
                client = Client(base, keep_alive=not args.close)
                started = time.perf_counter()
                asset_id = None
                if name == "tus":
                    asset_id = tus_upload(client, base, source, size, args.chunk_mib * MIB)
                elif name == "put":
                    asset_id = put_upload(client, app, source, size)
                else:
                    sink_upload(client, base, source, size,
                                args.chunk_mib * MIB if name == "sink-patch" else None)
                elapsed = time.perf_counter() - started
                client.close()
                best[name] = max(best[name], args.mib / elapsed)
                this_round[name] = args.mib / elapsed
                stored = (sink if asset_id is None
                          else storage.path_for(app.get_asset(asset_id).storage_key))
                ok = ok and stored.stat().st_size == size
                stored.unlink()
            paired.append(this_round["tus"] / this_round["put"])
            floor.append(this_round["sink-patch"] / this_round["sink-put"])
    app.close()
    return best, paired, floor, ok


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
            best, paired, floor, fine = run_server(kind, tmp, source, args)
            ok = ok and fine
            ratio = statistics.median(paired)
            print(f"\n{kind}: {SERVERS[kind]}")
            print(f"  tus ({args.chunk_mib} MiB PATCHes): {best['tus']:.1f} MiB/s (best)")
            print(f"  presigned PUT (one request):  {best['put']:.1f} MiB/s (best)")
            print(f"  ratio of the bests: {best['tus'] / best['put']:.2f}x; per round: "
                  + ", ".join(f"{r:.2f}x" for r in paired))
            print(f"  ratio tus/PUT (median of rounds): {ratio:.2f}x "
                  f"(bar >= 0.80x: {'met' if ratio >= 0.8 else 'MISSED'})")
            print(f"  floor, a body sink on this server (no protocol): "
                  f"{args.chunk_mib} MiB PATCHes {best['sink-patch']:.1f} / one PUT "
                  f"{best['sink-put']:.1f} MiB/s (best); median of rounds "
                  f"{statistics.median(floor):.2f}x; per round: "
                  + ", ".join(f"{r:.2f}x" for r in floor))
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if not ok:
        print("an upload stored the wrong number of bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
