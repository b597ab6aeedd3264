"""The plugin manager: defaults, entry points, register_* hooks, telemetry fan-out, docs."""

from __future__ import annotations

import inspect
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rindle import Rindle, hookspecs
from rindle.errors import PluginError
from rindle.hookspecs import hookimpl
from rindle.plugins import BackendRegistry, list_plugins, make_plugin_manager
from rindle.storage import Storage
from rindle.storage.local import LocalStorage

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if inspect.isfunction(fn) and hasattr(fn, "rindle_spec"))


@pytest.fixture
def entrypoint_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real installed distribution (dist-info on sys.path) exposing a `rindle` entry point."""
    pkg = tmp_path / "rindle_fakestore"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from rindle.hookspecs import hookimpl
        from rindle.storage.local import LocalStorage

        class FakeStore(LocalStorage):
            backend_name = "fakestore"

        @hookimpl
        def register_storage_backends(register):
            register("fakestore", FakeStore)
    """))
    dist = tmp_path / "rindle_fakestore-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rindle-fakestore\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[rindle]\nfakestore = rindle_fakestore\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("RINDLE_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    yield "fakestore"
    sys.modules.pop("rindle_fakestore", None)


def test_default_plugins_register_through_the_same_hooks() -> None:
    pm = make_plugin_manager(load_entrypoints=False)
    registry = BackendRegistry.collect(pm, "register_storage_backends", "storage", Storage)
    assert registry.classes["local"] is LocalStorage
    assert registry.owners["local"] == "rindle.default_plugins.local_storage"


def test_entry_points_are_discovered_and_listed(entrypoint_plugin: str, tmp_path: Path) -> None:
    pm = make_plugin_manager()
    infos = {i.name: i for i in list_plugins(pm)}
    assert infos["fakestore"].version == "1.2.3"
    assert infos["fakestore"].hooks == ["register_storage_backends"]
    app = Rindle(database_url=f"sqlite:///{tmp_path}/x.db", secret_key="s",
                 storages={"default": {"backend": "fakestore", "root": str(tmp_path)}},
                 plugin_manager=pm)
    assert app.storage().backend_name == "fakestore"


def test_autoload_can_be_disabled_or_allowlisted(entrypoint_plugin: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINDLE_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert make_plugin_manager().get_plugin("fakestore") is None
    monkeypatch.delenv("RINDLE_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("RINDLE_LOAD_PLUGINS", "something-else")
    assert make_plugin_manager().get_plugin("fakestore") is None
    monkeypatch.setenv("RINDLE_LOAD_PLUGINS", "fakestore")
    assert make_plugin_manager().get_plugin("fakestore") is not None


class _Duplicate:
    @hookimpl
    def register_storage_backends(self, register: Any) -> None:
        register("local", LocalStorage)


class _NotAStorage:
    @hookimpl
    def register_storage_backends(self, register: Any) -> None:
        register("weird", dict)


class _Typo:
    @hookimpl
    def register_storage_backend(self, register: Any) -> None:  # missing "s"
        register("x", LocalStorage)


def test_register_refuses_duplicates_and_wrong_classes() -> None:
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(_Duplicate(), name="dup")
    dup = r"both 'rindle\.default_plugins\.local_storage' and 'dup'"
    with pytest.raises(PluginError, match=dup):
        BackendRegistry.collect(pm, "register_storage_backends", "storage", Storage)
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(_NotAStorage(), name="weird")
    with pytest.raises(PluginError, match="not a subclass"):
        BackendRegistry.collect(pm, "register_storage_backends", "storage", Storage)


def test_misspelled_hook_fails_at_startup() -> None:
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(_Typo(), name="typo")
    import pluggy

    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()


class _Listener:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    @hookimpl
    def rindle_event(self, event: str, measurements: dict[str, Any],
                     metadata: dict[str, Any]) -> None:
        self.events.append((event, measurements, metadata))


def test_telemetry_reaches_attached_handlers_and_the_hook(tmp_path: Path) -> None:
    pm = make_plugin_manager(load_entrypoints=False)
    listener = _Listener()
    pm.register(listener, name="listener")
    app = Rindle(database_url=f"sqlite:///{tmp_path}/x.db", secret_key="s", plugin_manager=pm)
    seen: list[str] = []

    def broken(*_: Any) -> None:
        raise RuntimeError("handler bug")

    app.telemetry.attach(broken)  # a failing handler never breaks the caller
    detach = app.telemetry.attach(lambda e, m, md: seen.append(e))
    app.telemetry.emit("rindle.test.event", {"n": 1}, {"profile": "p"})
    detach()
    app.telemetry.emit("rindle.test.after", {}, {})
    assert seen == ["rindle.test.event"]
    assert [e for e, _, _ in listener.events] == ["rindle.test.event", "rindle.test.after"]
    assert listener.events[0][1:] == ({"n": 1}, {"profile": "p"})


def test_redact_id() -> None:
    from rindle.telemetry import redact_id

    assert redact_id("abcdef123456") == "...3456"
    assert redact_id("ab") == "...redacted"
    assert redact_id(None) is None


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature(hook: str) -> None:
    doc = (ROOT / "guides" / "plugins.md").read_text(encoding="utf-8")
    sig = inspect.signature(getattr(hookspecs, hook))
    params = ", ".join(sig.parameters)
    assert f"### `{hook}({params})`" in doc, f"guides/plugins.md lacks a heading for {hook}"
    assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring"
