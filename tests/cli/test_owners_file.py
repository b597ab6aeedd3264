"""``erase-owners --owners-file``: the reference's JSON array, JSON lines and CSV; anything
else is a usage error naming the line; ``--max-owners`` stops the reading early.

A JSON array once parsed as CSV garbage, matched nothing and exited 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from rindle import Profile, Rindle
from rindle.cli import _limits, cli
from rindle.cli.maintenance import read_owners
from rindle.domain.models import Asset
from rindle.ids import uuid7
from rindle.ops import erasure
from tests.apps import MakeApp

PREFIX = "Error: Invalid value for --owners-file: "


def owners_in(tmp_path: Path, text: str | bytes, **kwargs: int) -> list[tuple[str, str]]:
    path = tmp_path / "owners"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return read_owners(path, **kwargs)


def refusal(tmp_path: Path, text: str | bytes, **kwargs: int) -> str:
    with pytest.raises(click.BadParameter) as err:
        owners_in(tmp_path, text, **kwargs)
    return err.value.format_message().removeprefix("Invalid value for --owners-file: ")


# --- the three formats -------------------------------------------------------------------------

def test_a_json_array_on_one_line(tmp_path: Path) -> None:
    text = '[{"owner_type": "user", "owner_id": "5"}, {"owner_type": "team", "owner_id": 7}]\n'
    assert owners_in(tmp_path, text) == [("user", "5"), ("team", "7")]


def test_a_pretty_printed_json_array(tmp_path: Path) -> None:
    data = [{"owner_type": "user", "owner_id": "5"},
            {"owner_type": "org", "owner_id": 'a,b]}{["\\'},  # structure inside a string
            {"owner_type": "user", "owner_id": "6", "note": {"nested": [1, 2]}}]
    text = "# exported 2024-05-01\n\n" + json.dumps(data, indent=2) + "\n\n"
    assert owners_in(tmp_path, text) == [("user", "5"), ("org", 'a,b]}{["\\'), ("user", "6")]


def test_an_empty_array_is_no_owners(tmp_path: Path) -> None:
    assert owners_in(tmp_path, "[\n]\n") == []


def test_json_lines_with_either_key_pair(tmp_path: Path) -> None:
    text = ('{"owner_type": "user", "owner_id": "5"}\n{"type": "user", "id": 6}\n'
            '# comment\n\n{"owner_type": "team", "owner_id": "x"}\n')
    assert owners_in(tmp_path, text) == [("user", "5"), ("user", "6"), ("team", "x")]


def test_csv_with_or_without_a_header_and_quoting(tmp_path: Path) -> None:
    assert owners_in(tmp_path, "owner_type,owner_id\nuser,5\n\"org\",\"a,b\"\n") == [
        ("user", "5"), ("org", "a,b")]
    assert owners_in(tmp_path, "type,id\r\nuser , 5\r\n") == [("user", "5")]
    assert owners_in(tmp_path, "user,5\n") == [("user", "5")]


def test_lines_may_mix_csv_and_json_lines_and_duplicates_collapse(tmp_path: Path) -> None:
    text = 'user,5\n{"owner_type": "user", "owner_id": "5"}\n{"type": "user", "id": 6}\n'
    assert owners_in(tmp_path, text) == [("user", "5"), ("user", "6")]


# --- anything else names its line --------------------------------------------------------------

NOT_AN_OWNER = 'expected {"owner_type": ..., "owner_id": ...}'
NONE_OF_THEM = ('expected CSV TYPE,ID, a JSON line {"owner_type": ..., "owner_id": ...}, or a '
                'JSON array of such objects')


@pytest.mark.parametrize(("text", "problem"), [
    ('[{"owner_type": "user", "owner_id": "5"},\n {"owner": "user"}]\n',
     f"line 2: {NOT_AN_OWNER}"),
    ('[\n  {"owner_type": "user", "owner_id": "5"},\n  ["user", "6"]\n]\n',
     f"line 3: {NOT_AN_OWNER}"),
    ('[\n  {"owner_type": "", "owner_id": "5"}\n]\n', f"line 2: {NOT_AN_OWNER}"),
    ('[{"owner_type": "user", "owner_id": null}]\n', f"line 1: {NOT_AN_OWNER}"),
    ('[{"owner_type": "user", "owner_id": true}]\n', f"line 1: {NOT_AN_OWNER}"),
    ('[{"owner_type": "user", "id": "5"}]\n', f"line 1: {NOT_AN_OWNER}"),
    ('[\n{"owner_type": "user",\n "owner_id": 5,}\n]\n',
     "line 2: not valid JSON (Expecting property name enclosed in double quotes)"),
    ('[{"owner_type": "user", "owner_id": "5"} {"owner_type": "u", "owner_id": "6"}]\n',
     "line 1: not valid JSON (Extra data)"),
    ('[{"owner_type": "user", "owner_id": "5"},]\n',
     "line 1: an empty entry in the JSON array (a stray comma?)"),
    ('[\n{"owner_type": "user", "owner_id": "5"}\n', "line 2: the JSON array is not closed "
                                                      "(no final ])"),
    ('[{"owner_type": "user", "owner_id": "5"}]\n# trailing\n',
     "line 2: text after the end of the JSON array"),
    ('[{"owner_type": "user", "owner_id": "5"}}\n', "line 1: unbalanced brackets in the "
                                                     "JSON array"),
    ("user,5\n[1]\n", f"line 2: {NONE_OF_THEM}"),
    ("user,5\njust-one-column\n", f"line 2: {NONE_OF_THEM}"),
    ("user,5,extra\n", f"line 1: {NONE_OF_THEM}"),
    ("user,\n", f"line 1: {NONE_OF_THEM}"),
    ('"owner_type": "user", "owner_id": 5\n', f"line 1: {NONE_OF_THEM}"),
    ('{"owner_type": "user",\n "owner_id": 5}\n', f"line 1: {NONE_OF_THEM}"),
    ('user,5\n{"owner_type": "user"}\n', f"line 2: {NONE_OF_THEM}"),
    ('user,5\n}\n', f"line 2: {NONE_OF_THEM}"),
])
def test_what_is_none_of_the_formats_names_its_line(tmp_path: Path, text: str,
                                                    problem: str) -> None:
    assert refusal(tmp_path, text) == f"{tmp_path / 'owners'}: {problem}"


def test_a_json_array_entry_is_bounded_like_a_line(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_limits, "MAX_LINE_BYTES", 60)
    entry = {"owner_type": "user", "owner_id": "x" * 20}  # 43 characters
    assert owners_in(tmp_path, "[\n" + json.dumps(entry) + "\n]\n") == [("user", "x" * 20)]
    long = json.dumps({"owner_type": "user", "owner_id": "x" * 10}, indent=8)  # 58 a line
    assert refusal(tmp_path, "[\n" + long + "\n]\n") == (
        f"{tmp_path / 'owners'}: line 2: a JSON array entry is longer than 60 bytes")


# --- --max-owners stops the reading ------------------------------------------------------------

def test_reading_stops_at_the_first_owner_past_max_owners(tmp_path: Path) -> None:
    lines = "".join(f"user,{n}\n" for n in range(3)) + "user,0\n" + "user,3\n"
    assert len(owners_in(tmp_path, lines, max_owners=4)) == 4
    # line 6 is not UTF-8: reading stopped at line 5, the fourth distinct owner past 3
    text = lines.encode() + b"user,\xff\n"
    assert refusal(tmp_path, text, max_owners=3) == (
        f"{tmp_path / 'owners'}: line 5: more than 3 owners (--max-owners); split the file "
        "or raise --max-owners")


def test_a_json_array_stops_early_too(tmp_path: Path) -> None:
    entries = ",\n".join(json.dumps({"owner_type": "user", "owner_id": n}) for n in range(4))
    text = ("[\n" + entries + ",\n").encode() + b"\xff" * 10
    assert refusal(tmp_path, text, max_owners=3) == (
        f"{tmp_path / 'owners'}: line 5: more than 3 owners (--max-owners); split the file "
        "or raise --max-owners")


def test_the_default_is_the_librarys_max_owners() -> None:
    assert _limits.DEFAULT_MAX_OWNERS == erasure.MAX_OWNERS
    option = next(p for p in cli.commands["erase-owners"].params if p.name == "max_owners")
    assert option.default == erasure.MAX_OWNERS
    assert isinstance(option.type, click.IntRange)
    assert (option.type.min, option.type.max) == (1, _limits.MAX_OWNERS_CEILING)


# --- from the command line, on both dialects ---------------------------------------------------

class Avatar(Profile):
    name = "avatar"


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "rindle.toml"
    path.write_text(f"database_url = {json.dumps(db_url)}\n"
                    f'secret_key = "{"k" * 40}"\n'
                    "[storages.default]\nbackend = \"local\"\n"
                    f"root = {json.dumps(str(tmp_path / 'media'))}\n", encoding="utf-8")
    return path


def erase(config: Path, owners: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "erase-owners", "--owners-file",
                                    str(owners), *args])


@pytest.fixture
def held(make_app: MakeApp) -> str:
    """An asset row attached to user 5 only, in the database the config names."""
    app: Rindle = make_app(profiles=[Avatar])
    aid = uuid7()
    with app.db.transaction() as s:
        s.add(Asset(id=aid, profile="avatar", storage_key=f"avatar/{aid}/o.png",
                    state="ready", content_type="image/png"))
    app.attach(aid, ("user", 5), "avatar")
    return str(aid)


def test_a_json_array_file_erases_what_it_names(config: Path, tmp_path: Path,
                                                held: str) -> None:
    owners = tmp_path / "owners.json"
    owners.write_text(json.dumps([{"owner_type": "user", "owner_id": "5"},
                                  {"owner_type": "user", "owner_id": 99}], indent=2))
    preview = erase(config, owners, "--json")
    assert preview.exit_code == 0, preview.output
    body = json.loads(preview.stdout)
    assert (body["mode"], body["owners"], body["purged"]) == ("preview", 2, [held])
    text = erase(config, owners)
    assert "nothing changed; pass --live to erase" in text.stdout
    live = erase(config, owners, "--live", "--json")
    assert live.exit_code == 0, live.output
    body = json.loads(live.stdout)
    assert (body["mode"], body["purge_enqueued"], body["detached"][0]["asset_id"]) == (
        "execute", 1, held)


def test_execute_is_still_live_and_dry_run_contradicts_it(config: Path, tmp_path: Path,
                                                          held: str) -> None:
    owners = tmp_path / "owners.csv"
    owners.write_text("user,5\n")
    contradiction = erase(config, owners, "--execute", "--dry-run")
    assert contradiction.exit_code == 2
    assert contradiction.stderr.splitlines()[-1] == (
        "Error: --live and --dry-run contradict each other; pass one of them")
    explicit = erase(config, owners, "--dry-run", "--json")
    assert json.loads(explicit.stdout)["mode"] == "preview"
    old = erase(config, owners, "--execute", "--json")
    assert old.exit_code == 0 and json.loads(old.stdout)["purge_enqueued"] == 1


def test_max_owners_option(config: Path, tmp_path: Path) -> None:
    owners = tmp_path / "owners.csv"
    owners.write_text("".join(f"user,{n}\n" for n in range(101)))
    default = erase(config, owners)
    assert default.exit_code == 2 and default.stdout == ""
    assert default.stderr.splitlines()[-1] == (
        f"{PREFIX}{owners}: line 101: more than 100 owners (--max-owners); split the file or "
        "raise --max-owners")
    raised = erase(config, owners, "--max-owners", "101", "--json")
    assert raised.exit_code == 0, raised.output
    assert json.loads(raised.stdout)["owners"] == 101
    lowered = erase(config, owners, "--max-owners", "2")
    assert lowered.exit_code == 2 and "line 3: more than 2 owners" in lowered.stderr


def test_a_garbage_array_is_exit_2_not_a_silent_0(config: Path, tmp_path: Path) -> None:
    owners = tmp_path / "owners.json"
    owners.write_text('[{"user": 5}]\n')
    result = erase(config, owners)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"{PREFIX}{owners}: line 1: {NOT_AN_OWNER}"
