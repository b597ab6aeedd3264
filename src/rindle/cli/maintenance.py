"""Maintenance verbs: ``abort-incomplete-uploads``, ``cleanup-orphans``,
``sweep-orphaned-temp-files``, ``erase-owners``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click

from rindle.cli._context import CliContext, handle_errors, pass_cli
from rindle.cli._limits import (
    MAX_OWNER_LINES,
    MAX_OWNER_LINES_CEILING,
    duration,
    read_bounded_lines,
)
from rindle.cli._ops_options import counters_text, finish, json_option


@click.command("abort-incomplete-uploads")
@json_option
@pass_cli
@handle_errors
def abort_uploads_command(ctx: CliContext) -> None:
    """Expire direct-upload sessions whose time ran out (aborting multipart uploads)."""
    report = ctx.app().ops.abort_incomplete_uploads()
    finish(ctx, report, counters_text(
        "abort-incomplete-uploads", report,
        ["sessions_found", "sessions_aborted", "abort_errors", "multipart_aborts",
         "resumable_aborts", "presigned_put_aborts"]))


@click.command("cleanup-orphans")
@click.option("--dry-run/--no-dry-run", default=True, show_default=True,
              help="Only report what would be deleted.")
@click.option("--live", is_flag=True, help="Same as --no-dry-run: really delete.")
@json_option
@pass_cli
@handle_errors
def cleanup_command(ctx: CliContext, dry_run: bool, live: bool) -> None:
    """Delete expired sessions' staged objects, then their rows (dry run by default)."""
    report = ctx.app().ops.cleanup_orphans(dry_run=dry_run and not live)
    title = "cleanup-orphans" + (" (dry run: nothing deleted; pass --live)" if report.dry_run
                                 else "")
    finish(ctx, report, counters_text(
        title, report, ["sessions_found", "sessions_deleted", "assets_deleted",
                        "objects_deleted", "storage_errors", "storage_skipped",
                        "resumable_skipped"]))


@click.command("sweep-orphaned-temp-files")
@click.option("--live", is_flag=True, help="Really remove (default: dry run).")
@click.option("--threshold-sec", type=duration(), default=14_400,
              show_default=True, help="Only entries older than this many seconds.")
@json_option
@pass_cli
@handle_errors
def sweep_command(ctx: CliContext, live: bool, threshold_sec: int) -> None:
    """Remove processing leftovers under tmp_dir that no running process owns."""
    report = ctx.app().ops.sweep_orphaned_temp_files(dry_run=not live,
                                                     threshold_sec=threshold_sec)
    title = f"sweep-orphaned-temp-files {report.root}" + (" (dry run)" if report.dry_run else "")
    finish(ctx, report, counters_text(title, report, ["scanned", "removed", "kept_in_use",
                                                      "kept_young", "bytes_freed", "errors"]))


def read_owners(path: Path, *, max_lines: int | None = None) -> list[tuple[str, str]]:
    """Owners from a file: JSON lines (``{"type": "user", "id": "42"}``) or CSV ``type,id``;
    blank lines and ``#`` comments are skipped.

    The file is read within the bounds of :func:`rindle.cli._limits.read_bounded_lines`
    (line length, ``max_lines`` lines counting blanks and comments, default
    :data:`~rindle.cli._limits.MAX_OWNER_LINES`, total size). A malformed line or a
    bound passed raises :class:`click.BadParameter` naming the line.
    """
    owners: list[tuple[str, str]] = []
    for number, line in read_bounded_lines(path, param_hint="--owners-file",
                                           max_lines=max_lines):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                item = json.loads(line)
                owners.append((str(item["type"]), str(item["id"])))
            except (ValueError, KeyError, TypeError):
                raise click.BadParameter(f"line {number}: expected {{\"type\": ..., \"id\": "
                                         "...}", param_hint="--owners-file") from None
        else:
            row = next(csv.reader([line]))
            if len(row) != 2 or not all(part.strip() for part in row):
                raise click.BadParameter(f"line {number}: expected TYPE,ID",
                                         param_hint="--owners-file")
            owners.append((row[0].strip(), row[1].strip()))
    return owners


@click.command("erase-owners")
@click.option("--owners-file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON lines or CSV (type,id) of owners to erase.")
@click.option("--max-lines", type=click.IntRange(1, MAX_OWNER_LINES_CEILING), default=None,
              help="Refuse an owners file with more lines than this "
                   f"[default: {MAX_OWNER_LINES}].")
@click.option("--execute", is_flag=True, help="Really erase (default: preview).")
@json_option
@pass_cli
@handle_errors
def erase_owners_command(ctx: CliContext, owners_file: Path, max_lines: int | None,
                         execute: bool) -> None:
    """Detach everything some owners hold and purge assets no one else holds."""
    owners = read_owners(owners_file, max_lines=max_lines)  # a bad file fails before the app
    report = ctx.app().erase_owners(owners, dry_run=not execute)

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
            lines.append("  nothing changed; pass --execute to erase")
        return "\n".join(lines)

    finish(ctx, report, text)
