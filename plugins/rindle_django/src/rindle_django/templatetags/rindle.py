"""``{% load rindle %}``: ``rindle_picture``, ``rindle_video``, ``rindle_audio``, ``rindle_url``.

Each takes a :class:`rindle_django.fields.RindleFile` (``obj.avatar``), an asset, an asset
id or None, and returns the markup of :mod:`rindle.html` (every value escaped; an empty
string when there is nothing to show)::

    {% rindle_picture obj.avatar "thumb" sizes="(max-width: 600px) 100vw, 600px" alt="" %}
    {% rindle_video obj.clip %}   {% rindle_audio obj.track %}
    <a href="{% rindle_url obj.avatar %}">original</a>
"""

from __future__ import annotations

from typing import Any

from django import template

from rindle import html
from rindle.errors import NotFound
from rindle_django.conf import get_app
from rindle_django.fields import RindleFile

register = template.Library()


def _ref(value: Any) -> Any:
    if isinstance(value, RindleFile):
        return value.asset_id
    return value or None


@register.simple_tag
def rindle_picture(value: Any, variants: str, **attrs: Any) -> str:
    """A ``<picture>`` of the ready image variants (comma-separated names allowed)."""
    names = [n.strip() for n in variants.split(",") if n.strip()]
    return html.picture(get_app(), _ref(value), names, **attrs)


@register.simple_tag
def rindle_video(value: Any, sources: str | None = None, **attrs: Any) -> str:
    """A ``<video>`` of the playable renditions (``sources``: comma-separated names)."""
    names = [n.strip() for n in sources.split(",") if n.strip()] if sources else None
    return html.video(get_app(), _ref(value), names, **attrs)


@register.simple_tag
def rindle_audio(value: Any, sources: str | None = None, **attrs: Any) -> str:
    """An ``<audio>`` of the ready audio variants (``sources``: comma-separated names)."""
    names = [n.strip() for n in sources.split(",") if n.strip()] if sources else None
    return html.audio(get_app(), _ref(value), names, **attrs)


@register.simple_tag
def rindle_url(value: Any, variant: str | None = None) -> str:
    """The delivery URL of the original or of ``variant``; "" for no asset and for one that
    is not delivered (not promoted yet, quarantined, deleted)."""
    ref = _ref(value)
    if ref is None:
        return ""
    try:
        return get_app().url(ref, variant)
    except NotFound:  # AssetNotReady included
        return ""
