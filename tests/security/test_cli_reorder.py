"""``rindle reorder OWNER SLOT ASSET_ID...`` takes its whole input from the command line.

Hostile arguments are refused with their code and exit status and change nothing: a slot
or owner at the 255-character limit passes and one past it is refused; NUL characters are
refused; an id that is not a UUID is ``not_found`` with at most 40 of its characters
quoted, escaped (no control character reaches the terminal); thousands of foreign ids
give a bounded message. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from click.testing import CliRunner

from rindle import Rindle
from rindle.cli import cli
from rindle.domain.attachments import MAX_NAME
from tests.apps import MakeApp
from tests.domain.attach_kit import PROFILES, stored


@pytest.fixture
def app(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> Rindle:
    app = make_app(profiles=PROFILES)
    monkeypatch.setattr("rindle.cli._context.CliContext.app", lambda self: app)
    return app


def reorder(*args: str, code: int) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["reorder", *args, "--json"])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def held(app: Rindle) -> list[str]:
    photos = app.attachments(("user", 7)).get("photos", [])
    assert isinstance(photos, list)
    return [str(a.id) for a in photos]


@pytest.fixture
def two(app: Rindle) -> list[str]:
    ids = [str(stored(app).id) for _ in range(2)]
    for aid in ids:
        app.attach(aid, ("user", 7), "photos", collection=True)
    return ids


def test_names_at_the_limit_pass_and_one_past_is_refused(app: Rindle) -> None:
    at, past = "s" * MAX_NAME, "s" * (MAX_NAME + 1)
    assert reorder("user:7", at, code=0)["assets"] == []
    assert reorder("user:7", past, code=2)["error"]["code"] == "invalid_slot"
    assert reorder(f"user:{'9' * MAX_NAME}", "photos", code=0)["assets"] == []
    assert reorder(f"user:{'9' * (MAX_NAME + 1)}", "photos",
                   code=2)["error"]["code"] == "invalid_owner"


def test_nul_characters_are_refused(app: Rindle, two: list[str]) -> None:
    assert reorder("user:7", "pho\x00tos", *two, code=2)["error"]["code"] == "invalid_slot"
    assert reorder("user:7\x00", "photos", *two, code=2)["error"]["code"] == "invalid_owner"
    assert held(app) == two


def test_a_hostile_id_is_quoted_short_and_escaped(app: Rindle, two: list[str]) -> None:
    hostile = "\x1b]0;pwned\x07\x1b[2J" + "A" * 100_000
    result = CliRunner().invoke(cli, ["reorder", "user:7", "photos", two[0], hostile])
    assert result.exit_code == 1
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert len(result.stderr) < 200 and "[not_found]" in result.stderr
    body = reorder("user:7", "photos", hostile, *two, code=1)
    assert body["error"] == {"code": "not_found",
                             "message": f"asset {hostile[:40]!r}... not found"}
    assert held(app) == two


def test_thousands_of_foreign_ids_give_a_bounded_message(app: Rindle,
                                                         two: list[str]) -> None:
    foreign = [str(uuid.uuid4()) for _ in range(2000)]
    body = reorder("user:7", "photos", *two, *foreign, code=2)
    message = body["error"]["message"]
    assert body["error"]["code"] == "not_a_permutation"
    assert "and 1995 more" in message and len(message) < 600
    assert held(app) == two
