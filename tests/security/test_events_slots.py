"""A closed live progress stream frees its slot at once, under rindle's threading WSGI
server as under uvicorn (SQLite and PostgreSQL).

Found by the web attack pass: under WSGI a stream only learnt that its browser had gone
when a write failed, the second heartbeat after the close (30 s with the default 15 s
heartbeat). Anyone holding one valid subscribe token could open and close streams a few
times a second and keep every one of ``max_streams`` slots taken (503 for everyone
else) with no connection open at all; a user reloading a page left one ghost stream per
reload. The WSGI stream now checks its connection (``rindle.socket``, or
``gunicorn.socket``) while it waits.
"""

from __future__ import annotations

import uuid

import pytest

from rindle import Rindle
from rindle.web.events import GONE_CHECK
from tests.web.sse import SSE, served_events, wait_for

SERVERS = ["wsgi", "asgi"]


@pytest.mark.parametrize("server", SERVERS)
def test_closed_streams_free_their_slots_before_the_next_heartbeat(app: Rindle, server: str
                                                                   ) -> None:
    assert GONE_CHECK == 1.0
    token = app.subscribe_token([uuid.uuid4()])
    # heartbeat 600 s: a slot freed within the bound below was not freed by a write failing
    with served_events(app, server, max_streams=3, heartbeat=600.0) as (core, base):
        for _ in range(2):  # open and close a full set of streams, twice over
            streams = [SSE(base, f"/events?token={token}") for _ in range(3)]
            assert [s.status for s in streams] == [200, 200, 200]
            assert [s.next() for s in streams] == [{"retry": "3000"}] * 3
            refused = SSE(base, f"/events?token={token}")
            assert refused.status == 503 and refused.json()["error"]["code"] == (
                "too_many_streams")
            refused.close()
            for stream in streams:
                stream.close()
            wait_for(lambda: core.open_streams == 0, "the closed streams' slots",
                     limit=GONE_CHECK * 10)
        assert core.open_streams == 0
