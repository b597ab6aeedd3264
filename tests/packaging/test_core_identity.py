"""Every plugin refuses, in one line naming the fix, to load against a ``rindle`` that is
not the rindle media library (the name on the public index belongs to another project).

Each case puts a fake ``rindle`` (with its own dist-info, as ``pip install rindle`` from
the index would) first on ``sys.path`` in a subprocess and imports the plugin. The check
and its messages are the core's (``rindle.core_identity.require_core``); each plugin's
``_rindle_core`` stub only says, itself, that a ``rindle`` without that module is refused.
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
{prelude}
try:
    import {entry}
except ImportError as exc:
    out = {{"type": [c.__name__ for c in type(exc).__mro__], "message": str(exc),
            "heavy_imported": {heavy!r} in sys.modules}}
else:
    out = {{"type": None}}
print(json.dumps(out))
"""


#: Makes ``import rindle`` fail as it does when no ``rindle`` is installed at all.
NO_RINDLE = """
class NoRindle:
    def find_spec(self, name, path=None, target=None):
        if name == "rindle" or name.startswith("rindle."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoRindle())
"""


def fake_rindle(root: Path, body: str, *, with_identity: bool = False) -> Path:
    """A package named ``rindle`` with dist-info version 1.0.1, as the index would install;
    ``with_identity`` adds the real core's ``rindle/core_identity.py`` (a core whose
    ``__init__`` is ``body``)."""
    (root / "rindle").mkdir(parents=True)
    (root / "rindle" / "__init__.py").write_text(body)
    if with_identity:
        import rindle.core_identity

        source = Path(rindle.core_identity.__file__).read_text()
        (root / "rindle" / "core_identity.py").write_text(source)
    dist = root / "rindle-1.0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rindle\nVersion: 1.0.1\n")
    return root


def import_plugin(module: str, path: Path | None, prelude: str = "") -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    probe = PROBE.format(entry=ENTRY.get(module, f"{module}.plugin"), heavy=PLUGINS[module],
                         prelude=prelude)
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def stub_refusal(module: str, found: str) -> dict[str, Any]:
    """What the probe reports when the plugin's stub refuses: a plain ImportError, one line
    naming the distribution, what was found and the fix, before any heavy import."""
    return {"type": ["ImportError", "Exception", "BaseException", "object"],
            "message": f"{module.replace('_', '-')}: the installed 'rindle' is not the rindle "
                       f"media library ({found}); install rindle from a checkout",
            "heavy_imported": False}


@pytest.mark.parametrize("module", sorted(PLUGINS))
def test_a_foreign_rindle_is_refused_in_one_line(module: str, tmp_path: Path) -> None:
    """The index's ``rindle`` has no ``rindle.core_identity``: the plugin's stub refuses it."""
    fake = fake_rindle(tmp_path, '"""A dataset-preparation library."""\n__version__ = "1.0.1"\n')
    found = f"<module 'rindle' from '{fake / 'rindle' / '__init__.py'}'>"
    assert import_plugin(module, fake) == stub_refusal(module, found)


@pytest.mark.parametrize("module", sorted(PLUGINS))
def test_a_missing_rindle_is_refused_in_one_line(module: str) -> None:
    assert import_plugin(module, None, prelude=NO_RINDLE) == stub_refusal(
        module, "No module named 'rindle'")


@pytest.mark.parametrize("module", sorted(PLUGINS))
def test_a_core_without_the_marker_is_refused_by_the_core(module: str, tmp_path: Path) -> None:
    """Another project's ``__init__`` over the core's files: ``require_core`` refuses it with
    the full fix, naming the plugin's distribution and folder."""
    fake = fake_rindle(tmp_path, '"""A dataset-preparation library."""\n', with_identity=True)
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
    fake = fake_rindle(tmp_path, "__rindle_core_api__ = 99\n", with_identity=True)
    out = import_plugin(module, fake)
    assert out["type"][0] == "RindleCoreMismatch"
    dist = module.replace("_", "-")
    assert out["message"] == (
        f"{dist} supports rindle core API (1,), but the installed rindle has 99 "
        f"(found rindle 1.0.1 at {fake / 'rindle'}); install a matching {dist} and rindle "
        "from the same checkout or wheelhouse")


@pytest.mark.parametrize("module", sorted(PLUGINS))
def test_the_real_core_is_accepted(module: str) -> None:
    import rindle

    assert rindle.__rindle_core_api__ == 1
    assert import_plugin(module, None) == {"type": None}
