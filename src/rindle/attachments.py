"""Attaching, detaching and reordering assets: the service that changes which owner's
slot holds what.

A slot is single (one asset; attaching replaces it) or a collection (an ordered list;
attaching inserts). Replacing or detaching the last attachment of an asset marks it
``deleted`` and queues its purge in the same transaction, so there is never a deleted
asset without a purge. Every write to one owner's slot first takes that slot's lock
(a PostgreSQL transaction-scoped advisory lock; SQLite serialises writers already), so
concurrent writers of one collection queue up instead of colliding on a position; the
unique indexes on (owner, slot, position) and (owner, slot, asset) back that up. The
owner type and the rule of which assets can be attached live in
:mod:`rindle.domain.attachments`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from rindle.domain.attachments import ATTACHABLE, Owner, check_slot, to_owner
from rindle.domain.fsm import asset as asset_fsm
from rindle.domain.models import Asset, Attachment
from rindle.errors import InvalidTransition, NotFound, UsageError
from rindle.ids import parse_id
from rindle.jobs.kinds import PURGE, purge_unique_key

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from rindle.context import AppContext

__all__ = ["attach", "detach", "release", "reorder"]

#: First key of the two-key advisory locks that serialise writers of one owner's slot
#: (the two-key space is apart from the one-key lock ``rindle migrate`` takes).
SLOT_LOCK_CLASS = 0x524E


def release(app: AppContext, s: Session, asset_id: uuid.UUID) -> bool:
    """If nothing else attaches ``asset_id``, mark it deleted and queue its purge in ``s``.

    Returns True when the purge was queued; False when the asset is still attached
    elsewhere, is gone, or cannot move to ``deleted``.
    """
    others = s.scalar(select(func.count()).select_from(Attachment)
                      .where(Attachment.asset_id == asset_id))
    if others:
        return False
    asset = s.get(Asset, asset_id)
    if asset is None:
        return False
    if asset.state != "deleted":
        try:
            asset_fsm.transition(s, asset_id, asset.state, "deleted",
                                 telemetry=app.telemetry, profile=asset.profile)
        except InvalidTransition:
            return False
    app.jobs.enqueue(s, PURGE, {"asset_id": str(asset_id)}, unique_key=purge_unique_key(asset_id))
    return True


def _slot_filter(who: Owner, slot: str) -> tuple[Any, ...]:
    return (Attachment.owner_type == who.type, Attachment.owner_id == who.id,
            Attachment.slot == slot)


def _lock_slot(s: Session, who: Owner, slot: str) -> list[Attachment]:
    """Take ``owner``'s ``slot`` lock until the transaction ends; its rows in position order.

    PostgreSQL: ``pg_advisory_xact_lock(SLOT_LOCK_CLASS, hashtext(owner and slot))``, which
    also covers an empty slot (a row lock would not). SQLite: the transaction already
    holds the database's write lock (``BEGIN IMMEDIATE``).
    """
    if s.get_bind().dialect.name == "postgresql":
        key = f"{len(who.type)}:{who.type}{len(who.id)}:{who.id}{slot}"
        s.execute(text("SELECT pg_advisory_xact_lock(:c, hashtext(:k))"),
                  {"c": SLOT_LOCK_CLASS, "k": key})
    return list(s.scalars(select(Attachment).where(*_slot_filter(who, slot))
                          .order_by(Attachment.position)))


def _park(s: Session, who: Owner, slot: str, *, from_position: int = 0) -> None:
    """Move the slot's rows at ``from_position`` and after to distinct negative positions
    (``p -> -p - 1``), clearing the way for the next write under the unique index."""
    s.execute(update(Attachment).where(*_slot_filter(who, slot),
                                       Attachment.position >= from_position)
              .values(position=-Attachment.position - 1)
              .execution_options(synchronize_session=False))


def _shift(s: Session, who: Owner, slot: str, from_position: int, delta: int) -> None:
    """Add ``delta`` (+1 or -1) to every position at ``from_position`` and after.

    Two statements (park, then unpark with the delta), since a unique index is checked row
    by row and ``position = position + 1`` would collide half-way.
    """
    _park(s, who, slot, from_position=from_position)
    s.execute(update(Attachment).where(*_slot_filter(who, slot), Attachment.position < 0)
              .values(position=-Attachment.position - 1 + delta)
              .execution_options(synchronize_session=False))


def _write_order(s: Session, who: Owner, slot: str, rows: list[Attachment],
                 order: list[uuid.UUID]) -> None:
    """Give the slot's assets (``rows``, all of them) the positions ``0 .. n-1`` in
    ``order``; the loaded ``rows`` show their new positions."""
    places = {aid: i for i, aid in enumerate(order)}
    _park(s, who, slot)
    s.execute(update(Attachment).where(*_slot_filter(who, slot))
              .values(position=case(places, value=Attachment.asset_id))
              .execution_options(synchronize_session=False))
    for row in rows:
        set_committed_value(row, "position", places[row.asset_id])


def _is_collection(app: AppContext, rows: list[Attachment], asked: bool | None, slot: str,
                   asset: Asset) -> bool:
    """Whether the slot is a collection: what its rows say once it holds something (an
    explicit ``asked`` must agree), else ``asked``, else the asset's profile."""
    if rows:
        held = rows[0].collection
        if asked is not None and asked != held:
            if held:
                raise UsageError(
                    f"slot {slot!r} holds a collection; attach with collection=True (or "
                    "leave it out), or detach its assets first", code="slot_is_collection")
            raise UsageError(f"slot {slot!r} holds a single asset; attach with "
                             "collection=False (or leave it out), or detach it first",
                             code="slot_is_single")
        return held
    if asked is not None:
        return asked
    profile = app.profiles.get(asset.profile)
    return bool(profile is not None and profile.collection)


def _check_position(position: int | None) -> None:
    if position is not None and (isinstance(position, bool) or not isinstance(position, int)):
        raise UsageError(f"position must be an integer, got {position!r}",
                         code="invalid_position")


def _out_of_range(position: int, top: int, slot: str, *, moving: bool = False) -> UsageError:
    hint = ("an asset the collection holds moves within it" if moving
            else f"{top} appends, as leaving position out does")
    return UsageError(f"position {position} is outside 0..{top} for collection {slot!r}; "
                      f"use 0..{top} ({hint})", code="position_out_of_range")


def attach(app: AppContext, asset_id: uuid.UUID | str, owner: Owner | tuple[str, object],
           slot: str, *, position: int | None = None, collection: bool | None = None
           ) -> Attachment:
    """Put ``asset_id`` in ``owner``'s ``slot``; returns its attachment row.

    A single slot is replaced: the asset that was there is released (purged when nothing
    else holds it). A collection slot gets the asset inserted at ``position`` (``0 .. n``
    for a slot of ``n`` assets; ``n`` or None appends) and the assets from there on move
    one place down; an asset already in the collection stays once and moves to
    ``position`` (``0 .. n-1``) when one is given.

    Whether the slot is a collection: what it already holds decides (an explicit
    ``collection`` must agree: else :class:`~rindle.errors.UsageError` ``slot_is_collection``
    or ``slot_is_single``); an empty slot follows ``collection``, else the asset's
    profile (``Profile.collection``). ``position`` on a single slot is ``not_a_collection``;
    outside the range ``position_out_of_range``; not an int ``invalid_position``.
    Raises :class:`~rindle.errors.NotFound` for an unknown asset and
    :class:`~rindle.errors.InvalidTransition` for one that is not live.
    """
    who, slot = to_owner(owner), check_slot(slot)
    aid = parse_id(asset_id, "asset")
    _check_position(position)
    for attempt in range(3):
        try:
            with app.db.transaction() as s:
                rows = _lock_slot(s, who, slot)
                asset = s.get(Asset, aid)
                if asset is None or asset.state not in ATTACHABLE:
                    if asset is None:
                        raise NotFound("asset", aid)
                    raise InvalidTransition("asset", asset.state, "attached",
                                            detail="only live assets can be attached")
                if _is_collection(app, rows, collection, slot, asset):
                    return _insert(s, who, slot, aid, rows, position)
                if position is not None:
                    raise UsageError(f"slot {slot!r} is a single slot; position applies "
                                     "to collections (collection=True)",
                                     code="not_a_collection")
                return _replace(app, s, who, slot, aid, rows[0] if rows else None)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _replace(app: AppContext, s: Session, who: Owner, slot: str, aid: uuid.UUID,
             current: Attachment | None) -> Attachment:
    if current is not None and current.asset_id == aid:
        return current
    old_asset = current.asset_id if current is not None else None
    if current is not None:
        s.delete(current)
        s.flush()
    row = Attachment(asset_id=aid, owner_type=who.type, owner_id=who.id, slot=slot,
                     position=0, collection=False)
    s.add(row)
    s.flush()
    if old_asset is not None:
        release(app, s, old_asset)
    return row


def _insert(s: Session, who: Owner, slot: str, aid: uuid.UUID, rows: list[Attachment],
            position: int | None) -> Attachment:
    order = [r.asset_id for r in rows]
    if aid in order:
        row = rows[order.index(aid)]
        if position is None or position == row.position:
            return row
        if not 0 <= position < len(rows):
            raise _out_of_range(position, len(rows) - 1, slot, moving=True)
        order.remove(aid)
        order.insert(position, aid)
        _write_order(s, who, slot, rows, order)
        return row
    top = len(rows)
    at = top if position is None else position
    if not 0 <= at <= top:
        raise _out_of_range(at, top, slot)
    if at < top:
        _shift(s, who, slot, at, +1)
    row = Attachment(asset_id=aid, owner_type=who.type, owner_id=who.id, slot=slot,
                     position=at, collection=True)
    s.add(row)
    s.flush()
    return row


def _some(ids: set[uuid.UUID], shown: int = 5) -> str:
    """Up to ``shown`` of ``ids`` (sorted), then how many more; ``-`` for none."""
    listed = sorted(str(a) for a in ids)
    more = f" and {len(listed) - shown} more" if len(listed) > shown else ""
    return ", ".join(listed[:shown]) + more if listed else "-"


def reorder(app: AppContext, owner: Owner | tuple[str, object], slot: str,
            asset_ids: Sequence[uuid.UUID | str]) -> list[Attachment]:
    """Put the collection ``slot``'s assets in the order of ``asset_ids``; returns the rows
    in that order (positions ``0 .. n-1``).

    ``asset_ids`` must be a permutation of the assets the slot holds (each once, none
    missing, none extra): else :class:`~rindle.errors.UsageError` ``not_a_permutation``,
    naming the missing, extra and repeated ids, and nothing changes. A single slot is
    ``not_a_collection``; an id that is not a UUID is :class:`~rindle.errors.NotFound`.
    """
    who, slot = to_owner(owner), check_slot(slot)
    wanted = [parse_id(a, "asset") for a in asset_ids]
    with app.db.transaction() as s:
        rows = _lock_slot(s, who, slot)
        if rows and not rows[0].collection:
            raise UsageError(f"slot {slot!r} is a single slot; only a collection has an order",
                             code="not_a_collection")
        held = [r.asset_id for r in rows]
        counts = Counter(wanted)
        if len(wanted) != len(held) or set(counts) != set(held):
            raise UsageError(
                f"reorder of {slot!r} needs each of its {len(held)} asset(s) exactly once; "
                f"missing: {_some(set(held) - set(counts))}; not in the slot: "
                f"{_some(set(counts) - set(held))}; repeated: "
                f"{_some({a for a, n in counts.items() if n > 1})}. "
                "Read the current ids with app.attachments(owner)[slot]",
                code="not_a_permutation")
        if wanted != held:
            _write_order(s, who, slot, rows, wanted)
        by_asset = {r.asset_id: r for r in rows}
        return [by_asset[a] for a in wanted]


def detach(app: AppContext, owner: Owner | tuple[str, object], slot: str,
           asset_id: uuid.UUID | str | None = None) -> bool:
    """Take an asset out of ``owner``'s ``slot``; False when there was nothing to take.

    A single slot is emptied (given ``asset_id``, only if it holds that asset). A
    collection needs ``asset_id`` (else :class:`~rindle.errors.UsageError`
    ``asset_id_required``); the assets after it move up one place. The detached asset is
    released: marked ``deleted`` with its purge queued, in the same transaction, when no
    other slot holds it.
    """
    who, slot = to_owner(owner), check_slot(slot)
    aid = parse_id(asset_id, "asset") if asset_id is not None else None
    with app.db.transaction() as s:
        rows = _lock_slot(s, who, slot)
        if rows and rows[0].collection and aid is None:
            raise UsageError(f"slot {slot!r} holds a collection; name the asset to detach: "
                             "app.detach(owner, slot, asset_id)", code="asset_id_required")
        current = next((r for r in rows if aid is None or r.asset_id == aid), None)
        if current is None:
            return False
        gone, at = current.asset_id, current.position
        s.delete(current)
        s.flush()
        if current.collection:
            _shift(s, who, slot, at + 1, -1)
        release(app, s, gone)
        return True
