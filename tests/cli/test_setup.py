"""`rindle init`, `migrate`, `plugins` and how the CLI reports bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rindle.cli import cli


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess (what a user types)."""
    full_env = {**os.environ, "RINDLE_DISABLE_PLUGIN_AUTOLOAD": "1", **(env or {})}
    full_env.pop("RINDLE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "rindle", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120)


def test_init_migrate_plugins_on_the_embedded_defaults(tmp_path: Path) -> None:
    init = run(["init"], tmp_path)
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "rindle.toml").is_file() and (tmp_path / "rindle_profiles.py").is_file()
    migrate = run(["--json", "migrate"], tmp_path)
    assert migrate.returncode == 0, migrate.stderr
    report = json.loads(migrate.stdout)
    assert report["from"] is None and report["to"] == "0005"
    assert (tmp_path / "rindle.db").is_file()
    again = run(["--json", "migrate"], tmp_path)
    assert json.loads(again.stdout)["from"] == "0005"
    plugins = run(["--json", "plugins"], tmp_path)
    names = [p["name"] for p in json.loads(plugins.stdout)["plugins"]]
    assert "rindle.default_plugins.local_storage" in names


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    assert run(["init"], tmp_path).returncode == 0
    second = run(["init"], tmp_path)
    assert second.returncode != 0 and "--force" in second.stderr
    assert run(["init", "--force"], tmp_path).returncode == 0


BAD_CONFIGS = [
    ("database_url = \n", "not valid TOML"),
    ('secret_key = "s"\n[storages.default]\nbackend = "s3"\n', "pip install rindle-s3"),
    ('secret_key = "s"\nprofiles = ["nomod_zz:P"]\n', "cannot import profile module"),
    ('database_url = "postgresql://u:sekrit@127.0.0.1:1/x"\n', "cannot connect"),
]


@pytest.mark.parametrize(("config", "needle"), BAD_CONFIGS)
def test_bad_input_is_one_clear_line_never_a_traceback(tmp_path: Path, config: str,
                                                        needle: str) -> None:
    (tmp_path / "rindle.toml").write_text(config, encoding="utf-8")
    result = run(["migrate"], tmp_path)
    assert result.returncode == 1
    assert needle in result.stderr
    assert "Traceback" not in result.stderr and "sekrit" not in result.stderr
    assert result.stderr.startswith("Error: ")


def test_invalid_profile_options_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "badprofiles.py").write_text(
        "from rindle import Profile\n"
        "class P(Profile):\n    name = 'p'\n    max_bytes = -5\n", encoding="utf-8")
    (tmp_path / "rindle.toml").write_text('secret_key = "s"\nprofiles = ["badprofiles:P"]\n',
                                          encoding="utf-8")
    result = run(["migrate"], tmp_path)
    assert result.returncode == 1
    assert "max_bytes" in result.stderr and "Traceback" not in result.stderr


def test_json_errors_are_json(tmp_path: Path) -> None:
    (tmp_path / "rindle.toml").write_text("database_url = \n", encoding="utf-8")
    result = run(["--json", "migrate"], tmp_path)
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"] == "config_error"


def test_every_command_has_help() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--help"]).exit_code == 0
    for name in cli.commands:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Usage:" in result.output


def test_unknown_command_and_option_are_usage_errors() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["no-such-verb"]).exit_code == 2
    assert runner.invoke(cli, ["migrate", "--bogus"]).exit_code == 2
