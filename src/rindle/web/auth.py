"""The host's authorization, as the upload API and the tus server call it.

The host passes ``authorize(request, profile) -> actor | None`` when it mounts a surface:
``request`` is the WSGI environ or the ASGI scope, ``profile`` the :class:`rindle.Profile`
class the request is about. It returns who is asking (any value; its ``str()`` is stored
on the session, at most 255 characters) or ``None`` to refuse. Every session a surface
opens is bound to that actor; another actor (or a refused request) is told the session
does not exist (404, never 403), so session ids leak nothing.

Mounting without ``authorize`` raises :class:`rindle.errors.ConfigError` unless
``development_only=True`` is passed: then every request is the one actor
:data:`DEVELOPMENT_ACTOR`, fit only for a laptop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rindle.errors import ConfigError
from rindle.web.http import Refusal

if TYPE_CHECKING:
    from rindle.domain.profile import Profile

__all__ = ["DEVELOPMENT_ACTOR", "MAX_ACTOR_LENGTH", "Authorize", "actor_of", "admit",
           "require_authorize"]

#: ``authorize(request, profile) -> actor | None``.
Authorize = Callable[[Any, "type[Profile]"], object | None]

#: The actor of every request when a surface is mounted with ``development_only=True``.
DEVELOPMENT_ACTOR = "development"
#: The longest actor id (the column's width).
MAX_ACTOR_LENGTH = 255


def _development(request: Any, profile: type[Profile]) -> object:
    return DEVELOPMENT_ACTOR


def require_authorize(authorize: Authorize | None, development_only: bool, surface: str
                      ) -> Authorize:
    """``authorize``, or for ``development_only`` a stand-in admitting everyone as
    :data:`DEVELOPMENT_ACTOR`; :class:`ConfigError` when neither is given."""
    if authorize is not None:
        if not callable(authorize):
            raise ConfigError(f"{surface}: authorize must be a callable "
                              "authorize(request, profile) -> actor | None")
        return authorize
    if development_only:
        return _development
    raise ConfigError(
        f"{surface} needs authorize=: a callable authorize(request, profile) returning the "
        "actor (user id) or None to refuse. Pass development_only=True to admit everyone as "
        "one actor on a development machine")


def actor_of(authorize: Authorize, request: Any, profile: type[Profile]) -> str | None:
    """The actor id ``authorize`` gives for ``request`` (``str()`` of its answer), or
    ``None`` when it refuses; an id longer than :data:`MAX_ACTOR_LENGTH` or empty is a
    :class:`ConfigError` (the host's callable is wrong)."""
    actor = authorize(request, profile)
    if actor is None:
        return None
    text = str(actor)
    if not text or len(text) > MAX_ACTOR_LENGTH:
        raise ConfigError(f"authorize returned an actor id of {len(text)} characters; return "
                          f"1 to {MAX_ACTOR_LENGTH} characters (a user id)")
    return text


def admit(authorize: Authorize, request: Any, profiles: Mapping[str, type[Profile]],
          name: str | None, *, unknown_status: int) -> tuple[type[Profile], str]:
    """The profile ``name`` and the actor opening an upload to it: a :class:`Refusal`
    ``unknown_profile`` (``unknown_status``; the configured names are never listed) when
    there is no such profile, ``forbidden`` (403) when ``authorize`` refuses."""
    profile = profiles.get(name) if name else None
    if profile is None:
        raise Refusal(unknown_status, "unknown_profile", "no such profile")
    actor = actor_of(authorize, request, profile)
    if actor is None:
        raise Refusal(403, "forbidden", "you may not upload to this profile")
    return profile, actor
