"""What every ``rindle`` command shares: the config path, ``--json``, the app, output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

import click

from rindle.errors import RindleError, UsageError

__all__ = ["CliContext", "emit", "handle_errors", "pass_cli"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliContext:
    """Per-invocation state: options of the root group and the lazily built app.

    Public as ``rindle.cli.CliContext``: a host that runs the click group with an app it
    already built (rindle-django's ``manage.py rindle``) passes a subclass as ``obj=``
    to ``rindle.cli.cli.main``, overriding :meth:`app` (return that app) and
    :meth:`close` (leave it open).
    """

    config: Path | None = None
    json: bool = False
    _app: Any = field(default=None, repr=False)

    def app(self) -> Any:
        """The :class:`rindle.Rindle` for this invocation, built on first use."""
        if self._app is None:
            from rindle.app import Rindle

            self._app = Rindle.from_config(self.config)
            _note_defaults(self._app.settings)
        return self._app

    def close(self) -> None:
        """Release the app's resources."""
        if self._app is not None:
            self._app.close()


pass_cli = click.make_pass_decorator(CliContext, ensure=True)


def _note_defaults(settings: Any) -> None:
    """One line on stderr when no settings file was found and ``RINDLE_DATABASE_URL`` is
    unset: the command then runs on the built-in defaults (a SQLite file in the working
    directory, no profiles), which is rarely what someone in the wrong folder meant."""
    if settings.source is not None or os.environ.get("RINDLE_DATABASE_URL"):
        return
    click.echo(f"Note: no rindle.toml (or [tool.rindle] in pyproject.toml) in "
               f"{settings.base_dir}: using the built-in defaults (sqlite:///rindle.db "
               "here, no profiles). Run `rindle init` to write one, run from your "
               "project's folder, or pass --config / set RINDLE_CONFIG.", err=True)


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def emit(ctx: CliContext, data: Any, text: str | Callable[[], str]) -> None:
    """Print ``data`` as one JSON object with ``--json``, otherwise the text block."""
    if ctx.json:
        click.echo(json.dumps(data, default=_json_default, sort_keys=True))
    else:
        click.echo(text() if callable(text) else text)


def _scrub(message: str) -> str:
    """``message`` without the secrets of the app's database URL (when an app was built)."""
    click_ctx = click.get_current_context(silent=True)
    state = click_ctx.find_object(CliContext) if click_ctx is not None else None
    app = state._app if state is not None else None
    return app.db.scrub(message) if app is not None else message


def _unreachable() -> RindleError | None:
    """After a database error: the app's :class:`~rindle.errors.DatabaseUnavailable` (what
    to fix, the URL redacted) when its database cannot be reached at all, else None."""
    click_ctx = click.get_current_context(silent=True)
    state = click_ctx.find_object(CliContext) if click_ctx is not None else None
    app = state._app if state is not None else None
    if app is None:
        return None
    try:
        app.db.check_connection()
    except RindleError as exc:
        return exc
    except Exception:  # the probe itself failed: keep the original error
        return None
    return None


def _fail(code: str, message: str, status: int) -> NoReturn:
    """Print one error (JSON on stdout with ``--json``, always a line on stderr) and exit."""
    click_ctx = click.get_current_context(silent=True)
    state = click_ctx.find_object(CliContext) if click_ctx is not None else None
    if state is not None and state.json:
        click.echo(json.dumps({"error": {"code": code, "message": message}}))
    click.echo(f"Error: {message} [{code}]", err=True)
    sys.exit(status)


def handle_errors(func: F) -> F:
    """Turn :class:`RindleError` into a one-line message on stderr and exit status 1
    (2 for a :class:`UsageError`); a database error the library did not translate
    (SQLAlchemy or the driver) becomes ``database_unavailable`` (with what to fix) when
    the database cannot be reached at all, else ``database_error``; exit status 1.

    Messages never show the database password or secret query parameters.
    """

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return func(*args, **kwargs)
        except RindleError as exc:
            _fail(exc.code, _scrub(exc.message), 2 if isinstance(exc, UsageError) else 1)
        except SQLAlchemyError as exc:
            unreachable = _unreachable()
            if unreachable is not None:
                _fail(unreachable.code, unreachable.message, 1)
            reason = _scrub(str(getattr(exc, "orig", None) or exc)).strip().splitlines()
            _fail("database_error",
                  f"database error ({type(exc).__name__}): "
                  f"{reason[0] if reason else 'no detail'}", 1)

    return cast(F, wrapper)
