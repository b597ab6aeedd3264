"""The four FSM tables: exactly the reference's edges plus rindle's documented additions."""

from __future__ import annotations

import pytest

from rindle.domain.fsm import MACHINES, StateMachine, asset, provider_asset, upload_session, variant
from rindle.errors import InvalidTransition

# reference/domain.md §2.1-§2.4, copied by hand so a typo in a module cannot hide here.
REFERENCE = {
    "asset": {
        "staged": {"validating"},
        "validating": {"analyzing"},
        "analyzing": {"promoting", "quarantined"},
        "promoting": {"available"},
        "available": {"processing", "transcoding", "quarantined"},
        "processing": {"ready", "quarantined"},
        "transcoding": {"ready", "degraded", "quarantined"},
        "ready": {"degraded", "deleted"},
        "degraded": {"quarantined", "deleted"},
        "quarantined": {"deleted"},
        "deleted": set(),
    },
    "variant": {
        "planned": {"queued", "cancelled"},
        "queued": {"processing", "cancelled"},
        "processing": {"ready", "failed", "cancelled"},
        "ready": {"stale", "missing", "purged"},
        "stale": {"queued", "purged"},
        "missing": {"queued", "purged"},
        "failed": {"queued", "purged"},
        "cancelled": {"queued"},
        "purged": set(),
    },
    "upload_session": {
        "initialized": {"signed", "aborted", "expired", "failed"},
        "signed": {"resuming", "uploading", "uploaded", "verifying", "aborted", "expired",
                   "failed"},
        "resuming": {"uploading", "aborted", "expired", "failed"},
        "uploading": {"uploaded", "verifying", "aborted", "expired", "failed"},
        "uploaded": {"verifying"},
        "verifying": {"completed", "failed"},
        "completed": set(),
        "aborted": set(),
        "expired": set(),
        "failed": set(),
    },
    "provider_asset": {
        "pending": {"uploading", "errored", "deleted"},
        "uploading": {"processing", "errored", "deleted"},
        "processing": {"ready", "errored"},
        "ready": {"errored", "deleted"},
        "errored": {"deleted", "processing"},
        "deleted": set(),
    },
}

# rindle's additions (DESIGN §5 aggregate edges, detach -> deleted, purge -> purged).
ADDITIONS = {
    "asset": {
        ("available", "ready"), ("available", "degraded"),
        ("processing", "degraded"), ("processing", "transcoding"),
        ("ready", "transcoding"),
        ("degraded", "ready"), ("degraded", "transcoding"),
        ("ready", "quarantined"),  # the original changed after promotion (trust gate)
        *((s, "deleted") for s in ("staged", "validating", "analyzing", "promoting",
                                   "available", "processing", "transcoding")),
    },
    "variant": {*((s, "purged") for s in ("planned", "queued", "processing", "cancelled")),
                ("failed", "cancelled")},  # cancel_processing with a retry pending
    "upload_session": set(),
    "provider_asset": set(),
}

TERMINAL = {
    "asset": {"deleted"},
    "variant": {"purged"},
    "upload_session": {"completed", "aborted", "expired", "failed"},
    "provider_asset": {"deleted"},
}

INITIAL = {"asset": "staged", "variant": "planned", "upload_session": "initialized",
           "provider_asset": "pending"}


def _edges(m: StateMachine) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in m.edges.items() for b in targets}


ALL_EDGES = [(name, a, b) for name, m in MACHINES.items() for a, b in sorted(_edges(m))]


def test_machines_registry_and_modules_agree() -> None:
    assert set(MACHINES) == set(REFERENCE)
    for module in (asset, variant, upload_session, provider_asset):
        m = module.MACHINE
        assert MACHINES[m.entity] is m
        assert m.event == f"rindle.{m.entity}.state_change"
        assert module.EDGES is m.edges or dict(module.EDGES) == dict(m.edges)


@pytest.mark.parametrize("entity", sorted(REFERENCE))
def test_table_is_reference_plus_documented_additions(entity: str) -> None:
    m = MACHINES[entity]
    reference = {(a, b) for a, targets in REFERENCE[entity].items() for b in targets}
    assert _edges(m) == reference | ADDITIONS[entity]
    assert not reference & ADDITIONS[entity], "an 'addition' the reference already has"
    assert m.states == set(REFERENCE[entity])
    assert m.initial == INITIAL[entity]


@pytest.mark.parametrize("entity", sorted(REFERENCE))
def test_tables_are_frozen(entity: str) -> None:
    m = MACHINES[entity]
    for targets in m.edges.values():
        assert isinstance(targets, frozenset)
    with pytest.raises(TypeError):
        m.edges["bogus"] = frozenset()  # type: ignore[index]


@pytest.mark.parametrize(("entity", "src", "dst"), ALL_EDGES)
def test_every_allowed_edge_is_accepted(entity: str, src: str, dst: str) -> None:
    m = MACHINES[entity]
    assert m.can_transition(src, dst)
    m.check(src, dst)  # does not raise


ILLEGAL = [
    ("asset", "staged", "ready"),
    ("asset", "ready", "cancelled"),  # not an asset state at all
    ("asset", "available", "promoting"),
    ("asset", "quarantined", "ready"),
    ("asset", "deleted", "staged"),
    ("asset", "staged", "quarantined"),
    ("asset", "ready", "available"),
    ("asset", "degraded", "available"),
    ("variant", "ready", "processing"),
    ("variant", "cancelled", "ready"),
    ("variant", "planned", "ready"),
    ("variant", "processing", "queued"),  # a crashed attempt must go through failed
    ("variant", "purged", "queued"),
    ("variant", "missing", "ready"),
    ("upload_session", "initialized", "verifying"),
    ("upload_session", "completed", "verifying"),
    ("upload_session", "uploaded", "failed"),
    ("upload_session", "verifying", "aborted"),
    ("upload_session", "failed", "initialized"),
    ("provider_asset", "processing", "uploading"),
    ("provider_asset", "processing", "deleted"),
    ("provider_asset", "deleted", "pending"),
    ("provider_asset", "ready", "processing"),
]


@pytest.mark.parametrize(("entity", "src", "dst"), ILLEGAL)
def test_illegal_edges_are_rejected(entity: str, src: str, dst: str) -> None:
    m = MACHINES[entity]
    assert not m.can_transition(src, dst)
    with pytest.raises(InvalidTransition) as info:
        m.check(src, dst)
    err = info.value
    assert (err.entity, err.from_state, err.to_state) == (entity, src, dst)
    assert err.code == "invalid_transition"
    assert f"{src!r} -> {dst!r}" in str(err)


@pytest.mark.parametrize("entity", sorted(REFERENCE))
def test_terminal_states_have_no_exits(entity: str) -> None:
    m = MACHINES[entity]
    assert m.terminal == TERMINAL[entity]
    for state in TERMINAL[entity]:
        assert m.allowed(state) == frozenset()
        for target in m.states:
            assert not m.can_transition(state, target)
            with pytest.raises(InvalidTransition):
                m.check(state, target)


@pytest.mark.parametrize("entity", sorted(REFERENCE))
def test_unknown_states_have_no_exits(entity: str) -> None:
    m = MACHINES[entity]
    for unknown in ("bogus", "", "READY", "Staged"):
        assert m.allowed(unknown) == frozenset()
        for target in m.states:
            assert not m.can_transition(unknown, target)
        with pytest.raises(InvalidTransition) as info:
            m.check(unknown, m.initial)
        assert info.value.from_state == unknown
    assert not m.can_transition(m.initial, "bogus")


@pytest.mark.parametrize("entity", sorted(REFERENCE))
def test_self_transitions_are_never_edges(entity: str) -> None:
    m = MACHINES[entity]
    for state in m.states:
        assert not m.can_transition(state, state)


@pytest.mark.parametrize("entity", sorted(REFERENCE))
def test_every_state_is_reachable_from_the_initial_state(entity: str) -> None:
    m = MACHINES[entity]
    assert m.reachable(m.initial) == m.states
    for state in m.terminal:
        assert m.reachable(state) == {state}


def test_deleted_and_purged_are_reachable_from_every_live_state() -> None:
    for state in asset.MACHINE.states - {"deleted"}:
        assert asset.can_transition(state, "deleted"), state
    for state in variant.MACHINE.states - {"purged"}:
        assert variant.can_transition(state, "purged")


def test_aggregate_moves_among_post_promotion_states() -> None:
    for src in asset.AGGREGATE_STATES:
        for dst in ("ready", "degraded", "transcoding"):
            if src != dst:
                assert asset.can_transition(src, dst), (src, dst)


def test_provider_allowed_transitions_is_the_table() -> None:
    table = provider_asset.allowed_transitions()
    assert table["errored"] == {"deleted", "processing"}
    assert dict(table) == dict(provider_asset.EDGES)
