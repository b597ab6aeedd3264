"""Properties of the pure parts: the metadata sanitiser and the peaks bucketing."""

from __future__ import annotations

import html
import math
import re
import tempfile
from array import array
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rindle_ffmpeg.probe import sanitize
from rindle_ffmpeg.waveform import peaks


@settings(deadline=None)  # a loaded machine may be slow; only the answer matters
@given(st.text())
def test_sanitized_strings_are_inert_bounded_utf8(text: str) -> None:
    out = sanitize(text)
    raw = out.encode("utf-8")
    assert len(raw) <= 1024
    assert not re.search(r"[\x00-\x08\x0a-\x1f<>\"']", out)
    assert "&" not in re.sub(r"&(?:amp|lt|gt|quot|#39);", "", out)
    if len(text.encode("utf-8")) * 6 <= 1024:  # short enough never to be cut
        assert html.unescape(out) == re.sub(r"[\x00-\x08\x0a-\x1f]", "", text)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=400),
       st.integers(min_value=1, max_value=50))
def test_peaks_have_exactly_length_clamped_ordered_pairs(samples: list[float],
                                                          length: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        raw = Path(d) / "w.raw"
        raw.write_bytes(array("f", samples).tobytes())
        out = peaks(raw, length)
    assert len(out) == length
    assert all(-1.0 <= lo <= hi <= 1.0 for lo, hi in out)
    clamped = [min(1.0, max(-1.0, s)) for s in samples]
    buckets = math.ceil(len(samples) / max(1, math.ceil(len(samples) / length)))
    assert max(hi for _, hi in out[:buckets]) == round(max(clamped), 6)
    assert min(lo for lo, _ in out[:buckets]) == round(min(clamped), 6)
    assert out[buckets:] == [[0.0, 0.0]] * (length - buckets)
