"""Asset aggregate recompute, written through the asset FSM.

An asset's state after promotion summarises its variants:

1. no variants (``purged`` ones are ignored) -> nothing to do;
2. every variant ``ready`` -> ``ready``;
3. else any variant ``failed`` or ``cancelled`` -> ``degraded``;
4. else -> ``transcoding`` (something is planned, queued, processing, stale or missing).

Unlike the reference, the write is a guarded asset-FSM transition (the aggregate edges live
in :mod:`rindle.domain.fsm.asset`) and emits ``rindle.asset.state_change``. The asset row is
locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises writers) before the
variants are read, so two workers finishing sibling variants at the same time cannot both
decide from a stale view: the second waits for the first to commit and sees its variant.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from rindle.domain.fsm import asset as asset_fsm
from rindle.domain.models import Asset, Variant, table_of
from rindle.errors import NotFound
from rindle.telemetry import Telemetry

__all__ = ["IGNORED_VARIANT_STATES", "decide", "recompute"]

#: Variant states that do not count towards the aggregate.
IGNORED_VARIANT_STATES = frozenset({"purged"})

_ASSETS: Table = table_of(Asset)
_VARIANTS: Table = table_of(Variant)


def decide(variant_states: Iterable[str]) -> str | None:
    """The asset state the variants call for, or None when there are no (unpurged) variants."""
    states = [s for s in variant_states if s not in IGNORED_VARIANT_STATES]
    if not states:
        return None
    if all(s == "ready" for s in states):
        return "ready"
    if any(s in ("failed", "cancelled") for s in states):
        return "degraded"
    return "transcoding"


def recompute(
    session: Session, asset_id: uuid.UUID, *, telemetry: Telemetry | None = None
) -> str | None:
    """Bring the asset's state in line with its variants inside the caller's transaction.

    Acts only when the asset is in one of ``available``, ``processing``, ``transcoding``,
    ``ready`` or ``degraded`` (earlier states belong to promotion, later ones are final).
    Returns the state written, or None when nothing changed. Raises :class:`NotFound` when
    the asset does not exist.
    """
    if session.autoflush:
        session.flush()
    row = session.execute(
        select(_ASSETS.c.state, _ASSETS.c.profile)
        .where(_ASSETS.c.id == asset_id)
        # FOR NO KEY UPDATE on PostgreSQL: it serialises recomputes of one asset as FOR
        # UPDATE would, but does not wait for the FOR KEY SHARE locks that a concurrent
        # variant job's child-row inserts (processing runs) hold on the asset; FOR UPDATE
        # there deadlocked two variant jobs of one asset finishing at once
        .with_for_update(key_share=True)
    ).one_or_none()
    if row is None:
        raise NotFound("asset", asset_id)
    current, profile = row
    if current not in asset_fsm.AGGREGATE_STATES:
        return None
    variant_states = session.execute(
        select(_VARIANTS.c.state).where(_VARIANTS.c.asset_id == asset_id)
    ).scalars()
    target = decide(variant_states)
    if target is None or target == current:
        return None
    asset_fsm.transition(session, asset_id, current, target, telemetry=telemetry, profile=profile)
    return target
