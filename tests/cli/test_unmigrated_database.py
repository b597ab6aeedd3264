"""Every verb and API call before `rindle migrate` fails with one line naming the fix.

Three unmigrated databases: a SQLite file that does not exist (``database_missing``; the
file must not appear), a SQLite file holding only someone else's table and an empty
PostgreSQL database (``schema_out_of_date``). ``migrate``, ``doctor`` and ``init`` still work.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from rindle import Profile, Rindle, variants
from rindle.cli import cli
from rindle.errors import SchemaOutOfDate

ASSET_ID = "0190a4f2-0000-7000-8000-000000000000"


class Photo(Profile):
    name = "photo"
    allow_mime = ("image/png",)
    variants = {"thumb": variants.Image(mode="fit", width=16, format="png")}


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(params=["sqlite-missing", "sqlite-foreign-table", "postgresql-empty"])
def unmigrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(database URL, the error code every use must give) for an unmigrated database."""
    if request.param == "sqlite-missing":
        yield f"sqlite:///{tmp_path / 'absent.db'}", "database_missing"
        assert not (tmp_path / "absent.db").exists()  # nothing created it
        return
    if request.param == "sqlite-foreign-table":
        path = tmp_path / "other.db"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE unrelated (x INTEGER)")
        conn.close()
        yield f"sqlite:///{path}", "schema_out_of_date"
        return
    server = request.getfixturevalue("pg_server")
    name = f"unmigrated_{abs(hash(str(tmp_path))) % 10**9}"
    url = server.create_database(name)
    try:
        yield url, "schema_out_of_date"
    finally:
        server.drop_database(name)


@pytest.fixture
def config(unmigrated: tuple[str, str], tmp_path: Path) -> Path:
    url, _ = unmigrated
    path = tmp_path / "rindle.toml"
    path.write_text(
        f"database_url = {json.dumps(url)}\n"
        f'secret_key = "{"k" * 40}"\n'
        f'profiles = ["{__name__}:Photo"]\n'
        f"tmp_dir = {json.dumps(str(tmp_path / 'tmp'))}\n"
        "[storages.default]\nbackend = \"local\"\n"
        f"root = {json.dumps(str(tmp_path / 'media'))}\n", encoding="utf-8")
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


CLI_VERBS: dict[str, list[str]] = {
    "upload": ["upload", "--profile", "photo", "{file}"],
    "show": ["show", ASSET_ID],
    "url": ["url", ASSET_ID],
    "attach": ["attach", ASSET_ID, "user:1", "avatar"],
    "detach": ["detach", "user:1", "avatar"],
    "reprobe": ["reprobe", ASSET_ID],
    "requeue": ["requeue", ASSET_ID],
    "verify-storage": ["verify-storage"],
    "cleanup-orphans": ["cleanup-orphans"],
    "abort-incomplete-uploads": ["abort-incomplete-uploads"],
    "regenerate-variants": ["regenerate-variants"],
    "backfill-metadata": ["backfill-metadata"],
    "runtime-status": ["runtime-status"],
    "worker": ["worker", "--drain"],
}


def assert_one_line(result: Result, code: str) -> str:
    """The command failed with exit 1 and exactly ``Error: ... [code]`` on stderr."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # not an escaped exception
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.endswith(f" [{code}]\n")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output and "no such table" not in result.stderr
    assert "rindle migrate" in result.stderr
    return result.stderr


@pytest.mark.parametrize("verb", sorted(CLI_VERBS))
def test_every_verb_before_migrate_is_one_line(verb: str, config: Path,
                                               unmigrated: tuple[str, str],
                                               tmp_path: Path) -> None:
    upload = tmp_path / "red.png"
    upload.write_bytes(png_bytes())
    args = [a.replace("{file}", str(upload)) for a in CLI_VERBS[verb]]
    line = assert_one_line(run(config, *args), unmigrated[1])
    if unmigrated[1] == "database_missing":
        assert f"{tmp_path / 'absent.db'}' does not exist" in line
    else:
        assert "has no rindle tables, rindle needs 0005" in line
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").rglob("*.*"))


def test_the_json_form_carries_the_code(config: Path, unmigrated: tuple[str, str]) -> None:
    result = run(config, "--json", "show", ASSET_ID)
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == unmigrated[1] and "rindle migrate" in error["message"]


def test_doctor_reports_it_and_migrate_fixes_it(config: Path, unmigrated: tuple[str, str],
                                                tmp_path: Path) -> None:
    doctor = run(config, "--json", "doctor")
    assert doctor.exit_code == 1 and "Traceback" not in doctor.output
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    failing = checks["database"] if unmigrated[1] == "database_missing" else checks["schema"]
    assert failing["status"] == "error" and "rindle migrate" in failing["fix"]
    assert checks["workers"]["message"] == "skipped: the database is not ready"
    if unmigrated[1] == "database_missing":
        assert not (tmp_path / "absent.db").exists()
    migrate = run(config, "--json", "migrate")
    assert migrate.exit_code == 0, migrate.output
    assert json.loads(migrate.stdout)["from"] is None
    assert json.loads(migrate.stdout)["to"] == "0005"
    shown = run(config, "show", ASSET_ID)
    assert shown.exit_code == 1 and shown.stderr.endswith("[not_found]\n")
    if unmigrated[1] == "database_missing":
        (tmp_path / "absent.db").unlink()  # the fixture checks nothing else created it


def test_init_needs_no_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", "--dir", str(tmp_path / "app")])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "app" / "rindle.db").exists()


API_CALLS: dict[str, Callable[[Rindle, Path], Any]] = {
    "upload(path)": lambda app, f: app.upload("photo", f),
    "upload(bytes)": lambda app, f: app.upload("photo", f.read_bytes(), filename="r.png"),
    "upload(file)": lambda app, f: app.upload("photo", io.BytesIO(f.read_bytes()),
                                              filename="r.png"),
    "get_asset": lambda app, f: app.get_asset(ASSET_ID),
    "url": lambda app, f: app.url(ASSET_ID),
    "attach": lambda app, f: app.attach(ASSET_ID, ("user", 1), "avatar"),
    "detach": lambda app, f: app.detach(("user", 1), "avatar"),
    "reprobe": lambda app, f: app.reprobe(ASSET_ID),
    "requeue_variants": lambda app, f: app.requeue_variants(ASSET_ID),
    "initiate_upload": lambda app, f: app.initiate_upload("photo", filename="r.png",
                                                          byte_size=10),
    "verify_upload": lambda app, f: app.verify_upload(ASSET_ID),
    "abort_upload": lambda app, f: app.abort_upload(ASSET_ID),
    "erase_owners": lambda app, f: app.erase_owners([("user", 1)]),
    "jobs.drain": lambda app, f: app.jobs.drain(),
    "ops.runtime_status": lambda app, f: app.ops.runtime_status(),
    "ops.verify_storage": lambda app, f: app.ops.verify_storage(),
    "ops.cleanup_orphans": lambda app, f: app.ops.cleanup_orphans(),
    "ops.abort_incomplete_uploads": lambda app, f: app.ops.abort_incomplete_uploads(),
    "ops.regenerate_variants": lambda app, f: app.ops.regenerate_variants(),
    "ops.backfill_metadata": lambda app, f: app.ops.backfill_metadata(),
}


@pytest.mark.parametrize("call", sorted(API_CALLS))
def test_every_api_call_before_migrate_raises_schema_out_of_date(
        call: str, unmigrated: tuple[str, str], tmp_path: Path) -> None:
    url, code = unmigrated
    app = Rindle(database_url=url, secret_key="k" * 40, profiles=[Photo],
                 storages={"default": {"backend": "local", "root": str(tmp_path / "media")}},
                 tmp_dir=str(tmp_path / "tmp"), load_entrypoints=False)
    upload = tmp_path / "red.png"
    upload.write_bytes(png_bytes())
    try:
        with pytest.raises(SchemaOutOfDate) as err:
            API_CALLS[call](app, upload)
        assert err.value.code == code
        assert "rindle migrate" in err.value.message and "\n" not in err.value.message
        assert not (tmp_path / "media").exists()  # nothing was stored first
    finally:
        app.close()


def test_the_check_passes_once_and_is_not_repeated(make_app: Any) -> None:
    app = make_app()
    app.db.check_schema_once()
    asked: list[int] = []
    app.db.ensure_schema_current = lambda: asked.append(1)
    with pytest.raises(Exception, match="not found"):
        app.get_asset(ASSET_ID)
    app.db.check_schema_once()
    assert asked == []
