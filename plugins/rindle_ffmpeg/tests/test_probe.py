"""The AV probe against files the real ffmpeg made: reshape, sanitising, refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rindle.errors import ProcessingError
from rindle_ffmpeg import plugin
from rindle_ffmpeg.errors import CommandFailed
from rindle_ffmpeg.probe import probe_av, reshape, sanitize


def test_video_with_audio(media: dict[str, Path]) -> None:
    probe = plugin.rindle_probe(path=media["av.mp4"], mime="video/mp4")
    assert probe is not None
    assert {k: probe[k] for k in ("kind", "width", "height", "has_video_track",
                                  "has_audio_track")} == {
        "kind": "video", "width": 160, "height": 120, "has_video_track": True,
        "has_audio_track": True}
    assert isinstance(probe["duration_ms"], int) and 900 <= probe["duration_ms"] <= 1100


def test_silent_video_and_audio_only(media: dict[str, Path]) -> None:
    silent = probe_av(media["silent.mp4"])
    assert (silent["kind"], silent["has_audio_track"]) == ("video", False)
    tone = probe_av(media["tone.mp3"])
    assert tone["kind"] == "audio" and tone["has_audio_track"] and not tone["has_video_track"]
    assert "width" not in tone and "height" not in tone
    assert 900 <= tone["duration_ms"] <= 1200


def test_cover_art_does_not_make_audio_a_video(media: dict[str, Path]) -> None:
    probe = probe_av(media["cover.mp3"])
    assert (probe["kind"], probe["has_video_track"], probe["has_audio_track"]) == (
        "audio", False, True)


def test_still_images_are_left_to_the_pillow_probe(media: dict[str, Path]) -> None:
    assert plugin.rindle_probe(path=media["still.png"], mime="image/png") is None
    assert plugin.rindle_probe(path=media["av.mp4"], mime="application/pdf") is None


def test_tags_are_html_escaped_control_stripped_and_bounded(media: dict[str, Path]) -> None:
    title = probe_av(media["tagged.mp4"])["metadata"]["format"]["title"]
    assert title.startswith("&lt;b&gt;x&lt;/b&gt; &amp; &quot;q&quot; &#39;a&#39;\ttab ")
    assert "\x01" not in title and "\x1b" not in title
    assert len(title.encode()) <= 1024
    title.encode("utf-8").decode("utf-8")  # cut on a code-point boundary
    assert title.endswith("é")


def test_sanitize_is_recursive_and_leaves_other_values() -> None:
    assert sanitize({"a<": ["x\x00y", 3, None, {"k": "\ttab\n"}]}) == {
        "a&lt;": ["xy", 3, None, {"k": "\ttab"}]}
    assert len(sanitize("€" * 400).encode()) == 1023  # 341 whole euro signs


def test_corrupt_file_is_refused_with_the_ffprobe_tail(media: dict[str, Path]) -> None:
    with pytest.raises(CommandFailed) as info:
        plugin.rindle_probe(path=media["corrupt.mp4"], mime="video/mp4")
    assert info.value.code == "ffprobe_failed" and info.value.status != 0
    assert info.value.stderr_tail and str(media["corrupt.mp4"].parent) not in str(info.value)
    assert "<run>" in info.value.stderr_tail


def test_zero_byte_file_is_refused(media: dict[str, Path]) -> None:
    with pytest.raises(ProcessingError) as info:
        probe_av(media["empty.mp4"])
    assert info.value.code == "empty_file" and "0 bytes" in info.value.message


def test_playlist_disguised_as_mp4_is_refused(source: Callable[[str], Path],
                                              media: dict[str, Path]) -> None:
    path = source("av.mp4")
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{media['av.mp4']}\n"
                    "#EXT-X-ENDLIST\n")
    with pytest.raises(CommandFailed) as info:
        probe_av(path)
    assert info.value.code == "ffprobe_failed" and "whitelist" in info.value.stderr_tail


def test_reshape_without_streams_or_duration() -> None:
    assert reshape({"format": {}, "streams": []}) == {
        "kind": "audio", "has_video_track": False, "has_audio_track": False,
        "metadata": {"format": {}, "streams": []}}
