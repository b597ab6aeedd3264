"""Attack tests for rindle.html: hostile alt texts, filenames, attributes, types and URLs
never escape their attribute, and a script URL is never written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import pytest

from rindle import Rindle
from rindle.errors import UsageError
from rindle.html import audio, picture, safe_url, video
from tests.html_support import (
    PLAYBACK,
    Clip,
    Song,
    StreamClip,
    add_av_asset,
    html_app,
    png_bytes,
)

HOSTILE = '"><script>alert(1)</script><img src=x onerror=\'alert(2)\'>&'
ESCAPED = ("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x "
           "onerror=&#x27;alert(2)&#x27;&gt;&amp;")


class _Elements(HTMLParser):
    """Every start tag as ``(tag, attrs)``, attribute values unescaped as a browser would."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.fixture
def app(make_app: Callable[..., Rindle]) -> Rindle:
    return html_app(make_app)


@pytest.fixture(scope="module")
def no_db_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rindle]:
    """An app whose database is never reached: the refusals below come before any read."""
    root = tmp_path_factory.mktemp("html")
    app = Rindle(database_url=f"sqlite:///{root / 'never.db'}", secret_key="s",
                 storages={"default": {"backend": "local", "root": str(root / "m")}},
                 load_entrypoints=False)
    yield app
    app.close()
    assert not (root / "never.db").exists()


def test_hostile_alt_and_sizes_stay_inside_their_attributes(app: Rindle) -> None:
    asset = app.upload("gallery", png_bytes(), filename="p.png")
    app.jobs.drain()
    out = picture(app, asset.id, "small", alt=HOSTILE, sizes=HOSTILE, title=HOSTILE)
    assert f'alt="{ESCAPED}"' in out and f'sizes="{ESCAPED}"' in out
    assert f'title="{ESCAPED}"' in out and "<script" not in out
    tags = _Elements(out).tags
    assert [t for t, _ in tags] == ["picture", "img"]
    img = tags[1][1]
    assert img["alt"] == img["title"] == img["sizes"] == HOSTILE  # text, not markup
    assert "onerror" not in img


def test_hostile_filename_never_reaches_the_markup_raw(app: Rindle) -> None:
    asset = app.upload("gallery", png_bytes(), filename=HOSTILE + ".png")
    assert app.jobs.drain(limit=1) == 1  # promoted; no variant ready: the original is shown
    out = picture(app, asset.id, "small")
    assert "<script" not in out and "onerror=" not in out.replace("&#x27;", "")
    tags = _Elements(out).tags
    assert [t for t, _ in tags] == ["picture", "img"]
    assert set(tags[1][1]) == {"src", "alt", "width", "height"}
    clip = add_av_asset(app, Clip, content_type="video/mp4", filename=HOSTILE + ".mp4")
    out = video(app, clip)
    assert "<script" not in out
    assert [t for t, _ in _Elements(out).tags] == ["video", "source"]


def test_hostile_recorded_content_type_is_escaped(app: Rindle) -> None:
    song = add_av_asset(app, Song, content_type="audio/mpeg",
                        ready={"mp3": ('audio/mpeg" onerror="alert(1)', None, None)})
    out = audio(app, song)
    assert 'type="audio/mpeg&quot; onerror=&quot;alert(1)"' in out
    source = _Elements(out).tags[1][1]
    assert set(source) == {"src", "type"}


@pytest.mark.parametrize("name", ["onerror", "onload", "ONCLICK", "on_click"])
def test_event_handler_attributes_are_refused(no_db_app: Rindle, name: str) -> None:
    with pytest.raises(UsageError, match="event handler") as exc:
        picture(no_db_app, None, "small", **{name: "alert(1)"})
    assert exc.value.code == "usage_error"


@pytest.mark.parametrize("name", ['x"y', "a b", "x>", "1x", "", "_", "data-<x>", "x=y"])
def test_attribute_names_that_are_not_names_are_refused(no_db_app: Rindle, name: str) -> None:
    with pytest.raises(UsageError, match="not an HTML attribute name"):
        attrs: dict[str, Any] = {name: "v"}
        video(no_db_app, None, **attrs)


@pytest.mark.parametrize(("helper", "name"), [(picture, "src"), (picture, "srcset"),
                                              (video, "src"), (audio, "src")])
def test_generated_attributes_cannot_be_overridden(no_db_app: Rindle,
                                                   helper: Callable[..., str],
                                                   name: str) -> None:
    with pytest.raises(UsageError, match=r"written by rindle\.html itself"):
        helper(no_db_app, None, "small", **{name: "javascript:alert(1)"})


def test_script_urls_in_url_attributes_are_dropped(app: Rindle) -> None:
    bare = add_av_asset(app, Song, content_type="audio/mpeg", filename="s.mp3")
    out = audio(app, bare, cite="javascript:alert(1)", longdesc="https://ok.example/d")
    assert "javascript" not in out and 'longdesc="https://ok.example/d"' in out


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)",
    "java\tscript:alert(1)", "java\nscript:alert(1)", "\x01javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "file:///etc/passwd",
])
def test_safe_url_refuses_script_and_local_schemes(url: str) -> None:
    assert safe_url(url) is None


@pytest.mark.parametrize("url", [
    "https://cdn.example/a.webp?token=x", "HTTP://cdn.example/a", "/media/a.png",
    "a.png", "//cdn.example/a", "media/a.png?next=javascript:x", "",
])
def test_safe_url_keeps_http_and_relative_urls(url: str) -> None:
    assert safe_url(url) == url


def test_a_storage_that_yields_script_urls_renders_nothing(make_app: Callable[..., Rindle],
                                                           tmp_path: object) -> None:
    app = html_app(make_app, storages={"default": {
        "backend": "local", "root": str(tmp_path) + "/m",
        "base_url": "javascript:alert(document.cookie)//"}})
    asset = app.upload("gallery", png_bytes(), filename="p.png")
    app.jobs.drain()
    assert app.url(asset.id).startswith("javascript:")  # what a misconfigured storage gives
    assert picture(app, asset, ["small", "large"]) == ""
    clip = add_av_asset(app, Clip, content_type="video/mp4",
                        ready={"hd": ("video/mp4", 1280, 720)})
    assert video(app, clip) == ""


@pytest.mark.parametrize("template", ["javascript:alert('{id}')", "java\tscript:{id}",
                                      "data:application/x-mpegurl,{id}"])
def test_a_provider_script_playback_url_is_not_written(app: Rindle, template: str,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setitem(PLAYBACK, "template", template)
    clip = add_av_asset(app, StreamClip, content_type="video/mp4",
                        ready={"hd": ("video/mp4", 1280, 720)}, playback_ids=["pb1"])
    out = video(app, clip)
    assert "script" not in out and "data:" not in out
    assert [t for t, _ in _Elements(out).tags] == ["video", "source"]
