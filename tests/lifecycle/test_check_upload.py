"""app.check_upload: the proxied upload's checks without storing or recording anything.

Used by rindle-django's form field so a form failing on another field leaves nothing
behind. Same answers as app.upload for the same input, on SQLite and PostgreSQL: what it
proved on success, UploadRejected with the reason (counted as rindle.upload.rejected),
UsageError for a source it cannot read; no row, no stored object, no spooled file left.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from rindle import Profile, Rindle
from rindle.domain.models import Asset
from rindle.errors import UploadRejected, UsageError
from tests.apps import MakeApp
from tests.lifecycle.conftest import PROFILES, jpeg_bytes, png_bytes

DATA = jpeg_bytes((64, 48))


class Exact(Profile):
    """A profile whose max_bytes is exactly the sample's size."""

    name = "exact"
    allow_mime = ("image/jpeg",)
    max_bytes = len(DATA)
    variants = {}


@pytest.fixture
def app(make_app: MakeApp) -> Rindle:
    return make_app(profiles=[*PROFILES, Exact])


def nothing_kept(app: Rindle) -> tuple[int, list[Path], list[Path]]:
    """Assets, stored objects and spooled files: all should stay empty."""
    with app.db.sessionmaker() as s:
        assets = int(s.scalar(select(func.count()).select_from(Asset)) or 0)
    root: Path = app.storage().root  # type: ignore[attr-defined]
    spool = app.settings.resolved_tmp_dir / "uploads"
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
    spooled = sorted(spool.iterdir()) if spool.is_dir() else []
    return assets, files, spooled


def test_a_good_file_is_described_and_nothing_is_kept(app: Rindle) -> None:
    source = io.BytesIO(DATA)
    checked = app.check_upload("photo", source, filename="Cam 1.JPEG")
    assert (checked.mime, checked.extension, checked.byte_size, checked.width,
            checked.height) == ("image/jpeg", ".jpeg", len(DATA), 64, 48)
    assert source.tell() == len(DATA)  # read to its end: seek back before uploading
    assert nothing_kept(app) == (0, [], [])
    source.seek(0)
    assert app.upload("photo", source, filename="Cam 1.JPEG").byte_size == len(DATA)


def test_max_bytes_at_the_limit_passes_and_one_past_is_rejected(app: Rindle) -> None:
    assert app.check_upload("exact", DATA, filename="a.jpg").byte_size == len(DATA)
    with pytest.raises(UploadRejected) as err:
        app.check_upload("exact", DATA + b"\0", filename="a.jpg")
    assert err.value.code == "max_bytes_exceeded"
    assert nothing_kept(app) == (0, [], [])


@pytest.mark.parametrize(("data", "name", "code"), [
    (png_bytes(), "p.png", "mime_not_allowed"),  # jpeg_only takes JPEG only
    (DATA, "a.png", "extension_mime_mismatch"),
    (b"hello world", "a.jpg", "unknown_mime"),
])
def test_a_rejection_has_the_upload_reason_and_is_counted(
        app: Rindle, data: bytes, name: str, code: str) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    app.telemetry.attach(lambda event, _m, meta: seen.append((event, meta)))
    with pytest.raises(UploadRejected) as err:
        app.check_upload("jpeg_only", data, filename=name)
    assert err.value.code == code
    with pytest.raises(UploadRejected) as same:
        app.upload("jpeg_only", data, filename=name)
    assert same.value.code == code  # the upload itself says the same
    assert [m["code"] for e, m in seen if e == "rindle.upload.rejected"] == [code, code]
    assert nothing_kept(app) == (0, [], [])


@pytest.mark.parametrize(("source", "filename", "code"), [
    (DATA, None, "filename_required"),
    (io.StringIO("text"), "a.jpg", "text_mode_file"),
    ("/nonexistent/a.jpg", None, "source_not_found"),
    (12, "a.jpg", "invalid_upload_source"),
])
def test_a_source_it_cannot_read_is_a_usage_error(app: Rindle, source: Any,
                                                  filename: str | None, code: str) -> None:
    with pytest.raises(UsageError) as err:
        app.check_upload("photo", source, filename=filename)
    assert err.value.code == code
    assert nothing_kept(app) == (0, [], [])


def test_a_path_is_checked_in_place(app: Rindle, tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(DATA)
    assert app.check_upload("photo", path).sanitized_filename == "photo.jpg"
    assert path.read_bytes() == DATA and nothing_kept(app) == (0, [], [])
