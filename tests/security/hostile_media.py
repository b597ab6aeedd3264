"""Hostile inputs built cheaply from bytes, and /proc readers for the process tests.

* :func:`uniform_png`: a PNG of any size that is a few KB on disk (1-bit greyscale, every
  row the same, deflated) but costs ``width * height`` bytes once Pillow decodes it.
* :func:`declare_duration`: an MP4 whose movie header (``mvhd``) declares a duration its
  media does not have: timescale 1 and a 32-bit duration, so ``0xFFFFFFFF`` is 136 years.
* :func:`children` / :func:`proc_stat`: read ``/proc`` to find a process's children and
  learn whether one is still running (a zombie no one reaps counts as dead, with the
  wait status the kernel recorded).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAX_MVHD_SECONDS", "ProcStat", "children", "declare_duration", "proc_stat",
           "uniform_png"]

#: The largest duration a version-0 ``mvhd`` can declare at timescale 1: about 136 years.
MAX_MVHD_SECONDS = 0xFFFFFFFF


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def uniform_png(path: Path, width: int, height: int) -> Path:
    """Write a white ``width`` x ``height`` 1-bit greyscale PNG (valid CRCs) to ``path``."""
    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter type 0, then the packed pixels
    deflate = zlib.compressobj(6)
    body = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body)
                     + _chunk(b"IEND", b""))
    return path


def declare_duration(source: Path, dest: Path, seconds: int) -> Path:
    """Copy the MP4 ``source`` to ``dest`` with its ``mvhd`` declaring ``seconds``.

    ``source`` must have a version-0 ``mvhd`` and no edit lists (``-use_editlist 0``),
    whose durations would be read in the changed timescale.
    """
    data = bytearray(source.read_bytes())
    at = data.find(b"mvhd")
    assert at > 0 and data[at + 4] == 0, "expected a version-0 mvhd box"
    data[at + 16:at + 24] = struct.pack(">II", 1, seconds)  # timescale, duration
    dest.write_bytes(bytes(data))
    return dest


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` these tests use."""

    pid: int
    comm: str
    state: str
    ppid: int
    starttime: int
    #: The wait status (``exit_code``, Linux >= 3.5) once the process has exited.
    exit_code: int


def proc_stat(pid: int) -> ProcStat | None:
    """``/proc/PID/stat`` parsed, or None when there is no such process (any more)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    head, _, rest = raw.rpartition(")")  # comm may hold spaces and parentheses
    fields = rest.split()
    return ProcStat(pid=pid, comm=head.partition("(")[2], state=fields[0],
                    ppid=int(fields[1]), starttime=int(fields[19]),
                    exit_code=int(fields[49]) if len(fields) > 49 else 0)


def children(ppid: int) -> list[ProcStat]:
    """Every process whose parent is ``ppid`` right now."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None and stat.ppid == ppid:
                found.append(stat)
    return found
