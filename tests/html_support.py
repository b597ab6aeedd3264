"""Apps and rows for the rindle.html tests (functional and attack tests share them)."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image as PILImage

from rindle import Delivery, Profile, Rindle, hookimpl, variants
from rindle.domain.models import Asset, ProviderAsset, Variant
from rindle.plugins import make_plugin_manager
from rindle.streaming import LiveAsset, PlaybackURL, Provider

__all__ = ["Clip", "Gallery", "Song", "StreamClip", "add_av_asset", "html_app",
           "png_bytes", "untokened"]

#: What the page provider answers as the playback URL of an id (``{id}`` filled in).
PLAYBACK = {"template": "https://stream.example/{id}.m3u8"}


class Gallery(Profile):
    name = "gallery"
    allow_mime = ("image/png", "image/jpeg")
    variants = {"small": variants.Image(mode="fit", width=64, format="webp"),
                "large": variants.Image(mode="fit", width=160, format="webp"),
                "jpeg": variants.Image(mode="fit", width=160, format="jpeg"),
                "tall": variants.Image(mode="fit", height=50, format="jpeg")}


class Clip(Profile):
    name = "clip"
    allow_mime = ("video/mp4",)
    variants = {"hd": variants.Video(preset="web_720p"),
                "sd": variants.Video(preset="web_480p"),
                "poster": variants.Image(preset="video_poster_scene")}


class StreamClip(Profile):
    name = "streamclip"
    allow_mime = ("video/mp4",)
    variants = {"hd": variants.Video(preset="web_720p")}
    delivery = Delivery(streaming={"provider": "pageloop", "playback_policy": "public",
                                   "ingest_mode": "server_push", "source_variant": "hd"})


class Song(Profile):
    name = "song"
    allow_mime = ("audio/mpeg",)
    variants = {"m4a": variants.Audio(preset="m4a_128k"),
                "mp3": variants.Audio(preset="mp3_128k")}


class PageProvider(Provider):
    """A provider with playback URLs only (the HTML helpers ask for nothing else)."""

    capabilities = frozenset({"webhook_ingest"})

    def get_asset(self, provider_asset_id: str) -> LiveAsset:
        raise AssertionError("the HTML helpers must not call the provider's API")

    def playback_url(self, playback_id: str, *, policy: str = "signed",
                     expires_in: int = 900) -> PlaybackURL:
        return PlaybackURL(PLAYBACK["template"].format(id=playback_id))


class _Plugin:
    @hookimpl
    def register_streaming_providers(self, register: Callable[[str, type], None]) -> None:
        register("pageloop", PageProvider)


def html_app(make_app: Callable[..., Rindle], **options: Any) -> Rindle:
    """An app with the four profiles above and the ``pageloop`` provider."""
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(_Plugin(), name="pageloop-plugin")
    app = make_app(plugin_manager=pm, profiles=[Gallery, Clip, StreamClip, Song],
                   streaming={"pageloop": {}}, **options)
    app.migrate()
    return app


def png_bytes(width: int = 320, height: int = 240) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), "teal").save(buf, "PNG")
    return buf.getvalue()


def add_av_asset(app: Rindle, profile: type[Profile], *, content_type: str,
                 width: int | None = None, height: int | None = None,
                 ready: Mapping[str, tuple[str, int | None, int | None]] | None = None,
                 state: str = "ready", filename: str = "clip.mp4",
                 playback_ids: list[str] | None = None) -> uuid.UUID:
    """Record a promoted AV asset and its ready variants (``name -> (type, w, h)``) as the
    processing pipeline leaves them (no transcoder is installed here), and with
    ``playback_ids`` a ready provider row."""
    aid = uuid.uuid4()
    with app.db.transaction() as s:
        s.add(Asset(id=aid, profile=profile.name, state=state, kind=content_type.split("/")[0],
                    storage_key=f"{profile.name}/{aid}/{filename}", content_type=content_type,
                    width=width, height=height, filename=filename))
        s.flush()
        for name, (vtype, vw, vh) in (ready or {}).items():
            s.add(Variant(asset_id=aid, name=name, state="ready",
                          recipe_digest=profile.recipe_digest(name),
                          storage_key=f"{profile.name}/{aid}/{name}", content_type=vtype,
                          width=vw, height=vh))
        if playback_ids is not None:
            s.add(ProviderAsset(asset_id=aid, profile=profile.name, provider_name="pageloop",
                                provider_asset_id=f"pa-{aid.hex}", state="ready",
                                playback_ids=playback_ids, playback_policy="public",
                                ingest_mode="server_push"))
    return aid


_TOKEN = re.compile(r"token=[A-Za-z0-9_.\-~%]+")


def untokened(markup: str) -> str:
    """``markup`` with every signed token replaced by ``T`` (tokens carry an expiry)."""
    return _TOKEN.sub("token=T", markup)
