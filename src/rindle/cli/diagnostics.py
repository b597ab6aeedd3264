"""Diagnostics: ``doctor`` and ``runtime-status``."""

from __future__ import annotations

import click

from rindle import defaults
from rindle.cli._context import CliContext, handle_errors, pass_cli
from rindle.cli._limits import duration
from rindle.cli._ops_options import finish, json_option, profile_option


@click.command("doctor", epilog="Example: rindle doctor --json")
@json_option
@pass_cli
@handle_errors
def doctor_command(ctx: CliContext) -> None:
    """Check the setup (database, schema, storages, plugins, profiles, secret, workers).

    Exits 1 when any check is an ERROR; warnings never fail.
    """
    report = ctx.app().ops.doctor()
    finish(ctx, report, report.render)


@click.command("runtime-status",
               epilog="Example: rindle runtime-status --profile avatar --older-than 2h --json")
@profile_option()
@click.option("--older-than", "--older-than-sec", "older_than", type=duration(),
              default=defaults.RUNTIME_STATUS_OLDER_THAN,
              show_default=True,
              help="Work untouched for longer than this counts as stuck: seconds, or 30m, "
                   "2h, 1d (at most 100 years).")
@click.option("--limit", type=click.IntRange(min=1, max=1000),
              default=defaults.RUNTIME_STATUS_LIMIT, show_default=True,
              help="Rows per sample list.")
@click.option("--provider-stuck", type=duration(), default=None,
              help="After this long an uploading/processing provider asset counts as stuck: "
                   "seconds, or 30m, 2h, 1d [default: each provider's "
                   "provider_stuck_threshold_seconds, "
                   f"{defaults.STREAMING_STUCK_THRESHOLD_SECONDS}].")
@json_option
@pass_cli
@handle_errors
def runtime_status_command(ctx: CliContext, profile: str | None, older_than: int,
                           limit: int, provider_stuck: int | None) -> None:
    """Report degraded or stuck work and the verb to run about it (read-only, bounded)."""
    report = ctx.app().ops.runtime_status(profile=profile, older_than=older_than,
                                          limit=limit, provider_stuck=provider_stuck)
    finish(ctx, report, report.render)
