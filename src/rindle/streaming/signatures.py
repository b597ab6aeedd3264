"""Timestamped HMAC-SHA256 webhook signatures (``t=<unix>,v1=<hex>[,v1=<hex>...]``).

Providers that sign webhooks this way (Mux, Stripe-style) call :func:`verify_signature`
with their header value and configured secrets. Rules:

* the first ``t`` piece is the timestamp (integer prefix), every ``v1`` piece a candidate;
* expected = lower-case hex HMAC-SHA256(secret, ``b"<t>." + body``), compared in constant
  time against every candidate;
* older than ``now - tolerance`` is rejected; as a documented hardening, so is a timestamp
  more than ``tolerance`` in the future;
* secrets are tried in order (newest first during rotation); the first match wins.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence

from rindle.errors import WebhookInvalid

__all__ = ["DEFAULT_TOLERANCE", "parse_signature_header", "sign", "verify_signature"]

DEFAULT_TOLERANCE = 300
_INT_PREFIX = re.compile(r"\s*(-?\d+)")


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The lower-case hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def parse_signature_header(value: str) -> tuple[int, list[str]]:
    """``(timestamp, [v1 signatures])``; raises :class:`WebhookInvalid` (``malformed_header``)
    without a parseable ``t`` or without any ``v1``."""
    timestamp: int | None = None
    seen_t = False
    candidates: list[str] = []
    for piece in value.split(","):
        key, sep, val = piece.strip().partition("=")
        if not sep:
            continue
        if key == "t" and not seen_t:
            seen_t = True
            match = _INT_PREFIX.match(val)
            timestamp = int(match.group(1)) if match else None
        elif key == "v1":
            candidates.append(val.strip())
    if timestamp is None:
        raise WebhookInvalid("malformed_header", "signature header has no usable t= timestamp")
    if not candidates:
        raise WebhookInvalid("malformed_header", "signature header has no v1= signature")
    return timestamp, candidates


def verify_signature(body: bytes, header: str | None, secrets: Sequence[str], *,
                     tolerance: int = DEFAULT_TOLERANCE, now: float | None = None) -> int:
    """Check ``header`` against ``body``; returns the index of the secret that verified.

    Raises :class:`WebhookInvalid` with reason ``no_secrets_configured``, ``missing_header``,
    ``malformed_header``, ``stale_timestamp`` or ``sig_mismatch``. The body is not parsed.
    """
    usable = [s for s in secrets if isinstance(s, str) and s]
    if not usable:
        raise WebhookInvalid("no_secrets_configured",
                             "no webhook secret is configured; set webhook_secrets")
    if not header:
        raise WebhookInvalid("missing_header", "the request has no signature header")
    timestamp, candidates = parse_signature_header(header)
    current = time.time() if now is None else now
    if timestamp < current - tolerance or timestamp > current + tolerance:
        raise WebhookInvalid("stale_timestamp",
                             f"signature timestamp is outside the {tolerance} s tolerance")
    for index, secret in enumerate(usable):
        expected = sign(body, secret, timestamp)
        for candidate in candidates:
            if len(candidate) == len(expected) and hmac.compare_digest(
                    candidate.encode("ascii", "replace"), expected.encode("ascii")):
                return index
    raise WebhookInvalid("sig_mismatch", "no configured secret matches the signature")
