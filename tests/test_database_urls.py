"""Database URLs that cannot work are one clear ConfigError, never a driver traceback,
and never echo a password; a SQLite file's folder is never created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rindle import Rindle
from rindle.cli import cli
from rindle.database import Database
from rindle.errors import ConfigError

PASSWORD = "hunter2-never-shown"


def build(url: str) -> Rindle:
    return Rindle(database_url=url, secret_key="k" * 40, load_entrypoints=False)


@pytest.mark.parametrize("url", ["sqlite://rindle.db", "sqlite://data/rindle.db",
                                 "sqlite+pysqlite://rindle.db"])
def test_two_slashes_say_three_or_four(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        build(url)
    message = err.value.message
    assert err.value.code == "config_error"
    assert "two slashes" in message
    assert "sqlite:///" in message and "sqlite:////abs/path/rindle.db" in message
    assert "relative" in message and "absolute" in message
    assert "ArgumentError" not in message


def test_two_slashes_suggest_the_three_slash_form_of_the_same_path() -> None:
    with pytest.raises(ConfigError) as err:
        build("sqlite://data/rindle.db")
    assert "Use sqlite:///data/rindle.db " in err.value.message


@pytest.mark.parametrize(("url", "dialect"), [
    (f"mysql://app:{PASSWORD}@db.example/app", "mysql"),
    (f"mysql+pymysql://app:{PASSWORD}@db.example/app", "mysql"),
    (f"mssql+pyodbc://app:{PASSWORD}@db.example/app", "mssql"),
    ("oracle://db.example/app", "oracle"),
    ("mongodb://db.example/app", "mongodb"),
])
def test_other_dialects_name_the_two_supported_ones(url: str, dialect: str) -> None:
    with pytest.raises(ConfigError) as err:
        build(url)
    message = err.value.message
    assert err.value.code == "config_error"
    assert f"is a {dialect} URL" in message
    assert "rindle supports SQLite" in message and "and PostgreSQL" in message
    assert PASSWORD not in message


def test_a_missing_sqlite_folder_is_refused_not_created(tmp_path: Path) -> None:
    target = tmp_path / "nonexistent" / "dir" / "x.db"
    with pytest.raises(ConfigError) as err:
        build(f"sqlite:///{target}")
    assert f"the folder '{target.parent}' does not exist" in err.value.message
    assert not (tmp_path / "nonexistent").exists()
    with pytest.raises(ConfigError):
        Database(f"sqlite:///{target}")  # the standalone Database refuses it too
    assert not (tmp_path / "nonexistent").exists()


def test_the_embedded_default_works_in_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RINDLE_CONFIG", raising=False)
    monkeypatch.delenv("RINDLE_DATABASE_URL", raising=False)
    app = Rindle.from_config(secret_key="k" * 40, load_entrypoints=False)
    try:
        assert app.db.sqlite_path == (tmp_path / "rindle.db").resolve()
        assert not (tmp_path / "rindle.db").exists()  # building connects to nothing
        app.migrate()
        assert (tmp_path / "rindle.db").is_file()
        app.db.ensure_schema_current()
    finally:
        app.close()


def test_in_memory_sqlite_has_no_file_to_check() -> None:
    db = Database("sqlite://")
    assert db.sqlite_path is None and db.missing_file() is None
    db.check_connection()
    db.dispose()


@pytest.mark.parametrize(("url", "needle"), [
    ("sqlite://rindle.db", "two slashes"),
    (f"mysql://app:{PASSWORD}@db.example/app", "rindle supports SQLite"),
    ("sqlite:////{tmp}/no/such/folder/x.db", "does not exist"),
])
def test_the_cli_prints_one_line(url: str, needle: str, tmp_path: Path) -> None:
    config = tmp_path / "rindle.toml"
    config.write_text(f"database_url = {json.dumps(url.replace('/{tmp}', str(tmp_path)))}\n"
                      f'secret_key = "{"k" * 40}"\n', encoding="utf-8")
    for args in (["doctor"], ["migrate"], ["show", "0190a4f2-0000-7000-8000-000000000000"]):
        result = CliRunner().invoke(cli, ["--config", str(config), *args])
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("Error: database_url ")
        assert result.stderr.endswith(" [config_error]\n") and result.stderr.count("\n") == 1
        assert needle in result.stderr
        assert PASSWORD not in result.output + result.stderr
    assert not (tmp_path / "no").exists()
