"""Fixtures of the browser tests: the npm bundles, headless Chromium, the host server.

``npm_dir`` runs ``npm install`` (versions pinned by ``package.json`` and
``package-lock.json`` here) into a temporary folder; it starts as soon as the session
starts so that it overlaps the database and browser start-up. ``browser`` is Debian's
``/usr/bin/chromium`` driven by the system's ``chromedriver`` (selenium), headless, with a
fresh profile. ``host`` serves :mod:`tests.browser.host` for an app in a thread.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rindle import Rindle
from tests.browser import host as host_module
from tests.web.conftest import serve_wsgi

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: Chromium's flags: headless, no sandbox (containers), nothing reaching the network.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1000,800")
#: Seconds ``npm install`` may take (a cold cache downloads about 180 packages).
NPM_TIMEOUT = 240


@pytest.fixture(scope="session")
def npm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose ``node_modules`` holds the pinned uppy and tus-js-client."""
    folder = tmp_path_factory.mktemp("npm")
    for name in ("package.json", "package-lock.json"):
        shutil.copy(HERE / name, folder / name)
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed (scripts/system-deps.sh installs node and npm)")
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefer-offline",
                           "--ignore-scripts", "--loglevel=error"], cwd=folder,
                          capture_output=True, text=True, timeout=NPM_TIMEOUT)
    if done.returncode != 0:
        pytest.fail(f"npm install failed: {done.stderr[-2000:]}")
    for bundle in ("uppy/dist/uppy.min.js", "tus-js-client/dist/tus.min.js"):
        assert (folder / "node_modules" / bundle).is_file(), bundle
    return folder


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium (a fresh user-data-dir) for the whole session."""
    if not Path(CHROMIUM).is_file() or not Path(CHROMEDRIVER).is_file():
        pytest.fail("chromium and chromedriver are needed (scripts/system-deps.sh installs "
                    "them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def serve_host(app_factory: Callable[[str], Rindle], npm: Path, files: Path,
               **options: Any) -> Iterator[tuple[str, Rindle]]:
    """Serve :func:`tests.browser.host.build` in a thread on a free port; yields the base
    URL and the app (``app_factory(base_url)`` builds it once the port is known, so local
    storage's ``base_url`` is this server)."""
    built: list[host_module.Host] = []

    def late(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        return built[0](environ, start)

    try:
        with serve_wsgi(late) as base:
            app = app_factory(base)
            built.append(host_module.build(app, npm_dir=npm, files_dir=files, **options))
            yield base, app
    finally:
        for host in built:
            host.close()
