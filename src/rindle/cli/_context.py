"""What every ``rindle`` command shares: the config path, ``--json``, the app, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from rindle.errors import RindleError, UsageError

__all__ = ["CliContext", "emit", "handle_errors", "pass_cli"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliContext:
    """Per-invocation state: options of the root group and the lazily built app."""

    config: Path | None = None
    json: bool = False
    _app: Any = field(default=None, repr=False)

    def app(self) -> Any:
        """The :class:`rindle.Rindle` for this invocation, built on first use."""
        if self._app is None:
            from rindle.app import Rindle

            self._app = Rindle.from_config(self.config)
        return self._app

    def close(self) -> None:
        """Release the app's resources."""
        if self._app is not None:
            self._app.close()


pass_cli = click.make_pass_decorator(CliContext, ensure=True)


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


def handle_errors(func: F) -> F:
    """Turn :class:`RindleError` into a one-line message on stderr and exit status 1
    (2 for a :class:`UsageError`)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RindleError as exc:
            ctx = click.get_current_context().find_object(CliContext)
            if ctx is not None and ctx.json:
                click.echo(json.dumps({"error": {"code": exc.code, "message": exc.message}}))
            click.echo(f"Error: {exc.message} [{exc.code}]", err=True)
            sys.exit(2 if isinstance(exc, UsageError) else 1)

    return cast(F, wrapper)
