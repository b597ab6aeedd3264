"""A rindle plugin refuses to load against a ``rindle`` that is not the rindle media library.

The name ``rindle`` on the public package index belongs to an unrelated project, and a
version range cannot tell the two apart. Every rindle plugin's first import is therefore
``from rindle.core_identity import require_core`` then ``require_core(dist, supported_api)``;
a plugin needs only its own two-line fallback for a ``rindle`` too foreign (or too
absent) to hold this module.

This module imports only the standard library (its parent ``rindle/__init__.py`` is cheap
too: no SQLAlchemy, no Pillow), because it runs before the plugin's own imports. Keep
:func:`require_core`'s signature stable: plugins built from older checkouts call it.
"""

from __future__ import annotations

import os
import sys

__all__ = ["RindleCoreMismatch", "found", "reinstall_fix", "require_core"]


class RindleCoreMismatch(ImportError):
    """The importable ``rindle`` is not the rindle media library, or has a core API the
    plugin does not support. The message is one line: the problem, then the fix."""


def reinstall_fix(dist: str) -> str:
    """The fix for a wrong or missing core, naming ``dist`` (``rindle-s3``) and its folder
    in the checkout (``plugins/rindle_s3``)."""
    return ("install it from this project's checkout or wheelhouse: pip uninstall rindle && "
            f"pip install <checkout> <checkout>/plugins/{dist.replace('-', '_')} "
            f"(or: pip install --no-index --find-links <wheelhouse> rindle {dist})")


def found(module: object) -> str:
    """``rindle <version> at <folder>`` for an imported ``rindle`` package (its installed
    distribution's version, or ``no version``; a namespace package's paths)."""
    from importlib import metadata  # loaded only on the way to an error

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


def require_core(dist: str, supported_api: tuple[int, ...]) -> None:
    """Return if the importable ``rindle`` is the rindle media library with a core API in
    ``supported_api``; else raise :class:`RindleCoreMismatch` (``name="rindle"``) whose
    one-line message names ``dist``, what was found and the fix."""
    rindle = sys.modules["rindle"]  # imported before this module, its child
    api = getattr(rindle, "__rindle_core_api__", None)
    if api is None:  # another project's __init__ over this package's files
        raise RindleCoreMismatch(
            f"{dist}: the installed 'rindle' is not the rindle media library "
            f"(found {found(rindle)}); {reinstall_fix(dist)}", name="rindle")
    if api not in supported_api:
        raise RindleCoreMismatch(
            f"{dist} supports rindle core API {supported_api}, but the installed "
            f"rindle has {api!r} (found {found(rindle)}); install a matching {dist} "
            f"and rindle from the same checkout or wheelhouse", name="rindle")
