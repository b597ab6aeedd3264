"""The machinery that runs the docs' code blocks (tests/docs_harness.py) does what it says."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests.docs_harness import (
    DocRun,
    command_lines,
    doc_files,
    is_long_running,
    never_run_reason,
)

ROOT = Path(__file__).resolve().parents[1]


def test_every_readme_and_guide_is_a_doc_file() -> None:
    files = doc_files()
    assert "README.md" in files and "guides/security.md" in files
    assert {f"guides/{p.name}" for p in (ROOT / "guides").glob("*.md")} <= set(files)
    assert {p.relative_to(ROOT).as_posix() for p in ROOT.glob("plugins/*/README.md")} \
        <= set(files)


def test_command_lines_join_continuations_and_drop_comments() -> None:
    source = "# a comment\nrindle doctor   # checks\n\nrindle worker \\\n  --drain\n"
    assert command_lines(source) == ["rindle doctor   # checks", "rindle worker    --drain"]
    console = "$ rindle migrate\nDatabase ...: empty -> 0003\n$ rindle doctor\n"
    assert command_lines(console, console=True) == ["rindle migrate", "rindle doctor"]


@pytest.mark.parametrize("line", ["pip install rindle", "python -m pip install x",
                                  "make test", "apt-get install ffmpeg", "sudo rindle serve"])
def test_installers_are_never_run(line: str) -> None:
    assert never_run_reason(shlex.split(line)) is not None


@pytest.mark.parametrize(("line", "long"), [("rindle worker", True),
                                            ("rindle worker --drain", False),
                                            ("rindle --json worker --queue process=2", True),
                                            ("rindle serve --port 0", True),
                                            ("rindle doctor", False), ("ls", False)])
def test_long_running_commands(line: str, long: bool) -> None:
    assert is_long_running(shlex.split(line)) is long


def test_a_failing_command_fails_with_its_output(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    doc = DocRun()
    assert doc.sh("echo hello") == "hello\n"
    with pytest.raises(AssertionError, match=r"(?s)exit 3.*to stdout.*to stderr"):
        doc.sh("echo to stdout; echo to stderr >&2; exit 3")
    with pytest.raises(AssertionError, match="still running after 1 s"):
        doc.sh("sleep 30", timeout=1)


def test_shell_blocks_see_the_venv_and_no_outside_rindle_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RINDLE_DATABASE_URL", "postgresql://elsewhere/db")
    doc = DocRun()
    assert doc.sh("command -v rindle").strip().endswith("/rindle")
    assert doc.sh("echo ${RINDLE_DATABASE_URL:-unset}") == "unset\n"
    assert doc.sh("echo $RINDLE_DISABLE_PLUGIN_AUTOLOAD") == "1\n"


def test_a_long_running_command_that_exits_early_fails(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError, match="should run until stopped"):
        DocRun().run_long("rindle worker")  # no database here: it exits at once
