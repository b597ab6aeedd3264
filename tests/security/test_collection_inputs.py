"""Hostile input to the attachment API (attach/detach/reorder, read-back): owner and slot
names at and past the column limit or holding NUL, SQL-looking names, absurd positions,
huge reorder lists. Each is refused with its code before any write, or stored verbatim;
SQLite and PostgreSQL answer alike."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial

import pytest

from rindle import Rindle
from rindle.domain.attachments import MAX_NAME
from rindle.errors import NotFound, UsageError
from tests.domain.attach_kit import stored

Who = tuple[str, str]


@pytest.fixture
def app(shared_app: Rindle) -> Rindle:
    return shared_app  # shared database: each test has its own owner


@pytest.fixture
def asset_id(app: Rindle) -> uuid.UUID:
    return stored(app).id


LONG = "x" * (MAX_NAME + 1)


HOSTILE = [
    (("user", LONG), "s", "invalid_owner"),
    ((LONG, "1"), "s", "invalid_owner"),
    (("user", "a\x00b"), "s", "invalid_owner"),
    (("us\x00er", "1"), "s", "invalid_owner"),
    (("user", "1"), LONG, "invalid_slot"),
    (("user", "1"), "ph\x00otos", "invalid_slot"),
    (("user", "1"), "", "invalid_slot"),
]


def test_names_past_the_column_or_with_nul_are_refused_everywhere(
        app: Rindle, asset_id: uuid.UUID) -> None:
    for owner, slot, code in HOSTILE:
        calls: list[Callable[[], object]] = [
            partial(app.attach, asset_id, owner, slot, collection=True),
            partial(app.detach, owner, slot, asset_id),
            partial(app.reorder, owner, slot, [asset_id]),
            partial(app.attachment, owner, slot)]
        if slot == "s":
            calls.append(partial(app.attachments, owner))
        for call in calls:
            with pytest.raises(UsageError) as info:
                call()
            assert (owner, slot, info.value.code) == (owner, slot, code)
    assert app.attachments(("user", "1")) == {}


def test_names_at_the_limit_and_sql_looking_ones_are_stored_verbatim(
        app: Rindle, asset_id: uuid.UUID) -> None:
    owner = ("t" * MAX_NAME, "i" * MAX_NAME)
    app.attach(asset_id, owner, "s" * MAX_NAME, collection=True)
    assert [a.id for a in app.attachments(owner)["s" * MAX_NAME]] == [  # type: ignore[union-attr]
        asset_id]
    sneaky = ("user'; DROP TABLE media_attachments; --", "1 OR 1=1")
    app.attach(asset_id, sneaky, "photos') --")
    assert app.attachment(sneaky, "photos') --").id == asset_id  # type: ignore[union-attr]
    assert app.attachments(("user", "1 OR 1=1")) == {}


def test_owners_whose_names_run_together_stay_apart(app: Rindle) -> None:
    one, two = stored(app).id, stored(app).id
    app.attach(one, ("ab", "c"), "d", collection=True)
    app.attach(two, ("a", "bc"), "d", collection=True)
    assert [a.id for a in app.attachments(("ab", "c"))["d"]] == [one]  # type: ignore[union-attr]
    assert [a.id for a in app.attachments(("a", "bc"))["d"]] == [two]  # type: ignore[union-attr]


def test_absurd_positions_never_reach_the_database(app: Rindle, owner: Who,
                                                   asset_id: uuid.UUID) -> None:
    for position, code in [(2**63, "position_out_of_range"),
                           (-(2**63), "position_out_of_range"),
                           (10**100, "position_out_of_range"), (False, "invalid_position"),
                           ("0", "invalid_position")]:
        with pytest.raises(UsageError) as info:
            app.attach(asset_id, owner, "photos", position=position,  # type: ignore[arg-type]
                       collection=True)
        assert (position, info.value.code) == (position, code)
    assert app.attachments(owner) == {}


def test_a_huge_reorder_list_is_refused_with_a_bounded_message(app: Rindle, owner: Who,
                                                               asset_id: uuid.UUID) -> None:
    app.attach(asset_id, owner, "photos", collection=True)
    junk = [uuid.uuid4() for _ in range(5_000)]
    for ids in ([*junk, asset_id], [asset_id] * 5_000):
        with pytest.raises(UsageError) as info:
            app.reorder(owner, "photos", ids)
        assert info.value.code == "not_a_permutation"
        assert len(info.value.message) < 700
    with pytest.raises(UsageError) as info:
        app.reorder(owner, "photos", junk)
    assert f"missing: {asset_id};" in info.value.message
    assert "and 4995 more; repeated: -." in info.value.message


def test_ids_that_are_not_uuids_are_not_found(app: Rindle, owner: Who,
                                              asset_id: uuid.UUID) -> None:
    app.attach(asset_id, owner, "photos", collection=True)
    for call in (lambda: app.detach(owner, "photos", "1 OR 1=1"),
                 lambda: app.reorder(owner, "photos", ["' OR ''='"]),
                 lambda: app.attach("../../etc/passwd", owner, "photos")):
        with pytest.raises(NotFound):
            call()
    assert [a.id for a in app.attachments(owner)["photos"]] == [  # type: ignore[union-attr]
        asset_id]
