"""The host's authorization hook (rindle.web.auth): what the upload API and tus server ask."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest

from rindle.errors import ConfigError
from rindle.web.auth import (
    DEVELOPMENT_ACTOR,
    MAX_ACTOR_LENGTH,
    actor_of,
    admit,
    require_authorize,
)
from rindle.web.http import Refusal

if TYPE_CHECKING:
    from rindle.domain.profile import Profile


class _Photos:
    pass


PHOTOS = cast("type[Profile]", _Photos)
REQUEST = {"REQUEST_METHOD": "POST", "PATH_INFO": "/uploads"}


class _Recorder:
    """An ``authorize`` answering ``answer`` and remembering every call."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.calls: list[tuple[Any, Any]] = []

    def __call__(self, request: Any, profile: type[Profile]) -> object:
        self.calls.append((request, profile))
        return self.answer


def test_constants() -> None:
    assert (DEVELOPMENT_ACTOR, MAX_ACTOR_LENGTH) == ("development", 255)


def test_require_authorize_returns_the_hosts_callable_even_with_development_only() -> None:
    hook = _Recorder("u1")
    assert require_authorize(hook, False, "the upload API") is hook
    assert require_authorize(hook, True, "the upload API") is hook


def test_development_only_admits_everyone_as_one_actor() -> None:
    stand_in = require_authorize(None, True, "the tus server")
    assert stand_in(REQUEST, PHOTOS) == "development"
    assert stand_in(None, PHOTOS) == "development"
    assert actor_of(stand_in, REQUEST, PHOTOS) == "development"


def test_no_authorize_is_a_config_error_naming_the_surface() -> None:
    with pytest.raises(ConfigError) as info:
        require_authorize(None, False, "the tus server")
    assert str(info.value) == (
        "the tus server needs authorize=: a callable authorize(request, profile) returning "
        "the actor (user id) or None to refuse. Pass development_only=True to admit everyone "
        "as one actor on a development machine")


@pytest.mark.parametrize("development_only", [False, True])
def test_a_non_callable_authorize_is_a_config_error(development_only: bool) -> None:
    with pytest.raises(ConfigError) as info:
        require_authorize(cast(Any, "yes"), development_only, "the upload API")
    assert str(info.value) == ("the upload API: authorize must be a callable "
                               "authorize(request, profile) -> actor | None")


@pytest.mark.parametrize(("answer", "actor"), [
    ("u1", "u1"), (42, "42"), (0, "0"), (False, "False"), ("x" * 255, "x" * 255),
    (None, None),
])
def test_actor_of_is_the_str_of_the_answer(answer: object, actor: str | None) -> None:
    hook = _Recorder(answer)
    assert actor_of(hook, REQUEST, PHOTOS) == actor
    assert hook.calls == [(REQUEST, PHOTOS)]


@pytest.mark.parametrize(("answer", "length"), [("", 0), ("x" * 256, 256), (10**300, 301)])
def test_an_empty_or_too_long_actor_is_a_config_error(answer: object, length: int) -> None:
    with pytest.raises(ConfigError) as info:
        actor_of(_Recorder(answer), REQUEST, PHOTOS)
    assert str(info.value) == (f"authorize returned an actor id of {length} characters; "
                               "return 1 to 255 characters (a user id)")


def test_admit_returns_the_profile_and_actor() -> None:
    hook = _Recorder(7)
    assert admit(hook, REQUEST, {"photos": PHOTOS}, "photos", unknown_status=404) == (
        PHOTOS, "7")
    assert hook.calls == [(REQUEST, PHOTOS)]


@pytest.mark.parametrize("name", [None, "", "videos", "Photos", "photos "])
@pytest.mark.parametrize("status", [400, 404])
def test_admit_an_unknown_profile_never_asks_authorize(name: str | None, status: int) -> None:
    hook = _Recorder("u1")
    with pytest.raises(Refusal) as info:
        admit(hook, REQUEST, {"photos": PHOTOS}, name, unknown_status=status)
    refusal = info.value
    assert (refusal.status, refusal.code, refusal.message, refusal.headers) == (
        status, "unknown_profile", "no such profile", [])
    assert hook.calls == []


def test_admit_a_refused_request_is_forbidden() -> None:
    hook = _Recorder(None)
    with pytest.raises(Refusal) as info:
        admit(hook, REQUEST, {"photos": PHOTOS}, "photos", unknown_status=404)
    refusal = info.value
    assert (refusal.status, refusal.code, refusal.message) == (
        403, "forbidden", "you may not upload to this profile")
    assert hook.calls == [(REQUEST, PHOTOS)]


@pytest.mark.parametrize("name", [None, ""])
def test_admit_no_name_never_selects_a_profile(name: str | None) -> None:
    hook = _Recorder("u1")  # even a mapping that has an empty name
    with pytest.raises(Refusal) as info:
        admit(hook, REQUEST, {"": PHOTOS}, name, unknown_status=404)
    assert (info.value.status, info.value.code) == (404, "unknown_profile")
    assert hook.calls == []
