"""Storage key layout for originals and variants."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rindle.upload.keys import generate_key, key_extension, key_segment, variant_key

ASSET = uuid.UUID("01890f4e-8c5a-7b3e-9f00-123456789abc")
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def test_original_key_layout() -> None:
    key = generate_key("Elixir.MyApp.AvatarProfile", ASSET, ".JPG")
    assert re.fullmatch(rf"elixir-myapp-avatarprofile/{ASSET}/{UUID4}\.jpg", key)


def test_keys_are_fresh_every_call() -> None:
    assert generate_key("avatar", ASSET, ".png") != generate_key("avatar", ASSET, ".png")


@pytest.mark.parametrize(("value", "fallback", "expected"), [
    ("Avatar", "profile", "avatar"),
    ("../..", "profile", "profile"),
    ("", "asset", "asset"),
    (None, "asset", "asset"),
    (42, "asset", "asset"),
    ("my profile/v2", "profile", "my-profile-v2"),
    (ASSET, "asset", str(ASSET)),
])
def test_segments(value: object, fallback: str, expected: str) -> None:
    assert key_segment(value, fallback) == expected


@pytest.mark.parametrize(("ext", "expected"), [
    (".JPG", ".jpg"), ("png", ".png"), ("..png", ".png"), (".p/n\\g", ".png"),
    ("", ""), (".", ""), (None, ""), ("tar.gz", ".tar.gz"), ("webp.", ".webp"),
])
def test_extensions(ext: str | None, expected: str) -> None:
    assert key_extension(ext) == expected


def test_variant_key_layout() -> None:
    key = variant_key("avatar", ASSET, "thumb", "3A9AB2F6", "webp")
    assert key == f"avatar/{ASSET}/thumb-3a9ab2f6.webp"
    assert variant_key("avatar", ASSET, "thumb", "3a9ab2f6", ".webp") == key  # deterministic


def test_variant_key_sanitises_every_segment() -> None:
    key = variant_key("../Avatar", "../../etc", "Thumb@2x/..", "ab..cd", "../webp")
    assert key == "avatar/etc/thumb-2x-abcd.webp"


def test_variant_key_needs_a_digest() -> None:
    with pytest.raises(ValueError, match="digest"):
        variant_key("avatar", ASSET, "thumb", "", ".webp")


_anything = st.one_of(st.text(max_size=40), st.none(), st.integers(), st.uuids())


@settings(max_examples=300, deadline=None)
@given(profile=_anything, asset=_anything, variant=_anything,
       digest=st.from_regex(r"[0-9a-f]{1,64}", fullmatch=True),
       ext=st.one_of(st.none(), st.text(max_size=12)))
def test_keys_never_escape(profile: object, asset: object, variant: object, digest: str,
                           ext: str | None) -> None:
    for key in (generate_key(profile, asset, ext),
                variant_key(profile, asset, variant, digest, ext)):
        assert ".." not in key
        assert "\\" not in key and "//" not in key
        assert not key.startswith("/")
        segments = key.split("/")
        assert len(segments) == 3 and all(segments)
        assert re.fullmatch(r"[a-z0-9_./-]+", key)
