"""What every command shares: a per-verb ``--json``, ``--live``, ``--profile``, reports out,
exit codes.

Exit codes: 0 success, 1 infrastructure errors during the pass (storage, network, auth),
2 usage errors (click's own, and :class:`rindle.errors.UsageError`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

import click

from rindle.cli._context import CliContext, emit

__all__ = ["EXAMPLE_ID", "ProfileName", "check_profile", "counters_text", "finish", "json_option",
           "live_option", "profile_option"]

F = TypeVar("F", bound=Callable[..., Any])

#: The asset id the help examples show.
EXAMPLE_ID = "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.ensure_object(CliContext).json = True
    return value


def json_option(func: F) -> F:
    """Accept ``--json`` after the command too (``rindle doctor --json``)."""
    return click.option("--json", "json_flag", is_flag=True, expose_value=False,
                        callback=_set_json, is_eager=True,
                        help="Print one JSON object on stdout.")(func)


def live_option(*aliases: str, help: str = "Really do it (default: a dry run that changes "
                "nothing).") -> Callable[[F], F]:
    """``--live``: the one spelling of "really do it"; the command receives ``live: bool``.

    ``aliases`` are older spellings of ``--live`` (``--no-dry-run``, ``--execute``) that keep
    working but are hidden from help; ``--dry-run`` (also hidden) asks for the default
    explicitly. ``--live`` (or an alias) together with ``--dry-run`` is a usage error.
    """
    alias_names = [f"live_alias_{i}" for i in range(len(aliases))]

    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            spellings = [kwargs.pop("live"), *(kwargs.pop(n) for n in alias_names)]
            live = any(spellings)
            if kwargs.pop("live_dry_run") and live:
                raise click.UsageError("--live and --dry-run contradict each other; "
                                       "pass one of them")
            return func(*args, live=live, **kwargs)

        decorated: Callable[..., Any] = wrapper
        for alias, name in zip(aliases, alias_names, strict=True):
            decorated = click.option(alias, name, is_flag=True, hidden=True)(decorated)
        decorated = click.option("--dry-run", "live_dry_run", is_flag=True, hidden=True)(
            decorated)
        decorated = click.option("--live", "live", is_flag=True, help=help)(decorated)
        # The command click builds calls ``wrapper`` with func's own parameters plus the
        # flags consumed above, so callers keep func's type; ``functools.wraps`` is typed
        # as returning ``_Wrapped`` rather than the TypeVar, so the typing needs a cast.
        return cast(F, decorated)

    return decorate


def _configured_profiles(ctx: click.Context | None) -> list[str]:
    """The profile names the settings configure, or [] when they cannot be loaded now."""
    state = ctx.find_object(CliContext) if ctx is not None else None
    if state is None:
        return []
    try:
        return sorted(state.app().profiles)
    except Exception:  # help must render whatever state the settings are in
        return []


class ProfileName(click.ParamType[str]):
    """A profile name; help shows the configured names (``[avatar|photo]``) when the settings
    load. The name is checked against the app where the command runs (exit 2 with the
    list, code ``unknown_profile``), so a broken settings file is reported as such."""

    name = "profile"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        """``[a|b|c]`` listing the configured profiles, ``PROFILE`` when none can be read."""
        names = _configured_profiles(ctx)
        return f"[{'|'.join(names)}]" if names else "PROFILE"


def profile_option(*, required: bool = False, help: str = "Only this profile."
                   ) -> Callable[[F], F]:
    """``--profile NAME`` typed :class:`ProfileName` (its help lists the configured names).

    No explicit ``default=None``: click 8.2 and later take an explicit default as a value
    given, so a ``required`` option left out passed ``None`` instead of failing."""
    return click.option("--profile", type=ProfileName(), required=required, help=help)


def check_profile(app: Any, profile: str | None) -> None:
    """Raise :class:`~rindle.errors.UsageError` (code ``unknown_profile``, exit 2) naming the
    configured profiles when ``profile`` is given and is not one of them."""
    if profile is not None and profile not in app.profiles:
        from rindle.errors import UnknownProfile, UsageError

        raise UsageError(UnknownProfile(profile, app.profiles).message, code="unknown_profile")


def counters_text(title: str, report: Any, fields: list[str]) -> str:
    """A short labelled block: the title, then one ``name  value`` line per counter."""
    width = max(len(f) for f in fields)
    lines = [title] + [f"  {f:<{width}}  {getattr(report, f)}" for f in fields]
    return "\n".join(lines)


def finish(ctx: CliContext, report: Any, text: str | Callable[[], str]) -> None:
    """Print the report (text or JSON) and exit with its exit code."""
    emit(ctx, report.to_dict(), text)
    code = getattr(report, "exit_code", 0)
    if code:
        sys.exit(code)
