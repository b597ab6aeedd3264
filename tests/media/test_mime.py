"""MIME sniffing against real files: the bytes decide, never the name."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from PIL import Image, features

from rindle.media.mime import (
    EXTENSION_MIME,
    SNIFF_WINDOW,
    extension_mime,
    normalize_extension,
    sniff,
)
from tests.media import images


def _samples() -> dict[str, tuple[bytes, str | None]]:
    pic = images.picture()
    wav_fmt = struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    ebml = bytes.fromhex("1A45DFA3")
    samples: dict[str, tuple[bytes, str | None]] = {
        "jpeg": (images.jpeg(), "image/jpeg"),
        "jpeg_exif": (images.jpeg(orientation=6), "image/jpeg"),
        "png": (images.png(), "image/png"),
        "webp": (images.encode(pic, "WEBP"), "image/webp"),
        "gif": (images.encode(pic, "GIF"), "image/gif"),
        "heic": (images.ftyp(b"heic", b"mif1heic"), "image/heic"),
        "heif_generic": (images.ftyp(b"mif1", b"mif1miaf"), "image/heif"),
        "avif_in_mif1": (images.ftyp(b"mif1", b"mif1avifmiaf"), "image/avif"),
        "mp4": (images.ftyp(b"isom", b"isomiso2avc1mp41"), "video/mp4"),
        "mp4_mp42": (images.ftyp(b"mp42", b"mp42isom"), "video/mp4"),
        "mov": (images.ftyp(b"qt  ", b"qt  "), "video/quicktime"),
        "m4a": (images.ftyp(b"M4A ", b"M4A mp42isom"), "audio/mp4"),
        "webm": (ebml + bytes.fromhex("9F4282847765626D42878104") + bytes(32), "video/webm"),
        "mkv": (ebml + bytes.fromhex("A34282886D6174726F736B61") + bytes(32), "video/x-matroska"),
        "mp3_id3": (b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00" + bytes(400), "audio/mpeg"),
        "mp3_frames": ((b"\xff\xfb\x90\x64" + bytes(413)) * 3, "audio/mpeg"),
        "wav": (b"RIFF\x24\x00\x00\x00WAVEfmt " + wav_fmt + b"data\x00\x00\x00\x00", "audio/wav"),
        "flac": (b"fLaC\x00\x00\x00\x22" + bytes(40), "audio/flac"),
        "ogg": (b"OggS\x00\x02" + bytes(20) + b"\x01\x1e\x01vorbis" + bytes(30), "audio/ogg"),
        "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "application/pdf"),
        "html": (images.HTML, "text/html"),
        "html_indented": (b"\n   <html><body><img src=x onerror=alert(1)></body></html>",
                          "text/html"),
        "html_late_script": (b"just some words <script>alert(1)</script>", "text/html"),
        "svg": (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
        "plain_text": (b"hello, world\n", None),
        "utf8_text": ("résumé 日本\n".encode(), None),
        "zeros": (bytes(100), None),
        "binary_noise": (bytes(range(256)) * 4, None),
        "truncated_jpeg": (images.truncated_jpeg(), "image/jpeg"),
    }
    if features.check("avif"):
        samples["avif"] = (images.encode(pic, "AVIF"), "image/avif")
    return samples


SAMPLES = _samples()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sniff_recognises_by_content(name: str, tmp_path: Path) -> None:
    data, expected = SAMPLES[name]
    path = images.write(tmp_path, "upload.bin", data)
    assert sniff(path) == expected
    assert sniff(str(path)) == expected
    assert sniff(data) == expected


@pytest.mark.parametrize("name", ["html", "html_indented", "html_late_script", "plain_text",
                                  "utf8_text", "svg"])
def test_text_is_never_a_raster_image(name: str) -> None:
    mime = sniff(SAMPLES[name][0])
    assert mime is None or not mime.startswith(("image/jpeg", "image/png", "image/gif",
                                                 "image/webp", "image/avif", "image/heic"))


def test_html_with_image_magic_later_is_still_html() -> None:
    data = b"<html><body>\x89PNG\r\n\x1a\n</body></html>"
    assert sniff(data) == "text/html"


def test_html_with_stray_control_bytes_is_still_html() -> None:
    assert sniff(b"  <!doctype html><p>\x1b[31m \x00 </p>") == "text/html"


def test_empty_input_is_unknown(tmp_path: Path) -> None:
    assert sniff(images.write(tmp_path, "empty.png", b"")) is None
    assert sniff(b"") is None


def test_only_the_first_window_is_read(tmp_path: Path) -> None:
    # A PNG signature past 8 KiB must not count; text up to the window then binary.
    data = b"a" * SNIFF_WINDOW + b"\x89PNG\r\n\x1a\n" + bytes(100)
    assert sniff(images.write(tmp_path, "late.png", data)) is None


def test_cut_multibyte_character_at_window_edge_is_still_text() -> None:
    data = b"a" * (SNIFF_WINDOW - 1) + "é".encode() + b"<script>"
    assert sniff(data) is None


def test_octet_stream_answers_become_unknown() -> None:
    # puremagic has an entry for some all-zero headers with no MIME type at all.
    assert sniff(bytes(SNIFF_WINDOW)) is None


def test_real_gif_and_bmp_from_pillow(tmp_path: Path) -> None:
    im = Image.new("P", (8, 8))
    assert sniff(images.encode(im, "GIF")) == "image/gif"
    assert sniff(images.encode(im.convert("RGB"), "BMP")) == "image/bmp"


@pytest.mark.parametrize(("ext", "mime"), [
    (".jpg", "image/jpeg"), ("jpeg", "image/jpeg"), (".JPG", "image/jpeg"),
    (" .Png ", "image/png"), (".webp", "image/webp"), (".gif", "image/gif"),
    (".avif", "image/avif"), (".mp4", "video/mp4"), (".mov", "video/quicktime"),
    (".webm", "video/webm"), (".mp3", "audio/mpeg"), (".m4a", "audio/mp4"),
    (".wav", "audio/wav"), (".flac", "audio/flac"), (".ogg", "audio/ogg"),
    (".pdf", "application/pdf"), (".xyz", None), ("", None), (".", None),
])
def test_extension_mime_table(ext: str, mime: str | None) -> None:
    assert extension_mime(ext) == mime


def test_every_sniffed_sample_has_a_matching_extension() -> None:
    sniffed = {expected for _, expected in SAMPLES.values() if expected is not None}
    assert sniffed <= set(EXTENSION_MIME.values())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_sniff_never_reports_octet_stream_or_crashes(data: bytes) -> None:
    mime = sniff(data)
    assert mime != "application/octet-stream"
    assert mime is None or "/" in mime


# Printable magic numbers: a text starting with one of these *is* that format by its magic.
_PRINTABLE_MAGIC = (b"GIF87a", b"GIF89a", b"ID3", b"fLaC", b"OggS", b"%PDF-", b"RIFF",
                    *(b"P%d" % n for n in range(1, 8)))  # netpbm


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
@example(text="\x01\x00")  # puremagic 1.30 calls this WMF: 2-byte signatures are not trusted
@example(text="BM")
def test_text_never_sniffs_as_image_audio_or_video(text: str) -> None:
    data = text.encode("utf-8")
    assume(not data.startswith(_PRINTABLE_MAGIC) and data[4:8] != b"ftyp")
    mime = sniff(data)
    assert mime is None or mime == "image/svg+xml" or not mime.startswith(
        ("image/", "audio/", "video/"))


def test_normalize_extension() -> None:
    assert normalize_extension("PNG") == ".png"
    assert normalize_extension(" .JpG ") == ".jpg"
    assert normalize_extension("") == ""
