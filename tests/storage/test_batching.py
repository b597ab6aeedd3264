"""rindle.storage.delete_in_batches: the key bookkeeping batch-deleting backends share."""

from __future__ import annotations

import pytest

from rindle.errors import ObjectNotFound, StorageError
from rindle.storage import delete_in_batches


def prefixed(key: str) -> str:
    if key.startswith("bad"):
        raise StorageError(f"invalid key {key!r}")
    return f"p/{key}"


class Recorder:
    def __init__(self, failures: dict[str, Exception] | None = None,
                 raise_on: dict[int, Exception] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.failures = failures or {}
        self.raise_on = raise_on or {}

    def __call__(self, chunk: list[str]) -> dict[str, Exception]:
        self.batches.append(list(chunk))
        if len(self.batches) - 1 in self.raise_on:
            raise self.raise_on[len(self.batches) - 1]
        return {k: v for k, v in self.failures.items() if k in chunk}


def test_no_keys_sends_nothing() -> None:
    rec = Recorder()
    assert delete_in_batches([], 10, prefixed, rec) == []
    assert rec.batches == []


def test_chunks_in_order_and_all_succeed() -> None:
    rec = Recorder()
    keys = [f"k{i}" for i in range(7)]
    assert delete_in_batches(keys, 3, prefixed, rec) == [None] * 7
    assert rec.batches == [["p/k0", "p/k1", "p/k2"], ["p/k3", "p/k4", "p/k5"], ["p/k6"]]


def test_duplicates_are_sent_once_and_share_the_outcome() -> None:
    boom = StorageError("denied")
    rec = Recorder(failures={"p/a": boom})
    out = delete_in_batches(["a", "b", "a", "c", "b"], 2, prefixed, rec)
    assert rec.batches == [["p/a", "p/b"], ["p/c"]]
    assert out == [boom, None, boom, None, None]


def test_a_key_the_backend_refuses_is_its_own_outcome_and_never_sent() -> None:
    rec = Recorder()
    out = delete_in_batches(["a", "bad1", "b"], 10, prefixed, rec)
    assert rec.batches == [["p/a", "p/b"]]
    assert out[0] is None and out[2] is None
    assert isinstance(out[1], StorageError) and "bad1" in str(out[1])


def test_a_failed_batch_fails_its_keys_and_later_batches_still_run() -> None:
    down = ObjectNotFound("x")
    rec = Recorder(raise_on={0: down}, failures={"p/d": StorageError("d")})
    out = delete_in_batches(["a", "b", "a", "c", "d"], 2, prefixed, rec)
    assert rec.batches == [["p/a", "p/b"], ["p/c", "p/d"]]
    assert out[:3] == [down, down, down] and out[3] is None
    assert isinstance(out[4], StorageError) and str(out[4]) == "d"


def test_failures_for_unknown_names_are_ignored() -> None:
    assert delete_in_batches(["a"], 5, prefixed,
                             lambda chunk: {"p/zzz": StorageError("?")}) == [None]


def test_other_exceptions_propagate() -> None:
    def broken(chunk: list[str]) -> dict[str, Exception]:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        delete_in_batches(["a"], 5, prefixed, broken)

    def bad_key(key: str) -> str:
        raise KeyError(key)

    with pytest.raises(KeyError):
        delete_in_batches(["a"], 5, bad_key, Recorder())


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        delete_in_batches(["a"], 0, prefixed, Recorder())
