"""The operator verbs speak one dialect: an unknown profile or variant is exit 2 naming what
exists (never 0 with zero counts), ``--live`` is the one "really do it" (older spellings
still work, hidden), and durations take units (``--older-than 2h``) under both spellings.
Both dialects.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, update

from rindle import Rindle
from rindle.cli import _limits, cli
from rindle.domain.models import UploadSession, utcnow
from rindle.errors import UsageError
from tests.apps import local_storage
from tests.ops.conftest import CONFTEST_PROFILES

KNOWN_PROFILES = ("configured profiles: docs, gallery. Add it to `profiles` in rindle.toml or "
                  "pass it to Rindle(profiles=[...]).")


@pytest.fixture
def invoke(db_url: str, tmp_path: Path, opsapp: Rindle) -> Callable[..., Result]:
    media = local_storage(opsapp).root
    config = tmp_path / "rindle.toml"
    config.write_text(f'database_url = "{db_url}"\nsecret_key = "{"k" * 40}"\n'
                      f'profiles = [{CONFTEST_PROFILES}]\n'
                      f'tmp_dir = "{tmp_path / "tmp"}"\n'
                      f'[storages.default]\nbackend = "local"\nroot = "{media}"\n')

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config), *args])

    return run


def usage(result: Result, code: str) -> str:
    """The error line of a usage error (exit 2) with ``code``; stdout holds the JSON error
    when ``--json`` was given, nothing else."""
    assert result.exit_code == 2, result.output
    line = result.stderr.splitlines()[-1]
    assert line.startswith("Error: ") and line.endswith(f" [{code}]"), line
    return line.removeprefix("Error: ").removesuffix(f" [{code}]")


# --- unknown variants ------------------------------------------------------------------------

@pytest.mark.parametrize("verb", ["regenerate-variants", "verify-storage"])
def test_an_unknown_variant_is_exit_2_naming_the_variants(
        invoke: Callable[..., Result], seed: Callable[..., Any], verb: str) -> None:
    seed(1)
    assert usage(invoke(verb, "--variant", "thumbnail"), "unknown_variant") == (
        "unknown variant 'thumbnail'; variants by profile: docs: small; gallery: large, thumb")
    assert usage(invoke(verb, "--profile", "docs", "--variant", "thumb"),
                 "unknown_variant") == (
        "unknown variant 'thumb' for profile 'docs'; its variants: small")
    as_json = invoke(verb, "--variant", "nope", "--json")
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout)["error"]["code"] == "unknown_variant"
    assert "checked" not in as_json.stdout and "enqueued" not in as_json.stdout
    fine = invoke(verb, "--profile", "gallery", "--variant", "thumb", "--json")
    assert fine.exit_code == 0, fine.output


def test_url_and_requeue_refuse_an_unknown_variant(invoke: Callable[..., Result],
                                                   seed: Callable[..., Any]) -> None:
    [asset] = seed(1)
    assert usage(invoke("url", str(asset.id), "--variant", "small"), "unknown_variant") == (
        "unknown variant 'small' for profile 'gallery'; its variants: large, thumb")
    assert usage(invoke("requeue", str(asset.id), "--variant", "small"),
                 "unknown_variant") == (
        f"unknown variant(s) small for asset {asset.id}; it has: large, thumb")
    assert invoke("url", str(asset.id), "--variant", "thumb").exit_code == 0


def test_the_library_refuses_before_any_pass(opsapp: Rindle, seed: Callable[..., Any]) -> None:
    seed(1)
    seen: list[str] = []
    opsapp.telemetry.attach(lambda event, _m, _md: seen.append(event))
    for call in (lambda: opsapp.ops.regenerate_variants(variant="nope"),
                 lambda: opsapp.ops.verify_storage(profile="gallery", variant="small")):
        with pytest.raises(UsageError) as err:
            call()
        assert err.value.code == "unknown_variant"
    with pytest.raises(UsageError) as err:
        opsapp.ops.verify_storage(profile="nope")
    assert err.value.code == "unknown_profile"
    assert not [e for e in seen if e.startswith("rindle.repair.")]


# --- unknown profiles: exit 2 in every verb ----------------------------------------------------

@pytest.mark.parametrize("verb", [
    ["runtime-status"], ["regenerate-variants"], ["verify-storage"], ["backfill-metadata"],
    ["upload", "__FILE__"],
])
def test_an_unknown_profile_is_exit_2_listing_the_profiles(
        invoke: Callable[..., Result], tmp_path: Path, verb: list[str]) -> None:
    photo = tmp_path / "p.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n")
    args = [str(photo) if a == "__FILE__" else a for a in verb]
    assert usage(invoke(*args, "--profile", "avatars"), "unknown_profile") == (
        f"unknown profile 'avatars'; {KNOWN_PROFILES}")
    as_json = invoke(*args, "--profile", "avatars", "--json")
    assert json.loads(as_json.stdout)["error"]["code"] == "unknown_profile"


# --- --live, one spelling; the old ones hidden but working ------------------------------------

def expired_sessions(app: Rindle, n: int) -> None:
    for _ in range(n):
        session = app.initiate_upload("gallery", filename="x.jpg")
        app.sign_upload(session.id)
    with app.db.transaction() as s:
        s.execute(update(UploadSession).values(expires_at=utcnow() - dt.timedelta(hours=1)))


def session_states(app: Rindle) -> dict[str, int]:
    with app.db.sessionmaker() as s:
        return dict(s.execute(select(UploadSession.state, func.count())  # type: ignore[arg-type]
                              .group_by(UploadSession.state)).all())


def test_abort_incomplete_uploads_is_dry_until_live(invoke: Callable[..., Result],
                                                    opsapp: Rindle) -> None:
    expired_sessions(opsapp, 2)
    dry = invoke("abort-incomplete-uploads", "--json")
    assert dry.exit_code == 0, dry.output
    body = json.loads(dry.stdout)
    assert (body["dry_run"], body["sessions_found"], body["sessions_aborted"]) == (True, 2, 0)
    assert session_states(opsapp) == {"signed": 2}
    text = invoke("abort-incomplete-uploads")
    assert "(dry run: nothing expired; pass --live)" in text.stdout
    live = invoke("abort-incomplete-uploads", "--live", "--json")
    body = json.loads(live.stdout)
    assert (body["dry_run"], body["sessions_found"], body["sessions_aborted"]) == (False, 2, 2)
    assert session_states(opsapp) == {"expired": 2}


def test_abort_incomplete_uploads_shows_sessions_whose_lease_is_held_as_busy(
        invoke: Callable[..., Result], opsapp: Rindle) -> None:
    """A session whose write lease is held is left for the next run and counted
    ``sessions_busy``, in the text and in ``--json``; once the lease ends it is expired."""
    expired_sessions(opsapp, 2)
    with opsapp.db.sessionmaker() as s:
        held = s.execute(select(UploadSession.id).order_by(UploadSession.id)).scalars().first()
    with opsapp.db.transaction() as s:
        s.execute(update(UploadSession).where(UploadSession.id == held)
                  .values(locked_until=utcnow() + dt.timedelta(hours=1)))
    text = invoke("abort-incomplete-uploads", "--live")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert [" ".join(line.split()) for line in lines[1:4]] == [
        "sessions_found 2", "sessions_aborted 1", "sessions_busy 1"]
    assert session_states(opsapp) == {"expired": 1, "signed": 1}
    again = json.loads(invoke("abort-incomplete-uploads", "--live", "--json").stdout)
    assert (again["sessions_found"], again["sessions_aborted"], again["sessions_busy"]) == (
        1, 0, 1)
    with opsapp.db.transaction() as s:
        s.execute(update(UploadSession).where(UploadSession.id == held)
                  .values(locked_until=utcnow() - dt.timedelta(seconds=1)))
    done = json.loads(invoke("abort-incomplete-uploads", "--live", "--json").stdout)
    assert (done["sessions_found"], done["sessions_aborted"], done["sessions_busy"]) == (
        1, 1, 0)
    assert session_states(opsapp) == {"expired": 2}


@pytest.mark.parametrize(("verb", "old"), [
    ("cleanup-orphans", "--no-dry-run"),
    ("cleanup-orphans", "--live"),
    ("sweep-orphaned-temp-files", "--live"),
    ("abort-incomplete-uploads", "--live"),
])
def test_live_and_old_spellings(invoke: Callable[..., Result], verb: str, old: str) -> None:
    assert json.loads(invoke(verb, "--json").stdout)["dry_run"] is True
    assert json.loads(invoke(verb, "--dry-run", "--json").stdout)["dry_run"] is True
    assert json.loads(invoke(verb, old, "--json").stdout)["dry_run"] is False
    both = invoke(verb, old, "--dry-run")
    assert both.exit_code == 2
    assert both.stderr.splitlines()[-1] == (
        "Error: --live and --dry-run contradict each other; pass one of them")


def test_every_destructive_verb_has_live() -> None:
    for verb in ("cleanup-orphans", "sweep-orphaned-temp-files", "erase-owners",
                 "abort-incomplete-uploads"):
        live = [p for p in cli.commands[verb].params if "--live" in getattr(p, "opts", [])]
        assert len(live) == 1 and not live[0].hidden, verb


# --- durations: units, and the -sec spelling of the same option --------------------------------

@pytest.mark.parametrize(("args", "key", "seconds"), [
    (["runtime-status", "--older-than", "2h"], "older_than_sec", 7200),
    (["runtime-status", "--older-than-sec", "7200"], "older_than_sec", 7200),
    (["runtime-status", "--older-than-sec", "90m"], "older_than_sec", 5400),
    (["runtime-status", "--older-than", "45"], "older_than_sec", 45),
    (["runtime-status", "--older-than", "30s"], "older_than_sec", 30),
    (["runtime-status", "--provider-stuck", "1d"], "provider_stuck_threshold_sec",
     {"*": 86400}),
])
def test_durations_take_units(invoke: Callable[..., Result], args: list[str], key: str,
                              seconds: object) -> None:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[key] == seconds


def test_sweep_threshold_takes_units(invoke: Callable[..., Result],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from rindle.ops.facade import Operations

    asked: list[int] = []
    real = Operations.sweep_orphaned_temp_files

    def spy(self: Operations, *, dry_run: bool = True, threshold_sec: int = 14_400) -> Any:
        asked.append(threshold_sec)
        return real(self, dry_run=dry_run, threshold_sec=threshold_sec)

    monkeypatch.setattr(Operations, "sweep_orphaned_temp_files", spy)
    for args in (["--threshold", "1h"], ["--threshold-sec", "3600"], ["--threshold", "60m"],
                 []):
        assert invoke("sweep-orphaned-temp-files", *args).exit_code == 0
    assert asked == [3600, 3600, 3600, 14_400]


@pytest.mark.parametrize("value", ["2w", "1.5h", "h", "2 hours", "-2h", "2H", ""])
def test_what_is_not_a_duration_is_a_usage_error(invoke: Callable[..., Result],
                                                 value: str) -> None:
    result = invoke("runtime-status", "--older-than", value)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--older-than' / '--older-than-sec': {value!r} is not a "
        "duration: write seconds (90) or a whole number with a unit s, m, h or d (30s, 15m, "
        "2h, 7d)")


def test_the_duration_type() -> None:
    kind = _limits.duration(1)
    assert isinstance(kind, click.IntRange)
    assert [kind.convert(v, None, None) for v in ("1", "59s", "15m", "2h", "7d", " 3 h ", 60)
            ] == [1, 59, 900, 7200, 604800, 10800, 60]
    assert kind.convert(f"{_limits.MAX_DURATION_SEC // 86400}d", None, None) == \
        _limits.MAX_DURATION_SEC
    for bad in ("0s", f"{_limits.MAX_DURATION_SEC // 86400 + 1}d", "9" * 25 + "d"):
        with pytest.raises(click.BadParameter):
            kind.convert(bad, None, None)


def test_url_expires_in_takes_units(invoke: Callable[..., Result],
                                    seed: Callable[..., Any]) -> None:
    [asset] = seed(1)
    assert invoke("url", str(asset.id), "--expires-in", "15m").exit_code == 0
    assert invoke("url", str(asset.id), "--expires-in", "0s").exit_code == 2
