"""Asset FSM: the lifecycle edges plus the ones that let every write go through it.

Reference edges (:data:`REFERENCE_EDGES`)::

    staged      -> validating
    validating  -> analyzing
    analyzing   -> promoting, quarantined
    promoting   -> available
    available   -> processing, transcoding, quarantined
    processing  -> ready, quarantined
    transcoding -> ready, degraded, quarantined
    ready       -> degraded, deleted
    degraded    -> quarantined, deleted
    quarantined -> deleted
    deleted     -> (terminal)

Aggregate additions (:data:`AGGREGATE_EDGES`). The reference's aggregate recompute writes
``ready``/``degraded``/``transcoding`` directly; rindle routes it through this FSM instead, so
every move the recompute can make from a post-promotion state is an edge::

    available   -> ready, degraded            (variants finished before the first recompute)
    processing  -> degraded, transcoding
    ready       -> transcoding                (a variant was regenerated or requeued)
    degraded    -> ready, transcoding         (a retry succeeded / a failed variant requeued)

Deletion additions (:data:`DELETE_EDGES`). Detaching an asset's last attachment marks it
``deleted`` from whatever live state it is in, so every non-terminal state may
move to ``deleted``::

    staged, validating, analyzing, promoting, available, processing, transcoding -> deleted

``deleted`` stays terminal; ``quarantined`` still only leads to ``deleted``.

Trust-gate addition (:data:`SECURITY_EDGES`). A ready asset whose stored original no longer
matches the identity pinned at verify is quarantined (``original_changed``) like an
available one::

    ready       -> quarantined
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from rindle.domain.fsm.base import Edges, StateMachine, merge_edges
from rindle.domain.models import Asset

__all__ = [
    "AGGREGATE_EDGES",
    "AGGREGATE_STATES",
    "BEFORE_PROMOTION",
    "DELETE_EDGES",
    "EDGES",
    "MACHINE",
    "REFERENCE_EDGES",
    "SECURITY_EDGES",
    "can_transition",
    "check",
    "transition",
    "transition_from_current",
    "transition_many",
]

REFERENCE_EDGES: Final[Mapping[str, frozenset[str]]] = {
    "staged": frozenset({"validating"}),
    "validating": frozenset({"analyzing"}),
    "analyzing": frozenset({"promoting", "quarantined"}),
    "promoting": frozenset({"available"}),
    "available": frozenset({"processing", "transcoding", "quarantined"}),
    "processing": frozenset({"ready", "quarantined"}),
    "transcoding": frozenset({"ready", "degraded", "quarantined"}),
    "ready": frozenset({"degraded", "deleted"}),
    "degraded": frozenset({"quarantined", "deleted"}),
    "quarantined": frozenset({"deleted"}),
    "deleted": frozenset(),
}

#: States before promotion finished: the bytes have not passed the trust gate yet (nothing
#: is delivered), and an Asset object read then may be stale by now.
BEFORE_PROMOTION: Final = frozenset({"staged", "validating", "analyzing", "promoting"})

#: States the aggregate recompute acts on (and moves among).
AGGREGATE_STATES: Final = frozenset({"available", "processing", "transcoding", "ready", "degraded"})

AGGREGATE_EDGES: Final[Mapping[str, frozenset[str]]] = {
    "available": frozenset({"ready", "degraded"}),
    "processing": frozenset({"degraded", "transcoding"}),
    "ready": frozenset({"transcoding"}),
    "degraded": frozenset({"ready", "transcoding"}),
}

DELETE_EDGES: Final[Mapping[str, frozenset[str]]] = {
    state: frozenset({"deleted"})
    for state in ("staged", "validating", "analyzing", "promoting", "available", "processing",
                  "transcoding")
}

SECURITY_EDGES: Final[Mapping[str, frozenset[str]]] = {
    "ready": frozenset({"quarantined"}),
}

EDGES: Final[Edges] = merge_edges(REFERENCE_EDGES, AGGREGATE_EDGES, DELETE_EDGES,
                                  SECURITY_EDGES)

MACHINE: Final = StateMachine("asset", Asset, EDGES, initial="staged")

can_transition = MACHINE.can_transition
check = MACHINE.check
transition = MACHINE.transition
transition_from_current = MACHINE.transition_from_current
transition_many = MACHINE.transition_many
