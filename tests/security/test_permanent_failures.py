"""Issue 9: a video declaring a 136-year duration was transcoded and retried 5 times.

A failure the input or the recipe causes (``ProcessingError`` with ``permanent``) is now
settled ``discarded`` after its one attempt; the variant is ``failed`` with the code as
its reason. Host-dependent failures (a missing tool here) are still retried up to the
queue's attempts. Everything runs through the real job queue with the real ffmpeg, on
SQLite and PostgreSQL; ``drain(with_scheduled=True)`` runs retries at once, so a retried
job would show every attempt.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from rindle import Profile, Rindle, variants
from rindle.context import AppContext
from rindle.domain.models import Job, ProcessingRun
from rindle.errors import ProcessingError, RindleError
from rindle.jobs import JobContext
from rindle.jobs.kinds import PROCESS_VARIANT
from tests.security.hostile_media import MAX_MVHD_SECONDS, declare_duration


class Clip(Profile):
    name = "clip"
    allow_mime = ("video/mp4",)
    variants = {"web": variants.Video(preset="web_480p"),
                "poster": variants.Image(preset="video_poster_scene")}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 1-second 160x120 H.264/AAC MP4 without edit lists."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg not found: run scripts/system-deps.sh (Debian: ffmpeg)")
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-t", "1", "-i", "testsrc=size=160x120:rate=10",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", "-use_editlist", "0", str(path)],
                   check=True, timeout=120)
    return path


@pytest.fixture
def av_app(make_app: Callable[..., Rindle], monkeypatch: pytest.MonkeyPatch) -> Rindle:
    """An app with the ``ffmpeg`` plugin (through its entry point) and the built-ins."""
    monkeypatch.setenv("RINDLE_LOAD_PLUGINS", "ffmpeg")
    for name in ("RINDLE_FFMPEG_BIN", "RINDLE_FFPROBE_BIN", "RINDLE_FFMPEG_MAX_DURATION"):
        monkeypatch.delenv(name, raising=False)
    return make_app(profiles=[Clip], load_entrypoints=True)


def attempts(app: Rindle, variant: str) -> tuple[list[tuple[str, int, str]], list[int]]:
    """``(state, attempt, last_error)`` of the variant's jobs, and its runs' attempts."""
    with app.db.sessionmaker() as s:
        jobs = [(j.state, j.attempt, j.last_error or "") for j in s.scalars(
            select(Job).where(Job.kind == PROCESS_VARIANT).order_by(Job.id))
            if j.args["variant"] == variant]
        runs = sorted(r.attempt for r in s.scalars(
            select(ProcessingRun).where(ProcessingRun.variant_name == variant)))
    return jobs, runs


@pytest.mark.parametrize(("declared", "code"), [
    (MAX_MVHD_SECONDS, "duration_exceeded"),  # 136 years: refused before ffmpeg runs
    (3600, "output_duration_mismatch"),       # an hour under the cap: caught on the output
])
def test_a_video_declaring_a_false_duration_fails_once(
        av_app: Rindle, clip: Path, tmp_path: Path, declared: int, code: str) -> None:
    liar = declare_duration(clip, tmp_path / "liar.mp4", declared)
    asset = av_app.upload("clip", liar, filename="liar.mp4")
    av_app.jobs.drain(with_scheduled=True)

    asset = av_app.get_asset(asset.id)
    assert asset.duration_ms == declared * 1000  # what the container claims
    web, poster = asset.variants["web"], asset.variants["poster"]
    assert (web.state, web.storage_key) == ("failed", None)
    assert web.error_reason is not None and web.error_reason.startswith(f"{code}: ")
    assert poster.state == "ready"  # one frame needs no duration
    assert asset.state == "degraded"

    jobs, runs = attempts(av_app, "web")
    assert [(state, attempt) for state, attempt, _ in jobs] == [("discarded", 1)]
    assert jobs[0][2].startswith(f"permanent {code}: ProcessingError: ")
    assert runs == [1]


def test_a_host_failure_is_still_retried_until_discarded(
        av_app: Rindle, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asset = av_app.upload("clip", clip, filename="clip.mp4")
    av_app.jobs.drain(["promote"])
    assert av_app.get_asset(asset.id).state == "available"
    missing = str(tmp_path / "no-such-ffprobe")  # the host lost its tools after promotion
    monkeypatch.setenv("RINDLE_FFPROBE_BIN", missing)
    monkeypatch.setenv("RINDLE_FFMPEG_BIN", missing)
    av_app.jobs.drain(with_scheduled=True)

    web = av_app.get_asset(asset.id).variants["web"]
    assert web.state == "failed"
    assert web.error_reason is not None and web.error_reason.startswith("ffmpeg_not_found: ")
    jobs, runs = attempts(av_app, "web")
    assert [(state, attempt) for state, attempt, _ in jobs] == [("discarded", 5)]
    assert jobs[0][2].startswith("ToolNotFound: ")
    assert runs == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(("error", "outcomes", "prefix"), [
    (ProcessingError("bad bytes", code="image_unreadable", permanent=True),
     ["discarded"], "permanent image_unreadable: ProcessingError: bad bytes"),
    (ProcessingError("tool crashed", code="ffmpeg_failed"),
     ["retryable", "retryable", "discarded"], "ProcessingError: tool crashed"),
    (RindleError("bucket down", code="storage_error"),
     ["retryable", "retryable", "discarded"], "RindleError: bucket down"),
])
def test_only_permanent_errors_skip_the_retries(app: Rindle, error: RindleError,
                                                outcomes: list[str], prefix: str) -> None:
    ran: list[int] = []

    def handler(_app: AppContext, job: JobContext) -> None:
        ran.append(job.attempt)
        raise error

    app.jobs.register("test.fails", handler, queue="maintenance", max_attempts=3)
    app.jobs.enqueue_now("test.fails", {})
    seen = []
    while jobs := app.jobs.claim(["maintenance"], "w1", with_scheduled=True):
        seen.append(app.jobs.execute(jobs[0]))
    assert seen == outcomes and ran == list(range(1, len(outcomes) + 1))
    with app.db.sessionmaker() as s:
        job = s.scalars(select(Job).where(Job.kind == "test.fails")).one()
    assert (job.state, job.attempt) == ("discarded", len(outcomes))
    assert job.last_error is not None and job.last_error.startswith(prefix)
