"""What a newcomer mistypes at the command line: with ``--json`` every error is one JSON
object on stdout (click's own usage errors too) and a non-zero exit; a database that cannot
be reached names the fix without its password; a folder without a settings file says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rindle.cli import cli
from rindle.testing.servers import free_port

ASSET_ID = "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"
NO_CONFIG_NOTE = "Note: no rindle.toml (or [tool.rindle] in pyproject.toml) in "


def invoke(args: list[str], cwd: Path, **env: str) -> Result:
    """Run ``rindle ARGS`` in ``cwd`` as a user would (no inherited RINDLE_* settings)."""
    runner = CliRunner()
    clean = {"RINDLE_CONFIG": None, "RINDLE_DATABASE_URL": None, "RINDLE_SECRET_KEY": None,
             "RINDLE_DISABLE_PLUGIN_AUTOLOAD": "1", **env}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        return runner.invoke(cli, args, env=clean)


USAGE_ERRORS = [
    (["--json", "show"], "Missing argument 'ASSET_ID'."),
    (["show", "--json"], "Missing argument 'ASSET_ID'."),
    (["--json", "doctor", "--bogus"], "No such option '--bogus'."),
    (["doctor", "--bogus", "--json"], "No such option '--bogus'."),
    (["--json", "nosuchverb"], "No such command 'nosuchverb'."),
    (["--json", "url", ASSET_ID, "--expires-in", "zz"],
     "Invalid value for '--expires-in': 'zz' is not a duration: write seconds (90) or a "
     "whole number with a unit s, m, h or d (30s, 15m, 2h, 7d)"),
    (["--json", "url", ASSET_ID, "--expires-in", "3153600001"],
     "Invalid value for '--expires-in': 3153600001 is not in the range 1<=x<=3153600000."),
]


@pytest.mark.parametrize(("args", "message"), USAGE_ERRORS, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else "")
def test_click_usage_errors_are_json_with_json(tmp_path: Path, args: list[str],
                                               message: str) -> None:
    result = invoke(args, tmp_path)
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"error": {"code": "usage_error", "message": message}}
    assert f"Error: {message}" in result.stderr  # click's own report stays on stderr


def test_upload_without_profile_is_missing_option_not_unknown_profile_none(
        tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8\xff")
    result = invoke(["--json", "upload", "x.jpg"], tmp_path)
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"error": {"code": "usage_error",
                                                    "message": "Missing option '--profile'."}}
    assert "'None'" not in result.stderr


def test_without_json_a_usage_error_prints_nothing_on_stdout(tmp_path: Path) -> None:
    result = invoke(["show"], tmp_path)
    assert (result.exit_code, result.stdout) == (2, "")
    assert "Missing argument 'ASSET_ID'." in result.stderr


def test_a_json_looking_argument_after_double_dash_is_an_argument(tmp_path: Path) -> None:
    result = invoke(["url", "--", "--json", "extra"], tmp_path)
    assert (result.exit_code, result.stdout) == (2, "")  # usage error, text only
    assert "Got unexpected extra argument (extra)" in result.stderr


def test_init_twice_is_a_usage_error_saying_what_to_pass(tmp_path: Path) -> None:
    assert invoke(["init"], tmp_path).exit_code == 0
    message = ("rindle.toml already exists; pass --force to overwrite it, or --dir to write "
               "somewhere else")
    for args in (["--json", "init"], ["init", "--json"]):
        result = invoke(args, tmp_path)
        assert result.exit_code == 2
        assert json.loads(result.stdout) == {"error": {"code": "config_exists",
                                                        "message": message}}
    text = invoke(["init"], tmp_path)
    assert (text.exit_code, text.stdout, text.stderr) == (2, "", f"Error: {message} "
                                                                 "[config_exists]\n")
    assert invoke(["init", "--force"], tmp_path).exit_code == 0


def test_an_unreachable_database_names_the_fix_never_the_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    (tmp_path / "rindle.toml").write_text(
        f'database_url = "postgresql://bob:S3cretPassw0rd@127.0.0.1:{port}/db"\n'
        'secret_key = "k"\n', encoding="utf-8")
    for verb in (["show", ASSET_ID], ["url", ASSET_ID], ["detach", "user:1", "avatar"]):
        result = invoke(["--json", *verb], tmp_path)
        assert result.exit_code == 1, result.output
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "database_unavailable", error
        assert error["message"].startswith(
            f"cannot connect to database postgresql+psycopg://bob:***@127.0.0.1:{port}/db: ")
        assert error["message"].endswith(
            "Fix database_url in rindle.toml (or RINDLE_DATABASE_URL) and check the server "
            "is running.")
        assert "S3cret" not in result.stdout and "S3cret" not in result.stderr
        assert "Traceback" not in result.stderr


def test_a_folder_without_settings_says_so_once_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8\xff")
    result = invoke(["--json", "upload", "--profile", "photo", "x.jpg"], tmp_path)
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "unknown_profile"  # stdout stays JSON
    assert result.stderr.count(NO_CONFIG_NOTE) == 1
    assert f"{NO_CONFIG_NOTE}{tmp_path.resolve()}: using the built-in defaults" in (
        result.stderr.replace("\n", " "))
    assert "Run `rindle init`" in result.stderr
    assert not (tmp_path / "rindle.db").exists()


def test_no_note_with_a_settings_file_or_a_database_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    quiet = invoke(["--json", "show", ASSET_ID], tmp_path, RINDLE_DATABASE_URL=url)
    assert quiet.exit_code == 1 and NO_CONFIG_NOTE not in quiet.stderr
    assert json.loads(quiet.stdout)["error"]["code"] == "database_missing"
    assert invoke(["init"], tmp_path).exit_code == 0
    configured = invoke(["show", ASSET_ID], tmp_path)
    assert configured.exit_code == 1 and NO_CONFIG_NOTE not in configured.stderr
    assert "[database_missing]" in configured.stderr


def test_init_in_another_folder_names_the_next_command_that_finds_it(tmp_path: Path) -> None:
    result = invoke(["--json", "init", "--dir", "proj"], tmp_path)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"config": "proj/rindle.toml",
                                         "profiles": "proj/rindle_profiles.py",
                                         "next": "rindle --config proj/rindle.toml migrate"}
    migrated = invoke(["--json", "--config", "proj/rindle.toml", "migrate"], tmp_path)
    assert migrated.exit_code == 0 and json.loads(migrated.stdout)["to"] == "0005"
    text = invoke(["init", "--dir", str(tmp_path / "proj"), "--force"], tmp_path / "proj")
    assert text.stdout.endswith("\nNext: rindle migrate\n")


def test_config_naming_a_folder_says_to_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    result = invoke(["--json", "--config", "proj", "doctor"], tmp_path)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"error": {
        "code": "config_error",
        "message": "config file proj is a folder; name the file in it, e.g. --config "
                   "proj/rindle.toml"}}


def test_worker_help_still_lists_each_queues_default(tmp_path: Path) -> None:
    # read when the help is shown (rindle.cli no longer imports rindle.jobs.worker)
    result = invoke(["worker", "--help"], tmp_path)
    assert result.exit_code == 0
    assert ("its default, promote=2, process=2, purge=1, maintenance=1, provider=16). "
            "Default: every queue.") in " ".join(result.stdout.split())


@pytest.mark.parametrize(("appended", "table"), [
    ('profiles = ["rindle_profiles:Photo"]', "cron"),
    ('tmp_dir = "scratch"', "cron"),  # was read as a cron entry named tmp_dir
    ('[storages.media]\nbackend = "local"\nroot = "m"\nsecret_key = "k"', "storages.media"),
])
def test_a_top_level_setting_appended_below_a_table_is_named(tmp_path: Path, appended: str,
                                                             table: str) -> None:
    assert invoke(["init"], tmp_path).exit_code == 0
    config = tmp_path / "rindle.toml"
    assert "above the first [table] header" in config.read_text()  # the sample says so
    config.write_text(config.read_text() + appended + "\n", encoding="utf-8")
    key = appended.split("\n")[-1].split(" =")[0]
    result = invoke(["--json", "migrate"], tmp_path)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"error": {
        "code": "misplaced_setting",
        "message": f"{config.resolve()}: {key} is inside the [{table}] table: TOML reads every "
                   "line below a [table] header as part of that table. Move the "
                   f"{key} line above the file's first [table] header."}}
    assert not (tmp_path / "rindle.db").exists()


def test_tables_that_only_look_alike_still_load(tmp_path: Path) -> None:
    (tmp_path / "rindle.toml").write_text(
        'secret_key = "k"\n[cron]\nnightly = "0 1 * * *"\n'
        '[cron.weekly]\nschedule = "0 2 * * 0"\nprofile = "photo"\n', encoding="utf-8")
    result = invoke(["--json", "migrate"], tmp_path)
    assert result.exit_code == 0, result.output
