"""Fixtures shared by the attack tests."""

from tests.domain.attach_kit import module_db_url, owner, shared_app
from tests.security.gate import gate

__all__ = ["gate", "module_db_url", "owner", "shared_app"]
