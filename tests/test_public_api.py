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
                     # rindle-celery: the Executor seam (Executor, JobRef, Relay, run_job)
                     "rindle.jobs",
                     # rindle-otel: telemetry's redaction helpers (redact_id, redact_url)
                     "rindle.telemetry",
                     # every plugin, first: is this the rindle media library? (require_core)
                     "rindle.core_identity"}


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


def _private_uses(tree: object) -> list[tuple[int, str]]:
    """Where a module reaches a private name of rindle: ``from rindle.x import _y``, or
    ``X._y`` / ``getattr(X, "_y")`` on a name ``X`` imported from rindle."""
    import ast

    assert isinstance(tree, ast.Module)
    core: set[str] = set()
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "rindle":
            for alias in node.names:
                core.add(alias.asname or alias.name)
                if alias.name.startswith("_"):
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
        elif isinstance(node, ast.Import):
            core.update((a.asname or a.name).split(".")[0] for a in node.names
                        if a.name.split(".")[0] == "rindle")

    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__")

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr) and isinstance(
                node.value, ast.Name) and node.value.id in core:
            found.append((node.lineno, f"{node.value.id}.{node.attr}"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id == "getattr") and len(node.args) >= 2 and isinstance(
                node.args[0], ast.Name) and node.args[0].id in core and isinstance(
                node.args[1], ast.Constant) and private(str(node.args[1].value)):
            found.append((node.lineno, f"getattr({node.args[0].id}, {node.args[1].value!r})"))
    return found


def test_plugins_reach_no_private_core_name() -> None:
    """rindle-django once read ``rindle.database._BINDING`` and subclassed
    ``rindle.cli._context.CliContext``; ``Database.use_engine`` and ``rindle.cli.CliContext``
    are the public ways now."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "plugins"
    bad = [f"{path.relative_to(root)}:{line} uses {what}"
           for path in sorted(root.glob("*/src/**/*.py"))
           for line, what in _private_uses(ast.parse(path.read_text(), str(path)))]
    assert bad == []
    probe = ast.parse("from rindle import database as d\nfrom rindle.cli._context import _x\n"
                      "k = getattr(d, '_BINDING')\nd._sessionmaker = 1\nd.__name__\n")
    assert sorted(_private_uses(probe)) == [(2, "rindle.cli._context._x"),
                                            (3, "getattr(d, '_BINDING')"),
                                            (4, "d._sessionmaker")]


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
    assert {"bind", "when_committed", "if_rolled_back", "use_engine", "is_bound"} <= set(
        vars(Database))
    from rindle.cli import CliContext
    from rindle.cli import __all__ as cli_all
    from rindle.database import EffectSink
    from rindle.database import __all__ as db_all

    assert "CliContext" in cli_all and "EffectSink" in db_all
    assert {"app", "close"} <= set(vars(CliContext)) and callable(EffectSink)
    assert {"defer", "on_rollback", "ended"} <= set(vars(Binding))
    assert list(inspect.signature(Rindle.urls).parameters) == [
        "self", "assets", "variant", "expires_in", "disposition", "actor"]
    assert "actor" in inspect.signature(Rindle.url).parameters
    assert list(inspect.signature(Rindle.check_upload).parameters) == [
        "self", "profile", "source", "filename"]
    assert list(inspect.signature(Rindle.bind).parameters) == ["self", "host"]
    assert {"authorizer", "jobs"} <= set(inspect.signature(Rindle).parameters)
    assert "Forbidden" in errors.__all__ and errors.Forbidden.code == "delivery_forbidden"
    assert issubclass(errors.Forbidden, errors.Rejected)
    assert {"signed_url_ttl", "signed_url_bucket", "authorizer"} <= {
        f for f in DeliverySettings.__dataclass_fields__}


def test_live_progress_surface() -> None:
    """Issue 13: the names a host uses for live progress (the browser module relies on
    them: the token call, the two mounts and the upload API's events option)."""
    import inspect

    import rindle.web
    from rindle import Rindle
    from rindle.web.events import asgi_app, wsgi_app
    from rindle.web.upload_api import UploadAPI

    assert list(inspect.signature(Rindle.subscribe_token).parameters) == [
        "self", "asset_ids", "expires_in"]
    # None: the app's [events] token_ttl (3600 unless set)
    assert inspect.signature(Rindle.subscribe_token).parameters["expires_in"].default is None
    assert "events" in inspect.signature(Rindle).parameters  # Rindle(events={...})
    assert {"events_wsgi", "events_asgi"} <= set(rindle.web.__all__)
    assert rindle.web.events_wsgi is wsgi_app and rindle.web.events_asgi is asgi_app
    assert "events" in inspect.signature(UploadAPI).parameters
