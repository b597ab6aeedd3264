"""Issue 9: the image processor decoded whatever the upload gate let through.

The built-in processor now checks the header's width x height against the profile's
``max_pixels`` (passed through the ``rindle_transcode`` hook), or Pillow's
``MAX_IMAGE_PIXELS`` when the profile sets none, before it decodes a pixel; a source over
it fails with ``max_pixels_exceeded``, permanently (one attempt). The bomb is a real
13000x13000 PNG: 46 KB on disk, 169 MB once decoded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from rindle import Profile, Rindle, variants
from rindle.domain.models import Job, ProcessingRun
from rindle.errors import ProcessingError
from rindle.media.image_processor import PIXEL_CEILING, render_image
from tests.media.images import Spec
from tests.security.hostile_media import uniform_png

ROOT = Path(__file__).resolve().parents[2]
THUMB = Spec(mode="fit", width=64, format="png")  # for render_image itself
BOMB_SIDE = 13_000  # 169,000,000 pixels: over Pillow's warning limit, under its error limit

#: Renders through the plugin hook in a fresh interpreter and reports how much its peak
#: RSS grew (KiB), so the test sees whether pixels were decoded. The peak is VmHWM, the
#: high-water mark of this process's own memory since exec (``getrusage``'s ru_maxrss
#: would carry over the forking pytest's peak).
MEASURE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from rindle import variants
    from rindle.errors import ProcessingError
    from rindle.plugins import make_plugin_manager

    source, workdir, limit = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
    def peak_kib():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    pm = make_plugin_manager(load_entrypoints=False)
    spec = variants.Image(mode="fit", width=64, format="png")
    before = peak_kib()
    try:
        result = pm.hook.rindle_transcode(source=source, spec=spec, workdir=workdir,
                                          max_pixels=limit)
        outcome = {"width": result["width"]}
    except ProcessingError as exc:
        outcome = {"code": exc.code, "permanent": exc.permanent, "message": exc.message}
    print(json.dumps({**outcome, "grew_kib": peak_kib() - before}))
""")


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return uniform_png(tmp_path_factory.mktemp("bomb") / "bomb.png", BOMB_SIDE, BOMB_SIDE)


def measure(source: Path, workdir: Path, max_pixels: int | None) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", MEASURE, str(source), str(workdir),
                           json.dumps(max_pixels)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_13000_square_png_is_refused_without_being_decoded(bomb: Path,
                                                             tmp_path: Path) -> None:
    assert bomb.stat().st_size < 100_000
    refused = measure(bomb, tmp_path, 30_000_000)
    assert (refused["code"], refused["permanent"]) == ("max_pixels_exceeded", True)
    assert "13000x13000 = 169000000 pixels" in str(refused["message"])
    assert "max_pixels of 30000000" in str(refused["message"])
    assert isinstance(refused["grew_kib"], int) and refused["grew_kib"] < 16 * 1024
    assert not list(tmp_path.iterdir())  # nothing was written either

    # the control: the same measurement does see a decode (40 M pixels of 1 bit, which
    # Pillow holds in a byte each), so the small growth above means no decode happened
    control = uniform_png(tmp_path / "control.png", 8_000, 5_000)
    decoded = measure(control, tmp_path, None)
    assert decoded["width"] == 64
    assert isinstance(decoded["grew_kib"], int) and decoded["grew_kib"] > 32 * 1024


def test_the_limit_is_inclusive(tmp_path: Path) -> None:
    source = uniform_png(tmp_path / "exact.png", 300, 200)
    assert render_image(source, THUMB, tmp_path, max_pixels=60_000)["width"] == 64
    with pytest.raises(ProcessingError) as info:
        render_image(source, THUMB, tmp_path, max_pixels=59_999)
    assert (info.value.code, info.value.permanent) == ("max_pixels_exceeded", True)


def test_without_a_profile_limit_pillows_ceiling_applies(bomb: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    with pytest.raises(ProcessingError) as info:
        render_image(bomb, THUMB, tmp_path)
    assert (info.value.code, info.value.permanent) == ("max_pixels_exceeded", True)
    assert f"Pillow's MAX_IMAGE_PIXELS) of {PIXEL_CEILING}" in info.value.message
    # an application that switches Pillow's limit off still gets the default ceiling
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(ProcessingError) as again:
        render_image(bomb, THUMB, tmp_path)
    assert again.value.code == "max_pixels_exceeded"


def test_rindle_never_disables_pillows_bomb_limit() -> None:
    import rindle.app  # noqa: F401
    import rindle_ffmpeg.plugin  # noqa: F401  (import every module that might touch it)

    assert Image.MAX_IMAGE_PIXELS == PIXEL_CEILING
    writes = []
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "plugins").glob("*/src/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            else:
                continue
            writes += [f"{path}:{node.lineno}" for t in targets
                       if isinstance(t, ast.Attribute) and t.attr == "MAX_IMAGE_PIXELS"]
    assert writes == []


class Poster(Profile):
    name = "poster"
    allow_mime = ("image/png",)
    variants = {"thumb": variants.Image(mode="fit", width=64, format="png")}


class TightPoster(Poster):
    max_pixels = 30_000_000


def variant_outcome(app: Rindle) -> tuple[list[tuple[str, int, str]], list[int]]:
    with app.db.sessionmaker() as s:
        jobs = [(j.state, j.attempt, j.last_error or "") for j in s.scalars(
            select(Job).where(Job.kind == "rindle.process_variant"))]
        runs = [r.attempt for r in s.scalars(select(ProcessingRun))]
    return jobs, runs


@pytest.mark.parametrize(("side", "profile", "limit_text"), [
    ((BOMB_SIDE, BOMB_SIDE), Poster, f"Pillow's MAX_IMAGE_PIXELS) of {PIXEL_CEILING}"),
    ((8_000, 5_000), TightPoster, "max_pixels of 30000000"),
])
def test_the_variant_job_refuses_once_with_max_pixels_exceeded(
        make_app: Callable[..., Rindle], tmp_path: Path, side: tuple[int, int],
        profile: type[Profile], limit_text: str) -> None:
    # uploaded while the profile set no limit (the gate let it through) ...
    source = uniform_png(tmp_path / "big.png", *side)
    uploader = make_app(profiles=[Poster])
    asset = uploader.upload("poster", source, filename="big.png")
    uploader.jobs.drain(["promote"])
    # ... and processed by workers running this profile
    app = make_app(profiles=[profile])
    app.jobs.drain(with_scheduled=True)

    done = app.get_asset(asset.id)
    assert (done.width, done.height) == side
    thumb = done.variants["thumb"]
    assert (thumb.state, thumb.storage_key) == ("failed", None)
    assert thumb.error_reason is not None
    assert thumb.error_reason.startswith("max_pixels_exceeded: the source is ")
    assert limit_text in thumb.error_reason
    assert done.state == "degraded"
    jobs, runs = variant_outcome(app)
    assert [(state, attempt) for state, attempt, _ in jobs] == [("discarded", 1)]
    assert jobs[0][2].startswith("permanent max_pixels_exceeded: ProcessingError: ")
    assert runs == [1]
