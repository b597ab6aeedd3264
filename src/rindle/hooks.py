"""The media-pipeline hooks as typed calls: :class:`Hooks` and the dataclasses it returns.

Plugins answer ``rindle_probe``, ``rindle_analyze``, ``rindle_scan`` and
``rindle_transcode`` with plain mappings (see :mod:`rindle.hookspecs`); :class:`Hooks`
calls them and checks each answer once, where it arrives. A value of the wrong type, or a
missing required key, raises :class:`rindle.errors.PluginError` naming the hook and the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rindle.errors import PluginError

if TYPE_CHECKING:
    import pluggy

    from rindle.domain.models import Asset
    from rindle.domain.variants import VariantSpec

__all__ = ["Hooks", "ProbeResult", "Rendition", "ScanVerdict"]


@dataclass(frozen=True)
class ProbeResult:
    """What ``rindle_probe`` answered: the probe-owned fields (None when not given).

    ``answer`` is the plugin's mapping as returned, extra keys included; it is what
    ``rindle_analyze`` implementations receive as ``probe``.
    """

    kind: str | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    has_video_track: bool | None = None
    has_audio_track: bool | None = None
    answer: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Rendition:
    """What ``rindle_transcode`` answered: the output file and what is known about it.

    ``extension`` is the plugin's ``extension``, or the output file's suffix when it gave
    none (or an empty one).
    """

    path: Path
    content_type: str | None = None
    extension: str = ""
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class ScanVerdict:
    """One ``rindle_scan`` answer: ``verdict`` (``reject`` quarantines) and its ``reason``."""

    verdict: str
    reason: str | None = None


def _mapping(hook: str, answer: object) -> Mapping[str, Any]:
    if not isinstance(answer, Mapping):
        raise PluginError(f"{hook} must answer a mapping or None, got {type(answer).__name__}")
    return answer


def _get(hook: str, answer: Mapping[str, Any], key: str, types: tuple[type, ...],
         what: str) -> Any:
    value = answer.get(key)
    if value is not None and not isinstance(value, types):
        raise PluginError(f"{hook} answered {key!r} = {value!r} ({type(value).__name__}); "
                          f"{key!r} must be {what} or None")
    return value


def _require(hook: str, answer: Mapping[str, Any], key: str) -> None:
    if answer.get(key) is None:
        raise PluginError(f"{hook} answered without {key!r}, which is required")


def probe_result(answer: object) -> ProbeResult:
    """Check a ``rindle_probe`` answer and return it as a :class:`ProbeResult`.

    Every field is optional; ``kind`` must be a str, ``width``/``height``/``duration_ms``
    ints, the track flags bools. Raises :class:`PluginError` otherwise.
    """
    hook = "rindle_probe"
    raw = _mapping(hook, answer)
    ints = (int,)
    return ProbeResult(
        kind=_get(hook, raw, "kind", (str,), "a str"),
        width=_get(hook, raw, "width", ints, "an int"),
        height=_get(hook, raw, "height", ints, "an int"),
        duration_ms=_get(hook, raw, "duration_ms", ints, "an int"),
        has_video_track=_get(hook, raw, "has_video_track", (bool,), "a bool"),
        has_audio_track=_get(hook, raw, "has_audio_track", (bool,), "a bool"),
        answer=raw,
    )


def rendition(answer: object) -> Rendition:
    """Check a ``rindle_transcode`` answer and return it as a :class:`Rendition`.

    ``path`` (a str or ``os.PathLike``) is required; ``content_type`` and ``extension``
    must be strs, ``width``/``height``/``duration_ms`` ints. Raises :class:`PluginError`
    otherwise.
    """
    hook = "rindle_transcode"
    raw = _mapping(hook, answer)
    _require(hook, raw, "path")
    path = Path(_get(hook, raw, "path", (str, os.PathLike), "a str or a path"))
    extension = _get(hook, raw, "extension", (str,), "a str")
    return Rendition(
        path=path,
        content_type=_get(hook, raw, "content_type", (str,), "a str"),
        extension=extension or path.suffix,
        width=_get(hook, raw, "width", (int,), "an int"),
        height=_get(hook, raw, "height", (int,), "an int"),
        duration_ms=_get(hook, raw, "duration_ms", (int,), "an int"),
    )


def scan_verdict(answer: object) -> ScanVerdict | None:
    """Check one ``rindle_scan`` answer; None or an empty mapping is None.

    A non-empty answer requires a str ``verdict``; ``reason`` must be a str.
    Raises :class:`PluginError` otherwise.
    """
    hook = "rindle_scan"
    if answer is None:
        return None
    raw = _mapping(hook, answer)
    if not raw:
        return None
    _require(hook, raw, "verdict")
    return ScanVerdict(verdict=_get(hook, raw, "verdict", (str,), "a str"),
                       reason=_get(hook, raw, "reason", (str,), "a str"))


class Hooks:
    """Typed calls of the media-pipeline hooks of a plugin manager.

    Each call passes the plugins what :mod:`rindle.hookspecs` promises them and checks
    what they answer (:class:`PluginError` for a wrong type or a missing required key).
    Exceptions a plugin raises propagate unchanged.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm

    def probe(self, path: Path, mime: str) -> ProbeResult | None:
        """The first non-None ``rindle_probe`` answer, or None when no plugin answers."""
        answer = self._pm.hook.rindle_probe(path=path, mime=mime)
        return None if answer is None else probe_result(answer)

    def analyze(self, path: Path, asset: Asset, probe: ProbeResult | None) -> dict[str, Any]:
        """Every ``rindle_analyze`` answer merged, in call order (later keys win).

        The plugins receive ``probe.answer`` as ``probe`` (an empty mapping for None).
        """
        merged: dict[str, Any] = {}
        raw = probe.answer if probe is not None else {}
        for extra in self._pm.hook.rindle_analyze(path=path, asset=asset, probe=raw):
            if extra:
                merged.update(_mapping("rindle_analyze", extra))
        return merged

    def scan(self, path: Path, asset: Asset) -> ScanVerdict | None:
        """The first ``reject`` among the ``rindle_scan`` answers, or None to let it through."""
        for answer in self._pm.hook.rindle_scan(path=path, asset=asset):
            verdict = scan_verdict(answer)
            if verdict is not None and verdict.verdict == "reject":
                return verdict
        return None

    def transcode(self, source: Path, spec: VariantSpec, workdir: Path,
                  max_pixels: int | None) -> Rendition | None:
        """The first non-None ``rindle_transcode`` answer, or None when no plugin answers."""
        answer = self._pm.hook.rindle_transcode(source=source, spec=spec, workdir=workdir,
                                                max_pixels=max_pixels)
        return None if answer is None else rendition(answer)
