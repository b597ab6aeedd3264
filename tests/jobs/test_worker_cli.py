"""`rindle worker` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rindle import Rindle
from rindle.cli import cli


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "rindle.toml"
    path.write_text(f'database_url = "{db_url}"\nsecret_key = "s"\n'
                    f'[storages.default]\nbackend = "local"\nroot = "{tmp_path / "m"}"\n')
    return path


def enqueue_noops(db_url: str, n: int) -> None:
    app = Rindle(database_url=db_url, secret_key="s", load_entrypoints=False)
    for _ in range(n):
        app.jobs.enqueue_now("rindle.noop", {})
    app.close()


def test_worker_drain_reports_json(db_url: str, config: Path) -> None:
    enqueue_noops(db_url, 3)
    result = CliRunner().invoke(cli, ["--config", str(config), "--json", "worker", "--drain"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"ran": 3}


def test_worker_drain_only_the_chosen_queues(db_url: str, config: Path) -> None:
    enqueue_noops(db_url, 2)  # rindle.noop runs on the maintenance queue
    runner = CliRunner()
    other = runner.invoke(cli, ["--config", str(config), "worker", "--drain",
                                "--queue", "process=2"])
    assert (other.exit_code, other.output.strip()) == (0, "ran 0 job(s)")
    mine = runner.invoke(cli, ["--config", str(config), "worker", "--drain", "--queue",
                               "maintenance"])
    assert (mine.exit_code, mine.output.strip()) == (0, "ran 2 job(s)")


def test_bad_queue_syntax_is_a_usage_error() -> None:
    runner = CliRunner()
    for bad in ["process=zero", "process=0", "=3", "process=-1"]:
        result = runner.invoke(cli, ["worker", "--queue", bad, "--drain"])
        assert result.exit_code == 2, (bad, result.output)
        assert "--queue" in result.output


def test_unknown_queue_is_a_usage_error(config: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(config), "worker", "--queue",
                                      "proces=4", "--drain"])
    assert result.exit_code == 2, result.output
    assert "unknown queue(s) proces" in result.output and "process" in result.output
