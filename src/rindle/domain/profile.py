"""Profiles: what one kind of upload accepts, which variants it gets, how it is delivered.

A profile is a class, validated when it is created::

    class Avatar(Profile):
        name = "avatar"
        allow_mime = ("image/jpeg", "image/png")
        max_bytes = 10 * 1024 * 1024
        variants = {"thumb": variants.Image(mode="fill", width=128, height=128)}
        delivery = Delivery(public=False, signed_url_ttl=900)

A bad option raises :class:`rindle.errors.ProfileError` naming the key, at import time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rindle.domain import variants as _variants
from rindle.domain.digest import recipe_digest as _digest
from rindle.errors import NotFound, ProfileError

__all__ = ["Delivery", "Profile", "UploadPolicy", "unknown_variant"]

OPTIONS = frozenset({"name", "storage", "allow_mime", "allow_extensions", "max_bytes",
                     "max_pixels", "variants", "delivery", "abstract", "collection"})
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_VARIANT_NAME = re.compile(r"[a-z][a-z0-9_]*")
_STREAMING_KEYS = {"provider", "playback_policy", "ingest_mode", "source_variant"}


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """How a profile's assets are delivered: public URLs or signed ones with a TTL.

    ``signed_url_ttl`` is the least number of seconds a signed URL stays valid; ``None``
    (the default) takes the app's ``[delivery] signed_url_ttl`` (see :meth:`ttl`).
    """

    public: bool = False
    signed_url_ttl: int | None = None
    streaming: Mapping[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.public, bool):
            raise ProfileError(f"delivery: public must be True or False, got {self.public!r}",
                               key="public")
        ttl = self.signed_url_ttl
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1):
            raise ProfileError(
                f"delivery: signed_url_ttl must be a positive number of seconds, got {ttl!r}",
                key="signed_url_ttl")
        if self.streaming is not None:
            _check_streaming(self.streaming)

    def ttl(self, default: int) -> int:
        """Seconds a signed URL of this profile stays valid at least: ``signed_url_ttl``,
        or ``default`` (the app's ``[delivery] signed_url_ttl``) when that is None."""
        return default if self.signed_url_ttl is None else self.signed_url_ttl


def _check_streaming(cfg: Mapping[str, Any]) -> None:
    if not isinstance(cfg, Mapping):
        raise ProfileError("streaming: must be a mapping", key="streaming")
    missing = sorted(_STREAMING_KEYS - set(cfg))
    unknown = sorted(set(cfg) - _STREAMING_KEYS)
    if missing:
        raise ProfileError(f"streaming: missing {', '.join(missing)}", key=missing[0])
    if unknown:
        raise ProfileError(f"streaming: unknown option(s) {', '.join(unknown)}", key=unknown[0])
    if cfg["playback_policy"] not in ("signed", "public"):
        raise ProfileError("streaming: playback_policy must be 'signed' or 'public'",
                           key="playback_policy")
    if cfg["ingest_mode"] not in ("server_push", "direct_creator_upload"):
        raise ProfileError(
            "streaming: ingest_mode must be 'server_push' or 'direct_creator_upload'",
            key="ingest_mode")


@dataclass(frozen=True)
class UploadPolicy:
    """What an upload must satisfy; empty tuples and None mean "no limit"."""

    allow_mime: tuple[str, ...] = ()
    allow_extensions: tuple[str, ...] = ()
    max_bytes: int | None = None
    max_pixels: int | None = None


def _as_spec(variant: str, value: object) -> _variants.VariantSpec:
    if isinstance(value, _variants.VariantSpec):
        return value
    if isinstance(value, Mapping):
        opts = dict(value)
        kind = opts.pop("kind", "image")
        classes: dict[str, type[_variants.VariantSpec]] = {
            "image": _variants.Image, "video": _variants.Video,
            "audio": _variants.Audio, "waveform": _variants.Waveform}
        if kind not in classes:
            raise ProfileError(f"variant {variant!r}: kind must be one of "
                               f"{', '.join(classes)}; got {kind!r}", key="kind")
        try:
            return classes[kind](**opts)
        except TypeError as exc:
            raise ProfileError(f"variant {variant!r}: {exc}", key=variant) from None
    raise ProfileError(
        f"variant {variant!r} must be a rindle.variants spec (e.g. variants.Image(...)), "
        f"got {type(value).__name__}", key=variant)


class Profile:
    """Base class of every media profile. Subclass it; see the module docstring."""

    name: ClassVar[str] = ""
    storage: ClassVar[str] = "default"
    allow_mime: ClassVar[tuple[str, ...]] = ()
    allow_extensions: ClassVar[tuple[str, ...]] = ()
    max_bytes: ClassVar[int | None] = None
    max_pixels: ClassVar[int | None] = None
    variants: ClassVar[Mapping[str, Any]] = {}
    delivery: ClassVar[Delivery] = Delivery()
    abstract: ClassVar[bool] = False
    #: True: a slot this profile's assets are attached to holds an ordered list of them
    #: (see :meth:`rindle.Rindle.attach`), unless the slot already says otherwise.
    collection: ClassVar[bool] = False

    _specs: ClassVar[tuple[tuple[str, _variants.VariantSpec], ...]] = ()
    _digests: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for key, value in vars(cls).items():
            if key.startswith("_") or key in OPTIONS:
                continue
            if callable(value) or isinstance(value, (classmethod, staticmethod, property)):
                continue
            raise ProfileError(
                f"profile {cls.__qualname__}: unknown option {key!r}; "
                f"options are {', '.join(sorted(OPTIONS))}", key=key)
        if vars(cls).get("abstract", False):
            return
        cls.abstract = False
        cls._validate()

    @classmethod
    def _validate(cls) -> None:
        where = f"profile {cls.__qualname__}"
        if not isinstance(cls.name, str) or not _NAME.fullmatch(cls.name):
            raise ProfileError(
                f"{where}: name must be a lowercase identifier like 'avatar' "
                f"(letters, digits, '_', '.', '-'), got {cls.name!r}", key="name")
        if not isinstance(cls.storage, str) or not cls.storage:
            raise ProfileError(f"{where}: storage must be a storage name", key="storage")
        for key in ("allow_mime", "allow_extensions"):
            value = getattr(cls, key)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ProfileError(f"{where}: {key} must be a tuple of strings", key=key)
            setattr(cls, key, tuple(value))
        for key in ("max_bytes", "max_pixels"):
            value = getattr(cls, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ProfileError(f"{where}: {key} must be a positive integer or None, "
                                   f"got {value!r}", key=key)
        if not isinstance(cls.collection, bool):
            raise ProfileError(f"{where}: collection must be True or False, got "
                               f"{cls.collection!r}", key="collection")
        if not isinstance(cls.delivery, Delivery):
            raise ProfileError(f"{where}: delivery must be a rindle.Delivery(...)",
                               key="delivery")
        if not isinstance(cls.variants, Mapping):
            raise ProfileError(f"{where}: variants must be a dict of name -> spec",
                               key="variants")
        specs: dict[str, _variants.VariantSpec] = {}
        for vname, value in cls.variants.items():
            if not isinstance(vname, str) or not _VARIANT_NAME.fullmatch(vname):
                raise ProfileError(f"{where}: variant name {vname!r} must be a lowercase "
                                   "identifier like 'thumb'", key=str(vname))
            specs[vname] = _as_spec(vname, value)
        streaming = cls.delivery.streaming
        if streaming is not None and streaming["source_variant"] not in specs:
            raise ProfileError(
                f"streaming: source_variant {streaming['source_variant']!r} not declared in "
                f"variants (declared: {', '.join(sorted(specs)) or 'none'})",
                key="source_variant")
        cls._specs = tuple(sorted(specs.items()))
        cls._digests = {n: _digest(s.stored_spec()) for n, s in cls._specs}

    @classmethod
    def variant_specs(cls) -> list[tuple[str, _variants.VariantSpec]]:
        """Every declared variant as ``(name, spec)``, sorted by name."""
        return list(cls._specs)

    @classmethod
    def recipe_digest(cls, name: str) -> str:
        """The current recipe digest of variant ``name``."""
        try:
            return cls._digests[name]
        except KeyError:
            raise ProfileError(f"unknown variant {name!r} for profile {cls.name!r}",
                               key=name) from None

    @classmethod
    def upload_policy(cls) -> UploadPolicy:
        """What uploads to this profile must satisfy."""
        return UploadPolicy(tuple(cls.allow_mime), tuple(cls.allow_extensions),
                            cls.max_bytes, cls.max_pixels)

    @classmethod
    def is_public(cls) -> bool:
        """Whether assets of this profile are delivered through unsigned URLs."""
        return cls.delivery.public


def unknown_variant(profile: type[Profile], name: object) -> NotFound:
    """The :class:`~rindle.errors.NotFound` (code ``not_found``) for a variant ``profile``
    does not declare; its message names the declared variants, so the caller can fix the
    name (entity ``"variant"``, ident ``name``)."""
    declared = ", ".join(n for n, _ in profile.variant_specs()) or "none"
    error = NotFound("variant", name)
    error.args = (f"unknown variant {name!r} for profile {profile.name!r}; its variants: "
                  f"{declared}",)
    return error
