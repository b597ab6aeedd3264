"""Parts signed in parallel (Uppy's @uppy/aws-s3 and rindle-upload.js sign several at once):
every request that loaded the session while it was still ``initialized`` gets its part URL,
even though only one of them moves the session to ``signed`` (moto over HTTP, SQLite and
PostgreSQL). The loser is pinned deterministically: it sees the row as it was before the
winner's commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rindle import Profile, Rindle
from rindle.errors import InvalidTransition
from rindle.upload import direct


class Big(Profile):
    name = "big"
    allow_mime = ("image/jpeg",)
    max_bytes = 32 * 1024 * 1024


def _stale_first_load(monkeypatch: pytest.MonkeyPatch, state: str) -> None:
    """The next ``_load`` answers the row as it was in ``state`` (loaded before another
    request's commit); later loads read the database."""
    real = direct._load
    calls: list[int] = []

    def load(app: Any, session_id: Any) -> Any:
        row, asset = real(app, session_id)
        if not calls:
            calls.append(1)
            row.state = state  # a detached row: the database keeps its own state
        return row, asset

    monkeypatch.setattr(direct, "_load", load)


def _multipart(make_app: Callable[..., Rindle], s3_settings: dict[str, str]
               ) -> tuple[Rindle, Any]:
    """An app on the moto bucket and a fresh multipart session of 11 MiB."""
    app = make_app(storages={"default": s3_settings}, profiles=[Big], load_entrypoints=True)
    return app, app.initiate_upload("big", filename="a.jpg", byte_size=11 * 1024 * 1024,
                                    strategy="multipart")


def test_a_part_signed_while_another_won_the_move_gets_its_url(
        make_app: Callable[..., Rindle], s3_settings: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, session = _multipart(make_app, s3_settings)
    first = app.sign_upload_part(session.id, 1)  # the winner: initialized -> signed
    _stale_first_load(monkeypatch, "initialized")
    second = app.sign_upload_part(session.id, 2)  # the loser of the same move
    assert "partNumber=2" in second.url and "partNumber=1" in first.url
    assert direct._load(app, session.id)[0].state == "signed"


def test_a_session_aborted_meanwhile_still_refuses(
        make_app: Callable[..., Rindle], s3_settings: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, session = _multipart(make_app, s3_settings)
    app.abort_upload(session.id)
    _stale_first_load(monkeypatch, "initialized")
    with pytest.raises(InvalidTransition):
        app.sign_upload_part(session.id, 1)
