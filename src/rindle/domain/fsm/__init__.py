"""The four entity state machines and their guarded persistence.

One module per entity (:mod:`.asset`, :mod:`.variant`, :mod:`.upload_session`,
:mod:`.provider_asset`), each declaring its transition table as data and exposing
``can_transition``, ``check``, ``transition`` and ``transition_from_current``; all share
:class:`~rindle.domain.fsm.base.StateMachine`. Every state write outside an insert goes
through one of them::

    from rindle.domain.fsm import variant as variant_fsm

    with db.transaction() as session:
        variant_fsm.transition(session, variant_id, "processing", "failed",
                               values={"error_reason": "unsupported_codec"},
                               telemetry=app.telemetry)
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from rindle.domain.fsm import asset, provider_asset, upload_session, variant
from rindle.domain.fsm.base import Edges, StateMachine, Transition, merge_edges

__all__ = [
    "MACHINES",
    "Edges",
    "StateMachine",
    "Transition",
    "asset",
    "merge_edges",
    "provider_asset",
    "upload_session",
    "variant",
]

#: Every machine by entity name (``"asset"``, ``"variant"``, ...).
MACHINES: Final[Mapping[str, StateMachine]] = MappingProxyType(
    {m.entity: m for m in (asset.MACHINE, variant.MACHINE, upload_session.MACHINE,
                           provider_asset.MACHINE)}
)
