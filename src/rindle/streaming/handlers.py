"""The handlers of the streaming job kinds (:mod:`rindle.streaming.jobs`), on queue ``provider``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar

from rindle.jobs.queue import QueueApp
from rindle.streaming.ingest import ingest_asset
from rindle.streaming.jobs import INGEST, SYNC, SYNC_DUE, WEBHOOK
from rindle.streaming.webhooks import handle_job_event

if TYPE_CHECKING:
    from rindle.jobs.queue import JobContext, JobQueue
    from rindle.streaming.service import Streaming

__all__ = ["register"]


class _HasStreaming(QueueApp, Protocol):
    """An app with a job queue and streaming services (an app's
    :class:`~rindle.context.Context` is one)."""

    @property
    def streaming(self) -> Streaming:
        """The app's streaming services."""


_App = TypeVar("_App", bound=_HasStreaming)


def _sync_due(app: _HasStreaming, job: JobContext) -> None:
    app.streaming.sync_due()


def _sync(app: _HasStreaming, job: JobContext) -> None:
    ident = job.args.get("provider_asset_row_id") or job.args.get("provider_asset_id")
    if ident:
        app.streaming.sync_provider_asset(str(ident))


def _webhook(app: _HasStreaming, job: JobContext) -> None:
    handle_job_event(app.streaming, job.args, job.attempt)


def _ingest(app: _HasStreaming, job: JobContext) -> None:
    ingest_asset(app.streaming, dict(job.args))


def register(queue: JobQueue[_App]) -> None:
    """Register the streaming job kinds on ``queue``."""
    queue.register(SYNC_DUE, _sync_due, queue="provider", max_attempts=1, timeout=60)
    queue.register(SYNC, _sync, queue="provider", max_attempts=3, timeout=30)
    queue.register(WEBHOOK, _webhook, queue="provider", max_attempts=5, timeout=30)
    queue.register(INGEST, _ingest, queue="provider", max_attempts=5, timeout=300)
