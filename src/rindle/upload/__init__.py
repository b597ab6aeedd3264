"""Uploads: the trust gate (validation), filename sanitising, storage keys and the broker."""
