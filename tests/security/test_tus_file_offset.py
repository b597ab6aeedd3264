"""A local tus upload's offset is its part file's size: the row's ``last_known_offset`` is
a lower bound that the first bytes, a declared length and the last bytes commit. Pinned
here, over real loopback HTTP on SQLite and PostgreSQL, with events at hook points (never
timing): what reads the offset (HEAD, a PATCH on another process, a far-off offset) gets
the part file's; bytes written but never committed (a process that died) complete on an
empty PATCH; and what removes a part file (abort, the expiry sweep) waits for the chunk
being written instead of answering under it.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from rindle import Rindle
from rindle.errors import UploadRejected
from rindle.upload import tus_backing
from rindle.web import tus_wsgi
from tests.apps import local_storage
from tests.lifecycle.conftest import jpeg_bytes
from tests.security.test_tus_abort_sweep_race import counts, expire
from tests.security.test_tus_concat_race import (
    WAIT,
    Hold,
    hold_a_patch,
    leftovers,
    sessions,
)
from tests.security.test_web_attack_pass import ALICE, code, create, patch, tus_url
from tests.web.conftest import header_actor, serve_wsgi, web_app
from tests.web.test_tus import head, session_of, stored

__all__ = ["tus_url", "web_app"]  # the fixtures


@pytest.fixture
def other(web_app: Rindle) -> Iterator[str]:
    """A second tus server of ``web_app`` (another process: no kept sessions); its
    ``/files/`` URL."""
    with serve_wsgi(tus_wsgi(web_app, authorize=header_actor, mount="/files",
                             expires_in=3600)) as base:
        yield base + "/files/"


def on(base: str, location: str) -> str:
    return base + location.rsplit("/", 1)[1]


def test_the_part_file_is_the_offset_wherever_it_is_asked(web_app: Rindle, tus_url: str,
                                                          other: str) -> None:
    data = jpeg_bytes((64, 48))
    location = create(tus_url, len(data)).headers["Location"]
    assert patch(location, 0, data[:100]).status_code == 204  # first bytes: committed
    assert patch(location, 100, data[100:300]).status_code == 204  # a middle chunk: not
    assert session_of(web_app, location).last_known_offset == 100
    assert head(location).headers["Upload-Offset"] == "300"
    assert head(on(other, location)).headers["Upload-Offset"] == "300"
    for stale in (0, 100, 299, 301, 2 ** 40, 2 ** 63 - 1):  # never 413 or 502: 409
        answer = patch(on(other, location), stale, b"x")
        assert (answer.status_code, code(answer)) == (409, "offset_mismatch"), stale
    assert "offset 300;" in patch(on(other, location), 2 ** 40, b"x").json()["error"][
        "message"]
    assert patch(on(other, location), 300, data[300:400]).status_code == 204
    done = patch(location, 400, data[400:])
    assert done.status_code == 204 and done.headers["Rindle-Asset-Id"]
    row = session_of(web_app, location)
    assert (row.state, row.last_known_offset) == ("completed", len(data))
    assert stored(web_app, row) == data
    assert leftovers(local_storage(web_app)) == []


@pytest.mark.parametrize("first", [0, 100])
def test_bytes_written_but_never_committed_complete_on_an_empty_patch(
        web_app: Rindle, tus_url: str, first: int) -> None:
    """The process died after the last bytes reached the part file, before their commit
    (with ``first`` 0, before even the first bytes' commit: the session is still
    ``signed``). HEAD reports every byte; the empty PATCH a client then sends at the end
    commits them and runs the trust gate."""
    data = jpeg_bytes((64, 48))
    location = create(tus_url, len(data)).headers["Location"]
    if first:
        assert patch(location, 0, data[:first]).status_code == 204
    row = session_of(web_app, location)
    assert row.state == ("uploading" if first else "signed")
    part = tus_backing.part_path(local_storage(web_app), row)
    part.parent.mkdir(parents=True, exist_ok=True)
    with open(part, "ab") as f:  # what the dead process wrote
        f.write(data[first:])
    assert head(location).headers["Upload-Offset"] == str(len(data))
    done = patch(location, len(data), b"")
    assert done.status_code == 204 and done.headers["Upload-Offset"] == str(len(data))
    assert done.headers["Rindle-Asset-Id"]
    row = session_of(web_app, location)
    assert (row.state, row.last_known_offset) == ("completed", len(data))
    assert stored(web_app, row) == data


def second_chunk_held(tus_url: str, monkeypatch: pytest.MonkeyPatch
                      ) -> tuple[bytes, str, tuple[Hold, threading.Thread,
                                                   list[requests.Response]]]:
    """An upload whose first 100 bytes are in and whose second chunk (bytes 100 to 200)
    holds the part file's lock, appended nothing yet: the upload's data, its URL and
    :func:`hold_a_patch`'s answer."""
    data = jpeg_bytes((64, 48))
    location = create(tus_url, len(data)).headers["Location"]
    assert patch(location, 0, data[:100]).status_code == 204
    return data, location, hold_a_patch(monkeypatch, "append", location, 100,
                                        data[100:200])


def test_an_abort_while_a_chunk_is_written_is_upload_busy(web_app: Rindle, tus_url: str,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    _, location, (hold, thread, answers) = second_chunk_held(tus_url, monkeypatch)
    row = session_of(web_app, location)
    with pytest.raises(UploadRejected) as refused:
        web_app.abort_upload(row.id)
    assert refused.value.code == "upload_busy"
    assert session_of(web_app, location).state == "uploading"
    hold.go.set()
    thread.join(WAIT)
    assert [a.status_code for a in answers] == [204]
    assert web_app.abort_upload(row.id).state == "aborted"
    assert leftovers(local_storage(web_app)) == []


def test_the_sweep_leaves_a_chunk_being_written_then_expires_the_upload(
        web_app: Rindle, tus_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunk started before the upload expired and holds the part file's lock when
    the sweep comes: counted busy, bytes and lease as they were; the next sweep expires
    the upload and removes its part file."""
    data, location, (hold, thread, answers) = second_chunk_held(tus_url, monkeypatch)
    row = expire(web_app, location)
    part = tus_backing.part_path(local_storage(web_app), row)
    busy = web_app.ops.abort_incomplete_uploads()
    assert counts(busy) == (1, 0, 1, 0, 0)
    assert session_of(web_app, location).state == "uploading"
    assert session_of(web_app, location).locked_until is None  # the sweep let it go
    assert part.read_bytes() == data[:100]
    hold.go.set()
    thread.join(WAIT)
    assert [a.status_code for a in answers] == [204]
    assert part.read_bytes() == data[:200]
    swept = web_app.ops.abort_incomplete_uploads()
    assert counts(swept) == (1, 1, 0, 1, 0)
    assert sessions(web_app) == [(None, "expired", None, False)]
    assert not part.exists() and leftovers(local_storage(web_app)) == []


def test_a_part_file_removed_between_open_and_lock_takes_no_byte(
        web_app: Rindle, tus_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock was taken on a part file no longer at its path (a termination removed it
    after this request opened it): refused ``offset_mismatch``, so nothing is appended to
    bytes already gone."""
    location = create(tus_url, 16).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204
    row = session_of(web_app, location)
    part = tus_backing.part_path(local_storage(web_app), row)
    real = tus_backing.fcntl.flock
    removed: list[int] = []

    def flock(fd: int, operation: int) -> None:
        if not removed:
            removed.append(fd)
            os.unlink(part)  # as a termination would, under its own lock
        real(fd, operation)

    monkeypatch.setattr(tus_backing.fcntl, "flock", flock)
    lock = tus_backing.local_lock(local_storage(web_app), row, create=False)
    assert lock is not None
    with pytest.raises(UploadRejected) as refused, lock:
        raise AssertionError("the lock must not be held on a removed part file")
    assert refused.value.code == "offset_mismatch" and removed
    assert not part.exists()


def test_a_delete_from_another_process_during_a_chunk_is_423(
        web_app: Rindle, tus_url: str, other: str, monkeypatch: pytest.MonkeyPatch) -> None:
    location = create(tus_url, 16).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204
    hold, thread, answers = hold_a_patch(monkeypatch, "append", location, 4, b"efgh")
    busy = requests.delete(on(other, location), headers=ALICE, timeout=WAIT)
    assert (busy.status_code, code(busy)) == (423, "upload_busy")
    hold.go.set()
    thread.join(WAIT)
    assert [a.status_code for a in answers] == [204]
    assert head(on(other, location)).headers["Upload-Offset"] == "8"


def test_head_counts_a_chunk_on_its_way_and_a_cut_chunk_takes_its_bytes_back(
        web_app: Rindle, tus_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client sends a chunk of two blocks + 10 bytes and stalls 5 bytes short: the
    server has written the two whole blocks and waits for the rest. HEAD reports those
    bytes; a PATCH at that offset is 423 while the chunk holds the lock. The client goes
    away: the cut chunk takes its bytes back, and a PATCH at the reported offset is 409
    (HEAD says the offset again)."""
    monkeypatch.setattr(tus_backing, "BLOCK", 16 * 1024)  # the profile caps uploads at 64 KiB
    block = 2 * 16 * 1024
    data = jpeg_bytes((64, 48))
    location = create(tus_url, 100 + block + 10 + len(data)).headers["Location"]
    assert patch(location, 0, data[:100]).status_code == 204
    part = tus_backing.part_path(local_storage(web_app), session_of(web_app, location))
    url = urlsplit(location)
    sock = socket.create_connection((url.hostname, url.port), timeout=WAIT)
    try:
        head_lines = "".join(f"{k}: {v}\r\n" for k, v in {
            **ALICE, "Host": "x", "Upload-Offset": "100", "Content-Length": str(block + 10),
            "Content-Type": "application/offset+octet-stream"}.items())
        sock.sendall(f"PATCH {url.path} HTTP/1.1\r\n{head_lines}\r\n".encode()
                     + os.urandom(block + 5))
        waited = 0
        while part.stat().st_size != 100 + block:  # the whole blocks are written
            assert waited < 3000, "the server never wrote the whole blocks"
            threading.Event().wait(0.01)
            waited += 1
        assert head(location).headers["Upload-Offset"] == str(100 + block)
        busy = patch(location, 100 + block, b"x")
        assert (busy.status_code, code(busy)) == (423, "upload_busy")
    finally:
        sock.close()  # the chunk is cut 5 bytes short
    waited = 0
    while part.stat().st_size != 100:  # the cut chunk took its bytes back
        assert waited < 3000, "the cut chunk kept its bytes"
        threading.Event().wait(0.01)
        waited += 1
    late = patch(location, 100 + block, b"x")
    assert (late.status_code, code(late)) == (409, "offset_mismatch")
    assert head(location).headers["Upload-Offset"] == "100"
    assert patch(location, 100, data[100:]).status_code == 204
