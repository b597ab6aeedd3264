"""The :class:`Rindle` application object: settings, database, plugins and services.

:class:`Rindle` is the thin public facade: it builds one frozen
:class:`rindle.context.Context` and hands that, never itself, to the services, the job
queue and worker, the operator verbs and the streaming services.
"""

# The imports inside this module's functions keep ``import rindle`` (and ``rindle --help``)
# light: each service is loaded on its first call. None of them dodges an import cycle;
# tests/test_architecture.py checks that no function-level import anywhere in rindle
# imports, directly or through others, the module it sits in.

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from rindle.clock import system_clock
from rindle.config import DeliverySettings, Settings, load_settings
from rindle.context import Context, Lazy
from rindle.database import Database
from rindle.domain.profile import Profile
from rindle.errors import ConfigError, PluginError, ProfileError
from rindle.hooks import Hooks
from rindle.plugins import BackendRegistry, make_plugin_manager
from rindle.storage.base import BackendContext, Storage
from rindle.telemetry import Telemetry

if TYPE_CHECKING:
    import pluggy
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from rindle.clock import Clock
    from rindle.context import VariantReadyCallback
    from rindle.database import Binding
    from rindle.domain.attachments import Owner
    from rindle.domain.models import Asset, Attachment, UploadSession, Variant
    from rindle.jobs import Executor, JobQueue, JobRef, Relay, Worker
    from rindle.ops.erasure import ErasureReport
    from rindle.ops.facade import Operations
    from rindle.ops.reprobe import ReprobeReport
    from rindle.ops.requeue import RequeueReport
    from rindle.processing.cancel import CancelledProcessing
    from rindle.storage.base import PresignedRequest, ResumableStatus
    from rindle.streaming import Streaming
    from rindle.upload.validation import ValidatedUpload

__all__ = ["Rindle"]

_UNSET: Any = object()


def _import_profile(path: str, base_dir: Path) -> type[Profile]:
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(
            f"profile {path!r} is not an import path; write it as \"package.module:ClassName\""
        )
    if str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except ProfileError:
        raise
    except ImportError as exc:
        raise ConfigError(f"cannot import profile module {module_name!r} ({path}): {exc}") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no profile {attr!r} ({path})") from None
    if not (isinstance(obj, type) and issubclass(obj, Profile)):
        raise ConfigError(f"{path} is not a rindle.Profile subclass")
    return obj


class _Storages:
    """The configured storages of one app, each built on first use (thread-safe)."""

    def __init__(self, settings: Settings, registry: BackendRegistry) -> None:
        self.settings = settings
        self.registry = registry
        #: Storages built so far, by name.
        self.built: dict[str, Storage] = {}
        self._lock = threading.Lock()

    def get(self, name: str = "default") -> Storage:
        """The configured storage ``name``, built on first use; :class:`ConfigError` when it
        is not configured or needs the missing ``secret_key``."""
        with self._lock:
            if name in self.built:
                return self.built[name]
            try:
                table = dict(self.settings.storages[name])
            except KeyError:
                raise ConfigError(
                    f"storage {name!r} is not configured; configured storages: "
                    f"{', '.join(sorted(self.settings.storages))}"
                ) from None
            klass = self.registry.get(table.pop("backend"))
            if not issubclass(klass, Storage):  # the registry admits Storage subclasses only
                raise PluginError(f"storage backend {klass!r} is not a rindle Storage")
            context = BackendContext(
                secret_key=self._require_secret(f"storage {name!r}"),
                tmp_dir=self.settings.resolved_tmp_dir,
                base_dir=self.settings.base_dir,
            )
            storage = klass.from_settings(name, table, context)
            self.built[name] = storage
            return storage

    def _require_secret(self, what: str) -> str:
        if not self.settings.secret_key:
            raise ConfigError(
                f"{what} needs secret_key; set secret_key in rindle.toml or RINDLE_SECRET_KEY "
                "(`rindle init` writes a random one)"
            )
        return self.settings.secret_key


def _build_jobs(context: Context, executor: Lazy[Executor | None] | None = None
                ) -> JobQueue[Context]:
    """The app's queue, on the context's clock, with the core handlers registered; with an
    external ``executor`` (``[jobs] executor``), committed jobs are published to it."""
    from rindle.jobs import JobQueue
    from rindle.wiring import register_core_handlers

    queue = JobQueue(context, clock=context.clock)
    register_core_handlers(queue)
    if executor is not None and context.settings.jobs.executor != "worker":
        def publish(refs: Sequence[JobRef]) -> object:
            built = executor.get(context)
            return None if built is None else built.publish(refs)

        queue.publisher = publish
    return queue


def _build_executor(registry: BackendRegistry, built: list[Executor], context: Context
                    ) -> Executor | None:
    """The executor ``[jobs] executor`` names, built with ``[jobs.executor_options]`` and
    appended to ``built`` (None for ``"worker"``: ``rindle worker`` polls the table)."""
    name = context.settings.jobs.executor
    if name == "worker":
        return None
    executor: Executor = registry.get(name)(context, context.settings.jobs.executor_options)
    built.append(executor)
    return executor


def _build_streaming(context: Context) -> Streaming:
    """The app's streaming services (validates every ``[streaming.NAME]`` table)."""
    from rindle.streaming import Streaming

    return Streaming(context)


def _build_variant_ready_callbacks(context: Context) -> list[VariantReadyCallback]:
    """A new list holding the core's variant-ready callbacks."""
    from rindle.wiring import core_variant_ready_callbacks

    return core_variant_ready_callbacks()


def _url(context: Context, asset_id: uuid.UUID | str, variant: str | None,
         expires_in: int | None, disposition: str | None, actor: Any = None) -> str:
    """:meth:`Rindle.url` (and :meth:`Context.url`): a streamed profile's playback URL
    when one applies, else the delivery URL of the asset or its variant; the delivery
    authorizer is asked about ``actor`` before either is signed for a private profile."""
    from rindle.delivery.urls import asset_url, authorize

    if variant is None and disposition is None and any(
            p.delivery.streaming is not None for p in context.profile_classes.values()):
        from rindle.streaming.playback import dispatch_url

        authorize(context, asset_id, None, actor)
        streamed = dispatch_url(context.streaming, asset_id, expires_in=expires_in)
        if streamed is not None:
            return streamed
    return asset_url(context, asset_id, variant, expires_in=expires_in,
                     disposition=disposition, actor=actor)


class Rindle:
    """One configured rindle: the entry point for every upload, job and operation.

    Build it in code, ``Rindle(database_url=..., storages=..., profiles=[...])``, or from a
    file with :meth:`from_config`. Construction connects to nothing; the first database or
    storage use does.
    """

    def __init__(
        self,
        *,
        database_url: str = _UNSET,
        storages: Mapping[str, Mapping[str, Any]] = _UNSET,
        profiles: Iterable[type[Profile] | str] = _UNSET,
        secret_key: str | None = _UNSET,
        tmp_dir: str | os.PathLike[str] | None = _UNSET,
        cron: Mapping[str, Any] = _UNSET,
        streaming: Mapping[str, Any] = _UNSET,
        jobs: Mapping[str, Any] | str = _UNSET,
        delivery: Mapping[str, Any] = _UNSET,
        events: Mapping[str, Any] = _UNSET,
        authorizer: Callable[[Any, Asset, str | None], bool] | str | None = _UNSET,
        settings: Settings | None = None,
        load_entrypoints: bool | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> None:
        from dataclasses import replace

        base = settings or Settings()
        if jobs == "inline":  # Rindle(jobs="inline"): the app's tests need no worker
            jobs = {**vars(base.jobs), "executor": "inline"}
        given = {
            "database_url": database_url,
            "storages": storages,
            "profiles": tuple(profiles) if profiles is not _UNSET else _UNSET,
            "secret_key": secret_key,
            "tmp_dir": str(tmp_dir) if tmp_dir not in (_UNSET, None) else tmp_dir,
            "cron": cron,
            "streaming": streaming,
            "jobs": jobs,
            "delivery": delivery,
            "events": events,
        }
        overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not _UNSET}
        self.settings = replace(base, **overrides)  # validated again by __post_init__
        if authorizer is not _UNSET:
            self.settings = replace(self.settings, delivery=replace(
                self.settings.delivery, authorizer=DeliverySettings.parse(
                    {"authorizer": authorizer}).authorizer))
        self.pm = plugin_manager or make_plugin_manager(load_entrypoints=load_entrypoints)
        self.telemetry = Telemetry(hook_caller=self.pm.hook.rindle_event)
        self._hooks = Hooks(self.pm)
        self.db = Database(self.settings.resolved_database_url, require_migrated=True)
        self._profiles = self._load_profiles(self.settings.profiles)
        self._storage_registry = BackendRegistry.collect(
            self.pm, "register_storage_backends", "storage", Storage
        )
        for table in self.settings.storages.values():
            self._storage_registry.get(table["backend"])  # unknown names fail at startup
        storage_set = _Storages(self.settings, self._storage_registry)
        from rindle.jobs.executor import Executor

        self._executor_registry = BackendRegistry.collect(
            self.pm, "register_executors", "executor", Executor)
        if self.settings.jobs.executor != "worker":  # an unknown name fails at startup
            self._executor_registry.get(self.settings.jobs.executor)
        self._executors_built: list[Executor] = []  # closed by close()
        self._executor_part: Lazy[Executor | None] = Lazy(functools.partial(
            _build_executor, self._executor_registry, self._executors_built))
        self._storages = storage_set.built
        # Cheap and connecting to nothing: its costly parts are built on first use.
        self._context = Context(
            settings=self.settings, pm=self.pm, hooks=self._hooks, telemetry=self.telemetry,
            db=self.db, clock=system_clock, profile_classes=self._profiles,
            storage_of=storage_set.get, url_of=_url,
            jobs_part=Lazy(functools.partial(_build_jobs, executor=self._executor_part)),
            streaming_part=Lazy(_build_streaming),
            on_variant_ready_part=Lazy(_build_variant_ready_callbacks),
        )
        if self.settings.streaming or any(p.delivery.streaming is not None
                                          for p in self._profiles.values()):
            _ = self.streaming  # a bad [streaming.NAME], backend or profile fails at startup
        for profile in self._profiles.values():
            if profile.storage not in self.settings.storages:
                raise ConfigError(
                    f"profile {profile.name!r} uses storage {profile.storage!r}, which is not "
                    f"configured; configured storages: {', '.join(sorted(self.settings.storages))}"
                )

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, **overrides: Any) -> Rindle:
        """Build from ``rindle.toml`` / ``[tool.rindle]`` plus ``RINDLE_*`` environment overrides.

        With ``path=None`` the file is discovered (``RINDLE_CONFIG``, ``./rindle.toml``,
        ``./pyproject.toml``); with no file at all the embedded defaults apply.
        """
        return cls(settings=load_settings(path), **overrides)

    def __repr__(self) -> str:
        return f"<Rindle db={self.db.redacted_url} profiles={sorted(self._profiles)}>"

    @property
    def context(self) -> Context:
        """The frozen :class:`~rindle.context.Context` this app hands its services, job
        handlers, plugin hooks and variant-ready callbacks (always the same one)."""
        return self._context

    @property
    def clock(self) -> Clock:
        """Returns "now" (aware UTC): the time source the services and the job queue start
        with (:attr:`context` ``.clock``)."""
        return self._context.clock

    @property
    def tmp_dir(self) -> Path:
        """Where processing run directories and spooled uploads live
        (``settings.resolved_tmp_dir``, created on first use)."""
        return self._context.tmp_dir

    # --- profiles --------------------------------------------------------------------------

    def _load_profiles(self, items: Iterable[Any]) -> dict[str, type[Profile]]:
        out: dict[str, type[Profile]] = {}
        for item in items:
            if isinstance(item, str):
                profile = _import_profile(item, self.settings.base_dir)
            elif isinstance(item, type) and issubclass(item, Profile):
                profile = item
            else:
                raise ConfigError(f"{item!r} is not a Profile subclass or an import path")
            if profile.name in out and out[profile.name] is not profile:
                raise ConfigError(f"two profiles are named {profile.name!r}; names must be unique")
            out[profile.name] = profile
        return out

    @property
    def profiles(self) -> dict[str, type[Profile]]:
        """Configured profiles by name."""
        return dict(self._profiles)

    def profile(self, profile: type[Profile] | str) -> type[Profile]:
        """The configured profile for a class or a name; :class:`UnknownProfile` otherwise."""
        return self._context.profile(profile)

    # --- storage ---------------------------------------------------------------------------

    @property
    def storage_backends(self) -> dict[str, type]:
        """Installed storage backend classes by name."""
        return dict(self._storage_registry.classes)

    def storage(self, name: str = "default") -> Storage:
        """The configured storage ``name``, built on first use."""
        return self._context.storage(name)

    def storage_for(self, profile: type[Profile] | str) -> Storage:
        """The storage a profile writes to."""
        return self._context.storage_for(profile)

    def validate_storages(self) -> None:
        """Build every configured storage now, so a bad backend name fails at startup."""
        for name in self.settings.storages:
            self.storage(name)

    # --- uploads -----------------------------------------------------------------------------

    def upload(self, profile: type[Profile] | str,
               source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
               *, filename: str | None = None) -> Asset:
        """Proxied upload: validate the bytes, store them, record the asset, queue promotion.

        ``source`` is a path, the bytes themselves, or a binary file object; ``filename``
        is required for bytes and file objects (else :class:`rindle.errors.UsageError`
        ``filename_required``; a text-mode file is ``text_mode_file``). An unmigrated
        database raises :class:`rindle.errors.SchemaOutOfDate` before anything is stored.
        A policy violation raises :class:`rindle.errors.UploadRejected` and leaves no row
        and no stored object.
        """
        from rindle.upload.proxied import upload

        return upload(self._context, profile, source, filename=filename)

    def check_upload(self, profile: type[Profile] | str,
                     source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
                     *, filename: str | None = None) -> ValidatedUpload:
        """Validate ``source`` against ``profile``'s policy as :meth:`upload` would, and
        store and record nothing: for a form that reports a bad file with its other
        errors and uploads only once it saves.

        Raises what :meth:`upload` raises for the source (:class:`rindle.errors.UsageError`)
        and the policy (:class:`rindle.errors.UploadRejected` with its reason); returns
        the sniffed type, extension, size, dimensions and sanitised filename. A file object
        is read to its end: seek it back before uploading it.
        """
        from rindle.upload.proxied import check

        return check(self._context, profile, source, filename=filename)

    def initiate_upload(self, profile: type[Profile] | str, *, filename: str,
                        strategy: str = "presigned_put", byte_size: int | None = None,
                        content_type: str | None = None, expires_in: int = 3600,
                        origin: str | None = None) -> UploadSession:
        """Start a direct upload: a staged asset plus an ``initialized`` session.

        ``strategy`` is ``presigned_put``, ``multipart`` or ``resumable`` (capability-gated,
        never downgraded); ``origin`` is the browser origin a resumable session admits.
        """
        from rindle.upload import direct

        return direct.initiate(self._context, profile, filename=filename, strategy=strategy,
                               byte_size=byte_size, content_type=content_type,
                               expires_in=expires_in, origin=origin)

    def sign_upload(self, session_id: uuid.UUID | str, *, expires_in: int | None = None
                    ) -> PresignedRequest:
        """The request the client uploads with (session -> ``signed``): a presigned PUT, or
        for a resumable session its session URI."""
        from rindle.upload import direct

        return direct.sign(self._context, session_id, expires_in=expires_in)

    def resumable_upload_status(self, session_id: uuid.UUID | str) -> ResumableStatus:
        """Bytes a resumable session's backend holds: where an interrupted client resumes."""
        from rindle.upload import direct

        return direct.resumable_status(self._context, session_id)

    def sign_upload_part(self, session_id: uuid.UUID | str, part_number: int
                         ) -> PresignedRequest:
        """The presigned request for one part of a multipart upload."""
        from rindle.upload import direct

        return direct.sign_part(self._context, session_id, part_number)

    def complete_multipart_upload(self, session_id: uuid.UUID | str,
                                  parts: Sequence[Mapping[str, Any]]) -> Asset:
        """Assemble a multipart upload and verify it."""
        from rindle.upload import direct

        return direct.complete_multipart(self._context, session_id, parts)

    def verify_upload(self, session_id: uuid.UUID | str) -> Asset:
        """The trust gate: HEAD the object, complete the session, queue promotion."""
        from rindle.upload import direct

        return direct.verify(self._context, session_id)

    def abort_upload(self, session_id: uuid.UUID | str) -> UploadSession:
        """Abort an unfinished direct upload and remove what was staged."""
        from rindle.upload import direct

        return direct.abort(self._context, session_id)

    # --- assets, attachments, delivery ------------------------------------------------

    def get_asset(self, asset_id: uuid.UUID | str) -> Asset:
        """The asset with its variants loaded (``asset.variants``: name -> Variant)."""
        from rindle.domain.queries import get_asset

        return get_asset(self.db, asset_id)

    def attach(self, asset_id: uuid.UUID | str, owner: Owner | tuple[str, object], slot: str,
               *, position: int | None = None, collection: bool | None = None) -> Attachment:
        """Attach an asset to ``owner``'s ``slot``. A single slot is replaced (a replaced
        asset attached nowhere else is marked deleted and purged); a collection slot gets
        the asset inserted at ``position`` (``0 .. n``; None appends). See
        :func:`rindle.attachments.attach` for how a slot becomes a collection."""
        from rindle.attachments import attach

        return attach(self._context, asset_id, owner, slot, position=position,
                      collection=collection)

    def detach(self, owner: Owner | tuple[str, object], slot: str,
               asset_id: uuid.UUID | str | None = None) -> bool:
        """Take an asset out of ``owner``'s ``slot`` (a collection needs ``asset_id``);
        False when there was nothing to take. An asset attached nowhere else is purged."""
        from rindle.attachments import detach

        return detach(self._context, owner, slot, asset_id)

    def reorder(self, owner: Owner | tuple[str, object], slot: str,
                asset_ids: Sequence[uuid.UUID | str]) -> list[Attachment]:
        """Reorder a collection slot: ``asset_ids`` is a permutation of the assets it holds
        (else :class:`~rindle.errors.UsageError` ``not_a_permutation``)."""
        from rindle.attachments import reorder

        return reorder(self._context, owner, slot, asset_ids)

    def attachment(self, owner: Owner | tuple[str, object], slot: str) -> Asset | None:
        """The asset in ``owner``'s single ``slot`` (variants loaded), or None; one query.
        A collection slot raises :class:`~rindle.errors.UsageError` ``slot_is_collection``."""
        from rindle.domain.queries import attachment

        return attachment(self.db, owner, slot)

    def attachments(self, owner: Owner | tuple[str, object]) -> dict[str, Asset | list[Asset]]:
        """Everything ``owner`` holds by slot name: an :class:`Asset` for a single slot, a
        ``list[Asset]`` in position order for a collection (variants loaded); one query."""
        from rindle.domain.queries import attachments

        return attachments(self.db, owner)

    def ready_variants(self, asset_id: uuid.UUID | str) -> dict[str, Variant]:
        """The asset's ``ready`` variants by name; one query. :class:`NotFound` for an
        unknown asset."""
        from rindle.domain.queries import ready_variants

        return ready_variants(self.db, asset_id)

    def cancel_processing(self, asset_id: uuid.UUID | str) -> CancelledProcessing:
        """Cancel the asset's queued and running variant jobs and move its unfinished
        variants to ``cancelled`` (``requeue_variants`` starts them again)."""
        from rindle.processing.cancel import cancel_processing

        return cancel_processing(self._context, asset_id)

    def url(self, asset_id: uuid.UUID | str, variant: str | None = None, *,
            expires_in: int | None = None, disposition: str | None = None,
            actor: Any = None) -> str:
        """A delivery URL: signed unless the profile is public; a variant that is not ready
        falls back to the original. A signed URL is stable: the same until its
        ``[delivery] signed_url_bucket`` turns.

        For a profile with ``delivery.streaming`` and no ``variant``: the provider's playback
        URL (HLS) once the stream is ready, else the original (progressive fallback).
        With ``[delivery] authorizer`` set, a private URL is signed only when
        ``authorizer(actor, asset, variant)`` is True, else :class:`rindle.errors.Forbidden`.
        """
        return _url(self._context, asset_id, variant, expires_in, disposition, actor)

    def urls(self, assets: Iterable[Asset | uuid.UUID | str], variant: str | None = None,
             *, expires_in: int | None = None, disposition: str | None = None,
             actor: Any = None) -> dict[uuid.UUID, str]:
        """URLs for many assets (Asset objects or ids, mixed) in one database query, by
        asset id; assets that cannot be delivered (unknown, deleted, not promoted,
        quarantined) are left out. See :func:`rindle.delivery.urls.asset_urls`."""
        from rindle.delivery.urls import asset_urls

        return asset_urls(self._context, assets, variant, expires_in=expires_in,
                          disposition=disposition, actor=actor)

    def subscribe_token(self, asset_ids: Iterable[uuid.UUID | str], *,
                        expires_in: int | None = None) -> str:
        """A token for the live progress stream (``rindle.web.events_wsgi`` /
        ``events_asgi``): it lets a browser watch exactly ``asset_ids`` (1 to ``[events]
        max_assets``, default 100) for ``expires_in`` seconds (1 to 604800; None: ``[events]
        token_ttl``, default 3600), signed with ``secret_key``. Hand it only for assets the
        user may see. :class:`rindle.errors.UsageError` for bad ids or lifetime,
        :class:`rindle.errors.ConfigError` without ``secret_key``."""
        from rindle.web.events import subscribe_token

        return subscribe_token(self._context, asset_ids, expires_in=expires_in)

    # --- Day-2 operations ------------------------------------------------------------------

    @property
    def ops(self) -> Operations:
        """The operator verbs (doctor, runtime_status, verify_storage, ...)."""
        from rindle.ops.facade import Operations

        return Operations(self._context)

    def reprobe(self, asset_id: uuid.UUID | str) -> ReprobeReport:
        """Re-run the probe for one asset; rewrites probe-owned fields only."""
        from rindle.ops.reprobe import reprobe

        return reprobe(self._context, asset_id)

    def requeue_variants(self, asset_id: uuid.UUID | str,
                         variant_names: Sequence[str] | None = None) -> RequeueReport:
        """Requeue an asset's failed or cancelled variants (enqueue-only)."""
        from rindle.ops.requeue import requeue_variants

        return requeue_variants(self._context, asset_id, variant_names)

    def erase_owners(self, owners: Iterable[Owner | tuple[str, object]], *,
                     dry_run: bool = True) -> ErasureReport:
        """Detach and purge everything ``owners`` hold; a preview unless ``dry_run=False``."""
        from rindle.ops.erasure import erase_owners

        return erase_owners(self._context, owners, dry_run=dry_run)

    # --- streaming ----------------------------------------------------------------------

    @property
    def streaming(self) -> Streaming:
        """Streaming providers and their services (``provider(name)``, ``sync_due``,
        ``sync_provider_asset``, ``handle_webhook``, ``playback_url``)."""
        return self._context.streaming

    # --- database and jobs ----------------------------------------------------------------

    def migrate(self) -> None:
        """Apply every shipped migration (Alembic ``upgrade head``)."""
        self.db.migrate()

    def bind(self, host: Connection | Session) -> AbstractContextManager[Binding]:
        """``with app.bind(connection_or_session):``: rindle's writes and enqueued jobs join
        the host's SQLAlchemy transaction (same database), and what rindle does after a
        commit waits for the host's commit. See :meth:`rindle.database.Database.bind`."""
        return self.db.bind(host)

    @property
    def on_variant_ready(self) -> list[VariantReadyCallback]:
        """The callbacks run, in order, inside the transaction that marks a variant ready,
        as ``callback(context, session, asset, variant_name, recipe_digest)`` (``context``:
        :attr:`context`); append to add one.

        Starts with the core's own (streaming's server-push ingest job), so a job a callback
        enqueues commits together with the ready state. The same list as
        ``app.context.on_variant_ready``.
        """
        return self._context.on_variant_ready

    @property
    def hooks(self) -> Hooks:
        """Typed calls of the media-pipeline hooks (probe, analyze, scan, transcode), which
        check each plugin's answer; built once, on :attr:`pm`."""
        return self._hooks

    @property
    def jobs(self) -> JobQueue[Context]:
        """The durable job queue (enqueue, drain, cancel); its handlers are handed
        :attr:`context`."""
        return self._context.jobs

    @property
    def executor(self) -> Executor | None:
        """The external executor ``[jobs] executor`` selects (built on first use with
        ``[jobs.executor_options]``), or None for ``"worker"`` (``rindle worker``)."""
        return self._executor_part.get(self._context)

    def relay(self, *, cron: bool = True) -> Relay:
        """The outbox relay of the external executor (what ``rindle relay`` runs): the
        ``[cron]`` schedule, then a sweep publishing every due job nobody holds. A
        :class:`ConfigError` when ``[jobs] executor`` is ``"worker"``, which needs none."""
        from rindle.jobs import Relay

        executor = self.executor
        if executor is None:
            raise ConfigError("rindle relay publishes jobs to an external executor, but "
                              "[jobs] executor is \"worker\"; run `rindle worker`, or set "
                              "[jobs] executor to a plugin's executor such as \"celery\"")
        return Relay.for_queue(self.jobs, executor, cron=cron)

    def worker(
        self,
        queues: Mapping[str, int] | None = None,
        *,
        concurrency: int | None = None,
        cron: bool = True,
        **options: Any,
    ) -> Worker:
        """A long-running worker for ``queues`` (name -> concurrency); call ``.run()``."""
        from rindle.jobs import Worker

        return Worker(self._context, queues=queues, concurrency=concurrency, cron=cron, **options)

    def close(self) -> None:
        """Release database connections (and the executor's, if one was built)."""
        for executor in self._executors_built:
            executor.close()
        self.db.dispose()

