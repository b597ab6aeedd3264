"""The public surface: explicit, sorted, importable."""

from __future__ import annotations

import rindle


def test_all_is_sorted_and_complete() -> None:
    assert rindle.__all__ == sorted(rindle.__all__)
    for name in rindle.__all__:
        assert hasattr(rindle, name), name


def test_py_typed_ships() -> None:
    from importlib import resources

    assert resources.files("rindle").joinpath("py.typed").is_file()


PLUGIN_IMPORTABLE = {"rindle", "rindle.errors", "rindle.storage", "rindle.streaming",
                     "rindle.ops.doctor", "rindle.html",
                     # rindle-django: the settings it builds, the Database it puts on
                     # Django's connection, the delivery app it mounts, and the click group
                     # (with its CliContext) that `manage.py rindle` runs with its app
                     "rindle.config", "rindle.database", "rindle.delivery", "rindle.cli",
                     "rindle.cli._context",
                     # rindle-celery: the Executor seam (Executor, JobRef, Relay, run_job)
                     "rindle.jobs",
                     # rindle-otel: telemetry's redaction helpers (redact_id, redact_url)
                     "rindle.telemetry"}


def test_plugins_import_only_public_core_names() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "plugins"
    sources = sorted(root.glob("*/src/**/*.py"))
    assert len({p.parts[len(root.parts)] for p in sources}) >= 4  # every plugin was read
    bad = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if (name == "rindle" or name.startswith("rindle.")) \
                        and name not in PLUGIN_IMPORTABLE:
                    bad.append(f"{path.relative_to(root)}:{node.lineno} imports {name}")
    assert bad == []


def test_the_core_never_imports_a_plugin() -> None:
    import re
    from pathlib import Path

    core = Path(__file__).resolve().parents[1] / "src" / "rindle"
    plugin = re.compile(r"^\s*(from|import)\s+(rindle_\w+|boto3|botocore|httpx|google)\b", re.M)
    hits = [str(p) for p in core.rglob("*.py") if plugin.search(p.read_text())]
    assert len(list(core.rglob("*.py"))) > 50 and hits == []
