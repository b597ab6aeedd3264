"""CloudFront signed URLs (canned policy, RSA-SHA1, CloudFront's base64): a known-answer
vector with a fixed test key and expiry, checked against botocore's independent signer and
verified with the public key; tamper tests; the settings and their errors; and delivery of
a real asset on SQLite and PostgreSQL through ``app.url``."""

from __future__ import annotations

import base64
import datetime as dt
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest
from botocore.signers import CloudFrontSigner as BotocoreSigner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from tests.apps import MakeApp

from rindle import Delivery, Profile, variants
from rindle.errors import ConfigError
from rindle.storage import BackendContext
from rindle.testing.lifecycle import jpeg
from rindle_s3 import S3Storage
from rindle_s3.cloudfront import CloudFrontSigner, canned_policy, cloudfront_b64

#: A 2048-bit RSA key made for these tests only (never a credential anywhere).
PEM = (Path(__file__).parent / "fixtures" / "cloudfront_test_key.pem").read_text()
KEY_ID = "K2JCJMDEHXQW5F"
DOMAIN = "d111111abcdef8.cloudfront.net"
EXPIRES = 1767225600  # 2026-01-01T00:00:00Z
RESOURCE = f"https://{DOMAIN}/photo/01/original.jpg"
POLICY = (b'{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/photo/01/'
          b'original.jpg","Condition":{"DateLessThan":{"AWS:EpochTime":1767225600}}}]}')
SIGNATURE = (
    "upbE2Qua0s~BXZf6~3RP3UEj0AOHbsb7oARxH5dW8hn4WYGNPqEcphtkh57Ot1qsBMrrt1S3ti47NwBdXVvFG-"
    "loeISbEoE2zxtvCFwdPNlKitIsSAI4-3cv~A3EKPMpPLoC0YjutWPJ9GIZ~SmyXbXMcAyqnmnJ8DMTkqtXv2RKM-"
    "M4bfx7oCM2oUIS5ZIbI8urp8ZmoAg2jDi1Rd6Myi9-bHAGtzReuhUluuxi-1iWxZ2S88ExNwR5oZrPe6dQwvIJVw"
    "J7wnq4PPtIHFUvYJGTEw~POX4v9lwnC0qrjTxpwC0rAAbU4c~Q09ErwF14ZpctBnyAu6xztR9Up45-eQ__")
PRIVATE_MARKERS = ("BEGIN RSA PRIVATE KEY", PEM.splitlines()[1][:24])


def private_key() -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(PEM.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def verify(url: str) -> tuple[str, int]:
    """What CloudFront checks: split the signed URL, rebuild the canned policy (written
    out here, independently of rindle_s3) and verify the signature with the public key.
    Returns (resource, expires); raises InvalidSignature (or AssertionError) otherwise."""
    cut = max(url.rfind("?Expires="), url.rfind("&Expires="))
    assert cut > 0, url
    resource, params = url[:cut], dict(parse_qsl(url[cut + 1:], keep_blank_values=True))
    assert list(params) == ["Expires", "Signature", "Key-Pair-Id"], params
    assert params["Key-Pair-Id"] == KEY_ID
    expires = int(params["Expires"])
    policy = ('{"Statement":[{"Resource":"' + resource + '","Condition":{"DateLessThan":'
              '{"AWS:EpochTime":' + str(expires) + "}}}]}").encode()
    raw = base64.b64decode(params["Signature"].translate(str.maketrans("-_~", "+=/")),
                           validate=True)
    private_key().public_key().verify(raw, policy, padding.PKCS1v15(), hashes.SHA1())
    return resource, expires


def signer() -> CloudFrontSigner:
    return CloudFrontSigner(storage="media", domain=DOMAIN, key_pair_id=KEY_ID, private_key=PEM)


# --- the known-answer vector -----------------------------------------------------------------


def test_canned_policy_is_byte_exact() -> None:
    assert canned_policy(RESOURCE, EXPIRES) == POLICY


def test_known_answer_signature() -> None:
    url = signer().sign(RESOURCE, EXPIRES)
    assert url == f"{RESOURCE}?Expires={EXPIRES}&Signature={SIGNATURE}&Key-Pair-Id={KEY_ID}"
    assert verify(url) == (RESOURCE, EXPIRES)


def test_botocore_signs_the_same_url() -> None:
    key = private_key()
    theirs = BotocoreSigner(KEY_ID, lambda m: key.sign(m, padding.PKCS1v15(), hashes.SHA1()))
    expected = theirs.generate_presigned_url(
        RESOURCE, date_less_than=dt.datetime.fromtimestamp(EXPIRES, dt.UTC))
    assert signer().sign(RESOURCE, EXPIRES) == expected


@pytest.mark.parametrize(("raw", "encoded"), [(b"\xfb\xff", "-~8_"), (b"\xff\xfe", "~~4_"),
                                              (b"abc", "YWJj")])
def test_cloudfront_base64_substitutions(raw: bytes, encoded: str) -> None:
    assert base64.b64encode(raw).decode() in ("+/8=", "//4=", "YWJj")
    assert cloudfront_b64(raw) == encoded


@pytest.mark.parametrize("tamper", [
    lambda u: u.replace(f"Expires={EXPIRES}", f"Expires={EXPIRES + 1}"),
    lambda u: u.replace("/photo/01/", "/photo/02/"),
    lambda u: u.replace(DOMAIN, "d222222abcdef8.cloudfront.net"),
    lambda u: u.replace("Signature=u", "Signature=v"),
    lambda u: u.replace("original.jpg", "original.jpg%3Fx=1"),
], ids=["expires", "path", "domain", "signature", "path-suffix"])
def test_a_tampered_url_fails_verification(tamper: Any) -> None:
    url = signer().sign(RESOURCE, EXPIRES)
    forged = tamper(url)
    assert forged != url
    with pytest.raises(InvalidSignature):
        verify(forged)


# --- the storage -----------------------------------------------------------------------------


def cf_storage(s3_settings: dict[str, str], **extra: Any) -> S3Storage:
    settings = {k: v for k, v in s3_settings.items() if k != "backend"}
    cloudfront = {"cloudfront_domain": DOMAIN, "cloudfront_key_pair_id": KEY_ID,
                  "cloudfront_private_key": PEM}
    return S3Storage(name="media", prefix="cdn", **{**settings, **cloudfront, **extra})


def test_storage_url_is_a_verifiable_cloudfront_url(s3_settings: dict[str, str]) -> None:
    storage = cf_storage(s3_settings)
    key = "photo/01 über/Ünïcode name #1.jpg"
    before = int(time.time())
    url = storage.url(key, expires_in=600, disposition='attachment; filename="a b.jpg"',
                      content_type="image/jpeg")
    after = int(time.time())
    resource, expires = verify(url)
    assert before + 600 <= expires <= after + 600
    assert resource == (f"https://{DOMAIN}/cdn/{quote(key, safe='/~')}"
                        "?response-content-disposition=attachment%3B%20filename%3D%22a%20b.jpg"
                        "%22&response-content-type=image%2Fjpeg")
    assert "#" not in resource and " " not in resource
    plain = storage.url("photo/x.jpg", expires_in=1)
    assert verify(plain)[0] == f"https://{DOMAIN}/cdn/photo/x.jpg"


def test_no_expiry_signs_for_seven_days_and_public_base_url_still_wins(
        s3_settings: dict[str, str]) -> None:
    storage = cf_storage(s3_settings, public_base_url="https://public.example")
    assert storage.url("a.jpg") == "https://public.example/cdn/a.jpg"
    before = int(time.time())
    _, expires = verify(storage.url("a.jpg", disposition="inline"))
    assert before + 7 * 24 * 3600 <= expires <= int(time.time()) + 7 * 24 * 3600


def test_the_private_key_is_never_shown(s3_settings: dict[str, str]) -> None:
    storage = cf_storage(s3_settings)
    shown = f"{storage!r} {storage.cloudfront!r} {storage.describe()}"
    assert storage.describe()["cloudfront"] == f"https://{DOMAIN}"
    for marker in (*PRIVATE_MARKERS, KEY_ID):
        assert marker not in shown


def test_key_file_resolves_against_the_settings_folder(s3_settings: dict[str, str],
                                                       tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "cf.pem").write_text(PEM)
    settings = {**{k: v for k, v in s3_settings.items() if k != "backend"},
                "cloudfront_domain": f"https://{DOMAIN}/", "cloudfront_key_pair_id": KEY_ID,
                "cloudfront_private_key_file": "keys/cf.pem"}
    context = BackendContext(secret_key="k", tmp_dir=tmp_path, base_dir=tmp_path)
    storage = S3Storage.from_settings("media", settings, context)
    assert verify(storage.url("a.jpg", expires_in=5))[0] == f"https://{DOMAIN}/a.jpg"


def _encrypted_pem() -> str:
    return private_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw")).decode()


def _ec_pem() -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


@pytest.mark.parametrize(("extra", "message"), [
    ({"cloudfront_domain": None}, "need cloudfront_domain"),
    ({"cloudfront_key_pair_id": None}, "needs cloudfront_key_pair_id"),
    ({"cloudfront_private_key": None}, "exactly one of cloudfront_private_key"),
    ({"cloudfront_private_key_file": "/nonexistent/cf.pem"}, "exactly one of"),
    ({"cloudfront_private_key": PEM.replace("MII", "XII", 1)}, "not an unencrypted RSA"),
    ({"cloudfront_private_key": "encrypted"}, "not an unencrypted RSA"),
    ({"cloudfront_private_key": "ec"}, "not an unencrypted RSA"),
    ({"cloudfront_domain": f"https://{DOMAIN}/media"}, "without a path or query"),
    ({"cloudfront_domain": "ftp://x.example"}, "without a path or query"),
])
def test_bad_cloudfront_settings_are_config_errors_without_the_key(
        s3_settings: dict[str, str], extra: dict[str, Any], message: str) -> None:
    if extra.get("cloudfront_private_key") == "encrypted":
        extra = {"cloudfront_private_key": _encrypted_pem()}
    elif extra.get("cloudfront_private_key") == "ec":
        extra = {"cloudfront_private_key": _ec_pem()}
    with pytest.raises(ConfigError) as err:
        cf_storage(s3_settings, **extra)
    assert message in err.value.message and "storage 'media'" in err.value.message
    for marker in PRIVATE_MARKERS:
        assert marker not in str(err.value)


def test_unreadable_key_file_is_a_config_error(s3_settings: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="cannot read cloudfront_private_key_file"):
        cf_storage(s3_settings, cloudfront_private_key=None,
                   cloudfront_private_key_file="/nonexistent/cf.pem")


def test_unknown_settings_are_still_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        S3Storage.from_settings("media", {"bucket": "b", "cloudfront_secret": "x"},
                                BackendContext(secret_key="k", tmp_dir=Path("."),
                                                               base_dir=Path(".")))


class Poster(Profile):
    name = "poster"
    allow_mime = ("image/jpeg",)
    variants = {"small": variants.Image(mode="fit", width=16, height=16, format="jpeg")}
    delivery = Delivery(public=False, signed_url_ttl=300)


def test_app_delivers_private_assets_through_cloudfront(make_app: MakeApp,
                                                        s3_settings: dict[str, str]) -> None:
    storage = {**s3_settings, "cloudfront_domain": DOMAIN, "cloudfront_key_pair_id": KEY_ID,
               "cloudfront_private_key": PEM}
    app = make_app(profiles=[Poster], storages={"default": storage}, load_entrypoints=True)
    asset = app.upload("poster", jpeg((64, 48)), filename="p.jpg")
    app.worker(cron=False).run_until_empty(timeout=60)
    before = int(time.time())
    resource, expires = verify(app.url(asset.id, "small"))
    assert resource.startswith(f"https://{DOMAIN}/poster/")
    # at least the profile's ttl; the delivery layer may round the expiry up (cacheable URLs)
    assert before + 300 <= expires < int(time.time()) + 300 + 24 * 3600
