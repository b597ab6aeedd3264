"""``backend = "s3"``: objects in an Amazon S3 (or S3-compatible) bucket, through boto3."""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserFactory, RestXMLParser
from botocore.utils import parse_timestamp

from rindle.errors import ConfigError, ObjectNotFound, StorageError, StorageUnavailable
from rindle.storage import (
    BackendContext,
    Capability,
    ObjectInfo,
    PresignedRequest,
    Storage,
    delete_in_batches,
)
from rindle_s3.cloudfront import CloudFrontSigner

__all__ = ["S3Storage"]

#: S3 refuses presigned URLs valid for longer than seven days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
#: ``DeleteObjects`` takes at most this many keys per request.
DELETE_BATCH = 1000
#: ``ListObjectsV2`` answers at most this many keys per request.
LIST_PAGE = 1000
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
#: Error codes that say "try again later" (throttling, timeouts, server trouble); a 500,
#: 502, 503 or 504 answer counts too (a 501 does not). Mapped to :class:`StorageUnavailable`.
_UNAVAILABLE = {"SlowDown", "RequestTimeout", "ServiceUnavailable", "Throttling",
                "ThrottlingException", "RequestThrottled", "InternalError", "503", "500"}
#: Network failures: no connection (EndpointConnectionError, ConnectTimeoutError and the
#: other botocore ConnectionErrors), a read timeout, a connection dropped mid-answer.
_NETWORK = (BotoConnectionError, ReadTimeoutError, ConnectionClosedError)
#: The header a create-only write carries: S3 refuses it (412) once the key holds an object.
CREATE_ONLY = {"If-None-Match": "*"}
_SETTINGS = {"bucket", "prefix", "region", "endpoint_url", "access_key_id",
             "secret_access_key", "session_token", "public_base_url", "addressing_style",
             "max_pool_connections", "cloudfront_domain", "cloudfront_key_pair_id",
             "cloudfront_private_key", "cloudfront_private_key_file"}


def _cloudfront(storage: str, domain: str | None, key_pair_id: str | None, pem: str | None,
                pem_file: str | os.PathLike[str] | None) -> CloudFrontSigner | None:
    """The signer the ``cloudfront_*`` settings describe, or ``None`` without a domain."""
    if not domain:
        if key_pair_id or pem or pem_file:
            raise ConfigError(f"storage {storage!r}: cloudfront_key_pair_id and "
                              "cloudfront_private_key(_file) need cloudfront_domain")
        return None
    if (pem is None) == (pem_file is None):
        raise ConfigError(f"storage {storage!r}: cloudfront_domain needs exactly one of "
                          "cloudfront_private_key (PEM text) and cloudfront_private_key_file")
    if pem_file is not None:
        try:
            pem = Path(pem_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"storage {storage!r}: cannot read cloudfront_private_key_file "
                              f"{os.fspath(pem_file)!r} ({type(exc).__name__})") from None
    return CloudFrontSigner(storage=storage, domain=domain, key_pair_id=key_pair_id or "",
                            private_key=pem or "")


def _timestamp(value: str) -> dt.datetime:
    """An S3 timestamp as an aware datetime: ISO 8601 (listings) by ``fromisoformat``,
    hundreds of times faster than botocore's dateutil parser, which a listing of N keys
    runs N times; anything else (HTTP dates in headers) by botocore's own parser."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        # botocore ships no types; parse_timestamp returns an aware datetime or raises
        stamp: dt.datetime = parse_timestamp(value)
        return stamp
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class _ListingParser(RestXMLParser):  # type: ignore[misc]  # botocore ships no types
    """botocore's REST-XML parser, with a direct path for the entries of an S3 listing.

    botocore parses each ``<Contents>`` entry through its generic, model-driven walk (a
    lookup and a call per field); a listing of N keys runs it N times. The entries' plain
    fields are read here directly, to the same values; an entry with any other field
    (``Owner``, ``RestoreStatus``) goes the generic way.
    """

    def _handle_structure(self, shape: Any, node: Any) -> Any:
        if shape.name != "Object":
            return super()._handle_structure(shape, node)
        parsed: dict[str, Any] = {}
        for child in node:
            tag, text = child.tag.rpartition("}")[2], child.text or ""
            if tag in _TEXT_FIELDS:
                parsed[tag] = text
            elif tag == "Size":
                parsed[tag] = int(text)
            elif tag == "LastModified":
                parsed[tag] = self._timestamp_parser(text)
            elif tag == "ChecksumAlgorithm":  # a flattened list: one element per value
                parsed.setdefault(tag, []).append(text)
            else:
                return super()._handle_structure(shape, node)
        return parsed


#: The string fields of a listing entry, taken as their text.
_TEXT_FIELDS = frozenset({"Key", "ETag", "StorageClass", "ChecksumType"})


class _ParserFactory(ResponseParserFactory):  # type: ignore[misc]  # untyped, as above
    """Hands out :class:`_ListingParser` for S3's protocol (REST-XML)."""

    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "rest-xml":
            return _ListingParser(**self._defaults)
        return super().create_parser(protocol_name)


def _botocore_session() -> botocore.session.Session:
    """A botocore session whose responses parse timestamps with :func:`_timestamp` and
    listing entries with :class:`_ListingParser` (this session only: botocore's defaults
    elsewhere in the process are untouched)."""
    session = botocore.session.get_session()
    factory = _ParserFactory()
    factory.set_parser_defaults(timestamp_parser=_timestamp)
    session.register_component("response_parser_factory", factory)
    return session


class S3Storage(Storage):
    """A bucket (optionally a key prefix inside it) holding rindle's objects.

    Every method maps "no such key" to :class:`ObjectNotFound`, a timeout, a failed
    connection, throttling or a 5xx answer to :class:`StorageUnavailable` (a
    :class:`StorageError` the worker may retry), and any other service failure to
    :class:`StorageError`; no message carries credentials.
    One client is shared by all threads (boto3 clients are thread-safe).
    """

    backend_name = "s3"
    setting_descriptions = {
        "bucket": "the S3 bucket name",
        "endpoint_url": "the S3-compatible service's URL, e.g. http://127.0.0.1:9000",
    }
    capabilities = frozenset({
        Capability.PRESIGNED_PUT,
        Capability.MULTIPART_UPLOAD,
        Capability.APPEND_UPLOAD,
        Capability.SIGNED_URL,
        Capability.HEAD,
        Capability.LIST,
        Capability.LIST_AFTER,
    })

    def __init__(self, *, name: str, bucket: str, prefix: str = "", region: str | None = None,
                 endpoint_url: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, session_token: str | None = None,
                 public_base_url: str | None = None, addressing_style: str = "auto",
                 max_pool_connections: int = 32, cloudfront_domain: str | None = None,
                 cloudfront_key_pair_id: str | None = None,
                 cloudfront_private_key: str | None = None,
                 cloudfront_private_key_file: str | os.PathLike[str] | None = None) -> None:
        super().__init__(name=name)
        if not bucket:
            raise ConfigError(f"storage {name!r}: the s3 backend needs a bucket")
        if (access_key_id is None) != (secret_access_key is None):
            raise ConfigError(f"storage {name!r}: set both access_key_id and "
                              "secret_access_key, or neither (boto3's credential chain)")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.region = region
        self.endpoint_url = endpoint_url
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        #: signs delivery URLs on a CloudFront distribution instead of presigning S3 GETs
        self.cloudfront = _cloudfront(name, cloudfront_domain, cloudfront_key_pair_id,
                                      cloudfront_private_key, cloudfront_private_key_file)
        config = Config(signature_version="s3v4", max_pool_connections=max_pool_connections,
                        s3={"addressing_style": addressing_style},
                        retries={"max_attempts": 3, "mode": "standard"})
        self.client = boto3.session.Session(botocore_session=_botocore_session()).client(
            "s3", region_name=region, endpoint_url=endpoint_url, config=config,
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            aws_session_token=session_token)

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any], context: BackendContext
                      ) -> S3Storage:
        """Build from ``[storages.NAME]``; an unknown setting, and a missing or empty
        ``bucket``, is a :class:`ConfigError` naming the table and the key."""
        unknown = set(settings) - _SETTINGS
        if unknown:
            raise ConfigError(f"storage {name!r}: unknown setting(s) {sorted(unknown)} for "
                              f"the s3 backend; allowed: {', '.join(sorted(_SETTINGS))}")
        cls.check_settings(name, settings)  # "[storages.NAME] needs 'bucket' (...)"
        opts = dict(settings)
        if opts.get("cloudfront_private_key_file"):
            path = Path(str(opts["cloudfront_private_key_file"])).expanduser()
            opts["cloudfront_private_key_file"] = str(path if path.is_absolute()
                                                      else context.base_dir / path)
        return cls(name=name, **opts)

    def __repr__(self) -> str:
        return f"<S3Storage {self.name} s3://{self.bucket}/{self.prefix}>"

    # --- keys and errors -----------------------------------------------------------------

    def _key(self, key: str) -> str:
        if not key or key.startswith("/") or "\x00" in key:
            raise StorageError(f"invalid storage key {key!r}")
        return self.prefix + key

    def _unprefix(self, s3_key: str) -> str:
        return s3_key[len(self.prefix):]

    def _fail(self, verb: str, key: str, exc: Exception) -> StorageError:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in _NOT_FOUND:
                return ObjectNotFound(key)
            detail = f"{code}: {error.get('Message') or 'no message'}"
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            unavailable = code in _UNAVAILABLE or status in (500, 502, 503, 504)
        else:
            detail = type(exc).__name__
            unavailable = isinstance(exc, _NETWORK)
        kind = StorageUnavailable if unavailable else StorageError
        return kind(f"s3 {verb} {key!r} in bucket {self.bucket!r} failed ({detail})")

    # --- core operations -----------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo:
        """Size, stored Content-Type, ETag (quotes stripped) and last-modified of ``key``.

        The ETag is the identity rindle pins at verify: S3 derives it from the content
        (MD5, or MD5-of-part-MD5s plus ``-N`` for multipart uploads), so any replacement
        with other bytes changes it; a replacement with identical bytes keeps it.
        """
        try:
            got = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("HEAD", key, exc) from exc
        return ObjectInfo(key=key, size=int(got["ContentLength"]),
                          content_type=got.get("ContentType"),
                          etag=str(got.get("ETag", "")).strip('"') or None,
                          last_modified=got.get("LastModified"))

    def exists_many(self, keys: Sequence[str]) -> Sequence[bool | Exception]:
        """HEAD per key, after one check that the bucket itself answers.

        A HEAD on a missing bucket is a bare 404, exactly like a missing key; without the
        bucket check a deleted or misnamed bucket would make every object look gone.
        """
        if not keys:
            return []
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            failure = self._fail("HeadBucket", "", exc)
            if isinstance(failure, ObjectNotFound):
                failure = StorageError(f"s3 bucket {self.bucket!r} does not exist or is not "
                                       "reachable with these credentials")
            return [failure] * len(keys)
        return super().exists_many(keys)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            err = self._fail("DELETE", key, exc)
            if not isinstance(err, ObjectNotFound):
                raise err from exc

    def delete_many(self, keys: Sequence[str]) -> Sequence[Exception | None]:
        """Up to 1,000 keys per ``DeleteObjects`` request; one outcome per key, in order."""
        return delete_in_batches(keys, DELETE_BATCH, self._key, self._delete_objects)

    def _delete_objects(self, chunk: list[str]) -> dict[str, Exception]:
        """One ``DeleteObjects`` request; the failures by S3 key (a key already gone is
        success)."""
        try:
            got = self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in chunk], "Quiet": True})
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("DeleteObjects", chunk[0], exc) from exc
        failures: dict[str, Exception] = {}
        for error in got.get("Errors", []):
            code = str(error.get("Code", ""))
            if code in _NOT_FOUND:
                continue
            kind = StorageUnavailable if code in _UNAVAILABLE else StorageError
            failures[error["Key"]] = kind(
                f"s3 DELETE {self._unprefix(error['Key'])!r} failed "
                f"({code}: {error.get('Message') or 'no message'})")
        return failures

    def put(self, key: str, source: Path | BinaryIO, *, content_type: str | None = None
            ) -> ObjectInfo:
        """Upload ``source`` to ``key`` (replacing any object there); returns its
        :meth:`head`, so the ETag is the one a later ``head`` reports."""
        extra = {"ContentType": content_type} if content_type else {}
        try:
            if isinstance(source, (str, Path)):
                self.client.upload_file(str(source), self.bucket, self._key(key),
                                        ExtraArgs=extra)
            else:
                self.client.upload_fileobj(source, self.bucket, self._key(key),
                                           ExtraArgs=extra)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("PUT", key, exc) from exc
        return self.head(key)

    def download(self, key: str, dest: Path) -> Path:
        try:
            self.client.download_file(self.bucket, self._key(key), str(dest))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("GET", key, exc) from exc
        return dest

    def url(self, key: str, *, expires_in: int | None = None, disposition: str | None = None,
            content_type: str | None = None) -> str:
        """A URL for reading ``key``.

        The unsigned ``public_base_url`` form only when it is set and nothing is asked of
        the response (no expiry, no disposition, no content type): a plain URL serves the
        Content-Type stored with the object, which for a direct upload is whatever the
        uploader's PUT carried. Otherwise a presigned GET (an expiry of ``None`` becomes
        S3's maximum, seven days) whose response carries ``disposition`` as
        Content-Disposition and ``content_type`` as Content-Type, whatever is stored
        (``response-content-disposition`` / ``response-content-type``, covered by the
        signature).

        With ``cloudfront_domain`` set, that signed URL is a CloudFront one instead (canned
        policy, valid for ``expires_in`` seconds, seven days when ``None``); the two
        ``response-*`` parameters are then part of the signed URL, and the distribution's
        origin request policy must forward them to S3.
        """
        if (self.public_base_url and expires_in is None and disposition is None
                and content_type is None):
            return f"{self.public_base_url}/{quote(self._key(key))}"
        if self.cloudfront is not None:
            return self._cloudfront_url(key, expires_in, disposition, content_type)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if disposition:
            params["ResponseContentDisposition"] = disposition
        if content_type:
            params["ResponseContentType"] = content_type
        seconds = MAX_PRESIGN_SECONDS if expires_in is None else min(int(expires_in),
                                                                     MAX_PRESIGN_SECONDS)
        return str(self.client.generate_presigned_url("get_object", Params=params,
                                                      ExpiresIn=seconds))

    def _cloudfront_url(self, key: str, expires_in: int | None, disposition: str | None,
                        content_type: str | None) -> str:
        assert self.cloudfront is not None
        query = urlencode([(name, value) for name, value in (
            ("response-content-disposition", disposition),
            ("response-content-type", content_type)) if value], quote_via=quote)
        seconds = MAX_PRESIGN_SECONDS if expires_in is None else max(1, int(expires_in))
        resource = self.cloudfront.resource(self._key(key), query)
        return self.cloudfront.sign(resource, int(time.time()) + seconds)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``: key, size, ETag (the form :meth:`head` reports)
        and last-modified; no content type (listing does not return it)."""
        return self._list_pages(prefix, {})

    def list_after(self, prefix: str, start_after: str, *, limit: int | None = None
                   ) -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` whose key sorts after ``start_after``, in key order
        (the first ``limit`` of them when set): ``ListObjectsV2`` with ``StartAfter``, up to
        1,000 keys per request, and no request asking for more than ``limit`` keys in all."""
        return self._list_pages(prefix, {"StartAfter": self.prefix + start_after}, limit)

    def _list_pages(self, prefix: str, extra: Mapping[str, str], limit: int | None = None
                    ) -> Iterator[ObjectInfo]:
        """``ListObjectsV2`` page after page; with ``limit``, each request asks for at most
        the keys still wanted (``MaxKeys``), so nothing past the limit is sent or parsed."""
        left = None if limit is None else max(1, limit)
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix,
                                  **extra}
        try:
            while True:
                page = self.client.list_objects_v2(
                    **params, MaxKeys=LIST_PAGE if left is None else min(left, LIST_PAGE))
                for obj in page.get("Contents", []):
                    yield ObjectInfo(key=self._unprefix(obj["Key"]), size=int(obj["Size"]),
                                     etag=str(obj.get("ETag", "")).strip('"') or None,
                                     last_modified=obj.get("LastModified"))
                if left is not None:
                    left -= len(page.get("Contents", []))
                    if left <= 0:
                        return
                token = page.get("NextContinuationToken")
                if not page.get("IsTruncated") or not token:
                    return
                params["ContinuationToken"] = token
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("LIST", prefix, exc) from exc

    # --- direct uploads --------------------------------------------------------------------

    def presign_put(self, key: str, *, expires_in: int, content_type: str | None = None,
                    max_bytes: int | None = None) -> PresignedRequest:
        """A presigned PUT that can only create the object, never replace it.

        The URL signs ``If-None-Match: *`` (and the content type, when given), and the
        returned headers carry both: the client must send them. S3 then answers a PUT to a
        key that already holds an object with 412 PreconditionFailed, so the URL cannot
        swap the bytes after rindle verified them, and answers a PUT without the header
        with 403 SignatureDoesNotMatch. An S3-compatible store without conditional writes
        ignores the header (rindle's pinned ETag still catches a replacement). S3 cannot
        cap a PUT's size; rindle checks it on verify.
        """
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key),
                                  "IfNoneMatch": CREATE_ONLY["If-None-Match"]}
        headers: dict[str, str] = dict(CREATE_ONLY)
        if content_type:
            params["ContentType"] = content_type
            headers["Content-Type"] = content_type
        seconds = min(int(expires_in), MAX_PRESIGN_SECONDS)
        url = self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=seconds)
        return PresignedRequest(url=str(url), method="PUT", headers=headers,
                                expires_at=dt.datetime.now(dt.UTC)
                                + dt.timedelta(seconds=seconds))

    def initiate_multipart(self, key: str, *, content_type: str | None = None) -> str:
        extra = {"ContentType": content_type} if content_type else {}
        try:
            got = self.client.create_multipart_upload(Bucket=self.bucket, Key=self._key(key),
                                                      **extra)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("CreateMultipartUpload", key, exc) from exc
        return str(got["UploadId"])

    def presign_part(self, key: str, upload_id: str, part_number: int, *, expires_in: int
                     ) -> PresignedRequest:
        seconds = min(int(expires_in), MAX_PRESIGN_SECONDS)
        url = self.client.generate_presigned_url(
            "upload_part", ExpiresIn=seconds,
            Params={"Bucket": self.bucket, "Key": self._key(key), "UploadId": upload_id,
                    "PartNumber": int(part_number)})
        return PresignedRequest(url=str(url), method="PUT",
                                expires_at=dt.datetime.now(dt.UTC)
                                + dt.timedelta(seconds=seconds))

    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[Mapping[str, Any]]
                           ) -> None:
        """Assemble the parts, in part-number order, into the object at ``key``.

        Create-only, like :meth:`presign_put`: the request carries ``If-None-Match: *``, so
        S3 refuses (412) to complete over an object already at ``key``, and that refusal
        is a :class:`StorageError`, unless the object there is exactly the one these parts
        make (same multipart ETag): then an earlier attempt of this same completion
        succeeded and its answer was lost, and this one succeeds too.
        """
        numbered = sorted((int(p["part_number"]), str(p["etag"])) for p in parts)
        ordered = [{"PartNumber": n, "ETag": etag} for n, etag in numbered]
        try:
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=self._key(key),
                                                  UploadId=upload_id,
                                                  MultipartUpload={"Parts": ordered},
                                                  IfNoneMatch=CREATE_ONLY["If-None-Match"])
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "PreconditionFailed" and self._holds_parts(key, numbered):
                return
            raise self._fail("CompleteMultipartUpload", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("CompleteMultipartUpload", key, exc) from exc

    def _holds_parts(self, key: str, numbered: Sequence[tuple[int, str]]) -> bool:
        """Whether the object at ``key`` has the multipart ETag these parts produce (the
        MD5 of the parts' binary MD5s, then ``-N``); unknown answers are ``False``."""
        try:
            digest = hashlib.md5(b"".join(bytes.fromhex(etag.strip('"'))
                                          for _, etag in numbered), usedforsecurity=False)
            return self.head(key).etag == f"{digest.hexdigest()}-{len(numbered)}"
        except (ValueError, StorageError):
            return False

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._key(key),
                                               UploadId=upload_id)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in {"NoSuchUpload", *_NOT_FOUND}:
                raise self._fail("AbortMultipartUpload", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("AbortMultipartUpload", key, exc) from exc

    def upload_part(self, key: str, upload_id: str, part_number: int, source: Path) -> str:
        """``UploadPart`` of the file ``source``; returns the part's ETag (quotes
        stripped). The tus server feeds its multipart uploads this way."""
        try:
            with open(source, "rb") as body:
                got = self.client.upload_part(Bucket=self.bucket, Key=self._key(key),
                                              UploadId=upload_id, PartNumber=int(part_number),
                                              Body=body)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("UploadPart", key, exc) from exc
        return str(got["ETag"]).strip('"')

    def list_parts(self, key: str, upload_id: str) -> builtins.list[dict[str, Any]]:
        """Every part uploaded so far (``ListParts``, all pages), in part-number order;
        ETags as S3 reports them (quoted). An unknown upload id is ``ObjectNotFound``."""
        out: list[dict[str, Any]] = []
        marker = 0
        try:
            while True:
                got = self.client.list_parts(Bucket=self.bucket, Key=self._key(key),
                                             UploadId=upload_id, PartNumberMarker=marker)
                out.extend({"part_number": int(p["PartNumber"]), "size": int(p["Size"]),
                            "etag": str(p["ETag"])} for p in got.get("Parts", []))
                if not got.get("IsTruncated"):
                    break
                marker = int(got["NextPartNumberMarker"])
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) == "NoSuchUpload":
                raise ObjectNotFound(key) from exc
            raise self._fail("ListParts", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("ListParts", key, exc) from exc
        return sorted(out, key=lambda p: int(p["part_number"]))

    def describe(self) -> dict[str, Any]:
        """Bucket, prefix, region and endpoint; never credentials."""
        return {**super().describe(), "bucket": self.bucket, "prefix": self.prefix,
                "region": self.region, "endpoint_url": self.endpoint_url,
                "cloudfront": self.cloudfront.base_url if self.cloudfront else None}
