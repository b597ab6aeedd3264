"""Fixtures shared by the attack tests."""

from tests.security.gate import gate

__all__ = ["gate"]
