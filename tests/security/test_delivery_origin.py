"""Issue 9, hole 2: the delivery origin never serves active content.

Over real loopback HTTP against the embedded delivery app, on SQLite and PostgreSQL: an
HTML page uploaded under a JPEG profile, polyglots, SVG, staged and quarantined bytes, the
headers on every answer, and header injection through dispositions.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rindle.domain.models import Asset
from rindle.errors import AssetNotReady, UploadRejected
from rindle.ids import uuid7
from tests.security.gate import Gate, jpeg

PAGE = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b"<script>alert(1)</script><rect width=\"10\" height=\"10\"/></svg>")
HARDENING = {
    "content-security-policy": "default-src 'none'; sandbox",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _hardened(headers: dict[str, str]) -> bool:
    return all(headers.get(k) == v for k, v in HARDENING.items())


@pytest.mark.parametrize(("profile", "filename", "code"), [
    ("jpeg_only", "x.html", "extension_not_allowed"),
    ("jpeg_only", "x.htm", "extension_not_allowed"),
    ("jpeg_only", "x.exe", "extension_not_allowed"),
    ("jpeg_only", "x.png", "extension_not_allowed"),  # a type the profile does not take
    ("jpeg_only", "x.jpg.html", "extension_not_allowed"),
    ("jpeg_only", "x.jpg\x00.html", "extension_not_allowed"),
    ("jpeg_only", "\u202egpj.exe", "extension_not_allowed"),  # right-to-left override
    ("jpeg_only", "noextension", "missing_extension"),
    ("jpeg_only", ".jpg", "missing_extension"),
    ("any_image", "x.svg", "extension_not_allowed"),  # image/* never admits SVG
    ("any_image", "x.xhtml", "extension_not_allowed"),
    ("photo", "x.heic", "extension_not_allowed"),
])
def test_initiate_refuses_what_the_profile_would_refuse(gate: Gate, profile: str,
                                                       filename: str, code: str) -> None:
    with pytest.raises(UploadRejected) as err:
        gate.app.initiate_upload(profile, filename=filename)
    assert err.value.code == code
    assert "accepted" in err.value.message or "not accepted" in err.value.message


@pytest.mark.parametrize("filename", ["x.jpg", "X.JPG", "x.jpeg", "x.jpe", "résumé 日本.jpg",
                                      "a" * 5000 + ".jpg", "../../x.jpg", "x.html.jpg"])
def test_initiate_accepts_allowed_extensions_however_spelled(gate: Gate, filename: str) -> None:
    session = gate.app.initiate_upload("jpeg_only", filename=filename)
    assert session.upload_key.endswith((".jpg", ".jpeg", ".jpe"))
    asset = gate.app.get_asset(session.asset_id)
    assert asset.filename is not None and len(asset.filename) <= 255
    assert "/" not in asset.filename and ".." not in asset.filename


@pytest.mark.parametrize("declared", ["text/html", "image/svg+xml", "application/xhtml+xml",
                                      "image/png", ""])
def test_initiate_refuses_a_declared_type_the_profile_refuses(gate: Gate, declared: str
                                                              ) -> None:
    with pytest.raises(UploadRejected) as err:
        gate.app.initiate_upload("jpeg_only", filename="x.jpg", content_type=declared)
    assert err.value.code == "mime_not_allowed"


def test_html_behind_a_jpg_name_is_never_served(gate: Gate) -> None:
    session = gate.app.initiate_upload("jpeg_only", filename="x.jpg")
    request = gate.app.sign_upload(session.id)
    assert gate.put(request.url, PAGE) == 201
    key = session.upload_key
    forged_get = gate.storage.url(key, expires_in=60)  # as if a GET URL leaked or was signed
    staged = gate.get(forged_get)
    assert staged.status == 404 and PAGE not in staged.body and _hardened(staged.headers)
    asset = gate.app.verify_upload(session.id)
    assert gate.get(forged_get).status == 404  # validating: not checked yet
    with pytest.raises(AssetNotReady) as err:
        gate.app.url(asset.id)
    assert (err.value.code, err.value.state) == ("asset_not_ready", "validating")
    gate.app.jobs.drain()
    fresh = gate.app.get_asset(asset.id)
    assert fresh.state == "quarantined"
    quarantined = gate.get(forged_get)
    assert quarantined.status == 404 and PAGE not in quarantined.body
    with pytest.raises(AssetNotReady) as err2:
        gate.app.url(asset.id)
    assert err2.value.state == "quarantined"


def test_every_answer_carries_the_hardening_headers(gate: Gate) -> None:
    session = gate.app.initiate_upload("photo", filename="a.jpg")
    request = gate.app.sign_upload(session.id)
    put = gate.request("PUT", request.url, jpeg())
    assert put.status == 201 and _hardened(put.headers)
    gate.app.verify_upload(session.id)
    gate.app.jobs.drain()
    url = gate.app.url(session.asset_id)
    for answer in (gate.get(url), gate.request("HEAD", url),
                   gate.request("GET", url, headers={"Range": "bytes=0-9"}),
                   gate.get(url.split("?")[0]), gate.get(url + "x"),
                   gate.request("DELETE", url), gate.get("/nothing/here")):
        assert _hardened(answer.headers), answer.status


def test_content_type_is_the_sniffed_type_not_the_extension(gate: Gate) -> None:
    session = gate.app.initiate_upload("photo", filename="a.jpg")
    request = gate.app.sign_upload(session.id)
    gate.put(request.url, jpeg())
    asset = gate.app.verify_upload(session.id)
    gate.app.jobs.drain()
    answer = gate.get(gate.app.url(asset.id))
    assert answer.status == 200 and answer.header("Content-Type") == "image/jpeg"
    thumb = gate.get(gate.app.url(asset.id, "thumb"))
    assert thumb.status == 200 and thumb.header("Content-Type") == "image/webp"
    # The key says .jpg; the row says what the bytes are, and only the row is believed.
    with gate.app.db.transaction() as s:
        from sqlalchemy import update

        from rindle.domain.models import Asset

        s.execute(update(Asset).where(Asset.id == asset.id).values(content_type="image/png"))
    assert gate.get(gate.app.url(asset.id)).header("Content-Type") == "image/png"


def test_a_jpeg_html_polyglot_is_served_as_an_inert_image(gate: Gate) -> None:
    polyglot = jpeg() + PAGE  # a valid JPEG with a page after its end-of-image marker
    session = gate.app.initiate_upload("photo", filename="p.jpg")
    gate.put(gate.app.sign_upload(session.id).url, polyglot)
    asset = gate.app.verify_upload(session.id)
    gate.app.jobs.drain()
    answer = gate.get(gate.app.url(asset.id))
    assert answer.status == 200 and answer.body == polyglot
    assert answer.header("Content-Type") == "image/jpeg" and _hardened(answer.headers)


def test_svg_is_never_served_inline_even_where_a_profile_allows_it(gate: Gate) -> None:
    session = gate.app.initiate_upload("vector", filename="logo.svg")  # explicitly allowed
    gate.put(gate.app.sign_upload(session.id).url, SVG)
    asset = gate.app.verify_upload(session.id)
    gate.app.jobs.drain()
    # Core rindle has no SVG probe, so the upload stops at promotion...
    fresh = gate.app.get_asset(asset.id)
    assert (fresh.state, fresh.error_reason) == ("quarantined",
                                                 "no_probe_for_mime: image/svg+xml")
    # ...but a plugin could probe it. Record one as promoted: the origin still never
    # serves it inline, however the URL was signed.
    key = "vector/0190/logo.svg"
    gate.storage.put(key, _bytes_file(gate, SVG))
    with gate.app.db.transaction() as s:
        s.add(Asset(id=uuid7(), state="ready", storage_key=key, profile="vector",
                    content_type="image/svg+xml", filename="logo.svg"))
    for disposition in (None, "inline"):
        answer = gate.get(gate.storage.url(key, expires_in=60, disposition=disposition))
        assert answer.status == 200 and answer.header("Content-Type") == "image/svg+xml"
        assert answer.header("Content-Disposition") == (
            "attachment; filename=\"logo.svg\"; filename*=UTF-8''logo.svg")
        assert _hardened(answer.headers)


def _bytes_file(g: Gate, data: bytes) -> Path:
    path = g.storage.root.parent / "upload.bin"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("value", [
    'attachment; filename="a\r\nSet-Cookie: owned=1"',
    'inline; filename="\u2028x"',  # not Latin-1: once a UnicodeEncodeError and no body
    'attachment; filename="a.jpg"; filename*=UTF-8\'\'%0D%0ASet-Cookie:%20x=1',
    "attachment; " + "a" * 10000,
    'attachment; filename="a\nX-Injected: 1"',
    'inline; filename="\x00.html"',
])
def test_a_disposition_cannot_inject_headers(gate: Gate, value: str) -> None:
    session = gate.app.initiate_upload("photo", filename="a.jpg")
    gate.put(gate.app.sign_upload(session.id).url, jpeg())
    asset = gate.app.verify_upload(session.id)
    gate.app.jobs.drain()
    key = gate.app.get_asset(asset.id).storage_key
    answer = gate.get(gate.storage.url(key, expires_in=60, disposition=value))
    assert answer.status == 200
    assert "set-cookie" not in answer.headers and "x-injected" not in answer.headers
    header = answer.header("Content-Disposition") or ""
    # rebuilt from its type and a sanitised filename: nothing else survives
    assert re.fullmatch(r'(attachment|inline); filename="[A-Za-z0-9._-]+"; '
                        r"filename\*=UTF-8''[A-Za-z0-9._-]+", header), header


@pytest.mark.parametrize("name", ["résumé 日本.jpg", "evil\"; filename=x.html; a=\".jpg",
                                  "a\r\nSet-Cookie: x=1.jpg", "\u202egpj.jpg", "x" * 400 + ".jpg"])
def test_odd_filenames_come_back_as_safe_dispositions(gate: Gate, name: str) -> None:
    session = gate.app.initiate_upload("photo", filename=name)
    gate.put(gate.app.sign_upload(session.id).url, jpeg())
    asset = gate.app.verify_upload(session.id)
    gate.app.jobs.drain()
    stored = gate.app.get_asset(asset.id).filename or ""
    answer = gate.get(gate.app.url(asset.id, disposition="attachment"))
    header = answer.header("Content-Disposition") or ""
    assert answer.status == 200 and header.startswith("attachment; filename=\"")
    assert "\r" not in header and "\n" not in header and header.count('"') == 2
    assert "set-cookie" not in answer.headers
    assert all(c.isascii() and c.isprintable() for c in stored) and len(stored) <= 255


def test_a_symlink_out_of_the_root_is_never_followed(gate: Gate, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_bytes(b"top secret")
    key = "photo/0190/linked.jpg"
    link = gate.storage.path_for(key)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    with gate.app.db.transaction() as s:  # even a row that names it does not help
        s.add(Asset(id=uuid7(), state="ready", storage_key=key, profile="photo",
                    content_type="image/jpeg"))
    answer = gate.get(gate.storage.url(key, expires_in=60))
    assert answer.status == 404 and b"top secret" not in answer.body
