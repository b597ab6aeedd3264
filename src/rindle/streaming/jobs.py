"""Job kinds of the streaming services, all on queue ``provider``.

=============================  ========  ============================================
kind                           attempts  does
=============================  ========  ============================================
``rindle.provider.sync_due``   1         the coordinator: :func:`~rindle.streaming.sync.sync_due`
``rindle.provider.sync``       3         per-row sync of ``args["provider_asset_row_id"]``
``rindle.provider.webhook``    5         applies one verified webhook event
``rindle.provider.ingest``     5         server-push ingest of a ready source variant
=============================  ========  ============================================

Schedule the coordinator with cron, e.g. in ``rindle.toml``::

    [cron]
    provider_sync_due = { schedule = "* * * * *", kind = "rindle.provider.sync_due" }
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rindle.app import Rindle
    from rindle.jobs.queue import JobContext, JobQueue

__all__ = ["INGEST", "SYNC", "SYNC_DUE", "WEBHOOK", "event_unique_key", "register",
           "sync_unique_key"]

SYNC_DUE = "rindle.provider.sync_due"
SYNC = "rindle.provider.sync"
WEBHOOK = "rindle.provider.webhook"
INGEST = "rindle.provider.ingest"


def sync_unique_key(row_id: uuid.UUID | str) -> str:
    """The unique key of a row's sync job (the row id: provider ids stay out of the queue)."""
    return f"provider_sync:{row_id}"


def event_unique_key(provider: str, event_id: str) -> str:
    """The unique key of one webhook event's ingest job."""
    return f"provider_event:{provider}:{event_id}"[:512]


def _sync_due(app: Rindle, job: JobContext) -> None:
    app.streaming.sync_due()


def _sync(app: Rindle, job: JobContext) -> None:
    ident = job.args.get("provider_asset_row_id") or job.args.get("provider_asset_id")
    if ident:
        app.streaming.sync_provider_asset(str(ident))


def _webhook(app: Rindle, job: JobContext) -> None:
    from rindle.streaming.webhooks import handle_job_event

    handle_job_event(app.streaming, job.args, job.attempt)


def _ingest(app: Rindle, job: JobContext) -> None:
    from rindle.streaming.ingest import ingest_asset

    ingest_asset(app.streaming, dict(job.args))


def register(queue: JobQueue) -> None:
    """Register the streaming job kinds on ``queue``."""
    queue.register(SYNC_DUE, _sync_due, queue="provider", max_attempts=1, timeout=60)
    queue.register(SYNC, _sync, queue="provider", max_attempts=3, timeout=30)
    queue.register(WEBHOOK, _webhook, queue="provider", max_attempts=5, timeout=30)
    queue.register(INGEST, _ingest, queue="provider", max_attempts=5, timeout=300)
