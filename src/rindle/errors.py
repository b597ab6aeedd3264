"""Every error rindle raises, each with a stable ``code``.

The tree (a class with two parents is drawn under both; ``+`` marks its second place)::

    RindleError                      root; ``.code`` is a stable string
    ├── ConfigError                  misuse: settings file, environment, app construction
    │   ├── UnknownBackend           a storage/provider backend name nobody registered
    │   ├── UnknownProfile           a profile name that is not configured
    │   ├── DatabaseUnavailable      the database URL cannot be connected to
    │   └── AddressInUse             ``rindle serve``: another process holds host:port
    ├── UsageError                   misuse: an operation called with options that cannot work
    ├── SchemaOutOfDate              the database is not at the shipped migration head
    │                                (``database_missing``: no SQLite file yet)
    ├── ProfileError                 a Profile class declared with a bad option
    ├── PluginError                  a plugin registered something invalid
    ├── NotFound                     a row that does not exist
    │   └── AssetNotReady            an asset that has not passed promotion (no URL yet)
    ├── InvalidTransition            an FSM edge that the table forbids, or a lost race
    ├── TransientError               retrying later can succeed; never ``permanent``
    │   ├── DatabaseUnavailable +    (also a ConfigError) the server may come back
    │   ├── StorageUnavailable +     (also a StorageError) timeout, no connection, 5xx
    │   ├── ProviderUnavailable +    (also a ProviderSyncFailed) timeout, no connection, 5xx
    │   └── ProviderQuotaExceeded +  (also a ProviderSyncFailed) wait ``retry_after``
    ├── Rejected                     the input was refused; ``permanent``, ``.reason`` says why
    │   ├── UploadRejected           refused by the profile policy (``code`` is the reason)
    │   ├── Forbidden                the delivery authorizer refused to sign a private URL
    │   └── WebhookInvalid +         (also a StreamingError) failed verification
    ├── UploadUnsupported            a strategy the storage cannot do (never silently downgraded)
    ├── DeliveryUnsupported          a delivery mode the storage cannot do
    ├── StorageError                 a storage backend failed (network, auth, ...)
    │   ├── ObjectNotFound           the object is not in storage (only this means "missing")
    │   └── StorageUnavailable       timed out, unreachable, 5xx or throttled: retry later
    ├── ProcessingError              probing, analysis or transcoding failed
    │   └── OriginalChanged          the stored original is not the object verify checked
    ├── JobError                     misuse of the jobs API (unknown kind, bad args)
    └── StreamingError               streaming-provider failures (rindle.streaming)
        ├── StreamingNotConfigured   no provider / streaming config for what was asked
        ├── ProviderSyncFailed       a provider call failed (HTTP error, bad answer)
        │   ├── ProviderUnavailable     timed out, unreachable or 5xx: retry later
        │   ├── ProviderQuotaExceeded   the provider rate-limited us (429); retry_after
        │   └── ProviderAssetNotFound   the provider has no such asset (404)
        ├── ProviderAssetNotReady    no playable provider asset yet
        └── WebhookInvalid           a webhook failed verification (signature, age, JSON)

Library code raises these; the CLI turns them into one-line messages and exit codes
(``UsageError``: exit 2; every other: exit 1).

Three families say what to do about a failure. *Misuse* (``ConfigError``, ``UsageError``,
``JobError``, ``ProfileError``, ``PluginError``) is fixed by changing the call or the
settings. :class:`TransientError` may succeed later: the job queue retries it.
:class:`Rejected` is a refusal of the input itself, which no retry changes.

``DatabaseUnavailable`` is raised by :meth:`rindle.database.Database.check_connection`,
which runs both when an app is built and at run time (health checks, the worker). It stays
a ``ConfigError`` (a wrong URL is the usual cause at start-up, and ``except ConfigError``
keeps catching it) and is also a ``TransientError`` (a server that is down may come back).
A storage or provider call that times out, cannot connect, gets a 5xx answer or is
throttled raises :class:`StorageUnavailable` / :class:`ProviderUnavailable` (codes
``storage_unavailable`` / ``provider_unavailable``): still a ``StorageError`` /
``ProviderSyncFailed``, so ``except`` clauses for those keep catching it, and also a
``TransientError``. Other backend failures (auth, a refused request, an unreadable answer)
stay plain ``StorageError`` / ``ProviderSyncFailed``.

``permanent`` marks a failure that retrying cannot fix because the input or the recipe is
at fault: an image over ``max_pixels``, a file that cannot be decoded, a video declaring a
duration over the cap. It is True for every :class:`Rejected`, False for every
:class:`TransientError` and by default for the rest; a raise site may override it per
instance (``permanent=``). The job queue settles a job that raises a permanent error as
``discarded`` after that one attempt instead of retrying it; failures that depend on the
host (storage, a timeout, a crashed or missing tool) stay retryable.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AddressInUse",
    "AssetNotReady",
    "ConfigError",
    "DatabaseUnavailable",
    "DeliveryUnsupported",
    "Forbidden",
    "InvalidTransition",
    "JobError",
    "NotFound",
    "ObjectNotFound",
    "OriginalChanged",
    "PluginError",
    "ProcessingError",
    "ProfileError",
    "ProviderAssetNotFound",
    "ProviderAssetNotReady",
    "ProviderQuotaExceeded",
    "ProviderSyncFailed",
    "ProviderUnavailable",
    "Rejected",
    "RindleError",
    "SchemaOutOfDate",
    "StorageError",
    "StorageUnavailable",
    "StreamingError",
    "StreamingNotConfigured",
    "TransientError",
    "UnknownBackend",
    "UnknownProfile",
    "UploadRejected",
    "UploadUnsupported",
    "UsageError",
    "WebhookInvalid",
]


class RindleError(Exception):
    """Root of every rindle error; ``code`` is stable and safe to branch on."""

    code: str = "rindle_error"
    #: True when retrying cannot help (the input or the recipe is at fault): a job that
    #: raises it is discarded at once instead of retried. ``permanent=`` overrides it.
    permanent: bool = False

    def __init__(self, message: str, *, code: str | None = None,
                 permanent: bool | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if permanent is not None:
            self.permanent = permanent

    @property
    def message(self) -> str:
        """The human-readable message, which says what to do next."""
        return str(self.args[0]) if self.args else self.code


class TransientError(RindleError):
    """Root of failures that can succeed when tried again later (a server that is down, a
    rate limit); never ``permanent`` unless a raise site says so."""

    code = "transient_error"
    permanent = False


class Rejected(RindleError):
    """Root of refusals of the input itself; ``permanent``, and ``reason`` says why.

    ``reason`` is the stable refusal reason: the ``code`` unless a subclass keeps its own.
    """

    code = "rejected"
    permanent = True
    _reason: str | None = None

    @property
    def reason(self) -> str:
        """The stable reason of the refusal (for branching and telemetry)."""
        return self._reason if self._reason is not None else self.code


class ConfigError(RindleError):
    """Raised when settings are malformed or name something that does not exist."""

    code = "config_error"


class UnknownBackend(ConfigError):
    """Raised when a storage or provider backend name has no registered implementation.

    The message lists what is installed and the distribution that would provide the
    missing name (``pip install rindle-s3``) when rindle knows one.
    """

    code = "unknown_backend"

    #: Distributions that provide well-known backend names.
    KNOWN_PACKAGES: dict[str, str] = {"s3": "rindle-s3", "gcs": "rindle-gcs", "mux": "rindle-mux",
                                      "celery": "rindle-celery"}

    def __init__(self, kind: str, name: str, installed: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.installed = sorted(installed)
        listed = ", ".join(self.installed) or "none"
        hint = self.KNOWN_PACKAGES.get(name)
        fix = (
            f" Install it with `pip install {hint}`."
            if hint
            else " Check the spelling, or install the plugin that provides it."
        )
        super().__init__(
            f"unknown {kind} backend {name!r}; installed {kind} backends: {listed}.{fix}"
        )


class UnknownProfile(ConfigError):
    """Raised when a profile name is not among the app's configured profiles."""

    code = "unknown_profile"

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"unknown profile {name!r}; configured profiles: {listed}. "
            "Add it to `profiles` in rindle.toml or pass it to Rindle(profiles=[...])."
        )


class DatabaseUnavailable(ConfigError, TransientError):
    """Raised when the configured database cannot be reached; the URL is shown redacted.

    A ``ConfigError`` (the URL may be wrong) and a ``TransientError`` (the server may be
    down and come back), whether raised while building the app or at run time.
    """

    code = "database_unavailable"


class AddressInUse(ConfigError):
    """``rindle serve`` cannot listen: another process already holds ``host:port``.

    An environment problem, like an unreachable database (exit status 1): the message says
    to pick another ``--port`` (or ``0`` for any free one) or stop the other process.
    """

    code = "address_in_use"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(
            f"cannot listen on {host}:{port}: the address is already in use by another "
            "process; pick another --port (0 picks any free one) or stop the process "
            f"holding {port}"
        )


class SchemaOutOfDate(RindleError):
    """Raised when the database schema is not at the migrations shipped with rindle; the
    message names the fix (``rindle migrate``).

    ``code`` is ``database_missing`` when the SQLite file does not exist yet (rindle
    never creates it outside a migration), else ``schema_out_of_date``.
    """

    code = "schema_out_of_date"


class ProfileError(RindleError):
    """Raised when a Profile class is declared with an invalid option; names the key."""

    code = "invalid_profile"

    def __init__(self, message: str, *, key: str | None = None) -> None:
        self.key = key
        super().__init__(message)


class PluginError(RindleError):
    """Raised when a plugin registers something invalid (wrong base class, duplicate name)."""

    code = "plugin_error"


class NotFound(RindleError):
    """Raised when a row (asset, session, variant, job) does not exist."""

    code = "not_found"

    def __init__(self, entity: str, ident: object) -> None:
        self.entity = entity
        self.ident = ident
        super().__init__(f"{entity} {ident} not found")


class AssetNotReady(NotFound):
    """Raised when a URL is asked for an asset that has not passed promotion.

    Staged, validating, analyzing and promoting assets have bytes nobody checked yet, and a
    quarantined asset's bytes failed the check: none of them is delivered.
    """

    code = "asset_not_ready"

    def __init__(self, ident: object, state: str) -> None:
        self.state = state
        super().__init__("asset", ident)
        self.args = (f"asset {ident} is {state}: only assets that passed promotion are "
                     "delivered; wait until it is available (or ready)",)


class InvalidTransition(RindleError):
    """Raised when a state change is not an edge of the entity's FSM.

    Also raised when the row moved on before the guarded ``UPDATE`` ran (a concurrent
    worker won); ``from_state`` is then the state the caller expected.
    """

    code = "invalid_transition"

    def __init__(self, entity: str, from_state: str | None, to_state: str, *,
                 detail: str | None = None) -> None:
        self.entity = entity
        self.from_state = from_state
        self.to_state = to_state
        msg = f"invalid {entity} transition {from_state!r} -> {to_state!r}"
        if detail:
            msg = f"{msg}: {detail}"
        super().__init__(msg)


class UploadRejected(Rejected):
    """Raised when an upload violates its profile's policy; ``code`` is the reason (and so
    is ``reason``, its alias).

    Reasons: ``mime_not_allowed``, ``extension_mime_mismatch``, ``extension_not_allowed``,
    ``missing_extension``, ``max_bytes_exceeded``, ``max_pixels_exceeded``, ``unknown_mime``,
    ``empty_upload``, ``invalid_image``.
    """

    code = "upload_rejected"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, code=reason)


class Forbidden(Rejected):
    """Raised when the app's delivery authorizer (``[delivery] authorizer``) refuses to
    sign a private URL for the actor asking: ``authorizer(actor, asset, variant)``
    answered anything but ``True``. ``asset_id`` and ``variant`` name what was asked."""

    code = "delivery_forbidden"

    def __init__(self, asset_id: object, variant: str | None) -> None:
        self.asset_id = asset_id
        self.variant = variant
        what = f"variant {variant!r} of asset {asset_id}" if variant else f"asset {asset_id}"
        super().__init__(f"the delivery authorizer refused a URL for {what} to this actor; "
                         "pass actor= for someone it allows, or change the authorizer")


class UploadUnsupported(RindleError):
    """Raised when the storage lacks the capability an upload strategy needs."""

    code = "upload_unsupported"


class DeliveryUnsupported(RindleError):
    """Raised when the storage lacks the capability a delivery mode needs."""

    code = "delivery_unsupported"


class StorageError(RindleError):
    """Raised when a storage backend fails for any reason other than a missing object."""

    code = "storage_error"


class ObjectNotFound(StorageError):
    """Raised by a backend when the object does not exist; nothing else maps to it."""

    code = "storage_object_missing"

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"object {key!r} is not in storage")


class StorageUnavailable(StorageError, TransientError):
    """Raised when a storage backend times out, cannot be connected to, answers with a
    server error (5xx) or throttles the request; trying again later can succeed.

    Still a :class:`StorageError`, so ``except StorageError`` keeps catching it.
    """

    code = "storage_unavailable"


class ProcessingError(RindleError):
    """Raised when probing, analysis or transcoding cannot produce a result."""

    code = "processing_failed"


class OriginalChanged(ProcessingError):
    """Raised when the stored original no longer matches the identity pinned at verify
    (size and ETag/generation) or the sha256 computed at promotion; the asset is
    quarantined with ``original_changed`` and nothing is processed."""

    code = "original_changed"


class JobError(RindleError):
    """Raised when the jobs API is misused (unknown kind, unserialisable args)."""

    code = "job_error"


class UsageError(RindleError):
    """Raised when an operation is asked for something that cannot exist (the CLI exits 2)."""

    code = "usage_error"


class StreamingError(RindleError):
    """Root of streaming-provider errors; messages never carry provider ids or secrets."""

    code = "streaming_error"


class StreamingNotConfigured(StreamingError):
    """Raised when a profile or call needs a streaming provider that is not configured."""

    code = "streaming_not_configured"


class ProviderSyncFailed(StreamingError):
    """Raised when a provider call fails (HTTP status, transport, unreadable answer).

    ``status`` is the HTTP status when there was one.
    """

    code = "provider_sync_failed"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None
                 ) -> None:
        self.status = status
        super().__init__(message, code=code)


class ProviderQuotaExceeded(ProviderSyncFailed, TransientError):
    """Raised when the provider answers 429; ``retry_after`` is in seconds (>= 1)."""

    code = "provider_quota_exceeded"

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=429)


class ProviderUnavailable(ProviderSyncFailed, TransientError):
    """Raised when a provider call times out, cannot connect or gets a server error (5xx);
    ``status`` is the HTTP status when there was one. Trying again later can succeed.

    Still a :class:`ProviderSyncFailed`, so ``except ProviderSyncFailed`` keeps catching it
    (a 429 is the sibling :class:`ProviderQuotaExceeded`).
    """

    code = "provider_unavailable"


class ProviderAssetNotFound(ProviderSyncFailed):
    """Raised by ``Provider.get_asset`` when the provider has no such asset (HTTP 404)."""

    code = "provider_asset_not_found"

    def __init__(self, message: str = "the provider has no such asset") -> None:
        super().__init__(message, status=404)


class ProviderAssetNotReady(StreamingError):
    """Raised when a streaming asset has no playable provider asset yet; retry later."""

    code = "provider_asset_not_ready"


class WebhookInvalid(StreamingError, Rejected):
    """Raised when a webhook fails verification; ``reason`` says why (for telemetry only),
    while ``code`` stays ``provider_webhook_invalid`` for every reason.

    Reasons: ``missing_header``, ``malformed_header``, ``stale_timestamp``,
    ``sig_mismatch``, ``no_secrets_configured``, ``invalid_json``, ``invalid_payload``.
    At the HTTP edge every reason answers the same 400, so callers cannot probe which.
    """

    code = "provider_webhook_invalid"

    def __init__(self, reason: str, message: str | None = None) -> None:
        self._reason = reason
        super().__init__(message or f"webhook rejected: {reason}")
