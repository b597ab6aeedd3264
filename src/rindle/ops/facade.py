"""``app.ops``: every Day-2 operation as a method returning its report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rindle.defaults import RUNTIME_STATUS_LIMIT, RUNTIME_STATUS_OLDER_THAN, SWEEP_THRESHOLD

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.ops.abort_uploads import AbortReport
    from rindle.ops.backfill import BackfillReport
    from rindle.ops.cleanup import CleanupReport
    from rindle.ops.doctor import DoctorReport
    from rindle.ops.regenerate import RegenerateReport
    from rindle.ops.runtime_status import RuntimeStatusReport
    from rindle.ops.sweep import SweepReport
    from rindle.ops.verify_storage import VerifyStorageReport

__all__ = ["Operations"]


class Operations:
    """The operator verbs of one app; the CLI and the cron handlers call the same services."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def doctor(self) -> DoctorReport:
        """Setup and drift checks (read-only)."""
        from rindle.ops.doctor import doctor

        return doctor(self.app)

    def runtime_status(self, *, profile: str | None = None,
                       older_than: int = RUNTIME_STATUS_OLDER_THAN,
                       limit: int = RUNTIME_STATUS_LIMIT, provider_stuck: int | None = None
                       ) -> RuntimeStatusReport:
        """Bounded report of degraded or stuck work (read-only)."""
        from rindle.ops.runtime_status import runtime_status

        return runtime_status(self.app, profile=profile, older_than=older_than, limit=limit,
                              provider_stuck=provider_stuck)

    def regenerate_variants(self, *, profile: str | None = None, variant: str | None = None
                            ) -> RegenerateReport:
        """Mark drifted variants stale, enqueue stale and missing ones."""
        from rindle.ops.regenerate import regenerate_variants

        return regenerate_variants(self.app, profile=profile, variant=variant)

    def verify_storage(self, *, profile: str | None = None, variant: str | None = None,
                       concurrency: int = 8) -> VerifyStorageReport:
        """Reconcile ready variants with storage; gone ones become missing."""
        from rindle.ops.verify_storage import verify_storage

        return verify_storage(self.app, profile=profile, variant=variant,
                              concurrency=concurrency)

    def abort_incomplete_uploads(self, *, dry_run: bool = False) -> AbortReport:
        """Expire timed-out upload sessions (``dry_run``: only count them)."""
        from rindle.ops.abort_uploads import abort_incomplete_uploads

        return abort_incomplete_uploads(self.app, dry_run=dry_run)

    def cleanup_orphans(self, *, dry_run: bool = True) -> CleanupReport:
        """Delete expired sessions' staged objects, then their rows."""
        from rindle.ops.cleanup import cleanup_orphans

        return cleanup_orphans(self.app, dry_run=dry_run)

    def sweep_orphaned_temp_files(self, *, dry_run: bool = True,
                                  threshold_sec: int = SWEEP_THRESHOLD) -> SweepReport:
        """Remove old processing leftovers no live process owns."""
        from rindle.ops.sweep import sweep_orphaned_temp_files

        return sweep_orphaned_temp_files(self.app, dry_run=dry_run, threshold_sec=threshold_sec)

    def backfill_metadata(self, *, profile: str | None = None) -> BackfillReport:
        """Re-run probe and analyzers for live assets."""
        from rindle.ops.backfill import backfill_metadata

        return backfill_metadata(self.app, profile=profile)
