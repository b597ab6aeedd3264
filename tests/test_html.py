"""rindle.html: picture/video/audio markup from real assets (both dialects)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import jinja2
import markupsafe
import pytest

from rindle import Rindle
from rindle.domain.models import Asset
from rindle.errors import NotFound, UsageError
from rindle.html import HTML, audio, picture, register_jinja, video
from rindle.storage.local import LocalStorage
from tests.html_support import (
    Clip,
    Song,
    StreamClip,
    add_av_asset,
    html_app,
    png_bytes,
    untokened,
)


@pytest.fixture
def app(make_app: Callable[..., Rindle]) -> Rindle:
    return html_app(make_app)


@pytest.fixture
def photo(app: Rindle) -> Asset:
    """A 320x240 PNG uploaded and processed: every gallery variant ready."""
    asset = app.upload("gallery", png_bytes(), filename="photo.png")
    app.jobs.drain()
    return app.get_asset(asset.id)


def _key(app: Rindle, asset_id: uuid.UUID, variant: str | None = None) -> str:
    row = app.get_asset(asset_id)
    key = row.storage_key if variant is None else row.variants[variant].storage_key
    assert key is not None
    storage = app.storage()
    assert isinstance(storage, LocalStorage)
    return f"{storage.base_url}/media/{key}?token=T"


def test_picture_srcset_sizes_and_dimensions(app: Rindle, photo: Asset) -> None:
    out = picture(app, photo, ["small", "large"], sizes="(max-width: 600px) 50vw, 160px",
                  alt="Teal", loading="lazy", class_="thumb")
    assert isinstance(out, HTML) and out.__html__() == str(out)
    small, large = _key(app, photo.id, "small"), _key(app, photo.id, "large")
    assert untokened(out) == (
        f'<picture><img src="{large}" srcset="{small} 64w, {large} 160w"'
        ' sizes="(max-width: 600px) 50vw, 160px" alt="Teal" width="160" height="120"'
        ' loading="lazy" class="thumb"></picture>')


def test_picture_formats_become_sources_most_efficient_first(app: Rindle, photo: Asset
                                                             ) -> None:
    out = untokened(picture(app, photo.id, ["small", "jpeg", "large"]))
    small, large, jpeg = (_key(app, photo.id, n) for n in ("small", "large", "jpeg"))
    assert out == (f'<picture><source type="image/webp" srcset="{small} 64w, {large} 160w">'
                   f'<img src="{jpeg}" srcset="{jpeg} 160w" alt="" width="160" height="120">'
                   '</picture>')


def test_picture_uses_the_recorded_width_of_a_height_only_variant(app: Rindle, photo: Asset
                                                                  ) -> None:
    out = untokened(picture(app, str(photo.id), "tall"))
    tall = _key(app, photo.id, "tall")
    assert out == (f'<picture><img src="{tall}" srcset="{tall} 67w" alt="" width="67" '
                   'height="50"></picture>')


def test_picture_width_height_attrs_replace_the_computed_ones(app: Rindle, photo: Asset
                                                              ) -> None:
    out = untokened(picture(app, photo, "small", width=32, height=None))
    small = _key(app, photo.id, "small")
    assert out == f'<picture><img src="{small}" srcset="{small} 64w" alt="" width="32"></picture>'


def test_picture_falls_back_to_the_original_until_a_variant_is_ready(app: Rindle) -> None:
    asset = app.upload("gallery", png_bytes(), filename="photo.png")
    assert picture(app, asset, "small") == ""  # not promoted yet: nothing to show
    assert app.jobs.drain(limit=1) == 1  # promotion only: the variants are still queued
    assert app.get_asset(asset.id).variants["small"].state != "ready"
    out = untokened(picture(app, asset.id, "small", alt="x"))
    assert out == (f'<picture><img src="{_key(app, asset.id)}" alt="x" width="320" '
                   'height="240"></picture>')


def test_picture_of_nothing_is_empty(app: Rindle) -> None:
    assert picture(app, None, "small") == ""
    assert picture(app, uuid.uuid4(), "small") == ""
    assert picture(app, "not-a-uuid", "small") == ""
    quarantined = add_av_asset(app, Clip, content_type="video/mp4", state="quarantined")
    assert video(app, quarantined) == ""


def test_picture_refuses_undeclared_and_non_image_variants(app: Rindle, photo: Asset) -> None:
    with pytest.raises(NotFound) as exc:
        picture(app, photo, ["small", "huge"])
    assert exc.value.code == "not_found" and "huge" in str(exc.value)
    clip = add_av_asset(app, Clip, content_type="video/mp4")
    with pytest.raises(UsageError, match="'hd' of profile 'clip' is video, not image"):
        picture(app, clip, "hd")


def test_picture_of_a_non_image_original_without_variants_is_empty(app: Rindle) -> None:
    clip = add_av_asset(app, Clip, content_type="video/mp4")
    assert picture(app, clip, "poster") == ""


def test_video_sources_poster_and_dimensions(app: Rindle) -> None:
    clip = add_av_asset(app, Clip, content_type="video/mp4", width=1920, height=1080,
                        ready={"hd": ("video/mp4", 1280, 720), "sd": ("video/mp4", 854, 480),
                               "poster": ("image/jpeg", 1920, 1080)})
    out = untokened(video(app, clip, muted=True))
    hd, sd, poster = (_key(app, clip, n) for n in ("hd", "sd", "poster"))
    assert out == (f'<video controls preload="metadata" poster="{poster}" width="1280" '
                   f'height="720" muted><source src="{hd}" type="video/mp4">'
                   f'<source src="{sd}" type="video/mp4"></video>')
    only_sd = untokened(video(app, clip, ["sd"], poster=None, controls=False, preload="none"))
    assert only_sd == (f'<video preload="none" poster="{poster}" width="854" height="480">'
                       f'<source src="{sd}" type="video/mp4"></video>')


def test_video_falls_back_to_the_original(app: Rindle) -> None:
    clip = add_av_asset(app, Clip, content_type="video/mp4", width=640, height=360)
    out = untokened(video(app, clip))
    assert out == (f'<video controls preload="metadata" width="640" height="360">'
                   f'<source src="{_key(app, clip)}" type="video/mp4"></video>')


def test_video_puts_the_playable_stream_first(app: Rindle) -> None:
    streamed = add_av_asset(app, StreamClip, content_type="video/mp4", width=1280, height=720,
                            ready={"hd": ("video/mp4", 1280, 720)}, playback_ids=["pb1"])
    hd = _key(app, streamed, "hd")
    assert untokened(video(app, streamed)) == (
        '<video controls preload="metadata" width="1280" height="720">'
        '<source src="https://stream.example/pb1.m3u8" type="application/vnd.apple.mpegurl">'
        f'<source src="{hd}" type="video/mp4"></video>')
    pending = add_av_asset(app, StreamClip, content_type="video/mp4",
                           ready={"hd": ("video/mp4", 1280, 720)}, playback_ids=[])
    assert "stream.example" not in video(app, pending)  # no playback id yet: progressive


def test_audio_sources_and_fallback(app: Rindle) -> None:
    song = add_av_asset(app, Song, content_type="audio/mpeg", filename="song.mp3",
                        ready={"m4a": ("audio/mp4", None, None)})
    assert untokened(audio(app, song, loop=True)) == (
        f'<audio controls preload="metadata" loop><source src="{_key(app, song, "m4a")}" '
        'type="audio/mp4"></audio>')
    bare = add_av_asset(app, Song, content_type="audio/mpeg", filename="song.mp3")
    assert untokened(audio(app, bare, "mp3")) == (
        f'<audio controls preload="metadata"><source src="{_key(app, bare)}" '
        'type="audio/mpeg"></audio>')
    assert audio(app, add_av_asset(app, Clip, content_type="video/mp4")) == ""


def test_register_jinja_filters_and_globals_are_not_escaped_twice(app: Rindle, photo: Asset
                                                                  ) -> None:
    env = jinja2.Environment(autoescape=True)
    register_jinja(env, app)
    tpl = env.from_string('{{ a | picture("small", alt=t) }}|{{ picture(a, ["small"]) }}|'
                          '{{ a | media_url("small") }}|{{ none | picture("small") }}')
    out = untokened(tpl.render(a=photo, t='Tom & "Jerry"', none=None))
    small = _key(app, photo.id, "small")
    img = f'<img src="{small}" srcset="{small} 64w" alt="Tom &amp; &#34;Jerry&#34;" '
    first, second, url, empty = out.split("|")
    assert first == f'<picture>{img.replace("&#34;", "&quot;")}width="64" height="48"></picture>'
    assert second == f'<picture><img src="{small}" srcset="{small} 64w" alt="" width="64" ' \
                     'height="48"></picture>'
    assert url == small and empty == ""
    marked = markupsafe.escape(picture(app, photo, "small"))
    assert isinstance(marked, markupsafe.Markup) and untokened(marked) == second


def test_picture_reads_an_id_once_and_a_loaded_asset_not_at_all(app: Rindle, photo: Asset
                                                                  ) -> None:
    from sqlalchemy import event

    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    def selects() -> int:
        return sum(q.lstrip().upper().startswith("SELECT") for q in statements)

    event.listen(app.db.engine, "before_cursor_execute", count)
    try:
        by_id = picture(app, photo.id, ["small", "large", "jpeg"])
        assert selects() == 2, statements  # the asset, then its variants (selectinload)
        loaded = app.get_asset(photo.id)
        statements.clear()
        assert untokened(picture(app, loaded, ["small", "large", "jpeg"])) == untokened(by_id)
        assert selects() == 0, statements  # signed from the row given
    finally:
        event.remove(app.db.engine, "before_cursor_execute", count)
    assert by_id.count("token=") == 4  # three variants, the largest jpeg twice (src, srcset)


def test_an_asset_read_before_promotion_is_read_again(app: Rindle) -> None:
    """The Asset upload returns was read before promotion (``analyzing``): once processing
    is done it shows the variants, as its id does (it is read again, not trusted)."""
    stale = app.upload("gallery", png_bytes(), filename="p.png")
    assert picture(app, stale, "small") == ""
    app.jobs.drain()
    small = _key(app, stale.id, "small")
    expected = (f'<picture><img src="{small}" srcset="{small} 64w" alt="" width="64" '
                'height="48"></picture>')
    assert stale.state == "analyzing"
    assert untokened(picture(app, stale, "small")) == expected
    assert untokened(picture(app, stale.id, "small")) == expected


def test_the_actor_reaches_the_authorizer(make_app: Callable[..., Rindle]) -> None:
    from rindle.errors import Forbidden

    asked: list[tuple[object, str | None]] = []

    def owner_only(actor: object, asset: object, variant: str | None) -> bool:
        asked.append((actor, variant))
        return actor == "owner"

    app = html_app(make_app, delivery={"authorizer": owner_only})
    asset = app.upload("gallery", png_bytes(), filename="p.png")
    app.jobs.drain()
    small = _key(app, asset.id, "small")
    assert untokened(picture(app, asset.id, "small", actor="owner")) == (
        f'<picture><img src="{small}" srcset="{small} 64w" alt="" width="64" height="48">'
        '</picture>')
    assert asked == [("owner", "small")]
    for actor in ("stranger", None):
        with pytest.raises(Forbidden) as exc:
            picture(app, asset.id, "small", actor=actor)
        assert exc.value.code == "delivery_forbidden"
    env = jinja2.Environment(autoescape=True)
    register_jinja(env, app)
    rendered = env.from_string('{{ a | media_url("small", actor=u) }}').render(a=asset.id,
                                                                               u="owner")
    assert untokened(rendered) == small
