"""Job kinds of the streaming services, all on queue ``provider``.

=============================  ========  ============================================
kind                           attempts  does
=============================  ========  ============================================
``rindle.provider.sync_due``   1         the coordinator: :func:`~rindle.streaming.sync.sync_due`
``rindle.provider.sync``       3         per-row sync of ``args["provider_asset_row_id"]``
``rindle.provider.webhook``    5         applies one verified webhook event
``rindle.provider.ingest``     5         server-push ingest of a ready source variant
=============================  ========  ============================================

The handlers are registered by :mod:`rindle.streaming.handlers`. Schedule the
coordinator with cron, e.g. in ``rindle.toml``::

    [cron]
    provider_sync_due = { schedule = "* * * * *", kind = "rindle.provider.sync_due" }
"""

from __future__ import annotations

import uuid

__all__ = ["INGEST", "SYNC", "SYNC_DUE", "WEBHOOK", "event_unique_key", "sync_unique_key"]

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
