"""app.upload takes a path, bytes-like data or a binary file object; what it cannot read
is a UsageError with a code, raised before anything is stored (both dialects)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from rindle import Profile, Rindle
from rindle.domain.models import Asset
from rindle.errors import UsageError


class Picture(Profile):
    name = "picture"
    allow_mime = ("image/png",)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (3, 2), (0, 120, 40)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def papp(make_app: Callable[..., Rindle]) -> Rindle:
    return make_app(profiles=[Picture])


def assets(app: Rindle) -> int:
    with app.db.sessionmaker() as s:
        return s.scalar(select(func.count()).select_from(Asset)) or 0


def stored_files(tmp_path: Path) -> list[Path]:
    media = tmp_path / "media"
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "BytesIO", "open-rb"])
def test_bytes_like_and_binary_files_upload(kind: str, papp: Rindle, tmp_path: Path) -> None:
    data = png()
    path = tmp_path / "on-disk.png"
    path.write_bytes(data)
    sources: dict[str, Callable[[], Any]] = {
        "bytes": lambda: data, "bytearray": lambda: bytearray(data),
        "memoryview": lambda: memoryview(data), "BytesIO": lambda: io.BytesIO(data),
        "open-rb": lambda: path.open("rb"),
    }
    source = sources[kind]()
    try:
        asset = papp.upload("picture", source, filename="holiday.png")
    finally:
        if hasattr(source, "close"):
            source.close()
    assert asset.byte_size == len(data) and asset.content_type == "image/png"
    assert asset.filename == "holiday.png" and asset.width == 3
    assert assets(papp) == 1


def test_a_path_needs_no_filename(papp: Rindle, tmp_path: Path) -> None:
    path = tmp_path / "named.png"
    path.write_bytes(png())
    assert papp.upload("picture", path).filename == "named.png"
    assert papp.upload("picture", str(path)).filename == "named.png"


@pytest.mark.parametrize("kind", ["bytes", "memoryview", "BytesIO", "open-rb"])
@pytest.mark.parametrize("filename", [None, ""])
def test_filename_is_required_for_data_and_file_objects(kind: str, filename: str | None,
                                                        papp: Rindle, tmp_path: Path) -> None:
    data = png()
    path = tmp_path / "x.png"
    path.write_bytes(data)
    source: Any = {"bytes": data, "memoryview": memoryview(data), "BytesIO": io.BytesIO(data),
                   "open-rb": None}[kind]
    if kind == "open-rb":
        source = path.open("rb")
    try:
        with pytest.raises(UsageError) as err:
            papp.upload("picture", source, filename=filename)
    finally:
        if hasattr(source, "close"):
            source.close()
    assert err.value.code == "filename_required"
    assert err.value.message.startswith("filename= is required when uploading ")
    assert 'filename="photo.jpg"' in err.value.message
    assert assets(papp) == 0 and stored_files(tmp_path) == []


class StrReader:
    """A file-like object that is not an io.TextIOBase but yields text."""

    def read(self, size: int = -1) -> str:
        return "not bytes"


@pytest.mark.parametrize("kind", ["open-r", "StringIO", "str-reader"])
def test_text_mode_files_are_refused(kind: str, papp: Rindle, tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"text-ish")
    source: Any = {"open-r": None, "StringIO": io.StringIO("abc"), "str-reader": StrReader()}[kind]
    if kind == "open-r":
        source = path.open("r", encoding="latin-1")
    try:
        with pytest.raises(UsageError) as err:
            papp.upload("picture", source, filename="x.png")
    finally:
        if hasattr(source, "close"):
            source.close()
    assert err.value.code == "text_mode_file"
    assert "binary mode" in err.value.message and 'open(path, "rb")' in err.value.message
    assert assets(papp) == 0 and stored_files(tmp_path) == []
    spooled = papp.settings.resolved_tmp_dir / "uploads"
    assert not spooled.exists() or list(spooled.iterdir()) == []  # the spool file is gone


@pytest.mark.parametrize("source", [42, {"data": b"x"}, None, [b"x"]])
def test_anything_else_is_named(source: Any, papp: Rindle) -> None:
    with pytest.raises(UsageError) as err:
        papp.upload("picture", source, filename="x.png")
    assert err.value.code == "invalid_upload_source"
    assert err.value.message.startswith(f"cannot upload a {type(source).__name__}: pass a path")


def test_a_path_that_is_not_a_file(papp: Rindle, tmp_path: Path) -> None:
    for missing in (tmp_path / "nope.png", tmp_path):
        with pytest.raises(UsageError) as err:
            papp.upload("picture", missing)
        assert err.value.code == "source_not_found"
        assert err.value.message == f"cannot upload {str(missing)!r}: it is not a file"
