"""Variant FSM: the lifecycle edges plus the purge edges.

Reference edges (:data:`REFERENCE_EDGES`)::

    planned    -> queued, cancelled
    queued     -> processing, cancelled
    processing -> ready, failed, cancelled
    ready      -> stale, missing, purged
    stale      -> queued, purged
    missing    -> queued, purged
    failed     -> queued, purged
    cancelled  -> queued
    purged     -> (terminal)

Purge additions (:data:`PURGE_EDGES`). Purging an asset retires every variant it has,
whatever point of its life the variant reached, so every non-terminal state may move to
``purged``::

    planned, queued, processing, cancelled -> purged

A worker still producing a variant that was purged under it then loses its guarded
``processing -> ready`` write instead of resurrecting the row.

Cancel addition (:data:`CANCEL_EDGES`). ``app.cancel_processing`` cancels a variant whose
retry is still pending, besides planned, queued and processing ones::

    failed -> cancelled

Regeneration needs no new
edge: drifted ``ready`` rows go ``stale`` and ``stale``/``missing`` rows are ``queued`` again
(reference edges). ``purged`` stays terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from rindle.domain.fsm.base import Edges, StateMachine, merge_edges
from rindle.domain.models import Variant

__all__ = [
    "CANCEL_EDGES",
    "EDGES",
    "MACHINE",
    "PURGE_EDGES",
    "REFERENCE_EDGES",
    "can_transition",
    "check",
    "transition",
    "transition_from_current",
    "transition_many",
]

REFERENCE_EDGES: Final[Mapping[str, frozenset[str]]] = {
    "planned": frozenset({"queued", "cancelled"}),
    "queued": frozenset({"processing", "cancelled"}),
    "processing": frozenset({"ready", "failed", "cancelled"}),
    "ready": frozenset({"stale", "missing", "purged"}),
    "stale": frozenset({"queued", "purged"}),
    "missing": frozenset({"queued", "purged"}),
    "failed": frozenset({"queued", "purged"}),
    "cancelled": frozenset({"queued"}),
    "purged": frozenset(),
}

PURGE_EDGES: Final[Mapping[str, frozenset[str]]] = {
    state: frozenset({"purged"}) for state in ("planned", "queued", "processing", "cancelled")
}

CANCEL_EDGES: Final[Mapping[str, frozenset[str]]] = {"failed": frozenset({"cancelled"})}

EDGES: Final[Edges] = merge_edges(REFERENCE_EDGES, PURGE_EDGES, CANCEL_EDGES)

MACHINE: Final = StateMachine("variant", Variant, EDGES, initial="planned")

can_transition = MACHINE.can_transition
check = MACHINE.check
transition = MACHINE.transition
transition_from_current = MACHINE.transition_from_current
transition_many = MACHINE.transition_many
