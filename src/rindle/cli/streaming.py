"""``rindle streaming ...``: the streaming-provider verbs (sync-due, sync, list, providers)."""

from __future__ import annotations

from typing import Any

import click

from rindle.cli._context import CliContext, emit, handle_errors, pass_cli
from rindle.cli._ops_options import json_option

#: The states of a provider row (``rindle.domain.fsm.provider_asset``), for ``--state``.
PROVIDER_STATES = ("pending", "uploading", "processing", "ready", "errored", "deleted")
EXAMPLE_ROW = "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"


@click.group("streaming")
def streaming_group() -> None:
    """Streaming providers: defensive sync, their rows, and what is configured."""


@streaming_group.command("sync-due", epilog="Example: rindle streaming sync-due --json")
@json_option
@pass_cli
@handle_errors
def sync_due_command(ctx: CliContext) -> None:
    """Enqueue one sync job per provider asset waiting past the polling floor.

    The same service the cron job rindle.provider.sync_due runs; the jobs run on the
    provider queue of rindle worker.
    """
    report = ctx.app().streaming.sync_due()
    emit(ctx, report.to_dict(), lambda: (
        f"streaming sync-due\n  rows_scanned     {report.rows_scanned}\n"
        f"  jobs_enqueued    {report.jobs_enqueued}\n"
        f"  jobs_conflicted  {report.jobs_conflicted}"))


@streaming_group.command("sync", epilog=f"Example: rindle streaming sync {EXAMPLE_ROW} --json")
@click.argument("provider_asset_row_id")
@json_option
@pass_cli
@handle_errors
def sync_command(ctx: CliContext, provider_asset_row_id: str) -> None:
    """Sync one provider asset row now (by its rindle row id), in this process.

    The row ids are listed by rindle streaming list and rindle show; a row that does not
    exist exits 1 with code not_found.
    """
    from rindle.errors import NotFound

    result = ctx.app().streaming.sync_provider_asset(provider_asset_row_id)
    if result.outcome == "missing":
        raise NotFound("provider asset row", provider_asset_row_id)
    emit(ctx, result.to_dict(), lambda: (
        f"streaming sync\n  outcome    {result.outcome}\n  state      {result.state}\n"
        f"  no_change  {result.no_change}"))


@streaming_group.command("list", epilog="\b\nExamples:\n"
                         "  rindle streaming list --state processing --provider mux\n"
                         "  rindle streaming list --limit 500 --json")
@click.option("--state", "states", multiple=True, type=click.Choice(PROVIDER_STATES),
              help="Only rows in this state (repeatable).")
@click.option("--provider", "providers", multiple=True,
              help="Only rows of this provider name (repeatable).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="The most rows to list.")
@json_option
@pass_cli
@handle_errors
def list_command(ctx: CliContext, states: tuple[str, ...], providers: tuple[str, ...],
                 limit: int) -> None:
    """List streaming provider rows, least recently updated first (stuck rows lead).

    Shows each row's id (what rindle streaming sync takes), asset, provider, state and the
    provider's asset id redacted to its last four characters; "more" says whether rows past
    --limit match too.
    """
    from sqlalchemy import select

    from rindle.cli.assets import provider_asset_dict
    from rindle.domain.models import ProviderAsset

    stmt = select(ProviderAsset).order_by(ProviderAsset.updated_at, ProviderAsset.id)
    if states:
        stmt = stmt.where(ProviderAsset.state.in_(states))
    if providers:
        stmt = stmt.where(ProviderAsset.provider_name.in_(providers))
    app = ctx.app()
    with app.db.sessionmaker() as s:
        found = s.scalars(stmt.limit(limit + 1)).all()
        rows: list[dict[str, Any]] = [provider_asset_dict(r) for r in found[:limit]]
    data = {"rows": rows, "more": len(found) > limit}

    def text() -> str:
        if not rows:
            return "streaming rows: none"
        lines = [f"streaming rows ({len(rows)}{', more past --limit' if data['more'] else ''})"]
        lines += [f"  {r['id']}  {r['provider']}  {r['state']:<10}  asset {r['asset_id']}  "
                  f"provider id {r['provider_asset_id'] or '-'}" for r in rows]
        return "\n".join(lines)

    emit(ctx, data, text)


@streaming_group.command("providers", epilog="Example: rindle streaming providers --json")
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
