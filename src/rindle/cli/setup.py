"""Setup commands: ``init``, ``migrate``, ``plugins``."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from rindle.cli._context import CliContext, emit, handle_errors, pass_cli
from rindle.cli._ops_options import json_option
from rindle.errors import UsageError

SAMPLE_CONFIG = """\
# rindle settings. Every key can also come from [tool.rindle] in pyproject.toml;
# RINDLE_DATABASE_URL, RINDLE_SECRET_KEY and RINDLE_CONFIG override this file.
# Top-level settings go here, above the first [table] header: TOML reads every line below
# a header as part of that table.
database_url = "sqlite:///rindle.db"
secret_key = "{secret}"
profiles = ["{module}:Photo"]
tmp_dir = "rindle-tmp"

[storages.default]
backend = "local"
root = "rindle-media"
base_url = "http://127.0.0.1:8765"   # where `rindle serve` is reachable

[cron]
# abort_incomplete_uploads = "0 1 * * *"
# cleanup_orphans = {{ schedule = "0 2 * * *", dry_run = false }}
"""

SAMPLE_PROFILES = '''\
"""Media profiles for this app; listed in rindle.toml under `profiles`."""

from rindle import Delivery, Profile, variants


class Photo(Profile):
    name = "photo"
    storage = "default"
    allow_mime = ("image/jpeg", "image/png", "image/webp")
    max_bytes = 20 * 1024 * 1024
    max_pixels = 50_000_000
    variants = {
        "thumb": variants.Image(mode="fill", width=256, height=256, format="webp"),
        "large": variants.Image(mode="fit", width=1600, format="jpeg", quality=85),
    }
    delivery = Delivery(public=False, signed_url_ttl=900)
'''


@click.command("init", epilog="Example: rindle init --dir myapp --module myapp_profiles --json")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Folder to write into.")
@click.option("--module", default="rindle_profiles", show_default=True,
              help="Name of the sample profile module to write.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@json_option
@pass_cli
@handle_errors
def init_command(ctx: CliContext, directory: Path, module: str, force: bool) -> None:
    """Write rindle.toml (SQLite + local storage) and a sample profile module."""
    if not module.isidentifier():
        raise click.BadParameter(f"{module!r} is not a Python module name", param_hint="--module")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "rindle.toml"
    profiles = directory / f"{module}.py"
    for path in (config, profiles):
        if path.exists() and not force:
            raise UsageError(f"{path} already exists; pass --force to overwrite it, or "
                             "--dir to write somewhere else", code="config_exists")
    config.write_text(SAMPLE_CONFIG.format(secret=secrets.token_urlsafe(32), module=module),
                      encoding="utf-8")
    profiles.write_text(SAMPLE_PROFILES, encoding="utf-8")
    here = directory.resolve() == Path.cwd().resolve()
    step = "rindle migrate" if here else f"rindle --config {config} migrate"
    emit(ctx, {"config": str(config), "profiles": str(profiles), "next": step},
         f"Wrote {config} and {profiles}.\nNext: {step}"
         + ("" if here else f" (or cd {directory} first: the other commands look for "
            "rindle.toml in the working directory)"))


@click.command("migrate", epilog="Example: rindle --config rindle.toml migrate --json")
@json_option
@pass_cli
@handle_errors
def migrate_command(ctx: CliContext) -> None:
    """Create or upgrade rindle's tables to the newest shipped migration."""
    app = ctx.app()
    before = app.db.current_revision()
    app.migrate()
    after = app.db.current_revision()
    emit(ctx, {"database": app.db.redacted_url, "from": before, "to": after},
         f"Database {app.db.redacted_url}: {before or 'empty'} -> {after}")


@click.command("plugins", epilog="Example: rindle plugins --json")
@json_option
@pass_cli
@handle_errors
def plugins_command(ctx: CliContext) -> None:
    """List installed plugins, their versions and the hooks they implement."""
    from rindle.plugins import list_plugins, make_plugin_manager

    pm = make_plugin_manager()
    infos = list_plugins(pm)

    def text() -> str:
        lines = []
        for info in infos:
            tag = " (built-in)" if info.default else ""
            lines.append(f"{info.name} {info.version or '?'}{tag}")
            lines.append(f"  hooks: {', '.join(info.hooks) or '-'}")
        return "\n".join(lines)

    emit(ctx, {"plugins": [i.to_dict() for i in infos]}, text)
