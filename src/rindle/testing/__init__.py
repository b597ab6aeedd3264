"""Helpers for testing code that uses rindle (and rindle's own test suite)."""
