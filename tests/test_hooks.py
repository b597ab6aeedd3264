"""rindle.hooks: typed hook calls convert plugin mappings and reject malformed answers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rindle.errors import PluginError
from rindle.hooks import Hooks, ProbeResult, Rendition, ScanVerdict
from rindle.hookspecs import hookimpl
from rindle.plugins import make_plugin_manager

ASSET: Any = SimpleNamespace(id="a1", meta={})


def _hooks(**answers: Any) -> Hooks:
    """A real plugin manager (no entry points, no defaults) plus one plugin answering
    each named hook with the given value."""

    class Plugin:
        @hookimpl
        def rindle_probe(self, path: Path, mime: str) -> Any:
            return answers.get("probe")

        @hookimpl
        def rindle_analyze(self, path: Path, asset: Any, probe: Any) -> Any:
            seen.append(probe)
            return answers.get("analyze")

        @hookimpl
        def rindle_scan(self, path: Path, asset: Any) -> Any:
            return answers.get("scan")

        @hookimpl
        def rindle_transcode(self, source: Path, spec: Any, workdir: Path) -> Any:
            return answers.get("transcode")

    seen: list[Any] = []
    pm = make_plugin_manager(load_entrypoints=False)
    for name, plugin in list(pm.list_name_plugin()):
        if name.startswith("rindle.default_plugins."):
            pm.unregister(plugin)
    pm.register(Plugin(), name="test-plugin")
    hooks = Hooks(pm)
    hooks.seen = seen  # type: ignore[attr-defined]
    return hooks


def test_probe_converts_and_keeps_the_answer_for_analyzers(tmp_path: Path) -> None:
    answer = {"kind": "video", "width": 640, "height": 360, "duration_ms": 1500,
              "has_video_track": True, "has_audio_track": False, "format": "mp4"}
    hooks = _hooks(probe=answer, analyze={"codec": "h264"})
    probe = hooks.probe(tmp_path / "f", "video/mp4")
    assert probe == ProbeResult(kind="video", width=640, height=360, duration_ms=1500,
                                has_video_track=True, has_audio_track=False)
    assert hooks.analyze(tmp_path / "f", ASSET, probe) == {"codec": "h264"}
    assert hooks.seen == [answer]  # type: ignore[attr-defined]  # extra keys included


def test_probe_fields_are_optional_and_none_means_no_answer(tmp_path: Path) -> None:
    assert _hooks(probe={}).probe(tmp_path, "image/png") == ProbeResult()
    assert _hooks(probe=None).probe(tmp_path, "image/png") is None


def test_analyze_with_no_probe_passes_an_empty_mapping(tmp_path: Path) -> None:
    hooks = _hooks(analyze=None)
    assert hooks.analyze(tmp_path, ASSET, None) == {}
    assert hooks.seen == [{}]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("answer", "key"), [
    ({"kind": 3}, "kind"),
    ({"width": "640"}, "width"),
    ({"duration_ms": 1.5}, "duration_ms"),
    ({"has_audio_track": "yes"}, "has_audio_track"),
])
def test_probe_wrong_type_raises_plugin_error(tmp_path: Path, answer: dict[str, Any],
                                              key: str) -> None:
    with pytest.raises(PluginError, match=rf"rindle_probe.*'{key}'"):
        _hooks(probe=answer).probe(tmp_path, "video/mp4")


def test_probe_non_mapping_raises_plugin_error(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="rindle_probe must answer a mapping"):
        _hooks(probe=[("kind", "image")]).probe(tmp_path, "image/png")


def test_analyze_non_mapping_raises_plugin_error(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="rindle_analyze must answer a mapping"):
        _hooks(analyze="meta").analyze(tmp_path, ASSET, None)


def test_transcode_converts(tmp_path: Path) -> None:
    out = tmp_path / "output.webp"
    result = _hooks(transcode={"path": str(out), "content_type": "image/webp", "width": 10,
                               "height": 20}).transcode(tmp_path, SimpleNamespace(), tmp_path,
                                                        None)  # type: ignore[arg-type]
    assert result == Rendition(path=out, content_type="image/webp", extension=".webp",
                               width=10, height=20)
    given = _hooks(transcode={"path": out, "extension": ".img"})
    assert given.transcode(tmp_path, SimpleNamespace(), tmp_path,  # type: ignore[arg-type]
                           None) == Rendition(path=out, extension=".img")
    assert _hooks().transcode(tmp_path, SimpleNamespace(), tmp_path,  # type: ignore[arg-type]
                              None) is None


@pytest.mark.parametrize(("answer", "pattern"), [
    ({"content_type": "image/png"}, "without 'path'"),
    ({"path": 42}, "'path'"),
    ({"path": "o.png", "width": "10"}, "'width'"),
    ({"path": "o.png", "content_type": b"image/png"}, "'content_type'"),
])
def test_transcode_malformed_raises_plugin_error(tmp_path: Path, answer: dict[str, Any],
                                                 pattern: str) -> None:
    with pytest.raises(PluginError, match=f"rindle_transcode.*{pattern}"):
        _hooks(transcode=answer).transcode(tmp_path, SimpleNamespace(),  # type: ignore[arg-type]
                                           tmp_path, None)


def test_scan_returns_the_rejection_only(tmp_path: Path) -> None:
    reject = _hooks(scan={"verdict": "reject", "reason": "eicar"}).scan(tmp_path, ASSET)
    assert reject == ScanVerdict(verdict="reject", reason="eicar")
    assert _hooks(scan={"verdict": "reject"}).scan(tmp_path, ASSET) == ScanVerdict("reject")
    assert _hooks(scan={"verdict": "accept"}).scan(tmp_path, ASSET) is None
    assert _hooks(scan={}).scan(tmp_path, ASSET) is None
    assert _hooks(scan=None).scan(tmp_path, ASSET) is None


@pytest.mark.parametrize(("answer", "pattern"), [
    ({"reason": "x"}, "without 'verdict'"),
    ({"verdict": True}, "'verdict'"),
    ({"verdict": "reject", "reason": 7}, "'reason'"),
])
def test_scan_malformed_raises_plugin_error(tmp_path: Path, answer: dict[str, Any],
                                            pattern: str) -> None:
    with pytest.raises(PluginError, match=f"rindle_scan.*{pattern}"):
        _hooks(scan=answer).scan(tmp_path, ASSET)
