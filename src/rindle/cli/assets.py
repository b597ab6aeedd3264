"""Asset commands: ``upload``, ``url``, ``show``, ``attach``, ``detach``, ``reorder``."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import click

from rindle.cli._context import CliContext, emit, handle_errors, pass_cli
from rindle.cli._limits import duration, require_regular_file
from rindle.cli._ops_options import EXAMPLE_ID, check_profile, json_option, profile_option
from rindle.errors import NotFound

#: The largest position the attachments table stores (a 32-bit signed INTEGER column).
MAX_POSITION = 2**31 - 1

#: The most attachments ``rindle show`` lists (``attachments_total`` counts them all).
SHOW_ATTACHMENTS = 100


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


@click.command("upload", epilog="Example: rindle upload photo.jpg --profile avatar --json")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                callback=require_regular_file)
@profile_option(required=True, help="The profile to upload under (one of those configured).")
@click.option("--filename", default=None, help="Original filename (default: the file's name).")
@json_option
@pass_cli
@handle_errors
def upload_command(ctx: CliContext, file: Path, profile: str, filename: str | None) -> None:
    """Upload FILE through the app (proxied upload) and queue its promotion.

    An unknown profile is a usage error (exit 2) listing the configured ones.
    """
    app = ctx.app()
    check_profile(app, profile)
    asset = app.upload(profile, file, filename=filename or file.name)
    data = asset_dict(asset)
    emit(ctx, data, lambda: asset_text(data) + "\nNext: rindle worker --drain")


@click.command("url", epilog=f"Example: rindle url {EXAMPLE_ID} --variant thumb "
                             "--expires-in 15m")
@click.argument("asset_id")
@click.option("--variant", default=None,
              help="Variant name (falls back to the original while it is not ready); one the "
                   "asset's profile does not declare is a usage error.")
@click.option("--expires-in", type=duration(1), default=None,
              help="Lifetime of a signed URL: seconds, or 15m, 2h, 7d, at most 100 years "
                   "(default: the profile's TTL).")
@click.option("--download", is_flag=True, help="Ask browsers to download, not display.")
@json_option
@pass_cli
@handle_errors
def url_command(ctx: CliContext, asset_id: str, variant: str | None, expires_in: int | None,
                download: bool) -> None:
    """Print a delivery URL for ASSET_ID (signed unless the profile is public)."""
    app = ctx.app()
    if variant is not None:
        _check_variant(app, asset_id, variant)
    url = app.url(asset_id, variant, expires_in=expires_in,
                  disposition="attachment" if download else None)
    emit(ctx, {"asset_id": asset_id, "variant": variant, "url": url}, url)


def _check_variant(app: Any, asset_id: str, variant: str) -> None:
    """Raise :class:`~rindle.errors.UsageError` (code ``unknown_variant``, exit 2) naming the
    declared variants when the asset's profile does not declare ``variant``; a missing
    asset or an unconfigured profile raise what :meth:`rindle.Rindle.url` would."""
    from rindle.errors import UsageError

    prof = app.profile(app.get_asset(asset_id).profile)
    names = [name for name, _ in prof.variant_specs()]
    if variant not in names:
        raise UsageError(f"unknown variant {variant!r} for profile {prof.name!r}; its "
                         f"variants: {', '.join(names) or 'none'}", code="unknown_variant")


def provider_asset_dict(row: Any) -> dict[str, Any]:
    """JSON-ready view of a streaming provider row; the provider's asset id is redacted as
    telemetry redacts it (``...`` and its last four characters)."""
    from rindle.telemetry import redact_id

    return {"id": str(row.id), "asset_id": str(row.asset_id), "profile": row.profile,
            "provider": row.provider_name, "state": row.state,
            "provider_asset_id": redact_id(row.provider_asset_id),
            "updated_at": row.updated_at.isoformat() if row.updated_at else None}


def _links(app: Any, asset_id: Any) -> dict[str, Any]:
    """The asset's attachments (at most :data:`SHOW_ATTACHMENTS`, and their total) and its
    streaming provider rows."""
    from sqlalchemy import func, select

    from rindle.domain.models import Attachment, ProviderAsset

    with app.db.sessionmaker() as s:
        attachments = s.scalars(
            select(Attachment).where(Attachment.asset_id == asset_id)
            .order_by(Attachment.owner_type, Attachment.owner_id, Attachment.slot,
                      Attachment.position)
            .limit(SHOW_ATTACHMENTS)).all()
        total = len(attachments)
        if total == SHOW_ATTACHMENTS:
            total = s.scalar(select(func.count()).select_from(Attachment)
                             .where(Attachment.asset_id == asset_id)) or 0
        rows = s.scalars(select(ProviderAsset).where(ProviderAsset.asset_id == asset_id)
                         .order_by(ProviderAsset.id)).all()
        return {
            "attachments": [attachment_dict(a) for a in attachments],
            "attachments_total": total,
            "provider_assets": [provider_asset_dict(r) for r in rows],
        }


def attachment_dict(row: Any) -> dict[str, Any]:
    """JSON-ready view of an attachment: owner, slot, and for a collection slot the
    asset's ``position`` (0 first); a single slot's position is always 0."""
    return {"owner_type": row.owner_type, "owner_id": row.owner_id, "slot": row.slot,
            "collection": row.collection, "position": row.position}


def attachment_text(a: dict[str, Any]) -> str:
    """``user:42/avatar``, or ``user:42/photos[2]`` for position 2 of a collection."""
    where = f"[{a['position']}]" if a["collection"] else ""
    return f"{a['owner_type']}:{a['owner_id']}/{a['slot']}{where}"


def show_text(data: dict[str, Any]) -> str:
    """:func:`asset_text` plus one line per attachment (a collection slot shows the
    asset's position, ``user:42/photos[2]``) and per provider row."""
    lines = [asset_text(data)]
    lines += [f"attached {attachment_text(a)}" for a in data["attachments"]]
    more = data["attachments_total"] - len(data["attachments"])
    if more:
        lines.append(f"attached ... and {more} more")
    if not data["attachments_total"]:
        lines.append("attached nowhere")
    lines += [f"stream   {p['provider']}: {p['state']} (row {p['id']}, provider id "
              f"{p['provider_asset_id'] or '-'})" for p in data["provider_assets"]]
    return "\n".join(lines)


@click.command("show", epilog=f"Example: rindle show {EXAMPLE_ID} --json")
@click.argument("asset_id")
@json_option
@pass_cli
@handle_errors
def show_command(ctx: CliContext, asset_id: str) -> None:
    """Show an asset, its variants, where it is attached and its streaming provider rows."""
    app = ctx.app()
    asset = app.get_asset(asset_id)
    data = {**asset_dict(asset), **_links(app, asset.id)}
    emit(ctx, data, lambda: show_text(data))


def _owner(value: str) -> tuple[str, str]:
    kind, sep, ident = value.partition(":")
    if not sep or not kind or not ident:
        raise click.BadParameter("write the owner as TYPE:ID, e.g. user:42")
    return kind, ident


@click.command("attach", epilog=f"Example: rindle attach {EXAMPLE_ID} user:42 photos "
                                "--collection --position 0")
@click.argument("asset_id")
@click.argument("owner")
@click.argument("slot")
@click.option("--collection/--single", default=None,
              help="Whether SLOT holds a list (default: what the slot already holds, else "
                   "the profile's collection setting).")
@click.option("--position", type=click.IntRange(0, MAX_POSITION), default=None,
              help="Where in a collection to insert (0 first; default: at the end).")
@json_option
@pass_cli
@handle_errors
def attach_command(ctx: CliContext, asset_id: str, owner: str, slot: str,
                   collection: bool | None, position: int | None) -> None:
    """Attach ASSET_ID to OWNER (TYPE:ID) in SLOT: a single slot is replaced, a collection
    gets the asset inserted."""
    row = ctx.app().attach(asset_id, _owner(owner), slot, position=position,
                           collection=collection)
    data = {"asset_id": str(row.asset_id), **attachment_dict(row)}
    emit(ctx, data, f"attached {row.asset_id} to {attachment_text(data)}")


@click.command("detach", epilog="Example: rindle detach user:42 avatar --json")
@click.argument("owner")
@click.argument("slot")
@click.option("--asset", "asset_id", default=None, metavar="ASSET_ID",
              help="The asset to take out (required for a collection slot).")
@json_option
@pass_cli
@handle_errors
def detach_command(ctx: CliContext, owner: str, slot: str, asset_id: str | None) -> None:
    """Take an asset out of OWNER's (TYPE:ID) SLOT; an asset attached nowhere else is
    purged (no dry run: it names one attachment, like app.detach; run `rindle show
    ASSET_ID` first to see where else the asset is held)."""
    removed = ctx.app().detach(_owner(owner), slot, asset_id)
    emit(ctx, {"detached": removed}, "detached" if removed else "nothing was attached there")


def _asset_id(value: str) -> uuid.UUID:
    """``value`` as an asset id; else :class:`NotFound` quoting at most 40 characters of
    it, escaped (an argument is echoed to a terminal: no control character reaches it)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("asset", repr(value[:40]) + ("..." if len(value) > 40 else "")
                       ) from None


@click.command("reorder", epilog=f"Example: rindle reorder user:42 photos {EXAMPLE_ID} "
                                 "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5c --json")
@click.argument("owner")
@click.argument("slot")
@click.argument("asset_ids", nargs=-1, metavar="ASSET_ID...")
@json_option
@pass_cli
@handle_errors
def reorder_command(ctx: CliContext, owner: str, slot: str, asset_ids: tuple[str, ...]) -> None:
    """Put OWNER's (TYPE:ID) collection SLOT in the order of the ASSET_IDs: each asset the
    slot holds exactly once (else not_a_permutation, exit 2, and nothing changes)."""
    who = _owner(owner)
    rows = ctx.app().reorder(who, slot, [_asset_id(a) for a in asset_ids])
    ids = [str(r.asset_id) for r in rows]
    data = {"owner_type": who[0], "owner_id": who[1], "slot": slot, "assets": ids}
    emit(ctx, data, "\n".join(f"{who[0]}:{who[1]}/{slot}[{i}] {a}" for i, a in enumerate(ids))
         or f"{who[0]}:{who[1]}/{slot} holds nothing")
