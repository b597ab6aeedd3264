"""``backend = "gcs"``: objects in a Google Cloud Storage bucket, through google-cloud-storage.

Authentication: ``credentials_file`` (a service-account key) when set, else Application
Default Credentials. When ``STORAGE_EMULATOR_HOST`` is set every request goes to that
emulator, unauthenticated, exactly as google-cloud-storage does it; a ``credentials_file``
is then used only to sign URLs (signing is local RSA, no request is made).
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote, urlsplit

import google.auth
import requests.exceptions
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials, Credentials, Signing
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage as gcs
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account

from rindle.errors import (
    ConfigError,
    DeliveryUnsupported,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
)
from rindle.storage import (
    BackendContext,
    Capability,
    ObjectInfo,
    PresignedRequest,
    ResumableSession,
    ResumableStatus,
    Storage,
    delete_in_batches,
)

__all__ = ["GCSStorage", "ResumableSession", "ResumableStatus"]

#: V4 signed URLs are valid for at most seven days.
MAX_SIGNED_SECONDS = 7 * 24 * 3600
#: GCS takes at most 100 calls in one batch request.
DELETE_BATCH = 100
#: A compose request takes at most 32 source objects.
COMPOSE_LIMIT = 32
#: A resumable session URI stays valid for a week.
RESUMABLE_TTL = dt.timedelta(days=7)
DEFAULT_ENDPOINT = "https://storage.googleapis.com"
_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
_SETTINGS = {"bucket", "project", "credentials_file", "prefix", "retry_deadline", "cdn_domain"}
#: What the client library raises for service, auth and network failures.
_FAILURES: tuple[type[BaseException], ...] = (gexc.GoogleAPIError, GoogleAuthError, OSError)
#: Failures that say "try again later": a 429, 500, 502, 503 or 504 answer (DeadlineExceeded
#: is a 504; a 501 is not transient), a retry policy that gave up, no connection or a
#: timeout (requests' and the socket's own). Mapped to :class:`StorageUnavailable`.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    gexc.TooManyRequests, gexc.InternalServerError, gexc.BadGateway,
    gexc.ServiceUnavailable, gexc.GatewayTimeout, gexc.RetryError,
    requests.exceptions.ConnectionError, requests.exceptions.Timeout,
    ConnectionError, TimeoutError)
#: The header a create-only write carries: GCS refuses it (412) once the name holds a live
#: object (generation 0 means "no live object").
CREATE_ONLY = {"x-goog-if-generation-match": "0"}
_UNAVAILABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class _KeyFileLoader(Protocol):
    def __call__(self, filename: str, *, scopes: list[str]) -> Credentials: ...


# google-auth leaves these two unannotated; bound here with the types they have.
_anonymous: Callable[[], Credentials] = AnonymousCredentials
_key_from_file: _KeyFileLoader = service_account.Credentials.from_service_account_file


def _unavailable(status: int) -> bool:
    """Whether an HTTP status says "try again later" (429, 500, 502, 503, 504)."""
    return status in _UNAVAILABLE_STATUS


def _cdn_domain(storage: str, value: object) -> str:
    """``https://host`` (or ``http://`` as given) for ``cdn_domain``; a path, query or other
    scheme is a :class:`ConfigError`."""
    text = str(value).strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.path not in ("", "/") \
            or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(f"storage {storage!r}: cdn_domain must be a host name bound to "
                          "the bucket, such as media.example.com (or https://media.example."
                          "com), without a path or query")
    return f"{parts.scheme}://{parts.netloc}"


class GCSStorage(Storage):
    """A bucket (optionally a key prefix inside it) holding rindle's objects.

    Every method maps "no such object" to :class:`ObjectNotFound` and any other service,
    auth or network failure to :class:`StorageError`, whose message never carries
    credentials. ``signed_url`` and ``presigned_put`` are offered only when the storage
    can sign (a service-account key from ``credentials_file`` or from ADC); without one,
    private delivery is refused by rindle with ``delivery_unsupported``. One client is
    shared by all threads.
    """

    backend_name = "gcs"
    setting_descriptions = {"bucket": "the GCS bucket name"}
    capabilities = frozenset({Capability.HEAD, Capability.LIST, Capability.RESUMABLE_UPLOAD})

    def __init__(self, *, name: str, bucket: str, project: str | None = None,
                 credentials_file: str | os.PathLike[str] | None = None,
                 prefix: str = "", retry_deadline: float = 120.0,
                 cdn_domain: str | None = None) -> None:
        super().__init__(name=name)
        if not bucket or not isinstance(bucket, str):
            raise ConfigError(f"storage {name!r}: the gcs backend needs a bucket")
        self.bucket_name = bucket
        self.project = project
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        #: ``https://host`` of a hostname bound to the bucket (a load balancer or CDN in
        #: front of it): delivery URLs, signed or not, use it instead of the API endpoint
        self.cdn_domain = _cdn_domain(name, cdn_domain) if cdn_domain else None
        try:
            deadline = float(retry_deadline)
        except (TypeError, ValueError):
            raise ConfigError(f"storage {name!r}: retry_deadline must be a number of "
                              "seconds") from None
        if deadline < 0:
            raise ConfigError(f"storage {name!r}: retry_deadline must be 0 (no retries) "
                              "or more seconds")
        #: transient failures (429, 5xx, connection resets) are retried until this passes
        self.retry: Retry | None = DEFAULT_RETRY.with_timeout(deadline) if deadline else None
        emulator = os.environ.get("STORAGE_EMULATOR_HOST", "").strip()
        self.emulator_host: str | None = None
        if emulator:
            self.emulator_host = (emulator if "://" in emulator
                                  else f"http://{emulator}").rstrip("/")
        signer = self._load_key(name, credentials_file) if credentials_file else None
        if self.emulator_host:
            # requests go to the emulator unauthenticated; a key only signs URLs
            self.client = gcs.Client(project=project or "rindle-emulator",
                                     credentials=_anonymous(),
                                     client_options={"api_endpoint": self.emulator_host})
        else:
            credentials = signer if signer is not None else self._default_credentials(name)
            try:
                # object calls need no project; the key's own is kept for reports
                self.client = gcs.Client(
                    project=project or getattr(credentials, "project_id", None),
                    credentials=credentials)
            except (GoogleAuthError, ValueError, OSError) as exc:
                raise ConfigError(f"storage {name!r}: cannot build the GCS client "
                                  f"({type(exc).__name__}); set `project` and check "
                                  "credentials") from None
            if signer is None and isinstance(credentials, Signing):
                signer = credentials  # ADC pointing at a service-account key
        self._signer: Credentials | None = signer
        self.endpoint = self.emulator_host or DEFAULT_ENDPOINT
        self.bucket = self.client.bucket(bucket)
        if self._signer is not None:
            self.capabilities = frozenset(
                {*type(self).capabilities, Capability.SIGNED_URL, Capability.PRESIGNED_PUT})

    @staticmethod
    def _load_key(name: str, path: str | os.PathLike[str]) -> Credentials:
        try:
            creds: Credentials = (
                _key_from_file(os.fspath(path), scopes=list(_SCOPES)))
        except FileNotFoundError:
            raise ConfigError(f"storage {name!r}: credentials_file {os.fspath(path)!r} does "
                              "not exist; point it at a service-account JSON key") from None
        except (ValueError, KeyError, OSError, GoogleAuthError) as exc:
            # never echo the file's content: it holds a private key
            raise ConfigError(f"storage {name!r}: credentials_file {os.fspath(path)!r} is not "
                              f"a service-account JSON key ({type(exc).__name__}); download "
                              "one from IAM > Service accounts > Keys") from None
        return creds

    @staticmethod
    def _default_credentials(name: str) -> Credentials:
        try:
            credentials, _ = google.auth.default(scopes=list(_SCOPES))
        except GoogleAuthError:
            raise ConfigError(
                f"storage {name!r}: no Google credentials found; set credentials_file to a "
                "service-account key, or set up Application Default Credentials "
                "(GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth application-default "
                "login`)") from None
        return credentials

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any], context: BackendContext
                      ) -> GCSStorage:
        """Build from ``[storages.NAME]``; an unknown setting, and a missing or empty
        ``bucket``, is a :class:`ConfigError` naming the table and the key.

        A relative ``credentials_file`` is resolved against the settings file's folder.
        """
        unknown = set(settings) - _SETTINGS
        if unknown:
            raise ConfigError(f"storage {name!r}: unknown setting(s) {sorted(unknown)} for "
                              f"the gcs backend; allowed: {', '.join(sorted(_SETTINGS))}")
        cls.check_settings(name, settings)  # "[storages.NAME] needs 'bucket' (...)"
        opts = dict(settings)
        if opts.get("credentials_file"):
            path = Path(str(opts["credentials_file"])).expanduser()
            opts["credentials_file"] = str(path if path.is_absolute()
                                           else context.base_dir / path)
        return cls(name=name, **opts)

    def __repr__(self) -> str:
        return f"<GCSStorage {self.name} gs://{self.bucket_name}/{self.prefix}>"

    # --- keys and errors -----------------------------------------------------------------

    def _key(self, key: str) -> str:
        if (not key or key.startswith("/") or any(c in key for c in "\x00\r\n")
                or key in {".", ".."}):
            raise StorageError(f"invalid storage key {key!r}")
        return self.prefix + key

    def _unprefix(self, name: str) -> str:
        return name[len(self.prefix):]

    def _fail(self, verb: str, key: str, exc: BaseException) -> StorageError:
        """``ObjectNotFound`` for a 404 about the object; ``StorageUnavailable`` for a 5xx,
        a 429, a timeout or no connection; ``StorageError`` for the rest."""
        if isinstance(exc, gexc.NotFound):
            if "bucket does not exist" in str(exc.message).lower():
                return self._no_bucket()
            return ObjectNotFound(key)
        if isinstance(exc, gexc.GoogleAPICallError):
            detail = f"HTTP {exc.code}: {exc.message or 'no message'}"
        elif isinstance(exc, gexc.RetryError):
            detail = f"gave up retrying after {type(exc.cause).__name__}"
        else:
            detail = type(exc).__name__
        kind = StorageUnavailable if isinstance(exc, _UNAVAILABLE) else StorageError
        return kind(f"gcs {verb} {key!r} in bucket {self.bucket_name!r} failed ({detail})")

    def _no_bucket(self) -> StorageError:
        return StorageError(f"gcs bucket {self.bucket_name!r} does not exist or is not "
                            "visible to these credentials; create it or fix `bucket`")

    @staticmethod
    def identity(generation: int | str | None) -> str | None:
        """The identity ``ObjectInfo.etag`` carries for an object of this generation:
        ``gen:<generation>``, or ``None`` when the generation is unknown.

        GCS gives every write of a name a new generation (also a write of identical
        bytes), and a metadata change keeps it; GCS's own etag changes with metadata, so
        rindle pins the generation instead.
        """
        return f"gen:{generation}" if generation not in (None, "") else None

    def _info(self, blob: Any, key: str) -> ObjectInfo:
        return ObjectInfo(key=key, size=int(blob.size or 0), content_type=blob.content_type,
                          etag=self.identity(blob.generation), last_modified=blob.updated)

    def check_bucket(self) -> None:
        """Raise :class:`StorageError` unless the bucket answers a one-object listing.

        Listing needs only ``storage.objects.list``, which any role that can read
        objects has (``buckets.get`` would need more than rindle uses).
        """
        try:
            for _ in self.client.list_blobs(self.bucket, max_results=1,
                                            prefix=self.prefix or None, retry=self.retry):
                break
        except gexc.NotFound:
            raise self._no_bucket() from None
        except _FAILURES as exc:
            raise self._fail("LIST", "", exc) from exc

    # --- core operations -----------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo:
        """Size, stored Content-Type, last update and identity of ``key``.

        ``etag`` is :meth:`identity` of the object's generation (``gen:<n>``), never GCS's
        etag: it changes whenever the object is written again, which is what rindle pins.
        """
        blob = self.bucket.blob(self._key(key))
        try:
            blob.reload(retry=self.retry)
        except _FAILURES as exc:
            raise self._fail("HEAD", key, exc) from exc
        return self._info(blob, key)

    def exists_many(self, keys: Sequence[str]) -> Sequence[bool | Exception]:
        """One metadata GET per key, after one check that the bucket itself answers.

        A missing bucket answers 404 exactly like a missing object (the emulator says no
        more); without the check a deleted or misnamed bucket would make every object look
        gone, and verify-storage would flip every variant to missing.
        """
        if not keys:
            return []
        try:
            self.check_bucket()
        except StorageError as exc:
            return [exc] * len(keys)
        return super().exists_many(keys)

    def delete(self, key: str) -> None:
        try:
            self.bucket.blob(self._key(key)).delete(retry=self.retry)
        except _FAILURES as exc:
            err = self._fail("DELETE", key, exc)
            if not isinstance(err, ObjectNotFound):
                raise err from exc

    def delete_many(self, keys: Sequence[str]) -> Sequence[Exception | None]:
        """Up to 100 DELETEs per batch request; one outcome per key, in order.

        A key already gone is success, after one check that the bucket answers. Each batch
        is its own connection object, so threads sharing the client never mix requests.
        """
        if not keys:
            return []
        try:
            self.check_bucket()  # a batch DELETE in a missing bucket answers 404 per key
        except StorageError as exc:
            return [exc] * len(keys)
        return delete_in_batches(keys, DELETE_BATCH, self._key, self._delete_batch)

    def _delete_batch(self, chunk: list[str]) -> dict[str, Exception]:
        """One batch request of DELETEs; the failures by object name (404 is success)."""
        try:
            batch = self.client.batch(raise_exception=False)
            for name in chunk:
                batch.api_request(method="DELETE", path=self.bucket.blob(name).path)
            responses = batch.finish(raise_exception=False)
        except _FAILURES as exc:
            raise self._fail("batch DELETE", self._unprefix(chunk[0]), exc) from exc
        failures: dict[str, Exception] = {}
        for name, response in zip(chunk, responses, strict=True):
            status = int(response.status_code)
            if 200 <= status < 300 or status == 404:
                continue
            kind = StorageUnavailable if _unavailable(status) else StorageError
            failures[name] = kind(f"gcs DELETE {self._unprefix(name)!r} in bucket "
                                          f"{self.bucket_name!r} failed (HTTP {status})")
        return failures

    def put(self, key: str, source: Path | BinaryIO, *, content_type: str | None = None
            ) -> ObjectInfo:
        """Upload ``source`` to ``key`` (replacing any object there); the answer's identity
        is the new generation, the one a later :meth:`head` reports."""
        blob = self.bucket.blob(self._key(key))
        try:
            if isinstance(source, (str, Path)):
                blob.upload_from_filename(str(source), content_type=content_type,
                                          retry=self.retry)
            else:
                blob.upload_from_file(source, content_type=content_type, retry=self.retry)
        except _FAILURES as exc:
            raise self._fail("PUT", key, exc) from exc
        if blob.generation is None:  # the upload answer lacked it: ask
            return self.head(key)
        return self._info(blob, key)

    def download(self, key: str, dest: Path) -> Path:
        """Stream the object into ``dest``; a failed download leaves no partial file."""
        try:
            self.bucket.blob(self._key(key)).download_to_filename(str(dest), retry=self.retry)
        except _FAILURES as exc:
            Path(dest).unlink(missing_ok=True)
            raise self._fail("GET", key, exc) from exc
        return dest

    def url(self, key: str, *, expires_in: int | None = None, disposition: str | None = None,
            content_type: str | None = None) -> str:
        """A URL for reading ``key``.

        A V4 signed GET whenever something is asked (an expiry, a disposition or a content
        type) and the storage can sign: its response carries ``disposition`` as
        Content-Disposition and ``content_type`` as Content-Type, whatever is stored
        (``response-content-disposition`` / ``response-content-type``, both signed); an
        expiry of ``None`` signs for the maximum, seven days. The plain object URL (public
        buckets) when nothing is asked, and also when only ``content_type`` is asked of a
        storage without a signing key: a plain URL cannot override the type, so it serves
        the Content-Type stored with the object, which on such a storage rindle set at
        upload (the sniffed type of a proxied upload, the declared and allow-listed type
        of a resumable one; without a key no signed PUT lets an uploader choose it). An
        expiry or a disposition without a key raises :class:`DeliveryUnsupported`.

        With ``cdn_domain`` set, both forms are on that host (a hostname bound to the bucket:
        the object name is the whole path) and the signature covers that host, as GCS's V4
        signing with a bucket-bound hostname specifies.
        """
        name = self._key(key)
        if expires_in is None and disposition is None and (
                content_type is None or self._signer is None):
            if self.cdn_domain:
                return f"{self.cdn_domain}/{quote(name, safe='/~')}"
            return f"{self.endpoint}/{self.bucket_name}/{quote(name, safe='/~')}"
        signer = self._require_signer("sign delivery URLs")
        seconds = MAX_SIGNED_SECONDS if expires_in is None else max(
            1, min(int(expires_in), MAX_SIGNED_SECONDS))
        where: dict[str, Any] = ({"bucket_bound_hostname": self.cdn_domain}
                                 if self.cdn_domain else {"api_access_endpoint": self.endpoint})
        return str(self.bucket.blob(name).generate_signed_url(
            version="v4", method="GET", expiration=dt.timedelta(seconds=seconds),
            credentials=signer, response_disposition=disposition,
            response_type=content_type, **where))

    def _require_signer(self, what: str) -> Credentials:
        if self._signer is None:
            raise DeliveryUnsupported(
                f"storage {self.name!r} (gcs) cannot {what}: it has no service-account key; "
                "set credentials_file to one (or point ADC at one), or make the profile "
                "public")
        return self._signer

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` with size, content type, last update and the same
        identity (``gen:<generation>``) :meth:`head` reports."""
        try:
            for blob in self.client.list_blobs(self.bucket, prefix=self.prefix + prefix,
                                               retry=self.retry):
                yield self._info(blob, self._unprefix(blob.name))
        except gexc.NotFound:
            raise self._no_bucket() from None
        except _FAILURES as exc:
            raise self._fail("LIST", prefix, exc) from exc

    # --- direct uploads --------------------------------------------------------------------

    def presign_put(self, key: str, *, expires_in: int, content_type: str | None = None,
                    max_bytes: int | None = None) -> PresignedRequest:
        """A V4 signed PUT (XML API) that can only create the object, never replace it.

        The URL signs ``x-goog-if-generation-match: 0``, the content type and, with
        ``max_bytes``, ``x-goog-content-length-range``; the returned headers carry them
        all and the client must send them. GCS then answers a PUT to a name that already
        holds an object with 412 Precondition Failed (the URL cannot swap the bytes after
        rindle verified them), a PUT that drops or alters a signed header with 403, and
        refuses a larger body; rindle checks the stored size again on verify either way.
        """
        signer = self._require_signer("presign uploads")
        headers: dict[str, str] = dict(CREATE_ONLY)
        if max_bytes is not None:
            headers["x-goog-content-length-range"] = f"0,{int(max_bytes)}"
        seconds = max(1, min(int(expires_in), MAX_SIGNED_SECONDS))
        url = self.bucket.blob(self._key(key)).generate_signed_url(
            version="v4", method="PUT", expiration=dt.timedelta(seconds=seconds),
            api_access_endpoint=self.endpoint, credentials=signer,
            content_type=content_type, headers=dict(headers))
        if content_type:
            headers["Content-Type"] = content_type
        return PresignedRequest(url=str(url), method="PUT", headers=headers,
                                expires_at=dt.datetime.now(dt.UTC)
                                + dt.timedelta(seconds=seconds))

    # --- resumable uploads (GCS-native; the ``resumable`` upload strategy) ---------------

    def initiate_resumable_upload(self, key: str, *, content_type: str | None = None,
                                  expected_size: int | None = None, origin: str | None = None
                                  ) -> ResumableSession:
        """Open a resumable session a browser can upload to (with ``origin`` for CORS)."""
        try:
            uri = self.bucket.blob(self._key(key)).create_resumable_upload_session(
                content_type=content_type, size=expected_size, origin=origin,
                retry=self.retry)
        except _FAILURES as exc:
            raise self._fail("resumable start", key, exc) from exc
        return ResumableSession(session_uri=str(uri),
                                expires_at=dt.datetime.now(dt.UTC) + RESUMABLE_TTL)

    def _session_request(self, method: str, session_uri: str, headers: Mapping[str, str]
                         ) -> tuple[int, dict[str, str]]:
        parts = urlsplit(session_uri)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise StorageError("not a resumable session URI")
        conn_type = (http.client.HTTPSConnection if parts.scheme == "https"
                     else http.client.HTTPConnection)
        conn = conn_type(parts.hostname, parts.port, timeout=30)
        try:
            conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""),
                         body=b"", headers=dict(headers))
            resp = conn.getresponse()
            resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}
        except OSError as exc:
            # the URI is a credential: name the failure, never the URI
            kind = StorageUnavailable if isinstance(exc, _UNAVAILABLE) else StorageError
            raise kind(f"gcs resumable {method} failed ({type(exc).__name__})") from exc
        finally:
            conn.close()

    def resumable_upload_status(self, key: str, session_uri: str) -> ResumableStatus:
        """Ask GCS how far the session got. A session GCS no longer knows is
        :class:`ObjectNotFound`; any other refusal is :class:`StorageError`."""
        status, headers = self._session_request(
            "PUT", session_uri, {"Content-Length": "0", "Content-Range": "bytes */*"})
        if status == 308:
            rng = headers.get("range", "")
            committed = int(rng.rsplit("-", 1)[1]) + 1 if rng.startswith("bytes=") else 0
            return ResumableStatus(committed_bytes=committed, state="in_progress")
        if 200 <= status < 300:
            size = headers.get("x-goog-stored-content-length")
            if size is None:
                size = str(self.head(key).size)
            return ResumableStatus(committed_bytes=int(size), state="complete")
        if status in (404, 410):
            raise ObjectNotFound(key)
        kind = StorageUnavailable if _unavailable(status) else StorageError
        raise kind(f"gcs resumable status of {key!r} failed (HTTP {status})")

    def verify_resumable_completion(self, key: str, session_uri: str) -> ObjectInfo:
        """The stored object once its session has finished. While bytes are still missing
        it raises :class:`ObjectNotFound`, as when nothing was stored; a session GCS no
        longer knows leaves the answer to the object itself."""
        try:
            status: ResumableStatus | None = self.resumable_upload_status(key, session_uri)
        except ObjectNotFound:
            status = None
        if status is not None and status.state != "complete":
            raise ObjectNotFound(key)
        return self.head(key)

    def cancel_resumable_upload(self, key: str, session_uri: str) -> None:
        """Cancel the session; a session already gone (404, 410) is success."""
        status, _ = self._session_request("DELETE", session_uri, {"Content-Length": "0"})
        if status in (200, 204, 404, 410, 499):
            return
        kind = StorageUnavailable if _unavailable(status) else StorageError
        raise kind(f"gcs resumable cancel of {key!r} failed (HTTP {status})")

    # --- compose ---------------------------------------------------------------------------

    def concatenate(self, final_key: str, source_keys: Sequence[str]) -> ObjectInfo | None:
        """Compose ``source_keys`` in order into ``final_key``, then delete the sources.

        More than 32 sources go through temporaries ``<final>-tmp-<HEX8>-<n>`` (the first 32
        into ``-0``, then the previous temporary plus up to 31 more each time), each removed
        once consumed, also on failure. No sources: nothing happens and ``None`` returns.
        """
        if not source_keys:
            return None
        names = [self._key(k) for k in source_keys]
        final = self._key(final_key)
        tag = secrets.token_hex(4).upper()
        previous: str | None = None
        chunk, rest = names[:COMPOSE_LIMIT], names[COMPOSE_LIMIT:]
        step = 0
        try:
            while True:
                target = final if not rest else f"{final}-tmp-{tag}-{step}"
                sources = [self.bucket.blob(n) for n in chunk]
                destination = self.bucket.blob(target)
                try:
                    destination.compose(sources, retry=self.retry)
                except _FAILURES as exc:
                    raise self._fail("compose", self._unprefix(target), exc) from exc
                if previous is not None:
                    self.delete(self._unprefix(previous))
                previous = target if rest else None
                if not rest:
                    break
                chunk, rest = [target, *rest[:COMPOSE_LIMIT - 1]], rest[COMPOSE_LIMIT - 1:]
                step += 1
        finally:
            if previous is not None:
                self.delete_many([self._unprefix(previous)])
        self.delete_many(source_keys)
        return self._info(destination, final_key)

    def describe(self) -> dict[str, Any]:
        """Bucket, prefix, project, endpoint and whether URLs can be signed; never keys."""
        return {**super().describe(), "bucket": self.bucket_name, "prefix": self.prefix,
                "project": self.project, "endpoint": self.endpoint,
                "cdn_domain": self.cdn_domain, "can_sign": self._signer is not None}
