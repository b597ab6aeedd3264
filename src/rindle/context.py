"""What a service needs from the app, as a type: :class:`AppContext`.

:class:`rindle.Rindle` satisfies it. Services annotate their ``app`` parameter with it
instead of importing the facade, so they depend on the parts of the app they use
(settings, plugins, telemetry, database, job queue, profiles, storages, URLs) and never on
:mod:`rindle.app` itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pluggy
    from sqlalchemy.orm import Session

    from rindle.config import Settings
    from rindle.database import Database
    from rindle.domain.models import Asset
    from rindle.domain.profile import Profile
    from rindle.hooks import Hooks
    from rindle.jobs.queue import JobQueue
    from rindle.storage.base import Storage
    from rindle.telemetry import Telemetry

__all__ = ["AppContext", "VariantReadyCallback"]

#: ``callback(app, session, asset, variant_name, recipe_digest)``: called inside the
#: transaction that marks the variant ``variant_name`` of ``asset`` ready, with that
#: transaction's session, so whatever it writes (a job it enqueues) commits or rolls back
#: together with the ready state. Its return value is ignored.
VariantReadyCallback = Callable[["AppContext", "Session", "Asset", str, str], object]


class AppContext(Protocol):
    """The app as the services see it (a :class:`rindle.Rindle` is one)."""

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

    def profile(self, profile: type[Profile] | str) -> type[Profile]:
        """The configured profile for a class or a name."""

    def storage(self, name: str = "default") -> Storage:
        """The configured storage ``name``."""

    def storage_for(self, profile: type[Profile] | str) -> Storage:
        """The storage a profile writes to."""

    def url(self, asset_id: uuid.UUID | str, variant: str | None = None, *,
            expires_in: int | None = None, disposition: str | None = None) -> str:
        """A delivery URL of an asset or one of its variants."""
