"""CloudFront signed URLs with a canned policy, as CloudFront's developer guide specifies
("Creating a signed URL using a canned policy").

The policy is the JSON ``{"Statement":[{"Resource":URL,"Condition":{"DateLessThan":
{"AWS:EpochTime":EXPIRES}}}]}`` with no whitespace; its RSA-SHA1 (PKCS#1 v1.5) signature,
base64-encoded with ``+`` -> ``-``, ``=`` -> ``_`` and ``/`` -> ``~``, travels in the URL as
``Signature`` beside ``Expires`` and ``Key-Pair-Id``. The private key never leaves this
object: not in its repr, not in an error message.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rindle.errors import ConfigError

__all__ = ["CloudFrontSigner", "canned_policy", "cloudfront_b64"]

_SUBSTITUTIONS = bytes.maketrans(b"+=/", b"-_~")


def cloudfront_b64(data: bytes) -> str:
    """Base64 of ``data`` with CloudFront's URL-safe substitutions (``+`` -> ``-``,
    ``=`` -> ``_``, ``/`` -> ``~``)."""
    return base64.b64encode(data).translate(_SUBSTITUTIONS).decode("ascii")


def canned_policy(resource: str, expires: int) -> bytes:
    """The canned policy for ``resource`` valid until the epoch second ``expires``,
    byte-exact: compact JSON, keys in CloudFront's order, slashes not escaped."""
    statement = {"Resource": resource,
                 "Condition": {"DateLessThan": {"AWS:EpochTime": int(expires)}}}
    return json.dumps({"Statement": [statement]}, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


class CloudFrontSigner:
    """Signs URLs of one CloudFront distribution with one key (a trusted key group's
    public key id, or a legacy key pair id)."""

    def __init__(self, *, storage: str, domain: str, key_pair_id: str, private_key: str) -> None:
        """Check the settings; raises :class:`ConfigError` (naming the storage and the key,
        never the key's text) for a missing id, a domain with a path or query, or a PEM
        that is not an unencrypted RSA private key."""
        if not key_pair_id or not isinstance(key_pair_id, str):
            raise ConfigError(f"storage {storage!r}: cloudfront_domain needs "
                              "cloudfront_key_pair_id (the public key's id in CloudFront)")
        base = domain.strip().rstrip("/")
        if "://" not in base:
            base = "https://" + base
        parts = urlsplit(base)
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.path or \
                parts.query or parts.fragment:
            raise ConfigError(f"storage {storage!r}: cloudfront_domain must be a host name "
                              "such as d111111abcdef8.cloudfront.net (or https://media."
                              "example.com), without a path or query")
        self.base_url = base
        self.key_pair_id = key_pair_id
        try:
            key = serialization.load_pem_private_key(private_key.encode("utf-8"), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            key = None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError(f"storage {storage!r}: cloudfront_private_key is not an "
                              "unencrypted RSA private key in PEM form; use the private half "
                              "of the key pair whose public key CloudFront holds (PKCS#1 or "
                              "PKCS#8, without a passphrase)")
        self._key = key

    def __repr__(self) -> str:
        return f"<CloudFrontSigner {self.base_url}>"

    def resource(self, path: str, query: str = "") -> str:
        """The URL of ``path`` (an object name, percent-encoded here) on the distribution,
        with ``query`` (already encoded) if any."""
        url = f"{self.base_url}/{quote(path, safe='/~')}"
        return f"{url}?{query}" if query else url

    def signature(self, resource: str, expires: int) -> str:
        """The ``Signature`` value for ``resource`` until ``expires`` (epoch seconds)."""
        raw = self._key.sign(canned_policy(resource, expires), padding.PKCS1v15(),
                             hashes.SHA1())  # CloudFront specifies SHA1 for canned policies
        return cloudfront_b64(raw)

    def sign(self, resource: str, expires: int) -> str:
        """``resource`` with ``Expires``, ``Signature`` and ``Key-Pair-Id`` appended."""
        joiner = "&" if "?" in resource else "?"
        return (f"{resource}{joiner}Expires={int(expires)}"
                f"&Signature={self.signature(resource, expires)}"
                f"&Key-Pair-Id={quote(self.key_pair_id, safe='')}")
