"""What a service needs from the app: the :class:`AppContext` type and its one
implementation, the frozen :class:`Context`.

:class:`rindle.Rindle` builds one :class:`Context` (``app.context``) and hands it, not
itself, to every service, job handler, plugin hook and variant-ready callback. Services
annotate their ``app`` parameter with :class:`AppContext` instead of importing the
facade, so they depend on the parts of the app they use (settings, plugins, telemetry,
database, job queue, profiles, storages, URLs, clock, scratch folder) and never on
:mod:`rindle.app` itself.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from rindle.errors import UnknownProfile

if TYPE_CHECKING:
    from pathlib import Path

    import pluggy
    from sqlalchemy.orm import Session

    from rindle.clock import Clock
    from rindle.config import Settings
    from rindle.database import Database
    from rindle.domain.models import Asset
    from rindle.domain.profile import Profile
    from rindle.hooks import Hooks
    from rindle.jobs.queue import JobQueue
    from rindle.storage.base import Storage
    from rindle.streaming.service import Streaming
    from rindle.telemetry import Telemetry

__all__ = ["AppContext", "Context", "Lazy", "UrlFunction", "VariantReadyCallback"]

_T = TypeVar("_T")

#: ``callback(app, session, asset, variant_name, recipe_digest)``: called inside the
#: transaction that marks the variant ``variant_name`` of ``asset`` ready, with that
#: transaction's session, so whatever it writes (a job it enqueues) commits or rolls back
#: together with the ready state. Its return value is ignored.
VariantReadyCallback = Callable[["AppContext", "Session", "Asset", str, str], object]


#: ``url(context, asset_id, variant, expires_in, disposition)``: what
#: :meth:`Context.url` answers (the facade supplies it, since it reaches delivery and
#: streaming, which sit above this module).
UrlFunction = Callable[["Context", "uuid.UUID | str", "str | None", "int | None", "str | None"],
                       str]


class AppContext(Protocol):
    """The app as the services see it (a :class:`Context` is one, and so is a
    :class:`rindle.Rindle`)."""

    @property
    def settings(self) -> Settings:
        """The validated settings."""

    @property
    def pm(self) -> pluggy.PluginManager:
        """The plugin manager (hooks of the registered plugins)."""

    @property
    def hooks(self) -> Hooks:
        """Typed calls of the media-pipeline hooks, checking each plugin's answer."""

    @property
    def telemetry(self) -> Telemetry:
        """Where events go."""

    @property
    def db(self) -> Database:
        """The database: sessions and transactions."""

    @property
    def jobs(self) -> JobQueue[Any]:
        """The durable job queue."""

    @property
    def on_variant_ready(self) -> list[VariantReadyCallback]:
        """The callbacks run, in order, inside the transaction that marks a variant ready."""

    @property
    def profiles(self) -> dict[str, type[Profile]]:
        """The configured profiles by name."""

    @property
    def clock(self) -> Clock:
        """Returns "now" (aware UTC); the job queue starts with this clock."""

    @property
    def tmp_dir(self) -> Path:
        """Where processing run directories and spooled uploads live (created on first
        use; see :attr:`rindle.config.Settings.resolved_tmp_dir`)."""

    def profile(self, profile: type[Profile] | str) -> type[Profile]:
        """The configured profile for a class or a name."""

    def storage(self, name: str = "default") -> Storage:
        """The configured storage ``name``."""

    def storage_for(self, profile: type[Profile] | str) -> Storage:
        """The storage a profile writes to."""

    def url(self, asset_id: uuid.UUID | str, variant: str | None = None, *,
            expires_in: int | None = None, disposition: str | None = None) -> str:
        """A delivery URL of an asset or one of its variants."""


class Lazy(Generic[_T]):
    """A part of a :class:`Context` built by ``build(context)`` on first :meth:`get`, then
    kept: every later call, from any thread, returns that same object."""

    __slots__ = ("_build", "_built", "_lock")

    def __init__(self, build: Callable[[Context], _T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._built: tuple[_T] | None = None

    def get(self, context: Context) -> _T:
        """The part, built from ``context`` the first time (once, even under threads)."""
        if self._built is None:
            with self._lock:
                if self._built is None:
                    self._built = (self._build(context),)
        return self._built[0]


@dataclass(frozen=True, slots=True, eq=False, repr=False, kw_only=True)
class Context:
    """The app as a service sees it: one per :class:`rindle.Rindle` (``app.context``),
    frozen, and all a service, job handler, plugin hook or variant-ready callback is
    handed.

    Its fields cannot be reassigned (:class:`dataclasses.FrozenInstanceError`); the parts
    that are costly or touch the outside (job queue, streaming services, storages, the
    callback list, the scratch folder) are built on first use, once, and shared with the
    app that built it (``app.jobs is app.context.jobs``). Building it connects to nothing.
    """

    settings: Settings
    pm: pluggy.PluginManager
    hooks: Hooks
    telemetry: Telemetry
    db: Database
    clock: Clock
    profile_classes: Mapping[str, type[Profile]]
    storage_of: Callable[[str], Storage]
    url_of: UrlFunction
    jobs_part: Lazy[JobQueue[Context]]
    streaming_part: Lazy[Streaming]
    on_variant_ready_part: Lazy[list[VariantReadyCallback]]

    def __repr__(self) -> str:
        return f"<Context db={self.db.redacted_url} profiles={sorted(self.profile_classes)}>"

    @property
    def profiles(self) -> dict[str, type[Profile]]:
        """The configured profiles by name (a new dict each call)."""
        return dict(self.profile_classes)

    @property
    def tmp_dir(self) -> Path:
        """Where processing run directories and spooled uploads live (created on first
        use; :class:`rindle.errors.ConfigError` when that folder is unusable)."""
        return self.settings.resolved_tmp_dir

    @property
    def jobs(self) -> JobQueue[Context]:
        """The durable job queue, its core handlers registered; built on first use."""
        return self.jobs_part.get(self)

    @property
    def streaming(self) -> Streaming:
        """The streaming providers and services; built on first use."""
        return self.streaming_part.get(self)

    @property
    def on_variant_ready(self) -> list[VariantReadyCallback]:
        """The callbacks run, in order, inside the transaction that marks a variant ready:
        one list, so a callback appended here or on the app runs."""
        return self.on_variant_ready_part.get(self)

    def profile(self, profile: type[Profile] | str) -> type[Profile]:
        """The configured profile for a class or a name; :class:`UnknownProfile` otherwise."""
        name = profile if isinstance(profile, str) else getattr(profile, "name", None)
        if isinstance(name, str) and name in self.profile_classes:
            return self.profile_classes[name]
        raise UnknownProfile(str(name if name is not None else profile), self.profile_classes)

    def storage(self, name: str = "default") -> Storage:
        """The configured storage ``name``, built on first use (:class:`ConfigError` when it
        is not configured)."""
        return self.storage_of(name)

    def storage_for(self, profile: type[Profile] | str) -> Storage:
        """The storage a profile writes to."""
        return self.storage(self.profile(profile).storage)

    def url(self, asset_id: uuid.UUID | str, variant: str | None = None, *,
            expires_in: int | None = None, disposition: str | None = None) -> str:
        """A delivery URL of an asset or one of its variants (as :meth:`rindle.Rindle.url`)."""
        return self.url_of(self, asset_id, variant, expires_in, disposition)
