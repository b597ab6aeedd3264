"""Thumbnail benchmark: rindle's image processor against naive Pillow and libvips.

Run: ``.venv/bin/python bench/thumbnails.py [--count N] [--sets grain,photo]`` (default 200
images per set, both sets).

Two sets of N synthetic 4000x3000 JPEGs (quality 90), each generated once:

* ``grain``: gradients, blurred blobs, hard-edged shapes, 1-8 px lines and strong sensor-like
  grain (sigma 3 to 18): detail at the output's Nyquist frequency, the hardest case for
  comparing two resizers;
* ``photo``: photo-like, smooth 1/f-like texture and soft-edged shapes (edges ~8 px wide as
  a 12 MP camera's optics leave them) with faint grain (sigma 2).

Each set is made into 256x256 ``fill`` WebPs (quality 80) by each contender, each in its
own child process, single-threaded:

* rindle: :func:`rindle.media.image_processor.render_image` (WebP ``method`` =
  ``WEBP_METHOD``, 2);
* rindle at equal effort (``rindle-m4``): the same call with WebP ``method=4``, the effort
  vipsthumbnail uses by default (libwebp's method and libvips' effort are the same knob);
* naive Pillow: ``Image.open`` -> ``convert("RGB")`` -> ``ImageOps.fit(LANCZOS)`` -> save
  (a full decode and an exact-centre crop);
* vipsthumbnail: one batched invocation per 100 files, ``VIPS_CONCURRENCY=1``;
* calibration, under no bar: ``rindle-m4-d4`` (rindle-m4 decoding JPEGs at libvips' 1/4
  instead of rindle's 1/8) and ``vips-lanczos2``/``vips-cubic`` (vipsthumbnail's exact pipeline
  through the ``vips`` CLI with another kernel, first 40 images). They show how far apart
  two correct resizers land on SSIM: WebP at q80 alone costs ~0.03 of it, and any
  resampling difference is amplified by the two encoders' different rounding.

Reports images/s, CPU ms/image (user + system) and peak RSS (``ru_maxrss`` of the child that
did the work) and the ratios rindle/naive and rindle/vips. The bar, on each set: rindle >=
3x naive throughput, >= 0.7x vipsthumbnail, and a lower peak RSS than naive Pillow. At equal
effort (rindle-m4 against vipsthumbnail, both effort 4) the bar is >= 1.0x vipsthumbnail's
images/s, with a mean SSIM against vipsthumbnail's outputs >= 0.97 and a mean output size
within 10% of vips'. SSIM (luma, 7x7 uniform window, sample covariance: scikit-image's
defaults) needs numpy, the ``bench`` extra; without it the SSIM column is left out and
reported as such. SSIM is sensitive to sub-pixel shifts (vips against itself moved one
output pixel: ~0.6 on the grain set), so it holds only because rindle's ``fill`` crops on
libvips' pixel grid.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SIZE = (4000, 3000)
BOX = 256
QUALITY = 80
VIPS_BATCH = 100
SINGLE_THREAD_ENV = {"VIPS_CONCURRENCY": "1", "OMP_NUM_THREADS": "1",
                     "OPENBLAS_NUM_THREADS": "1"}


@dataclass(frozen=True)
class ThumbSpec:
    """The variant spec under test (same attributes as ``rindle.domain.variants.Image``)."""

    mode: str = "fill"
    width: int | None = BOX
    height: int | None = BOX
    format: str = "webp"
    quality: int | None = QUALITY
    kind: str = "image"
    preset: str | None = None


# --- corpus ---------------------------------------------------------------------------------


def generate(directory: Path, count: int, seed: int = 1234) -> list[Path]:
    """Write ``count`` varied 4000x3000 JPEGs (q90) into ``directory``."""
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    rng = random.Random(seed)
    width, height = SIZE
    # A few reusable full-size textures; each image rolls and mixes them differently.
    # Sensor-like grain from clean (sigma 3) to high-ISO (sigma 18): file sizes vary ~4x.
    grain = [Image.effect_noise(SIZE, sigma) for sigma in (3, 8, 18)]
    blobs = [Image.effect_noise((width // 16, height // 16), 90)
             .resize(SIZE, Image.Resampling.BICUBIC) for _ in range(3)]
    gradients = [g.resize(SIZE).rotate(angle)
                 for g in (Image.linear_gradient("L"), Image.radial_gradient("L"))
                 for angle in (0, 90, 180, 270)]
    paths = []
    for index in range(count):
        channels = []
        for band in range(3):
            gradient = rng.choice(gradients)
            texture = ImageChops.offset(blobs[(index + band) % 3], rng.randrange(width),
                                        rng.randrange(height))
            channels.append(Image.blend(gradient, texture, 0.25 + 0.5 * rng.random()))
        im = Image.merge("RGB", channels)
        draw = ImageDraw.Draw(im)
        for _ in range(rng.randint(10, 40)):
            x, y = rng.randrange(width), rng.randrange(height)
            w, h = rng.randint(20, 1200), rng.randint(20, 900)
            colour = tuple(rng.randrange(256) for _ in range(3))
            shape = rng.choice((draw.ellipse, draw.rectangle))
            shape((x, y, x + w, y + h), fill=colour)
        for _ in range(rng.randint(0, 60)):
            draw.line([(rng.randrange(width), rng.randrange(height)) for _ in range(2)],
                      fill=tuple(rng.randrange(256) for _ in range(3)), width=rng.randint(1, 8))
        if index % 4 == 0:
            im = im.filter(ImageFilter.BoxBlur(2))
        noise = ImageChops.offset(grain[rng.randrange(3)], rng.randrange(width),
                                  rng.randrange(height))
        im = ImageChops.add(im, Image.merge("RGB", (noise,) * 3), scale=1.0, offset=-128)
        path = directory / f"img{index:05d}.jpg"
        im.save(path, "JPEG", quality=90)
        paths.append(path)
        if sys.stderr.isatty():
            print(f"\r  generated {index + 1}/{count}", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return paths


def generate_photo(directory: Path, count: int, seed: int = 4321) -> list[Path]:
    """Write ``count`` photo-like 4000x3000 JPEGs (q90) into ``directory``.

    Smooth content with detail at every scale and soft edges, as a 12 MP camera gives: a
    1/f-like texture (octaves of noise, amplitude falling with frequency) and a few flat
    shapes, composed at 1000x750, softened (Gaussian, radius 1) and enlarged bicubically
    (edges ~8 px wide, as a lens and demosaicing leave them), plus faint grain (sigma 2).
    """
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    rng = random.Random(seed)
    width, height = SIZE
    small = (width // 4, height // 4)
    grain = Image.effect_noise(SIZE, 2)
    paths = []
    for index in range(count):
        bands = []
        for _ in range(3):
            band = Image.new("L", small, 128)
            for divisor, sigma in ((500, 60), (160, 30), (50, 15), (16, 7), (5, 3.5)):
                octave = Image.effect_noise((width // divisor, height // divisor), sigma)
                band = ImageChops.add(band, octave.resize(small, Image.Resampling.BICUBIC),
                                      scale=1.0, offset=-128)
            bands.append(band)
        im = Image.merge("RGB", bands)
        draw = ImageDraw.Draw(im)
        for _ in range(rng.randint(5, 20)):
            x, y = rng.randrange(small[0]), rng.randrange(small[1])
            w, h = rng.randint(25, 375), rng.randint(25, 300)
            shape = rng.choice((draw.ellipse, draw.rectangle))
            shape((x, y, x + w, y + h), fill=tuple(rng.randrange(256) for _ in range(3)))
        im = im.filter(ImageFilter.GaussianBlur(1)).resize(SIZE, Image.Resampling.BICUBIC)
        noise = ImageChops.offset(grain, rng.randrange(width), rng.randrange(height))
        im = ImageChops.add(im, Image.merge("RGB", (noise,) * 3), scale=1.0, offset=-128)
        path = directory / f"img{index:05d}.jpg"
        im.save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


SETS = {"grain": generate, "photo": generate_photo}


# --- contenders (each runs in a child process) -----------------------------------------------


def run_rindle(files: list[Path], out: Path) -> None:
    from rindle.media.image_processor import render_image

    spec = ThumbSpec()
    for path in files:  # named after the source, as the others are (one rename syscall)
        render_image(path, spec, out)["path"].rename(out / f"{path.stem}.webp")


def run_rindle_m4(files: list[Path], out: Path) -> None:
    from rindle.media import image_processor

    setattr(image_processor, "WEBP_METHOD", 4)  # noqa: B010 - Final to mypy, not at runtime
    run_rindle(files, out)


def run_rindle_m4_d4(files: list[Path], out: Path) -> None:
    """Calibration: rindle-m4 with libvips' shrink-on-load gap (DRAFT_GAP 2.0: JPEGs decoded
    at 1/4 here, not 1/8)."""
    from rindle.media import image_processor

    setattr(image_processor, "DRAFT_GAP", 2.0)  # noqa: B010 - Final to mypy, not at runtime
    run_rindle_m4(files, out)


def run_naive(files: list[Path], out: Path) -> None:
    from PIL import Image, ImageOps

    for path in files:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        thumb = ImageOps.fit(rgb, (BOX, BOX), Image.Resampling.LANCZOS)
        thumb.save(out / f"{path.stem}.webp", "WEBP", quality=QUALITY)


def run_vips(files: list[Path], out: Path) -> None:
    for start in range(0, len(files), VIPS_BATCH):
        batch = [str(p) for p in files[start:start + VIPS_BATCH]]
        subprocess.run(
            ["vipsthumbnail", *batch, "--size", f"{BOX}x{BOX}", "--smartcrop", "centre",
             "--vips-concurrency=1", "-o", f"{out}/%s.webp[Q={QUALITY}]"],
            check=True, env={**os.environ, **SINGLE_THREAD_ENV},
        )


def run_vips_kernel(files: list[Path], out: Path, kernel: str) -> None:
    """Calibration: vipsthumbnail's pipeline spelled out with the ``vips`` CLI (shrink-on-load
    by its rule, ``resize`` on the loaded image, centre ``smartcrop``, WebP Q80 effort 4),
    with another resampling ``kernel``. With lanczos3 the files are byte-identical to
    vipsthumbnail's."""
    from PIL import Image

    env = {**os.environ, **SINGLE_THREAD_ENV}
    for path in files:
        with Image.open(path) as im:
            width, height = im.size
        shrink = min(width, height) / BOX  # cover: the smaller shrink
        load = next((k for k in (8, 4, 2) if shrink >= 2 * k), 1)
        loaded_w, loaded_h = -(-width // load), -(-height // load)
        scale = max(BOX / loaded_w, BOX / loaded_h)
        resized = out / f"{path.stem}.v"
        subprocess.run(["vips", "resize", f"{path}[shrink={load}]", str(resized), repr(scale),
                        "--kernel", kernel], check=True, env=env)
        subprocess.run(["vips", "smartcrop", str(resized), f"{out}/{path.stem}.webp[Q={QUALITY}]",
                        str(BOX), str(BOX), "--interesting", "centre"], check=True, env=env)
        resized.unlink()


CONTENDERS = {"rindle": run_rindle, "rindle-m4": run_rindle_m4, "naive": run_naive,
              "vips": run_vips, "rindle-m4-d4": run_rindle_m4_d4,
              "vips-lanczos2": lambda files, out: run_vips_kernel(files, out, "lanczos2"),
              "vips-cubic": lambda files, out: run_vips_kernel(files, out, "cubic")}
#: Calibration rows: timed, but the bars ignore them; they show how far two correct resizers
#: sit apart on SSIM (vips against itself with another kernel; rindle at vips' decode scale).
CALIBRATION = ("rindle-m4-d4", "vips-lanczos2", "vips-cubic")
#: The vips-CLI calibration rows run on the first this many images only (two processes each).
CALIBRATION_IMAGES = 40


def _self_peak_kb() -> int:
    """Peak RSS of this process image (VmHWM). ``ru_maxrss`` would also count the forked
    copy of the parent that existed before ``exec``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def child(name: str, source: Path, out: Path) -> None:
    """Run one contender over every file in ``source`` and print one JSON line."""
    files = sorted(source.glob("*.jpg"))
    if name.startswith("vips-"):
        files = files[:CALIBRATION_IMAGES]
    run = CONTENDERS[name]
    if not name.startswith("vips"):  # import the library, warm caches outside the timing
        warm = out / "warmup"
        warm.mkdir()
        run(files[:1], warm)
        shutil.rmtree(warm)
    baseline = _self_peak_kb()
    external = name.startswith("vips")
    who = resource.RUSAGE_CHILDREN if external else resource.RUSAGE_SELF
    cpu_before = _cpu_seconds(who)
    started = time.perf_counter()
    run(files, out)
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds(who) - cpu_before
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if external else _self_peak_kb()
    print(json.dumps({"contender": name, "images": len(files), "seconds": elapsed,
                      "cpu_seconds": cpu, "peak_rss_kb": peak,
                      "baseline_rss_kb": 0 if external else baseline}))


def measure(name: str, source: Path, out_root: Path) -> dict[str, Any]:
    out = out_root / name
    out.mkdir()
    proc = subprocess.run([sys.executable, __file__, "--child", name, str(source), str(out)],
                          check=True, capture_output=True, text=True,
                          env={**os.environ, **SINGLE_THREAD_ENV})
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["outputs_ok"] = _check_outputs(out, result["images"])
    result["bytes"] = sum(p.stat().st_size for p in out.glob("*.webp"))
    result["out"] = str(out)
    return result


def ssim(a: Any, b: Any) -> float:
    """Mean SSIM of two equal-size greyscale images (scikit-image's defaults: 7x7 uniform
    window, sample covariance, K1 0.01, K2 0.03, data range 255, borders cropped)."""
    import numpy as np

    x, y = (np.asarray(im, dtype=np.float64) for im in (a, b))
    win = 7
    n = win * win

    def mean(img: Any) -> Any:  # box filter over every full 7x7 window
        c = np.cumsum(np.cumsum(np.pad(img, ((1, 0), (1, 0))), axis=0), axis=1)
        return (c[win:, win:] - c[:-win, win:] - c[win:, :-win] + c[:-win, :-win]) / n

    ux, uy = mean(x), mean(y)
    cov = n / (n - 1)
    vx, vy = cov * (mean(x * x) - ux * ux), cov * (mean(y * y) - uy * uy)
    vxy = cov * (mean(x * y) - ux * uy)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())


def mean_ssim(out: Path, reference: Path) -> float | None:
    """Mean SSIM (luma) of each WebP in ``out`` against the same-named one in ``reference``;
    None without numpy."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        return None
    from PIL import Image

    scores = []
    for path in sorted(out.glob("*.webp")):
        with Image.open(path) as a, Image.open(reference / path.name) as b:
            scores.append(ssim(a.convert("L"), b.convert("L")))
    return sum(scores) / len(scores)


def _check_outputs(out: Path, expected: int) -> bool:
    from PIL import Image

    outputs = sorted(out.glob("*.webp"))
    if len(outputs) != expected:
        return False
    for path in outputs[:: max(1, expected // 10)]:
        with Image.open(path) as im:
            if im.size != (BOX, BOX) or im.format != "WEBP":
                return False
    return True


# --- report ---------------------------------------------------------------------------------


def report(set_name: str, results: dict[str, dict[str, Any]], count: int) -> list[str]:
    """Print one source set's table and bars; returns its misses."""
    from rindle.media.image_processor import WEBP_METHOD

    print(f"\n== {set_name} set: {count} x {SIZE[0]}x{SIZE[1]} JPEG (q90) -> {BOX}x{BOX} fill "
          f"WebP (q{QUALITY}); every contender single-threaded (VIPS_CONCURRENCY=1), one "
          "child process each.")
    print(f"WebP effort: rindle method={WEBP_METHOD}, rindle-m4 method=4, naive Pillow "
          "method=4 (default), vipsthumbnail effort=4 (default). vipsthumbnail timings "
          "include its start-up "
          f"(one invocation per {VIPS_BATCH} files); Python contenders are timed after a "
          "one-image warm-up. Calibration rows (not under any bar): "
          f"rindle-m4-d4 decodes at 1/4 as vips does; vips-lanczos2/-cubic run the first "
          f"{CALIBRATION_IMAGES} images through the vips CLI, two processes each.")
    print(f"{'contender':<14}{'images/s':>10}{'ms/image':>10}{'CPU ms/image':>14}"
          f"{'peak RSS MB':>13}{'after warm-up MB':>17}  outputs")
    for name, r in results.items():
        rate = r["images"] / r["seconds"]
        cpu = 1000 * r["cpu_seconds"] / r["images"]
        base = f"{r['baseline_rss_kb'] / 1024:.1f}" if r["baseline_rss_kb"] else "-"
        print(f"{name:<14}{rate:>10.1f}{1000 / rate:>10.1f}{cpu:>14.1f}"
              f"{r['peak_rss_kb'] / 1024:>13.1f}{base:>17}  "
              f"{'ok' if r['outputs_ok'] else 'WRONG'}")
    print("(the bars are on images/s, wall time; CPU ms/image, user + system, moves less "
          "when other work shares the machine)")
    rate = {n: r["images"] / r["seconds"] for n, r in results.items()}
    failures = []
    speed_naive = rate["rindle"] / rate["naive"]
    print(f"\nrindle/naive throughput: {speed_naive:.2f}x (bar >= 3x)")
    if speed_naive < 3:
        failures.append("rindle is less than 3x naive Pillow")
    if "vips" in rate:
        speed_vips = rate["rindle"] / rate["vips"]
        print(f"rindle/vips  throughput: {speed_vips:.2f}x (bar >= 0.7x)")
        if speed_vips < 0.7:
            failures.append("rindle is below 0.7x vipsthumbnail")
        failures += equal_effort(results, rate)
    rss = results["rindle"]["peak_rss_kb"] / results["naive"]["peak_rss_kb"]
    print(f"rindle/naive peak RSS:   {rss:.2f}x (bar < 1x; rindle's figure includes importing "
          "rindle itself, SQLAlchemy and all)")
    if rss >= 1:
        failures.append("rindle's peak RSS is not below naive Pillow's")
    if not all(r["outputs_ok"] for r in results.values()):
        failures.append("a contender produced wrong outputs")
    print(f"{set_name} set: " + ("bar met" if not failures else "BAR MISSED: "
                                  + "; ".join(failures)))
    return [f"{set_name}: {failure}" for failure in failures]


def equal_effort(results: dict[str, dict[str, Any]], rate: dict[str, float]) -> list[str]:
    """Print the equal-effort row (rindle-m4 vs vips, both effort 4); returns the misses."""
    vips = results["vips"]
    reference = Path(vips["out"])
    print("\nat equal effort (WebP method/effort 4 both), against vipsthumbnail's outputs:")
    print(f"{'contender':<14}{'vs vips images/s':>17}{'mean bytes':>12}{'vs vips bytes':>15}"
          f"{'SSIM vs vips':>14}")
    misses = []
    # naive: Pillow's ImageOps.fit (LANCZOS, exact-centre crop), for reference
    for name in ("rindle-m4", "rindle", "naive", *CALIBRATION):
        if name not in results:
            continue
        r = results[name]
        mine = r["bytes"] / r["images"]
        size = mine / (_bytes_of(reference, Path(r["out"])) / r["images"])
        score = mean_ssim(Path(r["out"]), reference)
        shown = "n/a (no numpy)" if score is None else f"{score:.4f}"
        print(f"{name:<14}{rate[name] / rate['vips']:>16.2f}x{mine:>12.0f}"
              f"{size:>14.2f}x {shown:>13}")
        if name == "rindle-m4":
            if rate[name] < rate["vips"]:
                misses.append("rindle at equal effort is below 1.0x vipsthumbnail")
            if score is not None and score < 0.97:
                misses.append(f"rindle-m4 SSIM vs vips {score:.4f} < 0.97")
            if abs(size - 1) > 0.10:
                misses.append(f"rindle-m4 output size {size:.2f}x vips (bar within 10%)")
    print(f"{'vips':<14}{1:>16.2f}x{vips['bytes'] / vips['images']:>12.0f}{1:>14.2f}x"
          f"{'1':>14}")
    return misses


def _bytes_of(reference: Path, out: Path) -> int:
    """Bytes of the reference files named as those in ``out`` (a subset for calibration)."""
    return sum((reference / p.name).stat().st_size for p in out.glob("*.webp"))


def run_set(set_name: str, count: int, tmp: Path) -> list[str]:
    """Generate one source set, run every contender over it and report; returns misses."""
    root = tmp / set_name
    source = root / "src"
    source.mkdir(parents=True)
    started = time.perf_counter()
    # In a child: ru_maxrss is inherited across fork/exec, so the parent stays small.
    subprocess.run([sys.executable, __file__, "--generate", set_name, str(count), str(source)],
                   check=True)
    print(f"\ngenerated {count} {set_name} source JPEGs in {time.perf_counter() - started:.1f}s "
          f"({sum(p.stat().st_size for p in source.iterdir()) / count / 1e6:.2f} MB "
          "each on average)")
    contenders = ["rindle", "rindle-m4", "naive"]
    if shutil.which("vipsthumbnail"):
        contenders += ["vips", *CALIBRATION]
    else:
        print("vipsthumbnail not found (apt-get install libvips-tools): "
              "reporting rindle and naive Pillow only")
    results = {name: measure(name, source, root) for name in contenders}
    return report(set_name, results, count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="number of source images")
    parser.add_argument("--sets", default=",".join(SETS),
                        help=f"comma-separated source sets to run ({', '.join(SETS)})")
    parser.add_argument("--child", nargs=3, metavar=("NAME", "SOURCE", "OUT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=3, metavar=("SET", "COUNT", "DIR"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, source, out = args.child
        child(name, Path(source), Path(out))
        return 0
    if args.generate:
        set_name, count, directory = args.generate
        SETS[set_name](Path(directory), int(count))
        return 0
    names = [name for name in args.sets.split(",") if name]
    unknown = [name for name in names if name not in SETS]
    if unknown or not names:
        parser.error(f"unknown set(s) {unknown}; choose from {', '.join(SETS)}")
    with tempfile.TemporaryDirectory(prefix="rindle-bench-") as tmp:
        failures = [miss for name in names for miss in run_set(name, args.count, Path(tmp))]
    print("\nresult: " + ("bar met" if not failures else "BAR MISSED: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
