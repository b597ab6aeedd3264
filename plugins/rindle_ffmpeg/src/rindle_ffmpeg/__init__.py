"""rindle-ffmpeg: audio and video probing, analysis and transcoding for rindle."""

from rindle_ffmpeg import _rindle_core  # noqa: F401  (first: is this the rindle media library?)

__version__ = "0.1.0"
