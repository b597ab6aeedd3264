"""``rindle worker``: run background jobs."""

from __future__ import annotations

import click

from rindle.cli._context import CliContext, emit, handle_errors, pass_cli
from rindle.cli._limits import MAX_CONCURRENCY
from rindle.cli._ops_options import json_option

_QUEUE_HELP = ("A queue to run and its concurrency (repeatable; NAME alone: its default, {}). "
               "Default: every queue.")


class _QueueOption(click.Option):
    """``--queue``, whose help lists each queue's default concurrency. The defaults live in
    :mod:`rindle.jobs.worker`, which imports the database layer, so they are read only when
    the help is shown: ``rindle --help`` and the other verbs never import it."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        """The help line, with the defaults filled in."""
        from rindle.jobs.worker import DEFAULT_CONCURRENCY

        self.help = _QUEUE_HELP.format(
            ", ".join(f"{q}={n}" for q, n in DEFAULT_CONCURRENCY.items()))
        return super().get_help_record(ctx)


def _parse_queue(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
                 ) -> dict[str, int] | None:
    """``--queue NAME[=N]`` values as ``{name: concurrency}`` (None when none were given);
    a NAME without ``=N`` gets the queue's default concurrency
    (:data:`~rindle.jobs.worker.DEFAULT_CONCURRENCY`, 1 for a queue not named there).

    A missing name, or a concurrency that is not a whole number from 1 to
    :data:`~rindle.cli._limits.MAX_CONCURRENCY`, is a :class:`click.BadParameter`.
    """
    if not values:
        return None
    from rindle.jobs.worker import DEFAULT_CONCURRENCY

    out: dict[str, int] = {}
    for value in values:
        name, sep, count = value.partition("=")
        if not name:
            raise click.BadParameter(f"{value!r}: write NAME or NAME=CONCURRENCY")
        if sep:
            digits = count.isascii() and count.isdigit() and len(count) <= 6
            if not digits or not 1 <= int(count) <= MAX_CONCURRENCY:
                raise click.BadParameter(f"{value!r}: concurrency must be a whole number "
                                         f"from 1 to {MAX_CONCURRENCY}")
        out[name] = int(count) if sep else DEFAULT_CONCURRENCY.get(name, 1)
    return out


@click.command("worker", epilog="Example: rindle worker --drain --json")
@click.option("--queue", "queues", cls=_QueueOption, multiple=True, callback=_parse_queue,
              metavar="NAME=N", help=_QUEUE_HELP.format("..."))
@click.option("--drain", is_flag=True, help="Run every due job, then exit.")
@click.option("--no-cron", is_flag=True, help="Do not schedule the [cron] jobs.")
@json_option
@pass_cli
@handle_errors
def worker_command(ctx: CliContext, queues: dict[str, int] | None, drain: bool,
                   no_cron: bool) -> None:
    """Run background jobs: promotion, variants, purges, maintenance.

    Stops on SIGINT/SIGTERM once running jobs finish; a second signal exits at once.
    Progress goes to stderr; the result (jobs run) to stdout, one JSON object with --json.

    \b
    rindle worker                         every queue, default concurrency, cron on
    rindle worker --queue process=4       only the process queue, 4 jobs at once
    rindle worker --queue provider        only the provider queue, 16 jobs at once
    rindle worker --drain                 run what is due, then exit
    """
    app = ctx.app()
    unknown = sorted(set(queues or ()) - set(app.jobs.queue_names()))
    if unknown:
        raise click.BadParameter(
            f"unknown queue(s) {', '.join(unknown)}; jobs run on: "
            f"{', '.join(app.jobs.queue_names())}", param_hint="'--queue'")
    app.db.ensure_schema_current()
    if drain:
        ran = app.jobs.drain(list(queues) if queues else None)
        emit(ctx, {"ran": ran}, f"ran {ran} job(s)")
        return
    worker = app.worker(queues, cron=not no_cron)
    click.echo(f"rindle worker {worker.worker_id}: queues "
               + ", ".join(f"{q}={n}" for q, n in worker.queues.items())
               + (f"; cron: {', '.join(e.name for e in worker.cron_entries)}"
                  if worker.cron_entries else ""), err=True)
    worker.run()
    if ctx.json:
        emit(ctx, {"worker_id": worker.worker_id, "executed": worker.executed}, "")
    else:
        click.echo(f"stopped after {worker.executed} job(s)", err=True)
