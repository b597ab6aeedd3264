"""rindle-celery: run rindle's jobs on Celery (``[jobs] executor = "celery"``)."""

from rindle_celery import _rindle_core  # noqa: F401  (first: is this the rindle media library?)
from rindle_celery.executor import RELAY_TASK, RUN_TASK, CeleryExecutor, celery_app

__all__ = ["RELAY_TASK", "RUN_TASK", "CeleryExecutor", "celery_app"]
__version__ = "0.1.0"
