"""The pure parts of the WSGI app: the Range parser and the request-body reader."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rindle.delivery.ranges import ByteRangeDecision
from rindle.delivery.wsgi import BodyIncomplete, BodyTooLarge, RequestBody, parse_range

sizes = st.integers(min_value=0, max_value=10_000)
offsets = st.integers(min_value=0, max_value=20_000)


def model(first: int | None, last: int | None, size: int) -> tuple[str, int, int]:
    """RFC 9110 §14.1.2 for one well-formed byte range spec."""
    if first is None:
        assert last is not None
        if last == 0 or size == 0:
            return ("unsatisfiable", 0, -1)
        return ("partial", max(size - last, 0), size - 1)
    if first >= size:
        return ("unsatisfiable", 0, -1)
    return ("partial", first, size - 1 if last is None else min(last, size - 1))


@settings(max_examples=300, deadline=None)
@given(size=sizes, first=st.none() | offsets, last=st.none() | offsets,
       spaces=st.sampled_from(["", " ", "  "]), unit=st.sampled_from(["bytes", "BYTES", "Bytes"]))
def test_one_well_formed_range_follows_the_rfc(size: int, first: int | None, last: int | None,
                                               spaces: str, unit: str) -> None:
    if first is None and last is None:
        return
    if first is not None and last is not None and last < first:
        first, last = last, first
    spec = f"{'' if first is None else first}-{'' if last is None else last}"
    decision = parse_range(f"{unit}={spaces}{spec}{spaces}", size)
    kind, start, end = model(first, last, size)
    assert decision.kind == kind
    assert decision.reason is None
    if kind == "partial":
        assert (decision.start, decision.end) == (start, end)
        assert 0 <= decision.start <= decision.end < size


@settings(max_examples=500, deadline=None)
@given(header=st.text(max_size=40) | st.from_regex(r"bytes=[0-9, -]{0,20}", fullmatch=True),
       size=sizes)
def test_any_header_gets_a_safe_answer(header: str, size: int) -> None:
    decision = parse_range(header, size)
    assert decision.kind in ("full", "partial", "unsatisfiable")
    if decision.kind == "partial":
        assert 0 <= decision.start <= decision.end < size
        assert decision.reason is None
    if decision.kind == "full":
        assert (decision.start, decision.end) == (0, size - 1)


@settings(max_examples=100, deadline=None)
@given(specs=st.lists(st.from_regex(r"[0-9]{1,4}-[0-9]{0,4}", fullmatch=True),
                      min_size=2, max_size=5), size=sizes)
def test_several_ranges_get_the_full_body(specs: list[str], size: int) -> None:
    decision = parse_range("bytes=" + ", ".join(specs), size)
    assert (decision.kind, decision.reason) == ("full", "multiple_ranges")


@pytest.mark.parametrize("header", [
    "bytes=", "bytes=-", "bytes=a-b", "bytes=5-2", "bytes 0-1", "=0-1", "bytes=0x1-2",
    "bytes=1-2-3", "bytes=¹-2", "bytes=" + "9" * 5000 + "-",
])
def test_malformed_headers_fall_back(header: str) -> None:
    decision = parse_range(header, 100)
    assert (decision.kind, decision.reason) == ("full", "range_unparseable")


def test_no_header_is_a_plain_full_answer() -> None:
    for header in (None, "", "   "):
        assert parse_range(header, 10).kind == "full"
        assert parse_range(header, 10).reason is None


def _chunked(data: bytes, cuts: list[int], ext: bool) -> bytes:
    out, pos = b"", 0
    for cut in [*sorted(set(c % (len(data) + 1) for c in cuts)), len(data)]:
        piece = data[pos:cut]
        if piece:
            out += f"{len(piece):X}".encode() + (b";name=v" if ext else b"") + b"\r\n"
            out += piece + b"\r\n"
        pos = cut
    return out + b"0\r\nX-Trailer: 1\r\n\r\n"


def _body(raw: bytes, *, chunked: bool, length: int | None = None) -> RequestBody:
    return RequestBody(io.BufferedReader(io.BytesIO(raw)), length=length, chunked=chunked)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=8),
       ext=st.booleans(), block=st.integers(1, 4096))
def test_chunked_bodies_decode_exactly(data: bytes, cuts: list[int], ext: bool,
                                       block: int) -> None:
    body = _body(_chunked(data, cuts, ext) + b"NEXT REQUEST", chunked=True)
    out = b""
    while piece := body.read(block):
        out += piece
    assert out == data
    assert body.read(10) == b""


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=1, max_size=2000), cap=st.integers(0, 2000),
       chunked=st.booleans())
def test_the_cap_is_exact(data: bytes, cap: int, chunked: bool) -> None:
    raw = _chunked(data, [len(data) // 3], False) if chunked else data
    body = _body(raw, chunked=chunked, length=None if chunked else len(data))
    body.cap = cap
    if len(data) > cap:
        with pytest.raises(BodyTooLarge):
            body.read()
    else:
        assert body.read() == data


def test_short_and_broken_bodies_are_incomplete() -> None:
    with pytest.raises(BodyIncomplete):
        _body(b"abc", chunked=False, length=10).read()
    for raw in (b"5\r\nab", b"zz\r\n", b"3\r\nabcXY0\r\n\r\n", b"3" * 5000):
        with pytest.raises(BodyIncomplete):
            _body(raw, chunked=True).read()
    drained = _body(b"3\r\nabc\r\n0\r\n\r\n", chunked=True)
    drained.drain()
    assert drained.read() == b""


@pytest.mark.parametrize(("header", "reason"), [
    ("bytes=0-1,2-3", "multiple_ranges"),  # commas separate ranges, spaces are optional
    ("bytes=0-1,=2", "multiple_ranges"),  # the unit ends at the first "="
    ("bytes=0-1 2-3", "range_unparseable"),  # a space does not separate ranges
    ("bytes==0-1", "range_unparseable"),
])
def test_ranges_split_on_commas_after_the_first_equals_sign(header: str, reason: str) -> None:
    assert parse_range(header, 100) == ByteRangeDecision("full", 0, 99, reason)


def test_exact_decisions_at_the_boundaries() -> None:
    assert parse_range("bytes=99-", 100) == ByteRangeDecision("partial", 99, 99)
    assert parse_range("bytes=100-", 100) == ByteRangeDecision("unsatisfiable", 0, -1)
    assert parse_range("bytes=0-100", 100) == ByteRangeDecision("partial", 0, 99)
    assert parse_range("bytes=-100", 100) == ByteRangeDecision("partial", 0, 99)
    assert parse_range("bytes=-101", 100) == ByteRangeDecision("partial", 0, 99)
    assert parse_range("bytes=-1", 100) == ByteRangeDecision("partial", 99, 99)
    assert parse_range("bytes=-0", 100) == ByteRangeDecision("unsatisfiable", 0, -1)
    assert parse_range("bytes=0-", 0) == ByteRangeDecision("unsatisfiable", 0, -1)
    assert parse_range(None, 0) == ByteRangeDecision("full", 0, -1)
