"""The CLI speaks one dialect: every leaf command takes ``--json`` and prints one JSON
object with it, every help text has an example and no reStructuredText markup, and
``--profile`` help lists the configured profiles.

The commands are found by walking the click tree (built-ins and any plugin command
declared or registered), so a command added later without ``--json`` or an example fails
here without editing this file; the representative runs below must name every leaf.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from rindle.cli import cli
from rindle.cli.serve import ThreadingWSGIServer
from rindle.plugins import make_plugin_manager


def full_tree() -> click.Group:
    """The root group with every installed plugin's commands (declared and registered),
    built without touching the real ``cli``."""
    ctx = click.Context(cli)
    commands = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    group = click.Group("rindle", commands={k: v for k, v in commands.items() if v},
                        params=list(cli.params))
    make_plugin_manager(load_entrypoints=True).hook.register_commands(cli=group)
    return group


def walk(group: click.Group, path: tuple[str, ...] = ()
         ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, group
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))
        else:
            yield (*path, name), command


TREE = list(walk(full_tree()))
LEAVES = [(path, command) for path, command in TREE if not isinstance(command, click.Group)]


def leaf_id(case: tuple[tuple[str, ...], click.Command]) -> str:
    return " ".join(case[0])


def test_the_walk_finds_every_built_in_leaf() -> None:
    names = {" ".join(path) for path, _ in LEAVES}
    assert {"init", "migrate", "plugins", "worker", "relay", "serve", "upload", "url", "show",
            "attach", "detach", "reorder", "doctor", "runtime-status", "reprobe", "requeue",
            "regenerate-variants", "verify-storage", "backfill-metadata",
            "abort-incomplete-uploads", "cleanup-orphans", "sweep-orphaned-temp-files",
            "erase-owners", "streaming sync-due", "streaming sync", "streaming list",
            "streaming providers"} <= names


@pytest.mark.parametrize("case", LEAVES, ids=leaf_id)
def test_every_leaf_takes_json(case: tuple[tuple[str, ...], click.Command]) -> None:
    _, command = case
    flags = [param for param in command.params
             if isinstance(param, click.Option) and "--json" in param.opts]
    assert len(flags) == 1 and flags[0].is_flag and not flags[0].hidden


@pytest.mark.parametrize("case", TREE, ids=lambda c: leaf_id(c) or "rindle")
def test_help_has_an_example_and_no_rst(case: tuple[tuple[str, ...], click.Command]) -> None:
    path, command = case
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "``" not in result.output
    assert ":class:" not in result.output and ":func:" not in result.output
    if not isinstance(command, click.Group):
        example = re.search(r"^\s+Examples?:\n?\s+(rindle .*)$", result.output, re.M)
        assert example is not None, result.output
        assert example.group(1).split()[1:1 + len(path)] == list(path) or \
            example.group(1).startswith("rindle --config")


def test_hidden_aliases_stay_out_of_help() -> None:
    runner = CliRunner()
    for verb in ("cleanup-orphans", "erase-owners", "sweep-orphaned-temp-files",
                 "abort-incomplete-uploads"):
        args = [verb, "--help"]
        text = runner.invoke(cli, args).output
        assert "--live" in text
        assert "--no-dry-run" not in text and "--execute" not in text
        assert "--dry-run" not in text


# --- upload --profile lists the choices -------------------------------------------------------

PROFILES = '''
from rindle import Profile


class Gallery(Profile):
    name = "gallery"


class Docs(Profile):
    name = "docs"
'''


def test_profile_help_lists_the_configured_profiles(tmp_path: Path) -> None:
    module = f"dialect_help_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{module}.py").write_text(PROFILES)
    config = tmp_path / "rindle.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "r.db"}"\nsecret_key = "s"\n'
                      f'profiles = ["{module}:Gallery", "{module}:Docs"]\n')
    runner = CliRunner()
    for verb in ("upload", "runtime-status", "regenerate-variants", "verify-storage",
                 "backfill-metadata"):
        text = runner.invoke(cli, ["--config", str(config), verb, "--help"]).output
        assert re.search(r"--profile \[docs\|gallery\]", text), (verb, text)
    config.write_text("database_url = \n")  # settings that cannot load: help still renders
    broken = runner.invoke(cli, ["--config", str(config), "upload", "--help"])
    assert broken.exit_code == 0 and "--profile PROFILE" in broken.output


# --- every leaf prints JSON with --json --------------------------------------------------------

def payload(result: Result) -> dict[str, object]:
    """stdout as one JSON object (checked to be exactly one)."""
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


@pytest.fixture
def workdir(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp dir set up by ``rindle init`` (embedded defaults), on this test's database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RINDLE_CONFIG", raising=False)
    return tmp_path


def test_every_leaf_prints_one_json_object(workdir: Path, db_url: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    seen: dict[str, dict[str, object]] = {}

    def run(path: str, *args: str, code: int = 0) -> dict[str, object]:
        result = runner.invoke(cli, [*path.split(), *args, "--json"])
        assert result.exit_code == code, (path, result.output)
        seen[path] = payload(result)
        return seen[path]

    module = f"dialect_json_{abs(hash(str(workdir)))}"
    init = run("init", "--module", module)
    assert init == {"config": str(Path("rindle.toml")), "profiles": f"{module}.py",
                    "next": "rindle migrate"}
    config = workdir / "rindle.toml"
    config.write_text(re.sub(r"^database_url = .*$", f"database_url = {json.dumps(db_url)}",
                             config.read_text(), flags=re.M))
    assert run("migrate")["to"] == "0005"
    assert "plugins" in run("plugins")
    assert "checks" in runner.invoke(cli, ["doctor", "--json"]).stdout
    run("doctor", code=runner.invoke(cli, ["doctor"]).exit_code)
    Image.new("RGB", (40, 30), "red").save(workdir / "p.png")
    asset_id = str(run("upload", "p.png", "--profile", "photo")["id"])
    assert run("worker", "--drain")["ran"] >= 1  # type: ignore[operator]
    assert run("attach", asset_id, "user:1", "avatar")["slot"] == "avatar"
    assert run("show", asset_id)["attachments"] == [
        {"owner_type": "user", "owner_id": "1", "slot": "avatar", "collection": False,
         "position": 0}]
    assert str(run("url", asset_id, "--variant", "thumb")["url"]).startswith("http://")
    assert run("detach", "user:1", "avatar") == {"detached": True}
    assert run("reorder", "user:1", "photos") == {
        "owner_type": "user", "owner_id": "1", "slot": "photos", "assets": []}
    run("runtime-status")
    run("reprobe", asset_id)
    run("requeue", asset_id)
    run("regenerate-variants")
    run("verify-storage")
    run("backfill-metadata")
    run("abort-incomplete-uploads")
    run("cleanup-orphans")
    run("sweep-orphaned-temp-files")
    (workdir / "owners.csv").write_text("user,1\n")
    run("erase-owners", "--owners-file", "owners.csv")
    run("streaming sync-due")
    missing = run("streaming sync", "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b", code=1)
    assert missing["error"]["code"] == "not_found"  # type: ignore[index]
    assert run("streaming list") == {"rows": [], "more": False}
    assert run("streaming providers") == {"providers": {}}
    no_executor = run("relay", "--once", code=1)  # [jobs] executor is "worker": no relay
    assert no_executor["error"]["code"] == "config_error"  # type: ignore[index]

    def stop_at_once(self: ThreadingWSGIServer, poll_interval: float = 0.5) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ThreadingWSGIServer, "serve_forever", stop_at_once)
    served = run("serve", "--port", "0")
    assert served["host"] == "127.0.0.1" and served["url"] == f"http://127.0.0.1:{served['port']}"
    assert {r["name"] for r in served["routes"]}  # type: ignore[attr-defined]

    assert set(seen) == {leaf_id(case) for case in LEAVES}, "give every leaf a run above"


def test_a_worker_run_reports_json_when_it_stops(workdir: Path, db_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from rindle.jobs.worker import Worker

    (workdir / "rindle.toml").write_text(f"database_url = {json.dumps(db_url)}\n"
                                         'secret_key = "s"\n')
    monkeypatch.setattr(Worker, "run", lambda self, **_: None)  # as if stopped at once
    result = CliRunner().invoke(cli, ["worker", "--no-cron", "--json"])
    assert result.exit_code == 0, result.output
    body = payload(result)
    assert set(body) == {"worker_id", "executed"} and body["executed"] == 0
    assert "queues" in result.stderr  # progress stays on stderr
