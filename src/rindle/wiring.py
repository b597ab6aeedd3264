"""Which job kinds run which handlers, and what runs when a variant becomes ready: the
wiring of the services onto an app.

This module sits above the services (upload, processing, ops, streaming) so that the job
queue itself never imports them, and processing never imports streaming;
:class:`rindle.Rindle` calls :func:`register_core_handlers` when it creates its queue and
:func:`core_variant_ready_callbacks` when it first needs its ``on_variant_ready`` list; the
handlers and callbacks are handed the app's :class:`~rindle.context.Context`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar

from rindle.context import AppContext, VariantReadyCallback
from rindle.jobs.kinds import PROCESS_VARIANT, PROMOTE, PURGE
from rindle.ops import abort_uploads, backfill, cleanup, regenerate, sweep, verify_storage
from rindle.processing import promote, purge, variants
from rindle.streaming import handlers as streaming_handlers
from rindle.streaming.ingest import enqueue_server_push

if TYPE_CHECKING:
    from rindle.jobs.queue import JobContext, JobQueue
    from rindle.streaming.service import Streaming

__all__ = ["NOOP", "core_variant_ready_callbacks", "register_core_handlers"]

NOOP = "rindle.noop"
MAINTENANCE = "rindle.maintenance."


class _WiredApp(AppContext, Protocol):
    """An app whose queue runs the core handlers (an app's
    :class:`~rindle.context.Context` is one)."""

    @property
    def streaming(self) -> Streaming:
        """The app's streaming services."""


_App = TypeVar("_App", bound=_WiredApp)


def _noop(app: object, job: JobContext) -> None:
    """Does nothing; useful to check a worker end to end."""


def core_variant_ready_callbacks() -> list[VariantReadyCallback]:
    """A new list of the core's variant-ready callbacks: streaming's server-push ingest
    (enqueues its job when the variant is a server-push profile's source variant)."""
    return [enqueue_server_push]


def register_core_handlers(queue: JobQueue[_App]) -> None:
    """Register the lifecycle, maintenance and streaming handlers with their queues and attempts."""
    queue.register(NOOP, _noop, queue="maintenance", max_attempts=1)
    queue.register(PROMOTE, promote.handle, queue="promote", max_attempts=3)
    queue.register(PROCESS_VARIANT, variants.handle, queue="process", max_attempts=5)
    queue.register(PURGE, purge.handle, queue="purge", max_attempts=3)
    for name, module in (("abort_incomplete_uploads", abort_uploads),
                         ("cleanup_orphans", cleanup),
                         ("sweep_orphaned_temp_files", sweep),
                         ("regenerate_variants", regenerate),
                         ("verify_storage", verify_storage),
                         ("backfill_metadata", backfill)):
        queue.register(f"{MAINTENANCE}{name}", module.handle, queue="maintenance",
                       max_attempts=3)
    streaming_handlers.register(queue)
