"""The direct-upload widget's script in a real browser (headless Chromium over WebDriver)
against pytest-django's live server: the file goes to storage through the presigned PUT,
the form posts only the signed token, and the saved photo holds the verified asset."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from djgallery.models import Photo

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium driven by the system's chromedriver."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail("chromium and chromedriver are needed (scripts/system-deps.sh installs "
                    "them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.django_db(transaction=True)
def test_direct_upload_widget_in_a_browser(browser: Any, live_server: Any, tmp_path: Path,
                                           make_image: Callable[..., bytes]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    picture = tmp_path / "browser.png"
    picture.write_bytes(make_image(70, 50))
    browser.get(f"{live_server.url}/photos/direct")
    browser.find_element(By.NAME, "title").send_keys("from the browser")
    browser.find_element(By.CSS_SELECTOR, "input[type=file][data-rindle-for]").send_keys(
        str(picture))
    status = browser.find_element(By.CSS_SELECTOR, "output[data-rindle-status]")
    WebDriverWait(browser, 60).until(
        lambda _: status.text == "uploaded" or status.text.startswith("upload failed"))
    assert status.text == "uploaded"
    hidden = browser.find_element(By.CSS_SELECTOR, "input[type=hidden][name=image]")
    assert hidden.get_attribute("value").count(":") >= 2  # a signed token, not an id
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 60).until(lambda d: re.search(r"/photos/\d+$", d.current_url))
    photo = Photo.objects.get(title="from the browser")
    assert photo.image is not None
    assert photo.image.filename == "browser.png"
    assert photo.image.byte_size == picture.stat().st_size
