"""Settings of the rindle-django test project.

The database is SQLite unless ``RINDLE_DJANGO_TEST_DATABASE`` holds a PostgreSQL URL
(``postgresql+psycopg://user@host:port/name``, trust authentication: the suite's throwaway
server), which is how the PostgreSQL run of this suite is started (see conftest.py).
``RINDLE_DJANGO_TEST_MEDIA`` is the local storage's root (a fresh temporary folder
otherwise).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "rindle-django-tests-not-a-secret-" + "x" * 20
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rindle_django",
    "djgallery",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "djproject.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test logins

_pg = os.environ.get("RINDLE_DJANGO_TEST_DATABASE")
if _pg:
    _url = urlsplit(_pg)
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": _url.username or "",
        "HOST": _url.hostname or "",
        "PORT": str(_url.port or ""),
        "TEST": {"NAME": _url.path.lstrip("/") + "_test"},
    }}
else:
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("RINDLE_DJANGO_TEST_SQLITE") or str(
            Path(tempfile.gettempdir()) / f"rindle-django-{os.getpid()}.sqlite3"),
    }}

MEDIA_DIR = os.environ.get("RINDLE_DJANGO_TEST_MEDIA") or tempfile.mkdtemp(
    prefix="rindle-django-media-")
RINDLE = {
    "profiles": ["djgallery.media.Photo", "djgallery.media.Shot"],
    "storages": {"default": {"backend": "local", "root": MEDIA_DIR, "base_url": "/rindle"}},
    "tmp_dir": os.path.join(MEDIA_DIR, ".tmp"),
}
