"""Fixtures of the rindle-mux suite; the kit itself (loopback Mux, keys, helpers) is in
``muxkit.py``."""

from muxkit import events, keypair, make_mux_app, mux, mux_app, mux_server

__all__ = ["events", "keypair", "make_mux_app", "mux", "mux_app", "mux_server"]
