"""``rindle streaming ...``: the streaming-provider verbs (sync-due, sync, providers)."""

from __future__ import annotations

import click

from rindle.cli._context import CliContext, emit, handle_errors, pass_cli
from rindle.cli._ops_options import json_option


@click.group("streaming")
def streaming_group() -> None:
    """Streaming providers: defensive sync and what is configured."""


@streaming_group.command("sync-due")
@json_option
@pass_cli
@handle_errors
def sync_due_command(ctx: CliContext) -> None:
    """Enqueue one sync job per provider asset waiting past the polling floor.

    The same service the cron job ``rindle.provider.sync_due`` runs; the jobs run on the
    ``provider`` queue of ``rindle worker``.
    """
    report = ctx.app().streaming.sync_due()
    emit(ctx, report.to_dict(), lambda: (
        f"streaming sync-due\n  rows_scanned     {report.rows_scanned}\n"
        f"  jobs_enqueued    {report.jobs_enqueued}\n"
        f"  jobs_conflicted  {report.jobs_conflicted}"))


@streaming_group.command("sync")
@click.argument("provider_asset_row_id")
@json_option
@pass_cli
@handle_errors
def sync_command(ctx: CliContext, provider_asset_row_id: str) -> None:
    """Sync one provider asset row now (by its rindle row id), in this process."""
    result = ctx.app().streaming.sync_provider_asset(provider_asset_row_id)
    emit(ctx, result.to_dict(), lambda: (
        f"streaming sync\n  outcome    {result.outcome}\n  state      {result.state}\n"
        f"  no_change  {result.no_change}"))


@streaming_group.command("providers")
@json_option
@pass_cli
@handle_errors
def providers_command(ctx: CliContext) -> None:
    """List configured providers, their backends and the profiles that stream through them."""
    streaming = ctx.app().streaming
    profiles = streaming.streaming_profiles()
    data = {name: {"backend": cfg.backend,
                   "profiles": sorted(p for p, n in profiles.items() if n == name),
                   "stuck_threshold_seconds": cfg.stuck_threshold_seconds}
            for name, cfg in sorted(streaming.configs.items())}
    lines = ["streaming providers"] + [
        f"  {name}  backend={d['backend']}  profiles={','.join(d['profiles']) or '-'}"
        for name, d in data.items()] if data else ["streaming providers: none configured"]
    emit(ctx, {"providers": data}, "\n".join(lines))
