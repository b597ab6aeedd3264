"""``Storage.list_after``'s default (a backend without ``Capability.LIST_AFTER``): the keys
of ``list(prefix)`` after ``start_after``, in key order."""

from __future__ import annotations

import io
from pathlib import Path

from rindle.storage import Capability
from rindle.storage.local import LocalStorage


def test_the_default_sorts_and_filters_what_list_yields(tmp_path: Path) -> None:
    storage = LocalStorage(name="default", root=tmp_path, secret_key="k" * 32)
    for key in ("a/2", "a/10", "a/1", "a/3/x", "b/1"):
        storage.put(key, io.BytesIO(b"xy"))
    assert not storage.supports(Capability.LIST_AFTER)
    assert [i.key for i in storage.list_after("a/", "a/1")] == ["a/10", "a/2", "a/3/x"]
    assert [i.key for i in storage.list_after("a/", "")] == ["a/1", "a/10", "a/2", "a/3/x"]
    assert [i.key for i in storage.list_after("a/", "a/3/x")] == []
    assert [(i.key, i.size) for i in storage.list_after("", "a/3")] == [("a/3/x", 2),
                                                                         ("b/1", 2)]


def test_the_default_yields_the_first_limit_objects(tmp_path: Path) -> None:
    storage = LocalStorage(name="default", root=tmp_path, secret_key="k" * 32)
    for key in ("a/2", "a/10", "a/1", "a/3/x"):
        storage.put(key, io.BytesIO(b"xy"))
    assert [i.key for i in storage.list_after("a/", "", limit=2)] == ["a/1", "a/10"]
    assert [i.key for i in storage.list_after("a/", "a/1", limit=3)] == ["a/10", "a/2", "a/3/x"]
    assert [i.key for i in storage.list_after("a/", "a/1", limit=4)] == ["a/10", "a/2", "a/3/x"]
    assert [i.key for i in storage.list_after("a/", "a/2", limit=1)] == ["a/3/x"]
    # a limit below 1 still yields one object (the contract's floor)
    assert [i.key for i in storage.list_after("a/", "", limit=0)] == ["a/1"]
