"""The one place rindle's built-in setting and operation defaults are written down.

The settings tables (:class:`rindle.config.JobsSettings`,
:class:`rindle.config.StreamingProviderSettings`, :class:`rindle.config.DeliverySettings`,
:class:`rindle.config.EventsSettings`),
the operations (``rindle.ops``) and the command line all read their defaults from here, so
a default has exactly one value wherever it is used.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DELIVERY_ACCEL_REDIRECT",
    "DELIVERY_MAX_PUT_BYTES",
    "DELIVERY_SIGNED_URL_BUCKET",
    "DELIVERY_SIGNED_URL_TTL",
    "DELIVERY_X_SENDFILE",
    "EVENTS_HEARTBEAT",
    "EVENTS_MAX_ASSETS",
    "EVENTS_MAX_LIFETIME",
    "EVENTS_MAX_STREAMS",
    "EVENTS_POLL_INTERVAL",
    "EVENTS_TOKEN_TTL",
    "JOBS_BACKOFF_BASE",
    "JOBS_BACKOFF_CAP",
    "JOBS_EXECUTOR",
    "JOBS_LEASE_SECONDS",
    "JOBS_POLL_INTERVAL",
    "JOBS_PREFETCH",
    "JOBS_RELAY_INTERVAL",
    "RUNTIME_STATUS_LIMIT",
    "RUNTIME_STATUS_OLDER_THAN",
    "STREAMING_POLLING_BATCH_SIZE",
    "STREAMING_POLLING_FLOOR_SECONDS",
    "STREAMING_STUCK_THRESHOLD_SECONDS",
    "SWEEP_THRESHOLD",
]

# --- [jobs] ---------------------------------------------------------------------------------
#: Seconds a claimed job stays leased to its worker without a heartbeat.
JOBS_LEASE_SECONDS: Final = 300.0
#: First retry delay in seconds; doubled on every further attempt.
JOBS_BACKOFF_BASE: Final = 5.0
#: The longest retry delay in seconds.
JOBS_BACKOFF_CAP: Final = 3600.0
#: Seconds an idle worker thread waits before looking for work again.
JOBS_POLL_INTERVAL: Final = 1.0
#: Jobs one worker thread claims at a time to start with; while the queue is deep and the
#: jobs short, the worker doubles it (up to 32; see :mod:`rindle.jobs.worker`).
JOBS_PREFETCH: Final = 1
#: Who runs the jobs: ``"worker"`` is rindle's own ``rindle worker``; another name selects
#: an executor a plugin registers (``register_executors``, e.g. ``"celery"``).
JOBS_EXECUTOR: Final = "worker"
#: Seconds between two sweeps of ``rindle relay`` (an external executor's outbox relay).
JOBS_RELAY_INTERVAL: Final = 5.0

# --- [streaming.NAME] -----------------------------------------------------------------------
#: The sync coordinator only looks at rows untouched for at least this many seconds.
STREAMING_POLLING_FLOOR_SECONDS: Final = 30
#: At most this many rows per sync coordinator run and provider.
STREAMING_POLLING_BATCH_SIZE: Final = 1000
#: A provider row uploading or processing untouched for longer is stuck (seconds).
STREAMING_STUCK_THRESHOLD_SECONDS: Final = 7200

# --- [delivery] -----------------------------------------------------------------------------
#: The largest direct-upload PUT body the delivery app accepts, in bytes (5 GiB).
DELIVERY_MAX_PUT_BYTES: Final = 5 * 1024 ** 3
#: The internal URI prefix a GET is handed to nginx under (``X-Accel-Redirect``); None: the
#: delivery app sends the bytes itself.
DELIVERY_ACCEL_REDIRECT: Final[str | None] = None
#: Whether a GET is handed to Apache or lighttpd (``X-Sendfile: <file path>``).
DELIVERY_X_SENDFILE: Final = False
#: Seconds a signed URL stays valid at least, for profiles whose ``Delivery`` sets none.
DELIVERY_SIGNED_URL_TTL: Final = 900
#: Signed URLs expire on a multiple of this many seconds (Unix time): the same URL for up
#: to this long, so it can be cached.
DELIVERY_SIGNED_URL_BUCKET: Final = 300

# --- [events] (live progress, rindle.web.events) -------------------------------------------
#: Seconds between two ``: heartbeat`` comments of a live progress stream.
EVENTS_HEARTBEAT: Final = 15.0
#: Open streams one events mount serves at most; one more is answered 503.
EVENTS_MAX_STREAMS: Final = 100
#: Seconds a stream lasts at most (the browser then reconnects).
EVENTS_MAX_LIFETIME: Final = 3600.0
#: Seconds between two reads of the watched rows on SQLite (PostgreSQL listens instead).
EVENTS_POLL_INTERVAL: Final = 1.0
#: The most asset ids one subscribe token may bind (about 52 URL bytes each).
EVENTS_MAX_ASSETS: Final = 100
#: Seconds a subscribe token stays valid when the caller gives no ``expires_in``.
EVENTS_TOKEN_TTL: Final = 3600

# --- operations (rindle.ops and the command line) -------------------------------------------
#: ``runtime-status``: uploads and jobs older than this many seconds are reported.
RUNTIME_STATUS_OLDER_THAN: Final = 3600
#: ``runtime-status``: at most this many rows per section.
RUNTIME_STATUS_LIMIT: Final = 20
#: ``sweep-orphaned-temp-files``: run directories older than this many seconds are removed.
SWEEP_THRESHOLD: Final = 14_400
