"""``rindle serve`` hands an application the request, not the server's process: wsgiref
copies the whole ``os.environ`` into every request's environ (secrets such as a database
URL or ``RINDLE_SECRET_KEY`` would then reach a debug page that prints the environ, or a
log of it). And ``wsgi.input.readinto`` (the body path of every upload) stops at the
body's end on a kept-alive connection, as ``read`` does."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from rindle.cli.serve import make_threading_server
from rindle.storage.blocks import read_blocks
from tests.security.test_serve_keep_alive import Raw, _put

SECRET = "postgresql://rindle:hunter2-é@db/rindle"


def _app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/environ":
        answer = json.dumps(sorted(environ)).encode()
    else:  # the body, read in blocks through readinto
        blocks = [bytes(b) for b in read_blocks(environ["wsgi.input"], 3)]
        answer = json.dumps({"blocks": [b.hex() for b in blocks]}).encode()
    start_response("200 OK", [("Content-Length", str(len(answer)))])
    return [answer]


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("RINDLE_TEST_DATABASE_SECRET", SECRET)
    server = make_threading_server(_app, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_no_variable_of_the_process_environment_reaches_the_environ(port: int) -> None:
    assert os.environ["RINDLE_TEST_DATABASE_SECRET"] == SECRET
    client = Raw(port)
    try:
        client.send(b"GET /environ HTTP/1.1\r\nHost: x\r\nX-Probe: 1\r\n\r\n")
        keys = json.loads(client.answer().body)
    finally:
        client.close()
    assert "RINDLE_TEST_DATABASE_SECRET" not in keys
    assert not set(keys) & (set(os.environ) - {"PATH_INFO", "QUERY_STRING"})
    assert {"REQUEST_METHOD", "PATH_INFO", "HTTP_X_PROBE", "wsgi.input",
            "SERVER_PROTOCOL"} <= set(keys)


@pytest.mark.parametrize("body", [b"", b"a", b"abc", b"abcd", b"abcdefgh\xc3\xa9"])
def test_readinto_stops_at_the_body_and_leaves_the_next_request(port: int,
                                                               body: bytes) -> None:
    client = Raw(port)
    try:
        client.send(_put("/body", body) + _put("/body", b"next"))  # pipelined
        first, second = client.answer(), client.answer()
    finally:
        client.close()
    blocks = [bytes.fromhex(b) for b in json.loads(first.body)["blocks"]]
    assert b"".join(blocks) == body
    assert [len(b) for b in blocks] == [min(3, len(body) - i) for i in range(0, len(body), 3)]
    assert json.loads(second.body) == {"blocks": [b"nex".hex(), b"t".hex()]}
