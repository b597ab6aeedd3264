"""The plugin manager: default plugins plus everything in the ``rindle`` entry-point group.

Environment:

``RINDLE_DISABLE_PLUGIN_AUTOLOAD=1``
    load only the default (built-in) plugins, no entry points.
``RINDLE_LOAD_PLUGINS=a,b``
    an allowlist of entry-point names to load (empty string: none).
``RINDLE_TRACE_PLUGINS=1``
    print every hook call to stderr.

Nothing here imports a plugin module until a plugin manager is built:
:func:`plugin_entry_points` and :func:`command_entry_points` only read installed metadata,
which is how ``rindle --help`` lists plugin commands without importing boto3 and friends.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from rindle import hookspecs
from rindle.errors import PluginError, UnknownBackend

__all__ = [
    "COMMANDS_GROUP",
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "BackendRegistry",
    "PluginInfo",
    "RindlePluginManager",
    "command_entry_points",
    "list_plugins",
    "make_plugin_manager",
    "plugin_entry_points",
]

ENTRY_POINT_GROUP = "rindle"
#: Click commands a plugin distribution declares for ``rindle --help`` without importing its
#: plugin module: ``name = "package.cli:command"`` (see ``guides/plugins.md``).
COMMANDS_GROUP = "rindle.commands"

#: Built-in plugin modules, registered exactly like third-party plugins.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "rindle.default_plugins.local_storage",
    "rindle.default_plugins.image_probe",
    "rindle.default_plugins.image_processor",
    "rindle.default_plugins.inline_jobs",
)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class RindlePluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers which distribution provided each entry-point plugin."""

    def __init__(self) -> None:
        super().__init__("rindle")
        self.dist_versions: dict[str, tuple[str, str]] = {}


def plugin_entry_points(*, load_entrypoints: bool | None = None) -> list[metadata.EntryPoint]:
    """The ``rindle`` entry points a plugin manager would load, without importing any.

    ``load_entrypoints=None`` honours ``RINDLE_DISABLE_PLUGIN_AUTOLOAD``;
    ``RINDLE_LOAD_PLUGINS`` always applies. Duplicate names keep the first.
    """
    if load_entrypoints is None:
        load_entrypoints = not _env_flag("RINDLE_DISABLE_PLUGIN_AUTOLOAD")
    if not load_entrypoints:
        return []
    allow = os.environ.get("RINDLE_LOAD_PLUGINS")
    allowed = None if allow is None else {p.strip() for p in allow.split(",") if p.strip()}
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (allowed is None or ep.name in allowed) and ep.name not in found:
            found[ep.name] = ep
    return list(found.values())


def _dist_name(ep: metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return None if dist is None else str(dist.metadata["Name"])


def command_entry_points() -> dict[str, metadata.EntryPoint]:
    """Commands declared in the ``rindle.commands`` group, by command name, unimported.

    Only distributions with a ``rindle`` plugin that :func:`plugin_entry_points` would load
    count, so ``RINDLE_DISABLE_PLUGIN_AUTOLOAD`` and ``RINDLE_LOAD_PLUGINS`` hide their
    commands too. Duplicate names keep the first.
    """
    plugins = plugin_entry_points()
    if not plugins:
        return {}
    dists = {_dist_name(ep) for ep in plugins}
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=COMMANDS_GROUP):
        if _dist_name(ep) in dists and ep.name not in found:
            found[ep.name] = ep
    return found


def make_plugin_manager(*, load_entrypoints: bool | None = None) -> RindlePluginManager:
    """Build a fresh plugin manager with the default plugins and (optionally) entry points.

    ``load_entrypoints=None`` honours ``RINDLE_DISABLE_PLUGIN_AUTOLOAD``. Every registered
    implementation must match a hookspec: a misspelled hook fails here, at startup.
    """
    pm = RindlePluginManager()
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    for ep in plugin_entry_points(load_entrypoints=load_entrypoints):
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}. "
                f"Reinstall it, or set RINDLE_LOAD_PLUGINS to skip it."
            ) from exc
        pm.register(plugin, name=ep.name)
        dist = getattr(ep, "dist", None)
        if dist is not None:
            pm.dist_versions[ep.name] = (dist.metadata["Name"], dist.version)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"invalid plugin: {exc}") from exc
    if _env_flag("RINDLE_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: sys.stderr.write(msg))
        pm.enable_tracing()
    return pm


@dataclass
class PluginInfo:
    """What ``rindle plugins`` shows for one plugin."""

    name: str
    version: str | None
    hooks: list[str]
    default: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "version": self.version, "hooks": self.hooks,
                "default": self.default}


def list_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every registered plugin with its distribution version and implemented hooks."""
    from rindle import __version__

    versions = getattr(pm, "dist_versions", {})

    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        hooks = sorted(h.name for h in (pm.get_hookcallers(plugin) or []))
        default = name in DEFAULT_PLUGINS
        version = versions[name][1] if name in versions else (__version__ if default else None)
        out.append(PluginInfo(name=name, version=version, hooks=hooks, default=default))
    return out


@dataclass
class BackendRegistry:
    """Backend classes contributed through a ``register_*`` hook, by name."""

    kind: str
    base: type
    classes: dict[str, type] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)

    @classmethod
    def collect(cls, pm: pluggy.PluginManager, hook_name: str, kind: str, base: type
                ) -> BackendRegistry:
        """Call ``hook_name`` on every plugin and gather what each registers."""
        registry = cls(kind=kind, base=base)
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
            impl.function(register=registry.registrar(plugin_name))
        return registry

    def registrar(self, plugin_name: str) -> Callable[[str, type], None]:
        """The ``register`` callback handed to one plugin's hook implementation."""

        def register(name: str, klass: type) -> None:
            self.add(name, klass, plugin_name)

        return register

    def add(self, name: str, klass: type, plugin_name: str) -> None:
        """Record one backend; refuse non-subclasses and names already taken."""
        if not isinstance(klass, type) or not issubclass(klass, self.base):
            raise PluginError(
                f"plugin {plugin_name!r} registered {self.kind} backend {name!r} as {klass!r}, "
                f"which is not a subclass of {self.base.__module__}.{self.base.__qualname__}"
            )
        if name in self.classes:
            raise PluginError(
                f"{self.kind} backend {name!r} is registered by both "
                f"{self.owners[name]!r} and {plugin_name!r}; uninstall one of them"
            )
        self.classes[name] = klass
        self.owners[name] = plugin_name

    def get(self, name: str) -> type:
        """The class registered as ``name``; :class:`UnknownBackend` lists the alternatives."""
        try:
            return self.classes[name]
        except KeyError:
            raise UnknownBackend(self.kind, name, self.classes) from None
