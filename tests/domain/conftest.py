"""Fixtures of the attachment tests (read-back, collections, cancel): a database shared by
a module's tests and an owner of each test's own; see :mod:`tests.domain.attach_kit`."""

from tests.domain.attach_kit import module_db_url, owner, shared_app

__all__ = ["module_db_url", "owner", "shared_app"]
