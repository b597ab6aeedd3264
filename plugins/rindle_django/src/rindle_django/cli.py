"""Run rindle's click command line with the Django project's app (``manage.py rindle``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from rindle.cli import CliContext
from rindle_django.conf import get_app

__all__ = ["run"]


class _ProjectContext(CliContext):
    """The CLI state with the project's app already built (and never closed by a verb)."""

    def app(self) -> Any:
        """The project's app (:func:`rindle_django.get_app`)."""
        return get_app()

    def close(self) -> None:
        """Nothing: the app lives as long as the process."""


def _global_options(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    for arg in argv:
        if not arg.startswith("-"):
            break
        out.append(arg)
    return out


def _refuse(argv: Sequence[str], message: str) -> int:
    """Report a usage error as ``rindle`` does (a line on stderr; with ``--json`` also one
    JSON object on stdout); exit status 2."""
    if "--json" in argv:
        click.echo(json.dumps({"error": {"code": "usage_error", "message": message}}))
    click.echo(f"Error: {message} [usage_error]", err=True)
    return 2


def run(argv: Sequence[str]) -> int:
    """Run ``rindle <argv>`` on the project's app; its exit status (0, 1 or 2)."""
    from rindle.cli import cli

    options = _global_options(argv)
    if any(a == "--config" or a.startswith("--config=") for a in options):
        return _refuse(argv, "manage.py rindle takes its settings from settings.RINDLE; "
                             "remove --config")
    if argv[len(options):len(options) + 1] == ["init"]:
        return _refuse(argv, "manage.py rindle init would write a rindle.toml this project "
                             "never reads: its settings are the RINDLE dict in settings.py "
                             "and its tables come with `python manage.py migrate` (see "
                             "guides/django.md)")
    try:
        cli.main(args=list(argv), prog_name="manage.py rindle", obj=_ProjectContext(),
                 standalone_mode=True)
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        click.echo(str(exc.code), err=True)
        return 1
    finally:
        sys.stdout.flush()
    return 0
