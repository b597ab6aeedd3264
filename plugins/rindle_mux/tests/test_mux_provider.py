"""MuxProvider's REST calls, error mapping, signed playback, doctor checks and redaction,
against the loopback Mux."""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from muxkit import (
    ASSET_ID,
    PLAYBACK_ID,
    SIGNING_KEY_ID,
    TOKEN_SECRET,
    WEBHOOK_SECRET,
    FakeMux,
    KeyPair,
    add_row,
    fixture,
    mux_settings,
)

from rindle import Rindle
from rindle.errors import (
    ConfigError,
    ProviderAssetNotFound,
    ProviderQuotaExceeded,
    ProviderSyncFailed,
    ProviderUnavailable,
    TransientError,
    UnknownBackend,
)
from rindle.streaming import Provider
from rindle_mux import MuxProvider, load_signing_key


def _provider(mux: FakeMux, keypair: KeyPair, **extra: Any) -> MuxProvider:
    settings = dict(mux_settings(mux, keypair, **extra)["mux"])
    provider = MuxProvider.from_settings("mux", settings)
    assert isinstance(provider, MuxProvider)
    return provider


def _b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_capabilities_in_reference_order() -> None:
    assert MuxProvider.capabilities == {"signed_playback", "webhook_ingest",
                                        "server_push_ingest", "direct_creator_upload"}
    assert issubclass(MuxProvider, Provider)


def test_create_get_delete_asset(mux: FakeMux, keypair: KeyPair) -> None:
    provider = _provider(mux, keypair)
    created = provider.create_asset("https://media.example/clip.mp4?sig=1",
                                    playback_policy="signed", passthrough="tag-1")
    [call] = mux.calls("POST")
    assert call.path == "/video/v1/assets"
    assert call.body == {"inputs": [{"url": "https://media.example/clip.mp4?sig=1"}],
                         "playback_policies": ["signed"], "mp4_support": "standard",
                         "max_resolution_tier": "1080p", "passthrough": "tag-1"}
    assert call.authorization == "Basic " + base64.b64encode(
        f"test-token-id:{TOKEN_SECRET}".encode()).decode()
    assert created.playback_ids == [PLAYBACK_ID]
    live = provider.get_asset(created.provider_asset_id)
    assert (live.state, live.playback_ids) == ("processing", [PLAYBACK_ID])
    provider.delete_asset(created.provider_asset_id)
    provider.delete_asset(created.provider_asset_id)  # 404: idempotent
    with pytest.raises(ProviderAssetNotFound) as info:
        provider.get_asset(created.provider_asset_id)
    assert info.value.code == "provider_asset_not_found"
    assert created.provider_asset_id not in repr(created)


def test_quota_and_failure_mapping(mux: FakeMux, keypair: KeyPair) -> None:
    provider = _provider(mux, keypair, max_retries=0)
    mux.then("POST", "/video/v1/assets", 429, {"error": {}}, {"retry-after": "7"})
    with pytest.raises(ProviderQuotaExceeded) as quota:
        provider.create_asset("https://x/y.mp4")
    assert (quota.value.code, quota.value.retry_after) == ("provider_quota_exceeded", 7)
    mux.then("POST", "/video/v1/assets", 429, {"error": {}})
    with pytest.raises(ProviderQuotaExceeded) as default:
        provider.create_asset("https://x/y.mp4")
    assert default.value.retry_after == 60
    mux.then("GET", f"/video/v1/assets/{ASSET_ID}", 429, {"error": {}})
    with pytest.raises(ProviderSyncFailed) as sync:
        provider.get_asset(ASSET_ID)
    assert type(sync.value) is ProviderSyncFailed and sync.value.code == "provider_sync_failed"
    bad = _provider(mux, keypair, token_secret="wrong")
    with pytest.raises(ProviderSyncFailed, match="HTTP 401"):
        bad.get_asset(ASSET_ID)


def test_retries_are_bounded(mux: FakeMux, keypair: KeyPair) -> None:
    provider = _provider(mux, keypair, max_retries=2)
    for _ in range(5):
        mux.then("POST", "/video/v1/assets", 502, {"error": {}})
    with pytest.raises(ProviderSyncFailed) as info:
        provider.create_asset("https://x/y.mp4")
    assert info.value.status == 502 and len(mux.calls("POST")) == 3
    assert type(info.value) is ProviderUnavailable and info.value.code == "provider_unavailable"


def test_network_failure_is_provider_sync_failed(keypair: KeyPair, mux: FakeMux) -> None:
    provider = _provider(mux, keypair, base_url="http://127.0.0.1:9", max_retries=1)
    with pytest.raises(ProviderSyncFailed, match="network error") as info:
        provider.get_asset(ASSET_ID)
    assert isinstance(info.value, ProviderUnavailable) and info.value.status is None
    assert isinstance(info.value, TransientError) and info.value.code == "provider_unavailable"


def test_server_errors_are_provider_unavailable(mux: FakeMux, keypair: KeyPair) -> None:
    provider = _provider(mux, keypair, max_retries=0)
    one = f"/video/v1/assets/{ASSET_ID}"
    for method, path, status, call in (
            ("GET", one, 500, lambda: provider.get_asset(ASSET_ID)),
            ("DELETE", one, 503, lambda: provider.delete_asset(ASSET_ID)),
            ("POST", "/video/v1/assets", 504, lambda: provider.create_asset("https://x/y.mp4"))):
        mux.then(method, path, status, {"error": {}})
        with pytest.raises(ProviderUnavailable) as info:
            call()
        assert (info.value.status, info.value.code, info.value.permanent) == (
            status, "provider_unavailable", False)
        assert str(info.value).endswith(f"failed: HTTP {status}")
    mux.then("GET", f"/video/v1/assets/{ASSET_ID}", 400, {"error": {}})
    with pytest.raises(ProviderSyncFailed) as client:
        provider.get_asset(ASSET_ID)
    assert type(client.value) is ProviderSyncFailed and client.value.status == 400


def test_rate_limit_paces_requests(mux: FakeMux, keypair: KeyPair) -> None:
    provider = _provider(mux, keypair, rate_limit_per_second=50)
    mux.assets[ASSET_ID] = fixture("asset_get_ready")
    for _ in range(3):
        provider.get_asset(ASSET_ID)
    assert len(mux.calls("GET")) == 3
    assert provider._next_slot > 0  # the bucket was used
    with pytest.raises(ConfigError):
        _provider(mux, keypair, rate_limit_per_second=0)


class FakeTime:
    """A stand-in for the provider module's ``time``: ``sleep`` advances ``monotonic``."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.starts: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(("rate", "most"), [(1, 1), (20, 20), (100, 96), (500, 477)])
def test_rate_limit_never_puts_more_than_the_limit_in_one_second(
        mux: FakeMux, keypair: KeyPair, monkeypatch: pytest.MonkeyPatch, rate: int,
        most: int) -> None:
    import rindle_mux.provider as module

    clock = FakeTime()
    monkeypatch.setattr(module, "time", clock)
    provider = _provider(mux, keypair, rate_limit_per_second=rate)
    for _ in range(3 * rate + 1):  # a burst: every request asks at once
        provider._throttle()
        clock.starts.append(clock.now)
    gaps = {round(b - a, 9) for a, b in zip(clock.starts, clock.starts[1:], strict=False)}
    assert gaps == {round(module.RATE_WINDOW_SECONDS / rate, 9)}
    # the busiest closed one-second window, both ends included: floor(rate / 1.05) + 1,
    # never more than the limit
    busiest = max(sum(1 for t in clock.starts if start <= t <= start + 1.0)
                  for start in clock.starts)
    assert busiest == most <= rate
    # starts exactly 1/rate apart (the pacing before) would put rate + 1 in such a window
    assert sum(1 for i in range(3 * rate + 1) if i / rate <= 1.0) == rate + 1


def test_direct_upload_create_and_cancel(mux: FakeMux, keypair: KeyPair) -> None:
    provider = _provider(mux, keypair)
    with pytest.raises(ProviderSyncFailed, match="cors_origin"):
        provider.create_direct_upload(cors_origin="")
    assert mux.requests == []
    upload = provider.create_direct_upload(cors_origin="https://app.example.com",
                                           passthrough="pt-1", timeout=600)
    [call] = mux.calls("POST")
    assert call.body == {"cors_origin": "https://app.example.com", "timeout": 600,
                         "new_asset_settings": {"playback_policies": ["signed"],
                                                "passthrough": "pt-1"}}
    assert upload.upload_url.startswith("https://")
    provider.cancel_direct_upload(upload.upload_id)
    assert mux.uploads[upload.upload_id]["status"] == "cancelled"
    provider.cancel_direct_upload("gone-upload")  # 404: success
    assert upload.upload_id not in repr(upload) and "storage.googleapis" not in repr(upload)


@pytest.mark.parametrize("form", ["pkcs1", "pkcs8", "base64_pkcs1", "base64_pkcs8"])
def test_signed_playback_url_is_an_rs256_jwt(mux: FakeMux, keypair: KeyPair, form: str
                                             ) -> None:
    pem = keypair.private_pem if "pkcs1" in form else keypair.pkcs8_pem
    key_text = base64.b64encode(pem.encode()).decode() if form.startswith("base64") else pem
    provider = _provider(mux, keypair, signing_private_key=key_text)
    before = int(time.time())
    url = provider.playback_url(PLAYBACK_ID, policy="signed", expires_in=600)
    base, _, query = url.url.partition("?token=")
    assert base == f"https://stream.mux.com/{PLAYBACK_ID}.m3u8"
    assert (url.kind, url.mime) == ("hls", "application/vnd.apple.mpegurl")
    head, claims, sig = query.split(".")
    assert _b64json(head) == {"typ": "JWT", "alg": "RS256", "kid": SIGNING_KEY_ID}
    body = _b64json(claims)
    assert body["sub"] == PLAYBACK_ID and body["aud"] == "v"
    assert before + 600 <= body["exp"] <= int(time.time()) + 600  # never the 7-day default
    signature = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    keypair.public.verify(signature, f"{head}.{claims}".encode(), padding.PKCS1v15(),
                          hashes.SHA256())  # raises if the signature is wrong
    assert "token" not in repr(url)
    public = provider.playback_url(PLAYBACK_ID, policy="public")
    assert public.url == f"https://stream.mux.com/{PLAYBACK_ID}.m3u8"


def test_bad_signing_key_never_echoes_material(keypair: KeyPair) -> None:
    with pytest.raises(ConfigError) as info:
        load_signing_key("-----BEGIN RSA PRIVATE KEY-----\nAAAAsecretmaterial\n-----END RSA "
                         "PRIVATE KEY-----")
    assert "secretmaterial" not in str(info.value)
    with pytest.raises(ConfigError, match="neither PEM nor base64"):
        load_signing_key("not a key!")


def test_app_playback_url_uses_the_profile_ttl(mux_app: Rindle) -> None:
    from rindle.errors import ProviderAssetNotReady

    row = add_row(mux_app, state="processing")
    with pytest.raises(ProviderAssetNotReady):
        mux_app.streaming.playback_url(row.asset_id)
    with mux_app.db.transaction() as s:
        from rindle.domain.fsm import provider_asset as fsm

        fsm.transition(s, row.id, "processing", "ready", values={"playback_ids": [PLAYBACK_ID]})
    before = int(time.time())
    url = mux_app.streaming.playback_url(row.asset_id)
    claims = _b64json(url.url.split("?token=")[1].split(".")[1])
    assert before + 600 <= claims["exp"] <= int(time.time()) + 600  # Clip.signed_url_ttl


def test_app_url_dispatches_streaming_profiles(mux_app: Rindle) -> None:
    row = add_row(mux_app, state="processing")
    progressive = mux_app.url(row.asset_id)
    assert "stream.mux.com" not in progressive  # not playable yet: the original
    with mux_app.db.transaction() as s:
        from rindle.domain.fsm import provider_asset as fsm

        fsm.transition(s, row.id, "processing", "ready", values={"playback_ids": [PLAYBACK_ID]})
    assert mux_app.url(row.asset_id).startswith(f"https://stream.mux.com/{PLAYBACK_ID}.m3u8?")
    with mux_app.db.transaction() as s:
        fsm.transition(s, row.id, "ready", "errored")
    with pytest.raises(ProviderSyncFailed):
        mux_app.url(row.asset_id)


def test_unknown_backend_names_the_distribution(make_app: Any) -> None:
    with pytest.raises(UnknownBackend, match="pip install rindle-mux"):
        make_app(streaming={"mux": {"token_id": "x"}})


def test_doctor_checks(mux_app: Rindle, make_mux_app: Any, mux: FakeMux) -> None:
    report = mux_app.ops.doctor()
    by_name = {c.name: c for c in report.checks}
    assert by_name["doctor.streaming_credentials"].status == "ok"
    assert by_name["doctor.streaming_signing_key"].status == "ok"
    assert by_name["doctor.streaming_webhook_secrets"].status == "ok"
    weak = make_mux_app(webhook_secrets=["short"], signing_private_key="garbage!",
                        doctor_smoke_ping=True)
    checks = {c.name: c for c in weak.ops.doctor().checks}
    assert checks["doctor.streaming_webhook_secrets"].status == "error"
    assert checks["doctor.streaming_signing_key"].status == "error"
    assert checks["doctor.streaming_smoke_ping"].status == "ok"
    assert any(r.path == "/video/v1/assets" and r.method == "GET" for r in mux.requests)
    refused = make_mux_app(token_secret="wrong", doctor_smoke_ping=True)
    checks = {c.name: c for c in refused.ops.doctor().checks}
    assert checks["doctor.streaming_smoke_ping"].status == "error"
    text = json.dumps([c.to_dict() for c in refused.ops.doctor().checks])
    assert "wrong" not in text and "garbage" not in text and WEBHOOK_SECRET not in text


def test_secrets_stay_out_of_reprs_logs_and_telemetry(mux_app: Rindle, mux: FakeMux,
                                                      events: list[Any], keypair: KeyPair,
                                                      caplog: pytest.LogCaptureFixture
                                                      ) -> None:
    caplog.set_level(logging.DEBUG)
    mux.assets[ASSET_ID] = fixture("asset_get_ready")
    row = add_row(mux_app, state="processing")
    mux_app.streaming.sync_provider_asset(row.id)
    provider = mux_app.streaming.provider("mux")
    url = mux_app.streaming.playback_url(row.asset_id)
    token = url.url.split("?token=")[1]
    mux.then("GET", f"/video/v1/assets/{ASSET_ID}", 400, {"error": {}})
    with pytest.raises(ProviderSyncFailed) as failure:
        provider.get_asset(ASSET_ID)
    seen = " ".join([
        repr(mux_app), repr(mux_app.streaming), repr(provider),
        repr(mux_app.streaming.config("mux")), repr(row),
        repr(mux_app.streaming.provider_asset(row.asset_id)), str(failure.value),
        caplog.text, json.dumps([[e, m] for e, _, m in events], default=str),
    ])
    for secret in (TOKEN_SECRET, WEBHOOK_SECRET, ASSET_ID, PLAYBACK_ID, token,
                   keypair.private_pem.splitlines()[1]):
        assert secret not in seen
    assert "...QrSt" in seen  # the redacted form is what shows
