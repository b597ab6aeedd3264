"""A Celery app for ``celery -A rindle_celery.worker worker`` (and ``beat``).

It builds the rindle app from the settings file (``RINDLE_CONFIG``, ``./rindle.toml`` or
``[tool.rindle]``, plus ``RINDLE_*``), whose ``[jobs] executor`` must be ``"celery"``. An
app that registers its own job kinds builds its Celery app the same way in its own module:
``celery = rindle_celery.celery_app(my_rindle_app)``.
"""

from __future__ import annotations

from rindle import Rindle
from rindle_celery.executor import celery_app

__all__ = ["app", "rindle_app"]

#: The rindle app, from the settings file.
rindle_app = Rindle.from_config()
#: The Celery app (the name ``celery -A`` looks for).
app = celery_app(rindle_app)
