"""pytest-django for the rindle-django suite only, on SQLite here and on PostgreSQL in a
child run (``test_django_postgresql.py``).

Django is configured when this file is imported (collection): ``DJANGO_SETTINGS_MODULE``
is set just long enough for ``django.setup()`` and removed again, so no other test and no
child process (the guides' ``manage.py``) inherits it. pytest-django then finds settings
configured and manages the test database; the rest of rindle's suite never asks for its
fixtures.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import django  # noqa: E402
import pytest  # noqa: E402

_previous = os.environ.get("DJANGO_SETTINGS_MODULE")
os.environ["DJANGO_SETTINGS_MODULE"] = "djproject.settings"
try:
    django.setup()
finally:
    if _previous is None:
        del os.environ["DJANGO_SETTINGS_MODULE"]
    else:
        os.environ["DJANGO_SETTINGS_MODULE"] = _previous

from rindle_django import get_app  # noqa: E402

from rindle import Rindle  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _media_dir_removed() -> Iterator[None]:
    """Remove the temporary media folder the settings made (not one given by the
    environment) when the run ends."""
    yield
    from django.conf import settings

    if not os.environ.get("RINDLE_DJANGO_TEST_MEDIA"):
        shutil.rmtree(settings.MEDIA_DIR, ignore_errors=True)


def image(width: int = 120, height: int = 80, fmt: str = "PNG", color: str = "teal") -> bytes:
    """The bytes of a small image."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, fmt)
    return out.getvalue()


@pytest.fixture
def make_image() -> Callable[..., bytes]:
    """:func:`image`."""
    return image


@pytest.fixture
def rindle_app(db: None) -> Rindle:
    """The project's rindle app (on the test database)."""
    return get_app()


@pytest.fixture
def drain(rindle_app: Rindle) -> Callable[[], object]:
    """Run every due job now, in this thread (promotion, variants, purges)."""
    return lambda: rindle_app.jobs.drain()
