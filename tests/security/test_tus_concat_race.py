"""A termination (DELETE) of a partial upload racing a final concatenation that names it,
forced deterministically with events at hook points (the real functions run; the hook
only holds one request at a known point), over real loopback HTTP on SQLite and
PostgreSQL.

The semantics pinned: the concatenation and the termination both take the partial's
write lease (``locked_until``). While a final holds it, the DELETE is 423
``upload_busy`` and the final is built; while a DELETE holds it, the final is 423 and
creates nothing, and once the DELETE is done a final naming the partial is 404. A final
whose building fails is aborted and its bytes removed: no final session stays open and no
``.rindle-tmp-`` file stays in local storage.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from rindle import Rindle
from rindle.domain.models import UploadSession
from rindle.errors import ObjectNotFound
from rindle.storage.local import LocalStorage
from rindle.upload import direct, tus_backing
from tests.apps import local_storage
from tests.lifecycle.conftest import jpeg_bytes
from tests.security.test_web_attack_pass import ALICE, code, create, meta, patch, tus_url
from tests.web.conftest import web_app

__all__ = ["tus_url", "web_app"]  # the fixtures

WAIT = 30  # seconds a bounded wait on an event may take before the test fails


class Hold:
    """Wraps ``real``: its first call sets ``reached`` and waits for ``go`` before running
    the real function; later calls run straight through."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real, self.reached, self.go = real, threading.Event(), threading.Event()
        self._first = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._first.acquire(blocking=False):
            self.reached.set()
            assert self.go.wait(WAIT), "the test never released the held call"
        return self.real(*args, **kwargs)


def finished_partial(url: str, data: bytes) -> str:
    """A partial upload of ``data``, every byte stored; its URL."""
    location = create(url, len(data), **{"Upload-Concat": "partial"}).headers["Location"]
    assert patch(location, 0, data).status_code == 204
    return location


def post_final(url: str, *partials: str) -> requests.Response:
    return requests.post(url, timeout=WAIT, headers={
        **ALICE, "Upload-Metadata": meta(), "Upload-Concat": "final;" + " ".join(partials)})


def in_thread(call: Callable[[], requests.Response]) -> tuple[threading.Thread,
                                                              list[requests.Response]]:
    answers: list[requests.Response] = []
    thread = threading.Thread(target=lambda: answers.append(call()), daemon=True)
    thread.start()
    return thread, answers


def hold_a_patch(monkeypatch: pytest.MonkeyPatch, at: str, location: str, offset: int,
                 data: bytes) -> tuple[Hold, threading.Thread, list[requests.Response]]:
    """A PATCH of ``data`` at ``offset`` in its own thread, held at ``tus_backing.<at>``
    (``local_lock``: it read the session and took no lock yet; ``append``: it holds the
    lock and appended nothing yet) until the test sets ``hold.go``."""
    hold = Hold(getattr(tus_backing, at))
    monkeypatch.setattr(tus_backing, at, hold)
    thread, answers = in_thread(lambda: patch(location, offset, data))
    assert hold.reached.wait(WAIT)
    return hold, thread, answers


def sessions(app: Rindle) -> list[tuple[str | None, str, str | None, bool]]:
    """Every session as ``(concat, state, failure_reason, leased)``, sorted."""
    with app.db.sessionmaker() as s:
        rows = s.execute(select(UploadSession)).scalars().all()
        return sorted(((r.protocol_state or {}).get("concat"), r.state, r.failure_reason,
                       r.locked_until is not None) for r in rows)


def leftovers(storage: LocalStorage) -> list[str]:
    """Temp and part files (``.rindle-tmp-*``) anywhere under the storage root."""
    return sorted(name for _, _, names in os.walk(storage.root) for name in names
                  if name.startswith(".rindle-tmp-"))


def test_a_delete_of_a_partial_a_final_holds_is_423_and_the_final_is_built(
        web_app: Rindle, tus_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = jpeg_bytes((64, 48))
    partial = finished_partial(tus_url, data)
    hold = Hold(tus_backing.finish)  # the final holds the lease and is moving the bytes
    monkeypatch.setattr(tus_backing, "finish", hold)
    thread, answers = in_thread(lambda: post_final(tus_url, partial))
    assert hold.reached.wait(WAIT)
    busy = requests.delete(partial, headers=ALICE, timeout=WAIT)
    assert (busy.status_code, code(busy)) == (423, "upload_busy")
    hold.go.set()
    thread.join(WAIT)
    assert [a.status_code for a in answers] == [201], [a.text for a in answers]
    final = answers[0].headers["Location"]
    head = requests.head(final, headers=ALICE, timeout=WAIT)
    assert (head.status_code, head.headers["Upload-Offset"]) == (200, str(len(data)))
    gone = requests.delete(partial, headers=ALICE, timeout=WAIT)
    assert (gone.status_code, code(gone)) == (404, "not_found")
    assert sessions(web_app) == [("final", "completed", None, False),
                                 ("partial", "aborted", "concatenated", False)]
    assert leftovers(local_storage(web_app)) == []


def test_a_final_naming_a_partial_being_terminated_is_423_then_404_and_leaves_nothing(
        web_app: Rindle, tus_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    partial = finished_partial(tus_url, jpeg_bytes((64, 48)))
    hold = Hold(direct.abort)  # the DELETE holds the lease, the abort not yet committed
    monkeypatch.setattr(direct, "abort", hold)
    thread, answers = in_thread(
        lambda: requests.delete(partial, headers=ALICE, timeout=WAIT))
    assert hold.reached.wait(WAIT)
    busy = post_final(tus_url, partial)
    assert (busy.status_code, code(busy)) == (423, "upload_busy")
    hold.go.set()
    thread.join(WAIT)
    assert [a.status_code for a in answers] == [204]
    gone = post_final(tus_url, partial)
    assert (gone.status_code, code(gone)) == (404, "not_found")
    assert sessions(web_app) == [("partial", "aborted", None, False)]
    storage = local_storage(web_app)
    assert leftovers(storage) == [] and list(storage.list()) == []


def test_a_final_whose_building_fails_is_aborted_and_leaves_no_file(
        web_app: Rindle, tus_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second partial's object vanishes while the final is built (what the old race
    did): the final already holds the first partial's bytes in its part file. It is
    aborted, its part file removed, the partials' leases released: the same final built
    again succeeds."""
    first, second = jpeg_bytes((64, 48))[:100], jpeg_bytes((64, 48))[100:]
    one, two = finished_partial(tus_url, first), finished_partial(tus_url, second)
    storage = local_storage(web_app)
    real = LocalStorage.download
    calls: list[str] = []

    def download(self: LocalStorage, key: str, dest: Path) -> Path:
        calls.append(key)
        if len(calls) == 2:
            assert leftovers(storage) != []  # the final's part file holds the first bytes
            raise ObjectNotFound(key)
        return real(self, key, dest)

    monkeypatch.setattr(LocalStorage, "download", download)
    failed = post_final(tus_url, one, two)
    assert (failed.status_code, code(failed)) == (409, "storage_object_missing"), failed.text
    assert sessions(web_app) == [("final", "aborted", None, False),
                                 ("partial", "uploading", None, False),
                                 ("partial", "uploading", None, False)]
    assert leftovers(storage) == []
    monkeypatch.setattr(LocalStorage, "download", real)
    built = post_final(tus_url, one, two)
    assert built.status_code == 201, built.text
    assert [s for s in sessions(web_app) if s[0] == "final"] == [
        ("final", "aborted", None, False), ("final", "completed", None, False)]
    assert leftovers(storage) == []


@pytest.mark.parametrize("offset", [0, 100])
def test_a_delete_during_a_chunk_is_423_and_nothing_changes(
        web_app: Rindle, tus_url: str, monkeypatch: pytest.MonkeyPatch, offset: int) -> None:
    """A DELETE while a PATCH holds a local upload's part-file lock (its bytes on the
    way): 423 ``upload_busy`` and nothing changes, so no chunk is answered 204 for bytes a
    termination already removed. Once the chunk is in, the DELETE goes through and leaves
    no part file."""
    data = jpeg_bytes((64, 48))
    location = create(tus_url, len(data) + 10).headers["Location"]
    if offset:
        assert patch(location, 0, data[:offset]).status_code == 204
    hold, thread, answers = hold_a_patch(monkeypatch, "append", location, offset,
                                         data[offset:])
    busy = requests.delete(location, headers=ALICE, timeout=WAIT)
    assert (busy.status_code, code(busy)) == (423, "upload_busy")
    assert [state for _, state, _, _ in sessions(web_app)] == [
        "signed" if offset == 0 else "uploading"]
    hold.go.set()
    thread.join(WAIT)
    assert [a.status_code for a in answers] == [204]
    assert answers[0].headers["Upload-Offset"] == str(len(data))
    assert requests.delete(location, headers=ALICE, timeout=WAIT).status_code == 204
    assert sessions(web_app) == [(None, "aborted", None, False)]
    assert leftovers(local_storage(web_app)) == []


@pytest.mark.parametrize("offset", [0, 100])
def test_a_patch_outrun_by_a_delete_leaves_no_part_file(
        web_app: Rindle, tus_url: str, monkeypatch: pytest.MonkeyPatch, offset: int) -> None:
    """A PATCH that read the session, then waited while a DELETE aborted the upload and
    removed the part file, before taking the lock: writing by name, it would make a new
    empty part file. The part file it made is removed. At offset 0 its commit loses: 409
    ``offset_mismatch``; past 0 the part file is gone (or new and short of the offset)
    before any byte is read, so the server reads the session again and finds it
    terminated: 404."""
    data = jpeg_bytes((64, 48))
    location = create(tus_url, len(data)).headers["Location"]
    if offset:
        assert patch(location, 0, data[:offset]).status_code == 204
    hold, thread, answers = hold_a_patch(monkeypatch, "local_lock", location, offset,
                                         data[offset:])
    assert requests.delete(location, headers=ALICE, timeout=WAIT).status_code == 204
    assert leftovers(local_storage(web_app)) == []
    hold.go.set()
    thread.join(WAIT)
    assert [(a.status_code, code(a)) for a in answers] == [
        (409, "offset_mismatch") if offset == 0 else (404, "not_found")]
    assert sessions(web_app) == [(None, "aborted", None, False)]
    assert leftovers(local_storage(web_app)) == []
