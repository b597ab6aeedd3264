"""Every numeric option of every command is a bounded range: out of range is click's usage
error (exit 2), never an ``OverflowError`` traceback.

The options are found by walking the click tree (core commands plus whatever installed
plugins register), so a numeric option added later is covered without editing this file,
and one added without bounds fails :func:`test_every_numeric_parameter_is_bounded`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from rindle import Rindle
from rindle.cli import _limits, cli
from rindle.plugins import make_plugin_manager

HUGE = "99999999999999999999"
MAX_DURATION = _limits.MAX_DURATION_SEC


def full_tree() -> click.Group:
    """The root group with every installed plugin's commands, built without touching the
    real ``cli`` (plugins add commands to whatever group they are given)."""
    group = click.Group("rindle", commands=dict(cli.commands), params=list(cli.params))
    make_plugin_manager(load_entrypoints=True).hook.register_commands(cli=group)
    return group


def walk(group: click.Group, path: tuple[str, ...] = ()
         ) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = [(path, group)]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += walk(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


def numeric(param: click.Parameter) -> bool:
    return isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType))


TREE = walk(full_tree())
NUMERIC = [(path, command, param) for path, command in TREE for param in command.params
           if numeric(param)]
OPTIONS = [(path, command, param) for path, command, param in NUMERIC
           if isinstance(param, click.Option)]


def case_id(case: tuple[tuple[str, ...], click.Command, click.Parameter]) -> str:
    path, _, param = case
    return " ".join(path) + ":" + (param.opts[0] if param.opts else str(param.name))


def invocation(path: tuple[str, ...], command: click.Command, option: click.Option,
               value: str, tmp_path: Path) -> list[str]:
    """``rindle PATH OPTION=VALUE`` plus placeholders for required arguments and options."""
    args = [*path, f"{option.opts[0]}={value}"]
    placeholder = tmp_path / "placeholder.txt"
    placeholder.write_text("user,1\n")
    for param in command.params:
        if param is option or not param.required:
            continue
        filler = str(placeholder) if isinstance(param.type, click.Path) else "x"
        args += [filler] if isinstance(param, click.Argument) else [param.opts[0], filler]
    return args


def usage_error_for(result: Result, option: click.Option) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"Invalid value for '{option.opts[0]}'" in result.stderr


def test_the_walk_finds_the_known_numeric_options() -> None:
    names = {case_id(c) for c in OPTIONS}
    assert {"url:--expires-in", "runtime-status:--older-than", "runtime-status:--limit",
            "runtime-status:--provider-stuck", "sweep-orphaned-temp-files:--threshold",
            "verify-storage:--concurrency", "serve:--port", "erase-owners:--max-lines",
            "erase-owners:--max-owners"} <= names


@pytest.mark.parametrize("case", NUMERIC, ids=case_id)
def test_every_numeric_parameter_is_bounded(
        case: tuple[tuple[str, ...], click.Command, click.Parameter]) -> None:
    _, _, param = case
    assert isinstance(param.type, (click.IntRange, click.FloatRange))
    assert param.type.min is not None and param.type.max is not None
    if isinstance(param.type, click.IntRange):
        assert param.type.max <= 10 ** 12  # nothing downstream overflows at this size


@pytest.mark.parametrize("case", OPTIONS, ids=case_id)
@pytest.mark.parametrize("value", [HUGE, "-" + HUGE, "-1"])
def test_out_of_range_values_are_usage_errors(
        case: tuple[tuple[str, ...], click.Command, click.Option], value: str,
        tmp_path: Path) -> None:
    path, command, option = case
    assert isinstance(option.type, click.IntRange | click.FloatRange)
    if value == "-1" and option.type.min is not None and option.type.min <= -1:
        pytest.skip("a negative value is valid here")
    result = CliRunner().invoke(cli, invocation(path, command, option, value, tmp_path))
    usage_error_for(result, option)


@pytest.mark.parametrize("case", OPTIONS, ids=case_id)
def test_one_past_the_maximum_is_a_usage_error(
        case: tuple[tuple[str, ...], click.Command, click.Option], tmp_path: Path) -> None:
    path, command, option = case
    assert isinstance(option.type, click.IntRange | click.FloatRange)
    assert option.type.max is not None
    value = str(option.type.max + 1)
    result = CliRunner().invoke(cli, invocation(path, command, option, value, tmp_path))
    usage_error_for(result, option)
    assert f"{value} is not in the range" in result.stderr


@pytest.mark.parametrize("value", ["process=" + HUGE, "process=257", "process=0",
                                   "process=-1", "process=²", "process=1.5", "process="])
def test_worker_queue_concurrency_is_bounded(value: str) -> None:
    result = CliRunner().invoke(cli, ["worker", "--queue", value])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--queue': {value!r}: concurrency must be a whole number "
        "from 1 to 256")


# --- the duration options at their maximum (both dialects) -----------------------------------

PROFILE = '''
from rindle import Delivery, Profile

class Doc(Profile):
    name = "doc"
    allow_mime = ("image/png",)
    delivery = Delivery(public=False, signed_url_ttl=60)
'''


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Path:
    module = f"secrange_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{module}.py").write_text(PROFILE)
    path = tmp_path / "rindle.toml"
    path.write_text(f"database_url = {json.dumps(db_url)}\n"
                    f'secret_key = "{"k" * 40}"\n'
                    f'profiles = ["{module}:Doc"]\n'
                    f"tmp_dir = {json.dumps(str(tmp_path / 'tmp'))}\n"
                    "[storages.default]\nbackend = \"local\"\n"
                    f"root = {json.dumps(str(tmp_path / 'media'))}\n", encoding="utf-8")
    return path


OLDER_THAN = "'--older-than' / '--older-than-sec'"
THRESHOLD = "'--threshold' / '--threshold-sec'"
DURATIONS = [  # (verb, spelling, how click names the option)
    ("runtime-status", "--older-than", OLDER_THAN),
    ("runtime-status", "--older-than-sec", OLDER_THAN),
    ("runtime-status", "--provider-stuck", "'--provider-stuck'"),
    ("sweep-orphaned-temp-files", "--threshold", THRESHOLD),
    ("sweep-orphaned-temp-files", "--threshold-sec", THRESHOLD),
]


@pytest.mark.parametrize(("verb", "option", "hint"), DURATIONS)
def test_duration_maximum_passes_and_one_more_fails(config: Path, verb: str,
                                                    option: str, hint: str) -> None:
    runner = CliRunner()
    at_max = runner.invoke(cli, ["--config", str(config), verb, option, str(MAX_DURATION)])
    assert at_max.exit_code == 0, at_max.output
    in_days = runner.invoke(cli, ["--config", str(config), verb, option,
                                  f"{MAX_DURATION // 86400}d"])
    assert in_days.exit_code == 0, in_days.output
    past = runner.invoke(cli, ["--config", str(config), verb, option, str(MAX_DURATION + 1)])
    assert past.exit_code == 2
    assert past.stderr.splitlines()[-1] == (
        f"Error: Invalid value for {hint}: {MAX_DURATION + 1} is not in the range "
        f"0<=x<={MAX_DURATION}.")


def test_url_expires_in_maximum_passes_and_one_more_fails(config: Path, tmp_path: Path) -> None:
    image = tmp_path / "pixel.png"
    Image.new("RGB", (2, 2), "red").save(image)
    app = Rindle.from_config(config, load_entrypoints=False)
    try:
        asset = app.upload("doc", image)
        app.jobs.drain()
        assert app.get_asset(asset.id).state in ("available", "ready")
    finally:
        app.close()
    runner = CliRunner()
    at_max = runner.invoke(cli, ["--config", str(config), "url", str(asset.id),
                                 "--expires-in", str(MAX_DURATION)])
    assert at_max.exit_code == 0, at_max.output
    assert re.fullmatch(r"http://127\.0\.0\.1:8765/media/\S+\?token=\S+\n", at_max.stdout)
    past = runner.invoke(cli, ["--config", str(config), "url", str(asset.id),
                               "--expires-in", str(MAX_DURATION + 1)])
    assert past.exit_code == 2
    assert past.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--expires-in': {MAX_DURATION + 1} is not in the range "
        f"1<=x<={MAX_DURATION}.")
