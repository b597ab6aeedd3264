"""A required storage setting that is missing is a ConfigError naming the table and the
key, never a TypeError from a constructor (Storage.from_settings, the local backend)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from click.testing import CliRunner
from PIL import Image

from rindle import Profile, Rindle, hookimpl
from rindle.cli import cli
from rindle.errors import ConfigError
from rindle.plugins import make_plugin_manager
from rindle.storage import BackendContext, ObjectInfo, Storage


class VaultStorage(Storage):
    """A backend relying on the default from_settings: two required keyword-only settings."""

    backend_name = "vault"
    setting_descriptions = {"vault": "the vault's name"}

    def __init__(self, *, name: str, vault: str, token: str, region: str = "eu") -> None:
        super().__init__(name=name)
        self.vault, self.token, self.region = vault, token, region

    def head(self, key: str) -> ObjectInfo:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def put(self, key: str, source: Path | BinaryIO, *, content_type: str | None = None
            ) -> ObjectInfo:
        raise NotImplementedError

    def download(self, key: str, dest: Path) -> Path:
        raise NotImplementedError

    def url(self, key: str, *, expires_in: int | None = None, disposition: str | None = None,
            content_type: str | None = None) -> str:
        raise NotImplementedError

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        raise NotImplementedError


class VaultPlugin:
    @hookimpl
    def register_storage_backends(self, register: Callable[[str, type], None]) -> None:
        register("vault", VaultStorage)


def context(tmp_path: Path) -> BackendContext:
    return BackendContext(secret_key="k" * 40, tmp_dir=tmp_path, base_dir=tmp_path)


def test_required_settings_are_the_parameters_without_defaults() -> None:
    assert VaultStorage.required_settings() == ["vault", "token"]
    assert VaultStorage.required_settings(supplied=["token"]) == ["vault"]


@pytest.mark.parametrize(("settings", "message"), [
    ({"token": "t"}, "[storages.media] needs 'vault' (the vault's name): the vault backend "
                     "cannot work without it; add it to that table in rindle.toml"),
    ({"vault": "v"}, "[storages.media] needs 'token': the vault backend"),
    ({}, "[storages.media] needs 'vault' (the vault's name) and 'token': "),
    ({"vault": "", "token": "t"}, "[storages.media] needs 'vault' (the vault's name)"),
    ({"vault": "v", "token": "t", "colour": "red"},
     "[storages.media]: unknown setting(s) 'colour' for the vault backend; allowed: region, "
     "token, vault"),
])
def test_the_default_from_settings_names_table_and_key(settings: dict[str, Any], message: str,
                                                       tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        VaultStorage.from_settings("media", settings, context(tmp_path))
    assert message in err.value.message
    assert err.value.code == "config_error" and "TypeError" not in err.value.message


def test_the_default_from_settings_still_builds_a_complete_table(tmp_path: Path) -> None:
    built = VaultStorage.from_settings("media", {"vault": "v", "token": "t"}, context(tmp_path))
    assert isinstance(built, VaultStorage) and built.region == "eu"


def test_through_the_app(tmp_path: Path) -> None:
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(VaultPlugin(), name="vault")
    app = Rindle(database_url="sqlite://", secret_key="k" * 40, plugin_manager=pm,
                 storages={"media": {"backend": "vault", "token": "t"}})
    with pytest.raises(ConfigError, match=r"^\[storages\.media\] needs 'vault' "):
        app.storage("media")
    checks = {c.name: c for c in app.ops.doctor().checks}
    assert checks["storage.media"].status == "error"
    assert "needs 'vault' (the vault's name)" in checks["storage.media"].message
    assert checks["storage.media"].fix == ("correct [storages.media] in rindle.toml as the "
                                           "message says")


# --- the local backend ------------------------------------------------------------------------

@pytest.mark.parametrize(("settings", "message"), [
    ({"root": ""}, "[storages.files] needs 'root' (the folder objects are stored in; a "
                   "relative path starts at the config file's folder)"),
    ({"base_url": ""}, "[storages.files] needs 'base_url' (the address where `rindle serve` "
                       "or the rindle.delivery.wsgi_app mount answers, e.g. "
                       "http://127.0.0.1:8765), not an empty string"),
])
def test_local_settings_that_cannot_be_empty(settings: dict[str, Any], message: str,
                                             tmp_path: Path) -> None:
    from rindle.storage.local import LocalStorage

    with pytest.raises(ConfigError) as err:
        LocalStorage.from_settings("files", settings, context(tmp_path))
    assert err.value.message.startswith(message)


def test_local_root_defaults_when_absent(tmp_path: Path) -> None:
    from rindle.storage.local import LocalStorage

    built = LocalStorage.from_settings("files", {}, context(tmp_path))
    assert isinstance(built, LocalStorage) and built.root == (tmp_path / "rindle-media").resolve()


class Scan(Profile):
    name = "scan"
    allow_mime = ("image/png",)


def test_the_cli_prints_one_line(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "rindle.toml"
    config.write_text(f"database_url = {json.dumps(db_url)}\n"
                      f'secret_key = "{"k" * 40}"\n'
                      f'profiles = ["{__name__}:Scan"]\n'
                      '[storages.default]\nbackend = "local"\nroot = ""\n', encoding="utf-8")
    image = tmp_path / "scan.png"
    out = io.BytesIO()
    Image.new("RGB", (2, 2)).save(out, format="PNG")
    image.write_bytes(out.getvalue())
    result = CliRunner().invoke(cli, ["--config", str(config), "upload", "--profile", "scan",
                                      str(image)])
    assert result.exit_code == 1, result.output
    assert result.stderr == ("Error: [storages.default] needs 'root' (the folder objects are "
                             "stored in; a relative path starts at the config file's folder): "
                             "the local backend cannot work without it; add it to that table "
                             "in rindle.toml [config_error]\n")
