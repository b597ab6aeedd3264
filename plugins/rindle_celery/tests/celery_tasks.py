"""The Celery app the tests' workers run (``celery -A celery_tasks worker``): the rindle app
from ``RINDLE_CONFIG`` with the test kinds registered."""

from __future__ import annotations

import celerykit

from rindle import Rindle
from rindle_celery import celery_app

rindle_app = Rindle.from_config()
celerykit.register(rindle_app.jobs)
app = celery_app(rindle_app)
