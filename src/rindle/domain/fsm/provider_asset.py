"""Provider-asset FSM: the edges below and no others.

Edges (:data:`EDGES`)::

    pending    -> uploading, errored, deleted
    uploading  -> processing, errored, deleted
    processing -> ready, errored
    ready      -> errored, deleted
    errored    -> deleted, processing      (re-ingest re-entry)
    deleted    -> (terminal)

Persisted transitions emit ``rindle.provider_asset.state_change`` whose metadata also
carries ``provider`` (the row's ``provider_name``, default ``"unknown"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from rindle.domain.fsm.base import Edges, StateMachine, merge_edges
from rindle.domain.models import ProviderAsset

__all__ = [
    "EDGES",
    "MACHINE",
    "REFERENCE_EDGES",
    "allowed_transitions",
    "can_transition",
    "check",
    "transition",
    "transition_from_current",
    "transition_many",
]

REFERENCE_EDGES: Final[Mapping[str, frozenset[str]]] = {
    "pending": frozenset({"uploading", "errored", "deleted"}),
    "uploading": frozenset({"processing", "errored", "deleted"}),
    "processing": frozenset({"ready", "errored"}),
    "ready": frozenset({"errored", "deleted"}),
    "errored": frozenset({"deleted", "processing"}),
    "deleted": frozenset(),
}

EDGES: Final[Edges] = merge_edges(REFERENCE_EDGES)

MACHINE: Final = StateMachine(
    "provider_asset",
    ProviderAsset,
    EDGES,
    initial="pending",
    metadata_columns={"provider": "provider_name"},
)

can_transition = MACHINE.can_transition
check = MACHINE.check
transition = MACHINE.transition
transition_from_current = MACHINE.transition_from_current
transition_many = MACHINE.transition_many


def allowed_transitions() -> Edges:
    """The whole table, for introspection (read-only)."""
    return EDGES
