"""Fixtures shared by the attack tests."""

from tests.delivery_kit import make_url_app
from tests.domain.attach_kit import module_db_url, owner, shared_app
from tests.security.gate import gate

__all__ = ["gate", "make_url_app", "module_db_url", "owner", "shared_app"]
