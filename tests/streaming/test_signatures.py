"""Timestamped HMAC webhook signatures (no database)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from rindle.errors import WebhookInvalid
from rindle.streaming import parse_signature_header, sign, verify_signature

BODY = b'{"type":"ready"}'
NOW = 1_800_000_000


def _header(secret: str, ts: int = NOW, body: bytes = BODY) -> str:
    return f"t={ts},v1={sign(body, secret, ts)}"


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"k", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, "k", NOW) == expected


def test_the_first_matching_secret_index_is_returned() -> None:
    assert verify_signature(BODY, _header("new"), ["new", "old"], now=NOW) == 0
    assert verify_signature(BODY, _header("old"), ["new", "old"], now=NOW) == 1
    several = f"t={NOW},v1={'0' * 64},v1={sign(BODY, 'old', NOW)},v0=ignored"
    assert verify_signature(BODY, several, ["new", "old"], now=NOW) == 1


@pytest.mark.parametrize(("header", "secrets", "now", "reason"), [
    (None, ["s"], NOW, "missing_header"),
    ("", ["s"], NOW, "missing_header"),
    (_header("s"), [], NOW, "no_secrets_configured"),
    (_header("s"), [""], NOW, "no_secrets_configured"),
    (f"v1={sign(BODY, 's', NOW)}", ["s"], NOW, "malformed_header"),
    (f"t=abc,v1={sign(BODY, 's', NOW)}", ["s"], NOW, "malformed_header"),
    (f"t={NOW}", ["s"], NOW, "malformed_header"),
    (_header("s", NOW - 301), ["s"], NOW, "stale_timestamp"),
    (_header("s", NOW + 301), ["s"], NOW, "stale_timestamp"),
    (_header("other"), ["s"], NOW, "sig_mismatch"),
    (f"t={NOW},v1=abc", ["s"], NOW, "sig_mismatch"),
    (_header("s", body=b"{}"), ["s"], NOW, "sig_mismatch"),
])
def test_rejections(header: str | None, secrets: list[str], now: int, reason: str) -> None:
    with pytest.raises(WebhookInvalid) as info:
        verify_signature(BODY, header, secrets, now=now)
    assert info.value.reason == reason and info.value.code == "provider_webhook_invalid"
    assert "s" not in secrets or sign(BODY, "s", NOW) not in str(info.value)


def test_tolerance_edges_are_accepted() -> None:
    assert verify_signature(BODY, _header("s", NOW - 300), ["s"], now=NOW) == 0
    assert verify_signature(BODY, _header("s", NOW - 60), ["s"], tolerance=60, now=NOW) == 0


def test_parse_uses_the_first_t_and_every_v1() -> None:
    assert parse_signature_header("t=5x,t=9,v1=a, v1=b") == (5, ["a", "b"])
