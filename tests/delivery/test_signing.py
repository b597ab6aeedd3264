"""HMAC URL tokens: binding, expiry (``0`` never expires), tampering."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rindle.signing import NEVER, SignedClaims, TokenInvalid, sign, verify

NOW = 1_700_000_000


def test_round_trip_keeps_every_claim() -> None:
    claims = SignedClaims("PUT", "a/b/c.jpg", NOW + 60, disposition="attachment",
                          max_bytes=123, content_type="image/jpeg")
    assert verify("s", sign("s", claims), method="PUT", key="a/b/c.jpg", now=NOW) == claims


def test_expiry_zero_never_expires_and_past_expiry_does() -> None:
    forever = sign("s", SignedClaims("GET", "k", NEVER))
    assert verify("s", forever, method="GET", key="k", now=NOW * 10).expires == NEVER
    past = sign("s", SignedClaims("GET", "k", NOW - 1))
    with pytest.raises(TokenInvalid) as info:
        verify("s", past, method="GET", key="k", now=NOW)
    assert info.value.reason == "expired"
    assert verify("s", sign("s", SignedClaims("GET", "k", NOW)), method="GET", key="k",
                  now=NOW).expires == NOW


@pytest.mark.parametrize(("method", "key", "secret", "reason"), [
    ("PUT", "k", "s", "wrong_request"),
    ("GET", "k2", "s", "wrong_request"),
    ("GET", "k", "other", "bad_signature"),
])
def test_token_is_bound_to_method_key_and_secret(method: str, key: str, secret: str,
                                                 reason: str) -> None:
    token = sign("s", SignedClaims("GET", "k", NOW + 60))
    with pytest.raises(TokenInvalid) as info:
        verify(secret, token, method=method, key=key, now=NOW)
    assert info.value.reason == reason


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), replacement=st.sampled_from("AQgw-_.x="))
def test_any_single_character_change_is_refused(position: int, replacement: str) -> None:
    token = sign("s", SignedClaims("GET", "k", NEVER, disposition="inline"))
    i = position % len(token)
    forged = token[:i] + replacement + token[i + 1:]
    if forged == token:
        return
    try:
        claims = verify("s", forged, method="GET", key="k", now=NOW)
    except TokenInvalid as exc:
        assert exc.reason in ("malformed", "bad_signature")
    else:  # only base64 padding bits may differ; the claims must be identical
        assert claims == SignedClaims("GET", "k", NEVER, disposition="inline")


@pytest.mark.parametrize("token", ["", ".", "abc", "a.b.c", "é.é", "!!!.???"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(TokenInvalid):
        verify("s", token, method="GET", key="k", now=NOW)
