"""Batch deletion for storage backends whose service deletes many objects per request."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from rindle.errors import StorageError

__all__ = ["delete_in_batches"]


def delete_in_batches(keys: Sequence[str], batch_size: int,
                      to_backend_key: Callable[[str], str],
                      delete_batch: Callable[[list[str]], Mapping[str, Exception]],
                      ) -> list[Exception | None]:
    """Delete ``keys`` in batches of at most ``batch_size``; one outcome per key, in order.

    ``to_backend_key`` maps a rindle key to the backend's own name for it (a bucket
    prefix, say); a :class:`~rindle.errors.StorageError` it raises becomes that key's
    outcome and the key is not sent. Keys naming the same backend object are sent once.

    ``delete_batch`` deletes one batch of distinct backend keys and returns the failures
    by backend key (a key absent from the answer succeeded; a key already gone should
    count as success). A :class:`~rindle.errors.StorageError` it raises is the outcome of
    every key of that batch, and the remaining batches are still sent. Every key sharing
    a backend key with a failure gets that failure; ``None`` means deleted (or absent).
    Other exceptions propagate.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
    out: list[Exception | None] = [None] * len(keys)
    index: dict[str, list[int]] = {}
    names: list[str] = []
    for i, key in enumerate(keys):
        try:
            name = to_backend_key(key)
        except StorageError as exc:
            out[i] = exc
            continue
        if name not in index:
            names.append(name)
        index.setdefault(name, []).append(i)
    for start in range(0, len(names), batch_size):
        chunk = names[start:start + batch_size]
        try:
            failures: Mapping[str, Exception] = delete_batch(chunk)
        except StorageError as exc:
            failures = dict.fromkeys(chunk, exc)
        for name, failure in failures.items():
            for i in index.get(name, ()):
                out[i] = failure
    return out
