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
