"""``rindle serve``'s access log names method, path, status and size, never a query string:
signed GET tokens and reusable presigned PUT tokens stay out of the log.

The real command runs as a child process on a loopback port it picks itself. Each request
is made on a raw socket read to EOF: the server closes the connection only after it has
written the request's log line, so the log is complete when the server is stopped, with
no waiting on time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from rindle.storage.local import LocalStorage

SECRET_KEY = "k" * 40
LINE = r'127\.0\.0\.1 - - \[[^\]]+\] "{method} {path}" {status} \d+'


def write_config(tmp_path: Path, db_url: str) -> Path:
    config = tmp_path / "rindle.toml"
    config.write_text(f"database_url = {json.dumps(db_url)}\n"
                      f'secret_key = "{SECRET_KEY}"\n'
                      "[storages.default]\nbackend = \"local\"\n"
                      f"root = {json.dumps(str(tmp_path / 'media'))}\n", encoding="utf-8")
    return config


def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` and read the answer until the server closes: (status, raw bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    return int(raw.split(b" ", 2)[1]), raw


def target(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_the_access_log_shows_paths_without_tokens(db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, db_url)
    storage = LocalStorage(name="default", root=tmp_path / "media", secret_key=SECRET_KEY)
    key = "incoming/photo.bin"
    put = storage.presign_put(key, expires_in=600, max_bytes=1000)
    get = storage.url(key, expires_in=600)
    put_token = parse_qs(urlsplit(put.url).query)["token"][0]
    get_token = parse_qs(urlsplit(get).query)["token"][0]
    forged = "SECRETforgedTOKEN0123456789"
    raw_line_token = "SECRETinAbadREQUESTline42"
    # faulthandler: should the server ever fail to stop, SIGABRT makes it print every
    # thread's stack into the log this test shows
    env = {**os.environ, "RINDLE_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rindle", "--config", str(config), "serve", "--port", "0"],
        env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        match = re.match(r"rindle serving on http://127\.0\.0\.1:(\d+) ", first)
        assert match, first
        port = int(match.group(1))
        body = b"0123456789"
        put_status, _ = exchange(port, (
            f"PUT {target(put.url)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body)
        get_status, _ = exchange(port, (
            f"GET {target(get)} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        ).encode())
        forged_status, _ = exchange(port, (
            f"GET /media/{key}?token={forged}&x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Connection: close\r\n\r\n").encode())
        bad_status, _ = exchange(port, (  # four words: a bad request line
            f"GET /media/{key}?token={raw_line_token} junk HTTP/1.1\r\n\r\n").encode())
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)  # a few short lines: the pipe never fills
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            pytest.fail("rindle serve did not stop on SIGINT within 60 s; its stacks:\n"
                        + proc.stderr.read()[-6000:])
        rest = proc.stderr.read()  # through the same buffer readline() used
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = first + rest
    assert proc.returncode == 0, log
    assert (tmp_path / "media" / key).read_bytes() == body  # the PUT really stored the bytes
    assert (put_status, forged_status, bad_status) == (201, 403, 400)
    path = f"/media/{key}"
    assert re.search(LINE.format(method="PUT", path=re.escape(path), status=201), log), log
    assert re.search(LINE.format(method="GET", path=re.escape(path), status=get_status), log)
    assert re.search(LINE.format(method="GET", path=re.escape(path), status=403), log), log
    assert "code 400, message Bad Request" in log  # the phrase only: the line is not quoted
    assert "junk" not in log
    assert '"- -" 400 -' in log
    for secret in (put_token, get_token, forged, raw_line_token, "token=", "?"):
        assert secret not in log.replace("(Ctrl-C to stop)", ""), secret
    assert "  /media/...  default\n" in log and log.endswith("stopped\n")
    assert "Traceback" not in log
