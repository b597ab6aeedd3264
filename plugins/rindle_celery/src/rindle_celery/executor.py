"""The Celery executor: rindle publishes job ids, Celery tasks run them by id.

The job table stays the source of truth. :meth:`CeleryExecutor.publish` sends one
``rindle.run_job`` message per job id (to the Celery queue ``<queue_prefix><queue>``, with
an ETA when the job is due later); the task claims the row by id under a lease and runs the
same handler ``rindle worker`` runs (:func:`rindle.jobs.run_job`), so a lost message is
published again by ``rindle relay`` (or the ``rindle.relay`` beat task) and a duplicate
finds the row claimed and does nothing.

Database connections follow the worker's life: a forked pool child drops its parent's
(``worker_process_init``), and ``worker_shutdown`` / ``worker_process_shutdown`` close every
connection of the process, the threads' kept ones
(:meth:`rindle.database.Database.kept_connection`) included.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from celery import Celery, signals
from kombu.entity import Queue

from rindle.errors import ConfigError
from rindle.jobs import Executor, JobQueue, JobRef, QueueApp, Relay, run_job

__all__ = ["OPTIONS", "RELAY_TASK", "RUN_TASK", "CeleryExecutor", "celery_app"]

#: The task that runs one job by id.
RUN_TASK = "rindle.run_job"
#: The task Celery beat calls: one relay tick (cron, then the sweep).
RELAY_TASK = "rindle.relay"
#: ``[jobs.executor_options]`` keys and what they hold.
OPTIONS = {
    "broker_url": "the Celery broker, e.g. redis://127.0.0.1:6379/0 (required)",
    "result_backend": "the Celery result backend (optional; rindle's tasks store no result "
                      "but the relay tick's report)",
    "queue_prefix": "Celery queues are named <queue_prefix><rindle queue> (default rindle.)",
    "relay_interval": "seconds between two beat relay ticks (default 5)",
}
log = logging.getLogger(__name__)
_DEFAULT_RELAY_INTERVAL = 5.0  # the same as `rindle relay --interval`
# kombu's Queue.__init__ carries no annotations; it takes the queue's name first.
_queue: Callable[[str], Queue] = Queue


class JobsApp(QueueApp, Protocol):
    """The app an executor is built with (a :class:`rindle.context.Context` is one): what
    a job queue needs from its app (settings, db, telemetry), plus the job queue itself,
    which the tasks and the relay run against."""

    @property
    def jobs(self) -> JobQueue[Any]:
        """The app's durable job queue."""


def _options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``[jobs.executor_options]``; every problem is a :class:`ConfigError` naming the
    key (never its value: a broker URL may hold a password)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"[jobs.executor_options]: unknown setting(s) {', '.join(unknown)} "
                          f"for the celery executor; allowed: {', '.join(sorted(OPTIONS))}")
    out: dict[str, Any] = {"result_backend": None, "queue_prefix": "rindle.",
                           "relay_interval": _DEFAULT_RELAY_INTERVAL}
    broker = options.get("broker_url")
    if not isinstance(broker, str) or "://" not in broker:
        raise ConfigError("[jobs.executor_options] broker_url must be a broker URL such as "
                          "\"redis://127.0.0.1:6379/0\" (the celery executor needs one)")
    out["broker_url"] = broker
    backend = options.get("result_backend")
    if backend is not None and (not isinstance(backend, str) or "://" not in backend):
        raise ConfigError("[jobs.executor_options] result_backend must be a URL such as "
                          "\"redis://127.0.0.1:6379/1\"")
    out["result_backend"] = backend
    prefix = options.get("queue_prefix", "rindle.")
    if not isinstance(prefix, str) or not prefix.isascii() or any(c.isspace() for c in prefix):
        raise ConfigError("[jobs.executor_options] queue_prefix must be a string without "
                          "spaces, e.g. \"rindle.\"")
    out["queue_prefix"] = prefix
    interval = options.get("relay_interval", _DEFAULT_RELAY_INTERVAL)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not (
            0.1 <= interval <= 3600):
        raise ConfigError("[jobs.executor_options] relay_interval must be a number of "
                          "seconds from 0.1 to 3600")
    out["relay_interval"] = float(interval)
    return out


class CeleryExecutor(Executor):
    """``[jobs] executor = "celery"``: publish each committed job's id to Celery.

    ``options`` is ``[jobs.executor_options]`` (see :data:`OPTIONS`). The Celery app
    (:attr:`celery`) is built on first use, with the ``rindle.run_job`` and ``rindle.relay``
    tasks, one Celery queue per rindle queue and a beat schedule running the relay.
    """

    app: JobsApp

    def __init__(self, app: JobsApp, options: Mapping[str, Any]) -> None:
        super().__init__(app, options)
        self.config = _options(options)
        self.worker_id = f"celery:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._celery: Celery | None = None
        self._relay: Relay | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def __repr__(self) -> str:  # the broker URL may hold a password
        return f"<CeleryExecutor prefix={self.config['queue_prefix']!r}>"

    # --- the Celery app --------------------------------------------------------------------

    @property
    def celery(self) -> Celery:
        """The Celery app rindle's tasks are registered on (built once)."""
        with self._lock:
            if self._celery is None:
                self._celery = self._build()
            return self._celery

    def celery_queue(self, queue: str) -> str:
        """The Celery queue a rindle queue's jobs are published to."""
        return f"{self.config['queue_prefix']}{queue}"

    def _build(self) -> Celery:
        prefix = self.config["queue_prefix"]
        app = Celery("rindle", broker=self.config["broker_url"],
                     backend=self.config["result_backend"], set_as_current=False)
        names = self.app.jobs.queue_names()
        app.conf.update(
            task_queues=[_queue(self.celery_queue(q)) for q in names],
            task_default_queue=self.celery_queue("maintenance"),
            task_ignore_result=True,
            broker_connection_retry_on_startup=True,
            worker_hijack_root_logger=False,
            beat_schedule={"rindle-relay": {"task": RELAY_TASK,
                                            "schedule": self.config["relay_interval"]}},
            task_routes={RELAY_TASK: {"queue": f"{prefix}maintenance"}},
        )
        executor = self

        def run(job_id: str) -> str | None:
            """Claim the job by id, run its handler, settle it (None: not claimable, or
            a message whose id is not a job id: logged, nothing touched)."""
            try:
                parsed = uuid.UUID(str(job_id))
            except ValueError:
                log.warning("rindle_celery: ignored a %s message whose id is not a UUID",
                            RUN_TASK)
                return None
            return run_job(executor.app.jobs, parsed,
                           worker_id=executor.worker_id, executor=executor)

        def relay() -> dict[str, int]:
            """One relay tick: the due ``[cron]`` jobs, then the sweep."""
            return executor.relay().tick().to_dict()

        # Registered by calling app.task(...) rather than as decorators: celery is untyped,
        # and the plain functions keep their own types here.
        app.task(name=RUN_TASK, ignore_result=True, shared=False)(run)
        app.task(name=RELAY_TASK, ignore_result=False, shared=False)(relay)
        # Weakly held (bound methods): an executor that is gone stops receiving them.
        signals.worker_process_init.connect(self._on_process_init)
        signals.worker_process_shutdown.connect(self._on_shutdown)
        signals.worker_shutdown.connect(self._on_worker_shutdown)
        return app

    # --- the worker's database connections ---------------------------------------------------

    def _on_process_init(self, sender: object = None, **_: object) -> None:
        """``worker_process_init``: in a pool child forked from the process that built this
        executor, drop the inherited connections (the child opens its own)."""
        if os.getpid() != self._pid:
            self.app.db.after_fork()

    def _on_shutdown(self, sender: object = None, **_: object) -> None:
        """``worker_process_shutdown`` (a pool child exits): close every database connection
        of this process, the threads' kept ones included."""
        self.app.db.dispose()

    def _on_worker_shutdown(self, sender: object = None, **_: object) -> None:
        """``worker_shutdown`` of a worker of this executor's Celery app (after its pool
        stopped): close every database connection of this process."""
        if getattr(sender, "app", None) is self._celery:
            self.app.db.dispose()

    def relay(self) -> Relay:
        """This process's relay (one, so its memory of what it published lasts)."""
        with self._lock:
            if self._relay is None:
                self._relay = Relay.for_queue(self.app.jobs, self)
            return self._relay

    # --- publishing ------------------------------------------------------------------------

    def publish(self, jobs: Sequence[JobRef]) -> int:
        """Send one ``rindle.run_job`` message per job over one broker connection (a job due
        later gets that ETA); returns how many were sent. Raises the broker's error when it
        cannot be reached (``rindle relay`` publishes again)."""
        if not jobs:
            return 0
        app = self.celery
        task = app.tasks[RUN_TASK]
        now = dt.datetime.now(dt.UTC)
        sent = 0
        with app.producer_or_acquire() as producer:
            for job in jobs:
                eta = job.run_at if job.run_at > now else None
                task.apply_async((str(job.id),), queue=self.celery_queue(job.queue), eta=eta,
                                 producer=producer, retry=False)
                sent += 1
        return sent

    def close(self) -> None:
        """Close the Celery app's broker connections (and stop following worker signals)."""
        with self._lock:
            if self._celery is not None:
                signals.worker_process_init.disconnect(self._on_process_init)
                signals.worker_process_shutdown.disconnect(self._on_shutdown)
                signals.worker_shutdown.disconnect(self._on_worker_shutdown)
                self._celery.close()
                self._celery = None


def celery_app(app: Any) -> Celery:
    """The Celery app of a rindle app whose ``[jobs] executor`` is ``"celery"``: point
    ``celery -A`` at a module holding it. A :class:`ConfigError` for another executor."""
    executor = app.executor
    if not isinstance(executor, CeleryExecutor):
        raise ConfigError(f"[jobs] executor is {app.settings.jobs.executor!r}, not \"celery\"; "
                          "set it (and [jobs.executor_options] broker_url) to run jobs on "
                          "Celery")
    return executor.celery
