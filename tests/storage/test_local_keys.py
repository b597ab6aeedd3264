"""Local storage: which keys map to a file, and the batched presence check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rindle.errors import StorageError
from rindle.storage.base import Storage
from rindle.storage.local import LocalStorage


def safe_by_parts(key: str) -> bool:
    """The rule, stated plainly: no empty, '.' or '..' segment, no NUL, no backslash."""
    if not key or "\x00" in key or "\\" in key or key.startswith("/"):
        return False
    return not {"", ".", ".."} & set(key.split("/"))


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(name="default", root=tmp_path / "media", secret_key="k" * 32)


@settings(deadline=None)  # a loaded machine may be slow; only the answer matters
@given(st.text(alphabet="ab./\\\x00", max_size=12))
def test_key_validation_matches_the_segment_rule(key: str) -> None:
    store = LocalStorage(name="default", root=Path("/srv/media"), secret_key="k" * 32)
    if safe_by_parts(key):
        path = store.path_for(key)
        assert str(path) == os.path.join("/srv/media", *key.split("/"))
        assert path.is_relative_to("/srv/media")
    else:
        with pytest.raises(StorageError, match="invalid storage key"):
            store.path_for(key)


def test_exists_many_answers_each_key_in_order(storage: LocalStorage, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 10)
    storage.put("a/b/one.bin", src)
    storage.put("a/two.bin", src)
    (storage.root / "a" / "dir").mkdir()
    answers = storage.exists_many(
        ["a/b/one.bin", "a/b/gone.bin", "a/two.bin/below", "a/dir", "../escape", "a/two.bin"])
    assert answers[:4] == [True, False, False, False]  # a directory is not an object
    assert isinstance(answers[4], StorageError)         # unknowable, never "missing"
    assert answers[5] is True


def test_exists_many_reports_os_errors_as_unknowable(storage: LocalStorage) -> None:
    (storage.root / "a").mkdir(parents=True)
    [answer] = storage.exists_many(["a/" + "x" * 300])  # ENAMETOOLONG, not "not found"
    assert isinstance(answer, OSError) and not isinstance(answer, FileNotFoundError)


def test_the_generic_exists_many_agrees_with_the_local_fast_path(storage: LocalStorage,
                                                                  tmp_path: Path) -> None:
    """The base class's HEAD-per-key answer, used by backends without a faster one."""
    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    storage.put("a/one.bin", src)
    (storage.root / "a" / "dir").mkdir()
    keys = ["a/one.bin", "a/gone.bin", "a/dir", "a/one.bin/below"]
    assert list(Storage.exists_many(storage, keys)) == list(storage.exists_many(keys))
    [bad] = Storage.exists_many(storage, ["../escape"])
    assert isinstance(bad, StorageError)
