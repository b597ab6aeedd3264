"""Issue 9: an ffmpeg kept running after its worker was killed with ``kill -9``.

rindle-ffmpeg now starts every ffmpeg/ffprobe through a launcher that sets
``PR_SET_PDEATHSIG`` (SIGKILL) before it execs the tool. Each test starts a real process
that runs a real ffmpeg through the plugin's runner, blocked on a FIFO (it waits for a
writer that never comes, so it cannot finish on its own and burns no CPU), kills the
parent with SIGKILL and polls /proc until the ffmpeg is dead. Nothing waits on a clock
except bounded polls of a condition.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from rindle import Profile, Rindle, variants
from rindle_ffmpeg.run import LAUNCHER, launcher_prefix, run_command
from tests.security.hostile_media import ProcStat, children, proc_stat

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="PR_SET_PDEATHSIG is Linux-only")

ROOT = Path(__file__).resolve().parents[2]

#: Runs the plugin's own runner from a non-main thread, as a worker's job thread does
#: (the kernel ties the parent-death signal to the thread that started the child).
BLOCKED_FFMPEG = """
import os, sys, threading
from pathlib import Path
from rindle_ffmpeg.run import run_ffmpeg
from rindle_ffmpeg.settings import AVSettings

run = Path(sys.argv[1])
fifo = run / "input.mp4"
os.mkfifo(fifo)
job = threading.Thread(target=run_ffmpeg, args=(["-y", "-i", str(fifo), str(run / "o.jpg")],),
                       kwargs={"rundir": run, "settings": AVSettings.from_env()})
job.start()
job.join()
"""

#: A plugin whose transcode blocks in a real ffmpeg through the plugin's runner.
FIFO_PLUGIN = """
import os
from pathlib import Path
from rindle import hookimpl
from rindle_ffmpeg.run import run_ffmpeg
from rindle_ffmpeg.settings import AVSettings

@hookimpl
def rindle_transcode(source, spec, workdir):
    fifo = Path(workdir) / "input.mp4"
    os.mkfifo(fifo)
    run_ffmpeg(["-y", "-i", str(fifo), str(Path(workdir) / "frame.jpg")],
               rundir=Path(workdir), settings=AVSettings.from_env())
"""

PROFILES = """
from rindle import Profile, variants

class Still(Profile):
    name = "still"
    allow_mime = ("image/jpeg",)
    variants = {"thumb": variants.Image(mode="fit", width=32)}
"""


class Still(Profile):
    name = "still"
    allow_mime = ("image/jpeg",)
    variants = {"thumb": variants.Image(mode="fit", width=32)}


def wait_for(condition: Callable[[], object], what: str, *, limit: float = 60.0) -> object:
    """Poll ``condition`` until it returns something truthy; fail after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def ffmpeg_child(parent: subprocess.Popen[bytes], log: Path) -> ProcStat | None:
    """The running ffmpeg whose parent is ``parent`` (the launcher has exec'd into it);
    ``log`` is where the parent's stderr goes (shown if it died first)."""
    assert parent.poll() is None, log.read_text()
    found = [c for c in children(parent.pid) if c.comm == "ffmpeg" and c.state not in "ZX"]
    return found[0] if found else None


def is_dead(child: ProcStat) -> bool:
    """True once ``child`` has exited: reaped (gone, or its pid reused) or a zombie."""
    now = proc_stat(child.pid)
    return now is None or now.starttime != child.starttime or now.state in ("Z", "X")


@pytest.fixture
def reap() -> Iterator[list[ProcStat]]:
    """Processes to SIGKILL after the test if they are still alive (a failed test)."""
    started: list[ProcStat] = []
    yield started
    for child in started:
        if not is_dead(child):
            os.kill(child.pid, signal.SIGKILL)


def kill_parent_and_check(parent: subprocess.Popen[bytes], ffmpeg: ProcStat) -> None:
    """``kill -9`` the parent, then wait (bounded) for its ffmpeg to die of SIGKILL."""
    os.kill(parent.pid, signal.SIGKILL)
    assert parent.wait(timeout=30) == -signal.SIGKILL
    wait_for(lambda: is_dead(ffmpeg), f"ffmpeg {ffmpeg.pid} to die with its parent",
             limit=30)
    after = proc_stat(ffmpeg.pid)
    if after is not None and after.starttime == ffmpeg.starttime:  # a zombie nobody reaps
        assert after.exit_code & 0x7F == signal.SIGKILL, after


def test_ffmpeg_dies_when_the_process_running_it_is_killed(tmp_path: Path,
                                                           reap: list[ProcStat]) -> None:
    run, log = tmp_path / "run", tmp_path / "stderr.log"
    run.mkdir()
    with log.open("wb") as err:
        parent = subprocess.Popen([sys.executable, "-c", BLOCKED_FFMPEG, str(run)], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=err)
    try:
        ffmpeg = wait_for(lambda: ffmpeg_child(parent, log), "the ffmpeg child")
        assert isinstance(ffmpeg, ProcStat)
        reap.append(ffmpeg)
        assert proc_stat(ffmpeg.pid) is not None  # blocked on the FIFO, alive
        kill_parent_and_check(parent, ffmpeg)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_ffmpeg_dies_with_a_worker_killed_mid_job(db_url: str, tmp_path: Path,
                                                  reap: list[ProcStat]) -> None:
    media = tmp_path / "media"
    site = tmp_path / "site"
    (site / "fifoplug").mkdir(parents=True)
    (site / "fifoplug" / "__init__.py").write_text(FIFO_PLUGIN)
    dist = site / "fifoplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fifoplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[rindle]\nfifoplug = fifoplug\n")
    (tmp_path / "still_profiles.py").write_text(textwrap.dedent(PROFILES))
    config = tmp_path / "rindle.toml"
    config.write_text(f'database_url = "{db_url}"\nsecret_key = "test-secret"\n'
                      'profiles = ["still_profiles:Still"]\n'
                      f'tmp_dir = "{tmp_path / "tmp"}"\n'
                      f'[storages.default]\nbackend = "local"\nroot = "{media}"\n')
    app = Rindle(database_url=db_url, secret_key="test-secret", profiles=[Still],
                 storages={"default": {"backend": "local", "root": str(media)}},
                 tmp_dir=str(tmp_path / "tmp"), load_entrypoints=False)
    try:
        src = tmp_path / "a.jpg"
        Image.new("RGB", (64, 48), "navy").save(src, "JPEG")
        app.upload("still", src)
        assert app.jobs.drain(["promote"]) == 1

        env = {k: v for k, v in os.environ.items() if k != "RINDLE_DISABLE_PLUGIN_AUTOLOAD"}
        env["RINDLE_LOAD_PLUGINS"] = "fifoplug"
        env["PYTHONPATH"] = os.pathsep.join([str(site), str(tmp_path), str(ROOT)])
        log = tmp_path / "worker.log"
        with log.open("wb") as err:
            worker = subprocess.Popen(
                [sys.executable, "-m", "rindle", "--config", str(config), "worker",
                 "--queue", "process=1", "--no-cron"], env=env, cwd=tmp_path,
                stdout=subprocess.DEVNULL, stderr=err)
        try:
            ffmpeg = wait_for(lambda: ffmpeg_child(worker, log), "the worker's ffmpeg")
            assert isinstance(ffmpeg, ProcStat)
            reap.append(ffmpeg)
            kill_parent_and_check(worker, ffmpeg)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    finally:
        app.close()


def test_the_death_signal_survives_exec(tmp_path: Path) -> None:
    prefix = launcher_prefix()
    assert prefix is not None and prefix[-1] == str(os.getpid())
    ask = "import ctypes; v = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(v)); " \
          "print(v.value)"  # PR_GET_PDEATHSIG, asked by the exec'd program itself
    done = subprocess.run([*prefix, sys.executable, "python", "-c", ask],
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == str(int(signal.SIGKILL))
    # the runner uses the same launcher: a plain child of it reports the signal too
    assert run_command([sys.executable, "-c", ask], timeout_s=60).stdout.strip() == "9"


def test_a_parent_already_gone_is_noticed_before_exec(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    not_my_parent = "1"  # the launcher's parent is this test process, never pid 1
    assert os.getpid() != 1
    done = subprocess.run([sys.executable, "-I", "-S", "-c", LAUNCHER, not_my_parent,
                           "/usr/bin/touch", "touch", str(marker)], timeout=60)
    assert done.returncode == 125 and not marker.exists()
    done = subprocess.run([sys.executable, "-I", "-S", "-c", LAUNCHER, str(os.getpid()),
                           "/usr/bin/touch", "touch", str(marker)], timeout=60)
    assert done.returncode == 0 and marker.exists()


def test_without_a_python_interpreter_the_tool_is_started_directly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/usr/bin/uwsgi")
    assert launcher_prefix() is None
    result = run_command(["ffmpeg", "-hide_banner", "-version"], timeout_s=60)
    assert result.status == 0 and result.stdout.startswith("ffmpeg version")
