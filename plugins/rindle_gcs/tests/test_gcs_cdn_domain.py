"""Delivery through a hostname bound to the bucket (``cdn_domain``): V4 signed URLs on that
host whose signature covers it, verified with the service account's public key exactly as
GCS does; tamper cases; plain URLs for public objects; settings errors; ``app.url`` on
SQLite and PostgreSQL."""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from conftest import CLIENT_EMAIL
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rindle import Delivery, Profile, Rindle, variants
from rindle.errors import ConfigError
from rindle.testing.lifecycle import jpeg
from rindle_gcs import GCSStorage

CDN = "media.example.com"


def verify(url: str, key: rsa.RSAPrivateKey) -> dict[str, str]:
    """GCS's V4 check, written out from its documentation: rebuild the canonical request
    from the URL (host from the URL itself) and verify X-Goog-Signature with the public key.
    Returns the query parameters; raises InvalidSignature (or AssertionError) otherwise."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(pairs)
    assert params["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert params["X-Goog-SignedHeaders"] == "host"
    signature = binascii.unhexlify(params["X-Goog-Signature"])
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(pairs) if k != "X-Goog-Signature")
    canonical = "\n".join(["GET", parts.path, canonical_query, f"host:{parts.netloc}", "",
                           "host", "UNSIGNED-PAYLOAD"])
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    to_sign = "\n".join(["GOOG4-RSA-SHA256", params["X-Goog-Date"], scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key.public_key().verify(signature, to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    return params


def cdn_store(gcs_settings: dict[str, str], **extra: Any) -> GCSStorage:
    settings = {k: v for k, v in gcs_settings.items() if k != "backend"}
    return GCSStorage(name="media", **{**settings, "cdn_domain": CDN, **extra})


def test_signed_url_is_on_the_bound_host_and_verifies(gcs_settings: dict[str, str],
                                                     rsa_key: rsa.RSAPrivateKey) -> None:
    store = cdn_store(gcs_settings, prefix="p")
    name = "photo/01 über/#1.jpg"
    url = store.url(name, expires_in=600, disposition='attachment; filename="a b.jpg"',
                    content_type="image/jpeg")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", CDN)
    assert parts.path == "/p/" + quote(name, safe="/~")  # the object name is the whole path
    params = verify(url, rsa_key)
    assert params["X-Goog-Expires"] == "600"
    assert params["X-Goog-Credential"].startswith(CLIENT_EMAIL + "/")
    assert params["response-content-disposition"] == 'attachment; filename="a b.jpg"'
    assert params["response-content-type"] == "image/jpeg"


@pytest.mark.parametrize("tamper", [
    lambda u: u.replace(CDN, "storage.googleapis.com"),
    lambda u: u.replace(CDN, "evil.example.com"),
    lambda u: u.replace("/p/a.jpg", "/p/b.jpg"),
    lambda u: u.replace("X-Goog-Expires=600", "X-Goog-Expires=601"),
    lambda u: u.replace("response-content-type=image%2Fjpeg", "response-content-type=text%2Fhtml"),
], ids=["api-host", "other-host", "object", "expiry", "served-type"])
def test_a_tampered_url_fails_verification(gcs_settings: dict[str, str],
                                           rsa_key: rsa.RSAPrivateKey, tamper: Any) -> None:
    url = cdn_store(gcs_settings, prefix="p").url("a.jpg", expires_in=600,
                                                   content_type="image/jpeg")
    forged = tamper(url)
    assert forged != url
    with pytest.raises(InvalidSignature):
        verify(forged, rsa_key)


def test_plain_url_and_settings_forms(gcs_settings: dict[str, str]) -> None:
    store = cdn_store(gcs_settings, cdn_domain=f"https://{CDN}/")
    assert store.url("a b.jpg") == f"https://{CDN}/a%20b.jpg"
    assert store.describe()["cdn_domain"] == f"https://{CDN}"
    assert cdn_store(gcs_settings, cdn_domain=f"http://{CDN}:8080").url("x") == (
        f"http://{CDN}:8080/x")


@pytest.mark.parametrize("bad", [f"https://{CDN}/media", f"{CDN}?x=1", "ftp://x.example",
                                 "https://user@x.example", "https://"])
def test_bad_cdn_domain_is_a_config_error(gcs_settings: dict[str, str], bad: str) -> None:
    with pytest.raises(ConfigError, match="cdn_domain must be a host name bound to the bucket"):
        cdn_store(gcs_settings, cdn_domain=bad)


class Poster(Profile):
    name = "poster"
    allow_mime = ("image/jpeg",)
    variants = {"small": variants.Image(mode="fit", width=16, height=16, format="jpeg")}
    delivery = Delivery(public=False, signed_url_ttl=300)


def test_app_delivers_private_assets_on_the_cdn_domain(make_app: Callable[..., Rindle],
                                                      gcs_settings: dict[str, str],
                                                      rsa_key: rsa.RSAPrivateKey) -> None:
    app = make_app(storages={"default": {**gcs_settings, "cdn_domain": CDN}},
                   profiles=[Poster], load_entrypoints=True)
    asset = app.upload("poster", jpeg((64, 48)), filename="p.jpg")
    app.worker(cron=False).run_until_empty(timeout=60)
    url = app.url(asset.id, "small")
    params = verify(url, rsa_key)
    assert urlsplit(url).netloc == CDN and urlsplit(url).path.startswith("/poster/")
    assert int(params["X-Goog-Expires"]) >= 300  # at least the profile's ttl
