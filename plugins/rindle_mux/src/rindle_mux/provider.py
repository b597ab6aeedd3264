"""Mux Video as a :class:`rindle.streaming.Provider`.

Settings (``[streaming.mux]``; each credential falls back to its ``RINDLE_MUX_*`` variable,
read at call time so rotation needs no restart):

==============================  ===========================  ===============================
key                             default                      use
==============================  ===========================  ===============================
``token_id``/``token_secret``   ``RINDLE_MUX_TOKEN_ID/...``  HTTP Basic auth of the REST API
``signing_key_id``              ``RINDLE_MUX_SIGNING_KEY_ID``  ``kid`` of playback JWTs
``signing_private_key``         ``RINDLE_MUX_SIGNING_PRIVATE_KEY``  RSA key, PEM or base64 PEM
``webhook_secrets``             ``RINDLE_MUX_WEBHOOK_SECRETS``  list, newest first (env: commas)
``webhook_tolerance_seconds``   300                          signature timestamp window
``base_url``                    ``https://api.mux.com``      REST base
``stream_base_url``             ``https://stream.mux.com``   playback base
``rate_limit_per_second``       none                         client-side request pacing (at
                                                             most this many in any 1.05 s)
``max_retries``                 3                            retries on 429, 5xx, network
``retry_backoff_seconds``       0.5                          first backoff (doubles)
``retry_backoff_cap_seconds``   8                            longest single wait
``timeout_seconds``             10                           per request
``passthrough_tag``             ``RINDLE_MUX_PASSTHROUGH_TAG``  passthrough on server-push
``doctor_smoke_ping``           false                        doctor calls ``GET /video/v1/assets``
==============================  ===========================  ===============================

Errors are mapped from the HTTP status (not an SDK's error shapes): see :meth:`_fail`.
Messages name the call and the status, never an id, a token or a secret.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from rindle.errors import ConfigError, ProviderUnavailable
from rindle.streaming import (
    CreatedAsset,
    DirectUpload,
    LiveAsset,
    PlaybackURL,
    Provider,
    ProviderAssetNotFound,
    ProviderEvent,
    ProviderQuotaExceeded,
    ProviderSyncFailed,
    WebhookInvalid,
    normalize_playback_ids,
    verify_signature,
)
from rindle_mux.jwt import load_signing_key, sign_playback_token

__all__ = ["DISPATCHED", "MuxProvider", "normalize_event", "normalize_status"]

log = logging.getLogger("rindle.mux")

DEFAULT_BASE_URL = "https://api.mux.com"
DEFAULT_STREAM_URL = "https://stream.mux.com"
#: ``rate_limit_per_second`` paces request starts so that no window this long holds more
#: than the limit: a second plus room for jitter on the way, so requests that set off in
#: two of our seconds cannot crowd more than the limit into one of Mux's (paced exactly
#: one second apart per ``limit`` requests, a second holding both ends counts limit + 1).
RATE_WINDOW_SECONDS = 1.05
#: Event types the ingest worker acts on; everything else is answered 200 and dropped.
DISPATCHED = frozenset({"video.asset.ready", "video.asset.errored", "video.asset.deleted",
                        "video.asset.created", "video.upload.asset_created"})
_TYPES = {"video.asset.ready": "ready", "video.asset.errored": "errored",
          "video.asset.created": "created", "video.asset.deleted": "deleted"}
_STATUSES = {"preparing": "processing", "ready": "ready", "errored": "errored",
             "deleted": "deleted"}
_ENV = {"token_id": "RINDLE_MUX_TOKEN_ID", "token_secret": "RINDLE_MUX_TOKEN_SECRET",
        "signing_key_id": "RINDLE_MUX_SIGNING_KEY_ID",
        "signing_private_key": "RINDLE_MUX_SIGNING_PRIVATE_KEY"}


class _RedactRequestLog(logging.Filter):
    """httpx logs every request URL at INFO; Mux paths carry asset and upload ids (secrets).

    Installed once on the ``httpx`` logger, it rewrites those records for the hosts of
    configured Mux providers to ``/video/v1/assets/...`` (other hosts are untouched).
    """

    def __init__(self) -> None:
        super().__init__("rindle_mux")
        self.hosts: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2 and isinstance(args[1], httpx.URL) and (
                args[1].host in self.hosts):
            url = args[1]
            parts = url.path.split("/")
            redacted = "/".join(parts[:4] + (["..."] if len(parts) > 4 else []))
            record.args = (args[0], f"{url.scheme}://{url.netloc.decode()}{redacted}",
                           *args[2:])
        return True


_REQUEST_LOG = _RedactRequestLog()
logging.getLogger("httpx").addFilter(_REQUEST_LOG)


def normalize_status(value: object) -> str | None:
    """Mux asset status -> rindle state: ``preparing`` -> ``processing``; ``ready``,
    ``errored``, ``deleted`` kept; anything else ``None`` (logged)."""
    if isinstance(value, str) and value in _STATUSES:
        return _STATUSES[value]
    log.warning("rindle.mux.unknown_status status=%r", value)
    return None


def _error_message(data: Mapping[str, Any]) -> str | None:
    """``"<type>: <msg1>; <msg2>"`` from ``data.errors`` (only the type without messages)."""
    errors = data.get("errors")
    if not isinstance(errors, Mapping):
        return None
    kind = errors.get("type")
    messages = [m for m in errors.get("messages") or [] if isinstance(m, str)]
    if not isinstance(kind, str):
        return "; ".join(messages) or None
    return f"{kind}: {'; '.join(messages)}" if messages else kind


def _occurred_at(value: object) -> dt.datetime | None:
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        except ValueError:
            pass
        if value.strip().isdigit():
            return dt.datetime.fromtimestamp(int(value.strip()), dt.UTC)
    return None


def normalize_event(payload: object) -> ProviderEvent:
    """A decoded Mux webhook envelope as a :class:`ProviderEvent`."""
    if not isinstance(payload, Mapping):
        raise WebhookInvalid("invalid_payload", "webhook payload is not a JSON object")
    kind, data = payload.get("type"), payload.get("data")
    if not isinstance(kind, str) or not isinstance(data, Mapping):
        raise WebhookInvalid("invalid_payload", "webhook payload has no type or data")
    event_id = payload.get("id") if isinstance(payload.get("id"), str) else None
    common: dict[str, Any] = {"event_type": kind, "event_id": event_id,
                              "occurred_at": _occurred_at(payload.get("created_at")),
                              "raw": dict(payload)}
    if kind == "video.upload.asset_created":
        settings = data.get("new_asset_settings")
        passthrough = data.get("passthrough")
        if not isinstance(passthrough, str) and isinstance(settings, Mapping):
            passthrough = settings.get("passthrough")
        return ProviderEvent(
            type="upload_asset_created", provider_asset_id=_str(data.get("asset_id")),
            upload_id=_str(data.get("id")), playback_ids=[], state=None,
            passthrough=passthrough if isinstance(passthrough, str) else None, **common)
    status = data.get("status")
    return ProviderEvent(
        type=_TYPES.get(kind, "unknown"), provider_asset_id=_str(data.get("id")),
        playback_ids=normalize_playback_ids(data.get("playback_ids")),
        state=normalize_status(status) if status is not None else None,
        error=_error_message(data), passthrough=_str(data.get("passthrough")), **common)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class MuxProvider(Provider):
    """The Mux Video REST API over httpx, webhook verification and signed playback."""

    capabilities: ClassVar[frozenset[str]] = frozenset({
        "signed_playback", "webhook_ingest", "server_push_ingest", "direct_creator_upload"})

    def __init__(self, name: str = "mux", *, token_id: str | None = None,
                 token_secret: str | None = None, signing_key_id: str | None = None,
                 signing_private_key: str | None = None,
                 webhook_secrets: Sequence[str] | str | None = None,
                 webhook_tolerance_seconds: int = 300, base_url: str = DEFAULT_BASE_URL,
                 stream_base_url: str = DEFAULT_STREAM_URL,
                 rate_limit_per_second: float | None = None, max_retries: int = 3,
                 retry_backoff_seconds: float = 0.5, retry_backoff_cap_seconds: float = 8.0,
                 timeout_seconds: float = 10.0, passthrough_tag: str | None = None,
                 doctor_smoke_ping: bool = False) -> None:
        super().__init__(name)
        if isinstance(webhook_secrets, str):
            webhook_secrets = [s.strip() for s in webhook_secrets.split(",")]
        self._settings: dict[str, Any] = {
            "token_id": token_id, "token_secret": token_secret,
            "signing_key_id": signing_key_id, "signing_private_key": signing_private_key}
        self._webhook_secrets = None if webhook_secrets is None else [
            s for s in webhook_secrets if isinstance(s, str) and s]
        tolerance = webhook_tolerance_seconds
        self.webhook_tolerance = tolerance if isinstance(tolerance, int) and not isinstance(
            tolerance, bool) and tolerance > 0 else 300
        self.base_url = base_url.rstrip("/")
        _REQUEST_LOG.hosts.add(httpx.URL(self.base_url).host)
        self.stream_base_url = stream_base_url.rstrip("/")
        if rate_limit_per_second is not None and rate_limit_per_second <= 0:
            raise ConfigError(f"[streaming.{name}] rate_limit_per_second must be > 0")
        self.rate_limit = rate_limit_per_second
        self.max_retries = max(0, int(max_retries))
        self.backoff = max(0.0, float(retry_backoff_seconds))
        self.backoff_cap = max(0.0, float(retry_backoff_cap_seconds))
        self.timeout = float(timeout_seconds)
        self._passthrough_tag = passthrough_tag
        self.doctor_smoke_ping = bool(doctor_smoke_ping)
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._next_slot = 0.0

    def __repr__(self) -> str:
        return f"<MuxProvider {self.name} base_url={self.base_url}>"

    # --- settings read at call time ----------------------------------------------------

    def _setting(self, key: str) -> str | None:
        value = self._settings.get(key) or os.environ.get(_ENV[key])
        return value if isinstance(value, str) and value else None

    def _require(self, key: str) -> str:
        value = self._setting(key)
        if value is None:
            raise ConfigError(f"[streaming.{self.name}] {key} is missing; set it or "
                              f"{_ENV[key]}", code="missing_config")
        return value

    @property
    def webhook_secrets(self) -> list[str]:
        """The configured secrets, newest first (else ``RINDLE_MUX_WEBHOOK_SECRETS``)."""
        if self._webhook_secrets is not None:
            return list(self._webhook_secrets)
        env = os.environ.get("RINDLE_MUX_WEBHOOK_SECRETS", "")
        return [s.strip() for s in env.split(",") if s.strip()]

    @property
    def passthrough_tag(self) -> str | None:
        """The passthrough stamped on server-push creates (soak-test cleanup tag)."""
        return self._passthrough_tag or os.environ.get("RINDLE_MUX_PASSTHROUGH_TAG") or None

    # --- HTTP --------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(base_url=self.base_url, timeout=self.timeout,
                                            headers={"Accept": "application/json"})
            return self._client

    def close(self) -> None:
        """Close the HTTP connection pool."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _throttle(self) -> None:
        """Wait for this request's slot: starts are :data:`RATE_WINDOW_SECONDS` / rate
        apart, so no window of that length holds more than ``rate_limit_per_second``."""
        if self.rate_limit is None:
            return
        with self._lock:
            now = time.monotonic()
            wait = self._next_slot - now
            self._next_slot = max(now, self._next_slot) + RATE_WINDOW_SECONDS / self.rate_limit
        if wait > 0:
            time.sleep(wait)

    def _wait(self, attempt: int, response: httpx.Response | None) -> float:
        delay = self.backoff * (2 ** attempt)
        if response is not None:
            hint = _retry_after(response)
            if hint is not None:
                delay = float(hint)
        return float(min(delay, self.backoff_cap))

    def request(self, method: str, path: str, *, body: Any = None,
                timeout: float | None = None, what: str) -> httpx.Response:
        """One REST call with pacing and bounded retries on 429, 5xx and network errors.

        Returns the last response (its status may be an error); raises
        :class:`~rindle.errors.ProviderUnavailable` (a :class:`ProviderSyncFailed`) when the
        network failed or timed out on every attempt.
        """
        auth = (self._require("token_id"), self._require("token_secret"))
        client = self._http()
        for attempt in range(self.max_retries + 1):
            self._throttle()
            try:
                response = client.request(method, path, json=body, auth=auth,
                                          timeout=timeout or self.timeout)
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise ProviderUnavailable(
                        f"mux {what} failed: network error ({type(exc).__name__}); check "
                        "base_url and connectivity") from None
                time.sleep(self._wait(attempt, None))
                continue
            if (response.status_code == 429 or response.status_code >= 500) and (
                    attempt < self.max_retries):
                time.sleep(self._wait(attempt, response))
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _data(self, response: httpx.Response, what: str) -> Mapping[str, Any]:
        try:
            payload = response.json()
        except (json.JSONDecodeError, ValueError):
            raise ProviderSyncFailed(f"mux {what}: the answer is not JSON",
                                     status=response.status_code) from None
        data = payload.get("data") if isinstance(payload, Mapping) else None
        if not isinstance(data, Mapping):
            raise ProviderSyncFailed(f"mux {what}: the answer has no data object",
                                     status=response.status_code)
        return data

    def _fail(self, response: httpx.Response, what: str, *, quota: bool = True) -> None:
        """Raise for a non-2xx answer: 429 -> quota exceeded (with Retry-After, else 60 s)
        when ``quota``; 5xx -> :class:`~rindle.errors.ProviderUnavailable`; everything else
        -> :class:`ProviderSyncFailed`; both carry the status."""
        status = response.status_code
        if status == 429 and quota:
            raise ProviderQuotaExceeded(
                f"mux {what}: rate limited (HTTP 429); retry later",
                retry_after=_retry_after(response) or 60)
        if status >= 500:
            raise ProviderUnavailable(f"mux {what} failed: HTTP {status}", status=status)
        hint = " (check token_id/token_secret)" if status in (401, 403) else ""
        raise ProviderSyncFailed(f"mux {what} failed: HTTP {status}{hint}", status=status)

    # --- assets -------------------------------------------------------------------------

    def create_asset(self, source_url: str, *, playback_policy: str = "signed",
                     passthrough: str | None = None) -> CreatedAsset:
        """``POST /video/v1/assets`` with the plural keys Mux expects."""
        body: dict[str, Any] = {"inputs": [{"url": source_url}],
                                "playback_policies": [playback_policy],
                                "mp4_support": "standard", "max_resolution_tier": "1080p"}
        tag = passthrough or self.passthrough_tag
        if tag:
            body["passthrough"] = tag
        response = self.request("POST", "/video/v1/assets", body=body, what="create asset")
        if not response.is_success:
            self._fail(response, "create asset")
        data = self._data(response, "create asset")
        asset_id = _str(data.get("id"))
        if asset_id is None:
            raise ProviderSyncFailed("mux create asset: the answer has no asset id")
        return CreatedAsset(asset_id, normalize_playback_ids(data.get("playback_ids")))

    def get_asset(self, provider_asset_id: str) -> LiveAsset:
        """``GET /video/v1/assets/{id}``; 404 -> :class:`ProviderAssetNotFound`."""
        response = self.request("GET", f"/video/v1/assets/{quote(provider_asset_id, safe='')}",
                                what="get asset")
        if response.status_code == 404:
            raise ProviderAssetNotFound("mux has no such asset")
        if not response.is_success:
            self._fail(response, "get asset", quota=False)
        data = self._data(response, "get asset")
        if "id" not in data or "status" not in data:
            raise ProviderSyncFailed("mux get asset: the answer lacks id or status")
        return LiveAsset(state=normalize_status(data.get("status")),
                         playback_ids=normalize_playback_ids(data.get("playback_ids")),
                         raw=dict(data), error=_error_message(data))

    def delete_asset(self, provider_asset_id: str) -> None:
        """``DELETE /video/v1/assets/{id}``; 404 is success."""
        response = self.request("DELETE",
                                f"/video/v1/assets/{quote(provider_asset_id, safe='')}",
                                what="delete asset")
        if response.status_code != 404 and not response.is_success:
            self._fail(response, "delete asset", quota=False)

    # --- direct creator upload ---------------------------------------------------------

    def create_direct_upload(self, *, cors_origin: str, playback_policy: str = "signed",
                             passthrough: str | None = None, timeout: int | None = None,
                             test: bool = False) -> DirectUpload:
        """``POST /video/v1/uploads``; ``cors_origin`` is required (no call without it)."""
        if not cors_origin:
            raise ProviderSyncFailed("mux create upload: cors_origin is required")
        settings: dict[str, Any] = {"playback_policies": [playback_policy]}
        if passthrough:
            settings["passthrough"] = passthrough
        body: dict[str, Any] = {"cors_origin": cors_origin, "new_asset_settings": settings}
        if timeout is not None:
            body["timeout"] = int(timeout)
        if test:
            body["test"] = True
        response = self.request("POST", "/video/v1/uploads", body=body, what="create upload")
        if not response.is_success:
            self._fail(response, "create upload")
        data = self._data(response, "create upload")
        upload_id, url = _str(data.get("id")), _str(data.get("url"))
        if upload_id is None or url is None:
            raise ProviderSyncFailed("mux create upload: the answer lacks id or url")
        return DirectUpload(upload_url=url, upload_id=upload_id)

    def cancel_direct_upload(self, upload_id: str) -> None:
        """``PUT /video/v1/uploads/{id}/cancel``; 404 and 403 (already terminal) are success."""
        response = self.request("PUT", f"/video/v1/uploads/{quote(upload_id, safe='')}/cancel",
                                body={}, what="cancel upload")
        if response.status_code in (403, 404) or response.is_success:
            return
        self._fail(response, "cancel upload")

    # --- webhooks and playback ---------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Check ``Mux-Signature`` (any case) against every secret, then parse the body."""
        lowered = {str(k).lower(): v for k, v in headers.items()}
        index = verify_signature(body, lowered.get("mux-signature"), self.webhook_secrets,
                                 tolerance=self.webhook_tolerance)
        log.debug("rindle.mux.webhook secret_index=%d", index)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise WebhookInvalid("invalid_json", "webhook body is not JSON") from None
        return normalize_event(payload)

    def dispatch_kind(self, event_type: str) -> str:
        """``dispatch`` for the five asset/upload events rindle acts on, else ``drop``."""
        return "dispatch" if event_type in DISPATCHED else "drop"

    def playback_url(self, playback_id: str, *, policy: str = "signed",
                     expires_in: int = 900) -> PlaybackURL:
        """``https://stream.mux.com/<id>.m3u8``, with ``?token=<RS256 JWT>`` when signed.

        The JWT has ``kid`` = ``signing_key_id``, ``sub`` = the playback id, ``aud`` = ``v``
        and ``exp`` = now + ``expires_in`` (always explicit: never Mux's 7-day default).
        """
        encoded = quote(playback_id, safe="")
        base = f"{self.stream_base_url}/{encoded}.m3u8"
        if policy == "public":
            return PlaybackURL(base)
        if expires_in <= 0:
            raise ConfigError("signed playback needs a positive expires_in (signed_url_ttl)")
        key = load_signing_key(self._require("signing_private_key"))
        token = sign_playback_token(encoded, key=key, key_id=self._require("signing_key_id"),
                                    expires_in=expires_in)
        return PlaybackURL(f"{base}?token={token}")

    # --- doctor ------------------------------------------------------------------------

    def doctor_checks(self) -> list[Any]:
        """Credentials present, signing key parses, webhook secrets >= 32 characters, and
        (with ``doctor_smoke_ping``) one authenticated ``GET /video/v1/assets``."""
        from rindle.ops.doctor import Check

        comp = "rindle-mux"
        out: list[Check] = []
        missing = [k for k in _ENV if self._setting(k) is None]
        if not self.webhook_secrets:
            missing.append("webhook_secrets")
        out.append(Check("doctor.streaming_credentials", "error" if missing else "ok",
                         f"missing: {', '.join(missing)}" if missing else
                         "token, signing key and webhook secrets are set",
                         f"set them in [streaming.{self.name}] or RINDLE_MUX_*" if missing
                         else None, comp))
        key = self._setting("signing_private_key")
        if key is not None:
            try:
                load_signing_key(key)
                out.append(Check("doctor.streaming_signing_key", "ok",
                                 "signing key parses as an RSA private key", None, comp))
            except ConfigError as exc:
                out.append(Check("doctor.streaming_signing_key", "error", exc.message,
                                 "paste the key from the Mux dashboard (PEM or base64)", comp))
        short = [i for i, s in enumerate(self.webhook_secrets) if len(s) < 32]
        out.append(Check("doctor.streaming_webhook_secrets", "error" if short else "ok",
                         f"secret(s) at index {short} are shorter than 32 characters" if short
                         else f"{len(self.webhook_secrets)} secret(s), each >= 32 characters",
                         "use the signing secret Mux generates" if short else None, comp))
        if self.doctor_smoke_ping and not any(k in missing for k in ("token_id",
                                                                     "token_secret")):
            out.append(self._smoke_ping(Check, comp))
        return out

    def _smoke_ping(self, check: Any, comp: str) -> Any:
        name = "doctor.streaming_smoke_ping"
        saved, self.max_retries = self.max_retries, 0
        try:
            response = self.request("GET", "/video/v1/assets", timeout=5.0, what="smoke ping")
        except ProviderSyncFailed:
            return check(name, "error", "network: the Mux API did not answer",
                         "check base_url and outbound connectivity", comp)
        finally:
            self.max_retries = saved
        status = response.status_code
        if response.is_success:
            return check(name, "ok", f"Mux API answered HTTP {status}", None, comp)
        if status in (401, 403):
            return check(name, "error", f"credentials refused (HTTP {status})",
                         "check token_id/token_secret", comp)
        if status == 429:
            return check(name, "warn", "rate limited (HTTP 429)", "retry later", comp)
        return check(name, "error", f"Mux API answered HTTP {status}", None, comp)


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after")
    if value is not None and value.strip().isdigit() and int(value.strip()) > 0:
        return int(value.strip())
    return None
