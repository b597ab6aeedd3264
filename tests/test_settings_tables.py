"""The typed settings tables: ``[jobs]``, ``[delivery]``, ``[events]``,
``[streaming.NAME]``, ``[cron]``.

Unknown keys and wrong types are refused when the settings load, naming the table and the
key; every default is written once, in :mod:`rindle.defaults`, and read from there by the
queue, the operations and the command line.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from rindle import defaults
from rindle.cli import cli
from rindle.config import (
    EVENTS_MAX_ASSETS_LIMIT,
    EVENTS_TOKEN_TTL_LIMIT,
    STREAMING_CORE_KEYS,
    DeliverySettings,
    EventsSettings,
    JobsSettings,
    Settings,
    StreamingProviderSettings,
    load_settings,
)
from rindle.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "rindle"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- unknown keys ---------------------------------------------------------------------------

@pytest.mark.parametrize(("table", "key", "allowed"), [
    ("[jobs]", "lease_secs", "backoff_base, backoff_cap, executor, executor_options, "
     "lease_seconds, poll_interval, prefetch"),
    ("[delivery]", "max_put_byte", "accel_redirect, authorizer, max_put_bytes, "
     "signed_url_bucket, signed_url_ttl, x_sendfile"),
    ("[events]", "heartbeats", "heartbeat, max_assets, max_lifetime, max_streams, "
     "poll_interval, token_ttl"),
    ("[streaming.loop]", "provider_polling_floor_second",
     ", ".join(sorted(STREAMING_CORE_KEYS))),
])
def test_a_typoed_key_is_refused_naming_table_key_and_the_allowed_ones(
        tmp_path: Path, table: str, key: str, allowed: str) -> None:
    config = write(tmp_path / "rindle.toml", f"{table}\n{key} = 1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert str(err.value) == f"{table}: unknown setting(s) {key}; allowed: {allowed}"


def test_provider_keys_pass_through_to_the_provider(tmp_path: Path) -> None:
    config = write(tmp_path / "rindle.toml",
                   '[streaming.mux]\ntoken_id = "t"\nprovider_stuck_threshold_seconds = 60\n')
    [(name, table)] = load_settings(config).streaming.items()
    assert name == "mux" and isinstance(table, StreamingProviderSettings)
    assert table.backend == "mux" and table.stuck_threshold_seconds == 60
    assert table.settings == {"token_id": "t"}


def test_cron_entry_keys_are_job_arguments(tmp_path: Path) -> None:
    config = write(tmp_path / "rindle.toml",
                   '[cron]\ncleanup_orphans = { schedule = "0 2 * * *", dry_run = false }\n')
    assert load_settings(config).cron == {
        "cleanup_orphans": {"schedule": "0 2 * * *", "dry_run": False}}


# --- wrong types ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "needle"), [
    ('[jobs]\nlease_seconds = "300"', "[jobs] lease_seconds must be a number"),
    ("[jobs]\nbackoff_base = true", "[jobs] backoff_base must be a number"),
    ("[jobs]\nbackoff_cap = [1]", "[jobs] backoff_cap must be a number"),
    ('[jobs]\npoll_interval = "1s"', "[jobs] poll_interval must be a number"),
    ("[jobs]\nprefetch = 1.5", "[jobs] prefetch must be a whole number"),
    ('[delivery]\nmax_put_bytes = "10"', "[delivery] max_put_bytes must be a whole number"),
    ("[delivery]\nmax_put_bytes = -1", "[delivery] max_put_bytes must be a whole number"),
    ("[delivery]\nsigned_url_ttl = 0", "[delivery] signed_url_ttl must be a whole number of "
     "seconds >= 1, e.g. 900, not 0"),
    ("[delivery]\nsigned_url_bucket = 0", "[delivery] signed_url_bucket must be a whole "
     "number of seconds >= 1, e.g. 300, not 0"),
    ('[delivery]\nsigned_url_bucket = "300"', "[delivery] signed_url_bucket must be a whole"),
    ("[delivery]\nsigned_url_ttl = 1.5", "[delivery] signed_url_ttl must be a whole"),
    ("[delivery]\nauthorizer = 3", "[delivery] authorizer must be a function or its import "
     "path"),
    ('[delivery]\nauthorizer = "os.path"', "[delivery] authorizer 'os.path' is not an import "
     "path"),
    ('[delivery]\nauthorizer = "no_such_module_h12:f"', "[delivery] authorizer: cannot import "
     "'no_such_module_h12'"),
    ('[delivery]\nauthorizer = "os.path:nope"', "[delivery] authorizer: module 'os.path' has "
     "no 'nope'"),
    ('[delivery]\nauthorizer = "os:sep"', "[delivery] authorizer 'os:sep' is not callable"),
    ('[events]\nheartbeat = "15"', "[events] heartbeat must be a number (seconds), not '15'"),
    ("[events]\nheartbeat = 0", "[events] heartbeat must be a number of seconds > 0, e.g. "
     "15.0, not 0"),
    ("[events]\npoll_interval = -0.5", "[events] poll_interval must be a number of seconds "
     "> 0, e.g. 1.0, not -0.5"),
    ("[events]\nmax_lifetime = inf", "[events] max_lifetime must be a number of seconds > 0"),
    ("[events]\nheartbeat = nan", "[events] heartbeat must be a number of seconds > 0"),
    ("[events]\nmax_streams = 0", "[events] max_streams must be a whole number of streams "
     ">= 1, e.g. 100, not 0"),
    ("[events]\nmax_streams = 1.5", "[events] max_streams must be a whole number"),
    ("[events]\nmax_streams = true", "[events] max_streams must be a whole number"),
    ("[events]\nmax_assets = 0", "[events] max_assets must be a whole number of asset ids "
     "from 1 to 1000, e.g. 100, not 0"),
    ("[events]\nmax_assets = 1001", "[events] max_assets must be a whole number of asset ids "
     "from 1 to 1000, e.g. 100, not 1001"),
    ("[events]\ntoken_ttl = 0", "[events] token_ttl must be a whole number of seconds from 1 "
     "to 604800, e.g. 3600, not 0"),
    ("[events]\ntoken_ttl = 604801", "[events] token_ttl must be a whole number of seconds "
     "from 1 to 604800, e.g. 3600, not 604801"),
    ('[events]\ntoken_ttl = "1h"', "[events] token_ttl must be a whole number"),
    ("events = 3", "events must be a table"),
    ("[streaming.loop]\nbackend = 3", "[streaming.loop] backend must be a provider name"),
    ('[streaming.loop]\nprovider_polling_batch_size = "x"',
     "[streaming.loop] provider_polling_batch_size must be a positive integer"),
    ("[streaming.loop]\nprovider_polling_floor_seconds = 0",
     "[streaming.loop] provider_polling_floor_seconds must be a positive integer"),
    ("streaming = { loop = 3 }", "[streaming.loop] must be a table"),
    ("jobs = 3", "jobs must be a table"),
    ("delivery = []", "delivery must be a table"),
    ("cron = 3", "cron must be a table"),
    ("[cron]\nnightly = 3", "[cron] nightly: must be a cron string or a table"),
    ('[cron]\nnightly = { dry_run = true }', '[cron] nightly: needs schedule = "<cron'),
    ('[cron]\nnightly = { schedule = "0 1 * * *", kind = 1 }',
     "[cron] nightly: kind must be a string"),
])
def test_a_wrong_type_is_refused_naming_the_key_and_the_type(tmp_path: Path, text: str,
                                                             needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path / "rindle.toml", text + "\n"))
    assert needle in str(err.value)


def test_events_bounds_are_inclusive() -> None:
    top = EventsSettings.parse({"max_assets": EVENTS_MAX_ASSETS_LIMIT,
                                "token_ttl": EVENTS_TOKEN_TTL_LIMIT, "max_streams": 1,
                                "heartbeat": 0.001, "poll_interval": 1, "max_lifetime": 2})
    assert (top.max_assets, top.token_ttl) == (1000, 604800)
    low = EventsSettings.parse({"max_assets": 1, "token_ttl": 1})
    assert (low.max_assets, low.token_ttl, low.max_streams) == (1, 1, 100)
    assert (top.heartbeat, top.poll_interval, top.max_lifetime) == (0.001, 1.0, 2.0)
    assert isinstance(top.poll_interval, float)


def test_tables_given_as_mappings_in_python_are_typed_too() -> None:
    settings = Settings(jobs={"lease_seconds": 30, "prefetch": 2},
                        delivery={"max_put_bytes": 10}, streaming={"loop": {}},
                        events={"heartbeat": 5, "max_assets": 3})
    assert settings.jobs == JobsSettings(lease_seconds=30.0, prefetch=2)
    assert isinstance(settings.jobs.lease_seconds, float)
    assert settings.delivery == DeliverySettings(max_put_bytes=10)
    assert settings.events == EventsSettings(heartbeat=5.0, max_assets=3)
    assert settings.streaming["loop"].backend == "loop"
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings(jobs={"lease": 1})


# --- defaults: one value, one place ---------------------------------------------------------

def test_table_defaults_are_the_constants() -> None:
    jobs, delivery = Settings().jobs, Settings().delivery
    assert jobs.lease_seconds is defaults.JOBS_LEASE_SECONDS
    assert jobs.backoff_base is defaults.JOBS_BACKOFF_BASE
    assert jobs.backoff_cap is defaults.JOBS_BACKOFF_CAP
    assert jobs.poll_interval is defaults.JOBS_POLL_INTERVAL
    assert jobs.prefetch is defaults.JOBS_PREFETCH
    assert jobs.executor is defaults.JOBS_EXECUTOR and jobs.executor_options == {}
    assert delivery.max_put_bytes is defaults.DELIVERY_MAX_PUT_BYTES
    assert delivery.accel_redirect is defaults.DELIVERY_ACCEL_REDIRECT
    assert delivery.x_sendfile is defaults.DELIVERY_X_SENDFILE
    assert delivery.signed_url_ttl is defaults.DELIVERY_SIGNED_URL_TTL
    assert delivery.signed_url_bucket is defaults.DELIVERY_SIGNED_URL_BUCKET
    assert delivery.authorizer is None
    events = Settings().events
    assert events.heartbeat is defaults.EVENTS_HEARTBEAT
    assert events.max_streams is defaults.EVENTS_MAX_STREAMS
    assert events.max_lifetime is defaults.EVENTS_MAX_LIFETIME
    assert events.poll_interval is defaults.EVENTS_POLL_INTERVAL
    assert events.max_assets is defaults.EVENTS_MAX_ASSETS
    assert events.token_ttl is defaults.EVENTS_TOKEN_TTL
    provider = StreamingProviderSettings.parse("loop", {})
    assert provider.polling_floor_seconds is defaults.STREAMING_POLLING_FLOOR_SECONDS
    assert provider.polling_batch_size is defaults.STREAMING_POLLING_BATCH_SIZE
    assert provider.stuck_threshold_seconds is defaults.STREAMING_STUCK_THRESHOLD_SECONDS


def _default(func: Any, name: str) -> Any:
    return inspect.signature(func).parameters[name].default


def _option_default(path: list[str], name: str) -> Any:
    command: click.Command = cli
    for part in path:
        assert isinstance(command, click.Group)
        command = command.commands[part]
    [param] = [p for p in command.params if p.name == name]
    return param.default


def test_consumers_use_the_same_default_objects() -> None:
    from rindle.delivery import wsgi
    from rindle.ops import runtime_status, sweep
    from rindle.ops.facade import Operations

    assert runtime_status.DEFAULT_OLDER_THAN is defaults.RUNTIME_STATUS_OLDER_THAN
    assert runtime_status.DEFAULT_LIMIT is defaults.RUNTIME_STATUS_LIMIT
    assert runtime_status.DEFAULT_PROVIDER_STUCK is defaults.STREAMING_STUCK_THRESHOLD_SECONDS
    for func in (runtime_status.runtime_status, Operations.runtime_status):
        assert _default(func, "older_than") is defaults.RUNTIME_STATUS_OLDER_THAN
        assert _default(func, "limit") is defaults.RUNTIME_STATUS_LIMIT
    assert sweep.DEFAULT_THRESHOLD is defaults.SWEEP_THRESHOLD
    assert _default(sweep.sweep_orphaned_temp_files, "threshold_sec") is defaults.SWEEP_THRESHOLD
    assert _default(Operations.sweep_orphaned_temp_files,
                    "threshold_sec") is defaults.SWEEP_THRESHOLD
    assert wsgi.DEFAULT_MAX_PUT_BYTES is defaults.DELIVERY_MAX_PUT_BYTES
    from rindle.web import events

    assert events.MAX_ASSETS is defaults.EVENTS_MAX_ASSETS
    assert events.DEFAULT_TOKEN_TTL is defaults.EVENTS_TOKEN_TTL
    assert events.DEFAULT_HEARTBEAT is defaults.EVENTS_HEARTBEAT
    assert events.DEFAULT_MAX_STREAMS is defaults.EVENTS_MAX_STREAMS
    assert events.DEFAULT_MAX_LIFETIME is defaults.EVENTS_MAX_LIFETIME
    assert events.DEFAULT_POLL_INTERVAL is defaults.EVENTS_POLL_INTERVAL
    assert _option_default(["runtime-status"],
                           "older_than") is defaults.RUNTIME_STATUS_OLDER_THAN
    assert _option_default(["runtime-status"], "limit") is defaults.RUNTIME_STATUS_LIMIT
    assert _option_default(["sweep-orphaned-temp-files"],
                           "threshold") is defaults.SWEEP_THRESHOLD


#: Files that once repeated a default; the literal must not come back in any of them.
CONSUMERS = ["config.py", "jobs/queue.py", "jobs/worker.py", "delivery/wsgi.py",
             "delivery/core.py", "streaming/service.py", "ops/runtime_status.py",
             "ops/sweep.py", "ops/facade.py", "cli/diagnostics.py", "cli/maintenance.py",
             "web/events.py"]


def _code(text: str) -> str:
    """``text`` without comments, docstrings or other string literals."""
    import io
    import tokenize

    skip = {tokenize.COMMENT, tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", -1)}
    kept = [tok.string for tok in tokenize.generate_tokens(io.StringIO(text).readline)
            if tok.type not in skip]
    return " ".join(kept)


@pytest.mark.parametrize("literal", [r"3600(\.0)?", r"14_?400", r"7200", r"5 \* 1024 \*\* 3"])
def test_default_literals_live_only_in_the_defaults_module(literal: str) -> None:
    pattern = re.compile(rf"(?<![\w.]){literal}(?![\w.])")
    assert pattern.search(_code((SRC / "defaults.py").read_text(encoding="utf-8")))
    for rel in CONSUMERS:
        code = _code((SRC / rel).read_text(encoding="utf-8"))
        assert not pattern.search(code), f"{rel} repeats a default ({literal})"


# --- the files rindle writes and the guides show still load ---------------------------------

def test_the_file_rindle_init_writes_loads(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RINDLE_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["init"])
    assert result.exit_code == 0, result.output
    config = tmp_path / "rindle.toml"
    settings = load_settings(config, environ={})
    assert settings.jobs == JobsSettings() and settings.delivery == DeliverySettings()
    assert settings.events == EventsSettings()
    assert settings.cron == {} and settings.streaming == {}
    # the commented-out cron examples load too
    text = re.sub(r"(?m)^# (\w+ = )", r"\1", config.read_text(encoding="utf-8"))
    assert set(load_settings(write(config, text), environ={}).cron) == {
        "abort_incomplete_uploads", "cleanup_orphans"}


#: Top-level keys a block of rindle settings may have (others: pyproject or [cron] parts).
SETTINGS_TABLES = {"cron", "streaming", "jobs", "delivery", "events", "storages"}


def _toml_blocks() -> list[tuple[str, str]]:
    """Every toml block of the docs that is a piece of ``rindle.toml``."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "guides").glob("*.md")),
                *sorted(ROOT.glob("plugins/*/README.md"))]:
        text = doc.read_text(encoding="utf-8")
        for i, block in enumerate(re.findall(r"```toml\n(.*?)```", text, re.S)):
            if set(tomllib.loads(block)) <= SETTINGS_TABLES:
                found.append((f"{doc.relative_to(ROOT)}#{i}", block))
    return found


@pytest.mark.parametrize("where, block", [pytest.param(w, b, id=w) for w, b in _toml_blocks()])
def test_every_settings_block_in_the_docs_loads_commented_keys_included(
        tmp_path: Path, where: str, block: str) -> None:
    """A block of rindle settings loads as written and with its commented keys switched on;
    the documented streaming defaults are the real ones."""
    uncommented = re.sub(r"(?m)^# (\w+ = )", r"\1", block)
    for text in (block, uncommented):
        settings = load_settings(write(tmp_path / "rindle.toml", text), environ={})
        for provider in settings.streaming.values():
            assert provider.polling_floor_seconds == defaults.STREAMING_POLLING_FLOOR_SECONDS
            assert provider.polling_batch_size == defaults.STREAMING_POLLING_BATCH_SIZE
            assert (provider.stuck_threshold_seconds
                    == defaults.STREAMING_STUCK_THRESHOLD_SECONDS)


def test_the_events_block_of_the_live_progress_guide_shows_the_real_defaults(
        tmp_path: Path) -> None:
    [block] = [b for where, b in _toml_blocks() if where.startswith("guides/live_progress.md")]
    assert load_settings(write(tmp_path / "rindle.toml", block), environ={}).events == (
        EventsSettings())
