"""Settings: files, pyproject tables, environment overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rindle import Rindle
from rindle.config import load_settings
from rindle.errors import ConfigError, DatabaseUnavailable, UnknownBackend, UnknownProfile
from tests.apps import local_storage


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RINDLE_CONFIG", raising=False)
    settings = load_settings(environ={})
    assert settings.source is None
    assert settings.database_url == "sqlite:///rindle.db"
    assert settings.storages["default"]["backend"] == "local"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'rindle.db'}"


def test_rindle_toml_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    cfg = write(tmp_path / "rindle.toml", 'database_url = "sqlite:///data/r.db"\n'
                'secret_key = "s"\n[storages.default]\nbackend = "local"\nroot = "media"\n')
    settings = load_settings(cfg, environ={})
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'data' / 'r.db'}"
    (tmp_path / "data").mkdir()  # rindle creates the SQLite file, never its folder
    app = Rindle(settings=settings, load_entrypoints=False)
    assert local_storage(app).root == (tmp_path / "media").resolve()


def test_pyproject_tool_table_and_env_overrides(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n[tool.rindle]\n'
          'database_url = "sqlite:///from-file.db"\nsecret_key = "file"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RINDLE_CONFIG", raising=False)
    settings = load_settings(environ={"RINDLE_SECRET_KEY": "env"})
    assert settings.source == tmp_path / "pyproject.toml"
    assert settings.secret_key == "env"
    assert settings.database_url == "sqlite:///from-file.db"
    settings = load_settings(environ={"RINDLE_DATABASE_URL": "sqlite:////tmp/other.db"})
    assert settings.database_url == "sqlite:////tmp/other.db"


def test_rindle_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "elsewhere.toml", 'secret_key = "x"\n')
    monkeypatch.setenv("RINDLE_CONFIG", str(cfg))
    assert load_settings().source == cfg


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("database_url = \n", "not valid TOML"),
        ('databse_url = "sqlite:///x.db"\n', "databse_url"),
        ("profiles = \"a:b\"\n", "profiles must be a list"),
        ("[storages.default]\nroot = \"x\"\n", "backend"),
        ("database_url = 5\n", "database_url"),
    ],
)
def test_malformed_files_name_what_to_fix(tmp_path: Path, text: str, needle: str) -> None:
    cfg = write(tmp_path / "rindle.toml", text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, environ={})
    assert needle in str(err.value)


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rindle init"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_unknown_backend_lists_installed_and_the_package(tmp_path: Path) -> None:
    with pytest.raises(UnknownBackend) as err:
        Rindle(database_url=f"sqlite:///{tmp_path}/x.db", secret_key="s",
               storages={"default": {"backend": "s3", "bucket": "b"}}, load_entrypoints=False)
    msg = str(err.value)
    assert "'s3'" in msg and "local" in msg and "pip install rindle-s3" in msg
    with pytest.raises(UnknownBackend, match="Check the spelling"):
        Rindle(database_url=f"sqlite:///{tmp_path}/x.db", secret_key="s",
               storages={"default": {"backend": "lokal"}}, load_entrypoints=False)


def test_unknown_profile_lists_configured(tmp_path: Path) -> None:
    app = Rindle(database_url=f"sqlite:///{tmp_path}/x.db", secret_key="s", load_entrypoints=False)
    with pytest.raises(UnknownProfile, match="configured profiles: none"):
        app.profile("avatar")


def test_profile_import_errors_are_config_errors(tmp_path: Path) -> None:
    for spec, needle in [("nomodule_xyz:Thing", "cannot import"), ("no-colon", "import path"),
                         ("json:nothing_here", "has no profile"), ("json:dumps", "not a rindle")]:
        with pytest.raises(ConfigError, match=needle):
            Rindle(database_url=f"sqlite:///{tmp_path}/x.db", secret_key="s",
                   profiles=[spec], load_entrypoints=False)


def test_unreachable_database_is_one_clear_error_with_the_password_hidden() -> None:
    app = Rindle(database_url="postgresql://bob:hunter2@127.0.0.1:1/nodb", secret_key="s",
                 load_entrypoints=False)
    with pytest.raises(DatabaseUnavailable) as err:
        app.migrate()
    assert "hunter2" not in str(err.value)
    assert "cannot connect" in str(err.value) and "database_url" in str(err.value)


def test_bad_database_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        Rindle(database_url="not a url", secret_key="s", load_entrypoints=False)


def test_storage_without_secret_says_how_to_set_one(tmp_path: Path) -> None:
    app = Rindle(database_url=f"sqlite:///{tmp_path}/x.db", secret_key=None,
                 load_entrypoints=False)
    with pytest.raises(ConfigError, match="RINDLE_SECRET_KEY"):
        app.storage()
