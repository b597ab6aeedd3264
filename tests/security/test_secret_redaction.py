"""Database secrets never reach output: ``rindle doctor`` (text and ``--json``), ``rindle
migrate``, error lines, ``repr(Rindle)``, unparsable URLs and driver messages.

The URLs carry a password in the userinfo (PostgreSQL) and in ``?password=`` (both
dialects); every test asserts neither string is anywhere in what a user sees, and that
the redacted form (``***``) is.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from rindle import Rindle
from rindle.cli import cli
from rindle.config import Settings
from rindle.database import UNPARSABLE_URL, Database, redact_url, scrub_secrets
from rindle.errors import ConfigError, DatabaseUnavailable
from rindle.telemetry import redact_url as telemetry_redact_url
from rindle.testing.postgres import TempPostgres
from tests.apps import MakeApp

USER_PASSWORD = "Us3rPw-7f1c2b"
QUERY_PASSWORD = "QryPw-9d2e44"
SECRETS = (USER_PASSWORD, QUERY_PASSWORD)
PARSE_ERROR = ("database_url is not a database URL: it could not be parsed; expected "
               "dialect[+driver]://[user[:password]@]host[:port]/database, e.g. "
               "sqlite:///rindle.db or postgresql+psycopg://user@host/db")


def secret_url(db_url: str) -> tuple[str, str]:
    """``db_url`` with secrets added, and the redacted form rindle must print for it."""
    url = make_url(db_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(password=USER_PASSWORD)
    url = url.update_query_dict({"password": QUERY_PASSWORD})
    if db_url.startswith("sqlite"):
        shown = f"{db_url}?password=***"
    else:  # the fixture's URL is postgresql+psycopg://rindle@127.0.0.1:PORT/NAME
        assert db_url.startswith("postgresql+psycopg://rindle@")
        shown = db_url.replace("://rindle@", "://rindle:***@") + "?password=***"
    return url.render_as_string(hide_password=False), shown


def write_config(tmp_path: Path, database_url: str) -> Path:
    config = tmp_path / "rindle.toml"
    config.write_text(f"database_url = {json.dumps(database_url)}\n"
                      f'secret_key = "{"k" * 40}"\n'
                      f"tmp_dir = {json.dumps(str(tmp_path / 'tmp'))}\n"
                      "[storages.default]\nbackend = \"local\"\n"
                      f"root = {json.dumps(str(tmp_path / 'media'))}\n", encoding="utf-8")
    return config


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


# --- the helper ---------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://bob:hunter2@db.example:5432/app",
     "postgresql://bob:***@db.example:5432/app"),
    ("postgresql://bob@db.example/app?password=hunter2&sslmode=require",
     "postgresql://bob@db.example/app?password=***&sslmode=require"),
    ("postgresql://bob@h/app?sslpassword=a&passfile=%2Fhome%2Fbob%2Fpgpass&application_name=x",
     "postgresql://bob@h/app?application_name=x&passfile=***&sslpassword=***"),
    ("postgresql://bob@h/app?PASSWORD=a&Api_Token=b&client_secret=c&x_Secret_y=d",
     "postgresql://bob@h/app?Api_Token=***&PASSWORD=***&client_secret=***&x_Secret_y=***"),
    ("postgresql://bob@h/app?password=a&password=b", "postgresql://bob@h/app?password=***"),
    ("postgresql://bob:pa%40ss@h/app", "postgresql://bob:***@h/app"),
    ("postgresql://bob:pa@ss@h/app", "postgresql://bob:***@h/app"),  # "@" spilled into host
    ("sqlite:////var/lib/r.db?password=hunter2", "sqlite:////var/lib/r.db?password=***"),
    ("sqlite:///rindle.db", "sqlite:///rindle.db"),
])
def test_redact_url_hides_passwords_and_secret_parameters(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_url(make_url(url)) == shown
    assert telemetry_redact_url(url) == shown


@pytest.mark.parametrize("url", [
    "hunter2 is not a url", "postgresql://bob:hunter2@h:notaport/app", "", "://hunter2",
])
def test_an_unparsable_url_is_never_echoed(url: str) -> None:
    assert redact_url(url) == UNPARSABLE_URL


def test_scrub_secrets_removes_raw_and_encoded_secrets() -> None:
    url = "postgresql://bob:p%40ss w@h/app?sslpassword=k3y9"
    text = f"failed at {url}: p@ss w, p%40ss+w, p%40ss%20w, k3y9"
    assert scrub_secrets(text, [url]) == (
        "failed at postgresql://bob:***@h/app?sslpassword=***: ***, ***, ***, ***")


def test_a_secret_repeated_elsewhere_in_the_url_is_hidden_there_too() -> None:
    assert redact_url("postgresql://hunter2:hunter2@h/app?application_name=hunter2") == (
        "postgresql://***:***@h/app?application_name=***")


def test_very_short_secrets_are_hidden_in_urls_but_not_hunted_in_text() -> None:
    url = "postgresql://bob:abc@h/app?sslpassword=xy"
    assert redact_url(url) == "postgresql://bob:***@h/app?sslpassword=***"
    assert scrub_secrets("abc xy", [url]) == "abc xy"  # "abc" is no secret worth mangling for


# --- doctor, migrate, repr on a live database (both dialects) ------------------------------

def test_doctor_text_shows_the_redacted_url_only(db_url: str, tmp_path: Path) -> None:
    url, shown = secret_url(db_url)
    result = run(write_config(tmp_path, url), "doctor")
    assert result.exit_code == 0, result.output
    assert f"OK     database: reachable at {shown}\n" in result.stdout
    assert_no_secret(result.output, result.stderr)


@pytest.mark.parametrize("where", ["root", "verb"])
def test_doctor_json_shows_the_redacted_url_only(db_url: str, tmp_path: Path,
                                                  where: str) -> None:
    url, shown = secret_url(db_url)
    args = ["--json", "doctor"] if where == "root" else ["doctor", "--json"]
    result = run(write_config(tmp_path, url), *args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["checks"][0] == {"name": "database", "status": "ok", "component": "database",
                                   "message": f"reachable at {shown}", "fix": None}
    assert_no_secret(result.output, result.stderr)


def test_migrate_shows_the_redacted_url_only(db_url: str, tmp_path: Path) -> None:
    url, shown = secret_url(db_url)
    config = write_config(tmp_path, url)
    head = Database(db_url).head_revision()
    text = run(config, "migrate")
    assert text.exit_code == 0, text.output
    assert text.stdout == f"Database {shown}: {head} -> {head}\n"
    as_json = run(config, "--json", "migrate")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == {"database": shown, "from": head, "to": head}
    assert_no_secret(text.output, text.stderr, as_json.output, as_json.stderr)


def test_repr_of_rindle_database_and_settings(db_url: str, make_app: MakeApp) -> None:
    url, shown = secret_url(db_url)
    app = make_app(database_url=url)
    assert repr(app) == f"<Rindle db={shown} profiles=[]>"
    assert repr(app.db) == f"<Database {shown}>"
    assert app.db.redacted_url == shown
    assert_no_secret(repr(app), repr(app.db), repr(app.settings), str(app.__dict__.keys()))
    assert_no_secret(repr(Settings(database_url=url)))


def test_an_untranslated_database_error_is_one_line_without_secrets(db_url: str,
                                                                    tmp_path: Path) -> None:
    url, _ = secret_url(db_url)
    # the schema is at head but a table is gone: the query fails inside SQLAlchemy (an
    # unmigrated database is caught before any query: schema_out_of_date)
    db = Database(db_url)
    with db.engine.begin() as conn:
        cascade = " CASCADE" if db.dialect_name == "postgresql" else ""
        conn.exec_driver_sql(f"DROP TABLE media_assets{cascade}")
    db.dispose()
    result = run(write_config(tmp_path, url), "show", "0190a4f2-0000-7000-8000-000000000000")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: database error (")
    assert result.stderr.endswith(" [database_error]\n") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert_no_secret(result.output, result.stderr)


# --- a URL that cannot be parsed -----------------------------------------------------------

@pytest.mark.parametrize("url", [
    f"postgresql://bob:{USER_PASSWORD}@db.example:notaport/app",
    f"{QUERY_PASSWORD} pasted where a URL belongs",
])
def test_an_unparsable_url_is_named_not_echoed_by_the_cli(tmp_path: Path, url: str) -> None:
    config = write_config(tmp_path, url)
    for args in (["doctor"], ["migrate"]):
        result = run(config, *args)
        assert result.exit_code == 1
        assert result.stderr == f"Error: {PARSE_ERROR} [config_error]\n"
        assert_no_secret(result.output, result.stderr)
    for args in (["--json", "doctor"], ["doctor", "--json"], ["--json", "migrate"]):
        result = run(config, *args)
        assert result.exit_code == 1
        assert json.loads(result.stdout) == {"error": {"code": "config_error",
                                                       "message": PARSE_ERROR}}
        assert_no_secret(result.output, result.stderr)


def test_an_unparsable_url_is_named_not_echoed_by_the_library() -> None:
    url = f"postgresql://bob:{USER_PASSWORD}@db.example:notaport/app"
    with pytest.raises(ConfigError) as err:
        Rindle(database_url=url, secret_key="s", load_entrypoints=False)
    assert err.value.code == "config_error" and err.value.message == PARSE_ERROR
    assert_no_secret("".join(traceback.format_exception(err.value)))  # no chained cause


# --- unreachable and failing servers --------------------------------------------------------

def test_unreachable_server_doctor_and_migrate(tmp_path: Path) -> None:
    url = f"postgresql://bob:{USER_PASSWORD}@127.0.0.1:1/app?password={QUERY_PASSWORD}"
    shown = "postgresql+psycopg://bob:***@127.0.0.1:1/app?password=***"
    config = write_config(tmp_path, url)
    doctor = run(config, "doctor")
    assert doctor.exit_code == 1
    assert f"ERROR  database: cannot connect to database {shown}: " in doctor.stdout
    as_json = run(config, "doctor", "--json")
    assert as_json.exit_code == 1
    first = json.loads(as_json.stdout)["checks"][0]
    assert (first["name"], first["status"]) == ("database", "error")
    assert first["message"].startswith(f"cannot connect to database {shown}: ")
    migrate = run(config, "migrate")
    assert migrate.exit_code == 1
    assert migrate.stderr.startswith(f"Error: cannot connect to database {shown}: ")
    assert migrate.stderr.endswith(" [database_unavailable]\n")
    for result in (doctor, as_json, migrate):
        assert "Traceback" not in result.output
        assert_no_secret(result.output, result.stderr)


def test_a_server_refusal_names_the_reason_not_the_password(pg_server: TempPostgres,
                                                             tmp_path: Path) -> None:
    url = (f"postgresql://rindle:{USER_PASSWORD}@127.0.0.1:{pg_server.port}/no_such_db"
           f"?password={QUERY_PASSWORD}")
    shown = f"postgresql+psycopg://rindle:***@127.0.0.1:{pg_server.port}/no_such_db?password=***"
    config = write_config(tmp_path, url)
    doctor = run(config, "doctor")
    assert doctor.exit_code == 1
    assert f"ERROR  database: cannot connect to database {shown}: " in doctor.stdout
    assert 'database "no_such_db" does not exist' in doctor.stdout
    migrate = run(config, "--json", "migrate")
    assert migrate.exit_code == 1
    error = json.loads(migrate.stdout)["error"]
    assert error["code"] == "database_unavailable"
    assert error["message"].startswith(f"cannot connect to database {shown}: ")
    assert_no_secret(doctor.output, doctor.stderr, migrate.output, migrate.stderr)


def test_a_driver_message_quoting_a_secret_is_scrubbed(pg_server: TempPostgres,
                                                       tmp_path: Path) -> None:
    # libpq quotes a bad sslmode back; here it is the same string as the ssl password
    url = (f"postgresql://rindle@127.0.0.1:{pg_server.port}/postgres"
           f"?sslpassword={QUERY_PASSWORD}&sslmode={QUERY_PASSWORD}")
    with pytest.raises(DatabaseUnavailable) as err:
        Database(url).check_connection()
    assert 'invalid sslmode value: "***"' in err.value.message
    assert_no_secret(err.value.message)
    doctor = run(write_config(tmp_path, url), "doctor")
    assert doctor.exit_code == 1
    assert 'invalid sslmode value: "***"' in doctor.stdout
    assert_no_secret(doctor.output, doctor.stderr)
