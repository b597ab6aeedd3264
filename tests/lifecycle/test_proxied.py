"""Proxied uploads end to end: validate, store, promote, render variants, deliver."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from rindle import Rindle
from rindle.domain.models import Asset, Job, ProcessingRun
from rindle.errors import AssetNotReady, UploadRejected
from rindle.processing.promote import promote_asset
from tests.apps import local_storage
from tests.lifecycle.conftest import Photo, jpeg_bytes, png_bytes


def stored_files(app: Rindle) -> list[Path]:
    root: Path = local_storage(app).root
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def count_assets(app: Rindle) -> int:
    with app.db.sessionmaker() as s:
        return int(s.scalar(select(func.count()).select_from(Asset)) or 0)


def test_proxied_upload_promotes_and_renders_every_variant(photo_app: Rindle, files: Any) -> None:
    src = files("holiday photo.jpg", jpeg_bytes((1200, 800)))
    asset = photo_app.upload("photo", src, filename="../../holiday photo?.jpg")
    assert asset.state == "analyzing"
    assert asset.filename == "holiday_photo_.jpg"
    assert asset.content_type == "image/jpeg"
    assert asset.storage_key.startswith(f"photo/{asset.id}/") and asset.storage_key.endswith(".jpg")
    ran = photo_app.jobs.drain()
    assert ran >= 3  # promote + two variants
    fresh = photo_app.get_asset(asset.id)
    assert fresh.state == "ready"
    assert (fresh.width, fresh.height) == (1200, 800)
    thumb, large = fresh.variants["thumb"], fresh.variants["large"]
    assert thumb.state == large.state == "ready"
    assert (thumb.width, thumb.height) == (64, 64)
    assert (large.width, large.height) == (400, 267)
    assert thumb.storage_key == f"photo/{asset.id}/thumb-{Photo.recipe_digest('thumb')}.webp"
    data = (local_storage(photo_app).root / thumb.storage_key).read_bytes()
    assert Image.open(io.BytesIO(data)).format == "WEBP"
    with photo_app.db.sessionmaker() as s:
        runs = s.scalars(select(ProcessingRun).where(ProcessingRun.asset_id == asset.id)).all()
    assert sorted((r.variant_name, r.state) for r in runs) == [("large", "succeeded"),
                                                               ("thumb", "succeeded")]


def test_upload_accepts_a_file_object(photo_app: Rindle) -> None:
    asset = photo_app.upload(Photo, io.BytesIO(jpeg_bytes()), filename="résumé 日本.jpg")
    assert asset.filename == "r_sum_.jpg"
    assert photo_app.jobs.drain() >= 1


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid 1-bit PNG of width x height that compresses to a few KB."""
    raw_row = b"\x00" + b"\x00" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(raw_row) for _ in range(height)) + comp.flush()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


REJECTIONS = [
    ("empty.jpg", b"", "empty_upload"),
    ("truncated.jpg", jpeg_bytes((800, 600))[:1500], "invalid_image"),
    ("liar.jpg", png_bytes(), "extension_mime_mismatch"),
    ("page.png", b"<!doctype html><html><body>hi</body></html>", None),
    ("bomb.png", bomb_png(), "max_pixels_exceeded"),
    ("big.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * (5 * 1024 * 1024 + 10), "max_bytes_exceeded"),
    ("passwd", jpeg_bytes(), "missing_extension"),
]


@pytest.mark.parametrize(("name", "data", "reason"), REJECTIONS,
                         ids=[r[0] for r in REJECTIONS])
def test_rejected_uploads_leave_no_row_and_no_object(photo_app: Rindle, files: Any, name: str,
                                                     data: bytes, reason: str | None) -> None:
    src = files(name, data)
    with pytest.raises(UploadRejected) as err:
        photo_app.upload("photo", src, filename="../../etc/" + name if name == "passwd" else name)
    if reason is None:  # HTML: never accepted as an image, whichever check says so first
        assert err.value.code in {"unknown_mime", "mime_not_allowed"}
    else:
        assert err.value.code == reason
    assert count_assets(photo_app) == 0
    assert stored_files(photo_app) == []
    with photo_app.db.sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0


def test_rejected_file_object_over_max_bytes_stops_reading_early(photo_app: Rindle) -> None:
    class Endless(io.RawIOBase):
        def __init__(self) -> None:
            self.read_total = 0

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            n = 1 << 20 if n is None or n < 0 else n
            self.read_total += n
            return b"\xff" * n

    stream = Endless()
    with pytest.raises(UploadRejected) as err:
        photo_app.upload("photo", stream, filename="x.jpg")  # type: ignore[arg-type]
    assert err.value.code == "max_bytes_exceeded"
    assert stream.read_total <= Photo.max_bytes + 2 * (1 << 20)
    assert count_assets(photo_app) == 0


def test_signed_url_falls_back_to_the_original_until_the_variant_is_ready(
        photo_app: Rindle, files: Any) -> None:
    asset = photo_app.upload("photo", files("a.jpg", jpeg_bytes()))
    with pytest.raises(AssetNotReady) as err:  # not promoted yet: nothing is delivered
        photo_app.url(asset.id, "thumb")
    assert err.value.code == "asset_not_ready" and err.value.state == "analyzing"
    promote_asset(photo_app, asset.id)  # promoted; the variant jobs have not run
    before = photo_app.url(asset.id, "thumb")
    assert asset.storage_key.replace("/", "%2F") in before or asset.storage_key in before
    assert "token=" in before
    photo_app.jobs.drain()
    after = photo_app.url(asset.id, "thumb")
    assert "thumb-" in after


def test_public_profiles_get_stable_unexpiring_urls(photo_app: Rindle, files: Any) -> None:
    asset = photo_app.upload("banner", files("b.png", png_bytes()))
    photo_app.jobs.drain()
    assert photo_app.url(asset.id) == photo_app.url(asset.id)
