"""Admin of the test app."""

from django.contrib import admin
from rindle_django.admin import RindleAdminMixin

from djgallery.models import Photo


@admin.register(Photo)
class PhotoAdmin(RindleAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Photos with their thumbnail in the list."""

    list_display = ["title", "rindle_thumbnail"]
    rindle_thumbnail_variant = "thumb"
