"""Asset commands: ``upload``, ``url``, ``show``, ``attach``, ``detach``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from rindle.cli._context import CliContext, emit, handle_errors, pass_cli
from rindle.cli._limits import duration, require_regular_file


def asset_dict(asset: Any) -> dict[str, Any]:
    """JSON-ready view of an asset and its variants (no secrets)."""
    return {
        "id": str(asset.id),
        "profile": asset.profile,
        "state": asset.state,
        "kind": asset.kind,
        "filename": asset.filename,
        "content_type": asset.content_type,
        "byte_size": asset.byte_size,
        "width": asset.width,
        "height": asset.height,
        "storage_key": asset.storage_key,
        "error_reason": asset.error_reason,
        "variants": {
            v.name: {"state": v.state, "storage_key": v.storage_key, "width": v.width,
                     "height": v.height, "byte_size": v.byte_size,
                     "content_type": v.content_type, "error_reason": v.error_reason}
            for v in getattr(asset, "variant_rows", [])
        },
    }


def asset_text(data: dict[str, Any]) -> str:
    """A short labelled block for one asset."""
    lines = [
        f"asset    {data['id']}",
        f"profile  {data['profile']}",
        f"state    {data['state']}",
        f"file     {data['filename']} ({data['content_type']}, {data['byte_size']} bytes)",
    ]
    if data["width"]:
        lines.append(f"size     {data['width']}x{data['height']}")
    if data["error_reason"]:
        lines.append(f"reason   {data['error_reason']}")
    for name, v in sorted(data["variants"].items()):
        dims = f" {v['width']}x{v['height']}" if v["width"] else ""
        lines.append(f"variant  {name}: {v['state']}{dims}")
    return "\n".join(lines)


@click.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                callback=require_regular_file)
@click.option("--profile", required=True, help="Profile name.")
@click.option("--filename", default=None, help="Original filename (default: the file's name).")
@pass_cli
@handle_errors
def upload_command(ctx: CliContext, file: Path, profile: str, filename: str | None) -> None:
    """Upload FILE through the app (proxied upload) and queue its promotion."""
    asset = ctx.app().upload(profile, file, filename=filename or file.name)
    data = asset_dict(asset)
    emit(ctx, data, lambda: asset_text(data) + "\nNext: rindle worker --drain")


@click.command("url")
@click.argument("asset_id")
@click.option("--variant", default=None, help="Variant name (falls back to the original).")
@click.option("--expires-in", type=duration(1), default=None,
              help="Lifetime in seconds of a signed URL, at most 100 years "
                   "(default: the profile's TTL).")
@click.option("--download", is_flag=True, help="Ask browsers to download, not display.")
@pass_cli
@handle_errors
def url_command(ctx: CliContext, asset_id: str, variant: str | None, expires_in: int | None,
                download: bool) -> None:
    """Print a delivery URL for ASSET_ID (signed unless the profile is public)."""
    url = ctx.app().url(asset_id, variant, expires_in=expires_in,
                        disposition="attachment" if download else None)
    emit(ctx, {"asset_id": asset_id, "variant": variant, "url": url}, url)


@click.command("show")
@click.argument("asset_id")
@pass_cli
@handle_errors
def show_command(ctx: CliContext, asset_id: str) -> None:
    """Show an asset, its variants and their states."""
    data = asset_dict(ctx.app().get_asset(asset_id))
    emit(ctx, data, lambda: asset_text(data))


def _owner(value: str) -> tuple[str, str]:
    kind, sep, ident = value.partition(":")
    if not sep or not kind or not ident:
        raise click.BadParameter("write the owner as TYPE:ID, e.g. user:42")
    return kind, ident


@click.command("attach")
@click.argument("asset_id")
@click.argument("owner")
@click.argument("slot")
@pass_cli
@handle_errors
def attach_command(ctx: CliContext, asset_id: str, owner: str, slot: str) -> None:
    """Attach ASSET_ID to OWNER (TYPE:ID) in SLOT, replacing what was there."""
    row = ctx.app().attach(asset_id, _owner(owner), slot)
    data = {"asset_id": str(row.asset_id), "owner_type": row.owner_type,
            "owner_id": row.owner_id, "slot": row.slot}
    emit(ctx, data, f"attached {row.asset_id} to {row.owner_type}:{row.owner_id}/{row.slot}")


@click.command("detach")
@click.argument("owner")
@click.argument("slot")
@pass_cli
@handle_errors
def detach_command(ctx: CliContext, owner: str, slot: str) -> None:
    """Empty OWNER's (TYPE:ID) SLOT; an asset attached nowhere else is purged."""
    removed = ctx.app().detach(_owner(owner), slot)
    emit(ctx, {"detached": removed}, "detached" if removed else "nothing was attached there")
