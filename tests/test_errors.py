"""The error tree: unique snake_case codes, the families, and the drawing in the docs."""

from __future__ import annotations

import importlib
import inspect
import re
import uuid

import pytest

import rindle.errors as errors
from rindle.errors import (
    ConfigError,
    DatabaseUnavailable,
    NotFound,
    ProviderAssetNotFound,
    ProviderQuotaExceeded,
    ProviderSyncFailed,
    ProviderUnavailable,
    Rejected,
    RindleError,
    StorageError,
    StorageUnavailable,
    StreamingError,
    TransientError,
    UploadRejected,
    UsageError,
    WebhookInvalid,
)
from rindle.ids import parse_id

#: Modules outside rindle.errors that define RindleError subclasses (plugins when installed).
OTHER_ERROR_MODULES = ("rindle.storage.local", "rindle_ffmpeg.errors")

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def _core_classes() -> list[type[RindleError]]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, RindleError) and c.__module__ == errors.__name__]


def _all_classes() -> list[type[RindleError]]:
    for name in OTHER_ERROR_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # a plugin that is not installed
            continue
    seen: dict[type[RindleError], None] = {}
    todo: list[type[RindleError]] = [RindleError]
    while todo:
        cls = todo.pop()
        if cls not in seen and cls.__module__.split(".")[0].startswith("rindle"):
            seen[cls] = None
            todo.extend(cls.__subclasses__())
    return list(seen)


def test_every_error_class_has_a_unique_snake_case_code() -> None:
    classes = _all_classes()
    assert set(_core_classes()) <= set(classes)
    assert any(c.__module__ == "rindle.storage.local" for c in classes)  # the walk went wide
    by_code: dict[str, list[str]] = {}
    for cls in classes:
        code = cls.__dict__.get("code")
        assert isinstance(code, str) and SNAKE.match(code), (cls, code)
        by_code.setdefault(code, []).append(f"{cls.__module__}.{cls.__qualname__}")
    assert {c: n for c, n in by_code.items() if len(n) > 1} == {}


def _drawn_edges() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(parent, child) pairs of the docstring drawing, and those marked ``+``."""
    doc = errors.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]  # the indented block after "::"
    lines = [line[4:] for line in block.splitlines()]
    assert len(lines) > 20 and lines[0].startswith("RindleError")
    edges: set[tuple[str, str]] = set()
    marked: set[tuple[str, str]] = set()
    stack: list[str] = []
    node = re.compile(r"^(?P<lead>[│ ]*)(?:[├└]── )(?P<name>[A-Z]\w*)(?P<plus> \+)?(?: |$)")
    for line in lines:
        if re.match(r"^[A-Z]\w*\b", line):
            stack = [line.split()[0]]
            continue
        m = node.match(line)
        if m is None:
            assert line.lstrip("│ ").startswith("("), f"unparsed tree line: {line!r}"
            continue
        depth = len(m["lead"]) // 4 + 1
        assert len(m["lead"]) % 4 == 0 and depth <= len(stack), line
        del stack[depth:]
        edge = (stack[depth - 1], m["name"])
        edges.add(edge)
        if m["plus"]:
            marked.add(edge)
        stack.append(m["name"])
    return edges, marked


def test_the_docstring_tree_is_the_class_hierarchy() -> None:
    edges, marked = _drawn_edges()
    real = {(base.__name__, cls.__name__) for cls in _core_classes()
            for base in cls.__bases__ if issubclass(base, RindleError)}
    assert edges == real
    second = {(cls.__bases__[1].__name__, cls.__name__) for cls in _core_classes()
              if len(cls.__bases__) > 1}
    assert marked == second  # "+" marks exactly the second parent's place
    assert {name for _, name in edges} | {"RindleError"} == set(errors.__all__)


def test_families_agree_with_permanent() -> None:
    for cls in _core_classes():
        if issubclass(cls, Rejected):
            assert cls.permanent is True, cls
        if issubclass(cls, TransientError):
            assert cls.permanent is False, cls
        assert not (issubclass(cls, Rejected) and issubclass(cls, TransientError)), cls
    assert UploadRejected("empty_upload", "empty").permanent is True
    assert WebhookInvalid("sig_mismatch").permanent is True
    assert ProviderQuotaExceeded("slow down", retry_after=3).permanent is False
    assert TransientError("later", permanent=True).permanent is True  # per instance still


def test_second_parents_keep_the_first_ones() -> None:
    assert issubclass(ProviderQuotaExceeded, ProviderSyncFailed)
    assert issubclass(ProviderQuotaExceeded, TransientError)
    assert issubclass(DatabaseUnavailable, ConfigError)
    assert issubclass(DatabaseUnavailable, TransientError)
    assert issubclass(WebhookInvalid, StreamingError) and issubclass(WebhookInvalid, Rejected)
    assert issubclass(UploadRejected, Rejected)
    assert issubclass(StorageUnavailable, StorageError)
    assert issubclass(StorageUnavailable, TransientError)
    assert issubclass(ProviderUnavailable, ProviderSyncFailed)
    assert issubclass(ProviderUnavailable, TransientError)


def test_unavailable_errors_are_transient_and_caught_by_their_first_parent() -> None:
    storage = StorageUnavailable("s3 GET 'k' failed (timeout)")
    assert (storage.code, storage.permanent) == ("storage_unavailable", False)
    with pytest.raises(StorageError):
        raise storage
    provider = ProviderUnavailable("mux get asset failed: HTTP 503", status=503)
    assert (provider.code, provider.status, provider.permanent) == (
        "provider_unavailable", 503, False)
    assert ProviderUnavailable("mux: connection refused").status is None
    with pytest.raises(ProviderSyncFailed):
        raise provider


def test_rejections_carry_their_reason() -> None:
    upload = UploadRejected("max_bytes_exceeded", "too big")
    assert upload.code == upload.reason == "max_bytes_exceeded"
    hook = WebhookInvalid("stale_timestamp")
    assert (hook.code, hook.reason) == ("provider_webhook_invalid", "stale_timestamp")
    assert ProviderAssetNotFound().code == "provider_asset_not_found" != NotFound.code


def test_parse_id() -> None:
    ident = uuid.uuid4()
    assert parse_id(ident, "asset") is ident
    assert parse_id(str(ident), "asset") == ident
    with pytest.raises(NotFound) as info:
        parse_id("nope", "upload session")
    assert (info.value.code, info.value.entity, info.value.ident) == (
        "not_found", "upload session", "nope")


def test_to_owner_refuses_a_bad_type_as_usage() -> None:
    from rindle.domain.attachments import to_owner

    assert to_owner(("user", 7)) == ("user", "7")
    with pytest.raises(UsageError) as info:
        to_owner(("", 7))
    assert info.value.code == "invalid_owner"
