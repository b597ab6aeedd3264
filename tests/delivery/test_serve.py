"""``rindle serve``: a real process serving signed URLs, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from rindle import Rindle
from rindle.cli import cli
from rindle.cli.serve import serve_command
from rindle.domain.models import Asset

SERVE = "from rindle.cli.serve import serve_command; serve_command()"


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "rindle.toml"
    path.write_text(
        f'database_url = "sqlite:///{tmp_path / "x.db"}"\n'
        'secret_key = "serve-secret"\n'
        "[storages.default]\n"
        'backend = "local"\n'
        f'root = "{tmp_path / "media"}"\n',
        encoding="utf-8")
    return path


def test_serve_answers_signed_urls_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    config = _config(tmp_path)
    app = Rindle.from_config(config, load_entrypoints=False)
    app.migrate()
    app.storage().put("a/b/hello.txt", io.BytesIO(b"hello over http"))
    with app.db.transaction() as s:  # only keys a promoted asset names are served
        s.add(Asset(state="ready", storage_key="a/b/hello.txt", profile="p",
                    content_type="text/plain"))
    env = {**os.environ, "RINDLE_CONFIG": str(config), "RINDLE_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "--port", "0"], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        match = re.search(r"serving on (http://127\.0\.0\.1:\d+)", first)
        assert match, first
        path = app.storage().url("a/b/hello.txt", expires_in=60).split("8765", 1)[1]
        with urllib.request.urlopen(match.group(1) + path, timeout=30) as resp:
            assert resp.status == 200 and resp.read() == b"hello over http"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(match.group(1) + path.split("?")[0], timeout=30)
        assert info.value.code == 403
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "stopped" in err and "Traceback" not in err
    app.close()


def test_serve_reports_a_busy_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINDLE_CONFIG", str(_config(tmp_path)))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(serve_command, ["--port", str(port)])
        as_json = CliRunner().invoke(cli, ["--json", "serve", "--port", str(port)])
    message = (f"cannot listen on 127.0.0.1:{port}: the address is already in use by another "
               f"process; pick another --port (0 picks any free one) or stop the process "
               f"holding {port}")
    assert result.exit_code == 1  # an environment error, like an unreachable database
    assert result.stderr == f"Error: {message} [address_in_use]\n"
    assert as_json.exit_code == 1 and "Traceback" not in as_json.output
    assert json.loads(as_json.stdout) == {"error": {"code": "address_in_use",
                                                    "message": message}}
