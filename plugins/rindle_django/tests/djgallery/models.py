"""The test app's models: a photo (one asset) and an album (a collection)."""

from django.db import models
from rindle_django.fields import RindleCollectionField, RindleField


class Photo(models.Model):
    """A titled photo."""

    title = models.CharField(max_length=100)
    image = RindleField(profile="photo")

    def __str__(self) -> str:
        return self.title


class Album(models.Model):
    """An ordered album of shots."""

    name = models.CharField(max_length=100)
    shots = RindleCollectionField(profile="shot")
