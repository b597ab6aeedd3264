"""Types for the app fixtures the suites share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rindle import Rindle


class MakeApp(Protocol):
    """The ``make_app`` fixture: a :class:`Rindle` on the test database and a temp local
    storage; keyword options override the defaults (anything ``Rindle()`` takes)."""

    def __call__(self, **options: Any) -> Rindle: ...
