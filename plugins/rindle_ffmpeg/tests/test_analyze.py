"""pymediainfo analysis: a small JSON-safe dict with codecs, rates and channels."""

from __future__ import annotations

import json
from pathlib import Path

from rindle_ffmpeg import plugin
from rindle_ffmpeg.probe import probe_av


def test_video_analysis(media: dict[str, Path]) -> None:
    probe = probe_av(media["av.mp4"])
    meta = plugin.rindle_analyze(path=media["av.mp4"], asset=None, probe=probe)
    assert meta is not None
    av = meta["av"]
    assert av["container"] == "MPEG-4" and 900 <= av["duration_ms"] <= 1100
    assert av["video"]["codec"] == "AVC" and av["video"]["frame_rate"] == 10.0
    assert (av["video"]["width"], av["video"]["height"]) == (160, 120)
    assert av["audio"]["codec"] == "AAC" and av["audio"]["sample_rate"] == 44100
    assert av["audio"]["channels"] == 1 and av["audio"]["bit_rate"] > 0
    assert json.loads(json.dumps(meta)) == meta


def test_audio_analysis_and_tags(media: dict[str, Path]) -> None:
    meta = plugin.rindle_analyze(path=media["tone.mp3"], asset=None,
                                 probe=probe_av(media["tone.mp3"]))
    assert meta is not None and "video" not in meta["av"]
    assert meta["av"]["audio"]["codec"] == "MPEG Audio"
    tagged = plugin.rindle_analyze(path=media["tagged.mp4"], asset=None,
                                   probe=probe_av(media["tagged.mp4"]))
    assert tagged is not None
    assert tagged["av_tags"]["format"]["title"].startswith("&lt;b&gt;")


def test_images_are_not_analysed_here(media: dict[str, Path]) -> None:
    probe = {"kind": "image", "width": 32, "height": 32}
    assert plugin.rindle_analyze(path=media["still.png"], asset=None, probe=probe) is None
