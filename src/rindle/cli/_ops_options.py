"""What every operator verb shares: a per-verb ``--json``, reports out, exit codes.

Exit codes: 0 success, 1 infrastructure errors during the pass (storage, network, auth),
2 usage errors (click's own, and :class:`rindle.errors.UsageError`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from rindle.cli._context import CliContext, emit

__all__ = ["counters_text", "finish", "json_option"]

F = TypeVar("F", bound=Callable[..., Any])


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.ensure_object(CliContext).json = True
    return value


def json_option(func: F) -> F:
    """Accept ``--json`` after the verb too (``rindle doctor --json``)."""
    return click.option("--json", "json_flag", is_flag=True, expose_value=False,
                        callback=_set_json, is_eager=True,
                        help="Print the report as one JSON object.")(func)


def counters_text(title: str, report: Any, fields: list[str]) -> str:
    """A short labelled block: the title, then one ``name  value`` line per counter."""
    width = max(len(f) for f in fields)
    lines = [title] + [f"  {f:<{width}}  {getattr(report, f)}" for f in fields]
    return "\n".join(lines)


def finish(ctx: CliContext, report: Any, text: str | Callable[[], str]) -> None:
    """Print the report (text or JSON) and exit with its exit code."""
    emit(ctx, report.to_dict(), text)
    code = getattr(report, "exit_code", 0)
    if code:
        sys.exit(code)
