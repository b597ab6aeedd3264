"""A fresh attack pass on the browser-facing surfaces (the tus server, the upload JSON API),
over real loopback HTTP under rindle's threading WSGI server and uvicorn, on SQLite and
PostgreSQL.

Closed here: concurrent final concatenations each consuming the same partial upload; a
declared content type carrying control characters, NUL or lone surrogates (a 500 on
PostgreSQL, CR/LF stored for a storage request header). The rest pins refusals that were
already right: every one is JSON with its rindle code.
"""

from __future__ import annotations

import base64
import http.client
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select

from rindle import Rindle
from rindle.domain.models import UploadSession
from rindle.upload import tus_backing
from rindle.web import tus_asgi, tus_wsgi, upload_api_asgi, upload_api_wsgi
from rindle.web.tus import TusServer
from tests.apps import local_storage
from tests.lifecycle.conftest import jpeg_bytes
from tests.web.conftest import header_actor, serve_asgi, serve_wsgi, web_app

__all__ = ["web_app"]  # the fixture

V = {"Tus-Resumable": "1.0.0"}
ALICE = {**V, "X-Actor": "alice"}
OCTETS = "application/offset+octet-stream"


def b64(text: str | bytes) -> str:
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def meta(filename: str = "cat.jpg", filetype: str | None = None) -> str:
    out = f"filename {b64(filename)},profile {b64('photo')}"
    return out + (f",filetype {b64(filetype)}" if filetype is not None else "")


def code(answer: requests.Response) -> str:
    assert answer.headers["Content-Type"] == "application/json", answer.text
    return str(answer.json()["error"]["code"])


@pytest.fixture
def tus_url(web_app: Rindle) -> Iterator[str]:
    with serve_wsgi(tus_wsgi(web_app, authorize=header_actor, mount="/files")) as base:
        yield base + "/files/"


def create(url: str, length: int | None, **headers: str) -> requests.Response:
    sent = {**ALICE, "Upload-Metadata": meta(), **headers}
    if length is not None:
        sent["Upload-Length"] = str(length)
    return requests.post(url, headers=sent, timeout=30)


def patch(location: str, offset: int, data: bytes, **headers: str) -> requests.Response:
    return requests.patch(location, data=data, timeout=30, headers={
        **ALICE, "Upload-Offset": str(offset), "Content-Type": OCTETS, **headers})


# --- concatenation ---------------------------------------------------------------------------

def test_concurrent_finals_consume_a_partial_once(web_app: Rindle, tus_url: str) -> None:
    """Three final uploads naming one finished partial at the same moment: one is built
    (201), the others are told it is gone (404) or busy (423); never two assets from one
    partial's bytes."""
    data = jpeg_bytes((64, 48))
    rounds = 2
    for _ in range(rounds):
        partial = create(tus_url, len(data), **{"Upload-Concat": "partial"}).headers["Location"]
        assert patch(partial, 0, data).status_code == 204
        start = threading.Barrier(3)
        answers: list[requests.Response] = []

        def final(url: str = partial, start: threading.Barrier = start,
                  answers: list[requests.Response] = answers) -> None:
            start.wait(timeout=30)
            answers.append(requests.post(tus_url, timeout=30, headers={
                **ALICE, "Upload-Metadata": meta(), "Upload-Concat": f"final;{url}"}))

        threads = [threading.Thread(target=final) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        built = [a for a in answers if a.status_code == 201]
        assert len(answers) == 3 and len(built) == 1, [(a.status_code, a.text) for a in answers]
        assert sorted((a.status_code, code(a)) for a in answers if a.status_code != 201) in (
            [(404, "not_found")] * 2, [(404, "not_found"), (423, "upload_busy")],
            [(423, "upload_busy")] * 2)
        assert requests.head(partial, headers=ALICE, timeout=30).status_code == 404
    with web_app.db.sessionmaker() as s:
        states = dict(s.execute(select(UploadSession.state, func.count())
                                .group_by(UploadSession.state)).tuples().all())
    assert states.get("completed") == rounds and states.get("aborted") == rounds


def test_concatenation_refusals_are_pinned(tus_url: str) -> None:
    def final(value: str, **headers: str) -> requests.Response:
        return requests.post(tus_url, timeout=30, headers={
            **ALICE, "Upload-Metadata": meta(), "Upload-Concat": value, **headers})

    whole = create(tus_url, 4).headers["Location"]
    unfinished = create(tus_url, 4, **{"Upload-Concat": "partial"}).headers["Location"]
    done = create(tus_url, 2, **{"Upload-Concat": "partial"}).headers["Location"]
    assert patch(done, 0, b"ab").status_code == 204
    elsewhere = "http://elsewhere.example/files/" + "0" * 32 + "." + "0" * 32
    for value, status, expected in (
            (f"final;{whole}", 400, "invalid_concat"),  # not a partial upload
            (f"final;{unfinished}", 400, "invalid_concat"),  # a partial still receiving
            (f"final;{done} {done}", 400, "invalid_concat"),  # the same partial twice
            ("final;", 400, "invalid_concat"),
            ("final; ", 400, "invalid_concat"),
            (f"final;{elsewhere}", 404, "not_found"),  # another host's (forged) URL
            (f"final ;{done}", 400, "invalid_header"),
            (f"partial;{done}", 400, "invalid_header")):
        answer = final(value)
        assert (answer.status_code, code(answer)) == (status, expected), value
    with_length = final(f"final;{done}", **{"Upload-Length": "2"})
    assert (with_length.status_code, code(with_length)) == (400, "invalid_header")
    deferred = final(f"final;{done}", **{"Upload-Defer-Length": "1"})
    assert (deferred.status_code, code(deferred)) == (400, "invalid_header")
    built = final(f"final;{done}")  # still usable: nothing above consumed it
    assert built.status_code == 201 and built.headers["Rindle-Asset-Id"]
    to_final = patch(built.headers["Location"], 2, b"xy")
    assert (to_final.status_code, code(to_final)) == (403, "upload_finished")


def test_a_final_over_the_profiles_max_bytes_is_413(web_app: Rindle, tus_url: str) -> None:
    from tests.web.conftest import MAX_BYTES

    half = MAX_BYTES // 2
    pieces = []
    for size in (half, half + 1):  # together one byte over the profile's max_bytes
        location = create(tus_url, size, **{"Upload-Concat": "partial"}).headers["Location"]
        assert patch(location, 0, b"\0" * size).status_code == 204
        pieces.append(location)
    over = requests.post(tus_url, timeout=30, headers={
        **ALICE, "Upload-Metadata": meta(), "Upload-Concat": "final;" + " ".join(pieces)})
    assert (over.status_code, code(over)) == (413, "max_bytes_exceeded")
    for location in pieces:  # refused before anything was used
        assert requests.head(location, headers=ALICE, timeout=30).headers[
            "Upload-Offset"] in (str(half), str(half + 1))


# --- declared content types ------------------------------------------------------------------

BAD_TYPES = ("image/jpeg; a=\r\nSet-Cookie: x=y", "image/jpeg; \x00", "image/jpeg; \ud800",
             "image/jpeg; \x7f", "image/jpeg; caf\u00e9", "image/jpeg\t; x=\x01")
GOOD_TYPES = ("image/jpeg", "image/jpeg; charset=binary", 'image/jpeg; q="a b"')


def test_declared_types_with_control_or_non_ascii_characters_are_refused(
        web_app: Rindle, tus_url: str) -> None:
    with serve_wsgi(upload_api_wsgi(web_app, authorize=header_actor)) as api:
        for declared in (*BAD_TYPES, *GOOD_TYPES):
            answer = requests.post(f"{api}/uploads", timeout=30, headers={
                "X-Actor": "alice", "Content-Type": "application/json"},
                data=('{"profile": "photo", "filename": "a.jpg", "size": 3, '
                      f'"content_type": {_json_string(declared)}}}').encode())
            if declared in GOOD_TYPES:
                assert answer.status_code == 201, (declared, answer.text)
            else:
                assert (answer.status_code, code(answer)) == (415, "mime_not_allowed"), declared
    for declared in (*BAD_TYPES, *GOOD_TYPES):
        for extra in ({}, {"Upload-Concat": "partial"}):  # a partial's type is stored too
            answer = create(tus_url, 4, **{"Upload-Metadata": meta(filetype=declared)},
                            **extra)
            if declared in GOOD_TYPES:
                assert answer.status_code == 201, (declared, answer.text)
            elif "\ud800" in declared or "\x00" in declared:  # not UTF-8, or NUL:
                assert (answer.status_code, code(answer)) == (400, "invalid_metadata")
            else:
                assert (answer.status_code, code(answer)) == (415, "mime_not_allowed"), (
                    declared, extra)
    with web_app.db.sessionmaker() as s:
        stored = set(s.execute(select(UploadSession.content_type)).scalars().all())
    assert stored == set(GOOD_TYPES)


def _json_string(text: str) -> str:
    """``text`` as a JSON string literal, a lone surrogate spelled as its ``\\u`` escape."""
    return '"' + "".join(c if 0x20 <= ord(c) < 0x7f and c not in '"\\' else f"\\u{ord(c):04x}"
                         for c in text) + '"'


# --- the last chunk racing an empty PATCH at the end -----------------------------------------

def test_the_last_chunk_is_answered_204_when_a_retry_completes_it_first(
        web_app: Rindle, tus_url: str) -> None:
    """A client's retries (empty PATCHes at the end offset) race the chunk that completes
    the upload: the chunk whose bytes were stored is answered 204 at the end offset, never
    409 invalid_transition because the retry ran the trust gate first; a retry is 204, 403,
    409 or 423; one asset is built."""
    data = jpeg_bytes((64, 48))
    end = len(data)
    rounds = 8
    for _ in range(rounds):
        location = create(tus_url, end).headers["Location"]
        assert patch(location, 0, data[:-10]).status_code == 204
        stop = threading.Event()
        last: list[requests.Response] = []
        retries: list[requests.Response] = []

        def finish(url: str = location, last: list[requests.Response] = last,
                   stop: threading.Event = stop) -> None:
            last.append(patch(url, end - 10, data[-10:]))
            stop.set()

        def retry(url: str = location, retries: list[requests.Response] = retries,
                  stop: threading.Event = stop) -> None:
            for _ in range(500):  # bounded: until one is not "not there yet"
                answer = patch(url, end, b"")
                if answer.status_code != 409 or stop.is_set():
                    retries.append(answer)
                    return

        threads = [threading.Thread(target=finish),
                   *(threading.Thread(target=retry) for _ in range(3))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert [(a.status_code, a.headers.get("Upload-Offset")) for a in last] == [
            (204, str(end))], last[0].text
        assert {a.status_code for a in retries} <= {204, 403, 409, 423}, [
            a.text for a in retries]
    with web_app.db.sessionmaker() as s:
        states = s.execute(select(UploadSession.state)).scalars().all()
    assert states == ["completed"] * rounds


# --- refusals that were right, pinned ----------------------------------------------------------

def test_tus_header_refusals_are_pinned(tus_url: str) -> None:
    def refused(answer: requests.Response, status: int, expected: str) -> None:
        assert (answer.status_code, code(answer)) == (status, expected), answer.text

    both = create(tus_url, 4, **{"Upload-Defer-Length": "1"})
    refused(both, 400, "invalid_header")
    refused(create(tus_url, None), 400, "invalid_header")  # neither
    refused(create(tus_url, None, **{"Upload-Defer-Length": "0"}), 400, "invalid_header")
    with_body = requests.post(tus_url, data=b"abcd", timeout=30, headers={
        **ALICE, "Upload-Length": "4", "Upload-Metadata": meta()})
    refused(with_body, 400, "invalid_request")  # creation-with-upload is not offered
    location = create(tus_url, 4).headers["Location"]
    for checksum, expected in (("sha1", "invalid_checksum"), ("sha1 !!!!", "invalid_checksum"),
                               ("sha1 " + b64(b"x" * 19), "invalid_checksum"),
                               ("crc32 " + b64(b"xxxx"), "checksum_unsupported"),
                               ("sha1  " + b64(b"x" * 20), "invalid_checksum")):
        refused(patch(location, 0, b"ab", **{"Upload-Checksum": checksum}), 400, expected)
    parts = urlsplit(location)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:  # two Upload-Offset headers: the server never picks one
        conn.putrequest("PATCH", parts.path)
        for name, value in (("Tus-Resumable", "1.0.0"), ("X-Actor", "alice"),
                            ("Upload-Offset", "0"), ("Upload-Offset", "0"),
                            ("Content-Type", OCTETS), ("Content-Length", "2")):
            conn.putheader(name, value)
        conn.endheaders(b"ab")
        twice = conn.getresponse()
        assert twice.status == 400 and b'"invalid_header"' in twice.read()
    finally:
        conn.close()
    ok = patch(location, 0, b"ab", **{"Content-Type": OCTETS + "; x=y"})
    assert (ok.status_code, ok.headers["Upload-Offset"]) == (204, "2")
    for override, status, expected in (("GET", 405, "method_not_allowed"),
                                       ("OPTIONS", 405, "method_not_allowed"),
                                       ("PUT", 405, "method_not_allowed")):
        refused(requests.post(location, timeout=30, headers={
            **ALICE, "X-HTTP-Method-Override": override}), status, expected)
    not_post = requests.put(location, data=b"cd", timeout=30, headers={
        **ALICE, "X-HTTP-Method-Override": "PATCH", "Upload-Offset": "2", "Content-Type": OCTETS})
    refused(not_post, 405, "method_not_allowed")  # only a POST is overridden
    refused(requests.delete(location, data=b"x", headers=ALICE, timeout=30), 400,
            "invalid_request")
    deleted = requests.post(location, timeout=30, headers={
        **ALICE, "X-HTTP-Method-Override": "DELETE"})
    assert deleted.status_code == 204
    refused(requests.delete(location, headers=ALICE, timeout=30), 404, "not_found")
    refused(patch(location, 2, b"cd"), 404, "not_found")
    assert requests.head(location, headers=ALICE, timeout=30).status_code == 404
    done = create(tus_url, len(jpeg_bytes((64, 48)))).headers["Location"]
    assert patch(done, 0, jpeg_bytes((64, 48))).status_code == 204
    refused(requests.delete(done, headers=ALICE, timeout=30), 403, "upload_finished")


def test_upload_api_refusals_are_the_same_for_everyone_but_the_owner(web_app: Rindle) -> None:
    """Every route answers another actor, an anonymous caller and an id that does not exist
    with the same 404 (no oracle); the owner's malformed requests get their own codes."""
    with serve_wsgi(upload_api_wsgi(web_app, authorize=header_actor)) as api:
        owner = {"X-Actor": "alice"}
        sid = requests.post(f"{api}/uploads", timeout=30, headers=owner, json={
            "profile": "photo", "filename": "a.jpg", "size": 10}).json()["id"]
        ghost = "01a24493-9611-70c9-8339-5122a437e654"
        for method, tail in (("POST", "/sign"), ("POST", "/parts/1"), ("GET", "/parts"),
                             ("POST", "/complete"), ("POST", "/verify"), ("DELETE", "")):
            bodies = set()
            for who, target in (({"X-Actor": "bob"}, sid), ({}, sid), (owner, ghost)):
                answer = requests.request(method, f"{api}/uploads/{target}{tail}",
                                          headers=who, timeout=30)
                assert (answer.status_code, code(answer)) == (404, "not_found"), (method, tail)
                bodies.add(answer.text.replace(target, "<id>"))
            assert len(bodies) == 1, (method, tail, bodies)
        for number in ("0", "10001", "-1", "abc", "%C2%B2"):
            answer = requests.post(f"{api}/uploads/{sid}/parts/{number}", headers=owner,
                                   timeout=30)
            assert (answer.status_code, code(answer)) == (422, "invalid_multipart_parts")
        for data, ctype, status, expected in (
                (b"\xff\xfe{}", "application/json", 400, "invalid_json"),
                (b"[]", "application/json", 400, "invalid_json"),
                (b'{"profile": "photo"', "application/json", 400, "invalid_json"),
                (b'{"profile": "photo"}', "text/plain", 415, "unsupported_media_type"),
                (b'{"profile": "photo"}', "application/x-www-form-urlencoded", 415,
                 "unsupported_media_type")):
            answer = requests.post(f"{api}/uploads", data=data, timeout=30,
                                   headers={**owner, "Content-Type": ctype})
            assert (answer.status_code, code(answer)) == (status, expected), data
        preflight = requests.options(f"{api}/uploads", timeout=30, headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert (preflight.status_code, code(preflight)) == (405, "method_not_allowed")
        assert "Access-Control-Allow-Origin" not in preflight.headers  # the host's to grant


# --- Upload-Metadata is echoed: only what was validated ----------------------------------------

def _create_raw(base: str, metadata: bytes) -> tuple[int, bytes, str | None]:
    """POST a creation whose Upload-Metadata is ``metadata`` byte for byte."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.putrequest("POST", "/files/")
        for name, value in (("Tus-Resumable", "1.0.0"), ("X-Actor", "alice"),
                            ("Upload-Length", "4"), ("Content-Length", "0")):
            conn.putheader(name, value)
        conn.putheader("Upload-Metadata", metadata)
        conn.endheaders()
        answer = conn.getresponse()
        return answer.status, answer.read(), answer.getheader("Location")
    finally:
        conn.close()


@pytest.mark.parametrize("server", ["wsgi", "asgi"])
def test_metadata_pairs_are_separated_by_ascii_blanks_only(web_app: Rindle, server: str
                                                          ) -> None:
    """Python's notion of whitespace (NEL, NBSP, the C0 separators) around a pair used to
    pass validation and be stored, then echoed in HEAD's Upload-Metadata."""
    serve = serve_wsgi if server == "wsgi" else serve_asgi
    application = (tus_wsgi if server == "wsgi" else tus_asgi)(
        web_app, authorize=header_actor, mount="/files")
    name, profile = b64("a.jpg").encode(), b64("photo").encode()
    odd = [b"\x85", b"\xa0"] + ([b"\x1f", b"\x1c", b"\x0b", b"\x0c"] if server == "wsgi" else [])
    with serve(application) as base:
        for blank in odd:
            status, body, _ = _create_raw(
                base, b"filename " + name + blank + b",profile " + profile)
            assert (status, b'"invalid_metadata"' in body) == (400, True), blank
        status, _, location = _create_raw(  # spaces and tabs around pairs are fine
            base, b"filename " + name + b" \t, \tprofile " + profile)
        assert status == 201 and location is not None
        echoed = requests.head(location, headers=ALICE, timeout=30).headers["Upload-Metadata"]
        assert echoed == f"filename {b64('a.jpg')} \t, \tprofile {b64('photo')}"


def test_a_session_of_one_surface_is_unknown_to_the_other(web_app: Rindle) -> None:
    """An upload API session is not a tus upload even behind a correctly signed tus URL,
    and a tus session id is unknown to every upload API route."""
    server = TusServer(web_app, authorize=header_actor)
    with serve_wsgi(upload_api_wsgi(web_app, authorize=header_actor)) as api, \
            serve_wsgi(tus_wsgi(web_app, authorize=header_actor, mount="/files")) as base:
        owner = {"X-Actor": "alice"}
        api_sid = requests.post(f"{api}/uploads", timeout=30, headers=owner, json={
            "profile": "photo", "filename": "a.jpg", "size": 4}).json()["id"]
        signed = f"{base}/files/{server.token(uuid.UUID(api_sid), 'alice')}"
        for method in ("HEAD", "PATCH", "DELETE"):
            answer = requests.request(method, signed, timeout=30, headers={
                **ALICE, "Upload-Offset": "0", "Content-Type": OCTETS})
            assert answer.status_code == 404, method
        location = create(base + "/files/", 4).headers["Location"]
        tus_sid = str(uuid.UUID(location.rsplit("/", 1)[1].split(".")[0]))
        for method, tail in (("POST", "/sign"), ("POST", "/parts/1"), ("GET", "/parts"),
                             ("POST", "/complete"), ("POST", "/verify"), ("DELETE", "")):
            answer = requests.request(method, f"{api}/uploads/{tus_sid}{tail}", headers=owner,
                                      timeout=30)
            assert (answer.status_code, code(answer)) == (404, "not_found"), (method, tail)
        assert requests.head(location, headers=ALICE, timeout=30).headers[
            "Upload-Offset"] == "0"


def test_concurrent_patches_at_one_offset_keep_one_writers_bytes(web_app: Rindle,
                                                                  tus_url: str) -> None:
    """Four PATCHes of different bytes at offset 0 at the same moment: one is stored (204),
    the others are 409 or 423, and the part file holds exactly the winner's bytes."""
    size = 30_000
    for _ in range(3):
        location = create(tus_url, 2 * size).headers["Location"]
        start = threading.Barrier(4)
        answers: dict[int, requests.Response] = {}

        def write(fill: int, url: str = location, start: threading.Barrier = start,
                  answers: dict[int, requests.Response] = answers) -> None:
            start.wait(timeout=30)
            answers[fill] = patch(url, 0, bytes([fill]) * size)

        threads = [threading.Thread(target=write, args=(65 + i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        winners = [fill for fill, a in answers.items() if a.status_code == 204]
        assert len(answers) == 4 and len(winners) == 1, {f: a.text for f, a in answers.items()}
        assert {code(a) for a in answers.values() if a.status_code != 204} <= {
            "offset_mismatch", "upload_busy"}
        assert requests.head(location, headers=ALICE, timeout=30).headers[
            "Upload-Offset"] == str(size)
        hexid = location.rsplit("/", 1)[1].split(".")[0]
        with web_app.db.sessionmaker() as s:
            row = next(r for r in s.execute(select(UploadSession)).scalars()
                       if r.id.hex == hexid)
        part = tus_backing.part_path(local_storage(web_app), row)
        assert part.read_bytes() == bytes([winners[0]]) * size


# --- mounted in a host's ASGI router ------------------------------------------------------------

def test_mounted_under_a_starlette_prefix_the_surfaces_route_below_it(web_app: Rindle
                                                                     ) -> None:
    """Starlette's (FastAPI's) ``Mount`` passes the full path with ``root_path`` set: the
    tus server and the upload API route below the prefix (they answered 405 and 404 to
    every request), and the tus Location carries the prefix."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    host = Starlette(routes=[Mount("/tus", tus_asgi(web_app, authorize=header_actor)),
                             Mount("/api", upload_api_asgi(web_app, authorize=header_actor))])
    with serve_asgi(host) as base:
        made = create(base + "/tus/", 4)
        assert made.status_code == 201, made.text
        location = made.headers["Location"]
        assert location.startswith(base + "/tus/")
        assert patch(location, 0, b"abcd").headers["Upload-Offset"] == "4"
        opened = requests.post(f"{base}/api/uploads", timeout=30, headers={"X-Actor": "alice"},
                               json={"profile": "photo", "filename": "a.jpg", "size": 3})
        assert opened.status_code == 201, opened.text
        script = requests.get(f"{base}/api/static/rindle-upload.js", timeout=30)
        assert script.status_code == 200
        outside = requests.post(f"{base}/tusx/", timeout=30, headers=ALICE)
        assert outside.status_code == 404
