"""``python manage.py rindle <verb> ...``: the ``rindle`` command line on this project's app.

Every verb of ``rindle`` (``migrate``, ``doctor``, ``worker``, ``cleanup-orphans``, ...) with
the same flags, output and exit codes (0 done, 1 infrastructure error, 2 usage), run by
rindle's own click group with the app of ``settings.RINDLE`` (on Django's database)
instead of one from ``rindle.toml``. ``--json`` goes before or after the verb as in
``rindle``. ``--config`` is refused (exit 2): the settings are ``settings.RINDLE``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rindle_django.cli import run

__all__ = ["Command"]


class Command(BaseCommand):
    """Delegates its arguments, untouched, to rindle's click group."""

    help = "rindle's command line on this project's app: manage.py rindle <verb> [options]"
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """A parser that takes every argument as it is (click parses them)."""
        parser = CommandParser(prog=f"{os.path.basename(prog_name)} {subcommand}",
                               add_help=False, prefix_chars="\x00",
                               called_from_command_line=getattr(
                                   self, "_called_from_command_line", None))
        parser.add_argument("args", nargs="*")
        parser.set_defaults(verbosity=1, settings=None, pythonpath=None, traceback=False,
                            no_color=False, force_color=False, skip_checks=True)
        return parser

    def run_from_argv(self, argv: list[str]) -> None:
        """``manage.py rindle ...``: exit with rindle's own status (no Django wrapper
        message on top of rindle's one-line error)."""
        from django.db import connections

        try:
            code = run(argv[2:])
        finally:
            connections.close_all()
        sys.exit(code)

    def handle(self, *args: str, **options: Any) -> None:
        """Run the verb; a non-zero exit becomes a CommandError with that return code."""
        code = run(list(args))
        if code:
            raise CommandError(f"rindle exited with status {code}", returncode=code)
