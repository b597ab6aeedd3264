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
        """Connect the settings-changed receiver; nothing else."""
        from django.core.signals import setting_changed

        from rindle_django.conf import on_setting_changed

        setting_changed.connect(on_setting_changed, dispatch_uid="rindle_django.settings")
