"""The profile and sample image the S3 and GCS create-only tests share."""

from __future__ import annotations

import io

from PIL import Image

from rindle import Delivery, Profile, variants


class Photo(Profile):
    name = "photo"
    allow_mime = ("image/jpeg", "image/png")
    max_bytes = 2 * 1024 * 1024
    variants = {"thumb": variants.Image(mode="fill", width=16, height=16, format="webp")}
    delivery = Delivery(public=False, signed_url_ttl=300)


def jpeg(colour: str = "purple", size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()
