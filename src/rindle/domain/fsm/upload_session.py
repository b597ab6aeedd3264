"""Upload-session FSM: the edges below and no others.

Edges (:data:`EDGES`)::

    initialized -> signed, aborted, expired, failed
    signed      -> resuming, uploading, uploaded, verifying, aborted, expired, failed
    resuming    -> uploading, aborted, expired, failed
    uploading   -> uploaded, verifying, aborted, expired, failed
    uploaded    -> verifying
    verifying   -> completed, failed
    completed, aborted, expired, failed -> (terminal)

``initialized -> verifying`` is deliberately not an edge: a presigned-PUT session must be
signed before it can be verified. Persisted transitions emit
``rindle.upload_session.state_change`` like the other entities (the reference emits nothing
here; rindle keeps one event shape for all four FSMs), with the asset's profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from rindle.domain.fsm.base import Edges, StateMachine, merge_edges
from rindle.domain.models import UploadSession

__all__ = [
    "EDGES",
    "MACHINE",
    "REFERENCE_EDGES",
    "can_transition",
    "check",
    "transition",
    "transition_from_current",
    "transition_many",
]

_GIVE_UP = frozenset({"aborted", "expired", "failed"})

REFERENCE_EDGES: Final[Mapping[str, frozenset[str]]] = {
    "initialized": frozenset({"signed"}) | _GIVE_UP,
    "signed": frozenset({"resuming", "uploading", "uploaded", "verifying"}) | _GIVE_UP,
    "resuming": frozenset({"uploading"}) | _GIVE_UP,
    "uploading": frozenset({"uploaded", "verifying"}) | _GIVE_UP,
    "uploaded": frozenset({"verifying"}),
    "verifying": frozenset({"completed", "failed"}),
    "completed": frozenset(),
    "aborted": frozenset(),
    "expired": frozenset(),
    "failed": frozenset(),
}

EDGES: Final[Edges] = merge_edges(REFERENCE_EDGES)

MACHINE: Final = StateMachine("upload_session", UploadSession, EDGES, initial="initialized")

can_transition = MACHINE.can_transition
check = MACHINE.check
transition = MACHINE.transition
transition_from_current = MACHINE.transition_from_current
transition_many = MACHINE.transition_many
