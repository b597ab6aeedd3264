"""Profiles and variant specs: validation at class creation and the recipe digest."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rindle import Delivery, Profile, variants
from rindle.domain.digest import recipe_digest
from rindle.errors import ProfileError

VECTORS = [
    (variants.Image(mode="fit", width=64, height=64),
     "3a9ab2f60b2d26217471f22cc329252acba546c6341111a3ef89a8d9978d30a7"),
    ({"kind": "image", "mode": "fit", "width": 64, "height": 64},
     "3a9ab2f60b2d26217471f22cc329252acba546c6341111a3ef89a8d9978d30a7"),
    (variants.Video(preset="web_720p"),
     "7adba05438de4278fad4a4e708b2bfe66b1f35cbf1e80469258fcc886d5725b8"),
    (variants.Image(preset="video_poster_scene"),
     "db97d75dfcc0b3e2a4f935bb1b027b54d3b4d5ed4d0942be7e4ebd47411a2e50"),
    (variants.Audio(preset="m4a_128k"),
     "c3c6fdc6f3880830a1ae59dedfc7f639e1e7d87959ad09e6bd10aa8e9fa37cd7"),
    (variants.Waveform(preset="overview"),
     "e90e9ae2ae6459537c222ce9188798d31fcb22e033f7ac9c45147beb02439a75"),
]


def make_profile(specs: dict[str, Any], **options: Any) -> type[Profile]:
    attrs = {"name": "p", "variants": specs, **options}
    return type("P", (Profile,), attrs)


@pytest.mark.parametrize(("spec", "digest"), VECTORS)
def test_reference_digest_vectors(spec: Any, digest: str) -> None:
    assert make_profile({"v": spec}).recipe_digest("v") == digest


def test_canonical_json_of_the_snapshot_vector() -> None:
    from rindle.domain.digest import canonical

    spec = variants.Image(mode="fit", width=64, height=64).stored_spec()
    assert canonical(spec) == [["format", "jpeg"], ["height", 64], ["mode", "fit"],
                               ["width", 64]]


image_specs = st.builds(
    lambda mode, w, h, fmt, q: variants.Image(mode=mode, width=w, height=h or (None if w else 5),
                                              format=fmt, quality=q),
    st.sampled_from(["fit", "fill"]), st.one_of(st.none(), st.integers(1, 5000)),
    st.one_of(st.none(), st.integers(1, 5000)), st.sampled_from(["jpeg", "png", "webp"]),
    st.one_of(st.none(), st.integers(1, 100)))


@settings(max_examples=60, deadline=None)
@given(image_specs, st.randoms())
def test_key_order_does_not_matter(spec: variants.Image, rnd: Any) -> None:
    stored = spec.stored_spec()
    items = list(stored.items())
    rnd.shuffle(items)
    assert recipe_digest(dict(items)) == recipe_digest(stored)


@settings(max_examples=60, deadline=None)
@given(image_specs, st.sampled_from(["width", "height", "quality", "format"]))
def test_any_value_change_changes_the_digest(spec: variants.Image, key: str) -> None:
    stored = spec.stored_spec()
    changed = dict(stored)
    if key == "format":
        changed[key] = "png" if stored["format"] != "png" else "webp"
    else:
        changed[key] = (stored.get(key) or 0) + 1
    assert recipe_digest(changed) != recipe_digest(stored)


@settings(max_examples=40, deadline=None)
@given(image_specs, st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
                                    image_specs, max_size=4))
def test_siblings_name_and_storage_do_not_affect_a_digest(spec: variants.Image,
                                                           siblings: dict[str, Any]) -> None:
    alone = make_profile({"main": spec})
    crowd = make_profile({**siblings, "main": spec}, name="other", storage="elsewhere")
    assert alone.recipe_digest("main") == crowd.recipe_digest("main")


def test_defaults_and_sorting() -> None:
    prof = make_profile({"b": variants.Image(mode="fit", width=10), "a": variants.Video(
        preset="web_480p")})
    assert [n for n, _ in prof.variant_specs()] == ["a", "b"]
    assert prof.variant_specs()[1][1].stored_spec() == {"mode": "fit", "width": 10,
                                                         "format": "jpeg"}
    assert prof.variant_specs()[0][1].stored_spec()["faststart"] is True
    assert prof.delivery == Delivery(public=False, signed_url_ttl=None)
    assert prof.delivery.ttl(900) == 900 and Delivery(signed_url_ttl=60).ttl(900) == 60
    assert "kind" not in prof.variant_specs()[1][1].stored_spec()


BAD_PROFILES: list[tuple[dict[str, Any], str]] = [
    ({"max_byte": 5}, "max_byte"),
    ({"max_bytes": -5}, "max_bytes"),
    ({"max_pixels": "many"}, "max_pixels"),
    ({"allow_mime": "image/png"}, "allow_mime"),
    ({"name": "Bad Name"}, "name"),
    ({"delivery": {"public": True}}, "delivery"),
    ({"variants": {"Thumb": variants.Image(mode="fit", width=1)}}, "Thumb"),
    ({"variants": {"t": "fit 64"}}, "t"),
    ({"variants": {"t": {"kind": "hologram"}}}, "kind"),
]


@pytest.mark.parametrize(("options", "key"), BAD_PROFILES)
def test_bad_profile_options_name_the_key(options: dict[str, Any], key: str) -> None:
    specs = options.pop("variants", {})
    with pytest.raises(ProfileError) as err:
        make_profile(specs, **options)
    assert err.value.key == key
    assert key in str(err.value)


BAD_SPECS: list[tuple[Any, str]] = [
    (lambda: variants.Image(mode="crop", width=10), "height"),
    (lambda: variants.Image(mode="fit"), "width"),
    (lambda: variants.Image(mode="stretch", width=1), "mode"),
    (lambda: variants.Image(mode="fit", width=1, format="gif"), "format"),
    (lambda: variants.Image(mode="fit", width=1, quality=0), "quality"),
    (lambda: variants.Image(mode="fit", width=1, quality=101), "quality"),
    (lambda: variants.Image(mode="fit", width=0), "width"),
    (lambda: variants.Image(preset="gif_loop"), "preset"),
    (lambda: variants.Image(preset="video_poster_scene", mode="fit"), "mode"),
    (lambda: variants.Video(preset="web_4k"), "preset"),
    (lambda: variants.Audio(preset="m4a_128k", channels=6), "channels"),
    (lambda: variants.Waveform(preset="detail"), "preset"),
    (lambda: Delivery(signed_url_ttl=0), "signed_url_ttl"),
    (lambda: Delivery(streaming={"provider": "mux", "playback_policy": "secret",
                                 "ingest_mode": "server_push", "source_variant": "v"}),
     "playback_policy"),
]


@pytest.mark.parametrize(("build", "key"), BAD_SPECS)
def test_bad_spec_options_name_the_key(build: Any, key: str) -> None:
    with pytest.raises(ProfileError) as err:
        build()
    assert err.value.key == key


def test_streaming_source_variant_must_be_declared() -> None:
    streaming = {"provider": "mux", "playback_policy": "signed",
                 "ingest_mode": "server_push", "source_variant": "web"}
    with pytest.raises(ProfileError, match="source_variant 'web' not declared"):
        make_profile({"thumb": variants.Image(mode="fit", width=5)},
                     delivery=Delivery(streaming=streaming))
    ok = make_profile({"web": variants.Video(preset="web_720p")},
                      delivery=Delivery(streaming=streaming))
    assert ok.delivery.streaming is not None


def test_unknown_variant_digest_names_it() -> None:
    with pytest.raises(ProfileError, match="unknown variant 'nope'"):
        make_profile({}).recipe_digest("nope")


def test_abstract_bases_skip_validation_and_outputs() -> None:
    class Base(Profile):
        abstract = True
        max_bytes = 10

    class Child(Base):
        name = "child"

    assert Child.upload_policy().max_bytes == 10
    spec = variants.Image(mode="fit", width=10, format="webp")
    assert (spec.extension, spec.content_type, spec.output_kind) == (".webp", "image/webp",
                                                                     "image")
    assert variants.Video(preset="web_720p").output_kind == "video"
