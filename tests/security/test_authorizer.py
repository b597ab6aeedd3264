"""The delivery authorizer: no private URL is signed unless it answers exactly True.

Attacks: no actor, an actor it refuses, truthy answers that are not True (a string, 1, a
response object), an authorizer that raises, a mixed batch hiding one refused asset, a
variant the actor may not see, and a public profile that must not even ask.
"""

from __future__ import annotations

import sys
import types
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rindle import Rindle
from rindle.domain.models import Asset
from rindle.errors import ConfigError, Forbidden, Rejected
from rindle.ids import uuid7
from tests.delivery_kit import add_asset


class Owners:
    """Lets each user see only the assets recorded as theirs; records every call."""

    def __init__(self) -> None:
        self.owner: dict[uuid.UUID, str] = {}
        self.calls: list[tuple[Any, uuid.UUID, str | None]] = []

    def __call__(self, actor: Any, asset: Asset, variant: str | None) -> bool:
        self.calls.append((actor, asset.id, variant))
        return actor is not None and self.owner.get(asset.id) == actor


@pytest.fixture
def owners() -> Owners:
    return Owners()


@pytest.fixture
def guarded(make_url_app: Callable[..., Rindle], owners: Owners) -> Rindle:
    return make_url_app(authorizer=owners)


def test_the_owner_gets_the_url_and_the_authorizer_sees_actor_asset_variant(
        guarded: Rindle, owners: Owners) -> None:
    aid = add_asset(guarded)
    owners.owner[aid] = "alice"
    url = guarded.url(aid, "thumb", actor="alice")
    assert "token=" in url and f"/{aid}/thumb.webp" in url
    assert owners.calls == [("alice", aid, "thumb")]
    assert guarded.urls([aid], actor="alice") == {aid: guarded.url(aid, actor="alice")}
    assert owners.calls[1:] == [("alice", aid, None), ("alice", aid, None)]


@pytest.mark.parametrize("actor", [None, "mallory", "", 0, "alice "])
def test_anyone_else_is_forbidden(guarded: Rindle, owners: Owners, actor: Any) -> None:
    aid = add_asset(guarded)
    owners.owner[aid] = "alice"
    with pytest.raises(Forbidden) as err:
        guarded.url(aid, "thumb", actor=actor)
    assert err.value.code == "delivery_forbidden"
    assert isinstance(err.value, Rejected) and err.value.permanent
    assert err.value.asset_id == aid and err.value.variant == "thumb"
    assert "token" not in str(err.value)


def test_no_actor_is_asked_as_none(guarded: Rindle, owners: Owners) -> None:
    aid = add_asset(guarded)
    owners.owner[aid] = "alice"
    with pytest.raises(Forbidden):
        guarded.url(aid)
    assert owners.calls == [(None, aid, None)]


@pytest.mark.parametrize("answer", ["yes", 1, [True], object(), None, False, "True"])
def test_only_true_itself_allows(make_url_app: Callable[..., Rindle], answer: Any) -> None:
    app = make_url_app(authorizer=lambda actor, asset, variant: answer)
    aid = add_asset(app)
    with pytest.raises(Forbidden):
        app.url(aid, actor="alice")
    with pytest.raises(Forbidden):
        app.urls([aid], actor="alice")


def test_an_authorizer_that_raises_signs_nothing(make_url_app: Callable[..., Rindle]) -> None:
    def broken(actor: Any, asset: Asset, variant: str | None) -> bool:
        raise LookupError("permissions service down")

    app = make_url_app(authorizer=broken)
    aid = add_asset(app)
    with pytest.raises(LookupError, match="permissions service down"):
        app.url(aid, actor="alice")


def test_one_refused_asset_fails_the_whole_batch(guarded: Rindle, owners: Owners) -> None:
    mine = [add_asset(guarded) for _ in range(3)]
    theirs = add_asset(guarded)
    for aid in mine:
        owners.owner[aid] = "alice"
    owners.owner[theirs] = "bob"
    assert set(guarded.urls(mine, "thumb", actor="alice")) == set(mine)
    with pytest.raises(Forbidden) as err:
        guarded.urls([*mine, theirs], "thumb", actor="alice")
    assert err.value.asset_id == theirs


def test_a_variant_can_be_refused_while_the_original_is_allowed(
        make_url_app: Callable[..., Rindle]) -> None:
    app = make_url_app(authorizer=lambda actor, asset, variant: variant is None)
    aid = add_asset(app)
    assert "token=" in app.url(aid, actor="anyone")
    with pytest.raises(Forbidden) as err:
        app.url(aid, "thumb", actor="anyone")
    assert err.value.variant == "thumb"


def test_public_profiles_never_ask(guarded: Rindle, owners: Owners) -> None:
    aid = add_asset(guarded, "poster")
    # local storage's public URL: a token that never expires (what storage.url gives)
    assert guarded.url(aid, "thumb") == guarded.storage().url(f"poster/{aid}/thumb.webp")
    assert guarded.urls([aid], actor="mallory") == {aid: guarded.url(aid)}
    assert owners.calls == []


def test_undeliverable_assets_never_reach_the_authorizer(guarded: Rindle,
                                                         owners: Owners) -> None:
    assert guarded.urls([uuid7(), "nope"], actor="alice") == {}
    assert owners.calls == []


@pytest.fixture
def auth_module() -> Iterator[types.ModuleType]:
    module = types.ModuleType("h12_auth_rules")
    module.only_alice = lambda actor, asset, variant: actor == "alice"  # type: ignore[attr-defined]
    module.not_callable = 3  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        yield module
    finally:
        del sys.modules[module.__name__]


def test_the_authorizer_by_import_path(make_url_app: Callable[..., Rindle],
                                       auth_module: types.ModuleType) -> None:
    app = make_url_app(delivery={"authorizer": "h12_auth_rules:only_alice"})
    assert app.settings.delivery.authorizer is auth_module.only_alice
    aid = add_asset(app)
    assert "token=" in app.url(aid, actor="alice")
    with pytest.raises(Forbidden):
        app.url(aid, actor="bob")
    with pytest.raises(ConfigError, match="is not callable"):
        make_url_app(authorizer="h12_auth_rules:not_callable")
    with pytest.raises(ConfigError, match="not an import path"):
        make_url_app(authorizer="h12_auth_rules.only_alice")


def test_a_streamed_profile_asks_before_its_playback_or_progressive_url(
        make_url_app: Callable[..., Rindle]) -> None:
    from rindle.plugins import make_plugin_manager
    from tests.streaming.conftest import Stream, _Plugin, add_row

    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(_Plugin(), name="loop-plugin")
    asked: list[Any] = []

    def only_alice(actor: Any, asset: Asset, variant: str | None) -> bool:
        asked.append((actor, asset.id, variant))
        return bool(actor == "alice")

    app = make_url_app(plugin_manager=pm, profiles=[Stream], streaming={"loop": {}},
                   authorizer=only_alice)
    row = add_row(app, state="processing")  # no playable stream yet: progressive fallback
    with pytest.raises(Forbidden):
        app.url(row.asset_id, actor="mallory")
    assert asked == [("mallory", row.asset_id, None)]
    assert "token=" in app.url(row.asset_id, actor="alice")
