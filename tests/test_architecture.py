"""The import contracts hold, and would catch the imports they forbid.

``.importlinter`` holds the contracts on runtime imports; ``.importlinter-typing`` those
that also count imports made only for type checking. ``make lint`` runs both
(``lint-imports``); README.md's "Architecture" section describes them.
"""

from __future__ import annotations

import ast
import dataclasses
from functools import cache
from pathlib import Path
from typing import Any

import grimp
import pytest
from importlinter import configuration
from importlinter.application.use_cases import lint_imports, read_user_options
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract
from importlinter.domain.contract import Contract

from rindle import Rindle, hookimpl
from rindle.clock import system_clock
from rindle.context import Context
from rindle.errors import UnknownProfile

configuration.configure()  # what the lint-imports command does before it reads a config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = (ROOT / ".importlinter", ROOT / ".importlinter-typing")
TYPES: dict[str, type[Contract]] = {"layers": LayersContract, "forbidden": ForbiddenContract,
                                    "acyclic_siblings": AcyclicSiblingsContract}


@cache
def _contracts() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Contract id -> (its file's session options, its own options)."""
    found = {}
    for path in CONFIGS:
        options = read_user_options(config_filename=str(path))
        for raw in options.contracts_options:
            found[raw["id"]] = (options.session_options, raw)
    return found


@cache
def _graph(exclude_type_checking_imports: bool) -> grimp.ImportGraph:
    return grimp.build_graph("rindle", include_external_packages=True, cache_dir=None,
                             exclude_type_checking_imports=exclude_type_checking_imports)


def test_every_import_contract_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    kept = lint_imports(config_filenames=[str(p) for p in CONFIGS], cache_dir=None,
                        no_logo=True)
    report = capsys.readouterr().out
    assert kept, report  # the report names each broken contract's offending import chains
    assert "Contracts: 7 kept, 0 broken." in report


@pytest.mark.parametrize(("contract_id", "importer", "imported"), [
    ("layers", "rindle.domain.models", "rindle.processing.promote"),  # domain -> a service
    ("layers", "rindle.jobs.queue", "rindle.ops.cleanup"),  # jobs -> a service
    ("layers", "rindle.upload.direct", "rindle.cli"),  # a service -> the CLI
    ("layers", "rindle.media.mime", "rindle.storage.base"),  # a leaf -> the layer above
    ("no-plugins", "rindle.storage.local", "rindle_s3"),
    ("no-plugins", "rindle.delivery.wsgi", "boto3"),
    ("no-facade-below-app", "rindle.upload.proxied", "rindle.app"),
    ("no-facade-below-app", "rindle.domain.models", "rindle.app"),
    ("processing-not-streaming", "rindle.processing.variants", "rindle.streaming.ingest"),
    ("processing-not-streaming", "rindle.processing.purge", "rindle.streaming"),
    # indirectly, through a module outside both packages
    ("processing-not-streaming", "rindle.processing.promote", "rindle.wiring"),
    ("typing-processing-not-streaming", "rindle.processing.variants",
     "rindle.streaming.service"),
    ("acyclic-packages", "rindle.domain.models", "rindle.ops.report"),  # ops -> domain exists
    ("acyclic-packages", "rindle.streaming.jobs", "rindle.streaming.handlers"),
    ("typing-no-facade-below-app", "rindle.domain.profile", "rindle.app"),
    ("typing-no-facade-below-app", "rindle.storage.base", "rindle.app"),
    ("typing-no-facade-below-app", "rindle.upload.direct", "rindle.app"),
    ("typing-no-facade-below-app", "rindle.processing.purge", "rindle.app"),
    ("typing-no-facade-below-app", "rindle.streaming.ingest", "rindle.app"),
    ("typing-no-facade-below-app", "rindle.streaming.service", "rindle.app"),
    ("typing-no-facade-below-app", "rindle.wiring", "rindle.app"),
    ("typing-no-facade-below-app", "rindle.jobs.queue", "rindle.app"),
    ("typing-no-facade-below-app", "rindle.jobs.worker", "rindle.app"),
    ("typing-no-facade-below-app", "rindle.ops.doctor", "rindle.app"),
    ("typing-no-facade-below-app", "rindle.ops.facade", "rindle.app"),
    ("typing-no-facade-below-app", "rindle.hookspecs", "rindle.app"),
    ("typing-no-facade-below-app", "rindle.context", "rindle.app"),
])
def test_a_forbidden_import_breaks_its_contract(contract_id: str, importer: str,
                                                imported: str) -> None:
    session, raw = _contracts()[contract_id]
    options = {k: v for k, v in raw.items() if k not in ("type", "name")}
    contract = TYPES[raw["type"]](name=raw["name"], session_options=session,
                                  contract_options=options)
    graph = _graph(str(session.get("exclude_type_checking_imports")) == "True")
    assert contract.check(graph, verbose=False).kept
    graph.add_import(importer=importer, imported=imported)
    try:
        assert not contract.check(graph, verbose=False).kept
    finally:
        graph.remove_import(importer=importer, imported=imported)


# --- the app hands its services a narrow, frozen Context -------------------------------


def test_services_handlers_and_hooks_are_handed_the_context_not_the_facade(
        app: Rindle) -> None:
    context = app.context
    assert type(context) is Context and not isinstance(context, Rindle)
    assert app.context is context  # one per app
    handed: list[object] = []
    app.jobs.register("t.observe", lambda given, job: handed.append(given), queue="process")
    with app.db.transaction() as s:
        app.jobs.enqueue(s, "t.observe", {})
    assert app.jobs.drain(["process"]) == 1

    class Observer:
        @hookimpl
        def rindle_doctor_checks(self, app: object) -> None:
            handed.append(app)

    app.pm.register(Observer(), name="observer")
    app.ops.doctor()
    assert handed == [context, context]  # the job handler, then the doctor hook
    assert app.jobs.app is context and app.ops.app is context
    assert app.streaming.app is context
    assert app.worker(cron=False).app is context


def test_the_context_is_frozen_and_shares_the_apps_lazy_parts(tmp_path: Path) -> None:
    app = Rindle(database_url=f"sqlite:///{tmp_path / 'never-opened.db'}",
                 secret_key="frozen-secret", tmp_dir=str(tmp_path / "tmp"),
                 storages={"default": {"backend": "local", "root": str(tmp_path / "m")}},
                 load_entrypoints=False)
    context = app.context
    assert not hasattr(context, "__dict__")  # slots
    for field in dataclasses.fields(Context):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(context, field.name, None)
    for name in ("jobs", "new_name"):  # a property, an unknown name: refused as well (on
        # CPython 3.11 a frozen slots dataclass refuses them with TypeError instead)
        with pytest.raises((dataclasses.FrozenInstanceError, TypeError)):
            setattr(context, name, None)
    assert "frozen-secret" not in repr(context)
    assert not (tmp_path / "never-opened.db").exists()  # building it connected to nothing
    assert app.jobs is context.jobs and app.on_variant_ready is context.on_variant_ready
    assert app.storage() is context.storage("default") is context.storage()
    assert app.streaming is context.streaming
    assert (context.settings, context.db, context.pm, context.hooks, context.telemetry) == (
        app.settings, app.db, app.pm, app.hooks, app.telemetry)
    assert context.tmp_dir == app.tmp_dir == tmp_path / "tmp"
    assert context.clock is app.clock is app.jobs.clock is system_clock
    assert context.profiles == {} and context.profiles is not context.profiles
    with pytest.raises(UnknownProfile) as info:
        context.profile("nope")
    assert info.value.code == "unknown_profile"


# --- function-level imports load lazily; none dodges an import cycle ---------------------


def _function_level_imports() -> set[tuple[str, str]]:
    """(module, rindle module it imports inside a function) for every module of rindle."""
    src = ROOT / "src"
    graph = _graph(True)
    found: set[tuple[str, str]] = set()
    for path in (src / "rindle").rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
            package = parts
        else:
            package = parts[:-1]
        module = ".".join(parts)
        for func in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:
                        base = ".".join(package[:len(package) - node.level + 1]
                                        + ([base] if base else []))
                    targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in graph.modules
                               else base for a in node.names]
                else:
                    continue
                found.update((module, t) for t in targets if t.split(".")[0] == "rindle")
    return found


def _cycle_dodges(graph: grimp.ImportGraph, imports: set[tuple[str, str]]) -> list[str]:
    """Each function-level import whose target imports, directly or not, its importer."""
    return [" -> ".join(chain) for module, target in sorted(imports)
            if (chain := graph.find_shortest_chain(importer=target, imported=module))]


def test_no_function_level_import_dodges_an_import_cycle() -> None:
    imports = _function_level_imports()
    assert ("rindle.app", "rindle.upload.proxied") in imports  # the scan sees app.py's
    assert ("rindle.ops.facade", "rindle.ops.doctor") in imports
    assert len(imports) >= 40
    graph = _graph(True)
    assert _cycle_dodges(graph, imports) == []
    # and the check would catch one: the service app.py loads lazily importing the facade
    graph.add_import(importer="rindle.upload.proxied", imported="rindle.app")
    try:
        assert _cycle_dodges(graph, imports) == ["rindle.upload.proxied -> rindle.app"]
    finally:
        graph.remove_import(importer="rindle.upload.proxied", imported="rindle.app")
