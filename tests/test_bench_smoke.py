"""The network benches (bench/verify_s3.py, bench/mux_sync.py) and the thumbnail bench's
equal-effort row run end to end at tiny sizes, so they cannot rot. Only what the benches
check about correctness is asserted (counts, outputs, the rate limit), never wall time or
the speed bars: tiny sizes on a shared machine say nothing about speed."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=240, check=False)
    out = proc.stdout
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1: a speed bar missed
    assert "result: " in out, proc.stderr[-3000:]
    return out


def test_verify_s3_counts_agree() -> None:
    out = run("verify_s3.py", "--objects", "40", "--repeats", "1")
    assert "seeded 40 objects (20 assets: original + thumb; 1 thumbs never put)" in out
    assert "counts disagree" not in out
    rindle = next(line for line in out.splitlines() if line.startswith("rindle verify"))
    naive = next(line for line in out.splitlines() if line.startswith("sequential head"))
    assert rindle.split()[4:6] == ["39", "1"] and naive.split()[5:7] == ["39", "1"]
    # one page of 20 assets: their 39 stored objects, each listed once, in one request
    assert "rindle listings per run: 39 objects in 1 requests" in out


def test_mux_sync_reaches_ready_within_the_rate_limit() -> None:
    out = run("mux_sync.py", "--rows", "12", "--threads", "3", "--rate-limit", "40",
              "--sqlite")
    assert "not every row reached ready" not in out
    assert "RATE LIMIT EXCEEDED" not in out
    assert out.count(", 12 rows ready,") == 3
    assert "12 Mux rows, fake Mux adds 20 ms per request, rate_limit_per_second = 40" in out


@pytest.mark.skipif(shutil.which("vipsthumbnail") is None,
                    reason="vipsthumbnail (libvips-tools) is not installed")
def test_thumbnails_equal_effort_row() -> None:
    out = run("thumbnails.py", "--count", "1")
    assert "WRONG" not in out
    assert "at equal effort (WebP method/effort 4 both)" in out
    row = next(line for line in out.splitlines() if line.startswith("rindle-m4 ")
               and line.rstrip().endswith(tuple("0123456789")))
    assert 0 < float(row.split()[-1]) <= 1  # the SSIM against vips' output


def test_make_bench_runs_only_scripts() -> None:
    """``make bench`` (bench/run_all.py) runs each bench/*.py as a script: each one it
    picks has a ``__main__`` entry, and the Celery app module (no entry; it needs the env
    its workers get) is left out, so ``make bench`` does not report it failed."""
    spec = importlib.util.spec_from_file_location("run_all", BENCH / "run_all.py")
    assert spec is not None and spec.loader is not None
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    picked = {p.name for p in BENCH.glob("*.py")
              if p.name not in run_all.NOT_BENCHMARKS and not p.name.startswith("_")}
    assert picked >= {"jobs.py", "ops.py", "thumbnails.py", "tus.py", "verify_s3.py",
                      "mux_sync.py"}
    for name in sorted(picked):
        assert 'if __name__ == "__main__":' in (BENCH / name).read_text(), name
    assert "celery_bench_app.py" in run_all.NOT_BENCHMARKS
    assert 'if __name__ == "__main__":' not in (BENCH / "celery_bench_app.py").read_text()
