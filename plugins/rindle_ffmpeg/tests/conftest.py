"""Tiny media fixtures made with the real ffmpeg once per run, and private run directories."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rindle_ffmpeg.settings import AVSettings

VIDEO = ["-f", "lavfi", "-t", "1", "-i", "testsrc=size=160x120:rate=10"]
TONE = ["-f", "lavfi", "-i", "sine=frequency=440:duration=1"]
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def ffmpeg(*args: str) -> None:
    """Run ffmpeg to make a fixture; fail loudly (with the fix) if it is not installed."""
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.fail("ffmpeg/ffprobe not found: run scripts/system-deps.sh (Debian: ffmpeg)")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
                   check=True, timeout=60)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``av.mp4`` (H.264 + AAC, 160x120, 1 s), ``silent.mp4``, ``tone.mp3``, ``tone.wav``,
    ``cover.mp3`` (MP3 with an attached cover picture), ``still.png``, ``tagged.mp4``
    (hostile title tag), ``corrupt.mp4`` and ``empty.mp4`` (zero bytes)."""
    d = tmp_path_factory.mktemp("media")
    ffmpeg(*VIDEO, *TONE, *H264, "-c:a", "aac", "-shortest", str(d / "av.mp4"))
    ffmpeg(*VIDEO, *H264, str(d / "silent.mp4"))
    ffmpeg(*TONE, "-c:a", "libmp3lame", str(d / "tone.mp3"))
    ffmpeg(*TONE, str(d / "tone.wav"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32:rate=1", "-frames:v", "1",
           str(d / "still.png"))
    ffmpeg("-i", str(d / "tone.mp3"), "-i", str(d / "still.png"), "-map", "0", "-map", "1",
           "-c", "copy", "-disposition:v", "attached_pic", str(d / "cover.mp3"))
    title = "<b>x</b> & \"q\" 'a'\x01\x1b\ttab " + "é" * 700
    ffmpeg("-i", str(d / "av.mp4"), "-c", "copy", "-metadata", f"title={title}",
           str(d / "tagged.mp4"))
    head = (d / "av.mp4").read_bytes()[:64]
    (d / "corrupt.mp4").write_bytes(head + bytes(range(256)) * 40)
    (d / "empty.mp4").write_bytes(b"")
    return {p.name: p for p in d.iterdir()}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A private run directory (``out/`` inside a fresh temp dir, as the core gives one)."""
    out = tmp_path / "run" / "out"
    out.mkdir(parents=True)
    return out


@pytest.fixture
def source(media: dict[str, Path], workdir: Path) -> Callable[[str], Path]:
    """Copy a fixture next to the run's ``out/`` as ``source<ext>``, like the core does."""

    def copy(name: str) -> Path:
        dest = workdir.parent / ("source" + Path(name).suffix)
        shutil.copyfile(media[name], dest)
        return dest

    return copy


@pytest.fixture
def settings() -> AVSettings:
    """The defaults the product runs with."""
    return AVSettings()
