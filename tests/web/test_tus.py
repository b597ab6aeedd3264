"""The tus server over real loopback HTTP, driven by the tuspy client (and raw requests for
what tuspy cannot send): core protocol, creation, expiration, termination, checksum,
deferred length, concatenation, a resume on a new server process, and the ASGI app."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import event, select
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from rindle import Rindle
from rindle.clock import ManualClock
from rindle.domain.models import Asset, UploadSession
from rindle.errors import ConfigError, UnknownProfile, UploadRejected
from rindle.testing.servers import free_port, serving
from rindle.upload import tus, tus_backing
from rindle.web import tus_asgi, tus_wsgi
from tests.apps import local_storage
from tests.web.conftest import MAX_BYTES, header_actor, serve_asgi, serve_wsgi

V = {"Tus-Resumable": "1.0.0"}
ALICE = {**V, "X-Actor": "alice"}


def meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


PHOTO = meta(filename="cat.jpg", profile="photo", filetype="image/jpeg")


def create(url: str, length: int | None, *, headers: dict[str, str] | None = None,
           metadata: str = PHOTO) -> requests.Response:
    sent = {**ALICE, "Upload-Metadata": metadata, **(headers or {})}
    if length is not None:
        sent["Upload-Length"] = str(length)
    return requests.post(url, headers=sent, timeout=30)


def patch(location: str, offset: int, data: bytes, **extra: str) -> requests.Response:
    return requests.patch(location, data=data, timeout=30, headers={
        **ALICE, "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream", **extra})


def head(location: str, actor: str = "alice") -> requests.Response:
    return requests.head(location, headers={**V, "X-Actor": actor}, timeout=30)


def sha1(data: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()


def session_of(app: Rindle, location: str) -> UploadSession:
    hexid = location.rsplit("/", 1)[1].split(".")[0]
    with app.db.sessionmaker() as s:
        row = s.execute(select(UploadSession).where(
            UploadSession.upload_strategy == "tus")).scalars().all()
        return next(r for r in row if r.id.hex == hexid)


def stored(app: Rindle, row: UploadSession) -> bytes:
    return local_storage(app).path_for(row.upload_key).read_bytes()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def tus_url(web_app: Rindle, clock: ManualClock) -> Iterator[str]:
    with serve_wsgi(tus_wsgi(web_app, authorize=header_actor, mount="/files",
                             expires_in=3600, clock=clock)) as base:
        yield base + "/files/"


def test_tuspy_upload_in_chunks_with_checksums_is_verified(web_app: Rindle,
                                                           tus_url: str) -> None:
    data = os.urandom(50_000)
    client = tus_client.TusClient(tus_url, headers={"X-Actor": "alice"})
    uploader = client.uploader(file_stream=io.BytesIO(data), chunk_size=20_000,
                               metadata={"filename": "cat.jpg", "profile": "photo"},
                               upload_checksum=True)
    uploader.upload()
    assert uploader.offset == 50_000
    answer = head(uploader.url)
    assert answer.status_code == 200
    assert answer.headers["Upload-Offset"] == "50000"
    assert answer.headers["Upload-Length"] == "50000"
    assert answer.headers["Cache-Control"] == "no-store"
    row = session_of(web_app, uploader.url)
    assert row.state == "completed" and row.actor_id == "alice"
    assert answer.headers["Rindle-Asset-Id"] == str(row.asset_id)
    assert stored(web_app, row) == data
    assert not tus_backing.part_path(local_storage(web_app), row).exists()
    with web_app.db.sessionmaker() as s:
        asset = s.get(Asset, row.asset_id)
        assert asset is not None and asset.state == "validating" and asset.byte_size == 50_000


def _options_discovery_and_version_check(tus_url: str) -> None:
    answer = requests.options(tus_url, timeout=30)
    assert answer.status_code == 204
    assert answer.headers["Tus-Version"] == "1.0.0"
    assert answer.headers["Tus-Extension"] == ("creation,creation-defer-length,expiration,"
                                               "termination,checksum,concatenation")
    assert answer.headers["Tus-Max-Size"] == str(5 * 1024 ** 3)
    assert answer.headers["Tus-Checksum-Algorithm"] == "md5,sha1,sha256"
    wrong = requests.post(tus_url, headers={"Tus-Resumable": "0.2.2", "X-Actor": "alice",
                                            "Upload-Length": "1"}, timeout=30)
    assert wrong.status_code == 412 and wrong.headers["Tus-Version"] == "1.0.0"
    missing = requests.post(tus_url, headers={"X-Actor": "alice", "Upload-Length": "1"},
                            timeout=30)
    assert missing.status_code == 412


def _wrong_offset_is_409_and_changes_nothing(web_app: Rindle, tus_url: str) -> None:
    location = create(tus_url, 10).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204
    wrong = patch(location, 3, b"defghij")
    assert wrong.status_code == 409
    assert wrong.json()["error"]["code"] == "offset_mismatch"
    assert head(location).headers["Upload-Offset"] == "4"
    overridden = requests.post(location, data=b"efg", timeout=30, headers={
        **ALICE, "X-HTTP-Method-Override": "PATCH", "Upload-Offset": "4",
        "Content-Type": "application/offset+octet-stream"})
    assert overridden.status_code == 204 and overridden.headers["Upload-Offset"] == "7"
    assert patch(location, 7, b"hij").status_code == 204
    assert stored(web_app, session_of(web_app, location)) == b"abcdefghij"


def _wrong_content_type_is_415(tus_url: str) -> None:
    location = create(tus_url, 4).headers["Location"]
    answer = requests.patch(location, data=b"abcd", timeout=30, headers={
        **ALICE, "Upload-Offset": "0", "Content-Type": "application/octet-stream"})
    assert answer.status_code == 415
    assert head(location).headers["Upload-Offset"] == "0"


def _checksum_mismatch_is_460_and_keeps_nothing(web_app: Rindle, tus_url: str) -> None:
    location = create(tus_url, 8).headers["Location"]
    bad = patch(location, 0, b"abcd", **{"Upload-Checksum": sha1(b"abce")})
    assert bad.status_code == 460
    assert bad.json()["error"]["code"] == "checksum_mismatch"
    assert head(location).headers["Upload-Offset"] == "0"
    unsupported = patch(location, 0, b"abcd", **{"Upload-Checksum": "crc32 AAAAAA=="})
    assert unsupported.status_code == 400
    assert unsupported.json()["error"]["code"] == "checksum_unsupported"
    good = patch(location, 0, b"abcd", **{"Upload-Checksum": sha1(b"abcd")})
    assert good.status_code == 204 and good.headers["Upload-Offset"] == "4"
    sha256 = "sha256 " + base64.b64encode(hashlib.sha256(b"efgh").digest()).decode()
    assert patch(location, 4, b"efgh", **{"Upload-Checksum": sha256}).status_code == 204
    assert stored(web_app, session_of(web_app, location)) == b"abcdefgh"


def _sizes_at_and_past_the_limits_are_413(tus_url: str) -> None:
    assert create(tus_url, MAX_BYTES).status_code == 201
    over = create(tus_url, MAX_BYTES + 1)
    assert over.status_code == 413
    assert over.json()["error"]["code"] == "max_bytes_exceeded"
    location = create(tus_url, 4).headers["Location"]
    past = patch(location, 0, b"abcde")
    assert past.status_code == 413
    assert head(location).headers["Upload-Offset"] == "0"
    assert patch(location, 0, b"abcd").status_code == 204


def test_expired_upload_is_410(web_app: Rindle, tus_url: str, clock: ManualClock) -> None:
    location = create(tus_url, 8).headers["Location"]
    expires = create(tus_url, 8).headers["Upload-Expires"]
    assert expires.endswith(" GMT")
    clock.advance(3599)
    assert patch(location, 0, b"abcd").status_code == 204
    clock.advance(1)
    assert head(location).status_code == 410
    gone = patch(location, 4, b"efgh")
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "session_expired"


def _tampered_or_foreign_urls_are_404(tus_url: str) -> None:
    location = create(tus_url, 4).headers["Location"]
    base, token = location.rsplit("/", 1)
    sid, mac = token.split(".")
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    assert head(f"{base}/{sid}.{flipped}").status_code == 404
    assert head(f"{base}/{'0' * 32}.{mac}").status_code == 404
    assert head(location, actor="bob").status_code == 404
    assert requests.head(location, headers=V, timeout=30).status_code == 404  # no actor
    assert head(location).status_code == 200


def _termination_removes_the_bytes(web_app: Rindle, tus_url: str) -> None:
    location = create(tus_url, 8).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204
    row = session_of(web_app, location)
    part = tus_backing.part_path(local_storage(web_app), row)
    assert part.read_bytes() == b"abcd"
    assert requests.delete(location, headers=ALICE, timeout=30).status_code == 204
    assert not part.exists()
    assert head(location).status_code == 404
    assert patch(location, 4, b"efgh").status_code == 404
    assert session_of(web_app, location).state == "aborted"


def _deferred_length(web_app: Rindle, tus_url: str) -> None:
    location = create(tus_url, None, headers={"Upload-Defer-Length": "1"}).headers["Location"]
    first = head(location)
    assert first.headers["Upload-Defer-Length"] == "1" and "Upload-Length" not in first.headers
    assert patch(location, 0, b"abcd").status_code == 204
    status = web_app.resumable_upload_status(session_of(web_app, location).id)
    assert (status.committed_bytes, status.state) == (4, "in_progress")
    done = patch(location, 4, b"efg", **{"Upload-Length": "7"})
    assert done.status_code == 204 and done.headers["Upload-Offset"] == "7"
    assert "Rindle-Asset-Id" in done.headers
    assert head(location).headers["Upload-Length"] == "7"
    row = session_of(web_app, location)
    assert row.state == "completed" and stored(web_app, row) == b"abcdefg"
    status = web_app.resumable_upload_status(row.id)
    assert (status.committed_bytes, status.state) == (7, "complete")
    both = create(tus_url, 4, headers={"Upload-Defer-Length": "1"})
    assert both.status_code == 400


def test_concatenation_of_three_partial_uploads(web_app: Rindle, tus_url: str) -> None:
    pieces = [os.urandom(1000), os.urandom(1), os.urandom(2500)]
    locations = []
    for piece in pieces:
        made = create(tus_url, len(piece), headers={"Upload-Concat": "partial"},
                      metadata=meta(profile="photo"))
        assert made.status_code == 201
        assert head(made.headers["Location"]).headers["Upload-Concat"] == "partial"
        assert patch(made.headers["Location"], 0, piece).status_code == 204
        locations.append(made.headers["Location"])
    final = create(tus_url, None, headers={"Upload-Concat": "final;" + " ".join(locations)})
    assert final.status_code == 201
    row = session_of(web_app, final.headers["Location"])
    assert final.headers["Rindle-Asset-Id"] == str(row.asset_id)
    assert row.state == "completed" and row.upload_length == 3501
    assert stored(web_app, row) == b"".join(pieces)
    described = head(final.headers["Location"])
    assert described.headers["Upload-Concat"] == "final;" + " ".join(locations)
    assert described.headers["Upload-Offset"] == "3501"
    for location in locations:
        part = session_of(web_app, location)
        assert part.state == "aborted" and part.failure_reason == "concatenated"
        assert not local_storage(web_app).path_for(part.upload_key).exists()
        assert head(location).status_code == 404
    unfinished = create(tus_url, 5, headers={"Upload-Concat": "partial"},
                        metadata=meta(profile="photo")).headers["Location"]
    refused = create(tus_url, None, headers={"Upload-Concat": f"final;{unfinished}"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_concat"


def test_resume_on_a_new_server_process(web_app: Rindle, db_url: str, tmp_path: Path
                                        ) -> None:
    """The first server process is killed after one chunk; a new process on the same
    database and storage answers HEAD with the offset and takes the rest."""
    data = os.urandom(60_000)
    root = str(local_storage(web_app).root)

    def server(port: int) -> Any:
        argv = [sys.executable, "-m", "tests.web.tus_server_process", db_url, root,
                str(tmp_path / "tmp"), str(port)]
        return serving(argv, ready_url=f"http://127.0.0.1:{port}/files/",
                       name="tus server", cwd=Path(__file__).resolve().parents[2])

    port = free_port()
    with server(port) as first:
        uploader = tus_client.TusClient(f"http://127.0.0.1:{port}/files/",
                                        headers={"X-Actor": "alice"}).uploader(
            file_stream=io.BytesIO(data), chunk_size=25_000,
            metadata={"filename": "cat.jpg", "profile": "photo"})
        uploader.upload_chunk()
        token = uploader.url.rsplit("/", 1)[1]
        first.kill()  # no goodbye: the process dies between chunks
        first.wait()
    port = free_port()
    with server(port):
        base = f"http://127.0.0.1:{port}/files/"
        resumed = tus_client.TusClient(base, headers={"X-Actor": "alice"}).uploader(
            file_stream=io.BytesIO(data), chunk_size=25_000, url=base + token)
        assert resumed.offset == 25_000  # from HEAD on the new process
        resumed.upload()
    row = session_of(web_app, resumed.url)
    assert row.state == "completed" and stored(web_app, row) == data


def test_abort_and_cleanup_ops_remove_expired_tus_uploads(web_app: Rindle,
                                                          tus_url: str) -> None:
    location = create(tus_url, 8).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204
    row = session_of(web_app, location)
    part = tus_backing.part_path(local_storage(web_app), row)
    with web_app.db.transaction() as s:
        live = s.get(UploadSession, row.id)
        assert live is not None
        live.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    report = web_app.ops.abort_incomplete_uploads()
    assert report.tus_aborts == 1 and report.sessions_aborted == 1
    assert not part.exists()
    cleaned = web_app.ops.cleanup_orphans(dry_run=False)
    assert cleaned.objects_deleted == 1
    with web_app.db.sessionmaker() as s:
        assert s.get(UploadSession, row.id) is None


def _tuspy_failure_statuses(tus_url: str) -> None:
    client = tus_client.TusClient(tus_url, headers={"X-Actor": "alice"})
    uploader = client.uploader(file_stream=io.BytesIO(b"x" * (MAX_BYTES + 1)),
                               metadata={"filename": "cat.jpg", "profile": "photo"})
    with pytest.raises(TusCommunicationError) as caught:
        uploader.upload()
    assert caught.value.status_code == 413
    refused = tus_client.TusClient(tus_url, headers={"X-Actor": "mallory"}).uploader(
        file_stream=io.BytesIO(b"abc"), metadata={"filename": "a.png", "profile": "other"})
    with pytest.raises(TusCommunicationError) as forbidden:
        refused.upload()
    assert forbidden.value.status_code == 403


def test_discovery_version_415_404_403(web_app: Rindle, tus_url: str) -> None:
    with pytest.raises(ConfigError, match="authorize"):
        tus_wsgi(web_app)
    with pytest.raises(ConfigError, match="authorize"):
        tus_asgi(web_app, mount="/files")
    with pytest.raises(UnknownProfile):
        tus_wsgi(web_app, development_only=True, profile="nope")
    _options_discovery_and_version_check(tus_url)
    _wrong_content_type_is_415(tus_url)
    _tampered_or_foreign_urls_are_404(tus_url)
    _tuspy_failure_statuses(tus_url)


def _busy_upload_is_423(web_app: Rindle, tus_url: str) -> None:
    location = create(tus_url, 8).headers["Location"]
    row = session_of(web_app, location)
    lock = tus_backing.local_lock(local_storage(web_app), row)
    assert lock is not None
    with lock:  # another request (of any process on this host) is writing it
        busy = patch(location, 0, b"abcd")
        assert busy.status_code == 423 and busy.json()["error"]["code"] == "upload_busy"
    assert head(location).headers["Upload-Offset"] == "0"
    assert patch(location, 0, b"abcd").status_code == 204


def test_refused_chunks_keep_nothing(web_app: Rindle, tus_url: str) -> None:
    _busy_upload_is_423(web_app, tus_url)
    _wrong_offset_is_409_and_changes_nothing(web_app, tus_url)
    _checksum_mismatch_is_460_and_keeps_nothing(web_app, tus_url)
    _sizes_at_and_past_the_limits_are_413(tus_url)


def test_termination_and_deferred_length(web_app: Rindle, tus_url: str) -> None:
    _termination_removes_the_bytes(web_app, tus_url)
    _deferred_length(web_app, tus_url)


# --- the same server as a native ASGI app under uvicorn --------------------------------------

@pytest.fixture
def asgi_url(web_app: Rindle) -> Iterator[str]:
    with serve_asgi(tus_asgi(web_app, authorize=header_actor, mount="/files")) as base:
        yield base + "/files/"


def test_asgi_tuspy_upload_offsets_and_checksums(web_app: Rindle, asgi_url: str) -> None:
    data = os.urandom(60_000)
    uploader = tus_client.TusClient(asgi_url, headers={"X-Actor": "alice"}).uploader(
        file_stream=io.BytesIO(data), chunk_size=30_000, upload_checksum=True,
        metadata={"filename": "cat.jpg", "profile": "photo"})
    uploader.upload()
    row = session_of(web_app, uploader.url)
    assert row.state == "completed" and stored(web_app, row) == data
    location = create(asgi_url, 8).headers["Location"]
    assert patch(location, 1, b"abcd").status_code == 409
    assert patch(location, 0, b"abcd", **{"Upload-Checksum": sha1(b"x")}).status_code == 460
    assert head(location).headers["Upload-Offset"] == "0"
    assert head(location, actor="bob").status_code == 404



def test_completion_is_retried_after_a_crash(web_app: Rindle, tus_url: str) -> None:
    """All bytes committed and the object linked, then the process died before verify:
    an empty PATCH at the end completes the upload (and a lock's empty part file left
    behind does not get in the way)."""
    location = create(tus_url, 8).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204
    row = session_of(web_app, location)
    storage = local_storage(web_app)
    with open(tus_backing.part_path(storage, row), "ab") as part:
        part.write(b"efgh")
    with web_app.db.transaction() as s:
        live = s.get(UploadSession, row.id)
        assert live is not None
        live.last_known_offset = 8
    tus_backing.finish(storage, session_of(web_app, location))  # then the crash
    assert head(location).headers["Upload-Offset"] == "8"
    done = patch(location, 8, b"")
    assert done.status_code == 204 and done.headers["Upload-Offset"] == "8"
    final = session_of(web_app, location)
    assert done.headers["Rindle-Asset-Id"] == str(final.asset_id)
    assert final.state == "completed" and stored(web_app, final) == b"abcdefgh"
    assert not tus_backing.part_path(storage, final).exists()
    again = patch(location, 8, b"")
    assert again.status_code == 204


def test_a_local_middle_chunk_runs_no_statement(web_app: Rindle, tus_url: str) -> None:
    """The per-chunk database work of a PATCH that neither starts nor ends a local upload:
    none (its part file holds the offset; the session is the copy the previous PATCH
    left). The row's offset stays where the first chunk committed it until the last
    chunk commits; HEAD reports the part file's size; a PATCH whose offset the kept copy
    does not hold reads the session first."""
    location = create(tus_url, 16).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    def statements(send: Any) -> tuple[Any, list[str]]:
        seen.clear()
        event.listen(web_app.db.engine, "before_cursor_execute", record)
        try:
            answer = send()
        finally:
            event.remove(web_app.db.engine, "before_cursor_execute", record)
        return answer, [w for w in seen if w not in ("BEGIN", "COMMIT", "ROLLBACK")]

    middle, done = statements(lambda: patch(location, 4, b"efgh"))
    assert middle.status_code == 204 and middle.headers["Upload-Offset"] == "8"
    assert done == []
    assert session_of(web_app, location).last_known_offset == 4  # a lower bound
    asked, done = statements(lambda: head(location))
    assert asked.headers["Upload-Offset"] == "8" and done == ["SELECT"]
    wrong, done = statements(lambda: patch(location, 4, b"efgh"))  # the row's, stale
    assert wrong.status_code == 409 and "UPDATE" not in done  # refused under the lock
    assert wrong.json()["error"]["message"].startswith("Upload-Offset 4 is not this "
                                                        "upload's offset 8;")
    again, done = statements(lambda: patch(location, 8, b"ijkl"))  # the refusal used it up
    assert again.status_code == 204 and done == ["SELECT"]
    last, done = statements(lambda: patch(location, 12, b"mnop"))
    assert last.status_code == 204 and done[0] == "UPDATE"  # the last bytes commit
    row = session_of(web_app, location)
    assert (row.last_known_offset, row.state) == (16, "completed")
    assert stored(web_app, row) == b"abcdefghijklmnop"


def test_a_request_that_read_a_stale_offset_keeps_nothing(web_app: Rindle, tus_url: str,
                                                          clock: ManualClock) -> None:
    """A request that read the session before another request committed bytes (or
    terminated it) is refused ``offset_mismatch`` once it holds the write lock, and the
    committed bytes stay as they were."""
    storage = local_storage(web_app)
    location = create(tus_url, 8).headers["Location"]
    stale = tus.load_request(web_app, session_of(web_app, location).id)
    assert patch(location, 0, b"abcd").status_code == 204  # commits offset 4 meanwhile
    with pytest.raises(UploadRejected) as moved:
        tus.append_chunk(web_app, stale[0].id, actor_id="alice", offset=0,
                         chunk=tus.Chunk(io.BytesIO(b"wxyz"), declared=4), now=clock(),
                         loaded=stale)
    assert moved.value.code == "offset_mismatch"
    assert head(location).headers["Upload-Offset"] == "4"
    assert tus_backing.part_path(storage, stale[0]).read_bytes() == b"abcd"

    gone = create(tus_url, 8).headers["Location"]
    stale = tus.load_request(web_app, session_of(web_app, gone).id)
    assert requests.delete(gone, headers=ALICE, timeout=30).status_code == 204
    with pytest.raises(UploadRejected) as terminated:
        tus.append_chunk(web_app, stale[0].id, actor_id="alice", offset=0,
                         chunk=tus.Chunk(io.BytesIO(b"wxyz"), declared=4), now=clock(),
                         loaded=stale)
    assert terminated.value.code == "offset_mismatch"
    row = session_of(web_app, gone)
    assert (row.state, row.last_known_offset) == ("aborted", 0)
    part = tus_backing.part_path(storage, row)
    assert not part.exists() or part.stat().st_size == 0
    assert not storage.path_for(row.upload_key).exists()
