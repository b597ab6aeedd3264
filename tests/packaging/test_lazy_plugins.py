"""Plugin modules load lazily: ``rindle --help`` and commands that need no backend import
no plugin (nor boto3 or google-cloud-storage); ``rindle plugins`` still lists every one;
plugin commands still appear and run; ``RINDLE_DISABLE_PLUGIN_AUTOLOAD`` still works.

Every case runs the console entry point (``rindle.cli.main``) in a fresh interpreter and
reports which modules it imported. No wall-time assertions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

PLUGIN_NAMES = {"s3", "gcs", "mux", "ffmpeg"}
HEAVY = ("rindle_s3", "rindle_gcs", "rindle_mux", "rindle_ffmpeg", "rindle_celery",
         "rindle_fakecmd.plugin", "boto3", "botocore", "google.cloud", "httpx", "pymediainfo",
         "celery", "kombu")

PROBE = """
import json, sys
from rindle.cli import main
args, watched, report = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
sys.argv = ["rindle", *args]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules
               if any(m == h or m.startswith(h + ".") for h in watched))
with open(report, "w") as f:
    json.dump({"code": code, "heavy": heavy,
               "cli_module": "rindle_fakecmd.cli" in sys.modules}, f)
"""


def run_cli(args: list[str], tmp_path: Path, *, pythonpath: Path | None = None,
            watched: tuple[str, ...] = HEAVY, **env_extra: str) -> dict[str, Any]:
    """``rindle ARGS`` via ``main()`` with plugin autoload on (unless ``env_extra`` says)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RINDLE_DISABLE_PLUGIN_AUTOLOAD", "RINDLE_LOAD_PLUGINS", "RINDLE_CONFIG",
                        "PYTHONPATH")}
    env.update(env_extra)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps(watched),
                           str(report)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(report.read_text())
    out["stdout"], out["stderr"] = proc.stdout, proc.stderr
    return out


def test_the_four_plugins_are_installed() -> None:
    """Without them the laziness tests below would prove nothing."""
    names = {ep.name for ep in metadata.entry_points(group="rindle")}
    assert names >= PLUGIN_NAMES, "run `make install`: every plugin is installed editable"


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--version"], ["init", "--help"],
                                  ["doctor", "--help"], ["init"]])
def test_commands_needing_no_backend_import_no_plugin(args: list[str], tmp_path: Path) -> None:
    out = run_cli(args, tmp_path)
    assert out["code"] == 0, out["stderr"]
    assert out["heavy"] == [], f"rindle {' '.join(args)} imported {out['heavy']}"
    if args == ["--help"]:
        assert "Commands:" in out["stdout"] and "doctor" in out["stdout"]


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["doctor", "--help"]])
def test_help_imports_neither_the_orm_nor_pillow(args: list[str], tmp_path: Path) -> None:
    """The rest of the --help speed budget: help text needs no SQLAlchemy, Alembic or
    Pillow (a CLI module importing one at top level, even through a package __init__,
    costs ~0.3 s on every invocation)."""
    out = run_cli(args, tmp_path, watched=("sqlalchemy", "alembic", "PIL", "rindle.app"))
    assert out["code"] == 0, out["stderr"]
    assert out["heavy"] == [], f"rindle {' '.join(args)} imported {out['heavy'][:5]}..."


def test_rindle_plugins_still_lists_every_plugin(tmp_path: Path) -> None:
    out = run_cli(["--json", "plugins"], tmp_path)
    assert out["code"] == 0, out["stderr"]
    listed = {p["name"] for p in json.loads(out["stdout"])["plugins"] if not p["default"]}
    assert listed >= PLUGIN_NAMES


def test_disable_autoload_still_lists_only_the_built_ins(tmp_path: Path) -> None:
    out = run_cli(["--json", "plugins"], tmp_path, RINDLE_DISABLE_PLUGIN_AUTOLOAD="1")
    plugins = json.loads(out["stdout"])["plugins"]
    assert plugins and all(p["default"] for p in plugins)
    assert out["heavy"] == []


@pytest.fixture
def fakecmd(tmp_path: Path) -> Path:
    """An installed plugin distribution with one declared and one hook-registered command.

    Its plugin module is what must stay unimported; the declared command lives in a
    separate light module, as guides/plugins.md asks.
    """
    root = tmp_path / "site"
    pkg = root / "rindle_fakecmd"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cli.py").write_text(textwrap.dedent('''
        import click

        @click.command("fake-declared")
        def hello():
            """Say hello from a declared plugin command."""
            click.echo("hello from the declared command")
    '''))
    (pkg / "plugin.py").write_text(textwrap.dedent('''
        import click
        from rindle import hookimpl

        @click.command("fake-hooked")
        def hooked():
            """A command added through register_commands."""
            click.echo("hello from the hooked command")

        @hookimpl
        def register_commands(cli):
            cli.add_command(hooked)
    '''))
    dist = root / "rindle_fakecmd-0.3.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rindle-fakecmd\nVersion: 0.3.0\n")
    (dist / "entry_points.txt").write_text(
        "[rindle]\nfakecmd = rindle_fakecmd.plugin\n\n"
        "[rindle.commands]\nfake-declared = rindle_fakecmd.cli:hello\n")
    return root


def test_declared_plugin_commands_appear_in_help_without_the_plugin(fakecmd: Path,
                                                                    tmp_path: Path) -> None:
    out = run_cli(["--help"], tmp_path, pythonpath=fakecmd)
    assert out["code"] == 0, out["stderr"]
    assert "fake-declared" in out["stdout"]
    assert "Say hello from a declared plugin command." in out["stdout"]
    assert out["cli_module"] is True and out["heavy"] == []
    ran = run_cli(["fake-declared"], tmp_path, pythonpath=fakecmd)
    assert ran["code"] == 0 and "hello from the declared command" in ran["stdout"]
    assert ran["heavy"] == []


def test_hook_registered_commands_load_the_plugins_when_typed(fakecmd: Path,
                                                              tmp_path: Path) -> None:
    out = run_cli(["fake-hooked"], tmp_path, pythonpath=fakecmd)
    assert out["code"] == 0, out["stderr"]
    assert "hello from the hooked command" in out["stdout"]
    assert "rindle_fakecmd.plugin" in out["heavy"]  # loaded because it was needed
    typo = run_cli(["no-such-command"], tmp_path, pythonpath=fakecmd)
    assert typo["code"] == 2 and "No such command 'no-such-command'" in typo["stderr"]


def test_disable_autoload_hides_plugin_commands(fakecmd: Path, tmp_path: Path) -> None:
    off = {"RINDLE_DISABLE_PLUGIN_AUTOLOAD": "1"}
    out = run_cli(["--help"], tmp_path, pythonpath=fakecmd, **off)
    assert "fake-declared" not in out["stdout"] and out["cli_module"] is False
    for name in ("fake-declared", "fake-hooked"):
        out = run_cli([name], tmp_path, pythonpath=fakecmd, **off)
        assert out["code"] == 2 and f"No such command '{name}'" in out["stderr"]
        assert out["heavy"] == []
    # the allowlist applies too: only s3 may load, so fakecmd's commands are hidden
    out = run_cli(["--help"], tmp_path, pythonpath=fakecmd, RINDLE_LOAD_PLUGINS="s3")
    assert "fake-declared" not in out["stdout"]
    out = run_cli(["--help"], tmp_path, pythonpath=fakecmd, RINDLE_LOAD_PLUGINS="fakecmd")
    assert "fake-declared" in out["stdout"]
