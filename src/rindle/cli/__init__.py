"""The ``rindle`` command line: ``rindle [--config PATH] [--json] COMMAND``.

Commands are thin wrappers over library services; library errors become one-line
messages here and nowhere else.

Plugin modules are never imported at startup, so ``rindle --help`` and the built-in
commands do not pay for boto3 or google-cloud-storage (commands that build a
:class:`rindle.Rindle` load every plugin then). Plugins add commands in two ways:

* declared in the ``rindle.commands`` entry-point group (``name = "pkg.cli:command"``):
  listed by ``rindle --help``, which imports only that module, never the plugin itself;
* added through the ``register_commands`` hook: resolved when their name is typed (every
  plugin is loaded then), but not listed by ``rindle --help``.

A host running the commands with an app of its own passes a :class:`CliContext` subclass
as the click object (see its docstring).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from rindle.cli import assets, diagnostics, maintenance, repair, streaming
from rindle.cli._context import CliContext
from rindle.cli._limits import check_config_file
from rindle.cli.relay import relay_command
from rindle.cli.serve import serve_command
from rindle.cli.setup import init_command, migrate_command, plugins_command
from rindle.cli.worker import worker_command

__all__ = ["CliContext", "cli", "main"]


class _RootGroup(click.Group):
    """The root group: built-in commands first, then plugin commands, found lazily."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from rindle.plugins import command_entry_points

        return sorted(set(super().list_commands(ctx)) | set(command_entry_points()))

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; with ``--json`` (before or after the command name) a usage error
        click raises itself (a missing argument, an unknown option, a bad value) is also
        printed as ``{"error": {"code": "usage_error", "message": ...}}`` on stdout, like
        every other error, before click reports it on stderr and exits with status 2 (any
        other click exception: code ``cli_error``, click's status, 1)."""
        # click 8.2 renamed protected_args (now a deprecated property) to _protected_args
        protected = getattr(ctx, "_protected_args", None)
        raw = [*(ctx.protected_args if protected is None else protected), *ctx.args]
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            state = ctx.find_object(CliContext)
            typed = raw[:raw.index("--")] if "--" in raw else raw
            if (ctx.params.get("as_json") or (state is not None and state.json)
                    or "--json" in typed):
                code = "usage_error" if isinstance(exc, click.UsageError) else "cli_error"
                click.echo(json.dumps({"error": {"code": code, "message": exc.format_message()}}))
            raise

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        from rindle.plugins import command_entry_points

        declared = command_entry_points().get(cmd_name)
        if declared is not None:
            try:
                loaded = declared.load()
            except Exception as exc:
                click.echo(f"Warning: plugin command {cmd_name!r} ({declared.value}) failed to "
                           f"import: {exc}", err=True)
                return None
            if not isinstance(loaded, click.Command):
                click.echo(f"Warning: plugin command {cmd_name!r} ({declared.value}) is not a "
                           f"click command", err=True)
                return None
            self.add_command(loaded, cmd_name)
            return loaded
        if _load_plugin_commands():
            return super().get_command(ctx, cmd_name)
        return None


@click.group(cls=_RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    init_command, migrate_command, plugins_command, worker_command, relay_command,
    serve_command,
    assets.upload_command, assets.url_command, assets.show_command, assets.attach_command,
    assets.detach_command, assets.reorder_command,
    diagnostics.doctor_command, diagnostics.runtime_status_command,
    repair.reprobe_command, repair.requeue_command, repair.regenerate_command,
    repair.verify_storage_command, repair.backfill_command,
    maintenance.abort_uploads_command, maintenance.cleanup_command,
    maintenance.sweep_command, maintenance.erase_owners_command,
    streaming.streaming_group,
):
    cli.add_command(_command)


_plugins_loaded = False


def _load_plugin_commands() -> bool:
    """Load every plugin once and let it ``register_commands``; True if that happened now.

    Called only when a typed command name is neither built in nor declared.
    """
    global _plugins_loaded
    from rindle.errors import RindleError
    from rindle.plugins import make_plugin_manager, plugin_entry_points

    if _plugins_loaded or not plugin_entry_points():
        return False
    _plugins_loaded = True
    try:
        pm = make_plugin_manager()
    except RindleError as exc:
        click.echo(f"Warning: {exc.message}", err=True)
        return False
    pm.hook.register_commands(cli=cli)
    return True


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="rindle")
