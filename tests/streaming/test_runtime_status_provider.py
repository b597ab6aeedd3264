"""runtime-status counts provider rows stuck past the threshold the per-row sync applies."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from click.testing import CliRunner

from rindle import Rindle
from rindle.cli import cli
from tests.streaming.conftest import add_row

HOUR = dt.timedelta(hours=1)


def test_stuck_uses_each_providers_configured_threshold(
        make_stream_app: Callable[..., Rindle]) -> None:
    app = make_stream_app(provider_stuck_threshold_seconds=600)
    add_row(app, state="processing", age=HOUR)             # past loop's 600 s
    add_row(app, state="uploading", age=dt.timedelta(seconds=300))  # not yet
    add_row(app, state="pending", age=3 * HOUR)            # not uploading/processing
    add_row(app, state="ready", age=3 * HOUR)
    add_row(app, state="processing", age=HOUR, provider_name="gone")   # default 7200 s
    add_row(app, state="processing", age=3 * HOUR, provider_name="gone")
    report = app.ops.runtime_status()
    assert report.provider_stuck == 2
    assert report.provider_stuck_threshold_sec == {"*": 7200, "loop": 600}
    assert "2 provider asset(s) uploading/processing past the stuck threshold " \
           "(any other 7200s, loop 600s)" in report.render()
    assert any("sync-due" in r for r in report.recommendations)


def test_an_explicit_threshold_applies_to_every_provider(
        make_stream_app: Callable[..., Rindle]) -> None:
    app = make_stream_app(provider_stuck_threshold_seconds=600)
    add_row(app, state="processing", age=HOUR)
    add_row(app, state="uploading", age=3 * HOUR, provider_name="gone")
    assert app.ops.runtime_status(provider_stuck=2 * HOUR.seconds).provider_stuck == 1
    assert app.ops.runtime_status(provider_stuck=60).provider_stuck == 2


def test_cli_provider_stuck_flag_and_json(make_stream_app: Callable[..., Rindle],
                                          monkeypatch: Any) -> None:
    app = make_stream_app()
    add_row(app, state="processing", age=3 * HOUR)
    monkeypatch.setattr("rindle.cli._context.CliContext.app", lambda self: app)
    runner = CliRunner()
    out = runner.invoke(cli, ["runtime-status", "--json", "--provider-stuck", "20000"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert body["provider_stuck"] == 0 and body["provider_stuck_threshold_sec"] == {"*": 20000}
    bad = runner.invoke(cli, ["runtime-status", "--provider-stuck", "soon"])
    assert bad.exit_code == 2 and "soon" in bad.output
