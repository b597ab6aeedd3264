"""``reprobe ASSET_ID``: re-run the probe and rewrite probe-owned fields only.

Never touches lifecycle state, variants, sessions or analyzer metadata.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from rindle.domain.models import Asset, utcnow
from rindle.errors import NotFound, OriginalChanged, ProcessingError
from rindle.ids import parse_id
from rindle.media.mime import sniff
from rindle.ops.report import Report, repair_span
from rindle.processing.original import fetch_original, quarantine_changed
from rindle.processing.promote import _NULL_FOR_KIND, PROBE_FIELDS
from rindle.processing.rundir import run_directory

if TYPE_CHECKING:
    from rindle.context import AppContext

__all__ = ["ReprobeReport", "reprobe"]


@dataclass
class ReprobeReport(Report):
    """What a reprobe changed."""

    asset_id: str = ""
    changed: dict[str, Any] = field(default_factory=dict)
    errors: int = 0


def reprobe(app: AppContext, asset_id: uuid.UUID | str) -> ReprobeReport:
    """Download the original, probe it again, and write the probe-owned columns that differ."""
    aid = parse_id(asset_id, "asset")
    with repair_span(app.telemetry, "reprobe", scope="asset", dry_run=False,
                     when_committed=app.db.when_committed,
                     if_rolled_back=app.db.if_rolled_back) as span:
        with app.db.sessionmaker() as s:
            asset = s.get(Asset, aid)
        if asset is None:
            raise NotFound("asset", asset_id)
        storage = app.storage_for(asset.profile)
        with run_directory(app.settings.resolved_tmp_dir, "reprobe") as run:
            local = run / ("original" + Path(asset.storage_key).suffix)
            try:
                fetch_original(storage, asset, local)
            except OriginalChanged:
                quarantine_changed(app.db, aid, storage=storage,
                                   tmp_dir=app.settings.resolved_tmp_dir,
                                   telemetry=app.telemetry, profile=asset.profile)
                raise
            mime = sniff(local)
            probe = app.hooks.probe(local, mime) if mime else None
        if probe is None:
            raise ProcessingError(f"no probe understands this original ({mime or 'unknown'})")
        fields: dict[str, Any] = {f: getattr(probe, f) for f in PROBE_FIELDS}
        fields["kind"] = fields["kind"] or "image"
        for name in _NULL_FOR_KIND.get(fields["kind"], ()):
            fields[name] = None
        fields["content_type"] = mime
        changed = {k: v for k, v in fields.items() if getattr(asset, k) != v}
        if changed:
            with app.db.transaction() as s:
                s.execute(update(Asset).where(Asset.id == aid)
                          .values(**changed, updated_at=utcnow()))
        span["result"] = "changed" if changed else "noop"
        return ReprobeReport(asset_id=str(aid), changed=changed)
