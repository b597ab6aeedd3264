"""The import contracts hold, and would catch the imports they forbid.

``.importlinter`` holds the contracts on runtime imports; ``.importlinter-typing`` those
that also count imports made only for type checking. ``make lint`` runs both
(``lint-imports``); README.md's "Architecture" section describes them.
"""

from __future__ import annotations

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
