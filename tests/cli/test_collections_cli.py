"""``rindle attach --collection --position``, ``rindle detach --asset``, ``rindle reorder``
and the positions ``rindle show`` prints, in text and ``--json``, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from rindle import Rindle
from rindle.cli import cli
from tests.apps import MakeApp
from tests.domain.attach_kit import PROFILES, stored


@pytest.fixture
def app(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> Rindle:
    app = make_app(profiles=PROFILES)
    monkeypatch.setattr("rindle.cli._context.CliContext.app", lambda self: app)
    return app


def run(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_attach_show_and_detach_a_collection(app: Rindle) -> None:
    first, second = str(stored(app).id), str(stored(app).id)
    assert run("attach", first, "user:7", "photos", "--collection") == {
        "asset_id": first, "owner_type": "user", "owner_id": "7", "slot": "photos",
        "collection": True, "position": 0}
    assert run("attach", second, "user:7", "photos", "--position", "0")["position"] == 0
    app.attach(first, ("team", 1), "logo")
    shown = run("show", first)["attachments"]
    assert shown == [
        {"owner_type": "team", "owner_id": "1", "slot": "logo", "collection": False,
         "position": 0},
        {"owner_type": "user", "owner_id": "7", "slot": "photos", "collection": True,
         "position": 1}]
    text = CliRunner().invoke(cli, ["show", first]).stdout
    assert "attached team:1/logo\n" in text and "attached user:7/photos[1]\n" in text
    plain = CliRunner().invoke(cli, ["attach", second, "user:7", "photos"])
    assert plain.stdout == f"attached {second} to user:7/photos[0]\n"
    refused = run("detach", "user:7", "photos", code=2)
    assert refused["error"]["code"] == "asset_id_required"
    assert run("detach", "user:7", "photos", "--asset", second) == {"detached": True}
    assert [a.id for a in app.attachments(("user", 7))["photos"]] == [  # type: ignore[union-attr]
        app.get_asset(first).id]


@pytest.mark.parametrize(("args", "code"), [
    (("--collection", "--position", "1"), "position_out_of_range"),  # empty: 0 is the last
    (("--single", "--position", "0"), "not_a_collection"),
])
def test_attach_errors_carry_their_code(app: Rindle, args: tuple[str, ...], code: str) -> None:
    out = run("attach", str(stored(app).id), "user:7", "photos", *args, code=2)
    assert out["error"]["code"] == code
    assert app.attachments(("user", 7)) == {}


def test_a_negative_position_is_a_usage_error_before_anything_runs(app: Rindle) -> None:
    result = CliRunner().invoke(cli, ["attach", str(stored(app).id), "user:7", "photos",
                                      "--position", "-1"])
    assert result.exit_code == 2 and "-1 is not in the range 0<=x<=2147483647" in result.output
    assert app.attachments(("user", 7)) == {}


def photos(app: Rindle) -> list[str]:
    held = app.attachments(("user", 7)).get("photos", [])
    assert isinstance(held, list)
    return [str(a.id) for a in held]


def test_reorder_a_collection_in_json_and_text(app: Rindle) -> None:
    ids = [str(stored(app).id) for _ in range(3)]
    for aid in ids:
        app.attach(aid, ("user", 7), "photos", collection=True)
    new = [ids[2], ids[0], ids[1]]
    assert run("reorder", "user:7", "photos", *new) == {
        "owner_type": "user", "owner_id": "7", "slot": "photos", "assets": new}
    assert photos(app) == new
    plain = CliRunner().invoke(cli, ["reorder", "user:7", "photos", *ids])
    assert plain.exit_code == 0
    assert plain.stdout == "".join(f"user:7/photos[{i}] {a}\n" for i, a in enumerate(ids))
    assert photos(app) == ids
    empty = CliRunner().invoke(cli, ["reorder", "user:8", "photos"])
    assert (empty.exit_code, empty.stdout) == (0, "user:8/photos holds nothing\n")


@pytest.mark.parametrize("pick", ["missing", "extra", "repeated"])
def test_reorder_needs_a_permutation_and_changes_nothing(app: Rindle, pick: str) -> None:
    ids = [str(stored(app).id) for _ in range(2)]
    for aid in ids:
        app.attach(aid, ("user", 7), "photos", collection=True)
    other = str(stored(app).id)
    given, named = {"missing": (ids[:1], f"missing: {ids[1]};"),
                    "extra": ([*ids, other], f"not in the slot: {other};"),
                    "repeated": ([ids[1], ids[0], ids[0]], f"repeated: {ids[0]}.")}[pick]
    out = run("reorder", "user:7", "photos", *given, code=2)
    assert out["error"]["code"] == "not_a_permutation"
    assert named in out["error"]["message"]  # the message names the culprit
    assert photos(app) == ids


def test_reorder_errors_and_their_exit_codes(app: Rindle) -> None:
    aid = str(stored(app).id)
    app.attach(aid, ("user", 7), "avatar")
    single = run("reorder", "user:7", "avatar", aid, code=2)
    assert single["error"]["code"] == "not_a_collection"
    unknown = run("reorder", "user:7", "photos", "nope", code=1)
    assert unknown["error"] == {"code": "not_found", "message": "asset 'nope' not found"}
    bad_owner = CliRunner().invoke(cli, ["reorder", "user7", "photos"])
    assert bad_owner.exit_code == 2 and "write the owner as TYPE:ID" in bad_owner.output
