"""Uploads from a real browser (headless Chromium), through the blocks of
guides/browser_uploads.md: Uppy with @uppy/tus across a killed and restarted server, Uppy
with @uppy/aws-s3 to moto's S3, tus-js-client, and rindle's own module (SSE, retry, abort,
another actor refused). SQLite and PostgreSQL.

Nothing waits on time: each step waits (with a bounded deadline) for a page condition, a
file the server writes, or a server answer.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import random
import re
import signal
import struct
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from PIL import Image

from rindle import Rindle
from rindle.domain.models import UploadSession, Variant
from rindle.testing.servers import free_port, http, serving
from tests.apps import MakeApp
from tests.browser import host as host_module
from tests.browser.conftest import serve_host

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "guides" / "browser_uploads.md"
MIB = 1024 * 1024
#: The colour of the photo rindle's module uploads (and of its thumbnail).
COLOUR = (200, 30, 120)
#: Every block of the guide the browser tests load.
GUIDE_BLOCKS = {"rindle-module.js", "uppy-tus.js", "uppy-s3.js", "tus-js-client.js",
                "s3-cors.json", "gcs-cors.json"}

# moto's S3 server: the rindle-s3 suite's own fixtures.
_spec = importlib.util.spec_from_file_location(
    "rindle_s3_suite_conftest", ROOT / "plugins" / "rindle_s3" / "tests" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_s3_suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_s3_suite)
moto_endpoint = _s3_suite.moto_endpoint
make_bucket = _s3_suite.make_bucket


def guide_blocks() -> dict[str, str]:
    """The guide's code blocks marked ``<!-- browser-test: NAME -->``, by name."""
    found = re.findall(r"<!-- browser-test: (\S+) -->\n```\w+\n(.*?)```", GUIDE.read_text(),
                       flags=re.S)
    return dict(found)


def jpeg(colour: tuple[int, int, int], size: int, filler: int = 0, seed: int = 13) -> bytes:
    """A ``size``x``size`` JPEG of ``colour`` followed by ``filler`` bytes of a seeded PRNG
    (after the end-of-image marker: the image still decodes)."""
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, "JPEG")
    return out.getvalue() + random.Random(seed).randbytes(filler)


def broken_png(size: tuple[int, int] = (320, 240)) -> bytes:
    """A PNG whose pixel data is not a zlib stream, behind a valid chunk checksum: the
    upload gate (chunk CRCs, no inflate) admits it, decoding it for a variant fails."""
    out = io.BytesIO()
    Image.new("RGB", size, COLOUR).save(out, "PNG")
    data = out.getvalue()
    start = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[start:start + 4])[0]
    body = random.Random(5).randbytes(length)
    chunk = struct.pack(">I", length) + b"IDAT" + body + struct.pack(
        ">I", zlib.crc32(b"IDAT" + body))
    return data[:start] + chunk + data[start + 12 + length:]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """The folder the host serves under ``/app/files/``: the guide's blocks, and the test
    files each test writes."""
    folder = tmp_path / "files"
    folder.mkdir()
    for name, text in guide_blocks().items():
        (folder / name).write_text(text)
    return folder


def wait_for(driver: Any, script: str, timeout: float = 60) -> Any:
    """Poll ``script`` (a JS expression) in the page until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        if time.monotonic() > deadline:
            logs = [entry["message"] for entry in driver.get_log("browser")]
            raise AssertionError(f"page condition {script!r} not met in {timeout} s; state="
                                 f"{driver.execute_script('return window.state')}; "
                                 f"console={logs[-10:]}")
        time.sleep(0.05)


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Poll ``condition()`` until truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return value


def open_page(driver: Any, base: str, page: str, actor: str) -> None:
    """Load ``page`` of the host with the ``actor`` cookie set (the host's authorize)."""
    driver.get(f"{base}/app/files/")
    driver.delete_all_cookies()
    driver.add_cookie({"name": "actor", "value": actor, "path": "/"})
    driver.get(f"{base}{page}")


def ready_asset(app: Rindle, asset_id: str) -> None:
    """Run the queued jobs; the asset must end ready, with its thumb."""
    app.jobs.drain()
    assert app.get_asset(asset_id).state == "ready"
    assert set(app.ready_variants(asset_id)) == {"thumb"}


def stored(app: Rindle, asset_id: str, tmp_path: Path) -> bytes:
    """The bytes storage holds for ``asset_id``."""
    asset = app.get_asset(asset_id)
    dest = tmp_path / f"stored-{asset_id}"
    app.storage_for(asset.profile).download(asset.storage_key, dest)
    return dest.read_bytes()


# --- the guide ------------------------------------------------------------------------------


def test_every_browser_block_of_the_guide_is_loaded_by_these_tests() -> None:
    text = GUIDE.read_text()
    blocks = re.findall(r"```(js|javascript|html|json)\n", text)
    assert len(blocks) == len(GUIDE_BLOCKS)  # every such block is marked, none twice
    assert set(guide_blocks()) == GUIDE_BLOCKS


def test_gcs_cors_block_has_the_keys_gcs_takes() -> None:
    rules = json.loads(guide_blocks()["gcs-cors.json"])
    assert len(rules) == 1
    assert set(rules[0]) == {"origin", "method", "responseHeader", "maxAgeSeconds"}
    assert "PUT" in rules[0]["method"] and "ETag" in rules[0]["responseHeader"]


def test_the_gcs_emulator_applies_no_cors_so_no_browser_test_uploads_to_it(
        tmp_path: Path) -> None:
    """What the guide says of gcp-storage-emulator: it keeps a bucket's ``cors`` but answers
    a preflight 501 and never sends ``Access-Control-*``. Should this fail, the emulator
    learnt CORS: add a browser upload to it and change the guide."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    origin = "http://127.0.0.1:9"
    rules = json.loads(guide_blocks()["gcs-cors.json"])
    rules[0]["origin"] = [origin]
    with serving([sys.executable, "-m", "gcp_storage_emulator", "start", "--host",
                  "127.0.0.1", "--port", str(port), "--in-memory", "--quiet"],
                 ready_url=f"{url}/", name="gcp-storage-emulator", cwd=tmp_path):
        as_json = {"Content-Type": "application/json"}
        status, body, _ = http("POST", f"{url}/storage/v1/b",
                               json.dumps({"name": "cors-probe"}).encode(), as_json)
        assert status == 200, body
        status, body, _ = http("PATCH", f"{url}/storage/v1/b/cors-probe",
                               json.dumps({"cors": rules}).encode(), as_json)
        assert status == 200, body  # what `gcloud storage buckets update` sends
        status, body, _ = http("GET", f"{url}/storage/v1/b/cors-probe")
        assert json.loads(body)["cors"] == rules  # stored...
        status, _, headers = http("OPTIONS", f"{url}/cors-probe/photo.jpg", headers={
            "Origin": origin, "Access-Control-Request-Method": "PUT"})
        assert status == 501  # ...but no preflight is answered
        status, _, put_headers = http("PUT", f"{url}/cors-probe/photo.jpg", b"abc",
                                      {"Origin": origin, "Content-Type": "image/jpeg"})
        assert status == 200
        for answer in (headers, put_headers):
            assert not [h for h in answer if h.lower().startswith("access-control-")]


# --- Uppy and @uppy/tus across a server restart -----------------------------------------------


@pytest.fixture
def restartable(db_url: str, tmp_path: Path, npm_dir: Path, files: Path
                ) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start the host as a process on one port, storage and database: ``start(**opts)``."""
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    base_opts = {"database_url": db_url, "root": str(tmp_path / "media"),
                 "tmp_dir": str(tmp_path / "tmp"), "port": port, "npm_dir": str(npm_dir),
                 "files_dir": str(files)}

    def start(**opts: Any) -> subprocess.Popen[bytes]:
        path = tmp_path / f"host-{len(procs)}.json"
        path.write_text(json.dumps({**base_opts, **opts}))
        proc = subprocess.Popen([sys.executable, "-m", "tests.browser.host", str(path)],
                                cwd=ROOT, stderr=subprocess.PIPE)
        procs.append(proc)

        def answers() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"host exited: {proc.stderr.read()!r}")  # type: ignore
            try:
                return http("OPTIONS", f"http://127.0.0.1:{port}/tus/", timeout=2)[0] == 204
            except OSError:
                return False

        wait_until(answers, "the host answers")
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def test_uppy_tus_resumes_after_the_server_is_killed(
        browser: Any, make_app: MakeApp, restartable: Callable[..., subprocess.Popen[bytes]],
        files: Path, tmp_path: Path) -> None:
    data = jpeg((10, 120, 200), 64, filler=30 * MIB)
    (files / "big.jpg").write_bytes(data)
    marker, first_log, second_log = (tmp_path / "held.json", tmp_path / "patches-1.log",
                                     tmp_path / "patches-2.log")
    first = restartable(hold_at=10 * MIB, marker=str(marker), patch_log=str(first_log))
    port = json.loads((tmp_path / "host-0.json").read_text())["port"]
    base = f"http://127.0.0.1:{port}"
    open_page(browser, base, "/app/page/uppy.html?config=uppy-tus.js&file=big.jpg"
              "&type=image/jpeg", "alice")

    held = json.loads(wait_until(lambda: marker.exists() and marker.read_text(),
                                 "a PATCH at 10 MiB"))
    tus_headers = {"Tus-Resumable": "1.0.0", "Cookie": "actor=alice"}
    status, _, head = http("HEAD", f"{base}{held['path']}", headers=tus_headers)
    assert (status, held["offset"], head["Upload-Offset"]) == (200, 10 * MIB, str(10 * MIB))
    first.send_signal(signal.SIGKILL)  # mid-upload: the held PATCH never answers
    first.wait(timeout=10)
    assert first_log.read_text().split() == ["0", str(5 * MIB), str(10 * MIB)]

    restartable(patch_log=str(second_log))  # same port, storage and database
    state = wait_for(browser, "window.state.phase === 'done' && window.state", timeout=90)
    assert (state["successful"], state["failed"]) == (1, [])
    resumed = [int(n) for n in second_log.read_text().split()]
    assert resumed[0] == 10 * MIB > 0  # the resume's first PATCH: the server's offset
    assert resumed == [10 * MIB, 15 * MIB, 20 * MIB, 25 * MIB, 30 * MIB]
    app = make_app(**host_module.app_options(
        json.loads((tmp_path / "host-0.json").read_text())["database_url"],
        tmp_path / "media", tmp_path / "tmp", base))
    ready_asset(app, state["assetId"])
    assert hashlib.sha256(stored(app, state["assetId"], tmp_path)).digest() == \
        hashlib.sha256(data).digest()


# --- Uppy and @uppy/aws-s3 to S3 (moto), and rindle's module's multipart ---------------------


@pytest.fixture
def s3_host(make_app: MakeApp, npm_dir: Path, files: Path, moto_endpoint: str,
            make_bucket: Callable[[], str]) -> Iterator[tuple[str, Rindle, str, Any]]:
    """The host over a fresh moto bucket carrying the guide's CORS rules for the host's
    origin: yields the base URL, the app, the bucket and a boto3 client."""
    bucket = make_bucket()
    settings = {"backend": "s3", "bucket": bucket, "endpoint_url": moto_endpoint,
                "region": "us-east-1", "access_key_id": "testing",
                "secret_access_key": "testing"}

    def build(base: str) -> Rindle:
        return make_app(storages={"default": settings}, profiles=host_module.PROFILES,
                        load_entrypoints=True)

    with serve_host(build, npm_dir, files) as (base, app):
        cors = json.loads(guide_blocks()["s3-cors.json"])
        cors["CORSRules"][0]["AllowedOrigins"] = [base]  # the guide's rules, this origin
        client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.put_bucket_cors(Bucket=bucket, CORSConfiguration=cors)
        yield base, app, bucket, client


def test_uppy_aws_s3_multipart_to_moto(browser: Any, s3_host: tuple[str, Rindle, str, Any],
                                       files: Path, tmp_path: Path) -> None:
    data = jpeg((30, 160, 60), 64, filler=11 * MIB, seed=7)  # parts of 5, 5 and 1+ MiB
    (files / "parts.jpg").write_bytes(data)
    base, app, _, _ = s3_host
    open_page(browser, base, "/app/page/uppy.html?config=uppy-s3.js&file=parts.jpg"
              "&type=image/jpeg", "alice")
    state = wait_for(browser, "window.state.phase !== 'loading' && "
                     "window.state.phase !== 'uploading' && window.state")
    assert (state["phase"], state["successful"], state["failed"]) == ("done", 1, []), state
    ready_asset(app, state["assetId"])
    assert stored(app, state["assetId"], tmp_path) == data

    # rindle's module: 3 parts in parallel, progress up to the total
    open_page(browser, base, "/app/page/client.html", "alice")
    wait_for(browser, "window.ready")
    done = browser.execute_async_script("""
        const finish = arguments[arguments.length - 1];
        const seen = [];
        fetch("/app/files/parts.jpg").then((r) => r.blob()).then((blob) =>
          window.rindle.upload(new File([blob], "parts.jpg", { type: "image/jpeg" }), {
            endpoint: "/api", profile: "photo", strategy: "multipart", concurrency: 3,
            onProgress: ({ loaded, total }) => seen.push([loaded, total]),
          })).then((done) => finish({ done, seen }),
                   (error) => finish({ error: String(error) }));
    """)
    assert "error" not in done, done
    assert done["done"]["session"]["strategy"] == "multipart"
    assert done["seen"][-1] == [len(data), len(data)]
    assert all(0 <= loaded <= len(data) for loaded, _ in done["seen"])
    ready_asset(app, done["done"]["asset_id"])
    assert stored(app, done["done"]["asset_id"], tmp_path) == data



def test_abort_mid_multipart_aborts_the_session_and_the_s3_upload(
        browser: Any, s3_host: tuple[str, Rindle, str, Any]) -> None:
    base, app, bucket, client = s3_host
    open_page(browser, base, "/app/page/client.html", "alice")
    wait_for(browser, "window.ready")
    # One part at a time: the page aborts when the module asks for part 2's URL, so part 1
    # is stored in S3 (listed by the API first) and part 2 never leaves.
    got = browser.execute_async_script("""
        const finish = arguments[arguments.length - 1];
        const controller = new AbortController();
        const seen = { session: null, partsBefore: null, signed: [] };
        const originalFetch = window.fetch;
        window.fetch = async (...args) => {
          const url = String(args[0]);
          const part = url.match(/\\/parts\\/(\\d+)$/);
          if (part) seen.signed.push(Number(part[1]));
          if (part && part[1] === "2") {
            const listed = await originalFetch(`/api/uploads/${seen.session.id}/parts`);
            seen.partsBefore = await listed.json();
            controller.abort();
          }
          const answer = await originalFetch(...args);
          if (url.endsWith("/api/uploads") && answer.status === 201) {
            seen.session = await answer.clone().json();
          }
          return answer;
        };
        const bytes = new Uint8Array(11 * 1024 * 1024);
        bytes.set([0xff, 0xd8, 0xff, 0xe0]);
        window.rindle.upload(new File([bytes], "big.jpg", { type: "image/jpeg" }), {
          endpoint: "/api", profile: "photo", strategy: "multipart", concurrency: 1,
          signal: controller.signal,
        }).then(() => finish({ outcome: "resolved", seen }),
                (error) => finish({ outcome: error.name, seen }))
          .finally(() => { window.fetch = originalFetch; });
    """)
    seen = got["seen"]
    assert got["outcome"] == "AbortError", got
    assert seen["session"]["strategy"] == "multipart"
    assert seen["signed"] == [1, 2]
    assert [(p["PartNumber"], p["Size"]) for p in seen["partsBefore"]] == [(1, 5 * MIB)]
    with app.db.sessionmaker() as session:
        row = session.get(UploadSession, uuid.UUID(seen["session"]["id"]))
        assert row is not None
        assert (row.state, row.upload_strategy) == ("aborted", "multipart")
        upload_id, key = row.multipart_upload_id, row.upload_key
    assert upload_id
    open_uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert upload_id not in {u["UploadId"] for u in open_uploads}
    with pytest.raises(client.exceptions.NoSuchUpload):
        client.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0

# --- rindle's module on local storage -------------------------------------------------------


@pytest.fixture
def local_host(make_app: MakeApp, db_url: str, tmp_path: Path, npm_dir: Path, files: Path
               ) -> Callable[..., Any]:
    """``local_host(**build_options)``: the host over local storage, as a context."""

    def factory(**options: Any) -> Any:
        def build(base: str) -> Rindle:
            return make_app(**host_module.app_options(db_url, tmp_path / "media",
                                                      tmp_path / "tmp", base))

        return serve_host(build, npm_dir, files, **options)

    return factory


def test_module_shows_the_thumbnail_when_the_stream_says_ready(
        browser: Any, local_host: Callable[..., Any], files: Path, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.new("RGB", (320, 240), COLOUR).save(photo, "PNG")
    puts: list[str] = []
    with local_host(fail_puts=1, put_log=puts) as (base, app):
        open_page(browser, base, "/app/page/module.html", "alice")
        browser.find_element("css selector", "#photo").send_keys(str(photo))
        asset_id = wait_for(browser, "document.body.dataset.asset")
        assert puts == ["503", "201"]  # the first PUT failed, the retry stored the bytes
        assert browser.execute_script("return document.querySelector('progress').value") == 1
        assert browser.execute_script("return document.querySelector('#thumbnail').src") == ""
        app.jobs.drain()  # the thumbnail is made; the SSE stream tells the page
        wait_for(browser, "(() => { const i = document.querySelector('#thumbnail');"
                          " return i.complete && i.naturalWidth === 64; })()")
        assert set(app.ready_variants(asset_id)) == {"thumb"}
        shot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
        box = browser.execute_script(
            "const r = document.querySelector('#thumbnail').getBoundingClientRect();"
            "return [r.left, r.top, r.width, r.height, window.devicePixelRatio];")
        left, top, width, height, ratio = box
        assert (left, top, width, height) == (40, 80, 64, 64)
        region = shot.crop((int(left * ratio) + 4, int(top * ratio) + 4,
                            int((left + width) * ratio) - 4, int((top + height) * ratio) - 4))
        colours = region.getcolors(maxcolors=64 * 64 * 16)
        assert colours is not None
        dominant = max(colours)[1]
        assert isinstance(dominant, tuple)
        assert all(abs(a - b) <= 6 for a, b in zip(dominant, COLOUR, strict=True)), dominant
        outside = shot.getpixel((int(200 * ratio), int(300 * ratio)))
        assert outside == (255, 255, 255)


def _module_page_upload(browser: Any, base: str, photo: Path) -> str:
    """Load the guide's module page, choose ``photo``; the asset id once verified (the
    page's stream is open by then: ``upload`` waits for it before sending bytes)."""
    open_page(browser, base, "/app/page/module.html", "alice")
    browser.find_element("css selector", "#photo").send_keys(str(photo))
    asset_id: str = wait_for(browser, "document.body.dataset.asset")
    return asset_id


def _variant_row(app: Rindle, asset_id: str) -> tuple[str, str | None]:
    with app.db.sessionmaker() as session:
        [row] = session.query(Variant).filter_by(asset_id=uuid.UUID(asset_id)).all()
        return row.state, row.error_reason


def test_module_shows_the_error_when_the_variant_fails(
        browser: Any, local_host: Callable[..., Any], tmp_path: Path) -> None:
    photo = tmp_path / "broken.png"
    photo.write_bytes(broken_png())
    with local_host() as (base, app):
        asset_id = _module_page_upload(browser, base, photo)
        app.jobs.drain()  # the thumbnail cannot be decoded: the variant fails
        state, reason = _variant_row(app, asset_id)
        assert state == "failed" and reason is not None
        assert reason.startswith("image_unreadable: ")
        message = wait_for(browser, "document.querySelector('#message').textContent")
        assert message == "variant_failed: the variant thumb failed"
        assert browser.execute_script("return document.querySelector('#thumbnail').src") == ""
        assert app.get_asset(asset_id).state == "degraded"


def test_module_shows_the_error_when_processing_is_cancelled(
        browser: Any, local_host: Callable[..., Any], tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.new("RGB", (320, 240), COLOUR).save(photo, "PNG")
    with local_host() as (base, app):
        asset_id = _module_page_upload(browser, base, photo)
        assert app.jobs.drain(limit=1) == 1  # the promotion: the thumb is planned
        assert _variant_row(app, asset_id)[0] == "planned"
        assert app.cancel_processing(asset_id).variants == ("thumb",)
        message = wait_for(browser, "document.querySelector('#message').textContent")
        assert message == "variant_cancelled: the variant thumb was cancelled"
        assert _variant_row(app, asset_id) == ("cancelled", "cancelled")
        got = browser.execute_script("return document.querySelector('#thumbnail').src")
        assert got == ""

def test_tus_js_client_upload(browser: Any, local_host: Callable[..., Any],
                              files: Path, tmp_path: Path) -> None:
    data = jpeg((90, 90, 20), 48, filler=6 * MIB, seed=3)  # two 5 MiB chunks
    (files / "small.jpg").write_bytes(data)
    with local_host() as (base, app):
        open_page(browser, base, "/app/page/tus-js-client.html", "alice")
        state = wait_for(browser, "window.state.phase !== 'uploading' && window.state")
        assert state["phase"] == "done", state
        ready_asset(app, state["assetId"])
        assert stored(app, state["assetId"], tmp_path) == data


def test_retries_are_bounded_and_refusals_are_not_retried(
        browser: Any, local_host: Callable[..., Any]) -> None:
    puts: list[str] = []
    with local_host(fail_puts=3, put_log=puts) as (base, _app):
        open_page(browser, base, "/app/page/client.html", "alice")
        wait_for(browser, "window.ready")
        got = browser.execute_async_script("""
            const finish = arguments[arguments.length - 1];
            const r = window.rindle;
            const jpeg = new File([new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 0])], "a.jpg",
                                  { type: "image/jpeg" });
            const gif = new File([new Uint8Array([0x47, 0x49, 0x46, 0x38])], "a.gif",
                                 { type: "image/gif" });
            const outcome = (promise) => promise.then(
              () => "resolved", (e) => ({ name: e.name, status: e.status, code: e.code }));
            (async () => ({
              backoff: [0, 1, 2, 3, 4, 5, 6].map((n) => r.backoff(n, 250, 8000)),
              exhausted: await outcome(r.upload(jpeg, { endpoint: "/api", profile: "photo",
                                                        retries: 2, retryDelay: 1 })),
              refused: await outcome(r.upload(gif, { endpoint: "/api", profile: "photo" })),
              tooSmall: await outcome(r.upload(jpeg, { endpoint: "/api", profile: "photo",
                                                       partSize: r.MIN_PART_SIZE - 1 })),
              badToken: await outcome(r.waitForVariants("/api/events?token=forged",
                                                        { variants: ["thumb"] }).ready),
            }))().then(finish, (e) => finish({ error: String(e) }));
        """)
        assert got["backoff"] == [250, 500, 1000, 2000, 4000, 8000, 8000]
        assert got["exhausted"] == {"name": "RindleUploadError", "status": 503,
                                    "code": "storage_error"}
        assert puts == ["503", "503", "503"]  # the first try and exactly 2 retries
        assert got["refused"] == {"name": "RindleUploadError", "status": 415,
                                  "code": "extension_not_allowed"}
        assert got["tooSmall"] == {"name": "TypeError", "status": None, "code": None}
        assert got["badToken"] == {"name": "RindleUploadError", "status": 0,
                                   "code": "events_closed"}  # the stream answered 403


def test_another_actors_session_is_refused_and_abort_cancels(
        browser: Any, local_host: Callable[..., Any]) -> None:
    with local_host() as (base, _app):
        status, body, _ = http("POST", f"{base}/api/uploads", json.dumps({
            "profile": "photo", "filename": "a.jpg", "content_type": "image/jpeg",
            "size": 1000}).encode(), {"Content-Type": "application/json",
                                      "Cookie": "actor=alice"})
        assert status == 201, body
        session_id = json.loads(body)["id"]

        open_page(browser, base, "/app/page/client.html", "bob")
        wait_for(browser, "window.ready")
        refused = browser.execute_async_script(
            "window.tryAll(arguments[0]).then(arguments[arguments.length - 1]);", session_id)
        not_found = {"status": 404, "code": "not_found", "name": "RindleUploadError"}
        assert refused == {name: not_found for name in
                           ("sign", "signPart", "listParts", "complete", "verify", "abort")}

        # alice's own page aborts her upload mid-PUT: the session is aborted on the server
        open_page(browser, base, "/app/page/client.html", "alice")
        wait_for(browser, "window.ready")
        aborted = browser.execute_async_script("""
            const finish = arguments[arguments.length - 1];
            const controller = new AbortController();
            let made = null;
            const bytes = new Uint8Array(8 * 1024 * 1024);
            bytes.set([0xff, 0xd8, 0xff, 0xe0]);
            const file = new File([bytes], "big.jpg", { type: "image/jpeg" });
            const originalFetch = window.fetch;
            window.fetch = async (...args) => {
              const answer = await originalFetch(...args);
              if (String(args[0]).endsWith("/api/uploads") && answer.status === 201) {
                made = await answer.clone().json();
              }
              return answer;
            };
            window.rindle.upload(file, { endpoint: "/api", profile: "photo",
                                         signal: controller.signal,
                                         onProgress: () => controller.abort() })
              .then(() => finish({ outcome: "resolved" }),
                    (error) => finish({ outcome: error.name, id: made && made.id }));
        """)
        assert aborted["outcome"] == "AbortError", aborted
        after = browser.execute_async_script(
            "window.tryAll(arguments[0]).then(arguments[arguments.length - 1]);",
            aborted["id"])
        assert after["sign"] == {"status": 409, "code": "invalid_transition",
                                 "name": "RindleUploadError"}, after
