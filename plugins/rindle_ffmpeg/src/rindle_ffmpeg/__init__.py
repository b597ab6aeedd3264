"""rindle-ffmpeg: audio and video probing, analysis and transcoding for rindle."""

__version__ = "0.1.0"
