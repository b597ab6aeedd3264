"""Every plugin refuses, in one line naming the fix, to load against a ``rindle`` that is
not the rindle media library (the name on the public index belongs to another project).

Each case puts a fake ``rindle`` (with its own dist-info, as ``pip install rindle`` from
the index would) first on ``sys.path`` in a subprocess and imports the plugin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PLUGINS = {"rindle_s3": "boto3", "rindle_gcs": "google.cloud.storage",
           "rindle_mux": "httpx", "rindle_ffmpeg": "pymediainfo",
           "rindle_otel": "opentelemetry", "rindle_celery": "celery",
           "rindle_django": "django"}
#: The module a host imports first: the entry-point module, or the package for a plugin
#: without one (rindle-otel is set up by a call, ``rindle_otel.instrument(app)``;
#: rindle-django is a Django app in ``INSTALLED_APPS``).
ENTRY = {"rindle_otel": "rindle_otel", "rindle_django": "rindle_django"}

PROBE = """
import json, sys
try:
    import {entry}
except ImportError as exc:
    out = {{"type": [c.__name__ for c in type(exc).__mro__], "message": str(exc),
            "heavy_imported": {heavy!r} in sys.modules}}
else:
    out = {{"type": None}}
print(json.dumps(out))
"""


def fake_rindle(root: Path, body: str) -> Path:
    """A package named ``rindle`` with dist-info version 1.0.1, as the index would install."""
    (root / "rindle").mkdir(parents=True)
    (root / "rindle" / "__init__.py").write_text(body)
    dist = root / "rindle-1.0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rindle\nVersion: 1.0.1\n")
    return root


def import_plugin(module: str, path: Path | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    probe = PROBE.format(entry=ENTRY.get(module, f"{module}.plugin"), heavy=PLUGINS[module])
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.mark.parametrize("module", sorted(PLUGINS))
def test_a_foreign_rindle_is_refused_in_one_line(module: str, tmp_path: Path) -> None:
    fake = fake_rindle(tmp_path, '"""A dataset-preparation library."""\n__version__ = "1.0.1"\n')
    out = import_plugin(module, fake)
    assert out["type"] is not None, f"{module} imported against a foreign rindle"
    assert "ImportError" in out["type"]
    assert out["type"][0] == "RindleCoreMismatch"
    message = str(out["message"])
    dist = module.replace("_", "-")
    assert "\n" not in message
    assert message.startswith(f"{dist}: the installed 'rindle' is not the rindle media library")
    assert f"(found rindle 1.0.1 at {fake / 'rindle'})" in message
    assert "install it from this project's checkout or wheelhouse" in message
    assert f"pip install <checkout> <checkout>/plugins/{module}" in message
    assert f"--find-links <wheelhouse> rindle {dist}" in message
    assert out["heavy_imported"] is False, "the check must run before the plugin's imports"


@pytest.mark.parametrize("module", ["rindle_s3", "rindle_mux"])
def test_an_unsupported_core_api_is_refused(module: str, tmp_path: Path) -> None:
    fake = fake_rindle(tmp_path, "__rindle_core_api__ = 99\n")
    out = import_plugin(module, fake)
    assert out["type"][0] == "RindleCoreMismatch"
    message = str(out["message"])
    assert "\n" not in message and "core API (1,)" in message and "99" in message


@pytest.mark.parametrize("module", sorted(PLUGINS))
def test_the_real_core_is_accepted(module: str) -> None:
    import rindle

    assert rindle.__rindle_core_api__ == 1
    assert import_plugin(module, None) == {"type": None}
