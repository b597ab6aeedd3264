"""rindle-django: rindle in a Django project.

Add ``"rindle_django"`` to ``INSTALLED_APPS`` and a ``RINDLE = {...}`` setting (the keys of
``rindle.toml``); rindle then shares Django's ``DATABASES`` connection, so its writes
commit or roll back with ``transaction.atomic()``. :func:`get_app` is the process's one
:class:`rindle.Rindle`, built on first use. Model fields live in :mod:`rindle_django.fields`,
forms in :mod:`rindle_django.forms`, the admin mixin in :mod:`rindle_django.admin`.
"""

from rindle_django import _rindle_core  # noqa: F401  (first: is this the rindle media library?)
from rindle_django.conf import get_app, reset_app

__all__ = ["get_app", "reset_app"]
__version__ = "0.1.0"
