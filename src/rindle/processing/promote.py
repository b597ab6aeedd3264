"""Promotion: validating -> analyzing -> promoting -> available, then one job per variant.

The probe step downloads the original into a private run directory (outside any
transaction), checks it is the object verify pinned (:mod:`rindle.processing.original`;
else ``original_changed``) and hashes it, sniffs the bytes, re-applies the profile's
upload policy to direct uploads, asks ``rindle_scan`` plugins, probes (``rindle_probe``)
and analyses (``rindle_analyze``).
Any refusal quarantines the asset with a reason; the job then ends without retrying.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rindle.domain.fsm import asset as asset_fsm
from rindle.domain.models import Asset, Variant
from rindle.errors import ObjectNotFound, OriginalChanged, ProcessingError, UploadRejected
from rindle.jobs.kinds import PROCESS_VARIANT, process_unique_key
from rindle.jobs.outcomes import Cancel
from rindle.media.mime import sniff
from rindle.processing.original import ORIGINAL_CHANGED, check_pinned, sha256_file
from rindle.processing.rundir import run_directory
from rindle.upload.validation import validate_upload

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.domain.profile import Profile
    from rindle.jobs import JobContext

__all__ = ["Quarantine", "enqueue_variant_jobs", "promote_asset"]

PROBE_FIELDS = ("kind", "width", "height", "duration_ms", "has_video_track", "has_audio_track")
_NULL_FOR_KIND = {
    "image": ("duration_ms", "has_video_track", "has_audio_track"),
    "audio": ("width", "height", "has_video_track"),
    "video": (),
}


class Quarantine(Exception):
    """The original must not be promoted; ``reason`` is stored on the asset.

    ``rejected`` is the :class:`~rindle.errors.UploadRejected` code when the bytes of a
    direct upload broke the profile's policy (reported as ``rindle.upload.rejected``).
    """

    def __init__(self, reason: str, *, rejected: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rejected = rejected


def handle(app: AppContext, job: JobContext) -> None:
    """Job handler for ``rindle.promote``."""
    promote_asset(app, uuid.UUID(job.args["asset_id"]), direct=bool(job.args.get("direct")))


def promote_asset(app: AppContext, asset_id: uuid.UUID, *, direct: bool = False) -> str:
    """Carry one asset through promotion; returns its final state.

    Crash-safe: a re-run resumes from whatever state the previous attempt reached.
    """
    with app.db.sessionmaker() as s:
        asset = s.get(Asset, asset_id)
    if asset is None:
        raise Cancel("not_found")
    prof = app.profile(asset.profile)
    tel = app.telemetry
    state = asset.state
    if state == "validating":
        with app.db.transaction() as s:
            asset_fsm.transition(s, asset_id, "validating", "analyzing", telemetry=tel,
                                 profile=prof.name)
        state = "analyzing"
    if state == "analyzing":
        try:
            fields = probe_original(app, prof, asset, direct=direct)
        except Quarantine as q:
            with app.db.transaction() as s:
                asset_fsm.transition(s, asset_id, "analyzing", "quarantined", telemetry=tel,
                                     profile=prof.name, values={"error_reason": q.reason})
            tel.emit("rindle.asset.quarantined", {"count": 1},
                     {"profile": prof.name, "reason": q.reason.split(":")[0]})
            if q.rejected is not None:
                tel.emit("rindle.upload.rejected", {"count": 1},
                         {"profile": prof.name, "code": q.rejected,
                          "adapter": app.storage(prof.storage).backend_name})
            return "quarantined"
        with app.db.transaction() as s:
            asset_fsm.transition(s, asset_id, "analyzing", "promoting", telemetry=tel,
                                 profile=prof.name, values=fields)
        state = "promoting"
    if state != "promoting":
        raise Cancel(f"invalid_start_state:{state}")
    with app.db.transaction() as s:
        asset_fsm.transition(s, asset_id, "promoting", "available", telemetry=tel,
                             profile=prof.name)
        for name, _spec in prof.variant_specs():
            s.add(Variant(asset_id=asset_id, name=name, state="planned",
                          recipe_digest=prof.recipe_digest(name),
                          output_kind=_spec.output_kind))
        s.flush()
        enqueue_variant_jobs(app, s, asset_id, [n for n, _ in prof.variant_specs()])
    return "available"


def enqueue_variant_jobs(app: AppContext, session: Any, asset_id: uuid.UUID,
                         names: list[str]) -> tuple[int, int]:
    """Enqueue one unique process job per variant name; returns (enqueued, skipped)."""
    enqueued = skipped = 0
    for name in names:
        result = app.jobs.enqueue(session, PROCESS_VARIANT,
                                  {"asset_id": str(asset_id), "variant": name},
                                  unique_key=process_unique_key(asset_id, name))
        if result.skipped:
            skipped += 1
        else:
            enqueued += 1
    return enqueued, skipped


def probe_original(app: AppContext, prof: type[Profile], asset: Asset, *, direct: bool
                   ) -> dict[str, Any]:
    """Download, check and probe the original; returns the columns to write.

    Raises :class:`Quarantine` when the bytes break the policy, a scanner rejects them,
    or no probe understands them.
    """
    storage = app.storage(prof.storage)
    with run_directory(app.settings.resolved_tmp_dir, "promote") as run:
        local = run / ("original" + Path(asset.storage_key).suffix)
        try:
            storage.download(asset.storage_key, local)
            check_pinned(storage, asset, local)
        except ObjectNotFound:
            raise Quarantine("storage_object_missing") from None
        except OriginalChanged:
            raise Quarantine(ORIGINAL_CHANGED) from None
        digest = sha256_file(local)
        mime = sniff(local)
        if mime is None:
            raise Quarantine("unknown_mime")
        if direct:
            try:
                validate_upload(local, filename=asset.filename or local.name,
                                policy=prof.upload_policy())
            except UploadRejected as exc:
                raise Quarantine(f"{exc.reason}: {exc.message}", rejected=exc.code) from None
        rejected = app.hooks.scan(local, asset)
        if rejected is not None:
            reason = rejected.reason if rejected.reason is not None else "rejected"
            raise Quarantine(f"scan_rejected: {reason}")
        try:  # a probe or analyzer that cannot read the bytes quarantines the asset
            probe = app.hooks.probe(local, mime)
            if probe is None:
                raise Quarantine(f"no_probe_for_mime: {mime}")
            meta: dict[str, Any] = dict(asset.meta or {})
            meta.update(app.hooks.analyze(local, asset, probe))
        except ProcessingError as exc:
            raise Quarantine(f"{exc.code}: {exc.message}"[:2000]) from None
    fields: dict[str, Any] = {f: getattr(probe, f) for f in PROBE_FIELDS}
    fields["kind"] = fields["kind"] or "image"
    for name in _NULL_FOR_KIND.get(fields["kind"], ()):
        fields[name] = None
    fields["content_type"] = mime
    fields["metadata"] = meta
    fields["original_sha256"] = digest
    return fields
