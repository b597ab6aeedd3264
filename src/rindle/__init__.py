"""rindle: the durable media lifecycle after an upload.

Public names only; everything else lives in subpackages.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from rindle import variants
from rindle.app import Rindle
from rindle.domain.attachments import Owner
from rindle.domain.profile import Delivery, Profile
from rindle.errors import RindleError
from rindle.hookspecs import hookimpl

try:
    __version__ = _metadata.version("rindle")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Delivery",
    "Owner",
    "Profile",
    "Rindle",
    "RindleError",
    "__version__",
    "hookimpl",
    "variants",
]
