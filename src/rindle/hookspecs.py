"""Every hook a rindle plugin can implement.

Plugins are modules or objects whose functions are decorated with :data:`rindle.hookimpl`
and are found through the ``rindle`` entry-point group::

    [project.entry-points.rindle]
    s3 = "rindle_s3.plugin"

Hooks are always called with keyword arguments, so an implementation may accept any
subset of a hook's parameters. Parameters are only ever added, never renamed.
Built-in behaviour (local storage, the Pillow image probe and processor) is registered
through these same hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from rindle.context import AppContext
    from rindle.domain.models import Asset
    from rindle.domain.variants import VariantSpec

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("rindle")
hookimpl = pluggy.HookimplMarker("rindle")


# --- backend registration --------------------------------------------------------------


@hookspec
def register_storage_backends(register: Callable[[str, type], None]) -> None:
    """Register storage backend classes by the name used in ``[storages.NAME] backend = ...``.

    :param register: call ``register("s3", S3Storage)``; the class must subclass
        :class:`rindle.storage.Storage`. A name registered twice raises
        :class:`rindle.errors.PluginError` naming both plugins, because names are stored
        in configuration and must mean one thing.
    :returns: nothing; results are collected through ``register``.

    Each configured storage is built once, at first use, as
    ``S3Storage.from_settings(name, settings, context)``: ``name`` is the ``NAME`` of
    ``[storages.NAME]``, ``settings`` that table minus ``backend``, and ``context`` a
    :class:`rindle.storage.BackendContext` (the app's ``secret_key``, ``tmp_dir`` and
    ``base_dir``). The inherited :meth:`rindle.storage.Storage.from_settings` checks the
    keys against the constructor and calls ``S3Storage(name=name, **settings)``; override it
    to build the instance another way.
    """


@hookspec
def register_streaming_providers(register: Callable[[str, type], None]) -> None:
    """Register streaming provider classes by the name used in ``[streaming.NAME]``.

    :param register: call ``register("mux", MuxProvider)``; the class must subclass
        :class:`rindle.streaming.Provider`. Duplicate names raise ``PluginError``.
    :returns: nothing.
    """


@hookspec
def register_executors(register: Callable[[str, type], None]) -> None:
    """Register job executor classes by the name used in ``[jobs] executor = ...``.

    :param register: call ``register("celery", CeleryExecutor)``; the class must subclass
        :class:`rindle.jobs.Executor`. Duplicate names raise ``PluginError``; ``"worker"``
        (rindle's own ``rindle worker``) is taken.
    :returns: nothing.

    The app builds the selected executor once, as ``CeleryExecutor(app, options)`` with
    the ``[jobs.executor_options]`` table, and hands it every job a transaction enqueued
    once that commits (``publish``); the executor's task runs each one with
    :func:`rindle.jobs.run_job`, and ``rindle relay`` publishes again what was lost.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``rindle`` command line.

    :param cli: the root ``rindle`` click group; call ``cli.add_command(...)``.
    :returns: nothing.

    Called only when a typed command name is neither built in nor declared in the
    ``rindle.commands`` entry-point group (every plugin is loaded then), so these commands
    run but ``rindle --help`` does not list them; declare a command there to be listed
    without importing the plugin (``guides/plugins.md``).
    """


# --- media pipeline -----------------------------------------------------------------------


@hookspec(firstresult=True)
def rindle_probe(path: Path, mime: str) -> Mapping[str, Any] | None:
    """Probe a local file and return its probe-owned fields, or None if this plugin can't.

    :param path: a local copy of the stored original.
    :param mime: the MIME type sniffed from the file's bytes.
    :returns: a mapping with any of ``kind`` (``image``/``video``/``audio``), ``width``,
        ``height``, ``duration_ms``, ``has_video_track``, ``has_audio_track``; or None to
        let another plugin answer.

    Stops at first non-None result, see firstresult.
    """


@hookspec
def rindle_analyze(path: Path, asset: Asset, probe: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Return extra metadata for an asset; every plugin's answer is merged into ``asset.meta``.

    :param path: a local copy of the stored original.
    :param asset: the asset row (read it, do not write it).
    :param probe: what :func:`rindle_probe` answered.
    :returns: a JSON-serialisable mapping, or None for nothing to add.
    """


@hookspec(firstresult=True)
def rindle_transcode(source: Path, spec: VariantSpec, workdir: Path,
                     max_pixels: int | None) -> Mapping[str, Any] | None:
    """Produce one variant's output file from ``source``, or None if ``spec`` is not yours.

    :param source: a local copy of the original.
    :param spec: the validated variant spec; answer only the ``spec.kind`` you understand.
    :param workdir: a private directory for this run; write the output inside it.
    :param max_pixels: the profile's ``max_pixels`` (None: it sets none). The upload gate
        already refused larger originals; a processor that decodes pixels checks the
        source's header against it again before decoding (the built-in image processor
        raises ``ProcessingError`` code ``max_pixels_exceeded``, permanent). Added after
        the first three: an implementation may leave it out.
    :returns: a mapping with ``path`` (the output file) and ``content_type``, and any of
        ``width``, ``height``, ``duration_ms``, ``extension``; or None.

    Stops at first non-None result, see firstresult.
    """


@hookspec
def rindle_scan(path: Path, asset: Asset) -> Mapping[str, Any] | None:
    """Scan an original before promotion (antivirus, content policy).

    :param path: a local copy of the stored original.
    :param asset: the asset row.
    :returns: ``{"verdict": "reject", "reason": "..."}`` to quarantine the asset,
        ``{"verdict": "accept"}`` or None to let it through. Any rejection wins.
    """


# --- operations and telemetry --------------------------------------------------------------


@hookspec
def rindle_doctor_checks(app: AppContext) -> list[Any] | None:
    """Return doctor checks contributed by this plugin.

    :param app: the configured app's frozen :class:`rindle.context.Context`, typed as the
        :class:`rindle.context.AppContext` protocol of what a plugin may use from it.
    :returns: a list of ``rindle.ops.doctor.Check`` results (name, status ``ok``/``warn``/
        ``error``, message, fix), or None.
    """


@hookspec
def rindle_event(event: str, measurements: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Receive every telemetry event rindle emits.

    :param event: dotted event name, e.g. ``rindle.asset.state_change``.
    :param measurements: numeric measurements.
    :param metadata: low-cardinality metadata (ids are redacted).
    :returns: nothing. An exception is logged and never reaches the caller.
    """
