"""The upload trust gate: every rejection reason, bombs, truncation, and properties."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from rindle.errors import UploadRejected
from rindle.media.mime import ACTIVE_CONTENT, EXTENSION_MIME, extension_mime
from rindle.upload.validation import (
    ValidatedUpload,
    check_declared,
    validate_stored_object,
    validate_upload,
)
from tests.media import images

IMAGES = ("image/jpeg", "image/png", "image/webp")


@dataclass(frozen=True)
class Policy:
    allow_mime: tuple[str, ...] = ()
    allow_extensions: tuple[str, ...] = ()
    max_bytes: int | None = None
    max_pixels: int | None = None


def _reject(path: Path, filename: str, policy: Policy) -> UploadRejected:
    with pytest.raises(UploadRejected) as info:
        validate_upload(path, filename=filename, policy=policy)
    assert info.value.code == info.value.reason
    assert info.value.message  # says what happened and what to do
    return info.value


def test_accepts_a_jpeg(tmp_path: Path) -> None:
    path = images.write(tmp_path, "blob", images.jpeg((60, 40), orientation=6))
    checked = validate_upload(path, filename="../My Photo.JPG",
                              policy=Policy(allow_mime=IMAGES, max_bytes=10**6,
                                            max_pixels=60 * 40))
    assert checked == ValidatedUpload(mime="image/jpeg", extension=".jpg",
                                      byte_size=path.stat().st_size, width=40, height=60,
                                      sanitized_filename="My_Photo.JPG")


def test_accepts_non_images_without_dimensions(tmp_path: Path) -> None:
    path = images.write(tmp_path, "clip", images.ftyp(b"isom", b"isomavc1"))
    checked = validate_upload(path, filename="clip.mp4", policy=Policy(max_pixels=100))
    assert (checked.mime, checked.width, checked.height) == ("video/mp4", None, None)


@pytest.mark.parametrize(("data", "filename", "policy", "reason"), [
    (b"", "a.png", Policy(), "empty_upload"),
    (b"hello world\n", "a.png", Policy(), "unknown_mime"),
    (bytes(range(256)), "a.png", Policy(), "unknown_mime"),
    (images.png(), "a.png", Policy(allow_mime=("image/jpeg",)), "mime_not_allowed"),
    (images.HTML, "a.png", Policy(allow_mime=IMAGES), "mime_not_allowed"),
    (images.HTML, "a.png", Policy(), "mime_not_allowed"),  # active content needs opting in
    (images.HTML, "a.html", Policy(allow_mime=("text/*",)), "mime_not_allowed"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "a.svg", Policy(allow_mime=("image/*",)),
     "mime_not_allowed"),
    (images.png(), "photo", Policy(), "missing_extension"),
    (images.png(), "photo.", Policy(), "missing_extension"),
    (images.png(), ".png", Policy(), "missing_extension"),
    (images.png(), "a.png", Policy(allow_extensions=(".jpg", "jpeg")), "extension_not_allowed"),
    (images.png(), "a.jpg", Policy(), "extension_mime_mismatch"),
    (images.jpeg(), "a.png", Policy(allow_mime=IMAGES), "extension_mime_mismatch"),
    (images.png(), "a.xyz", Policy(), "extension_mime_mismatch"),
    (images.png(), "a.png", Policy(max_bytes=10), "max_bytes_exceeded"),
    (images.png((100, 100)), "a.png", Policy(max_pixels=9_999), "max_pixels_exceeded"),
    (images.ftyp(b"heic", b"mif1heic"), "a.heic", Policy(max_pixels=10**6),
     "max_pixels_exceeded"),  # dimensions unreadable here, so the cap cannot be proven
    (images.truncated_jpeg(), "a.jpg", Policy(), "invalid_image"),
    (images.png()[:-30], "a.png", Policy(), "invalid_image"),
    (b"\x89PNG\r\n\x1a\n" + b"not a png at all", "a.png", Policy(), "invalid_image"),
])
def test_rejection_matrix(data: bytes, filename: str, policy: Policy, reason: str,
                          tmp_path: Path) -> None:
    path = images.write(tmp_path, "upload.bin", data)
    assert _reject(path, filename, policy).reason == reason


_AGAIN = "; upload it again from the original."


@pytest.mark.parametrize(("data", "filename", "policy", "message"), [
    (b"", "a.png", Policy(), "the upload is empty (0 bytes); send the file again."),
    (b"hello world\n", "a.png", Policy(),
     "the file's contents match no supported format (the filename and declared content type "
     "are not trusted); upload a real image, video, audio or PDF file."),
    (images.png(), "a.png", Policy(allow_mime=("image/jpeg",)),
     "the file's contents are image/png, which this profile does not accept (allowed: "
     "image/jpeg); upload one of the allowed types."),
    (images.png(), "a.png", Policy(allow_mime=("image/jpeg", "video/*")),
     "the file's contents are image/png, which this profile does not accept (allowed: "
     "image/jpeg, video/*); upload one of the allowed types."),
    (images.png(), "v1.png\\photo", Policy(),  # the extension of the last component only
     "the filename 'photo' has no extension; name the file with one that matches its "
     "contents (image/png)."),
    (images.png(), "dir\\.png", Policy(),  # a dotfile after a backslash has none either
     "the filename '.png' has no extension; name the file with one that matches its "
     "contents (image/png)."),
    (images.HTML, "a.png", Policy(),
     "the file's contents are text/html, which browsers can execute as a page; it is "
     "refused unless the profile's allow_mime lists it explicitly."),
    (images.png(), "dir\\photo", Policy(),
     "the filename 'photo' has no extension; name the file with one that matches its "
     "contents (image/png)."),
    (images.png(), "a.png", Policy(allow_extensions=(".jpg", "jpeg")),
     "files ending in .png are not accepted by this profile (allowed: .jpeg, .jpg)."),
    (images.png(), "a.jpg", Policy(),
     "the file's contents are image/png but its name ends in .jpg (image/jpeg); rename it "
     "to match its contents or upload the file the name describes."),
    (images.png(), "a.xyz", Policy(),
     "the file's contents are image/png but its name ends in .xyz (an unknown type); rename "
     "it to match its contents or upload the file the name describes."),
    (images.png((100, 100)), "a.png", Policy(max_pixels=9_999),
     "the image is 100x100 = 10000 pixels, over this profile's max_pixels of 9999; resize "
     "it before uploading."),
    (images.ftyp(b"heic", b"mif1heic"), "a.heic", Policy(max_pixels=10**6),
     "the dimensions of this image/heic image cannot be read, so its pixel count cannot be "
     "checked against max_pixels (1000000); convert it to JPEG or PNG, or install a plugin "
     "that reads it."),
    (images.truncated_jpeg(), "a.jpg", Policy(),
     "the image/jpeg file is damaged or truncated (no end-of-image marker after the image "
     "data)" + _AGAIN),
    (b"\x89PNG\r\n\x1a\n" + b"not a png at all", "a.png", Policy(),
     "the file starts like image/png but its header cannot be read; it is corrupt or "
     "truncated, so upload it again from the original."),
])
def test_rejection_messages(data: bytes, filename: str, policy: Policy, message: str,
                            tmp_path: Path) -> None:
    path = images.write(tmp_path, "upload.bin", data)
    assert _reject(path, filename, policy).message == message


def test_a_broken_png_names_what_pillow_found(tmp_path: Path) -> None:
    path = images.write(tmp_path, "cut.png", images.png()[:-30])
    with Image.open(path) as im, pytest.raises(Exception) as found:
        im.verify()
    assert str(found.value)
    assert _reject(path, "a.png", Policy()).message == (
        f"the image/png file is damaged or truncated ({found.value})" + _AGAIN)


def _mpo(cut: int | None = None) -> bytes:
    """A two-picture MPO (the JPEG extension cameras write), cut to ``cut`` bytes."""
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "red").save(
        out, "MPO", save_all=True, append_images=[Image.new("RGB", (32, 24), "blue")])
    return out.getvalue()[:cut]


def test_a_multi_picture_jpeg_is_a_jpeg(tmp_path: Path) -> None:
    path = images.write(tmp_path, "x", _mpo())
    with Image.open(path) as im:
        assert im.format == "MPO"
    checked = validate_upload(path, filename="a.jpg", policy=Policy(allow_mime=("image/jpeg",)))
    assert (checked.mime, checked.width, checked.height) == ("image/jpeg", 32, 24)


def test_a_multi_picture_jpeg_cut_short_is_invalid(tmp_path: Path) -> None:
    path = images.write(tmp_path, "x", _mpo(740))  # inside the first picture's data
    with Image.open(path) as im:
        assert im.format == "MPO"  # the header still parses
    rejected = _reject(path, "a.jpg", Policy())
    assert (rejected.reason, rejected.message) == (
        "invalid_image", "the image/jpeg file is damaged or truncated (no end-of-image "
        "marker after the image data)" + _AGAIN)


def test_max_bytes_is_inclusive(tmp_path: Path) -> None:
    data = images.png()
    path = images.write(tmp_path, "x", data)
    assert validate_upload(path, filename="a.png",
                           policy=Policy(max_bytes=len(data))).byte_size == len(data)
    rejected = _reject(path, "a.png", Policy(max_bytes=len(data) - 1))
    assert (rejected.reason, rejected.message) == (
        "max_bytes_exceeded",
        f"the file is {len(data)} bytes, over this profile's max_bytes of {len(data) - 1}; "
        "upload a smaller file.")


def test_html_named_png_is_never_accepted(tmp_path: Path) -> None:
    path = images.write(tmp_path, "x", images.HTML)
    for policy in (Policy(), Policy(allow_mime=IMAGES), Policy(allow_mime=("image/*",))):
        assert _reject(path, "cat.png", policy).reason in ("unknown_mime", "mime_not_allowed")


def test_active_content_allowed_only_when_named(tmp_path: Path) -> None:
    path = images.write(tmp_path, "x", images.HTML)
    checked = validate_upload(path, filename="page.html", policy=Policy(allow_mime=("text/html",)))
    assert checked.mime == "text/html"


def test_mime_wildcards(tmp_path: Path) -> None:
    path = images.write(tmp_path, "x", images.png())
    assert validate_upload(path, filename="a.png",
                           policy=Policy(allow_mime=("image/*",))).mime == "image/png"
    assert _reject(path, "a.png", Policy(allow_mime=("video/*",))).reason == "mime_not_allowed"


def test_extension_lists_are_normalised(tmp_path: Path) -> None:
    path = images.write(tmp_path, "x", images.jpeg())
    policy = Policy(allow_extensions=("JPG", ".jpeg"))
    assert validate_upload(path, filename="a.JPG", policy=policy).extension == ".jpg"
    assert validate_upload(path, filename="a.jpeg", policy=policy).extension == ".jpeg"


def test_jpeg_with_trailing_bytes_after_the_end_is_fine(tmp_path: Path) -> None:
    path = images.write(tmp_path, "x", images.jpeg() + b"\x00" * 64 + b"trailer")
    assert validate_upload(path, filename="a.jpg", policy=Policy()).mime == "image/jpeg"


def test_decompression_bomb_is_rejected_before_any_decode(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    bomb = images.png_bomb(20_000)
    assert len(bomb) < 200_000  # 400 megapixels in a few dozen KB
    path = images.write(tmp_path, "bomb.png", bomb)
    with images.count_decodes(monkeypatch) as decodes:
        for policy in (Policy(max_pixels=40_000_000), Policy()):  # Pillow's guard when unset
            rejected = _reject(path, "bomb.png", policy)
            assert (rejected.reason, rejected.message) == (
                "max_pixels_exceeded",
                "the image's dimensions are so large that it is refused as a decompression "
                "bomb; resize it before uploading.")
    assert decodes == []


def test_big_but_below_pillow_guard_uses_the_profile_cap(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    path = images.write(tmp_path, "big.png", images.png_bomb(8_000))  # 64 MP
    with images.count_decodes(monkeypatch) as decodes:
        rejected = _reject(path, "big.png", Policy(max_pixels=40_000_000))
        accepted = validate_upload(path, filename="big.png",
                                   policy=Policy(max_pixels=64_000_000))
    assert rejected.reason == "max_pixels_exceeded"
    assert "8000x8000" in rejected.message
    assert (accepted.width, accepted.height) == (8_000, 8_000)
    assert decodes == []  # even the accepted one: the integrity check reads, never decodes


def test_stored_object_returns_the_verdict(tmp_path: Path) -> None:
    path = images.write(tmp_path, "x", images.png())
    verdict = validate_stored_object(path, filename="a.jpg", policy=Policy())
    assert not verdict.ok and verdict.upload is None
    assert verdict.reason == "extension_mime_mismatch"
    good = validate_stored_object(path, filename="a.png", policy=Policy())
    assert good.ok and good.reason is None
    assert good.upload is not None and good.upload.mime == "image/png"
    missing = validate_stored_object(path, filename=None, policy=Policy())
    assert missing.reason == "missing_extension"
    assert missing.rejection is not None and missing.rejection.message == (
        "the filename 'upload' has no extension; name the file with one that matches its "
        "contents (image/png).")  # None is an empty name, shown sanitised


def test_unreadable_path_is_a_caller_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        validate_upload(tmp_path / "nope", filename="a.png", policy=Policy())


# --- properties ---------------------------------------------------------------------------

REASONS = {"empty_upload", "unknown_mime", "mime_not_allowed", "missing_extension",
           "extension_not_allowed", "extension_mime_mismatch", "max_bytes_exceeded",
           "max_pixels_exceeded", "invalid_image"}


def _corpus() -> dict[str, bytes]:
    return {
        "jpeg": images.jpeg((40, 30)),
        "png": images.png((50, 20)),
        "webp": images.encode(images.picture((30, 30)), "WEBP"),
        "gif": images.encode(images.picture((20, 20)).convert("P"), "GIF"),
        "html": images.HTML,
        "text": b"plain words\n",
        "pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
        "truncated": images.truncated_jpeg(),
        "empty": b"",
    }


CORPUS = _corpus()
_mimes = sorted(set(EXTENSION_MIME.values()))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sample=st.sampled_from(sorted(CORPUS)),
       ext=st.sampled_from([*EXTENSION_MIME, ".xyz", ""]),
       allow_mime=st.lists(st.sampled_from([*_mimes, "image/*"]), max_size=3).map(tuple),
       allow_ext=st.lists(st.sampled_from(sorted(EXTENSION_MIME)), max_size=3).map(tuple),
       max_bytes=st.none() | st.integers(0, 5_000),
       max_pixels=st.none() | st.integers(1, 3_000))
def test_gate_properties(sample: str, ext: str, allow_mime: tuple[str, ...],
                         allow_ext: tuple[str, ...], max_bytes: int | None,
                         max_pixels: int | None, tmp_path: Path) -> None:
    data = CORPUS[sample]
    path = images.write(tmp_path, f"{sample}.bin", data)
    policy = Policy(allow_mime, allow_ext, max_bytes, max_pixels)
    try:
        checked = validate_upload(path, filename=f"name{ext}", policy=policy)
    except UploadRejected as exc:
        assert exc.reason in REASONS
        return
    # Whatever got through satisfies every rule of the policy. Active content (HTML, SVG)
    # passes only when allow_mime names its type exactly.
    assert sample not in ("text", "truncated", "empty")
    assert extension_mime(checked.extension) == checked.mime
    if checked.mime in ACTIVE_CONTENT or sample == "html":
        assert checked.mime in allow_mime
    if allow_mime:
        assert checked.mime in allow_mime or (
            "image/*" in allow_mime and checked.mime.startswith("image/"))
    if allow_ext:
        assert checked.extension in allow_ext
    if max_bytes is not None:
        assert checked.byte_size <= max_bytes
    if checked.mime.startswith("image/"):
        assert checked.width is not None and checked.height is not None
        with Image.open(path) as im:
            assert im.size == (checked.width, checked.height)
        if max_pixels is not None:
            assert checked.width * checked.height <= max_pixels


def test_truncated_jpeg_is_caught_by_the_missing_end_marker(tmp_path: Path) -> None:
    data = images.truncated_jpeg()
    assert b"\xff\xd9" in data  # the decoy EOI in the comment segment is not the end
    path = images.write(tmp_path, "cut.jpg", data)
    with Image.open(path) as im:
        assert im.size == (256, 256)  # the header alone still parses
    assert "end-of-image" in _reject(path, "cut.jpg", Policy()).message


def test_progressive_jpeg_is_accepted(tmp_path: Path) -> None:
    path = images.write(tmp_path, "p.jpg", images.jpeg((64, 64), progressive=True))
    assert validate_upload(path, filename="p.jpg", policy=Policy()).width == 64


# --- check_declared: the checks that need no bytes (direct uploads at initiate) --------------

_IMAGE_EXTS = ".avif, .bmp, .gif, .heic, .heif, .jpe, .jpeg, .jpg, .png, .tif, .tiff, .webp"


@pytest.mark.parametrize(("filename", "content_type", "policy", "extension"), [
    ("a.PNG", None, Policy(), ".png"),
    ("dir/x.jpeg", "image/jpeg; charset=x", Policy(allow_mime=("image/*",)), ".jpeg"),
    ("a.png", " IMAGE/PNG ", Policy(allow_mime=(" Image/PNG ",)), ".png"),
    ("page.html", None, Policy(allow_mime=("text/html",)), ".html"),
    ("a.png", "video/mp4", Policy(), ".png"),  # any known type when allow_mime is empty
    ("a.jpg", None, Policy(allow_extensions=("JPG",)), ".jpg"),
    ("a.jpg", "image/jpeg; a=1; b=2", Policy(allow_mime=("image/jpeg",)), ".jpg"),
])
def test_check_declared_accepts(filename: str, content_type: str | None, policy: Policy,
                                extension: str) -> None:
    assert check_declared(filename, content_type=content_type, policy=policy) == extension


@pytest.mark.parametrize(("filename", "content_type", "policy", "reason", "message"), [
    ("page.html", None, Policy(), "extension_not_allowed",
     "files ending in .html (text/html) are not accepted by this profile."),
    ("a.svg", None, Policy(allow_mime=("image/*",)), "extension_not_allowed",
     f"files ending in .svg (image/svg+xml) are not accepted by this profile (accepted: "
     f"{_IMAGE_EXTS})."),
    ("a.exe", None, Policy(), "extension_not_allowed",
     "files ending in .exe (no known media type) are not accepted by this profile."),
    ("\u202egpj.exe", None, Policy(), "extension_not_allowed",
     "files ending in .exe (no known media type) are not accepted by this profile."),
    ("a.exe", None, Policy(allow_mime=("image/png",)), "extension_not_allowed",
     "files ending in .exe (no known media type) are not accepted by this profile "
     "(accepted: .png)."),
    ("a.png", None, Policy(allow_mime=("video/*",)), "extension_not_allowed",
     "files ending in .png (image/png) are not accepted by this profile (accepted: .m4v, "
     ".mkv, .mov, .mp4, .ogv, .webm)."),
    ("a.png", None, Policy(allow_mime=("application/x-foo",)), "extension_not_allowed",
     "files ending in .png (image/png) are not accepted by this profile (accepted: "
     "application/x-foo)."),
    ("a.png", None, Policy(allow_mime=("application/x-foo", "application/x-bar")),
     "extension_not_allowed", "files ending in .png (image/png) are not accepted by this "
     "profile (accepted: application/x-foo, application/x-bar)."),
    ("a.png", None, Policy(allow_extensions=("JPG", ".jpeg")), "extension_not_allowed",
     "files ending in .png are not accepted by this profile (allowed: .jpeg, .jpg)."),
    ("noext", None, Policy(allow_mime=("image/png", "image/jpeg")), "missing_extension",
     "the filename 'noext' has no extension; name the file with one that matches its "
     "contents (accepted: .jpe, .jpeg, .jpg, .png)."),
    ("noext", None, Policy(), "missing_extension",
     "the filename 'noext' has no extension; name the file with one that matches its "
     "contents."),
    ("a.png", "text/html", Policy(), "mime_not_allowed",
     "the declared content type 'text/html' is not accepted by this profile."),
    ("a.png", "application/xml", Policy(), "mime_not_allowed",
     "the declared content type 'application/xml' is not accepted by this profile."),
    ("a.png", " ", Policy(), "mime_not_allowed",
     "the declared content type '(empty)' is not accepted by this profile."),
    ("a.png", "video/mp4", Policy(allow_mime=("image/*",)), "mime_not_allowed",
     f"the declared content type 'video/mp4' is not accepted by this profile (accepted: "
     f"{_IMAGE_EXTS})."),
])
def test_check_declared_refuses(filename: str, content_type: str | None, policy: Policy,
                                reason: str, message: str) -> None:
    with pytest.raises(UploadRejected) as info:
        check_declared(filename, content_type=content_type, policy=policy)
    assert (info.value.reason, info.value.message) == (reason, message)


def test_a_polyglot_pillow_reads_as_another_format_is_refused(tmp_path: Path) -> None:
    # "BM" then "ftyp" "avif" at offsets 4 and 8: the sniffer sees an AVIF container,
    # Pillow a 2x2 24-bit BMP (40-byte info header at offset 14, brand bytes in its fields).
    data = (b"BM\x00\x00ftypavif\x00\x00"
            + struct.pack("<IiiHHIIiiII", 40, 2, 2, 1, 24, 0, 16, 0, 0, 0, 0) + bytes(16))
    path = images.write(tmp_path, "x", data)
    with Image.open(path) as im:
        assert (im.format, im.size) == ("BMP", (2, 2))
    rejected = _reject(path, "a.avif", Policy(allow_mime=("image/avif",)))
    assert (rejected.reason, rejected.message) == (
        "mime_not_allowed",
        "the file starts like image/avif but Pillow decodes it as BMP (image/bmp); only the "
        "format the profile allows is decoded. Convert it and upload again.")
