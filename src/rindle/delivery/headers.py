"""Response headers every answer of rindle's own HTTP surfaces carries."""

from __future__ import annotations

from typing import Final

__all__ = ["SECURITY_HEADERS"]

#: Nothing served from rindle's origin can run script, load anything, be sniffed into
#: another type or leak its URL (a signed token) in a Referer.
SECURITY_HEADERS: Final[tuple[tuple[str, str], ...]] = (
    ("Content-Security-Policy", "default-src 'none'; sandbox"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
