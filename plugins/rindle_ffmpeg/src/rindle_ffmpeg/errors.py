"""The errors rindle-ffmpeg raises: :mod:`rindle.errors` classes with stable codes.

Codes (``exc.code``) marked ``P`` are permanent (``exc.permanent``, see
:data:`PERMANENT_CODES`): the source file or the recipe is at fault, retrying on any host
gives the same answer, so the job queue does not retry them. The others depend on the host
(a crashed, killed or slow subprocess, a missing tool or filter, disk, runtime) or are bugs,
and stay retryable::

    ffmpeg_not_found             ffmpeg/ffprobe is not on PATH (ConfigError: retry after installing)
  P empty_file                   the input has zero bytes
  P duration_exceeded            the source declares more than RINDLE_FFMPEG_MAX_DURATION
    ffprobe_failed               ffprobe exited non-zero (corrupt or unsupported input)
    invalid_json                 ffprobe answered something that is not its JSON
    ffmpeg_failed                ffmpeg exited non-zero
    ffmpeg_timeout               a subprocess ran past its wall-clock cap and was killed
  P ffmpeg_missing_output        ffmpeg exited 0 without writing the output
  P output_too_large             the output reached the output size cap
    invalid_format               shell metacharacters in the argument list
    missing_protocol_whitelist   an ffmpeg argument list without -protocol_whitelist
  P unsupported_ingest_format    HLS/DASH/Matroska named on the command line
    path_outside_run_dir         an input or output path outside the run directory
  P missing_video_track          a video recipe for a source without a video stream
  P missing_audio_track          an audio/waveform recipe for a source without audio
  P invalid_audio_sample_rate    the source's audio sample rate is not a positive integer
  P invalid_audio_recipe         two_pass without normalize
    invalid_loudnorm_output      the loudnorm measurement pass printed no usable JSON
  P empty_waveform               the decoded audio has no samples
    output_kind_mismatch         the output is not the kind the recipe promises
  P output_duration_mismatch     the output's duration is off by more than 250 ms (the
                                 source declares a duration its media does not have)
    output_track_missing         the output lacks the audio track the source had
    waveform_length_mismatch     the peaks document has the wrong length
    unsupported_ephemeral_runtime  video work refused on AWS Lambda / Vercel
    insufficient_disk_headroom   less free disk than twice the output size cap
    mediainfo_failed             pymediainfo could not read the file
"""

from __future__ import annotations

from rindle.errors import ConfigError, ProcessingError

__all__ = ["PERMANENT_CODES", "CommandFailed", "CommandTimeout", "ToolNotFound", "av_error"]

#: Codes whose failure the input or the recipe causes (the ``P`` rows above). ffmpeg and
#: ffprobe exiting non-zero (``ffmpeg_failed``, ``ffprobe_failed``) are not here: a corrupt
#: file and a subprocess killed by the OOM killer, ``RLIMIT_CPU`` or a full disk look the
#: same from outside. Nor is ``ffmpeg_timeout``: wall-clock time depends on the host's load.
PERMANENT_CODES = frozenset({
    "duration_exceeded", "empty_file", "empty_waveform", "ffmpeg_missing_output",
    "invalid_audio_recipe", "invalid_audio_sample_rate", "missing_audio_track",
    "missing_video_track", "output_duration_mismatch", "output_too_large",
    "unsupported_ingest_format",
})


class ToolNotFound(ConfigError):
    """Raised when the ffmpeg or ffprobe executable cannot be found or started."""

    code = "ffmpeg_not_found"


class CommandFailed(ProcessingError):
    """Raised when ffmpeg or ffprobe exits non-zero.

    ``status`` is the exit status, ``stderr_tail`` the last lines it printed, with the run
    directory and URL credentials redacted (it is also in the message).
    """

    code = "ffmpeg_failed"

    def __init__(self, message: str, *, code: str, status: int | str, stderr_tail: str) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.stderr_tail = stderr_tail


class CommandTimeout(CommandFailed):
    """Raised when a subprocess ran past its wall-clock cap; its process group was killed."""

    code = "ffmpeg_timeout"


def av_error(code: str, message: str) -> ProcessingError:
    """A :class:`~rindle.errors.ProcessingError` with ``code`` and a message saying what to
    do; ``permanent`` exactly when ``code`` is in :data:`PERMANENT_CODES`."""
    return ProcessingError(message, code=code, permanent=code in PERMANENT_CODES)
