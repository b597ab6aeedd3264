"""The image lifecycle on the embedded defaults, end to end, over real HTTP.

Run by `make demo` inside demo/ (after `rindle init` and `rindle migrate`). Each step
prints the command or call it makes, so a newcomer can follow and repeat it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path.cwd()
BIN = Path(sys.executable).parent
RINDLE = str(BIN / "rindle")


def say(text: str) -> None:
    print(f"\n-- {text}", flush=True)


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a `rindle` command the way a user would and echo it."""
    print(f"$ rindle {' '.join(args)}", flush=True)
    result = subprocess.run([RINDLE, *args], capture_output=True, text=True, timeout=300)
    if result.stdout.strip():
        print(result.stdout.rstrip())
    if result.stderr.strip():
        print(result.stderr.rstrip())
    if check and result.returncode != 0:
        raise SystemExit(f"demo failed at: rindle {' '.join(args)}")
    return result


def cli_json(*args: str) -> dict:  # type: ignore[type-arg]
    print(f"$ rindle --json {' '.join(args)}", flush=True)
    result = subprocess.run([RINDLE, "--json", *args], capture_output=True, text=True,
                            timeout=300)
    if result.returncode != 0:
        print(result.stderr)
        raise SystemExit(f"demo failed at: rindle {' '.join(args)}")
    data = json.loads(result.stdout)
    print(json.dumps(data, indent=2)[:1200])
    return data  # type: ignore[no-any-return]


def make_samples(folder: Path) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    photo = Image.new("RGB", (3000, 2000))
    draw = ImageDraw.Draw(photo)
    for y in range(0, 2000, 8):
        draw.rectangle([0, y, 3000, y + 8], fill=(y % 256, (y * 3) % 256, 200 - y % 200))
    draw.ellipse([1000, 500, 2000, 1500], fill=(250, 200, 40))
    paths = {"photo": folder / "sunrise.jpg", "direct": folder / "portrait.png",
             "liar": folder / "not-really.jpg"}
    photo.save(paths["photo"], quality=90)
    portrait = Image.new("RGB", (1200, 1800), (30, 90, 160))
    ImageDraw.Draw(portrait).rectangle([200, 300, 1000, 1500], fill=(240, 240, 240))
    portrait.save(paths["direct"])
    buf = BytesIO()
    Image.new("RGB", (10, 10), "red").save(buf, "PNG")
    paths["liar"].write_bytes(buf.getvalue())  # PNG bytes with a .jpg name
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    config = HERE / "rindle.toml"
    port = free_port()
    text = re.sub(r'(?m)^base_url = "[^"]*"', f'base_url = "http://127.0.0.1:{port}"',
                  config.read_text())
    config.write_text(text)
    samples = make_samples(HERE / "samples")
    print(f"sample images in {samples['photo'].parent}")

    say("1. A proxied upload: the bytes pass through the app, are checked, stored, recorded")
    asset = cli_json("upload", str(samples["photo"]), "--profile", "photo")
    photo_id = asset["id"]

    say("2. A rejected upload: PNG bytes named .jpg never reach storage")
    rejected = cli("upload", str(samples["liar"]), "--profile", "photo", check=False)
    assert rejected.returncode != 0 and "extension_mime_mismatch" in (rejected.stderr
                                                                      + rejected.stdout)

    say(f"3. Start the embedded web app: rindle serve --port {port}")
    server = subprocess.Popen([RINDLE, "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        direct_upload(samples["direct"], port)
        say("5. Run the background jobs: promotion, then one job per variant")
        cli("worker", "--drain")
        cli("show", photo_id)
        say("6. A signed URL for the thumbnail, fetched over HTTP")
        url = cli_json("url", photo_id, "--variant", "thumb")["url"]
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read()
            thumb = Image.open(BytesIO(body))
            print(f"GET {url.split('?')[0]}?token=... -> {resp.status}, "
                  f"{resp.headers['Content-Type']}, {len(body)} bytes, {thumb.size[0]}x"
                  f"{thumb.size[1]} {thumb.format}")
        tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
        try:
            urllib.request.urlopen(tampered, timeout=10)
            raise SystemExit("a tampered URL was served")
        except urllib.error.HTTPError as exc:
            print(f"GET with a tampered token -> {exc.code} (refused)")
    finally:
        server.terminate()
        server.wait(timeout=10)

    say("7. Attach the photo to a user, then detach it: the asset is purged")
    cli("attach", photo_id, "user:42", "avatar")
    cli("detach", "user:42", "avatar")
    cli("worker", "--drain")
    gone = cli("show", photo_id, check=False)
    assert gone.returncode != 0, "the purged asset is still there"
    media = HERE / "rindle-media"
    leftovers = [p for p in media.rglob("*") if p.is_file() and photo_id in str(p)]
    print(f"objects left in storage for {photo_id}: {len(leftovers)}")
    assert not leftovers

    say("8. Health")
    health()


def direct_upload(path: Path, port: int) -> None:
    say("4. A direct upload: presigned PUT straight to storage, then verify")
    sys.path.insert(0, str(HERE))
    from rindle import Rindle

    app = Rindle.from_config(HERE / "rindle.toml")
    print(">>> session = app.initiate_upload('photo', filename='portrait.png')")
    session = app.initiate_upload("photo", filename=path.name, byte_size=path.stat().st_size)
    print(">>> request = app.sign_upload(session.id)")
    request = app.sign_upload(session.id)
    data = path.read_bytes()
    put = urllib.request.Request(request.url, data=data, method="PUT",
                                 headers={**request.headers, "Content-Type": "image/png"})
    with urllib.request.urlopen(put, timeout=10) as resp:
        print(f"PUT {request.url.split('?')[0]}?token=... ({len(data)} bytes) -> {resp.status}")
    print(">>> asset = app.verify_upload(session.id)")
    asset = app.verify_upload(session.id)
    print(f"asset {asset.id} is {asset.state}; promotion is queued")
    app.close()


def health() -> None:
    for verb in ("doctor", "runtime-status"):
        if subprocess.run([RINDLE, verb, "--help"], capture_output=True).returncode == 0:
            return  # the real verbs run next, from demo.sh
    sys.path.insert(0, str(HERE))
    from sqlalchemy import func, select

    from rindle import Rindle
    from rindle.domain.models import Asset, Job, Variant

    app = Rindle.from_config(HERE / "rindle.toml")
    with app.db.sessionmaker() as s:
        assets = dict(s.execute(select(Asset.state, func.count()).group_by(Asset.state)).all())
        variants = dict(s.execute(select(Variant.state, func.count())
                                  .group_by(Variant.state)).all())
        jobs = dict(s.execute(select(Job.state, func.count()).group_by(Job.state)).all())
    print(f"database  {app.db.redacted_url} at {app.db.current_revision()}  OK")
    print(f"assets    {assets}")
    print(f"variants  {variants}")
    print(f"jobs      {jobs}")
    waiting = jobs.get("available", 0) + jobs.get("retryable", 0)
    print(f"queue     {'OK, empty' if not waiting else f'{waiting} waiting'}")
    app.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    shutil.rmtree(HERE / "samples", ignore_errors=True)
    main()
