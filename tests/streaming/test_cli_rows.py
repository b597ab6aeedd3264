"""Provider rows from the command line: ``rindle show`` lists an asset's attachments and
provider rows, ``rindle streaming list`` lists rows with the ids ``rindle streaming sync``
takes, and syncing a row that does not exist is exit 1 ``not_found``. Provider asset ids
are redacted as telemetry redacts them. Both dialects.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from rindle import Rindle
from rindle.cli import cli
from rindle.domain.models import ProviderAsset
from rindle.telemetry import redact_id
from tests.streaming.conftest import add_row

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def app(make_stream_app: Callable[..., Rindle], monkeypatch: pytest.MonkeyPatch) -> Rindle:
    stream = make_stream_app()
    monkeypatch.setattr("rindle.cli._context.CliContext.app", lambda self: stream)
    return stream


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_show_lists_attachments_and_provider_rows(app: Rindle) -> None:
    row = add_row(app, state="processing")
    app.attach(row.asset_id, ("user", 7), "intro")
    app.attach(row.asset_id, ("team", "a"), "banner")
    body = json.loads(run("show", str(row.asset_id), "--json").stdout)
    assert body["attachments"] == [
        {"owner_type": "team", "owner_id": "a", "slot": "banner", "collection": False,
         "position": 0},
        {"owner_type": "user", "owner_id": "7", "slot": "intro", "collection": False,
         "position": 0}]
    assert body["attachments_total"] == 2
    [provider] = body["provider_assets"]
    assert {k: provider[k] for k in ("id", "asset_id", "profile", "provider", "state",
                                     "provider_asset_id")} == {
        "id": str(row.id), "asset_id": str(row.asset_id), "profile": "stream",
        "provider": "loop", "state": "processing",
        "provider_asset_id": redact_id(row.provider_asset_id)}
    text = run("show", str(row.asset_id))
    assert text.exit_code == 0, text.output
    assert "attached team:a/banner" in text.stdout and "attached user:7/intro" in text.stdout
    assert (f"stream   loop: processing (row {row.id}, provider id "
            f"{redact_id(row.provider_asset_id)})") in text.stdout
    for out in (text.stdout, json.dumps(body)):
        assert str(row.provider_asset_id) not in out


def test_show_without_links(app: Rindle) -> None:
    row = add_row(app, state="ready")
    with app.db.transaction() as s:
        s.delete(s.get(ProviderAsset, row.id))
    body = json.loads(run("show", str(row.asset_id), "--json").stdout)
    assert (body["attachments"], body["attachments_total"], body["provider_assets"]) == (
        [], 0, [])
    assert "attached nowhere" in run("show", str(row.asset_id)).stdout


def test_show_caps_the_attachment_list(app: Rindle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rindle.cli.assets.SHOW_ATTACHMENTS", 2)
    row = add_row(app)
    for n in range(3):
        app.attach(row.asset_id, ("user", n), "s")
    body = json.loads(run("show", str(row.asset_id), "--json").stdout)
    assert len(body["attachments"]) == 2 and body["attachments_total"] == 3
    assert "attached ... and 1 more" in run("show", str(row.asset_id)).stdout


def test_streaming_list_filters_and_limits(app: Rindle) -> None:
    stuck = add_row(app, state="processing", age=3 * HOUR)
    ready = add_row(app, state="ready", age=2 * HOUR)
    other = add_row(app, state="processing", age=HOUR, provider_name="gone")
    waiting = add_row(app, state="pending", provider_asset_id=None, age=HOUR / 2)

    def ids(*args: str) -> tuple[list[str], bool]:
        result = run("streaming", "list", *args, "--json")
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        return [r["id"] for r in body["rows"]], body["more"]

    everything = [str(r.id) for r in (stuck, ready, other, waiting)]  # least recent first
    assert ids() == (everything, False)
    assert ids("--state", "processing") == ([str(stuck.id), str(other.id)], False)
    assert ids("--state", "processing", "--provider", "loop") == ([str(stuck.id)], False)
    assert ids("--state", "ready", "--state", "pending") == (
        [str(ready.id), str(waiting.id)], False)
    assert ids("--provider", "nobody") == ([], False)
    assert ids("--limit", "2") == (everything[:2], True)
    assert ids("--limit", "4") == (everything, False)
    body = json.loads(run("streaming", "list", "--json").stdout)
    assert body["rows"][0] == {
        "id": str(stuck.id), "asset_id": str(stuck.asset_id), "profile": "stream",
        "provider": "loop", "state": "processing",
        "provider_asset_id": redact_id(stuck.provider_asset_id),
        "updated_at": body["rows"][0]["updated_at"]}
    assert body["rows"][3]["provider_asset_id"] is None
    text = run("streaming", "list", "--limit", "1").stdout
    assert text.splitlines()[0] == "streaming rows (1, more past --limit)"
    assert str(stuck.id) in text and redact_id(stuck.provider_asset_id) in text  # type: ignore[operator]
    assert str(stuck.provider_asset_id) not in text
    assert run("streaming", "list", "--state", "ready", "--provider", "gone").stdout == (
        "streaming rows: none\n")


@pytest.mark.parametrize("args", [["--state", "stuck"], ["--limit", "0"],
                                  ["--limit", "1001"]])
def test_streaming_list_usage_errors(app: Rindle, args: list[str]) -> None:
    assert run("streaming", "list", *args).exit_code == 2


def test_streaming_list_states_are_the_fsm_states() -> None:
    from rindle.cli.streaming import PROVIDER_STATES
    from rindle.domain.fsm.provider_asset import EDGES

    assert set(PROVIDER_STATES) == set(EDGES)


@pytest.mark.parametrize("ident", ["0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b", "no-such-row"])
def test_syncing_a_missing_row_is_not_found(app: Rindle, ident: str) -> None:
    add_row(app)
    text = run("streaming", "sync", ident)
    assert text.exit_code == 1
    assert text.stdout == ""
    assert text.stderr.splitlines()[-1] == (
        f"Error: provider asset row {ident} not found [not_found]")
    as_json = run("streaming", "sync", ident, "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout) == {"error": {
        "code": "not_found", "message": f"provider asset row {ident} not found"}}


def test_a_listed_id_is_what_sync_takes(app: Rindle) -> None:
    row = add_row(app, state="pending", provider_asset_id=None)  # nothing to ask the provider
    [listed] = json.loads(run("streaming", "list", "--json").stdout)["rows"]
    result = run("streaming", "sync", listed["id"], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcome"] == "skipped"
    assert listed["id"] == str(row.id)
