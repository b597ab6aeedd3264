"""rindle's own tables (Alembic migrations shipped with rindle), created by ``manage.py migrate``.

The migration runs ``app.migrate()`` (Alembic ``upgrade head``) on the connection of the
``RINDLE["database"]`` alias, the one rindle shares; for any other alias it does nothing.
Reversing it runs ``downgrade base`` (drops rindle's tables). Later rindle releases add no
Django migration: ``manage.py rindle migrate`` (or this one's re-run through
``manage.py migrate rindle_django zero`` then forward) brings the schema to the new head.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def _upgrade(apps: Any, schema_editor: Any) -> None:
    from rindle_django.conf import database_alias, get_app

    if schema_editor.connection.alias == database_alias():
        get_app().migrate()


def _downgrade(apps: Any, schema_editor: Any) -> None:
    from rindle_django.conf import database_alias, get_app

    if schema_editor.connection.alias == database_alias():
        get_app().db.downgrade("base")


class Migration(migrations.Migration):
    """Alembic ``upgrade head`` for rindle's tables."""

    initial = True
    operations = [migrations.RunPython(_upgrade, _downgrade, elidable=False)]
