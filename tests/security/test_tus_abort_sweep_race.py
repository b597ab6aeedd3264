"""``abort-incomplete-uploads`` racing a tus final concatenation that reads an expired
partial upload, forced deterministically with events at hook points (the real functions
run; a hook only holds one call at a known point), over real loopback HTTP on SQLite and
PostgreSQL.

The semantics pinned: the sweep leaves a session whose write lease (``locked_until``) is
held, counting it ``sessions_busy`` with its bytes intact, whether the lease was held when
the sweep read the session or taken between that read and the sweep's own guarded take-
over; the final is then built. A lease that has ended (a process that died holding it) is
taken over and the session expired as before: a lease ending exactly at the sweep's "now"
has ended, one ending a microsecond later has not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import update

from rindle import Rindle
from rindle.clock import ManualClock
from rindle.domain.models import UploadSession
from rindle.ops.abort_uploads import AbortReport, abort_incomplete_uploads
from rindle.upload import tus, tus_backing
from tests.apps import local_storage
from tests.lifecycle.conftest import jpeg_bytes
from tests.security.test_tus_concat_race import (
    WAIT,
    Hold,
    finished_partial,
    in_thread,
    leftovers,
    post_final,
    sessions,
)
from tests.security.test_web_attack_pass import ALICE, create, patch, tus_url
from tests.web.conftest import web_app
from tests.web.test_tus import session_of

__all__ = ["tus_url", "web_app"]  # the fixtures


def expire(app: Rindle, location: str, **values: Any) -> UploadSession:
    """Move the session at ``location`` past its expiry (plus ``values``); its row."""
    row = session_of(app, location)
    with app.db.transaction() as s:
        s.execute(update(UploadSession).where(UploadSession.id == row.id).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), **values))
    return session_of(app, location)


def counts(report: AbortReport) -> tuple[int, int, int, int, int]:
    return (report.sessions_found, report.sessions_aborted, report.sessions_busy,
            report.tus_aborts, report.abort_errors)


def expired_part(app: Rindle, partial: str) -> Path:
    """Expire the partial at ``partial``; the path of its part file."""
    return tus_backing.part_path(local_storage(app), expire(app, partial))


def sweep_leaves_it_busy(app: Rindle, part: Path, data: bytes) -> None:
    """A live sweep leaves the leased partial: counted busy, its bytes intact."""
    report = app.ops.abort_incomplete_uploads()
    assert counts(report) == (1, 0, 1, 0, 0) and report.exit_code == 0
    assert part.read_bytes() == data  # the bytes the final is about to read
    assert sessions(app) == [("final", "signed", None, False),
                             ("partial", "uploading", None, True)]


def build_after(hold: Hold, thread: threading.Thread, answers: list[requests.Response],
                app: Rindle, size: int) -> None:
    """Let the held final go on; it is built (201) from all ``size`` bytes."""
    hold.go.set()
    thread.join(WAIT)
    assert [a.status_code for a in answers] == [201], [a.text for a in answers]
    head = requests.head(answers[0].headers["Location"], headers=ALICE, timeout=WAIT)
    assert (head.status_code, head.headers["Upload-Offset"]) == (200, str(size))
    assert sessions(app) == [("final", "completed", None, False),
                             ("partial", "aborted", "concatenated", False)]
    assert leftovers(local_storage(app)) == []


def test_a_partial_a_final_holds_is_left_busy_and_the_final_is_built(
        web_app: Rindle, tus_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = jpeg_bytes((64, 48))
    partial = finished_partial(tus_url, data)
    hold = Hold(tus_backing.finish)  # the final holds the lease, no byte moved yet
    monkeypatch.setattr(tus_backing, "finish", hold)
    thread, answers = in_thread(lambda: post_final(tus_url, partial))
    assert hold.reached.wait(WAIT)
    part = expired_part(web_app, partial)
    assert part.read_bytes() == data
    sweep_leaves_it_busy(web_app, part, data)
    build_after(hold, thread, answers, web_app, len(data))
    assert counts(web_app.ops.abort_incomplete_uploads()) == (0, 0, 0, 0, 0)


def test_a_lease_a_final_takes_after_the_sweeps_read_wins_over_the_sweep(
        web_app: Rindle, tus_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A final checked the partial while it was open and is about to lease it; the
    partial then runs out and the sweep reads it unleased. Before the sweep's guarded
    take-over runs, the final takes the lease: the take-over matches nothing, the partial
    is left busy with its bytes, and the final is built."""
    data = jpeg_bytes((64, 48))
    partial = finished_partial(tus_url, data)
    leasing = Hold(tus._lease)  # the final passed its checks, the lease not yet taken
    monkeypatch.setattr(tus, "_lease", leasing)
    reading = Hold(tus_backing.finish)  # the final holds the lease, no byte moved yet
    monkeypatch.setattr(tus_backing, "finish", reading)
    thread, answers = in_thread(lambda: post_final(tus_url, partial))
    assert leasing.reached.wait(WAIT)
    part = expired_part(web_app, partial)
    real = tus.take_lease
    sweeps: list[bool] = []

    def take_lease(*args: Any, **kwargs: Any) -> bool:
        if not sweeps:  # the sweep's take-over, after its read: the final leases first
            sweeps.append(True)
            leasing.go.set()
            assert reading.reached.wait(WAIT)
        return real(*args, **kwargs)

    monkeypatch.setattr(tus, "take_lease", take_lease)
    sweep_leaves_it_busy(web_app, part, data)
    build_after(reading, thread, answers, web_app, len(data))


@pytest.mark.parametrize(("ends_after", "taken_over"), [
    (-tus.LEASE, True),                    # a holder that died long ago
    (dt.timedelta(0), True),               # ends exactly at the sweep's now: ended
    (dt.timedelta(microseconds=1), False),  # one microsecond later: still held
])
def test_an_ended_lease_is_taken_over_and_a_held_one_is_left(
        web_app: Rindle, tus_url: str, ends_after: dt.timedelta, taken_over: bool) -> None:
    location = create(tus_url, 8).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204
    now = dt.datetime.now(dt.UTC).replace(microsecond=500_000)
    row = expire(web_app, location, locked_until=now + ends_after)
    part = tus_backing.part_path(local_storage(web_app), row)
    context = dataclasses.replace(web_app.context, clock=ManualClock(now))
    report = abort_incomplete_uploads(context)
    after = session_of(web_app, location)
    if taken_over:
        assert counts(report) == (1, 1, 0, 1, 0)
        assert (after.state, after.locked_until, part.exists()) == ("expired", None, False)
    else:
        assert counts(report) == (1, 0, 1, 0, 0)
        assert (after.state, after.locked_until) == ("uploading", now + ends_after)
        assert part.read_bytes() == b"abcd"


def test_a_dry_run_counts_a_busy_session_as_found_only(web_app: Rindle,
                                                        tus_url: str) -> None:
    location = create(tus_url, 8).headers["Location"]
    assert patch(location, 0, b"abcd").status_code == 204
    expire(web_app, location, locked_until=dt.datetime.now(dt.UTC) + tus.LEASE)
    report = web_app.ops.abort_incomplete_uploads(dry_run=True)
    assert counts(report) == (1, 0, 0, 0, 0) and report.dry_run
