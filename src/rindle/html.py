"""HTML for assets in templates: ``picture``, ``video`` and ``audio`` elements.

Every helper returns :class:`HTML`, a ``str`` subclass with ``__html__``: Jinja2 (through
MarkupSafe), Django's ``conditional_escape`` and MarkupSafe's ``Markup`` all treat it as
already-escaped markup, so it is never escaped twice, and rindle needs no markup library of
its own (MarkupSafe is not a dependency of the core). Each helper escapes every attribute
value it writes (``&``, ``<``, ``>``, ``"`` and ``'``), so filenames, alt texts and URLs
cannot break out of their attribute, and emits a URL only when it is relative or
``http``/``https`` (a ``javascript:``/``data:``/``vbscript:`` URL, whatever a storage or an
argument produced, is never written).

What is used:

* Only variants in state ``ready``. :func:`picture` builds ``srcset`` from each ready
  variant's width (the width recorded when it was rendered, else the width its spec
  declares) and sets ``width``/``height`` from the largest one (its recorded size, else
  the asset's dimensions scaled to its width), so the page does not shift when it loads.
  Variants of several formats become one ``<source type=...>`` each, most efficient first
  (AVIF, WebP), with the most widely supported format (JPEG, PNG, ...) on the ``<img>``.
* Fallback when none of the named variants is ready: the original, when the asset has
  passed promotion and the original is a raster image (``image/*`` other than SVG) for
  :func:`picture`, a video for :func:`video`, audio for :func:`audio`; otherwise nothing
  (an empty string). An asset that is missing, deleted, not yet promoted or quarantined
  also renders as an empty string, as does ``None`` (an empty attachment slot), so a page
  never fails because one upload is still processing.
* :func:`video` puts the streaming provider's playback URL first when the profile streams
  and the provider row is playable (:mod:`rindle.streaming.playback`; an HLS ``<source>``
  that browsers without HLS skip), then the ready video variants (largest first), and
  takes its ``poster`` from a ready ``video_poster_scene`` image variant (or the one
  named).

``asset`` is an id (read when the helper runs: two SELECTs, the asset and its variants)
or an :class:`~rindle.domain.models.Asset` with its variants loaded, as
:meth:`~rindle.Rindle.get_asset`, :meth:`~rindle.Rindle.attachment` and
:meth:`~rindle.Rindle.attachments` return it, which is used as it is: a gallery read with
one ``app.attachments(owner)`` renders without another query. Pass the id when the object
may predate processing (the Asset :meth:`~rindle.Rindle.upload` returns does). URLs are
signed by :meth:`rindle.Rindle.urls` (signed unless the profile is public) from that row,
with no query per URL. Every helper takes ``actor=``, the user a ``[delivery]
authorizer`` decides for; its refusal raises :class:`~rindle.errors.Forbidden` as
``app.url`` does.

Template engines: :func:`register_jinja` adds the helpers to a Jinja2 environment in one
call; the Django plugin's template tags call the same functions.
"""

from __future__ import annotations

import html as _html
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from rindle.domain.fsm.asset import BEFORE_PROMOTION
from rindle.domain.models import Asset, Variant
from rindle.domain.profile import unknown_variant
from rindle.domain.queries import get_asset
from rindle.errors import NotFound, StreamingError, UsageError

if TYPE_CHECKING:
    from rindle.database import Database
    from rindle.domain.profile import Profile
    from rindle.domain.variants import VariantSpec
    from rindle.streaming.provider import PlaybackURL

__all__ = ["HTML", "HtmlHost", "audio", "picture", "register_jinja", "safe_url", "video"]

#: Asset states whose original (and variants) may be delivered.
_DELIVERABLE = frozenset({"available", "processing", "transcoding", "ready", "degraded"})
#: Image types a browser shows inline; SVG is excluded (always delivered as attachment).
_INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/webp", "image/avif",
                            "image/gif"})
#: ``<source>`` order: the most efficient formats first.
_SOURCE_ORDER = ("image/avif", "image/webp")
#: ``<img>`` format preference: the most widely supported first.
_IMG_ORDER = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/avif")
_ATTR_NAME = re.compile(r"[a-z][a-z0-9-]*(:[a-z][a-z0-9-]*)?")
#: Attributes whose value is a URL (checked by :func:`safe_url` when passed in ``attrs``).
_URL_ATTRS = frozenset({"src", "href", "poster", "action", "formaction", "xlink:href",
                        "cite", "longdesc", "data", "background", "ping"})
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_IGNORED_IN_URL = re.compile(r"[\x00-\x20\x7f]")


class HTML(str):
    """Markup that is already escaped: a ``str`` whose ``__html__`` returns itself.

    Jinja2 autoescaping, MarkupSafe and Django templates insert it as it is.
    """

    __slots__ = ()

    def __html__(self) -> str:
        """The markup itself (the protocol Jinja2, MarkupSafe and Django honour)."""
        return str(self)


class HtmlHost(Protocol):
    """The app as the HTML helpers use it (a :class:`rindle.Rindle` is one)."""

    @property
    def db(self) -> Database:
        """The database."""

    def profile(self, profile: type[Profile] | str) -> type[Profile]:
        """The configured profile for a class or a name."""

    def urls(self, assets: Iterable[Asset | uuid.UUID | str], variant: str | None = None,
             *, expires_in: int | None = None, disposition: str | None = None,
             actor: Any = None) -> dict[uuid.UUID, str]:
        """Delivery URLs of many assets (or of one variant of each), by asset id."""


AssetRef = Asset | uuid.UUID | str | None


def safe_url(url: str) -> str | None:
    """``url`` when a browser would not run it as script: relative, ``http`` or ``https``.

    Control characters and spaces a browser ignores inside a scheme (``java\\tscript:``) are
    ignored here too before the scheme is read; anything else (``javascript:``, ``data:``,
    ``vbscript:``, ``file:``) is ``None``.
    """
    match = _SCHEME.match(_IGNORED_IN_URL.sub("", url))
    if match is None or match.group(1).lower() in ("http", "https"):
        return url
    return None


def _escape(value: object) -> str:
    return _html.escape(str(value), quote=True)


def _attr_name(name: str) -> str:
    """``class_`` -> ``class``, ``data_id`` -> ``data-id``; refuses anything not a plain
    attribute name, and event handlers (``on...``), which are script."""
    out = name.rstrip("_").replace("_", "-").lower()
    if not _ATTR_NAME.fullmatch(out):
        raise UsageError(f"{name!r} is not an HTML attribute name; use letters, digits and "
                         "'-' (write class_ for class, data_x for data-x)")
    if out.startswith("on"):
        raise UsageError(f"attribute {out!r} is an event handler (script); rindle.html does "
                         "not write event handlers: attach them from your own script")
    return out


def _tag(name: str, attrs: Iterable[tuple[str, object]]) -> str:
    """``<name a="v" flag>`` with every value escaped; None/False values are left out."""
    parts = [name]
    for key, value in attrs:
        if value is None or value is False:
            continue
        parts.append(key if value is True else f'{key}="{_escape(value)}"')
    return "<" + " ".join(parts) + ">"


def _extra(attrs: Mapping[str, object], reserved: Iterable[str]) -> list[tuple[str, object]]:
    """The caller's own attributes, named and checked; a URL attribute with an unsafe URL is
    left out."""
    taken = set(reserved)
    out: list[tuple[str, object]] = []
    for raw, value in attrs.items():
        name = _attr_name(raw)
        if name in taken:
            raise UsageError(f"attribute {name!r} is written by rindle.html itself; pass it "
                             "through the helper's own keyword if it has one")
        if name in _URL_ATTRS and value is not None and value is not False:
            value = safe_url(str(value))
        out.append((name, value))
    return out


# --- rows -----------------------------------------------------------------------------------

def _load(app: HtmlHost, asset: AssetRef) -> Asset | None:
    """The asset with its variants, or None when it is absent or not deliverable.

    An :class:`Asset` whose variants are loaded is used as it is (no query), as
    :meth:`rindle.Rindle.urls` does, unless it was caught before promotion finished (what
    ``app.upload`` returns: it may be promoted by now); an id, or an Asset without its
    variants, is read (one query for the asset, one for its variants).
    """
    if asset is None:
        return None
    if isinstance(asset, Asset) and "variant_rows" in vars(asset) \
            and asset.state not in BEFORE_PROMOTION:
        row = asset
    else:
        try:
            row = get_asset(app.db, asset.id if isinstance(asset, Asset) else asset)
        except NotFound:
            return None
    return row if row.state in _DELIVERABLE else None


@dataclass(frozen=True)
class _Ready:
    name: str
    spec: VariantSpec
    row: Variant
    url: str
    width: int | None  # recorded, else declared
    height: int | None


def _url(app: HtmlHost, asset: Asset, variant: str | None, actor: object) -> str | None:
    """The URL ``app.urls`` signs for ``asset`` (or its ``variant``), when safe to write
    (:func:`safe_url`); ``asset`` carries its loaded variants, so signing reads nothing.
    ``actor`` is what a ``[delivery] authorizer`` decides for."""
    url = app.urls([asset], variant, actor=actor).get(asset.id)
    return None if url is None else safe_url(url)


def _ready(app: HtmlHost, asset: Asset, profile: type[Profile], names: Sequence[str],
           output_kind: str, actor: object = None) -> list[_Ready]:
    """The named variants that are ready, with a safe URL each (declared order)."""
    specs = dict(profile.variant_specs())
    rows = asset.variants
    out: list[_Ready] = []
    for name in names:
        spec = specs.get(name)
        if spec is None:
            raise unknown_variant(profile, name)
        if spec.output_kind != output_kind:
            raise UsageError(f"variant {name!r} of profile {profile.name!r} is "
                             f"{spec.output_kind}, not {output_kind}; name {output_kind} "
                             "variants here")
        row = rows.get(name)
        if row is None or row.state != "ready" or not row.storage_key:
            continue
        url = _url(app, asset, name, actor)
        if url is None:
            continue
        width = row.width or getattr(spec, "width", None)
        height = row.height if row.width else None
        out.append(_Ready(name, spec, row, url, width, height))
    return out


def _original(app: HtmlHost, asset: Asset, accept: str, actor: object = None) -> str | None:
    """The original's URL when its recorded type starts with ``accept``."""
    ctype = (asset.content_type or "").split(";", 1)[0].strip().lower()
    if accept == "image/" and ctype not in _INLINE_IMAGES:
        return None
    if not ctype.startswith(accept):
        return None
    return _url(app, asset, None, actor)


def _scaled(asset: Asset, width: int | None, height: int | None
            ) -> tuple[int | None, int | None]:
    """``(width, height)`` for layout: recorded, else the asset's aspect at ``width``."""
    if width is None:
        return asset.width, asset.height
    if height is None and asset.width and asset.height:
        height = max(1, round(asset.height * width / asset.width))
    return width, height


def _srcset_url(url: str) -> str:
    """A URL safe inside ``srcset``, where spaces and commas separate candidates."""
    return url.replace(" ", "%20").replace(",", "%2C")


def _srcset(items: Sequence[_Ready]) -> str | None:
    seen: set[int] = set()
    parts: list[str] = []
    for item in sorted((i for i in items if i.width), key=lambda i: i.width or 0):
        assert item.width is not None
        if item.width in seen:
            continue
        seen.add(item.width)
        parts.append(f"{_srcset_url(item.url)} {item.width}w")
    return ", ".join(parts) or None


def _names(variants: str | Iterable[str]) -> list[str]:
    return [variants] if isinstance(variants, str) else list(variants)


# --- the helpers ----------------------------------------------------------------------------

def picture(app: HtmlHost, asset: AssetRef, variants: str | Iterable[str], *,
            sizes: str | None = None, alt: str = "", actor: object = None, **attrs: object
            ) -> HTML:
    """A ``<picture>`` of the ready image variants ``variants`` of ``asset``.

    ``srcset`` lists each ready variant's URL with its width (``url 320w``); ``sizes`` is
    written as given (the browser assumes ``100vw`` without it); ``width``/``height`` come
    from the largest variant on the ``<img>``; ``alt`` is always written (``alt=""`` marks a
    decorative image). ``attrs`` become attributes of the ``<img>`` (``class_="x"`` ->
    ``class="x"``, ``loading="lazy"``, ``data_id=3`` -> ``data-id="3"``; ``True`` writes a
    bare attribute, ``None``/``False`` none); ``width``/``height`` given there replace the
    computed ones.

    Falls back to the original (a raster image) when none of the variants is ready, and to
    an empty string when there is nothing to show (see the module docstring). Raises
    :class:`~rindle.errors.NotFound` for a variant the profile does not declare and
    :class:`~rindle.errors.UsageError` for one that is not an image, an attribute name that
    is not one (or an ``on...`` event handler), or ``src``/``srcset``/``sizes``/``alt`` in
    ``attrs``.
    """
    row = _load(app, asset)
    names = _names(variants)
    overrides = {k: attrs.pop(k) for k in ("width", "height") if k in attrs}
    extra = _extra(attrs, ("src", "srcset", "sizes", "alt"))
    if row is None:
        return HTML("")
    ready = _ready(app, row, app.profile(row.profile), names, "image", actor)
    if not ready:
        url = _original(app, row, "image/", actor)
        if url is None:
            return HTML("")
        width, height = overrides.get("width", row.width), overrides.get("height", row.height)
        img = _tag("img", [("src", url), ("alt", alt), ("width", width),
                           ("height", height), *extra])
        return HTML(f"<picture>{img}</picture>")
    groups: dict[str, list[_Ready]] = {}
    for item in ready:
        ctype = (item.row.content_type or "").split(";", 1)[0].strip().lower()
        groups.setdefault(ctype, []).append(item)
    fallback = min(groups, key=lambda t: _IMG_ORDER.index(t) if t in _IMG_ORDER
                   else len(_IMG_ORDER))
    sources = sorted((t for t in groups if t != fallback),
                     key=lambda t: _SOURCE_ORDER.index(t) if t in _SOURCE_ORDER
                     else len(_SOURCE_ORDER))
    html_parts = ["<picture>"]
    for ctype in sources:
        srcset = _srcset(groups[ctype])
        if srcset is not None:
            html_parts.append(_tag("source", [("type", ctype or None), ("srcset", srcset),
                                              ("sizes", sizes)]))
    main = groups[fallback]
    largest = max(main, key=lambda i: i.width or 0)
    width, height = _scaled(row, largest.width, largest.height)
    srcset = _srcset(main)
    html_parts.append(_tag("img", [
        ("src", largest.url), ("srcset", srcset), ("sizes", sizes if srcset else None),
        ("alt", alt), ("width", overrides.get("width", width)),
        ("height", overrides.get("height", height)), *extra]))
    html_parts.append("</picture>")
    return HTML("".join(html_parts))


def _playback(app: HtmlHost, asset: Asset, profile: type[Profile]) -> PlaybackURL | None:
    """The provider's playback URL when the profile streams and the stream is playable;
    None otherwise (not ready, errored, drifted: the page plays the progressive sources)."""
    if profile.delivery.streaming is None:
        return None
    streaming = getattr(app, "streaming", None)
    if streaming is None:
        return None
    try:
        result: PlaybackURL = streaming.playback_url(asset.id)
    except StreamingError:
        return None
    return result


def _av_variants(profile: type[Profile], kind: str) -> list[str]:
    return [name for name, spec in profile.variant_specs() if spec.output_kind == kind]


def video(app: HtmlHost, asset: AssetRef, sources: str | Iterable[str] | None = None, *,
          poster: str | None = None, controls: bool = True, preload: str = "metadata",
          actor: object = None, **attrs: object) -> HTML:
    """A ``<video>`` with one ``<source>`` per playable rendition of ``asset``.

    Order: the streaming provider's playback URL (HLS, typed ``application/x-mpegURL`` or
    what the provider says) when the profile streams and the stream is playable, then the
    ready video variants ``sources`` (default: every video variant of the profile, largest
    first), else the original when it is a video. ``poster`` names an image variant (default:
    the profile's first ready ``video_poster_scene`` variant); it is written only when
    ready. ``width``/``height`` come from the largest ready video variant, else the asset.
    ``attrs`` as in :func:`picture`. An empty string when nothing is playable.
    """
    row = _load(app, asset)
    extra = _extra(attrs, ("src", "poster", "controls", "preload"))
    if row is None:
        return HTML("")
    profile = app.profile(row.profile)
    names = _names(sources) if sources is not None else _av_variants(profile, "video")
    ready = _ready(app, row, profile, names, "video", actor)
    if sources is None:  # the profile's own order: largest first
        ready.sort(key=lambda i: -(i.width or 0))
    inner: list[str] = []
    stream = _playback(app, row, profile)
    if stream is not None and safe_url(stream.url) is not None:
        inner.append(_tag("source", [("src", stream.url), ("type", stream.mime)]))
    for item in ready:
        inner.append(_tag("source", [("src", item.url), ("type", item.row.content_type)]))
    if not ready:
        original = _original(app, row, "video/", actor)
        if original is not None:
            inner.append(_tag("source", [("src", original), ("type", row.content_type)]))
    if not inner:
        return HTML("")
    poster_names = [poster] if poster is not None else [
        name for name, spec in profile.variant_specs()
        if getattr(spec, "preset", None) == "video_poster_scene"]
    posters = _ready(app, row, profile, poster_names, "image", actor)
    width, height = _scaled(row, ready[0].width, ready[0].height) if ready else (
        row.width, row.height)
    open_tag = _tag("video", [("controls", controls), ("preload", preload),
                              ("poster", posters[0].url if posters else None),
                              ("width", width), ("height", height), *extra])
    return HTML(open_tag + "".join(inner) + "</video>")


def audio(app: HtmlHost, asset: AssetRef, sources: str | Iterable[str] | None = None, *,
          controls: bool = True, preload: str = "metadata", actor: object = None,
          **attrs: object) -> HTML:
    """An ``<audio>`` with one ``<source>`` per ready audio variant ``sources`` (default:
    every audio variant of the profile, in name order), else the original when it is
    audio; an empty string when nothing is playable. ``attrs`` as in :func:`picture`."""
    row = _load(app, asset)
    extra = _extra(attrs, ("src", "controls", "preload"))
    if row is None:
        return HTML("")
    profile = app.profile(row.profile)
    names = _names(sources) if sources is not None else _av_variants(profile, "audio")
    inner = [_tag("source", [("src", item.url), ("type", item.row.content_type)])
             for item in _ready(app, row, profile, names, "audio", actor)]
    if not inner:
        original = _original(app, row, "audio/", actor)
        if original is None:
            return HTML("")
        inner.append(_tag("source", [("src", original), ("type", row.content_type)]))
    open_tag = _tag("audio", [("controls", controls), ("preload", preload), *extra])
    return HTML(open_tag + "".join(inner) + "</audio>")


def register_jinja(env: Any, app: HtmlHost) -> None:
    """Add the helpers to the Jinja2 environment ``env``, bound to ``app``.

    Globals ``picture(asset, variants, ...)``, ``video(asset, ...)``, ``audio(asset, ...)``
    and ``media_url(asset, variant=None)``; the same four as filters
    (``{{ asset | picture("thumb", alt=title) }}``). Their output is :class:`HTML`, which
    autoescaping leaves as it is; ``media_url`` returns a plain string, which it escapes.
    """
    def _picture(asset: AssetRef, variants: str | Iterable[str], **kw: Any) -> HTML:
        return picture(app, asset, variants, **kw)

    def _video(asset: AssetRef, sources: str | Iterable[str] | None = None, **kw: Any
               ) -> HTML:
        return video(app, asset, sources, **kw)

    def _audio(asset: AssetRef, sources: str | Iterable[str] | None = None, **kw: Any
               ) -> HTML:
        return audio(app, asset, sources, **kw)

    def _media_url(asset: AssetRef, variant: str | None = None, actor: object = None) -> str:
        row = _load(app, asset)
        if row is None:
            return ""
        return _url(app, row, variant, actor) or ""

    helpers = {"picture": _picture, "video": _video, "audio": _audio,
               "media_url": _media_url}
    env.globals.update(helpers)
    env.filters.update(helpers)
