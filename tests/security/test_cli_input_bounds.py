"""Every file the command line reads is bounded: line length, line count, total size.

``--owners-file /dev/zero`` once grew the process to 24 GB. Now a line, a file or a line
count over its bound is a usage error (exit 2) naming the file and the line, found after
reading at most one line past the bound; a file exactly at a bound passes. The bounds
are module constants, patched small here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rindle.cli import _limits, cli
from rindle.config import load_settings
from rindle.errors import ConfigError

USAGE_TAIL = "Error: Invalid value for --owners-file: "


def write_config(tmp_path: Path, db_url: str) -> Path:
    config = tmp_path / "rindle.toml"
    config.write_text(f"database_url = {json.dumps(db_url)}\n"
                      f'secret_key = "{"k" * 40}"\n'
                      "[storages.default]\nbackend = \"local\"\n"
                      f"root = {json.dumps(str(tmp_path / 'media'))}\n", encoding="utf-8")
    return config


def erase(owners: Path, *args: str, config: Path | None = None) -> Result:
    root = ["--config", str(config)] if config else []
    return CliRunner().invoke(cli, [*root, "erase-owners", "--owners-file", str(owners), *args])


def usage_error(result: Result) -> str:
    """The last stderr line of a usage error (exit 2), checked to be one."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    return result.stderr.splitlines()[-1]


def owners_lines(count: int) -> str:
    return "".join(f"user,{n}\n" for n in range(count))


# --- --owners-file --------------------------------------------------------------------------

def test_dev_zero_is_refused_at_the_first_line() -> None:
    result = erase(Path("/dev/zero"))
    assert usage_error(result) == (
        f"{USAGE_TAIL}/dev/zero: line 1 is longer than {_limits.MAX_LINE_BYTES} bytes")


def test_one_enormous_line_is_refused_with_its_number(tmp_path: Path) -> None:
    owners = tmp_path / "owners.csv"
    owners.write_bytes(b"user,1\nuser,2\nuser," + b"9" * _limits.MAX_LINE_BYTES + b"\n")
    assert usage_error(erase(owners)) == (
        f"{USAGE_TAIL}{owners}: line 3 is longer than {_limits.MAX_LINE_BYTES} bytes")


def test_a_line_of_exactly_the_limit_passes(db_url: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_limits, "MAX_LINE_BYTES", 12)
    owners = tmp_path / "owners.csv"
    owners.write_text("user,1234567\r\nuser,2\n")  # 12 bytes before the CRLF
    result = erase(owners, "--json", config=write_config(tmp_path, db_url))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["owners"] == 2
    owners.write_text("user,12345678\n")
    assert usage_error(erase(owners)) == f"{USAGE_TAIL}{owners}: line 1 is longer than 12 bytes"


def test_one_line_past_the_line_count_is_refused(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_limits, "MAX_OWNER_LINES", 3)
    owners = tmp_path / "owners.csv"
    owners.write_text("# header\n" + owners_lines(3))
    assert usage_error(erase(owners)) == (
        f"{USAGE_TAIL}{owners}: line 4: the file has more than 3 lines")


def test_exactly_the_line_count_passes(db_url: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_limits, "MAX_OWNER_LINES", 3)
    owners = tmp_path / "owners.csv"
    owners.write_text(owners_lines(3))
    result = erase(owners, "--json", config=write_config(tmp_path, db_url))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["owners"] == 3


def test_max_lines_option_moves_the_line_count_bound(db_url: str, tmp_path: Path) -> None:
    owners = tmp_path / "owners.csv"
    owners.write_text(owners_lines(5))
    config = write_config(tmp_path, db_url)
    assert usage_error(erase(owners, "--max-lines", "4", config=config)) == (
        f"{USAGE_TAIL}{owners}: line 5: the file has more than 4 lines")
    result = erase(owners, "--max-lines", "5", "--json", config=config)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["owners"] == 5


def test_total_size_bound(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = owners_lines(4)  # "user,0\n" .. "user,3\n": 28 bytes
    monkeypatch.setattr(_limits, "MAX_FILE_BYTES", len(text))
    owners = tmp_path / "owners.csv"
    owners.write_text(text)
    result = erase(owners, "--json", config=write_config(tmp_path, db_url))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["owners"] == 4
    owners.write_text(text + "\n")
    assert usage_error(erase(owners)) == (
        f"{USAGE_TAIL}{owners}: line 5: the file is larger than {len(text)} bytes")


def test_a_line_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    owners = tmp_path / "owners.csv"
    owners.write_bytes(b"user,1\nuser,\xff\xfe\n")
    assert usage_error(erase(owners)) == f"{USAGE_TAIL}{owners}: line 2 is not UTF-8 text"


# --- --config, upload FILE --------------------------------------------------------------------

def test_config_dev_zero_is_refused() -> None:
    result = CliRunner().invoke(cli, ["--config", "/dev/zero", "doctor"])
    assert usage_error(result) == (
        "Error: Invalid value for '--config': /dev/zero is a device, not a settings file")


def test_config_file_size_bound(db_url: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    import rindle.config

    config = write_config(tmp_path, db_url)
    size = config.stat().st_size
    monkeypatch.setattr(rindle.config, "MAX_CONFIG_BYTES", size)
    at_limit = CliRunner().invoke(cli, ["--config", str(config), "--json", "migrate"])
    assert at_limit.exit_code == 0, at_limit.output
    with config.open("a") as handle:
        handle.write("#")
    lines = config.read_text().count("\n")  # the extra byte starts a new last line
    over = CliRunner().invoke(cli, ["--config", str(config), "migrate"])
    assert usage_error(over) == (f"Error: Invalid value for '--config': {config}: line "
                                 f"{lines + 1}: the file is larger than {size} bytes")
    with pytest.raises(ConfigError) as err:  # a discovered file is bounded by the library
        load_settings(config)
    assert err.value.code == "config_too_large"
    assert err.value.message == (f"config file {config}: line {lines + 1}: the file is "
                                 f"larger than {size} bytes")


def test_upload_refuses_anything_but_a_regular_file() -> None:
    result = CliRunner().invoke(cli, ["upload", "/dev/zero", "--profile", "p"])
    assert usage_error(result) == (
        "Error: Invalid value for 'FILE': /dev/zero is not a regular file")
