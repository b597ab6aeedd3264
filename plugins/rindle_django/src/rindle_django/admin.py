"""Admin integration: a thumbnail column in the change list, state and variants on the form.

::

    from rindle_django.admin import RindleAdminMixin

    @admin.register(Photo)
    class PhotoAdmin(RindleAdminMixin, admin.ModelAdmin):
        list_display = ["title", "rindle_thumbnail"]
        rindle_thumbnail_variant = "thumb"

``rindle_thumbnail`` shows the first :class:`~rindle_django.fields.RindleField` of the row
as an ``<img>`` of ``rindle_thumbnail_variant`` (the original until that variant is ready);
the change form gains a read-only ``rindle_media`` block listing, for every rindle field,
the asset's state, file name, size in pixels and each variant with its state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.db import models
from django.utils.html import format_html, format_html_join

from rindle.errors import NotFound
from rindle_django.conf import get_app
from rindle_django.fields import RindleField, RindleFile

__all__ = ["RindleAdminMixin", "RindleModelAdmin"]


_THUMB = "_rindle_thumbnail_url"

if TYPE_CHECKING:
    from django.contrib.admin.views.main import ChangeList
    from django.http import HttpRequest

    # The mixin works for any model. Type checkers see it as the ModelAdmin it is mixed
    # into, so its super() calls are checked; at runtime ModelAdmin is not subscriptable
    # and the mixin stays a plain class.
    _MixinBase = admin.ModelAdmin[models.Model]
    _ModelAdmin = admin.ModelAdmin[models.Model]
else:
    _MixinBase = object
    _ModelAdmin = admin.ModelAdmin


def _fields(model: type[models.Model]) -> list[RindleField]:
    return [f for f in model._meta.get_fields() if isinstance(f, RindleField)]


def _state(handle: RindleFile) -> str:
    try:
        return handle.state
    except NotFound:
        return "missing"


class RindleAdminMixin(_MixinBase):
    """Mix into a ``ModelAdmin`` before it (see the module docstring)."""

    #: The variant the change list shows; None shows the original.
    rindle_thumbnail_variant: str | None = None
    #: Pixel height of the change-list thumbnail.
    rindle_thumbnail_height = 48

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None
                            ) -> list[str]:
        """The ModelAdmin's read-only fields plus ``rindle_media`` on an existing row."""
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and "rindle_media" not in fields:
            fields.append("rindle_media")
        return fields

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        """The change list, with the thumbnail URLs of its page read in one query
        (``app.urls``) instead of one per row."""
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        if rows:
            fields = _fields(type(rows[0]))
            if fields:
                held = {row.pk: getattr(row, fields[0].name) for row in rows}
                ids = [h.asset_id for h in held.values() if isinstance(h, RindleFile)]
                urls = get_app().urls(ids, self.rindle_thumbnail_variant) if ids else {}
                for row in rows:
                    handle = held[row.pk]
                    if isinstance(handle, RindleFile) and handle.asset_id in urls:
                        row.__dict__[_THUMB] = urls[handle.asset_id]
        return changelist

    @admin.display(description="media")
    def rindle_thumbnail(self, obj: models.Model) -> str:
        """An ``<img>`` of the row's first rindle asset, or "-" when it has none."""
        for field in _fields(type(obj)):
            handle = getattr(obj, field.name)
            if isinstance(handle, RindleFile):
                try:
                    url = obj.__dict__.get(_THUMB) or handle.url(self.rindle_thumbnail_variant)
                except NotFound:  # AssetNotReady included
                    return format_html('<span class="rindle-state">{}</span>',
                                       _state(handle))
                return format_html('<img src="{}" alt="" height="{}" loading="lazy">', url,
                                   self.rindle_thumbnail_height)
        return "-"

    @admin.display(description="rindle")
    def rindle_media(self, obj: models.Model) -> str:
        """State, file name, pixel size and variant states of each rindle field."""
        rows = []
        for field in _fields(type(obj)):
            handle = getattr(obj, field.name)
            if not isinstance(handle, RindleFile):
                rows.append(format_html("<li><b>{}</b>: empty</li>", field.name))
                continue
            try:
                variants = format_html_join(", ", "{} ({})", handle.variants.items())
                size = (f"{handle.width}\u00d7{handle.height}"
                        if handle.width and handle.height else "")
                rows.append(format_html(
                    '<li><b>{}</b>: <span class="rindle-state">{}</span> {} {} '
                    "<br>variants: {}</li>", field.name, handle.state, handle.filename or "",
                    size, variants or "none"))
            except NotFound:
                rows.append(format_html("<li><b>{}</b>: asset {} not found</li>", field.name,
                                        handle.asset_id))
        return format_html("<ul>{}</ul>", format_html_join("", "{}", ((r,) for r in rows)))


class RindleModelAdmin(RindleAdminMixin, _ModelAdmin):
    """A ``ModelAdmin`` with :class:`RindleAdminMixin`."""
