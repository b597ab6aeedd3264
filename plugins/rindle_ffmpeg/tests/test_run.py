"""The subprocess runner: timeouts kill the process group; whitelists refuse playlists."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rindle.errors import ProcessingError
from rindle_ffmpeg.errors import CommandFailed, CommandTimeout, ToolNotFound
from rindle_ffmpeg.run import redact, run_command, run_ffmpeg
from rindle_ffmpeg.settings import AVSettings


def test_timeout_kills_a_hung_ffmpeg(workdir: Path, settings: AVSettings,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = workdir / "input.mp4"
    os.mkfifo(fifo)  # a file under the whitelist that never delivers a byte: ffmpeg blocks
    pids: list[int] = []
    original = os.killpg

    def spy(pgid: int, sig: int) -> None:
        pids.append(pgid)
        original(pgid, sig)

    monkeypatch.setattr(os, "killpg", spy)
    with pytest.raises(CommandTimeout) as info:
        run_ffmpeg(["-y", "-i", str(fifo), str(workdir / "out.jpg")], rundir=workdir,
                   settings=settings.with_caps(timeout_s=1.0))
    assert info.value.code == "ffmpeg_timeout" and info.value.status == "timeout"
    assert "RINDLE_FFMPEG_TIMEOUT" in info.value.message
    assert len(pids) == 1
    with pytest.raises(ProcessLookupError):
        original(pids[0], 0)  # the whole group is gone (and was reaped)
    assert not (workdir / "out.jpg").exists()


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"\x47" * 188)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server recording every path it is asked for."""
    _Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kind", ["hls_http", "hls_local", "concat_local"])
def test_playlists_referencing_other_paths_are_refused(
        kind: str, workdir: Path, media: dict[str, Path], settings: AVSettings,
        http_server: tuple[str, list[str]]) -> None:
    url, hits = http_server
    outside = media["av.mp4"]  # a real video outside the run directory
    body = {
        "hls_http": f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{url}/seg.ts\n"
                    "#EXT-X-ENDLIST\n",
        "hls_local": f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{outside}\n"
                     "#EXT-X-ENDLIST\n",
        "concat_local": f"ffconcat version 1.0\nfile '{outside}'\n",
    }[kind]
    evil = workdir / "input.mp4"
    evil.write_text(body)
    out = workdir / "poster.jpg"
    with pytest.raises(CommandFailed) as info:
        run_ffmpeg(["-y", "-i", str(evil), "-frames:v", "1", str(out)], rundir=workdir,
                   settings=settings)
    assert info.value.code == "ffmpeg_failed" and "whitelist" in info.value.stderr_tail
    assert hits == [] and not out.exists()


def test_protocol_urls_as_input_are_refused(workdir: Path, settings: AVSettings,
                                            http_server: tuple[str, list[str]]) -> None:
    url, hits = http_server
    with pytest.raises(ProcessingError) as info:
        run_ffmpeg(["-y", "-i", f"{url}/x.mp4", str(workdir / "o.jpg")], rundir=workdir,
                   settings=settings)
    assert info.value.code == "path_outside_run_dir" and hits == []
    # even past the path check, the protocol whitelist refuses http
    with pytest.raises(CommandFailed) as failed:
        run_command(["ffmpeg", "-nostdin", "-protocol_whitelist", "file", "-i",
                     f"{url}/x.mp4", "-f", "null", os.devnull], timeout_s=30)
    assert "not on whitelist" in failed.value.stderr_tail and hits == []


def test_missing_executable_is_a_config_error(workdir: Path) -> None:
    with pytest.raises(ToolNotFound) as info:
        run_command([str(workdir / "no-such-ffmpeg"), "-version"], timeout_s=120)
    assert info.value.code == "ffmpeg_not_found" and "RINDLE_FFMPEG_BIN" in info.value.message


def test_stderr_is_redacted(tmp_path: Path) -> None:
    text = (f"open {tmp_path}/in.mp4 failed; https://user:pw@cdn.example/a.mp4?X-Sig=abc "
            "and s3://k@bucket/key")
    assert redact(text, rundir=tmp_path) == (
        "open <run>/in.mp4 failed; https://<redacted>@cdn.example/a.mp4?<redacted> "
        "and s3://<redacted>@bucket/key")


def test_failed_command_keeps_a_bounded_tail(workdir: Path, settings: AVSettings,
                                             media: dict[str, Path]) -> None:
    bad = workdir / "input.mp4"
    bad.write_bytes(media["corrupt.mp4"].read_bytes())
    with pytest.raises(CommandFailed) as info:
        run_ffmpeg(["-y", "-i", str(bad), str(workdir / "o.jpg")], rundir=workdir,
                   settings=settings)
    assert 0 < len(info.value.stderr_tail) <= 2000 and str(workdir) not in str(info.value)


def test_shell_is_never_involved(workdir: Path) -> None:
    marker = workdir / "pwned"
    result = run_command(["echo", f"$(touch {marker})", ";", "touch", str(marker)],
                         timeout_s=120)
    assert result.status == 0 and "$(touch" in result.stdout and not marker.exists()

