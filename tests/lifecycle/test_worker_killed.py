"""A worker killed in the middle of a variant job: the variant still completes, once.

The worker is a real process on the real clock; the test's own app runs on a
:class:`~rindle.clock.ManualClock`, so the dead worker's lease runs out exactly when the
test moves that clock past it, however slow the machine is.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import select

from rindle import Rindle
from rindle.clock import ManualClock
from rindle.domain.models import Job, ProcessingRun
from tests.lifecycle.conftest import PROFILES, jpeg_bytes

SLOW_PLUGIN = """
import time
from pathlib import Path
from rindle import hookimpl

MARKER = Path({marker!r})

@hookimpl
def rindle_transcode(source, spec, workdir):
    if not MARKER.exists():
        MARKER.write_text("started")
        time.sleep(120)  # the test kills the worker here, mid-job
    return None  # later runs: let the built-in processor answer
"""


def test_killed_worker_leaves_nothing_lost_or_doubled(db_url: str, tmp_path: Path) -> None:
    media, marker = tmp_path / "media", tmp_path / "transcode-started"
    site = tmp_path / "site"
    (site / "slowplug").mkdir(parents=True)
    (site / "slowplug" / "__init__.py").write_text(SLOW_PLUGIN.format(marker=str(marker)))
    dist = site / "slowplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: slowplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[rindle]\nslowplug = slowplug\n")
    (tmp_path / "kill_profiles.py").write_text(textwrap.dedent("""
        from tests.lifecycle.conftest import Photo, JpegOnly, PublicBanner
    """))
    config = tmp_path / "rindle.toml"
    config.write_text(f'database_url = "{db_url}"\nsecret_key = "test-secret"\n'
                      'profiles = ["kill_profiles:Photo", "kill_profiles:JpegOnly", '
                      '"kill_profiles:PublicBanner"]\n'
                      f'tmp_dir = "{tmp_path / "tmp"}"\n'
                      '[jobs]\nlease_seconds = 2\n'
                      f'[storages.default]\nbackend = "local"\nroot = "{media}"\n')
    app = Rindle(database_url=db_url, secret_key="test-secret", profiles=PROFILES,
                 storages={"default": {"backend": "local", "root": str(media)}},
                 tmp_dir=str(tmp_path / "tmp"), jobs={"lease_seconds": 2},
                 load_entrypoints=False)
    # Stands still from before the worker starts, so the worker's real-time lease cannot
    # run out for this app until the test moves the clock.
    clock = app.jobs.clock = ManualClock()
    src = tmp_path / "a.jpg"
    src.write_bytes(jpeg_bytes((900, 600)))
    asset = app.upload("photo", src)
    app.jobs.drain(["promote"])

    env = {k: v for k, v in os.environ.items() if k != "RINDLE_DISABLE_PLUGIN_AUTOLOAD"}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(tmp_path), str(root)])
    worker = subprocess.Popen(
        [sys.executable, "-m", "rindle", "--config", str(config), "worker",
         "--queue", "process=1", "--no-cron"], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120  # only a broken worker takes this long
        while not marker.exists():
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.monotonic() < deadline, "the worker never started the variant"
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=120)

    mid = app.get_asset(asset.id)
    killed_variant = next(n for n, v in mid.variants.items() if v.state == "processing")
    with app.db.sessionmaker() as s:
        assert "executing" in set(s.scalars(select(Job.state)))
        [lease_end] = s.scalars(select(Job.locked_until).where(Job.state == "executing"))
    app.jobs.drain()  # runs the sibling; the killed job is still leased to the dead worker
    assert app.get_asset(asset.id).variants[killed_variant].state == "processing"
    assert lease_end is not None
    clock.set(lease_end + dt.timedelta(seconds=0.5))  # the dead worker's lease expires
    app.jobs.drain()

    done = app.get_asset(asset.id)
    assert done.state == "ready"
    assert {v.state for v in done.variants.values()} == {"ready"}
    for name, variant in done.variants.items():
        objects = [p for p in media.rglob(f"{name}-*") if p.is_file()]
        assert [str(p.relative_to(media)) for p in objects] == [variant.storage_key]
    with app.db.sessionmaker() as s:
        runs = sorted((r.variant_name, r.state, r.error_reason or "") for r in
                      s.scalars(select(ProcessingRun).where(ProcessingRun.asset_id == asset.id)))
    killed = [r for r in runs if r[1] == "failed"]
    assert len(killed) == 1 and killed[0][2] == "worker_lost"
    assert killed[0][0] == killed_variant
    assert sorted(r[0] for r in runs if r[1] == "succeeded") == ["large", "thumb"]
    app.close()
