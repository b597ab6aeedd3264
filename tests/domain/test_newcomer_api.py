"""What a newcomer types wrong at the read-back and URL calls gets a UsageError or a
NotFound that names the fix, never a bare ``ValueError``/``TypeError`` (SQLite and
PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from rindle import Rindle
from rindle.domain.attachments import to_owner
from rindle.errors import NotFound, UsageError
from tests.domain.attach_kit import stored

NOT_PAIRS: list[Any] = ["user:42", "ab", b"ab", None, 42, ("user",), ("user", 1, 2), ["user"]]


@pytest.mark.parametrize("owner", NOT_PAIRS, ids=repr)
def test_an_owner_that_is_not_a_pair_is_invalid_owner(owner: Any) -> None:
    with pytest.raises(UsageError) as info:
        to_owner(owner)
    assert info.value.code == "invalid_owner"
    assert info.value.message == (f"owner must be an Owner(type, id) or a (type, id) tuple, "
                                  f"e.g. (\"user\", 42), got {owner!r}")


def test_pairs_still_pass_and_a_long_value_is_cut_in_the_message() -> None:
    assert to_owner(("user", 42)) == ("user", "42")
    assert to_owner(["user", "42"]) == ("user", "42")
    with pytest.raises(UsageError) as info:
        to_owner("u" * 100)  # type: ignore[arg-type]
    assert info.value.message.endswith("got '" + "u" * 56 + "...")


def test_read_back_calls_refuse_a_cli_style_owner(shared_app: Rindle) -> None:
    for call in (lambda: shared_app.attachment("user:1", "avatar"),  # type: ignore[arg-type]
                 lambda: shared_app.attachments("user:1")):  # type: ignore[arg-type]
        with pytest.raises(UsageError) as info:
            call()
        assert info.value.code == "invalid_owner"


def test_an_unknown_variant_names_the_declared_ones(shared_app: Rindle) -> None:
    asset = stored(shared_app, "thumbed")
    expected = "unknown variant 'nosuch' for profile 'thumbed'; its variants: small, tiny"
    for call in (lambda: shared_app.url(asset.id, "nosuch"),
                 lambda: shared_app.urls([asset.id], "nosuch")):
        with pytest.raises(NotFound) as info:
            call()
        assert (info.value.code, info.value.message) == ("not_found", expected)
        assert (info.value.entity, info.value.ident) == ("variant", "nosuch")
    assert set(shared_app.urls([asset.id], "small")) == {asset.id}  # the declared one signs


def test_urls_reads_again_an_asset_object_caught_before_promotion(shared_app: Rindle) -> None:
    from tests.domain.attach_kit import jpeg

    uploaded = shared_app.upload("thumbed", jpeg(), filename="p.jpg")
    assert uploaded.state == "analyzing"  # the object app.upload returns
    assert shared_app.urls([uploaded], "small") == {}  # not promoted yet: left out
    shared_app.jobs.drain()
    assert uploaded.state == "analyzing"  # the object itself is not refreshed...
    urls = shared_app.urls([uploaded], "small")  # ...but urls reads the asset again
    assert list(urls) == [uploaded.id]
    assert f"/thumbed/{uploaded.id}/small-" in urls[uploaded.id]  # the variant, now ready


def test_picture_reads_again_an_asset_object_caught_before_promotion(
        shared_app: Rindle) -> None:
    from rindle.html import picture
    from tests.domain.attach_kit import jpeg

    uploaded = shared_app.upload("thumbed", jpeg(), filename="p.jpg")
    assert str(picture(shared_app, uploaded, ["small"])) == ""  # nothing deliverable yet
    shared_app.jobs.drain()
    html = str(picture(shared_app, uploaded, ["small"]))
    assert f"/thumbed/{uploaded.id}/small-" in html and html.startswith("<picture")
