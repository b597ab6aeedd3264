"""Repair verbs: ``reprobe``, ``requeue``, ``regenerate-variants``, ``verify-storage``,
``backfill-metadata``."""

from __future__ import annotations

import click

from rindle.cli._context import CliContext, handle_errors, pass_cli
from rindle.cli._limits import MAX_CONCURRENCY
from rindle.cli._ops_options import (
    EXAMPLE_ID,
    counters_text,
    finish,
    json_option,
    profile_option,
)


@click.command("reprobe", epilog=f"Example: rindle reprobe {EXAMPLE_ID} --json")
@click.argument("asset_id")
@json_option
@pass_cli
@handle_errors
def reprobe_command(ctx: CliContext, asset_id: str) -> None:
    """Re-run the probe for ASSET_ID; rewrites probe-owned fields only."""
    report = ctx.app().reprobe(asset_id)
    changed = ", ".join(f"{k}={v}" for k, v in report.changed.items()) or "nothing changed"
    finish(ctx, report, f"reprobe {report.asset_id}: {changed}")


@click.command("requeue", epilog=f"Example: rindle requeue {EXAMPLE_ID} --variant thumb")
@click.argument("asset_id")
@click.option("--variant", "variants", multiple=True,
              help="Only this variant (repeatable); one the asset lacks is a usage error.")
@json_option
@pass_cli
@handle_errors
def requeue_command(ctx: CliContext, asset_id: str, variants: tuple[str, ...]) -> None:
    """Re-run ASSET_ID's given-up promotion and requeue its failed or cancelled variants
    (enqueue-only)."""
    report = ctx.app().requeue_variants(asset_id, list(variants) or None)
    skipped = ", ".join(f"{n} ({s})" for n, s in sorted(report.skipped.items())) or "none"
    promotion = f"\n  promotion {report.promotion}" if report.promotion else ""
    finish(ctx, report, f"requeue {report.asset_id}{promotion}\n  requeued  "
           f"{', '.join(report.requeued) or 'none'}\n  skipped   {skipped}")


@click.command("regenerate-variants",
               epilog="Example: rindle regenerate-variants --profile avatar --variant thumb")
@profile_option()
@click.option("--variant", default=None,
              help="Only this variant name; one no profile in scope declares is a usage error.")
@json_option
@pass_cli
@handle_errors
def regenerate_command(ctx: CliContext, profile: str | None, variant: str | None) -> None:
    """Mark variants rendered from an old recipe stale, then enqueue stale and missing ones."""
    report = ctx.app().ops.regenerate_variants(profile=profile, variant=variant)
    finish(ctx, report, counters_text("regenerate-variants", report,
                                      ["marked_stale", "enqueued", "skipped", "errors"]))


@click.command("verify-storage", epilog="Example: rindle verify-storage --profile avatar --json")
@profile_option()
@click.option("--variant", default=None,
              help="Only this variant name; one no profile in scope declares is a usage error.")
@click.option("--concurrency", type=click.IntRange(1, MAX_CONCURRENCY), default=8,
              show_default=True, help="Storage checks in flight at once.")
@json_option
@pass_cli
@handle_errors
def verify_storage_command(ctx: CliContext, profile: str | None, variant: str | None,
                           concurrency: int) -> None:
    """Check ready variants against storage; vanished ones become missing."""
    report = ctx.app().ops.verify_storage(profile=profile, variant=variant,
                                          concurrency=concurrency)
    finish(ctx, report, counters_text(
        "verify-storage", report, ["checked", "present", "missing", "fsm_blocked", "errors",
                                   "originals_checked", "originals_missing"]))


@click.command("backfill-metadata", epilog="Example: rindle backfill-metadata --profile avatar")
@profile_option()
@json_option
@pass_cli
@handle_errors
def backfill_command(ctx: CliContext, profile: str | None) -> None:
    """Re-run probe and analyzers for available, ready and degraded assets."""
    report = ctx.app().ops.backfill_metadata(profile=profile)
    finish(ctx, report, counters_text("backfill-metadata", report,
                                      ["assets_found", "updated", "unchanged", "errors"]))
