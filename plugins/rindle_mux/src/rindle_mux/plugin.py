"""The ``rindle`` entry point of rindle-mux: registers provider ``mux`` and its doctor checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rindle import hookimpl
from rindle_mux.provider import MuxProvider

if TYPE_CHECKING:
    from rindle import Rindle


@hookimpl
def register_streaming_providers(register: Callable[[str, type], None]) -> None:
    """Provide ``[streaming.NAME]`` tables with ``backend = "mux"`` (or named ``mux``)."""
    register("mux", MuxProvider)


@hookimpl
def rindle_doctor_checks(app: Rindle) -> list[Any]:
    """The streaming doctor checks for every Mux provider a profile streams with;
    one ``ok`` line when no profile streams through Mux."""
    from rindle.ops.doctor import Check

    streaming = app.streaming
    used = set(streaming.streaming_profiles().values())
    names = sorted(n for n, cfg in streaming.configs.items()
                   if n in used and issubclass(streaming.registry.get(cfg.backend), MuxProvider))
    if not names:
        return [Check("streaming", "ok", "No streaming-enabled profiles discovered.",
                      component="rindle-mux")]
    out: list[Any] = []
    for name in names:
        out.extend(streaming.provider(name).doctor_checks())
    return out
