"""The test app's rindle profiles."""

from rindle import Profile, variants


class Photo(Profile):
    """A photo: JPEG or PNG up to 2 MB, with a 64-pixel square thumbnail."""

    name = "photo"
    allow_mime = ("image/jpeg", "image/png")
    max_bytes = 2 * 1024 * 1024
    variants = {"thumb": variants.Image(mode="fill", width=64, height=64)}


class Shot(Profile):
    """One shot of a gallery (a collection)."""

    name = "shot"
    allow_mime = ("image/jpeg", "image/png")
    collection = True
