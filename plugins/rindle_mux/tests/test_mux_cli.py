"""``rindle streaming ...`` through click, with rindle-mux loaded from its entry point."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from muxkit import ASSET_ID, FakeMux, KeyPair, add_row, fixture, mux_settings

from rindle import Rindle
from rindle.cli import cli


def _toml(value: object) -> str:
    return json.dumps(value)  # JSON strings, numbers and lists are valid TOML values


@pytest.fixture
def config(db_url: str, tmp_path: Path, mux: FakeMux, keypair: KeyPair,
           monkeypatch: pytest.MonkeyPatch) -> Path:
    table = mux_settings(mux, keypair)["mux"]
    lines = [f"database_url = {_toml(db_url)}", 'secret_key = "cli-test-secret"',
             'profiles = ["muxkit:Clip"]', "", "[storages.default]", 'backend = "local"',
             f"root = {_toml(str(tmp_path / 'media'))}", "", "[streaming.mux]"]
    lines += [f"{k} = {_toml(v)}" for k, v in table.items()]
    path = tmp_path / "rindle.toml"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("RINDLE_DISABLE_PLUGIN_AUTOLOAD", "0")
    monkeypatch.setenv("RINDLE_LOAD_PLUGINS", "mux")
    return path


def test_sync_due_sync_and_providers(config: Path, mux: FakeMux) -> None:
    app = Rindle.from_config(config)
    try:
        row = add_row(app, state="processing", age=dt.timedelta(seconds=90))
    finally:
        app.close()
    mux.assets[ASSET_ID] = fixture("asset_get_ready")
    runner = CliRunner()
    due = runner.invoke(cli, ["--config", str(config), "--json", "streaming", "sync-due"])
    assert due.exit_code == 0, due.output
    assert json.loads(due.output)["jobs_enqueued"] == 1
    one = runner.invoke(cli, ["--config", str(config), "streaming", "sync", str(row.id)])
    assert one.exit_code == 0, one.output
    assert "outcome    resolved" in one.output and "ready" in one.output
    listed = runner.invoke(cli, ["--config", str(config), "--json", "streaming", "providers"])
    assert json.loads(listed.output)["providers"]["mux"]["profiles"] == ["clip"]
    assert ASSET_ID not in due.output + one.output + listed.output
