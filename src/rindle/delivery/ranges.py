"""HTTP ``Range`` headers: one satisfiable range -> 206, unsatisfiable -> 416, else 200."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ByteRangeDecision", "parse_range"]

_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)", re.ASCII)

@dataclass(frozen=True)
class ByteRangeDecision:
    """How to answer a ``Range`` header for an object of ``size`` bytes.

    ``kind`` is ``full`` (200, whole body), ``partial`` (206, bytes ``start``..``end``
    inclusive) or ``unsatisfiable`` (416). ``reason`` says why a ``Range`` header was
    ignored (``range_unparseable`` or ``multiple_ranges``); it is ``None`` otherwise.
    """

    kind: str
    start: int = 0
    end: int = -1
    reason: str | None = None


def parse_range(header: str | None, size: int) -> ByteRangeDecision:
    """Decide the answer to ``Range: header`` for ``size`` bytes; never raises.

    One range ``bytes=a-b`` (``a <= b``; ``b`` clamped to ``size - 1``), ``bytes=a-`` or
    ``bytes=-n`` is partial; ``a >= size``, ``-0`` or any range of an empty object is
    unsatisfiable; several ranges or anything malformed means the full body.
    """
    full = ByteRangeDecision("full", 0, size - 1)
    if header is None or not header.strip():
        return full
    unit, sep, spec_list = header.partition("=")
    specs = [s.strip() for s in spec_list.split(",") if s.strip()]
    if not sep or unit.strip().lower() != "bytes" or not specs:
        return ByteRangeDecision("full", 0, size - 1, "range_unparseable")
    if len(specs) > 1:
        return ByteRangeDecision("full", 0, size - 1, "multiple_ranges")
    match = _RANGE_SPEC.fullmatch(specs[0])
    try:
        first, last = (int(g) if g else None for g in match.groups()) if match else (None, None)
    except ValueError:  # more digits than int() accepts
        first = last = None
    if first is None and last is None:
        return ByteRangeDecision("full", 0, size - 1, "range_unparseable")
    if first is None:
        assert last is not None
        if last == 0 or size == 0:
            return ByteRangeDecision("unsatisfiable")
        return ByteRangeDecision("partial", max(size - last, 0), size - 1)
    if last is not None and last < first:
        return ByteRangeDecision("full", 0, size - 1, "range_unparseable")
    if first >= size:
        return ByteRangeDecision("unsatisfiable")
    return ByteRangeDecision("partial", first, size - 1 if last is None else min(last, size - 1))
