"""Types for the app fixtures the suites share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from rindle.storage.local import LocalStorage

if TYPE_CHECKING:
    from rindle import Rindle
    from rindle.context import AppContext


class MakeApp(Protocol):
    """The ``make_app`` fixture: a :class:`Rindle` on the test database and a temp local
    storage; keyword options override the defaults (anything ``Rindle()`` takes)."""

    def __call__(self, **options: Any) -> Rindle: ...


def local_storage(app: AppContext, name: str = "default") -> LocalStorage:
    """The app's storage ``name``, which the suites' apps configure as local storage (so
    its files can be read and planted under ``.root``)."""
    storage = app.storage(name)
    assert isinstance(storage, LocalStorage), storage
    return storage
