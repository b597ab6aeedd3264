"""The Django application config of rindle-django."""

from __future__ import annotations

from django.apps import AppConfig


class RindleConfig(AppConfig):
    """``INSTALLED_APPS += ["rindle_django"]``.

    :meth:`ready` touches no database and builds no :class:`rindle.Rindle` (the first
    :func:`rindle_django.get_app` does); it only drops the cached app when ``RINDLE`` or
    ``DATABASES`` change (``override_settings`` in tests).
    """

    name = "rindle_django"
    label = "rindle_django"
    verbose_name = "rindle media"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the settings-changed and request-finished receivers; nothing else."""
        from django.core.signals import request_finished, setting_changed

        from rindle_django.conf import on_setting_changed

        setting_changed.connect(on_setting_changed, dispatch_uid="rindle_django.settings")
        request_finished.connect(_after_request, dispatch_uid="rindle_django.rollbacks")


def _after_request(**_: object) -> None:
    """``request_finished``: run what a rolled-back block of the request left to undo."""
    from rindle_django.db import run_rollback_effects

    run_rollback_effects()
