"""Request bodies read into one reused buffer: ``RequestBody.readinto`` keeps the framing
and cap of ``read``, and ``read_blocks`` yields the same bytes through either."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from rindle.delivery.body import BodyIncomplete, BodyTooLarge, RequestBody
from rindle.storage.blocks import BLOCK, read_blocks

DATA = bytes(range(256)) * 41 + "é€😀".encode()  # 10,505 bytes, not a multiple of anything


class ReadOnly:
    """A stream with ``read`` and no ``readinto``."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)


def plain(data: bytes, length: int | None = None) -> RequestBody:
    return RequestBody(io.BytesIO(data), length=len(data) if length is None else length,
                       chunked=False)


def chunked(data: bytes, piece: int = 1000) -> RequestBody:
    framed = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + piece]), data[i:i + piece])
                      for i in range(0, len(data), piece)) + b"0\r\n\r\n"
    return RequestBody(io.BytesIO(framed), length=None, chunked=True)


@pytest.mark.parametrize("make", [plain, chunked])
@pytest.mark.parametrize("size", [1, 7, 1000, 4096, len(DATA) - 1, len(DATA), 2 * len(DATA)])
def test_readinto_gives_the_bytes_read_gives(make: Callable[[bytes], RequestBody],
                                             size: int) -> None:
    body = make(DATA)
    buffer = bytearray(size)
    out = bytearray()
    while count := body.readinto(buffer):
        assert 0 < count <= size
        out += buffer[:count]
    assert bytes(out) == DATA and body.received == len(DATA) and body.finished
    assert body.readinto(buffer) == 0  # and stays at its end


def test_readinto_reads_no_further_than_content_length() -> None:
    stream = io.BytesIO(DATA + b"NEXT REQUEST")
    body = RequestBody(stream, length=len(DATA), chunked=False)
    assert b"".join(bytes(b) for b in read_blocks(body, 4096)) == DATA
    assert stream.read() == b"NEXT REQUEST"  # the keep-alive connection's next bytes


def test_readinto_a_short_body_is_body_incomplete() -> None:
    body = plain(DATA[:100], length=101)
    buffer = bytearray(1000)
    assert body.readinto(buffer) == 100
    with pytest.raises(BodyIncomplete, match="1 bytes short"):
        body.readinto(buffer)


@pytest.mark.parametrize(("cap", "fails"), [(len(DATA), False), (len(DATA) - 1, True)])
def test_readinto_keeps_the_cap(cap: int, fails: bool) -> None:
    body = plain(DATA)
    body.cap = cap
    buffer = bytearray(3000)
    if fails:
        with pytest.raises(BodyTooLarge, match=f"exceeds {cap} bytes"):
            while body.readinto(buffer):
                pass
    else:
        total = 0
        while count := body.readinto(buffer):
            total += count
        assert total == len(DATA)


def test_readinto_an_empty_buffer_reads_nothing() -> None:
    body = plain(DATA)
    assert body.readinto(bytearray(0)) == 0 and body.received == 0 and not body.finished


def test_a_refused_framing_reads_nothing() -> None:
    body = RequestBody(io.BytesIO(DATA), length=None, chunked=False, error=(411, "no length"))
    assert body.readinto(bytearray(10)) == 0


def test_read_blocks_reuses_one_buffer_for_a_readinto_source() -> None:
    blocks = read_blocks(io.BytesIO(DATA), 4096)
    first = next(blocks)
    assert bytes(first) == DATA[:4096]
    second = next(blocks)
    assert first.obj is second.obj  # the same buffer: a block is valid until the next
    assert bytes(second) == DATA[4096:8192]
    assert bytes(next(blocks)) == DATA[8192:]
    assert next(blocks, None) is None


def test_read_blocks_of_a_read_only_source() -> None:
    sizes = [len(b) for b in read_blocks(ReadOnly(DATA), 4096)]
    assert sizes == [4096, 4096, len(DATA) - 8192]
    assert b"".join(bytes(b) for b in read_blocks(ReadOnly(DATA))) == DATA
    assert list(read_blocks(ReadOnly(b""))) == []
    assert BLOCK == 1024 * 1024
