"""rindle: the durable media lifecycle after an upload.

Public names only; everything else lives in subpackages.

The heavy names (:class:`Rindle`, the profile classes, ``variants``) are imported on first
use (PEP 562), so ``import rindle`` and ``rindle --help`` do not pay for SQLAlchemy and
Pillow until something needs them.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING, Any

from rindle.errors import RindleError, UploadRejected
from rindle.hookspecs import hookimpl

if TYPE_CHECKING:
    from rindle import variants
    from rindle.app import Rindle
    from rindle.domain.attachments import Owner
    from rindle.domain.profile import Delivery, Profile

    __version__: str

#: Marks this package as the rindle media library. The name ``rindle`` on the public
#: package index belongs to an unrelated project; every rindle plugin checks this attribute
#: at import and refuses to load against anything else. Bumped only if the plugin-facing
#: core API breaks.
__rindle_core_api__ = 1

_LAZY: dict[str, str] = {
    "Delivery": "rindle.domain.profile",
    "Owner": "rindle.domain.attachments",
    "Profile": "rindle.domain.profile",
    "Rindle": "rindle.app",
}

__all__ = [
    "Delivery",
    "Owner",
    "Profile",
    "Rindle",
    "RindleError",
    "UploadRejected",
    "__version__",
    "hookimpl",
    "variants",
]


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("rindle")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name in _LAZY:
            value = getattr(_importlib.import_module(_LAZY[name]), name)
        elif name == "variants":
            value = _importlib.import_module("rindle.variants")
        elif name == "__version__":
            value = _version()
        else:
            raise AttributeError(f"module 'rindle' has no attribute {name!r}")
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))
