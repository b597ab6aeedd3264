"""Filename sanitising: the reference vectors plus properties over arbitrary text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rindle.upload.filenames import MAX_FILENAME_LENGTH, sanitize_filename

SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


@pytest.mark.parametrize(("name", "expected"), [
    # reference vectors (domain.md §5.2)
    ("../../unsafe name?.png", "unsafe_name_.png"),
    ("../my resume?.mp4", "my_resume_.mp4"),
    ("uploads/unsafe path/my clip?.mp4", "my_clip_.mp4"),
    ("???", "upload"),
    # unicode is replaced per code point, composed or not
    ("résumé 日本.png", "r_sum_.png"),
    ("re\u0301sume\u0301 日本.png", "r_sum_.png"),
    # Windows separators, control characters, dots
    ("C:\\Users\\me\\photo 1.JPG", "photo_1.JPG"),
    ("..\\..\\evil.png", "evil.png"),
    ("a\x00b\x1f\x7fc.png", "abc.png"),
    ("a..b...png", "a.b.png"),
    ("..", "upload"),
    (".", "upload"),
    ("", "upload"),
    ("___", "upload"),
    ("_._", "upload"),
    ("__init__.py", "init_.py"),
    ("report-2024_v2.pdf", "report-2024_v2.pdf"),
    (".htaccess", ".htaccess"),
])
def test_vectors(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


def test_long_names_are_cut_keeping_the_extension() -> None:
    out = sanitize_filename("x" * 1000 + ".jpeg")
    assert len(out) == MAX_FILENAME_LENGTH
    assert out.endswith("x.jpeg")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300) | st.from_regex(r"[./\\_a-z é?]{0,40}", fullmatch=True))
def test_properties(name: str) -> None:
    out = sanitize_filename(name)
    assert SAFE.match(out)
    assert "/" not in out and "\\" not in out and ".." not in out
    assert not out.startswith("_") and not out.endswith("_")
    assert 1 <= len(out) <= MAX_FILENAME_LENGTH
    assert sanitize_filename(out) == out
