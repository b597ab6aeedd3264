"""The RINDLE setting and the DATABASES translation: every accepted form and each error."""

from __future__ import annotations

from pathlib import Path

import pytest
from rindle_django import conf
from rindle_django.conf import database_url, rindle_settings

from rindle.errors import ConfigError


@pytest.mark.parametrize(("entry", "url"), [
    ({"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}, "sqlite://"),
    ({"ENGINE": "django.db.backends.sqlite3", "NAME": ""}, "sqlite://"),
    ({"ENGINE": "django.db.backends.sqlite3",
      "NAME": "file:memorydb_default?mode=memory&cache=shared"}, "sqlite://"),
    ({"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/app/db.sqlite3"},
     "sqlite:////srv/app/db.sqlite3"),
    ({"ENGINE": "django.db.backends.postgresql", "NAME": "shop", "USER": "web",
      "PASSWORD": "s3cret-pass", "HOST": "db.internal", "PORT": 6432},
     "postgresql+psycopg://web@db.internal:6432/shop"),
    ({"ENGINE": "django.contrib.gis.db.backends.postgis", "NAME": "geo"},
     "postgresql+psycopg:///geo"),
])
def test_database_url_never_carries_the_password(entry: dict[str, object], url: str) -> None:
    assert database_url(entry) == url


def test_relative_sqlite_name_is_made_absolute(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert database_url({"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}) == (
        f"sqlite:///{tmp_path.resolve()}/db.sqlite3")


@pytest.mark.parametrize(("entry", "words"), [
    ({"ENGINE": "django.db.backends.mysql", "NAME": "x"}, "is not supported by rindle"),
    ({"ENGINE": "django.db.backends.sqlite3", "NAME": "file:x.db?mode=ro"}, "file: URI"),
])
def test_database_url_refusals(entry: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        database_url(entry)
    assert caught.value.code == "config_error"


def test_settings_translate_profiles_storages_and_derive_the_secret(settings: object) -> None:
    from django.conf import settings as dj

    built = rindle_settings()
    assert built.profiles == ("djgallery.media:Photo", "djgallery.media:Shot")
    from django.db import connections

    assert built.database_url == database_url(connections["default"].settings_dict)
    assert "PASSWORD" not in built.database_url
    assert built.secret_key is not None and len(built.secret_key) == 64
    assert built.secret_key != dj.SECRET_KEY
    assert built.base_dir == Path(dj.BASE_DIR)
    settings.SECRET_KEY = "another-django-secret-" + "y" * 30  # type: ignore[attr-defined]
    assert rindle_settings().secret_key != built.secret_key
    settings.RINDLE = {**dj.RINDLE, "secret_key": "given"}  # type: ignore[attr-defined]
    assert rindle_settings().secret_key == "given"


@pytest.mark.parametrize(("value", "words"), [
    ({"database_url": "sqlite://"}, "uses the DATABASES connection"),
    ({"colour": "red"}, r"unknown key\(s\) colour"),
    ({"database": "other"}, "is not a DATABASES alias; configured: default"),
    ({"jobs": {"lease_seconds": "soon"}}, r"\[jobs\] lease_seconds must be a number"),
])
def test_bad_rindle_settings_name_the_key(settings: object, value: dict[str, object],
                                          words: str) -> None:
    from django.conf import settings as dj

    settings.RINDLE = {**dj.RINDLE, **value}  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=words):
        rindle_settings()


def test_rindle_must_be_a_dict(settings: object) -> None:
    settings.RINDLE = ["profiles"]  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="must be a dict"):
        rindle_settings()


@pytest.mark.django_db
def test_one_app_per_process_rebuilt_when_the_settings_change(settings: object) -> None:
    from django.conf import settings as dj

    first = conf.get_app()
    assert conf.get_app() is first
    settings.RINDLE = {**dj.RINDLE, "delivery": {"max_put_bytes": 1024}}  # type: ignore[attr-defined]
    second = conf.get_app()
    assert second is not first and second.settings.delivery.max_put_bytes == 1024
