"""Content-Disposition (reference/domain.md §7.4) and its RFC 5987 encoder."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rindle.delivery.disposition import (
    content_disposition,
    normalize_disposition,
    parse_disposition,
    rfc5987,
)

HEADER = re.compile(
    r"(attachment|inline); filename=\"([A-Za-z0-9._-]+)\"; filename\*=UTF-8''([A-Za-z0-9._-]+)")


def test_reference_vector() -> None:
    assert content_disposition("v/a/x.mp4", disposition="attachment",
                               filename="../my resume?.mp4") == (
        "attachment; filename=\"my_resume_.mp4\"; filename*=UTF-8''my_resume_.mp4")
    normal = normalize_disposition("v/a/x.mp4", disposition="attachment",
                                   filename="../my resume?.mp4")
    assert normal is not None
    assert (normal.type, normal.filename, normal.filename_star) == (
        "attachment", "my_resume_.mp4", "UTF-8''my_resume_.mp4")


@pytest.mark.parametrize(("disposition", "filename", "expected"), [
    (None, None, None),
    ("attachment", None, ("attachment", "clip_1_.mp4")),
    ("ATTACHMENT", None, ("attachment", "clip_1_.mp4")),
    ("inline", None, ("inline", "download")),
    ("bogus", None, ("inline", "download")),
    (None, "report.pdf", ("inline", "report.pdf")),
    ("inline", "a b.png", ("inline", "a_b.png")),
])
def test_type_and_filename_rules(disposition: str | None, filename: str | None,
                                 expected: tuple[str, str] | None) -> None:
    normal = normalize_disposition("p/a/clip (1).mp4", disposition=disposition,
                                   filename=filename)
    assert (None if normal is None else (normal.type, normal.filename)) == expected


def test_rfc5987_vectors() -> None:
    assert rfc5987("a b") == "a%20b"
    assert rfc5987("é") == "%C3%A9"
    assert rfc5987("!#$&+-.^_`|~AZaz09") == "!#$&+-.^_`|~AZaz09"
    assert rfc5987("\"';%") == "%22%27%3B%25"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_rfc5987_round_trips_and_uses_only_attr_chars(text: str) -> None:
    encoded = rfc5987(text)
    assert re.fullmatch(r"[A-Za-z0-9!#$&+\-.^_`|~]*(%[0-9A-F]{2}[A-Za-z0-9!#$&+\-.^_`|~]*)*",
                        encoded)
    assert unquote(encoded, encoding="utf-8", errors="strict") == text


@settings(max_examples=300, deadline=None)
@given(key=st.text(min_size=1, max_size=40), filename=st.none() | st.text(max_size=60),
       disposition=st.sampled_from(["attachment", "inline", "other"]))
def test_header_is_always_safe_and_consistent(key: str, filename: str | None,
                                              disposition: str) -> None:
    header = content_disposition(key, disposition=disposition, filename=filename)
    assert header is not None
    match = HEADER.fullmatch(header)
    assert match, header
    assert match.group(2) == match.group(3)
    assert ".." not in match.group(2)
    assert match.group(1) == ("attachment" if disposition == "attachment" else "inline")


def test_no_options_means_no_header() -> None:
    assert content_disposition("v/a/x.mp4") is None
    assert content_disposition("v/a/x.mp4", disposition="inline") == (
        "inline; filename=\"download\"; filename*=UTF-8''download")


@pytest.mark.parametrize(("value", "expected"), [
    ("attachment", ("attachment", None)),
    ("", ("inline", None)),
    (' Attachment ; filename="a.mp4"', ("attachment", "a.mp4")),
    ("inline; filename=a b.png", ("inline", "a b.png")),
    ("form-data; filename=x", ("inline", "x")),  # any other type counts as inline
    ("attachment-ish; filename=x", ("inline", "x")),
    ("ATTACHMENT;filename*=UTF-8''r%C3%A9sum%C3%A9.pdf; filename=\"fallback.pdf\"",
     ("attachment", "r\u00e9sum\u00e9.pdf")),
    ("attachment; filename=\"fallback.pdf\"; filename*=UTF-8''x%20y.pdf",
     ("attachment", "x y.pdf")),  # filename* wins wherever it is
    ('attachment; filename="a\\"b.txt"', ("attachment", 'a"b.txt')),  # quoted-pair
    ('attachment; filename="x;y"', ("attachment", "x;y")),
    ('attachment; filename="', ("attachment", '"')),  # a lone quote is kept as text
    ('attachment; filename=""', ("attachment", "")),
    ('attachment; FILENAME="one"; filename="two"', ("attachment", "one")),  # first wins
    ("attachment; filename*=noquotes%41", ("attachment", "noquotesA")),
    ("attachment; filename*=UTF-8''it''s.txt", ("attachment", "it''s.txt")),  # first ''
    ("attachment; filename*=UTF-8''%FF.txt", ("attachment", "\ufffd.txt")),
    ('inline; name=x; filename = "sp.png" ', ("inline", "sp.png")),
])
def test_parse_disposition(value: str, expected: tuple[str, str | None]) -> None:
    assert parse_disposition(value) == expected
