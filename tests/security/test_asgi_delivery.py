"""The delivery-origin and HTTP attack tests, against the native ASGI delivery app.

The tests are the ones in test_delivery_origin.py and test_http_hardening.py (imported
here, so they run again); this module's ``gate`` serves ``rindle.delivery.asgi_app``
under uvicorn on loopback instead of the WSGI app under ``rindle serve``'s server, on
SQLite and PostgreSQL. Left out: what the HTTP server answers before any app runs
(malformed request lines, framing, the connection cap), which is uvicorn's, not rindle's;
the webhook-route cases are written again below with a client that keeps its connection
open (uvicorn takes a half-closed socket for a disconnect).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rindle.delivery import asgi_app
from tests.security.gate import Gate, gate_app
from tests.security.test_delivery_origin import (  # noqa: F401 - collected again here
    test_a_disposition_cannot_inject_headers,
    test_a_jpeg_html_polyglot_is_served_as_an_inert_image,
    test_a_symlink_out_of_the_root_is_never_followed,
    test_content_type_is_the_sniffed_type_not_the_extension,
    test_every_answer_carries_the_hardening_headers,
    test_html_behind_a_jpg_name_is_never_served,
    test_odd_filenames_come_back_as_safe_dispositions,
    test_svg_is_never_served_inline_even_where_a_profile_allows_it,
)
from tests.security.test_http_hardening import (  # noqa: F401 - collected again here
    HARDENED,
    test_a_token_has_exactly_one_spelling,
    test_methods_are_case_sensitive,
)
from tests.uvicorn_server import UvicornThread


@pytest.fixture
def gate(db_url: str, tmp_path: Path) -> Iterator[Gate]:
    """The attack tests' app behind ``asgi_app`` under uvicorn (both dialects)."""
    server = UvicornThread()
    base = f"http://127.0.0.1:{server.port}"
    app = gate_app(db_url, tmp_path, base)
    server.start(asgi_app(app))
    try:
        yield Gate(app, base, server.port)
    finally:
        server.stop()
        app.close()


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
def test_webhook_answers_carry_the_hardening_headers(gate: Gate, method: str) -> None:
    answer = gate.request(method, "/webhooks/nobody", b"{}" if method == "POST" else None)
    assert answer.status == 404
    assert answer.body == (b"" if method == "HEAD" else
                           b"no webhook endpoint for this provider\n")
    assert answer.header("content-length") == "38"
    for header in HARDENED:
        name, value = header.decode().split(": ", 1)
        assert answer.header(name) == value
