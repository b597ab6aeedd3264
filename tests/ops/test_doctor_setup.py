"""doctor and the read-only verbs on a fresh setup: nothing created, each fix about its own
check, local base_url probed against a real loopback server; the private default tmp_dir."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
from click.testing import CliRunner

from rindle import Rindle
from rindle.cli import cli
from rindle.cli.serve import make_threading_server
from rindle.config import Settings, default_tmp_dir, private_tmp_dir
from rindle.delivery import wsgi_app
from rindle.errors import ConfigError
from rindle.ops.doctor import Check

SECRET = "s" * 40


def checks(app: Rindle) -> dict[str, Check]:
    return {c.name: c for c in app.ops.doctor().checks}


@pytest.fixture
def system_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temp directory, redirected into this test's folder."""
    path = tmp_path / "systmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture
def empty_project(tmp_path: Path, system_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory with no config file anywhere."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    for name in ("RINDLE_CONFIG", "RINDLE_DATABASE_URL", "RINDLE_TMP_DIR", "RINDLE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    return project


# --- item: read-only verbs never create the SQLite file --------------------------------------

def test_doctor_in_an_empty_directory_creates_nothing(empty_project: Path,
                                                      system_tmp: Path) -> None:
    env = {**os.environ, "RINDLE_DISABLE_PLUGIN_AUTOLOAD": "1", "TMPDIR": str(system_tmp),
           "RINDLE_SECRET_KEY": SECRET}
    env.pop("RINDLE_CONFIG", None)
    result = subprocess.run([sys.executable, "-m", "rindle", "--json", "doctor"],
                            cwd=empty_project, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    found = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    db_file = empty_project.resolve() / "rindle.db"
    assert found["database"] == {
        "name": "database", "status": "error", "component": "database",
        "message": f"the SQLite database {str(db_file)!r} does not exist yet",
        "fix": "run `rindle migrate` to create it (or fix database_url if the database is "
               "somewhere else)"}
    assert found["storage.default"]["status"] == "ok"
    assert "does not exist yet; the first upload creates it" in found["storage.default"]["message"]
    assert list(empty_project.iterdir()) == []  # no rindle.db, no rindle-media


READ_ONLY = [["doctor"], ["runtime-status"], ["show", "0190a4f2-0000-7000-8000-000000000000"],
             ["url", "0190a4f2-0000-7000-8000-000000000000"], ["cleanup-orphans"],
             ["abort-incomplete-uploads"], ["worker", "--drain"]]


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: a[0])
def test_read_only_verbs_report_the_missing_database(args: list[str], empty_project: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINDLE_SECRET_KEY", SECRET)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    if args[0] != "doctor":
        note, *error = result.stderr.splitlines()  # no settings file here: a note first
        assert note.startswith("Note: no rindle.toml (or [tool.rindle] in pyproject.toml) in ")
        assert error == [
            f"Error: the SQLite database {str(empty_project.resolve() / 'rindle.db')!r} does not "
            "exist. Run `rindle migrate` (or app.migrate()) to create it, or fix database_url if "
            "it is somewhere else. [database_missing]"]
    assert list(empty_project.iterdir()) == []


def test_verify_storage_without_profiles_creates_nothing(empty_project: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    # no profile in scope: nothing to walk, so the database is not opened at all
    monkeypatch.setenv("RINDLE_SECRET_KEY", SECRET)
    result = CliRunner().invoke(cli, ["verify-storage"])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert list(empty_project.iterdir()) == []


def test_migrate_still_creates_it(empty_project: Path) -> None:
    result = CliRunner().invoke(cli, ["--json", "migrate"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["from"] is None
    assert (empty_project / "rindle.db").is_file()


# --- item: the default tmp_dir is private to the user and the project ------------------------

def test_the_default_tmp_dir_is_per_user_and_per_project(system_tmp: Path,
                                                         tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    path = Settings(base_dir=one).resolved_tmp_dir
    assert path.parent == system_tmp
    assert path.name.startswith(f"rindle-{os.getuid()}-") and len(path.name.split("-")[2]) == 8
    assert stat.S_IMODE(path.stat().st_mode) == 0o700 and path.is_dir()
    assert Settings(base_dir=one).resolved_tmp_dir == path
    assert Settings(base_dir=two).resolved_tmp_dir != path
    assert Settings(base_dir=one, tmp_dir="work").resolved_tmp_dir == one / "work"
    assert not (system_tmp / "rindle").exists()


def test_an_existing_default_tmp_dir_is_tightened(system_tmp: Path, tmp_path: Path) -> None:
    path = default_tmp_dir(tmp_path)
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    assert private_tmp_dir(tmp_path) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


@pytest.mark.parametrize("planted", ["file", "symlink", "other-user"])
def test_a_planted_default_tmp_dir_is_refused(planted: str, system_tmp: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = default_tmp_dir(tmp_path)
    if planted == "file":
        path.write_text("x")
    elif planted == "symlink":
        (tmp_path / "elsewhere").mkdir()
        path.symlink_to(tmp_path / "elsewhere")
    else:
        real_uid = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: real_uid + 4242)
        path = default_tmp_dir(tmp_path)
        path.mkdir(mode=0o700)  # owned by the real user, not by "us"
    with pytest.raises(ConfigError) as err:
        private_tmp_dir(tmp_path)
    assert err.value.message == (f"the default tmp_dir {str(path)!r} is not a folder owned by "
                                 "this user; remove it, or set tmp_dir in rindle.toml (or "
                                 "RINDLE_TMP_DIR)")


# --- item: each fix is about its own check ---------------------------------------------------

def test_without_a_secret_key_only_the_secret_check_fails(make_app: Callable[..., Rindle]
                                                          ) -> None:
    found = checks(make_app(secret_key=None))
    secret = found["secret_key"]
    assert secret.status == "error"
    assert secret.fix is not None and secret.fix.startswith(
        "set secret_key in rindle.toml (or RINDLE_SECRET_KEY) to a random value")
    storage = found["storage.default"]
    assert storage.status == "warn"
    assert storage.fix == "set secret_key first (see the secret_key check)"
    assert "storage.default.base_url" not in found
    assert not any("bucket" in (c.fix or "") or "path, " in (c.fix or "")
                   for c in found.values())


def test_an_unwritable_local_root_names_the_root(make_app: Callable[..., Rindle],
                                                 tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    found = checks(make_app(storages={"default": {"backend": "local",
                                                  "root": str(blocker / "media")}}))
    storage = found["storage.default"]
    assert storage.status == "error"
    assert storage.fix == (f"create {str(blocker / 'media')!r} writable by this user, or set "
                           "root in [storages.default] to a writable folder")


def test_an_unreachable_postgresql_names_the_server(tmp_path: Path) -> None:
    app = Rindle(database_url="postgresql://ops@127.0.0.1:1/x", secret_key=SECRET,
                 storages={"default": {"backend": "local", "root": str(tmp_path)}},
                 tmp_dir=str(tmp_path / "tmp"), load_entrypoints=False)
    database = checks(app)["database"]
    assert database.status == "error"
    assert database.fix == ("check database_url in rindle.toml (or RINDLE_DATABASE_URL), that "
                            "the PostgreSQL server is running and that it accepts these "
                            "credentials")


def test_an_unwritable_tmp_dir_names_tmp_dir(make_app: Callable[..., Rindle],
                                             tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    tmp = checks(make_app(tmp_dir=str(blocker / "tmp")))["tmp_dir"]
    assert tmp.status == "error"
    assert tmp.fix == ("set tmp_dir in rindle.toml (or RINDLE_TMP_DIR) to a folder this user "
                       "can write")


# --- item: a local storage's base_url must reach a server that accepts its URLs --------------

@contextmanager
def serving(application: Any) -> Iterator[int]:
    server = make_threading_server(application, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def app_at(make_app: Callable[..., Rindle], tmp_path: Path, base_url: str, *,
           secret: str = SECRET, url_prefix: str = "/media") -> Rindle:
    return make_app(secret_key=secret, storages={"default": {
        "backend": "local", "root": str(tmp_path / "media"), "base_url": base_url,
        "url_prefix": url_prefix}})


@pytest.mark.parametrize("mount", ["", "/assets"])
def test_base_url_of_the_serving_app_is_ok(mount: str, make_app: Callable[..., Rindle],
                                           tmp_path: Path) -> None:
    served = app_at(make_app, tmp_path, "http://unused.example")
    with serving(wsgi_app(served, mount=mount)) as port:
        check = checks(app_at(make_app, tmp_path, f"http://127.0.0.1:{port}{mount}"))[
            "storage.default.base_url"]
    assert check.status == "ok", check
    assert check.message == (f"http://127.0.0.1:{port}{mount}/media/ serves this storage: it "
                             "accepts URLs signed with this secret_key")


def test_a_server_with_another_secret_is_an_error(make_app: Callable[..., Rindle],
                                                  tmp_path: Path) -> None:
    served = app_at(make_app, tmp_path, "http://unused.example", secret="x" * 40)
    with serving(wsgi_app(served)) as port:
        check = checks(app_at(make_app, tmp_path, f"http://127.0.0.1:{port}"))[
            "storage.default.base_url"]
    assert check.status == "error"
    assert check.message == (f"the server at http://127.0.0.1:{port}/media/ refuses URLs signed "
                             "by this app (forbidden: bad_signature): it runs with another "
                             "secret_key, or base_url points at another app's server")
    assert check.fix is not None and "secret_key" in check.fix


@pytest.mark.parametrize(("mount", "base_path", "url_prefix"), [
    ("/assets", "", "/media"),       # mounted, but base_url lacks the mount path
    ("", "/assets", "/media"),       # base_url names a mount path the server does not have
    ("", "", "/files"),              # url_prefix differs from the server's
])
def test_base_url_missing_the_route_is_an_error(mount: str, base_path: str, url_prefix: str,
                                                make_app: Callable[..., Rindle],
                                                tmp_path: Path) -> None:
    served = app_at(make_app, tmp_path, "http://unused.example")
    with serving(wsgi_app(served, mount=mount)) as port:
        check = checks(app_at(make_app, tmp_path, f"http://127.0.0.1:{port}{base_path}",
                              url_prefix=url_prefix))["storage.default.base_url"]
    assert check.status == "error"
    assert check.message == (f"http://127.0.0.1:{port}{base_path}{url_prefix}/ is not a rindle "
                             "media route: a request without a token got HTTP 404, not 403 "
                             "forbidden (a wrong base_url, url_prefix or mount path)")
    assert check.fix is not None and "[storages.default]" in check.fix


def fixed_answer(status: str, headers: Iterable[tuple[str, str]] = ()) -> Any:
    def application(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain"), *headers])
        return [b"hello from something else"]
    return application


def test_another_kind_of_server_is_an_error(make_app: Callable[..., Rindle],
                                            tmp_path: Path) -> None:
    with serving(fixed_answer("200 OK")) as port:
        check = checks(app_at(make_app, tmp_path, f"http://127.0.0.1:{port}"))[
            "storage.default.base_url"]
    assert check.status == "error"
    assert "a request without a token got HTTP 200" in check.message


def test_a_redirect_is_a_warning(make_app: Callable[..., Rindle], tmp_path: Path) -> None:
    with serving(fixed_answer("302 Found", [("Location", "https://cdn.example/")])) as port:
        check = checks(app_at(make_app, tmp_path, f"http://127.0.0.1:{port}"))[
            "storage.default.base_url"]
    assert check.status == "warn"
    assert check.message == (f"http://127.0.0.1:{port}/media/ redirects (HTTP 302 to "
                             "https://cdn.example/); signed URLs must not be redirected")


def test_nothing_listening_is_a_warning(make_app: Callable[..., Rindle],
                                        tmp_path: Path) -> None:
    with socket.socket() as bound:  # bound, never listening: connecting is refused at once
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        found = checks(app_at(make_app, tmp_path, f"http://127.0.0.1:{port}"))
    check = found["storage.default.base_url"]
    assert check.status == "warn"
    assert check.message == (f"nothing answers at http://127.0.0.1:{port} (Connection refused): "
                             "this storage's signed URLs fail until something does")
    assert check.fix is not None and "rindle serve" in check.fix and "wsgi_app" in check.fix
    assert found["storage.default"].status == "ok"  # writability is a separate check
