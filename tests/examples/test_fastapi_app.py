"""examples/fastapi_app over real HTTP under uvicorn (both dialects): the upload form, the
gallery rendered with rindle.html, and the delivery app mounted at /rindle."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from examples.fastapi_app import Photo, create_app
from examples.fastapi_app.app import Photos
from PIL import Image

from rindle import Rindle
from tests.html_support import untokened
from tests.uvicorn_server import UvicornThread


@dataclass
class Site:
    rindle: Rindle
    photos: Photos
    client: httpx.Client
    base: str


@pytest.fixture
def site(make_app: Callable[..., Rindle], tmp_path: Path) -> Iterator[Site]:
    server = UvicornThread()
    base = f"http://127.0.0.1:{server.port}"
    rindle = make_app(profiles=[Photo], storages={"default": {
        "backend": "local", "root": str(tmp_path / "media"), "base_url": f"{base}/rindle"}})
    rindle.migrate()
    photos = Photos(tmp_path / "photos.db")
    server.start(create_app(rindle, photos))
    with httpx.Client(base_url=base, timeout=30) as client:
        yield Site(rindle, photos, client, base)
    server.stop()
    photos.close()


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, "PNG")
    return out.getvalue()


def test_upload_then_the_gallery_shows_a_srcset_served_by_the_mount(site: Site) -> None:
    first = site.client.get("/")
    assert first.status_code == 200 and "No photos yet." in first.text
    assert '<form action="/upload" method="post" enctype="multipart/form-data">' in first.text
    title = 'Tom & "Jerry" <script>alert(1)</script>'
    sent = site.client.post("/upload", data={"title": title},
                            files={"file": ("beach.png", _png(1200, 800), "image/png")})
    assert sent.status_code == 303 and sent.headers["location"] == "/"
    [entry] = site.photos.all()
    assert site.rindle.jobs.drain() >= 3  # promotion and the two variants
    asset = site.rindle.get_asset(entry.asset_id)
    small, large = (f"{site.base}/rindle/media/{asset.variants[n].storage_key}?token=T"
                    for n in ("small", "large"))
    page = untokened(site.client.get("/").text)
    alt = "Tom &amp; &quot;Jerry&quot; &lt;script&gt;alert(1)&lt;/script&gt;"
    assert (f'<picture><img src="{large}" srcset="{small} 320w, {large} 960w" '
            f'sizes="(max-width: 600px) 100vw, 480px" alt="{alt}" width="960" height="640" '
            'loading="lazy"></picture>') in page
    assert "<script>" not in page
    url = re.search(r'srcset="([^" ]+) 320w', site.client.get("/").text)
    assert url is not None
    got = site.client.get(url.group(1).replace("&amp;", "&"))
    assert got.status_code == 200 and got.headers["content-type"] == "image/webp"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert Image.open(io.BytesIO(got.content)).size == (320, 213)
    part = site.client.get(url.group(1).replace("&amp;", "&"), headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == got.content[:10]


def test_a_rejected_upload_is_422_and_records_nothing(site: Site) -> None:
    sent = site.client.post("/upload", data={"title": "notes"},
                            files={"file": ("notes.png", b"just text, not an image", "image/png")})
    assert sent.status_code == 422
    assert 'role="alert"' in sent.text and "No photos yet." in sent.text
    assert site.photos.all() == []


def test_a_title_over_the_form_limit_is_refused(site: Site) -> None:
    sent = site.client.post("/upload", data={"title": "x" * 201},
                            files={"file": ("a.png", _png(10, 10), "image/png")})
    assert sent.status_code == 422 and site.photos.all() == []
    ok = site.client.post("/upload", data={"title": "x" * 200},
                          files={"file": ("a.png", _png(10, 10), "image/png")})
    assert ok.status_code == 303 and len(site.photos.all()) == 1


def test_the_mount_answers_only_signed_requests(site: Site) -> None:
    assert site.client.get("/rindle/media/photo/x.png").status_code == 403
    assert site.client.get("/rindle/nothing").status_code == 404
    assert site.client.get("/rindle/nothing").headers["x-content-type-options"] == "nosniff"
