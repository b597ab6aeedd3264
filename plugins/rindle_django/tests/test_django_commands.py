"""``manage.py rindle <verb>``: rindle's verbs, flags, JSON and exit codes, in process
(``call_command``) and as a real ``manage.py`` child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from djgallery.models import Photo
from rindle_django.fields import Upload

from rindle import Rindle

HERE = Path(__file__).resolve().parent
MISSING = "00000000-0000-0000-0000-000000000000"


def _exit_code(*args: str) -> int:
    try:
        call_command("rindle", *args)
    except CommandError as exc:
        return exc.returncode
    return 0


@pytest.mark.django_db
def test_show_and_worker_drain_on_the_project_app(
        rindle_app: Rindle, make_image: Callable[..., bytes],
        capsys: pytest.CaptureFixture[str]) -> None:
    photo = Photo.objects.create(title="cmd", image=Upload(make_image(), "cmd.png"))
    assert photo.image is not None
    assert _exit_code("worker", "--drain", "--json") == 0
    drained = json.loads(capsys.readouterr().out)
    assert drained == {"ran": 2}  # promotion, then the thumb variant
    assert _exit_code("--json", "show", str(photo.image.asset_id)) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["id"], shown["state"], shown["filename"]) == (
        str(photo.image.asset_id), "ready", "cmd.png")
    assert _exit_code("show", str(photo.image.asset_id), "--json") == 0  # flag after the verb
    assert json.loads(capsys.readouterr().out)["id"] == str(photo.image.asset_id)


@pytest.mark.django_db
def test_exit_codes_usage_2_not_found_1(rindle_app: Rindle,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code("--json", "show", MISSING) == 1
    out = capsys.readouterr()
    assert json.loads(out.out) == {"error": {
        "code": "not_found", "message": f"asset {MISSING} not found"}}
    assert _exit_code("doctor", "--no-such-flag") == 2
    assert "No such option '--no-such-flag'" in capsys.readouterr().err
    assert _exit_code("no-such-verb") == 2
    assert _exit_code("--config", "rindle.toml", "doctor") == 2
    assert "takes its settings from settings.RINDLE" in capsys.readouterr().err
    assert _exit_code("--json", "--config", "rindle.toml", "doctor") == 2
    assert json.loads(capsys.readouterr().out)["error"] == {
        "code": "usage_error", "message": "manage.py rindle takes its settings from "
        "settings.RINDLE; remove --config"}
    for init in (["init"], ["--json", "init", "--force"], ["init", "--json"]):
        assert _exit_code(*init) == 2
        out = capsys.readouterr()
        assert out.err.startswith("Error: manage.py rindle init would write a rindle.toml "
                                  "this project never reads: its settings are the RINDLE dict")
        if "--json" in init:
            assert json.loads(out.out)["error"]["code"] == "usage_error"
        else:
            assert out.out == ""
    assert not Path("rindle.toml").exists()
    assert _exit_code("--json", "no-such-verb") == 2  # click's own usage error, as JSON
    assert json.loads(capsys.readouterr().out) == {"error": {
        "code": "usage_error", "message": "No such command 'no-such-verb'."}}
    assert _exit_code("cleanup-orphans", "--json") == 0  # a dry run
    assert json.loads(capsys.readouterr().out)["dry_run"] is True
    assert _exit_code("reorder", "user:1", "photos", "--json") == 0  # an empty collection
    assert json.loads(capsys.readouterr().out) == {
        "owner_type": "user", "owner_id": "1", "slot": "photos", "assets": []}
    assert _exit_code("reorder", "user:1", "photos", MISSING, "--json") == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "not_a_permutation"


def test_manage_py_child_process_exit_codes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(RINDLE_DJANGO_TEST_SQLITE=str(tmp_path / "cli.sqlite3"),
               RINDLE_DJANGO_TEST_MEDIA=str(tmp_path / "media"),
               RINDLE_DISABLE_PLUGIN_AUTOLOAD="1")

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(HERE / "manage.py"), "rindle", *args],
                              env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)

    migrated = manage("--json", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout)["to"] is not None
    missing = manage("--json", "show", MISSING)
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["error"]["code"] == "not_found"
    assert missing.stderr.strip() == f"Error: asset {MISSING} not found [not_found]"
    usage = manage("doctor", "--no-such-flag")
    assert usage.returncode == 2
    assert "CommandError" not in usage.stderr  # rindle's own message only


def test_startup_builds_no_app_and_touches_no_database(tmp_path: Path) -> None:
    """``django.setup()`` (AppConfig.ready) neither builds the app nor connects: the
    database here is in a folder that does not exist, so any connection would fail."""
    env = {k: v for k, v in os.environ.items() if k != "RINDLE_DJANGO_TEST_DATABASE"}
    env.update(DJANGO_SETTINGS_MODULE="djproject.settings", RINDLE_DISABLE_PLUGIN_AUTOLOAD="1",
               RINDLE_DJANGO_TEST_SQLITE=str(tmp_path / "missing" / "db.sqlite3"),
               RINDLE_DJANGO_TEST_MEDIA=str(tmp_path / "media"),
               PYTHONPATH=str(HERE))
    script = ("import django; django.setup()\n"
              "from django.db import connections\n"
              "from rindle_django import conf\n"
              "assert conf._app is None, 'app built at startup'\n"
              "assert connections['default'].connection is None, 'connected at startup'\n"
              "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stderr
