"""``LocalStorage.list`` stays inside the root: prefixes are confined as keys are, and the
walk never follows a symlink out of the root.

Real files sit next to the root (a sibling "secret" folder) and a symlinked folder and a
symlinked file inside the root point at them.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from rindle.errors import StorageError
from rindle.storage.local import LocalStorage


@pytest.fixture
def layout(tmp_path: Path) -> tuple[LocalStorage, Path]:
    """A storage with two objects, and outside its root a folder of secret files."""
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "passwd").write_text("root:x:0:0\n")
    (outside / "deep" / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    storage = LocalStorage(name="default", root=tmp_path / "media", secret_key="k" * 32)
    storage.put("a/one.txt", io.BytesIO(b"1"))
    storage.put("a/b/two.txt", io.BytesIO(b"22"))
    return storage, outside


def keys(storage: LocalStorage, prefix: str = "") -> list[str]:
    return sorted(info.key for info in storage.list(prefix))


@pytest.mark.parametrize("prefix", [
    "../", "../../etc/", "..", "a/../", "a/../../", "a/..", "a/./", ".", "./a",
    "/etc/", "/", "a//b", "//", "a\\b", "..\\", "a/\x00", "\x00",
])
def test_a_prefix_that_could_leave_the_root_is_refused(
        layout: tuple[LocalStorage, Path], prefix: str) -> None:
    storage, _ = layout
    with pytest.raises(StorageError) as err:
        list(storage.list(prefix))
    assert err.value.code == "storage_error"
    assert err.value.message == f"invalid storage prefix {prefix!r}"


@pytest.mark.parametrize(("prefix", "expected"), [
    ("", ["a/b/two.txt", "a/one.txt"]),
    ("a", ["a/b/two.txt", "a/one.txt"]),
    ("a/", ["a/b/two.txt", "a/one.txt"]),
    ("a/b", ["a/b/two.txt"]),
    ("a/b/", ["a/b/two.txt"]),
    ("a/o", ["a/one.txt"]),
    ("a/..x", []),        # a name that starts with two dots is an ordinary name
    ("missing/", []),
])
def test_ordinary_prefixes_still_list(layout: tuple[LocalStorage, Path], prefix: str,
                                      expected: list[str]) -> None:
    storage, _ = layout
    assert keys(storage, prefix) == expected


def test_a_symlinked_folder_pointing_out_is_refused_as_a_prefix(
        layout: tuple[LocalStorage, Path]) -> None:
    storage, outside = layout
    os.symlink(outside, storage.root / "escape")
    for prefix in ("escape/", "escape/deep/", "escape/deep/k"):
        with pytest.raises(StorageError) as err:
            list(storage.list(prefix))
        assert err.value.code == "storage_error"
        assert err.value.message == (f"invalid storage prefix {prefix!r}: it leaves the root "
                                     "via a link")


def test_a_symlinked_parent_pointing_out_is_refused_even_below_it(
        layout: tuple[LocalStorage, Path]) -> None:
    storage, outside = layout
    os.symlink(outside, storage.root / "a" / "b" / "up")
    with pytest.raises(StorageError) as err:
        list(storage.list("a/b/up/deep/"))
    assert err.value.message == ("invalid storage prefix 'a/b/up/deep/': it leaves the root "
                                 "via a link")


def test_the_walk_does_not_follow_links_out_of_the_root(
        layout: tuple[LocalStorage, Path]) -> None:
    storage, outside = layout
    os.symlink(outside, storage.root / "escape")                       # a folder link
    os.symlink(outside / "passwd", storage.root / "a" / "passwd")       # a file link
    os.symlink(outside / "deep", storage.root / "a" / "b" / "deeplink")  # a nested one
    assert keys(storage) == ["a/b/two.txt", "a/one.txt"]
    assert keys(storage, "a/") == ["a/b/two.txt", "a/one.txt"]
    assert keys(storage, "e") == []
    for info in storage.list():
        assert not info.key.startswith("escape")


def test_a_link_that_stays_inside_the_root_is_still_listed(
        layout: tuple[LocalStorage, Path]) -> None:
    storage, _ = layout
    os.symlink(storage.root / "a" / "one.txt", storage.root / "a" / "alias.txt")
    os.symlink(storage.root / "a" / "b", storage.root / "inner")
    assert keys(storage, "a/") == ["a/alias.txt", "a/b/two.txt", "a/one.txt"]
    assert keys(storage, "inner/") == ["inner/two.txt"]  # the prefix's own folder is a link


def test_a_root_reached_through_a_link_still_lists(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "linked")
    storage = LocalStorage(name="default", root=tmp_path / "linked", secret_key="k" * 32)
    storage.put("x/y.txt", io.BytesIO(b"y"))
    assert keys(storage, "x/") == ["x/y.txt"]
