"""Every Day-2 verb from the command line: text, --json, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rindle.cli import cli
from tests.ops.conftest import CONFTEST_PROFILES


@pytest.fixture
def invoke(db_url: str, tmp_path: Path, opsapp: Any) -> Callable[..., Any]:
    media = opsapp.storage().root
    config = tmp_path / "rindle.toml"
    config.write_text(f'database_url = "{db_url}"\nsecret_key = "{"k" * 40}"\n'
                      f'profiles = [{CONFTEST_PROFILES}]\n'
                      f'tmp_dir = "{tmp_path / "tmp"}"\n'
                      f'[storages.default]\nbackend = "local"\nroot = "{media}"\n')

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["--config", str(config), *args])

    return run


VERBS = [
    ["doctor"], ["runtime-status"], ["regenerate-variants"], ["verify-storage"],
    ["abort-incomplete-uploads"], ["cleanup-orphans"], ["sweep-orphaned-temp-files"],
    ["backfill-metadata"],
]


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: v[0])
def test_every_verb_prints_text_and_json(invoke: Callable[..., Any], verb: list[str]) -> None:
    text = invoke(*verb)
    assert text.exit_code == 0, text.output
    assert text.output.strip()
    as_json = invoke("--json", *verb)
    assert as_json.exit_code == 0
    assert isinstance(json.loads(as_json.output), dict)
    after = invoke(*verb, "--json")  # --json after the verb works too
    assert json.loads(after.output) == json.loads(as_json.output) or verb[0] in (
        "doctor", "runtime-status", "sweep-orphaned-temp-files")


@pytest.mark.parametrize("args", [
    ["runtime-status", "--limit", "abc"],
    ["runtime-status", "--limit", "0"],
    ["verify-storage", "--bogus"],
    ["cleanup-orphans", "--live", "extra"],
    ["sweep-orphaned-temp-files", "--threshold-sec", "-5"],
    ["regenerate-variants", "--profile", "nope"],
    ["requeue", "not-a-uuid-but-fine", "--variant"],
])
def test_usage_errors_exit_2(invoke: Callable[..., Any], args: list[str]) -> None:
    assert invoke(*args).exit_code == 2


def test_missing_objects_are_not_infrastructure_errors(
        invoke: Callable[..., Any], seed: Callable[..., Any], opsapp: Any) -> None:
    seed(1)
    root = opsapp.storage().root
    # the asset's folder is gone (replaced by a file): its objects are missing, not errors
    folder = next(p for p in root.rglob("*") if p.is_dir() and len(p.name) == 36)
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()
    folder.write_text("not a folder")
    result = invoke("--json", "verify-storage")
    data = json.loads(result.output)
    assert result.exit_code == 0 and data["errors"] == 0
    assert (data["checked"], data["missing"]) == (2, 2)


def test_cleanup_live_and_erase_owners(invoke: Callable[..., Any], tmp_path: Path,
                                       seed: Callable[..., Any], opsapp: Any) -> None:
    [asset] = seed(1)
    opsapp.attach(asset.id, ("user", 5), "avatar")
    owners = tmp_path / "owners.csv"
    owners.write_text("# type,id\nuser,5\n")
    preview = invoke("--json", "erase-owners", "--owners-file", str(owners))
    assert preview.exit_code == 0 and json.loads(preview.output)["mode"] == "preview"
    done = invoke("erase-owners", "--owners-file", str(owners), "--execute")
    assert done.exit_code == 0 and "purge_enqueued  1" in done.output
    bad = tmp_path / "bad.csv"
    bad.write_text("just-one-column\n")
    assert invoke("erase-owners", "--owners-file", str(bad)).exit_code == 2
    live = invoke("--json", "cleanup-orphans", "--live")
    assert live.exit_code == 0 and json.loads(live.output)["dry_run"] is False


def test_doctor_exit_1_on_error(tmp_path: Path) -> None:
    config = tmp_path / "rindle.toml"
    config.write_text('database_url = "postgresql://u:pw@127.0.0.1:1/x"\nsecret_key = "s"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "doctor"])
    assert result.exit_code == 1
    assert "ERROR  database" in result.output and "pw@" not in result.output
