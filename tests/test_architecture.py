"""The import contracts in ``.importlinter`` hold, and would catch the imports they forbid.

``make lint`` runs the same contracts (``lint-imports``); README.md's "Architecture" section
describes them.
"""

from __future__ import annotations

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
CONFIG = ROOT / ".importlinter"
TYPES: dict[str, type[Contract]] = {"layers": LayersContract, "forbidden": ForbiddenContract,
                                    "acyclic_siblings": AcyclicSiblingsContract}


def _options() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    options = read_user_options(config_filename=str(CONFIG))
    return options.session_options, {c["id"]: c for c in options.contracts_options}


def _contract(contract_id: str) -> Contract:
    session, contracts = _options()
    raw = dict(contracts[contract_id])
    return TYPES[raw.pop("type")](name=raw.pop("name"), session_options=session,
                                  contract_options=raw)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    session, _ = _options()
    return grimp.build_graph(
        "rindle", include_external_packages=True, cache_dir=None,
        exclude_type_checking_imports=session.get("exclude_type_checking_imports") == "True")


def test_every_import_contract_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    kept = lint_imports(config_filename=str(CONFIG), cache_dir=None, no_logo=True)
    report = capsys.readouterr().out
    assert kept, report  # the report names each broken contract's offending import chains
    assert "Contracts: 4 kept, 0 broken." in report


@pytest.mark.parametrize(("contract_id", "importer", "imported"), [
    ("layers", "rindle.domain.models", "rindle.processing.promote"),  # domain -> a service
    ("layers", "rindle.jobs.queue", "rindle.ops.cleanup"),  # jobs -> a service
    ("layers", "rindle.upload.direct", "rindle.cli"),  # a service -> the CLI
    ("layers", "rindle.media.mime", "rindle.storage.base"),  # a leaf -> the layer above
    ("no-plugins", "rindle.storage.local", "rindle_s3"),
    ("no-plugins", "rindle.delivery.wsgi", "boto3"),
    ("no-facade-below-app", "rindle.upload.proxied", "rindle.app"),
    ("no-facade-below-app", "rindle.domain.models", "rindle.app"),
    ("acyclic-packages", "rindle.domain.models", "rindle.ops.report"),  # ops -> domain exists
    ("acyclic-packages", "rindle.streaming.jobs", "rindle.streaming.handlers"),
])
def test_a_forbidden_import_breaks_its_contract(graph: grimp.ImportGraph, contract_id: str,
                                                importer: str, imported: str) -> None:
    contract = _contract(contract_id)
    assert contract.check(graph, verbose=False).kept
    graph.add_import(importer=importer, imported=imported)
    try:
        assert not contract.check(graph, verbose=False).kept
    finally:
        graph.remove_import(importer=importer, imported=imported)
