"""RS256 JSON Web Tokens for Mux signed playback, with the ``cryptography`` package.

Mux signs playback with a per-environment RSA key. The dashboard hands it out as base64
of a PEM; rindle accepts PKCS#1 (``BEGIN RSA PRIVATE KEY``) or PKCS#8 (``BEGIN PRIVATE
KEY``) PEM text, or base64 of either. Key material never appears in an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rindle.errors import ConfigError

__all__ = ["b64url", "load_signing_key", "sign_jwt", "sign_playback_token"]


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_signing_key(text: str) -> rsa.RSAPrivateKey:
    """Parse an RSA private key from PEM text or base64 of PEM.

    Raises :class:`ConfigError` naming only the problem (never the key): not PEM, not
    base64 of PEM, not an RSA key.
    """
    raw = text.strip()
    if not raw.startswith("-----BEGIN"):
        try:
            raw = base64.b64decode("".join(raw.split()), validate=True).decode("ascii").strip()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise ConfigError("mux signing_private_key is neither PEM nor base64 of a PEM; "
                              "paste the key from the Mux dashboard as given") from None
    try:
        key = serialization.load_pem_private_key(raw.encode("ascii"), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"mux signing_private_key does not parse as a PEM private key "
                          f"({type(exc).__name__})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("mux signing_private_key is not an RSA key; Mux signs with RS256")
    return key


def sign_jwt(claims: dict[str, Any], key: rsa.RSAPrivateKey, *, kid: str) -> str:
    """``header.claims.signature`` with header ``{"typ":"JWT","alg":"RS256","kid":kid}``."""
    header = {"typ": "JWT", "alg": "RS256", "kid": kid}
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":"), sort_keys=True).encode("utf-8"))
        for part in (header, claims))
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def sign_playback_token(playback_id: str, *, key: rsa.RSAPrivateKey, key_id: str,
                        expires_in: int, audience: str = "v", now: float | None = None
                        ) -> str:
    """The playback JWT: ``sub`` = playback id, ``aud`` (``v`` video), ``exp`` = now + ttl."""
    issued = int(time.time() if now is None else now)
    return sign_jwt({"sub": playback_id, "aud": audience, "exp": issued + int(expires_in)},
                    key, kid=key_id)
