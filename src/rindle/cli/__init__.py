"""The ``rindle`` command line: ``rindle [--config PATH] [--json] COMMAND``.

Commands are thin wrappers over library services; library errors become one-line
messages here and nowhere else. Plugins add commands through ``register_commands``.
"""

from __future__ import annotations

from pathlib import Path

import click

from rindle.cli import assets, diagnostics, maintenance, repair, streaming
from rindle.cli._context import CliContext
from rindle.cli._limits import check_config_file
from rindle.cli.serve import serve_command
from rindle.cli.setup import init_command, migrate_command, plugins_command
from rindle.cli.worker import worker_command

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", type=click.Path(path_type=Path), default=None,
              envvar="RINDLE_CONFIG", callback=check_config_file,
              help="Settings file (rindle.toml, or a pyproject.toml with [tool.rindle]).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.version_option(package_name="rindle", prog_name="rindle")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, as_json: bool) -> None:
    """rindle: the media lifecycle after an upload.

    \b
    Start here:
      rindle init            write rindle.toml and a sample profile module
      rindle migrate         create or upgrade the database tables
      rindle worker          run background jobs
    """
    state = ctx.ensure_object(CliContext)
    state.config = config
    state.json = as_json
    ctx.call_on_close(state.close)


for _command in (
    init_command, migrate_command, plugins_command, worker_command, serve_command,
    assets.upload_command, assets.url_command, assets.show_command, assets.attach_command,
    assets.detach_command,
    diagnostics.doctor_command, diagnostics.runtime_status_command,
    repair.reprobe_command, repair.requeue_command, repair.regenerate_command,
    repair.verify_storage_command, repair.backfill_command,
    maintenance.abort_uploads_command, maintenance.cleanup_command,
    maintenance.sweep_command, maintenance.erase_owners_command,
    streaming.streaming_group,
):
    cli.add_command(_command)


_plugins_loaded = False


def _load_plugin_commands() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from rindle.errors import RindleError
    from rindle.plugins import make_plugin_manager

    try:
        pm = make_plugin_manager()
    except RindleError as exc:
        click.echo(f"Warning: {exc.message}", err=True)
        return
    pm.hook.register_commands(cli=cli)


def main() -> None:
    """Console-script entry point."""
    _load_plugin_commands()
    cli(prog_name="rindle")
