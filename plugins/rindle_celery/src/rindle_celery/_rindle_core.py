"""Refuse to load against a ``rindle`` that is not the rindle media library.

The name ``rindle`` on the public package index belongs to an unrelated project, and a
version range cannot tell the two apart, so rindle-celery checks at import for the attribute
only the core defines (``rindle.__rindle_core_api__``). This module runs first, from
``rindle_celery/__init__.py``, and imports nothing from rindle but the package itself.
"""

from __future__ import annotations

import os
from importlib import metadata

__all__ = ["RindleCoreMismatch", "check_rindle_core"]

DIST = "rindle-celery"
#: The ``rindle.__rindle_core_api__`` values this plugin works with.
SUPPORTED_CORE_API = (1,)
FIX = ("install it from this project's checkout or wheelhouse: pip uninstall rindle && "
       "pip install <checkout> <checkout>/plugins/rindle_celery "
       "(or: pip install --no-index --find-links <wheelhouse> rindle rindle-celery)")


class RindleCoreMismatch(ImportError):
    """The importable ``rindle`` is missing, another project, or an unsupported core."""


def _found(module: object) -> str:
    try:
        version = metadata.version("rindle")
    except metadata.PackageNotFoundError:
        version = "no version"
    where = getattr(module, "__file__", None)
    if where:
        where = os.path.dirname(where)
    else:  # a namespace package
        where = ", ".join(getattr(module, "__path__", [])) or "unknown path"
    return f"rindle {version} at {where}"


def check_rindle_core() -> None:
    """Raise :class:`RindleCoreMismatch` (one line: the problem and the fix) unless the
    importable ``rindle`` is the rindle media library with a supported core API."""
    try:
        import rindle
    except ModuleNotFoundError as exc:
        if exc.name != "rindle":
            raise
        raise RindleCoreMismatch(
            f"{DIST} needs the rindle media library, which is not installed; {FIX}",
            name="rindle") from None
    api = getattr(rindle, "__rindle_core_api__", None)
    if api is None:
        raise RindleCoreMismatch(
            f"{DIST}: the installed 'rindle' is not the rindle media library "
            f"(found {_found(rindle)}); {FIX}", name="rindle")
    if api not in SUPPORTED_CORE_API:
        raise RindleCoreMismatch(
            f"{DIST} supports rindle core API {SUPPORTED_CORE_API}, but the installed "
            f"rindle has {api!r} (found {_found(rindle)}); install a matching {DIST} "
            f"and rindle from the same checkout or wheelhouse", name="rindle")


check_rindle_core()
