"""What the distributions carry and how a user installs them.

* the sdist ships the guides and the LICENSE; every wheel ships its LICENSE;
* READMEs (the index's project pages) carry no relative links;
* the extras: ``[testing]`` covers ``rindle.testing``, ``[test]`` has no linters;
* the README walk-through: wheels of the core and every plugin installed non-editable
  into a fresh virtualenv, then the README's first app and ``rindle --help`` run there.

Everything builds from a copy of the working tree (tracked and new files, not ignored
ones), so no ``build/`` or ``*.egg-info`` lands in the checkout.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIRS = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))
DISTS = ["rindle", *(d.name.replace("_", "-") for d in PLUGIN_DIRS)]
#: Third-party wheels for the walk-through venv, kept between runs (the venv is ignored
#: by git): filled from the package index once, then the install works offline.
WHEEL_CACHE = Path(sys.prefix) / "rindle-test-wheels"


def run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree as a fresh checkout would have it (uncommitted edits included)."""
    files = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=ROOT)
    assert files.returncode == 0, files.stderr
    dest = tmp_path_factory.mktemp("checkout")
    for name in filter(None, files.stdout.split("\0")):
        src = ROOT / name
        if src.is_file():  # deleted-but-tracked files are skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _need_build_tools() -> None:
    setuptools = metadata.version("setuptools")
    assert int(setuptools.split(".")[0]) >= 77, (
        f"setuptools {setuptools} cannot build these projects (license = SPDX string); "
        f"install rindle's test extra: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def wheelhouse(source_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of the core and every plugin, built without network."""
    _need_build_tools()
    out = tmp_path_factory.mktemp("wheelhouse")
    plugins = [str(d.relative_to(ROOT)) for d in PLUGIN_DIRS]
    built = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                 "-w", str(out), ".", *plugins], cwd=source_copy, timeout=180)
    assert built.returncode == 0, built.stderr[-3000:]
    return out


def test_sdist_ships_the_guides_and_the_license(source_copy: Path, tmp_path: Path) -> None:
    _need_build_tools()
    built = run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o",
                 str(tmp_path), "."], cwd=source_copy, timeout=180)
    assert built.returncode == 0, built.stderr[-3000:]
    (sdist,) = tmp_path.glob("rindle-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    guides = sorted(f"guides/{p.name}" for p in (ROOT / "guides").glob("*.md"))
    assert guides and set(guides) <= names, f"missing: {set(guides) - names}"
    assert {"LICENSE", "README.md", "pyproject.toml"} <= names


def test_every_wheel_ships_its_license(wheelhouse: Path) -> None:
    mit = (ROOT / "LICENSE").read_text()
    assert mit.startswith("MIT License") and "rindle developers" in mit
    for dist in DISTS:
        (wheel,) = wheelhouse.glob(f"{dist.replace('-', '_')}-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            licenses = [n for n in zf.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
            assert len(licenses) == 1, f"{wheel.name} has no LICENSE"
            assert zf.read(licenses[0]).decode() == mit
            meta = zf.read(licenses[0].replace("licenses/LICENSE", "METADATA")).decode()
            assert "License-Expression: MIT" in meta


LINK = re.compile(r"\]\(\s*([^)\s]+)|\bsrc=[\"']([^\"']+)|^\s*\[[^\]]+\]:\s*(\S+)", re.M)


@pytest.mark.parametrize("readme", [ROOT / "README.md", *(d / "README.md" for d in PLUGIN_DIRS)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_readmes_have_no_relative_links(readme: Path) -> None:
    """A README is the project page on the index, where relative links lead nowhere."""
    targets = [next(filter(None, m.groups())) for m in LINK.finditer(readme.read_text())]
    relative = [t for t in targets if not re.match(r"(https?|mailto):|#", t)]
    assert relative == [], f"{readme.relative_to(ROOT)}: use absolute URLs or plain text"


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~;\s]", r, maxsplit=1)[0].lower() for r in requirements}


def test_extras_testing_covers_the_kits_and_test_has_no_linters() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert not _requirement_names(extras["test"]) & {"mypy", "ruff"}
    assert _requirement_names(extras["dev"]) >= {"mypy", "ruff"}
    # every third-party module rindle.testing imports comes with the core or [testing]
    provided = _requirement_names(project["dependencies"]) | _requirement_names(
        extras["testing"])
    imported = set()
    for path in (ROOT / "src" / "rindle" / "testing").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    import_to_dist = {"PIL": "pillow"}  # where the import name is not the distribution's
    third_party = {import_to_dist.get(m, m).lower() for m in imported
                   if m not in sys.stdlib_module_names and m not in ("rindle", "__future__")}
    assert third_party and third_party <= provided, third_party - provided
    makefile = (ROOT / "Makefile").read_text()
    assert "-e '.[test,dev]'" in makefile


def _first_app_snippet() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## A first app\n.*?^```python\n(.*?)^```", readme, re.M | re.S)
    assert match, "README.md lost its '## A first app' section with a python block"
    return match.group(1)


def _fill_wheel_cache(wheelhouse: Path, tmp_path: Path) -> None:
    """Download the dependency closure's wheels, pinned to what this venv runs."""
    pins = tmp_path / "pins.txt"
    pins.write_text("".join(
        f"{d.metadata['Name']}=={d.version}\n" for d in metadata.distributions()
        if d.metadata["Name"] and not d.metadata["Name"].lower().startswith("rindle")))
    staging = tmp_path / "download"
    got = run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
               "-d", str(staging), "-c", str(pins), *map(str, wheelhouse.glob("*.whl"))],
              timeout=240)
    assert got.returncode == 0, (
        "could not fetch the dependency wheels from the package index (needed once, then "
        f"cached in {WHEEL_CACHE}):\n{got.stderr[-3000:]}")
    WHEEL_CACHE.mkdir(exist_ok=True)
    for wheel in staging.iterdir():
        if not wheel.name.lower().startswith("rindle"):  # ours come fresh from wheelhouse
            os.replace(wheel, WHEEL_CACHE / wheel.name)


@pytest.mark.slow
@pytest.mark.timeout(400)  # first run downloads ~40 MB once; later runs take ~15 s
def test_readme_walkthrough_in_a_fresh_virtualenv(wheelhouse: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
               "--no-index", "--find-links", str(wheelhouse), "--find-links", str(WHEEL_CACHE),
               *DISTS]
    done = run(install, timeout=240)
    if done.returncode != 0:  # first run (or a dependency changed): fetch, then offline again
        _fill_wheel_cache(wheelhouse, tmp_path)
        done = run(install, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]

    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RINDLE_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    app_dir = tmp_path / "app"
    app_dir.mkdir()

    where = run([str(python), "-c", "import json, rindle, rindle_s3, rindle_gcs, rindle_mux, "
                 "rindle_ffmpeg as f; print(json.dumps([rindle.__file__, f.__file__, "
                 "rindle.__version__]))"], cwd=app_dir, env=env)
    assert where.returncode == 0, where.stderr
    core_file, plugin_file, version = json.loads(where.stdout)
    site = str(venv / "lib")
    assert core_file.startswith(site) and plugin_file.startswith(site), "not a wheel install"
    assert version == metadata.version("rindle")

    (app_dir / "first_app.py").write_text(_first_app_snippet())
    first = run([str(python), "first_app.py"], cwd=app_dir, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (app_dir / "rindle.db").is_file()

    helped = run([str(venv / "bin" / "rindle"), "--help"], cwd=app_dir, env=env)
    assert helped.returncode == 0, helped.stderr
    assert "Commands:" in helped.stdout and "doctor" in helped.stdout and not helped.stderr

    listed = run([str(venv / "bin" / "rindle"), "--json", "plugins"], cwd=app_dir, env=env)
    assert listed.returncode == 0, listed.stderr
    names = {p["name"] for p in json.loads(listed.stdout)["plugins"] if not p["default"]}
    # every plugin that declares a `rindle` entry point (rindle-django and rindle-otel are
    # wired up by the host, not by an entry point)
    assert names == {"s3", "gcs", "mux", "ffmpeg", "celery"}
