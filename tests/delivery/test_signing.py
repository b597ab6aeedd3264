"""HMAC URL tokens: binding, expiry (``0`` never expires), tampering."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rindle.signing import (
    NEVER,
    SignedClaims,
    TokenInvalid,
    open_payload,
    sign,
    sign_payload,
    verify,
)

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


# Known answers (the wire format: compact sorted JSON, unpadded URL-safe base64, HMAC-SHA256
# over ``domain + b"\\x00" + payload``). Tokens already handed out must keep verifying.
EVENTS_TOKEN = ("eyJhIjpbMSwiXHUwMGU5Il0sInoiOjF9"
                ".tT-o4-LPueSYqF_SBak3WEFCDwQuSUMFOyHLfl5n7dg")
URL_TOKEN = ("eyJiIjo1LCJkIjoiaW5saW5lIiwiZSI6MTcwMDAwMDA2MCwiayI6ImEvYi5qcGciLCJtIjoiR0VUIiwidCI6"
             "ImltYWdlL3BuZyJ9.fhNNPDQ8dZvrVBKXyKUoFay1k9et34S6fC9p9M116OY")
URL_CLAIMS = SignedClaims("GET", "a/b.jpg", 1_700_000_060, disposition="inline", max_bytes=5,
                          content_type="image/png")
# Payloads MACed with secret "s" in domain "rindle:test:v1" that are not JSON objects.
NOT_JSON = "bm90IGpzb24.HZenWhIXj5PwSdlTJNoVAeKg2aYA7UPhHK4BDK9F8EA"  # b"not json"
JSON_LIST = "WzFd.rV3VE3LCT3a2SJV2jmrhmPDlVkMBgVx4opHe3MTuMVQ"  # b"[1]"


def test_known_answer_tokens() -> None:
    assert sign_payload("secret", "rindle:events:v1", {"z": 1, "a": [1, "\u00e9"]}) == EVENTS_TOKEN
    assert open_payload("secret", "rindle:events:v1", EVENTS_TOKEN) == {"z": 1, "a": [1, "\u00e9"]}
    assert sign("secret", URL_CLAIMS) == URL_TOKEN
    assert verify("secret", URL_TOKEN, method="GET", key="a/b.jpg", now=NOW) == URL_CLAIMS
    with pytest.raises(TokenInvalid) as info:  # a URL token never opens in another domain
        open_payload("secret", "rindle:events:v1", URL_TOKEN)
    assert info.value.reason == "bad_signature"


def _reason(token: object, *, secret: str = "s", domain: str = "rindle:test:v1") -> str:
    with pytest.raises(TokenInvalid) as info:
        open_payload(secret, domain, token)  # type: ignore[arg-type]
    assert str(info.value) == info.value.reason and info.value.args == (info.value.reason,)
    return info.value.reason


def test_payload_length_limit_is_16384_base64_characters() -> None:
    at_limit = sign_payload("s", "rindle:test:v1", {"p": "x" * 12280})  # 12288 bytes
    assert len(at_limit.split(".")[0]) == 16384
    assert open_payload("s", "rindle:test:v1", at_limit) == {"p": "x" * 12280}
    over = sign_payload("s", "rindle:test:v1", {"p": "x" * 12281})  # MAC valid, too long
    assert len(over.split(".")[0]) == 16386
    assert _reason(over) == "malformed"


@pytest.mark.parametrize("token", [None, 7, b"a.b", ["a", "b"]])
def test_a_token_that_is_not_a_string_is_malformed(token: object) -> None:
    assert _reason(token) == "malformed"


def test_only_the_canonical_spelling_opens() -> None:
    token = sign_payload("s", "rindle:test:v1", {"e": 0, "k": "k", "m": "GET"})
    payload, mac = token.split(".")
    assert (payload[-1], mac[-1]) == ("Q", "Y")  # both end in a character with unused bits
    assert open_payload("s", "rindle:test:v1", token) == {"e": 0, "k": "k", "m": "GET"}
    # The same bytes with an unused low bit set: decodes identically, still refused.
    assert _reason(f"{payload[:-1]}R.{mac}") == "malformed"
    assert _reason(f"{payload}.{mac[:-1]}Z") == "malformed"


def test_each_refusal_has_its_reason() -> None:
    assert _reason("AAAAA." + "A" * 43) == "malformed"  # 4k+1 base64 characters
    assert _reason("AAAX." + "A" * 43) == "bad_signature"  # well formed, wrong MAC
    assert _reason(NOT_JSON) == "malformed"  # authentic but not JSON
    assert _reason(JSON_LIST) == "malformed"  # authentic JSON, not an object
    assert _reason(NOT_JSON, secret="t") == "bad_signature"


@pytest.mark.parametrize("body", [{"m": "GET", "e": 0}, {"m": "GET", "k": "k"},
                                  {"m": "GET", "k": "k", "e": "soon"}])
def test_url_token_missing_or_bad_claims_is_malformed(body: dict[str, object]) -> None:
    token = sign_payload("s", "rindle:url:v1", body)
    with pytest.raises(TokenInvalid) as info:
        verify("s", token, method="GET", key="k", now=NOW)
    assert info.value.reason == "malformed"


def test_expiry_is_checked_against_the_system_clock_by_default() -> None:
    past = sign("s", SignedClaims("GET", "k", 1))  # 1970
    with pytest.raises(TokenInvalid) as info:
        verify("s", past, method="GET", key="k")
    assert info.value.reason == "expired"
    future = SignedClaims("GET", "k", 2**40)  # year 36812
    assert verify("s", sign("s", future), method="GET", key="k") == future
