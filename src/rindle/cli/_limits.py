"""Bounds on what the command line accepts: numeric option ranges and input files.

Every numeric option is a bounded :class:`click.IntRange`, so a value outside it is a usage
error (exit 2) instead of an ``OverflowError`` deep in a service. Every file the command
line reads is read in bounded lines and bounded total size, so ``/dev/zero`` or a file
with one enormous line is a usage error naming the file and the line, not a process that
grows until the machine gives up.

The bounds are module constants, read when a check runs (tests patch them small).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from rindle import config

__all__ = [
    "DEFAULT_MAX_OWNERS",
    "MAX_CONCURRENCY",
    "MAX_DURATION_SEC",
    "MAX_FILE_BYTES",
    "MAX_LINE_BYTES",
    "MAX_OWNERS_CEILING",
    "MAX_OWNER_LINES",
    "MAX_OWNER_LINES_CEILING",
    "Duration",
    "check_config_file",
    "duration",
    "read_bounded_lines",
    "require_regular_file",
]

#: The longest duration any option takes: 100 years, in seconds.
MAX_DURATION_SEC = 100 * 365 * 24 * 3600
#: The most threads one option may ask for (``--concurrency``, ``--queue NAME=N``).
MAX_CONCURRENCY = 256
#: The longest line of an input file, in bytes, without its line ending.
MAX_LINE_BYTES = 64 * 1024
#: The largest input file (``--owners-file``), in bytes.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: The default and the ceiling of ``erase-owners --max-lines``.
MAX_OWNER_LINES = 1_000_000
MAX_OWNER_LINES_CEILING = 10_000_000
#: The default of ``erase-owners --max-owners`` (the library's ``rindle.ops.erasure.MAX_OWNERS``,
#: repeated here so the command line never imports the database layer to print its help)
#: and its ceiling: every owner is erased in one transaction.
DEFAULT_MAX_OWNERS = 100
MAX_OWNERS_CEILING = 10_000

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WITH_UNIT = re.compile(r"(\d{1,20})\s*([smhd])")
_INTEGER = re.compile(r"[+-]?\d+")


class Duration(click.IntRange):
    """A duration in seconds, written as whole seconds (``90``) or a whole number with a
    unit ``s``, ``m``, ``h`` or ``d`` (``30s``, ``15m``, ``2h``, ``7d``).

    Converts to an ``int`` of seconds within the range, so it stays a bounded
    :class:`click.IntRange`: a value past it fails with click's ``... is not in the range``
    message; anything that is not a duration fails naming the accepted forms.
    """

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        """Seconds for ``value`` (an int, or a string as above); a usage error otherwise."""
        if isinstance(value, str):
            text = value.strip()
            unit = _WITH_UNIT.fullmatch(text)
            if unit is not None:
                value = int(unit.group(1)) * _UNITS[unit.group(2)]
            elif not _INTEGER.fullmatch(text):
                self.fail(f"{value!r} is not a duration: write seconds (90) or a whole number "
                          "with a unit s, m, h or d (30s, 15m, 2h, 7d)", param, ctx)
        return super().convert(value, param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        """``DURATION`` in usage and help lines."""
        return "DURATION"


def duration(min_sec: int = 0) -> Duration:
    """The type of a duration option: ``min_sec`` to 100 years in seconds, both included;
    written as seconds or with a unit (``2h``), see :class:`Duration`."""
    return Duration(min_sec, MAX_DURATION_SEC)


def read_bounded_lines(path: Path, *, param_hint: str, max_lines: int | None = None
                       ) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line of ``path`` (numbered from 1, line
    ending removed, decoded as UTF-8).

    Stops with :class:`click.BadParameter` (a usage error, exit 2) naming ``path`` and the
    line number as soon as a line is longer than :data:`MAX_LINE_BYTES`, the file has more
    than ``max_lines`` lines (default :data:`MAX_OWNER_LINES`), the bytes read pass
    :data:`MAX_FILE_BYTES`, or a line is not UTF-8. Never reads more than one line past a
    bound, so an endless file (``/dev/zero``, a pipe) is refused, not consumed.
    """
    line_cap = MAX_OWNER_LINES if max_lines is None else max_lines
    line_bytes, file_bytes = MAX_LINE_BYTES, MAX_FILE_BYTES

    def refuse(problem: str) -> click.BadParameter:
        return click.BadParameter(f"{path}: {problem}", param_hint=param_hint)

    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except OSError as exc:
        raise refuse(f"cannot be read: {exc.strerror or exc}") from None
    try:
        total = 0
        number = 0
        while True:
            raw = handle.readline(line_bytes + 2)  # the longest allowed line plus "\r\n"
            if not raw:
                return
            number += 1
            total += len(raw)
            content = raw[:-1] if raw.endswith(b"\n") else raw
            content = content[:-1] if content.endswith(b"\r") else content
            if len(content) > line_bytes:
                raise refuse(f"line {number} is longer than {line_bytes} bytes")
            if number > line_cap:
                raise refuse(f"line {number}: the file has more than {line_cap} lines")
            if total > file_bytes:
                raise refuse(f"line {number}: the file is larger than {file_bytes} bytes")
            try:
                text = content.decode("utf-8")
            except UnicodeDecodeError:
                raise refuse(f"line {number} is not UTF-8 text") from None
            yield number, text
    except OSError as exc:
        raise refuse(f"cannot be read: {exc.strerror or exc}") from None
    finally:
        handle.close()


def check_config_file(_ctx: click.Context, _param: click.Parameter, value: Path | None
                      ) -> Path | None:
    """Click callback for ``--config``: refuse a device or a regular file larger than
    :data:`rindle.config.MAX_CONFIG_BYTES` (a usage error naming the file and the line the
    bound falls on). A missing file passes here; loading the settings reports it, and a
    pipe is bounded while it is read."""
    if value is None:
        return None
    max_bytes = config.MAX_CONFIG_BYTES
    try:
        st = os.stat(value)
    except OSError:
        return value
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        raise click.BadParameter(f"{value} is a device, not a settings file")
    if stat.S_ISREG(st.st_mode) and st.st_size > max_bytes:
        try:
            with open(value, "rb") as handle:
                line = handle.read(max_bytes).count(b"\n") + 1
        except OSError:
            line = 1
        raise click.BadParameter(f"{value}: line {line}: the file is larger than "
                                 f"{max_bytes} bytes")
    return value


def require_regular_file(_ctx: click.Context, _param: click.Parameter, value: Path) -> Path:
    """Click callback for a file uploaded as is: refuse anything but a regular file
    (a device such as ``/dev/zero``, a pipe, a socket) as a usage error. Its size is then
    fixed and the profile's ``max_bytes`` bounds it."""
    try:
        regular = stat.S_ISREG(os.stat(value).st_mode)
    except OSError as exc:
        raise click.BadParameter(f"{value} cannot be read: {exc.strerror or exc}") from None
    if not regular:
        raise click.BadParameter(f"{value} is not a regular file")
    return value
