"""Running ffmpeg and ffprobe: argument lists only, own process group, wall-clock cap.

The child never gets a shell or a terminal: ``stdin`` is ``/dev/null``, stdout and stderr
are captured separately, and it runs in a new session so a timeout kills the whole process
group (ffmpeg and anything it spawned). Its CPU time is capped with ``RLIMIT_CPU`` as a
backstop to ffmpeg's own ``-timelimit``. What a failure prints is kept as a redacted tail:
the run directory becomes ``<run>`` and URL credentials and query strings are removed.

The child dies with its parent. On Linux it is started through a few lines of Python
(:data:`LAUNCHER`, run by this interpreter with ``-I -S``, about 10 ms) that set
``PR_SET_PDEATHSIG`` to SIGKILL with ``prctl`` and then ``exec`` the tool in the same
process, so a worker killed with ``kill -9`` (or by the OOM killer) takes its ffmpeg with
it instead of leaving it running for up to ``RINDLE_FFMPEG_TIMEOUT``. The launcher checks
that its parent is still the process that started it after ``prctl``, so a parent that
died in between is not missed. This replaces a ``preexec_fn``, which is unsafe in a
threaded worker. The kernel sends the signal when the *thread* that started the child
exits; :func:`run_command` waits for the child in that thread, so that thread outlives it.
Elsewhere (not Linux, or ``sys.executable`` is not a Python interpreter, as under uWSGI)
the tool is started directly and a killed parent leaves it to its timeouts.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rindle_ffmpeg.arguments import confine, io_paths, validate, wrap
from rindle_ffmpeg.errors import CommandFailed, CommandTimeout, ToolNotFound
from rindle_ffmpeg.settings import AVSettings

__all__ = ["EXEC_FAILED_PREFIX", "LAUNCHER", "CommandResult", "launcher_prefix", "redact",
           "run_command", "run_ffmpeg", "stderr_tail"]

#: How much of stderr a failure keeps.
TAIL_CHARS = 2000
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")
_QUERY = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s?#]*)\?[^\s]*")

#: Run as ``python -I -S -c LAUNCHER <parent pid> <executable> <argv...>``: ask the kernel
#: for SIGKILL (9) when the parent goes (``prctl(PR_SET_PDEATHSIG=1, 9)``), give up when
#: the parent is already gone (exit 125), then become the tool (``execv`` keeps the pid,
#: the session, the rlimits and the death signal). A failed ``execv`` exits 127 after a
#: line starting with :data:`EXEC_FAILED_PREFIX`.
LAUNCHER = """\
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0) != 0:
    sys.stderr.write("rindle-launch: prctl(PR_SET_PDEATHSIG) failed: %s\\n"
                     % os.strerror(ctypes.get_errno()))
if os.getppid() != int(sys.argv[1]):
    os._exit(125)
try:
    os.execv(sys.argv[2], sys.argv[3:])
except OSError as exc:
    sys.stderr.write("rindle-launch: cannot run %s: %s\\n" % (sys.argv[2], exc.strerror))
    os._exit(127)
"""
EXEC_FAILED_PREFIX = "rindle-launch: cannot run "
_PYTHON_NAMES = ("python", "pypy")


@dataclass(frozen=True)
class CommandResult:
    """What a finished child left: exit status and its decoded output."""

    status: int
    stdout: str
    stderr: str


def redact(text: str, *, rundir: Path | None = None) -> str:
    """``text`` with the run directory, URL user-info and URL query strings removed."""
    if rundir is not None:
        for form in {str(rundir), str(rundir.resolve())}:
            text = text.replace(form, "<run>")
    text = _USERINFO.sub(r"\1<redacted>@", text)
    return _QUERY.sub(r"\1?<redacted>", text)


def stderr_tail(text: str, *, rundir: Path | None = None) -> str:
    """The last :data:`TAIL_CHARS` characters of ``text``, redacted and stripped."""
    return redact(text, rundir=rundir).strip()[-TAIL_CHARS:]


def launcher_prefix() -> list[str] | None:
    """The command that starts a child with the parent-death signal set, up to (not
    including) the executable; None where that is not possible (see the module docs)."""
    exe = sys.executable
    if not sys.platform.startswith("linux") or not exe \
            or not Path(exe).name.lower().startswith(_PYTHON_NAMES) \
            or not os.access(exe, os.X_OK):
        return None
    return [exe, "-I", "-S", "-c", LAUNCHER, str(os.getpid())]


def _not_found(argv0: str, why: str) -> ToolNotFound:
    return ToolNotFound(
        f"cannot run {argv0!r} ({why}); install ffmpeg (Debian: apt-get install ffmpeg) or "
        "point RINDLE_FFMPEG_BIN / RINDLE_FFPROBE_BIN at it.")


def _spawn(argv: Sequence[str]) -> tuple[subprocess.Popen[bytes], bool]:
    """Start ``argv`` in a new session; returns the process and whether the launcher ran."""
    prefix = launcher_prefix()
    command = list(argv)
    if prefix is not None:
        executable = shutil.which(argv[0])
        if executable is None:
            raise _not_found(argv[0], "not found, or not executable")
        command = [*prefix, executable, *argv]
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, shell=False)
    except (FileNotFoundError, PermissionError) as exc:
        raise _not_found(argv[0], exc.strerror or type(exc).__name__) from exc
    return proc, prefix is not None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _cap_cpu(pid: int, cpu_s: int | None) -> None:
    if cpu_s is None:
        return
    # a backstop a little above ffmpeg's own -timelimit; the child may already be gone
    with contextlib.suppress(OSError, ValueError):
        resource.prlimit(pid, resource.RLIMIT_CPU, (cpu_s + 5, cpu_s + 10))


def run_command(argv: Sequence[str], *, timeout_s: float, rundir: Path | None = None,
                cpu_s: int | None = None, check: bool = True,
                failure_code: str = "ffmpeg_failed") -> CommandResult:
    """Run ``argv`` (a list, never a shell) and wait at most ``timeout_s`` seconds.

    The child runs in its own session and, on Linux, dies with this process (see the
    module docs); this call returns only once it has exited and been reaped.

    :raises ToolNotFound: the executable cannot be found or started.
    :raises CommandTimeout: the deadline passed; the process group has been killed and
        reaped before this is raised.
    :raises CommandFailed: with ``check`` and a non-zero exit; ``code`` is
        ``failure_code`` and the message carries the redacted stderr tail.
    """
    program = Path(argv[0]).name
    proc, launched = _spawn(argv)
    _cap_cpu(proc.pid, cpu_s)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        tail = stderr_tail(err.decode("utf-8", "replace"), rundir=rundir)
        raise CommandTimeout(
            f"{program} ran longer than {timeout_s:g} s and was killed (the input may be "
            "huge, hanging or hostile); raise RINDLE_FFMPEG_TIMEOUT if such files are "
            f"expected. Last output: {tail or '(none)'}",
            code="ffmpeg_timeout", status="timeout", stderr_tail=tail) from None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    result = CommandResult(proc.returncode, out.decode("utf-8", "replace"),
                           err.decode("utf-8", "replace"))
    last_line = result.stderr.strip().rpartition("\n")[2]
    if launched and result.status == 127 and last_line.startswith(EXEC_FAILED_PREFIX):
        raise _not_found(argv[0], last_line.rpartition(": ")[2])
    if check and result.status != 0:
        tail = stderr_tail(result.stderr, rundir=rundir)
        raise CommandFailed(
            f"{program} exited with status {result.status}: {tail or '(no output)'}. The "
            "input is corrupt, truncated or in a format this ffmpeg cannot decode.",
            code=failure_code, status=result.status, stderr_tail=tail)
    return result


def run_ffmpeg(logical: Sequence[str], *, rundir: Path, settings: AVSettings,
               loglevel: str = "error", check: bool = True) -> CommandResult:
    """Confine, wrap, validate and run one logical ffmpeg argument list.

    The inputs and the output must lie inside ``rundir``; the wrapped argv must pass
    :func:`rindle_ffmpeg.arguments.validate`. Nothing runs when a check fails.

    :raises ProcessingError: from the checks (see :mod:`rindle_ffmpeg.arguments`).
    :raises CommandTimeout, CommandFailed, ToolNotFound: from :func:`run_command`.
    """
    confine(io_paths(logical), rundir)
    argv = wrap(logical, settings, loglevel=loglevel)
    validate(argv)
    return run_command(argv, timeout_s=settings.timeout_s, rundir=rundir,
                       cpu_s=settings.cpu_s, check=check)
