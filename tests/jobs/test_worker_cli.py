"""`rindle worker` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from rindle.cli import cli


def config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "rindle.toml"
    path.write_text(f'database_url = "{db_url}"\nsecret_key = "s"\n'
                    f'[storages.default]\nbackend = "local"\nroot = "{tmp_path / "m"}"\n')
    return path


def test_worker_drain_reports_json(db_url: str, tmp_path: Path) -> None:
    from rindle import Rindle

    app = Rindle(database_url=db_url, secret_key="s", load_entrypoints=False)
    for _ in range(3):
        app.jobs.enqueue_now("rindle.noop", {})
    app.close()
    result = CliRunner().invoke(cli, ["--config", str(config(tmp_path, db_url)), "--json",
                                      "worker", "--drain"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"ran": 3}


def test_bad_queue_syntax_is_a_usage_error(tmp_path: Path) -> None:
    runner = CliRunner()
    for bad in ["process=zero", "process=0", "=3"]:
        result = runner.invoke(cli, ["worker", "--queue", bad, "--drain"])
        assert result.exit_code == 2, (bad, result.output)
