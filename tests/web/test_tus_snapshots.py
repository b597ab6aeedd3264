"""The tus server's kept sessions: a middle chunk trusts the session its previous PATCH
left in this process, and every way that copy can be stale is found out before a byte is
taken. Two tus servers on one app and database stand for two processes: one moves the
upload on, terminates it or finishes it while the other still holds a copy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import requests

from rindle import Rindle
from rindle.clock import ManualClock
from rindle.upload import tus_backing
from rindle.web import tus as tus_web
from rindle.web import tus_wsgi
from rindle.web.http import WSGIApp
from tests.apps import local_storage
from tests.web.conftest import header_actor, serve_wsgi
from tests.web.test_tus import ALICE, V, create, head, patch, session_of, stored


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def servers(web_app: Rindle, clock: ManualClock) -> Iterator[tuple[str, str]]:
    """Two tus servers of ``web_app`` (their ``/files/`` URLs), each with its own kept
    sessions."""
    def app() -> WSGIApp:
        return tus_wsgi(web_app, authorize=header_actor, mount="/files", expires_in=3600,
                        clock=clock)

    with serve_wsgi(app()) as one, serve_wsgi(app()) as two:
        yield one + "/files/", two + "/files/"


def on(base: str, location: str) -> str:
    """``location`` (an upload URL) on the server at ``base``."""
    return base + location.rsplit("/", 1)[1]


def test_a_copy_behind_the_database_reads_the_session_and_never_overwrites(
        web_app: Rindle, servers: tuple[str, str]) -> None:
    one, two = servers
    location = create(one, 16).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204  # one keeps offset 4
    assert patch(on(two, location), 4, b"efgh").status_code == 204  # two keeps 8
    moved = patch(location, 8, b"ijkl")  # one's copy says 4: it reads the session
    assert moved.status_code == 204 and moved.headers["Upload-Offset"] == "12"
    # two's copy says 8, as the request does, but 12 bytes are committed: refused before
    # any byte is taken, whatever the copy said
    replay = patch(on(two, location), 8, b"XXXX")
    assert replay.status_code == 409 and replay.json()["error"]["code"] == "offset_mismatch"
    assert head(location).headers["Upload-Offset"] == "12"
    assert patch(on(two, location), 12, b"mnop").status_code == 204
    assert stored(web_app, session_of(web_app, location)) == b"abcdefghijklmnop"


def test_an_upload_terminated_elsewhere_is_404_and_its_part_file_stays_gone(
        web_app: Rindle, servers: tuple[str, str]) -> None:
    one, two = servers
    location = create(one, 16).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204
    row = session_of(web_app, location)
    part = tus_backing.part_path(local_storage(web_app), row)
    assert part.read_bytes() == b"abcd"
    assert requests.delete(on(two, location), headers=ALICE, timeout=30).status_code == 204
    gone = patch(location, 4, b"efgh")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert not part.exists()
    assert session_of(web_app, location).state == "aborted"


def test_an_upload_finished_elsewhere_takes_no_more_bytes(
        web_app: Rindle, servers: tuple[str, str]) -> None:
    one, two = servers
    location = create(one, 8).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204
    done = patch(on(two, location), 4, b"efgh")
    assert done.status_code == 204 and done.headers["Rindle-Asset-Id"]
    late = patch(location, 4, b"XXXX")  # one still holds the copy at offset 4
    assert late.status_code == 409 and late.json()["error"]["code"] == "offset_mismatch"
    row = session_of(web_app, location)
    assert stored(web_app, row) == b"abcdefgh"
    assert not tus_backing.part_path(local_storage(web_app), row).exists()


def test_a_kept_copy_expires_with_its_session(servers: tuple[str, str],
                                              clock: ManualClock) -> None:
    one, _ = servers
    location = create(one, 16).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204
    clock.advance(dt.timedelta(seconds=3600))
    late = patch(location, 4, b"efgh")
    assert late.status_code == 410 and late.json()["error"]["code"] == "session_expired"


def test_another_actor_cannot_use_a_kept_copy(web_app: Rindle,
                                              servers: tuple[str, str]) -> None:
    one, _ = servers
    location = create(one, 8).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204
    mallory = requests.patch(location, data=b"EVIL", timeout=30, headers={
        **V, "X-Actor": "mallory", "Upload-Offset": "4",
        "Content-Type": "application/offset+octet-stream"})
    assert mallory.status_code == 404
    assert patch(location, 4, b"efgh").status_code == 204
    assert stored(web_app, session_of(web_app, location)) == b"abcdefgh"


def test_kept_copies_are_bounded(web_app: Rindle, servers: tuple[str, str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tus_web, "MAX_SNAPSHOTS", 1)
    one, _ = servers
    first = create(one, 12).headers["Location"]
    second = create(one, 12).headers["Location"]
    for offset, data in ((0, b"abcd"), (4, b"efgh"), (8, b"ijkl")):
        # each upload's chunk pushes the other's copy out: every chunk still lands
        assert patch(first, offset, data).status_code == 204
        assert patch(second, offset, data.upper()).status_code == 204
    assert stored(web_app, session_of(web_app, first)) == b"abcdefghijkl"
    assert stored(web_app, session_of(web_app, second)) == b"ABCDEFGHIJKL"
