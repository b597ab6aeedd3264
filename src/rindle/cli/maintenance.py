"""Maintenance verbs: ``abort-incomplete-uploads``, ``cleanup-orphans``,
``sweep-orphaned-temp-files``, ``erase-owners``."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from rindle import defaults
from rindle.cli import _limits
from rindle.cli._context import CliContext, handle_errors, pass_cli
from rindle.cli._limits import (
    DEFAULT_MAX_OWNERS,
    MAX_OWNER_LINES,
    MAX_OWNER_LINES_CEILING,
    MAX_OWNERS_CEILING,
    duration,
    read_bounded_lines,
)
from rindle.cli._ops_options import counters_text, finish, json_option, live_option


@click.command("abort-incomplete-uploads",
               epilog="Example: rindle abort-incomplete-uploads --live --json")
@live_option(help="Really expire them (default: a dry run that only counts).")
@json_option
@pass_cli
@handle_errors
def abort_uploads_command(ctx: CliContext, live: bool) -> None:
    """Expire direct-upload sessions whose time ran out (aborting multipart uploads).

    A dry run unless --live: it counts the sessions it would expire. Live, a session
    whose write lease is held (a tus final concatenation reading it) is left for the next
    run and counted in sessions_busy.
    """
    report = ctx.app().ops.abort_incomplete_uploads(dry_run=not live)
    title = "abort-incomplete-uploads" + (" (dry run: nothing expired; pass --live)"
                                          if report.dry_run else "")
    finish(ctx, report, counters_text(
        title, report,
        ["sessions_found", "sessions_aborted", "sessions_busy", "abort_errors",
         "multipart_aborts", "resumable_aborts", "tus_aborts", "presigned_put_aborts"]))


@click.command("cleanup-orphans", epilog="Example: rindle cleanup-orphans --live --json")
@live_option("--no-dry-run", help="Really delete (default: a dry run that only reports).")
@json_option
@pass_cli
@handle_errors
def cleanup_command(ctx: CliContext, live: bool) -> None:
    """Delete expired sessions' staged objects, then their rows (dry run unless --live)."""
    report = ctx.app().ops.cleanup_orphans(dry_run=not live)
    title = "cleanup-orphans" + (" (dry run: nothing deleted; pass --live)" if report.dry_run
                                 else "")
    finish(ctx, report, counters_text(
        title, report, ["sessions_found", "sessions_deleted", "assets_deleted",
                        "objects_deleted", "storage_errors", "storage_skipped",
                        "resumable_skipped"]))


@click.command("sweep-orphaned-temp-files",
               epilog="Example: rindle sweep-orphaned-temp-files --threshold 6h --live")
@live_option(help="Really remove (default: a dry run that only reports).")
@click.option("--threshold", "--threshold-sec", "threshold", type=duration(),
              default=defaults.SWEEP_THRESHOLD,
              show_default=True,
              help="Only entries older than this: seconds, or 30m, 4h, 2d (at most 100 years).")
@json_option
@pass_cli
@handle_errors
def sweep_command(ctx: CliContext, live: bool, threshold: int) -> None:
    """Remove processing leftovers under tmp_dir that no running process owns.

    A dry run unless --live.
    """
    report = ctx.app().ops.sweep_orphaned_temp_files(dry_run=not live, threshold_sec=threshold)
    title = f"sweep-orphaned-temp-files {report.root}" + (" (dry run)" if report.dry_run else "")
    finish(ctx, report, counters_text(title, report, ["scanned", "removed", "kept_in_use",
                                                      "kept_young", "bytes_freed", "errors"]))


# --- erase-owners: the owners file --------------------------------------------------------

#: The key pairs an owner object may use: the reference's, then the short form.
OWNER_KEYS = (("owner_type", "owner_id"), ("type", "id"))
_HEADERS = {("type", "id"), ("owner_type", "owner_id")}
_STRUCTURE = re.compile(r'["\[\]{},]')
_IN_STRING = re.compile(r'["\\]')


def _refuse(path: Path, number: int, problem: str) -> click.BadParameter:
    return click.BadParameter(f"{path}: line {number}: {problem}", param_hint="--owners-file")


def owner_from_json(item: Any) -> tuple[str, str] | None:
    """``(type, id)`` from ``{"owner_type": ..., "owner_id": ...}`` (or ``{"type": ...,
    "id": ...}``): the type a non-blank string, the id a non-blank string or an integer;
    ``None`` for anything else."""
    if not isinstance(item, dict):
        return None
    for type_key, id_key in OWNER_KEYS:
        if type_key in item or id_key in item:
            kind, ident = item.get(type_key), item.get(id_key)
            break
    else:
        return None
    if not isinstance(kind, str) or not kind.strip():
        return None
    if isinstance(ident, bool) or not isinstance(ident, str | int) or not str(ident).strip():
        return None
    return kind, str(ident)


def _owner_from_line(line: str) -> tuple[str, str] | None:
    """One JSON-lines object or one CSV ``type,id`` row; ``None`` when it is neither."""
    if line.startswith("{"):
        try:
            return owner_from_json(json.loads(line))
        except ValueError:
            return None
    if line[0] in "[]}":
        return None
    try:
        row = next(csv.reader([line], strict=True))
    except csv.Error:
        return None
    if len(row) != 2 or not all(part.strip() for part in row):
        return None
    return row[0].strip(), row[1].strip()


class _JsonArray:
    """Splits a JSON array, fed one line at a time, into the text of its entries.

    Only the array's own brackets and commas are tracked (strings and nesting skipped), so
    each entry is decoded on its own: memory stays one entry (at most
    :data:`~rindle.cli._limits.MAX_LINE_BYTES`), and reading can stop after any entry.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.depth = 0  # 1 inside the array, more inside an entry's brackets
        self.in_string = False
        self.closed = False
        self.entries = 0
        self.parts: list[str] = []
        self.size = 0
        self.start: int | None = None  # the line the current entry starts on

    def _take(self, number: int, text: str) -> None:
        if self.start is None:
            if not text.strip():
                return
            self.start = number
        self.parts.append(text)
        self.size += len(text)
        if self.size > _limits.MAX_LINE_BYTES:
            raise _refuse(self.path, self.start, "a JSON array entry is longer than "
                                                 f"{_limits.MAX_LINE_BYTES} bytes")

    def _finish(self, number: int, *, closing: bool) -> list[tuple[int, str]]:
        text, start = "".join(self.parts).strip(), self.start
        self.parts, self.size, self.start = [], 0, None
        if not text:
            if closing and self.entries == 0:
                return []  # "[]"
            raise _refuse(self.path, number, "an empty entry in the JSON array (a stray comma?)")
        self.entries += 1
        return [(start or number, text)]

    def feed(self, number: int, line: str) -> list[tuple[int, str]]:
        """The entries this line completes, as ``(line the entry starts on, JSON text)``."""
        if self.closed:
            if line.strip():
                raise _refuse(self.path, number, "text after the end of the JSON array")
            return []
        done: list[tuple[int, str]] = []
        pos = 0
        if self.depth == 0:
            pos = line.index("[") + 1  # the caller hands over the line that opens the array
            self.depth = 1
        segment = pos
        while pos < len(line):
            if self.in_string:
                found = _IN_STRING.search(line, pos)
                if found is None:
                    break
                pos = found.end() + (1 if found.group() == "\\" else 0)
                self.in_string = found.group() == "\\"
                continue
            found = _STRUCTURE.search(line, pos)
            if found is None:
                break
            char, pos = found.group(), found.end()
            if char == '"':
                self.in_string = True
            elif char in "[{":
                self.depth += 1
            elif char in "]}":
                self.depth -= 1
                if self.depth == 0:
                    if char != "]":
                        raise _refuse(self.path, number, "unbalanced brackets in the JSON array")
                    self._take(number, line[segment:found.start()])
                    done += self._finish(number, closing=True)
                    self.closed = True
                    if line[pos:].strip():
                        raise _refuse(self.path, number, "text after the end of the JSON array")
                    return done
            elif char == "," and self.depth == 1:
                self._take(number, line[segment:found.start()])
                done += self._finish(number, closing=False)
                segment = pos
        self._take(number, line[segment:] + "\n")
        return done

    def owners(self, entries: list[tuple[int, str]]) -> Iterator[tuple[int, tuple[str, str]]]:
        """Decode finished entries; one that is not an owner object is a usage error."""
        for start, text in entries:
            try:
                item = json.loads(text)
            except json.JSONDecodeError as exc:
                raise _refuse(self.path, start, f"not valid JSON ({exc.msg})") from None
            owner = owner_from_json(item)
            if owner is None:
                raise _refuse(self.path, start, 'expected {"owner_type": ..., "owner_id": ...}')
            yield start, owner


def _owner_entries(path: Path, max_lines: int | None
                   ) -> Iterator[tuple[int, tuple[str, str]]]:
    """``(line, owner)`` for each owner in the file, in order, read lazily."""
    lines = read_bounded_lines(path, param_hint="--owners-file", max_lines=max_lines)
    array: _JsonArray | None = None
    first = True
    number = 0
    for number, raw in lines:
        if array is not None:
            yield from array.owners(array.feed(number, raw))
            continue
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and first:
            array = _JsonArray(path)
            yield from array.owners(array.feed(number, raw))
            continue
        if first and tuple(p.strip().lower() for p in line.split(",")) in _HEADERS:
            first = False
            continue  # a CSV header row
        first = False
        owner = _owner_from_line(line)
        if owner is None:
            raise _refuse(path, number, 'expected CSV TYPE,ID, a JSON line {"owner_type": '
                          '..., "owner_id": ...}, or a JSON array of such objects')
        yield number, owner
    if array is not None and not array.closed:
        raise _refuse(path, number, "the JSON array is not closed (no final ])")


def read_owners(path: Path, *, max_lines: int | None = None,
                max_owners: int = DEFAULT_MAX_OWNERS) -> list[tuple[str, str]]:
    """The distinct owners in ``path``, in file order.

    Three formats: a JSON array of ``{"owner_type": ..., "owner_id": ...}`` objects (the
    reference's; may span lines), JSON lines of such objects, or CSV ``type,id`` rows (an
    optional ``type,id`` / ``owner_type,owner_id`` header row). Objects may use
    ``type``/``id`` keys too. Blank lines and ``#`` comments are skipped outside an array.

    The file is read within the bounds of :func:`rindle.cli._limits.read_bounded_lines`
    (line length, ``max_lines`` lines counting blanks and comments, default
    :data:`~rindle.cli._limits.MAX_OWNER_LINES`, total size), and reading stops at the
    first owner past ``max_owners``. A bound passed, a line or entry that is none of the
    formats, or more than ``max_owners`` distinct owners raises :class:`click.BadParameter`
    (a usage error) naming the file and the line.
    """
    owners: dict[tuple[str, str], None] = {}
    for number, owner in _owner_entries(path, max_lines):
        if owner in owners:
            continue
        if len(owners) >= max_owners:
            raise _refuse(path, number, f"more than {max_owners} owners (--max-owners); split "
                                        "the file or raise --max-owners")
        owners[owner] = None
    return list(owners)


@click.command("erase-owners", epilog="\b\nExamples:\n"
               "  rindle erase-owners --owners-file owners.json          # preview\n"
               "  rindle erase-owners --owners-file owners.json --live --json")
@click.option("--owners-file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='A JSON array of {"owner_type": ..., "owner_id": ...} objects, JSON lines '
                   "of them, or CSV type,id rows.")
@click.option("--max-owners", type=click.IntRange(1, MAX_OWNERS_CEILING),
              default=DEFAULT_MAX_OWNERS, show_default=True,
              help="Refuse a file naming more distinct owners than this (all are erased in "
                   "one transaction); reading stops there.")
@click.option("--max-lines", type=click.IntRange(1, MAX_OWNER_LINES_CEILING), default=None,
              help="Refuse an owners file with more lines than this "
                   f"[default: {MAX_OWNER_LINES}].")
@live_option("--execute", help="Really erase (default: a preview that changes nothing).")
@json_option
@pass_cli
@handle_errors
def erase_owners_command(ctx: CliContext, owners_file: Path, max_owners: int,
                         max_lines: int | None, live: bool) -> None:
    """Detach everything some owners hold and purge assets no one else holds.

    A preview unless --live.
    """
    from rindle.ops.erasure import erase_owners

    # a bad file fails before the app is built
    owners = read_owners(owners_file, max_lines=max_lines, max_owners=max_owners)
    report = erase_owners(ctx.app(), owners, dry_run=not live, max_owners=max_owners)

    def text() -> str:
        lines = [f"erase-owners ({report.mode}): {report.owners} owner(s)",
                 f"  detach          {len(report.detached)} attachment(s)",
                 f"  purge           {len(report.purged)} asset(s)",
                 f"  retained        {len(report.retained)} shared asset(s)"]
        lines += [f"    {r['asset_id']} still attached {r['survivors']} time(s)"
                  for r in report.retained]
        if report.mode == "execute":
            lines.append(f"  purge_enqueued  {report.purge_enqueued}")
            lines.append(f"  already_queued  {report.purge_already_queued}")
        else:
            lines.append("  nothing changed; pass --live to erase")
        return "\n".join(lines)

    finish(ctx, report, text)
