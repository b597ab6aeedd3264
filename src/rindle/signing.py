"""HMAC tokens for URLs served by rindle itself (local storage GET and PUT).

A token binds the method, the object key, the expiry, the content disposition and an
optional size cap. Verification is constant-time and refuses expired tokens. An expiry of
``0`` (:data:`NEVER`) means the token never expires (URLs of public profiles).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["NEVER", "SignedClaims", "TokenInvalid", "open_payload", "sign", "sign_payload",
           "verify"]

#: The ``expires`` value of a token that never expires.
NEVER = 0

#: The only accepted shape: unpadded URL-safe base64 payload, ".", unpadded MAC (32 bytes).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{2,16384}\.[A-Za-z0-9_-]{43}")


class TokenInvalid(Exception):
    """The token is malformed, tampered with, for another request, or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignedClaims:
    """What a valid token grants.

    ``expires`` is a Unix time in seconds, or :data:`NEVER` (``0``). ``disposition`` is
    ``attachment``/``inline`` or a complete ``Content-Disposition`` value; ``max_bytes`` and
    ``content_type`` constrain a PUT.
    """

    method: str
    key: str
    expires: int
    disposition: str | None = None
    max_bytes: int | None = None
    content_type: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


#: The MAC domain of delivery URL tokens.
_URL_DOMAIN = "rindle:url:v1"


def _mac(secret: str, payload: bytes, domain: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), domain + b"\x00" + payload, hashlib.sha256).digest()


def sign_payload(secret: str, domain: str, body: dict[str, Any]) -> str:
    """A URL-safe token carrying the JSON object ``body``, MACed under ``domain`` (e.g.
    ``"rindle:events:v1"``): a token made for one domain never opens in another."""
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return f"{_b64(payload)}.{_b64(_mac(secret, payload, domain.encode('ascii')))}"


def open_payload(secret: str, domain: str, token: str) -> dict[str, Any]:
    """The JSON object a :func:`sign_payload` token of ``domain`` carries.

    The shape is checked first (one spelling per token: canonical unpadded base64, so no
    two strings open the same token), then the MAC in constant time, and only then is the payload
    parsed. Raises :class:`TokenInvalid` with reason ``malformed`` or ``bad_signature``;
    checking what the object grants (and its expiry) is the caller's job.
    """
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise TokenInvalid("malformed")
    try:
        payload_b64, mac_b64 = token.split(".", 1)
        payload = _unb64(payload_b64)
        mac = _unb64(mac_b64)
    except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
        raise TokenInvalid("malformed") from exc
    if _b64(payload) != payload_b64 or _b64(mac) != mac_b64:  # unused low bits set
        raise TokenInvalid("malformed")
    if not hmac.compare_digest(mac, _mac(secret, payload, domain.encode("ascii"))):
        raise TokenInvalid("bad_signature")
    try:
        body = json.loads(payload)
    except ValueError as exc:
        raise TokenInvalid("malformed") from exc
    if not isinstance(body, dict):
        raise TokenInvalid("malformed")
    return body


def sign(secret: str, claims: SignedClaims) -> str:
    """Return a URL-safe token for ``claims``."""
    body: dict[str, Any] = {"m": claims.method, "k": claims.key, "e": claims.expires}
    if claims.disposition is not None:
        body["d"] = claims.disposition
    if claims.max_bytes is not None:
        body["b"] = claims.max_bytes
    if claims.content_type is not None:
        body["t"] = claims.content_type
    return sign_payload(secret, _URL_DOMAIN, body)


def verify(secret: str, token: str, *, method: str, key: str, now: float | None = None
           ) -> SignedClaims:
    """Return the claims of ``token`` if it is authentic, for this method and key, and unexpired.

    The MAC is compared in constant time before the payload is parsed. A token whose
    ``expires`` is :data:`NEVER` never expires. Raises :class:`TokenInvalid` with reason
    ``malformed``, ``bad_signature``, ``wrong_request`` or ``expired``.
    """
    body = open_payload(secret, _URL_DOMAIN, token)  # one spelling per token
    try:
        claims = SignedClaims(method=body["m"], key=body["k"], expires=int(body["e"]),
                              disposition=body.get("d"), max_bytes=body.get("b"),
                              content_type=body.get("t"))
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenInvalid("malformed") from exc
    if claims.method != method or claims.key != key:
        raise TokenInvalid("wrong_request")
    if claims.expires != NEVER and claims.expires < (time.time() if now is None else now):
        raise TokenInvalid("expired")
    return claims
