"""Recipe digests: a stable SHA-256 of a variant's validated spec.

The digest is stamped on every variant row and embedded in its storage key, so a change
to a recipe is visible as drift and a regenerated object never overwrites the old one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical", "recipe_digest"]

_AV_KINDS = ("video", "audio", "waveform")


def canonical(value: Any) -> Any:
    """The canonical form hashed by :func:`recipe_digest`.

    Mappings become lists of ``[key, value]`` pairs sorted by key; mappings of an AV kind
    are first expanded to their normalised recipe; lists keep their order.
    """
    if isinstance(value, Mapping):
        if value.get("kind") in _AV_KINDS:
            from rindle.domain.variants import normalize_av

            with contextlib.suppress(ValueError):
                value = normalize_av(value)
        pairs = [[k if isinstance(k, str) else repr(k), canonical(v)] for k, v in value.items()]
        return sorted(pairs, key=lambda pair: pair[0].encode("utf-8"))
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def recipe_digest(stored_spec: Mapping[str, Any]) -> str:
    """The lowercase hex SHA-256 of a validated stored spec's canonical compact JSON."""
    payload = json.dumps(canonical(stored_spec), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
