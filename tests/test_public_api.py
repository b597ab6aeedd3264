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


def test_host_app_surface_urls_bind_authorizer_inline() -> None:
    """Issue 12 (part 2): the names a host app uses for URLs, transactions and tests."""
    import inspect

    from rindle import Rindle, errors
    from rindle.config import DeliverySettings
    from rindle.database import Binding, Database, after_commit, bound
    from rindle.delivery.urls import asset_urls, bucket_expiry

    assert callable(after_commit) and callable(bound) and callable(asset_urls)
    assert bucket_expiry(1, 900, 300) == 1200
    assert {"bind", "when_committed", "if_rolled_back"} <= set(vars(Database))
    assert {"defer", "on_rollback", "ended"} <= set(vars(Binding))
    assert list(inspect.signature(Rindle.urls).parameters) == [
        "self", "assets", "variant", "expires_in", "disposition", "actor"]
    assert "actor" in inspect.signature(Rindle.url).parameters
    assert list(inspect.signature(Rindle.bind).parameters) == ["self", "host"]
    assert {"authorizer", "jobs"} <= set(inspect.signature(Rindle).parameters)
    assert "Forbidden" in errors.__all__ and errors.Forbidden.code == "delivery_forbidden"
    assert issubclass(errors.Forbidden, errors.Rejected)
    assert {"signed_url_ttl", "signed_url_bucket", "authorizer"} <= {
        f for f in DeliverySettings.__dataclass_fields__}
