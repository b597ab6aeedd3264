"""Profiles (placeholder until the profile module lands)."""

from __future__ import annotations

from typing import Any, ClassVar


class Profile:
    """A media profile: upload policy, variants and delivery for one kind of upload."""

    name: ClassVar[str] = ""
    storage: ClassVar[str] = "default"
    variants: ClassVar[dict[str, Any]] = {}
