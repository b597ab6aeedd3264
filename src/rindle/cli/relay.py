"""``rindle relay``: the outbox relay of an external executor (Celery, ...)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from rindle import defaults
from rindle.cli._context import CliContext, emit, handle_errors, pass_cli
from rindle.cli._ops_options import json_option

#: The longest pause ``--interval`` accepts, in seconds (a relay slower than this is a typo).
MAX_INTERVAL = 3600.0


@click.command("relay", epilog="Example: rindle relay --once --json")
@click.option("--once", is_flag=True, help="Run one tick (cron, then sweep) and exit.")
@click.option("--interval", type=click.FloatRange(0.1, MAX_INTERVAL), metavar="SECONDS",
              default=defaults.JOBS_RELAY_INTERVAL, show_default=True,
              help="Seconds between two ticks.")
@click.option("--no-cron", is_flag=True, help="Do not schedule the [cron] jobs.")
@json_option
@pass_cli
@handle_errors
def relay_command(ctx: CliContext, once: bool, interval: float, no_cron: bool) -> None:
    """Publish due jobs to the external executor ([jobs] executor, e.g. celery).

    Each tick enqueues the [cron] jobs that are due, then publishes every job that is due
    and not leased (lost messages, retries, jobs whose worker died). Needed only with an
    external executor; `rindle worker` polls the job table itself. Stops on SIGINT/SIGTERM.

    \b
    rindle relay                  tick every 5 seconds until stopped
    rindle relay --once --json    one tick; {"scheduled": n, "published": n, "failed": n}
    """
    app = ctx.app()
    app.db.ensure_schema_current()
    relay = app.relay(cron=not no_cron)
    if once:
        report = relay.tick()
        emit(ctx, report.to_dict(), f"scheduled {report.scheduled} cron job(s), published "
                                    f"{report.published} job(s), {report.failed} failed")
        return
    stop = threading.Event()

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    click.echo(f"rindle relay: executor {app.settings.jobs.executor}, every {interval:g} s",
               err=True)
    try:
        published = relay.run(interval, stop)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    emit(ctx, {"published": published}, f"stopped after publishing {published} job(s)")
