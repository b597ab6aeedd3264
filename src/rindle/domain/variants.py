"""Variant specs: frozen, validated value objects declared in a profile's ``variants``.

``variants.Image(mode="fill", width=128, height=128, format="webp")`` and the AV specs
(``Video``, ``Audio``, ``Waveform``, image presets) validate on construction and raise
:class:`rindle.errors.ProfileError` naming the bad option. ``stored_spec()`` is the
reference's validated spec (what the recipe digest covers); ``normalized()`` is the full
recipe a transcoder works from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rindle.errors import ProfileError

__all__ = [
    "Audio",
    "Image",
    "VariantSpec",
    "Video",
    "Waveform",
    "normalize_av",
]

IMAGE_MODES = ("fit", "fill", "crop")
IMAGE_FORMATS = ("jpeg", "png", "webp", "avif")
IMAGE_PRESETS = ("video_poster_scene", "video_thumbnail_strip")
VIDEO_PRESETS = {"web_720p": (1280, 720), "web_480p": (854, 480)}
AUDIO_PRESETS = {
    "m4a_128k": {"container": "m4a", "audio_codec": "aac", "audio_bitrate_kbps": 128},
    "mp3_128k": {"container": "mp3", "audio_codec": "mp3", "audio_bitrate_kbps": 128},
}
WAVEFORM_PRESETS = ("overview",)
_FORMAT_OUTPUT = {
    "jpeg": (".jpg", "image/jpeg"),
    "png": (".png", "image/png"),
    "webp": (".webp", "image/webp"),
    "avif": (".avif", "image/avif"),
}


def _fail(option: str, message: str) -> ProfileError:
    return ProfileError(f"variant option {option!r}: {message}", key=option)


def _positive_int(option: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise _fail(option, f"must be a positive integer, got {value!r}")


def _choice(option: str, value: object, allowed: Any) -> None:
    if value not in allowed:
        raise _fail(option, f"must be one of {', '.join(map(str, allowed))}; got {value!r}")


def _bool(option: str, value: object) -> None:
    if not isinstance(value, bool):
        raise _fail(option, f"must be True or False, got {value!r}")


class VariantSpec:
    """Base of every variant spec."""

    kind: ClassVar[str] = "image"

    @property
    def output_kind(self) -> str:
        """What the output is: ``image``, ``video``, ``audio`` or ``waveform``."""
        return str(self.normalized().get("output_kind", "image"))

    def stored_spec(self) -> dict[str, Any]:
        """The validated spec the recipe digest covers (None removed, defaults filled)."""
        raise NotImplementedError

    def normalized(self) -> dict[str, Any]:
        """The full recipe a transcoder works from."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Image(VariantSpec):
    """A resized still image (``mode`` fit/fill/crop), or a frame preset of a video."""

    mode: str | None = None
    width: int | None = None
    height: int | None = None
    format: str = "jpeg"
    quality: int | None = None
    preset: str | None = None

    kind: ClassVar[str] = "image"

    def __post_init__(self) -> None:
        if self.preset is not None:
            _choice("preset", self.preset, IMAGE_PRESETS)
            given = [k for k in ("mode", "width", "height", "quality")
                     if getattr(self, k) is not None]
            if given or self.format != "jpeg":
                bad = given[0] if given else "format"
                raise _fail(bad, f"cannot be combined with preset {self.preset!r}")
            return
        if self.mode is None:
            raise _fail("mode", "is required: one of fit, fill, crop (or give a preset)")
        _choice("mode", self.mode, IMAGE_MODES)
        _positive_int("width", self.width)
        _positive_int("height", self.height)
        if self.mode == "crop" and (self.width is None or self.height is None):
            raise _fail("height" if self.width else "width",
                        "mode 'crop' requires both width and height")
        if self.width is None and self.height is None:
            raise _fail("width", f"mode {self.mode!r} requires at least one of width, height")
        _choice("format", self.format, IMAGE_FORMATS)
        if self.quality is not None and (
            isinstance(self.quality, bool) or not isinstance(self.quality, int)
            or not 1 <= self.quality <= 100
        ):
            raise _fail("quality", f"must be an integer from 1 to 100, got {self.quality!r}")

    def stored_spec(self) -> dict[str, Any]:
        if self.preset is not None:
            return {"preset": self.preset}
        spec = {"mode": self.mode, "width": self.width, "height": self.height,
                "format": self.format, "quality": self.quality}
        return {k: v for k, v in spec.items() if v is not None}

    def normalized(self) -> dict[str, Any]:
        if self.preset == "video_poster_scene":
            return {"kind": "image", "output_kind": "image", "preset": self.preset,
                    "format": "jpg", "scene_threshold": 0.4}
        if self.preset == "video_thumbnail_strip":
            return {"kind": "image", "output_kind": "image", "preset": self.preset,
                    "format": "jpg", "strip_count": 4, "thumb_width": 160,
                    "thumb_height": 90, "fps": 1}
        return {"kind": "image", "output_kind": "image", **self.stored_spec()}

    @property
    def extension(self) -> str:
        """File extension of the output (``.webp``)."""
        return ".jpg" if self.preset else _FORMAT_OUTPUT[self.format][0]

    @property
    def content_type(self) -> str:
        """MIME type of the output."""
        return "image/jpeg" if self.preset else _FORMAT_OUTPUT[self.format][1]


@dataclass(frozen=True, kw_only=True)
class Video(VariantSpec):
    """An H.264/AAC MP4 rendition (``web_720p`` or ``web_480p``)."""

    preset: str
    faststart: bool = True

    kind: ClassVar[str] = "video"

    def __post_init__(self) -> None:
        _choice("preset", self.preset, tuple(VIDEO_PRESETS))
        _bool("faststart", self.faststart)

    def stored_spec(self) -> dict[str, Any]:
        return {"kind": "video", "preset": self.preset, "faststart": self.faststart}

    def normalized(self) -> dict[str, Any]:
        return normalize_av(self.stored_spec())


@dataclass(frozen=True, kw_only=True)
class Audio(VariantSpec):
    """An audio rendition (``m4a_128k`` or ``mp3_128k``)."""

    preset: str
    channels: int | None = None
    normalize: bool = False
    two_pass: bool = False

    kind: ClassVar[str] = "audio"

    def __post_init__(self) -> None:
        _choice("preset", self.preset, tuple(AUDIO_PRESETS))
        if self.channels is not None:
            _choice("channels", self.channels, (1, 2))
        _bool("normalize", self.normalize)
        _bool("two_pass", self.two_pass)

    def stored_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"kind": "audio", "preset": self.preset,
                                "normalize": self.normalize, "two_pass": self.two_pass}
        if self.channels is not None:
            spec["channels"] = self.channels
        return spec

    def normalized(self) -> dict[str, Any]:
        return normalize_av(self.stored_spec())


@dataclass(frozen=True, kw_only=True)
class Waveform(VariantSpec):
    """A JSON peaks document for drawing an audio waveform."""

    preset: str = "overview"

    kind: ClassVar[str] = "waveform"

    def __post_init__(self) -> None:
        _choice("preset", self.preset, WAVEFORM_PRESETS)

    def stored_spec(self) -> dict[str, Any]:
        return {"kind": "waveform", "preset": self.preset}

    def normalized(self) -> dict[str, Any]:
        return normalize_av(self.stored_spec())


def normalize_av(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Expand an AV stored spec into its full recipe: the preset's codecs, size and rates
    filled in.

    Raises ValueError for an unknown kind or preset.
    """
    kind, preset = spec.get("kind"), spec.get("preset")
    if kind == "video" and preset in VIDEO_PRESETS:
        width, height = VIDEO_PRESETS[preset]
        return {"kind": "video", "output_kind": "video", "preset": preset, "container": "mp4",
                "video_codec": "h264", "audio_codec": "aac", "width": width, "height": height,
                "crf": 23, "audio_bitrate_kbps": 128,
                "faststart": bool(spec.get("faststart", True))}
    if kind == "audio" and preset in AUDIO_PRESETS:
        out: dict[str, Any] = {"kind": "audio", "output_kind": "audio", "preset": preset,
                               **AUDIO_PRESETS[preset],
                               "normalize": bool(spec.get("normalize", False)),
                               "two_pass": bool(spec.get("two_pass", False))}
        if spec.get("channels") is not None:
            out["channels"] = spec["channels"]
        return out
    if kind == "waveform" and preset in WAVEFORM_PRESETS:
        return {"kind": "waveform", "output_kind": "waveform", "preset": preset,
                "format": "json", "length": 1000, "analysis_sample_rate": 8000}
    raise ValueError(f"unsupported AV recipe kind={kind!r} preset={preset!r}")
