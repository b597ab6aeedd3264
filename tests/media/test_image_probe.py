"""The header-only image probe and its ``rindle_probe`` default plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from rindle.default_plugins import image_probe as probe_plugin
from rindle.errors import ProcessingError
from rindle.media.image_probe import probe_image
from rindle.plugins import make_plugin_manager
from tests.media import images


@pytest.mark.parametrize(("orientation", "expected"), [
    (None, (60, 40)), (1, (60, 40)), (2, (60, 40)), (3, (60, 40)), (4, (60, 40)),
    (5, (40, 60)), (6, (40, 60)), (7, (40, 60)), (8, (40, 60)),
])
def test_probe_reports_displayed_size(orientation: int | None, expected: tuple[int, int],
                                      tmp_path: Path) -> None:
    path = images.write(tmp_path, "a.jpg", images.jpeg((60, 40), orientation=orientation))
    assert probe_image(path) == {"kind": "image", "width": expected[0],
                                 "height": expected[1], "format": "JPEG"}


def test_probe_png_with_exif_chunk(tmp_path: Path) -> None:
    data = images.png((30, 20), exif=images.exif_bytes(8))
    path = images.write(tmp_path, "a.png", data)
    assert probe_image(path)["width"] == 20
    assert probe_image(path)["height"] == 30


def test_probe_decodes_no_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jpg = images.write(tmp_path, "a.jpg", images.jpeg((60, 40), orientation=6))
    png = images.write(tmp_path, "a.png", images.png((60, 40)))
    with images.count_decodes(monkeypatch) as decodes:
        assert probe_image(jpg)["width"] == 40
        assert probe_image(png)["width"] == 60
    assert decodes == []


def test_probe_huge_dimensions_without_decoding(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = images.write(tmp_path, "big.png", images.png_bomb(8_000))
    with images.count_decodes(monkeypatch) as decodes:
        assert probe_image(path)["width"] == 8_000
    assert decodes == []


def test_probe_refuses_decompression_bomb(tmp_path: Path) -> None:
    path = images.write(tmp_path, "bomb.png", images.png_bomb(20_000))
    with pytest.raises(ProcessingError) as info:
        probe_image(path)
    assert info.value.code == "max_pixels_exceeded"


def test_probe_unreadable_file(tmp_path: Path) -> None:
    path = images.write(tmp_path, "a.png", b"\x89PNG\r\n\x1a\n" + b"garbage")
    with pytest.raises(ProcessingError) as info:
        probe_image(path)
    assert info.value.code == "image_unreadable"


def test_hook_rindle_probe_answers_images(tmp_path: Path) -> None:
    pm = make_plugin_manager(load_entrypoints=False)  # the probe is a default plugin
    assert pm.is_registered(probe_plugin)
    path = images.write(tmp_path, "a.jpg", images.jpeg((60, 40), orientation=6))
    result = pm.hook.rindle_probe(path=path, mime="image/jpeg")
    assert result == {"kind": "image", "width": 40, "height": 60, "format": "JPEG"}


@pytest.mark.parametrize(("mime", "data"), [
    ("video/mp4", images.ftyp(b"isom")),
    ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
    ("image/heic", images.ftyp(b"heic", b"mif1heic")),  # Pillow cannot read it: let others
])
def test_hook_rindle_probe_declines_what_it_cannot_read(mime: str, data: bytes,
                                                       tmp_path: Path) -> None:
    path = images.write(tmp_path, "a.bin", data)
    assert probe_plugin.rindle_probe(path=path, mime=mime) is None


def test_hook_rindle_probe_raises_on_bomb(tmp_path: Path) -> None:
    path = images.write(tmp_path, "bomb.png", images.png_bomb(20_000))
    with pytest.raises(ProcessingError):
        probe_plugin.rindle_probe(path=path, mime="image/png")
