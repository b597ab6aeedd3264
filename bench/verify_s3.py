"""``verify-storage`` against S3 (a moto server on loopback) vs one HEAD per object.

Seeds N objects (default 20,000): N/2 ready assets, each with its original and one ready
variant, rows bulk-inserted into SQLite and objects put from a thread pool; 1% of the
variant objects are never put, for verify to find gone. Then, against the same moto server:

* rindle: ``app.ops.verify_storage()`` (what ``rindle verify-storage`` runs), default
  concurrency 8; three runs, the found-missing variants put back to ``ready`` in between,
  the best run counts (every run is printed);
* baseline: one ``SELECT`` of every key, then ``head_object`` per key in a sequential loop,
  on the very boto3 client rindle's S3 storage built (same endpoint, signature, pool, retry
  settings); one run.

Both count present and missing objects; the counts must agree. The bar: rindle >= 10x the
baseline's objects/s. Also printed: the 1-minute load average before and after, and the
``ListObjectsV2`` requests and listed objects of each rindle run (counted on the client as
the server answered them): each object is listed about once per run.

    python bench/verify_s3.py [--objects 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REGION = "us-east-1"
CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}
PROFILE_SRC = '''
from rindle import Profile, variants

class Gallery(Profile):
    name = "gallery"
    variants = {"thumb": variants.Image(mode="fill", width=32, height=32, format="webp")}
'''
BAR = 10.0


def make_app(url: str, work: Path, endpoint: str, bucket: str):  # type: ignore[no-untyped-def]
    if str(work) not in sys.path:
        sys.path.insert(0, str(work))
    from bench_s3_profiles import Gallery  # type: ignore[import-not-found]

    from rindle import Rindle

    storage = {"backend": "s3", "bucket": bucket, "endpoint_url": endpoint, "region": REGION,
               **CREDENTIALS}
    return Rindle(database_url=url, secret_key="bench-secret-bench-secret", profiles=[Gallery],
                  storages={"default": storage}, tmp_dir=str(work / "tmp"),
                  load_entrypoints=True)


def seed(app: Any, n_objects: int) -> int:
    """Insert N/2 assets + N/2 variants and put their objects; returns how many are gone."""
    from sqlalchemy import insert

    from rindle.domain.models import Asset, Variant, utcnow
    from rindle.ids import uuid7

    storage = app.storage("default")
    now, digest = utcnow(), "0" * 64
    assets, variants, keys = [], [], []
    gone = 0
    for i in range(n_objects // 2):
        aid = uuid7()
        original, thumb = f"gallery/{aid}/o.jpg", f"gallery/{aid}/thumb-{digest}.webp"
        assets.append({"id": aid, "state": "ready", "storage_key": original,
                       "profile": "gallery", "kind": "image", "metadata": {},
                       "inserted_at": now, "updated_at": now})
        variants.append({"id": uuid7(), "asset_id": aid, "name": "thumb", "state": "ready",
                         "recipe_digest": digest, "storage_key": thumb, "output_kind": "image",
                         "inserted_at": now, "updated_at": now})
        keys.append(original)
        if i % 100 == 0:
            gone += 1  # this variant's object is never put
        else:
            keys.append(thumb)
    with app.db.engine.begin() as conn:
        for start in range(0, len(assets), 5000):
            conn.execute(insert(Asset.__table__), assets[start:start + 5000])
            conn.execute(insert(Variant.__table__), variants[start:start + 5000])
    client, bucket = storage.client, storage.bucket
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))
    return gone


def reset(app: Any) -> None:
    """Variants found gone are ``ready`` again (their objects stay absent)."""
    from sqlalchemy import text

    with app.db.engine.begin() as conn:
        conn.execute(text("UPDATE media_variants SET state = 'ready', error_reason = NULL "
                          "WHERE state = 'missing'"))


class Listings:
    """Counts the ``ListObjectsV2`` answers of a boto3 client and the objects they held."""

    def __init__(self, client: Any) -> None:
        self.requests = self.objects = 0
        client.meta.events.register("after-call.s3.ListObjectsV2", self._count)

    def _count(self, parsed: dict[str, Any], **_: Any) -> None:
        self.requests += 1
        self.objects += len(parsed.get("Contents", []))


def run_rindle(app: Any, listings: Listings) -> tuple[float, int, int, int, int]:
    """One ``verify-storage`` pass: (seconds, objects present, objects missing, listing
    requests, objects listed)."""
    listings.requests = listings.objects = 0
    started = time.perf_counter()
    report = app.ops.verify_storage()
    elapsed = time.perf_counter() - started
    if report.errors:
        raise RuntimeError(f"verify-storage reported {report.errors} errors")
    present = report.present + report.originals_checked - report.originals_missing
    return (elapsed, present, report.missing + report.originals_missing, listings.requests,
            listings.objects)


def run_naive(app: Any) -> tuple[float, int, int]:
    """Every key from one query, then a sequential HEAD per key on rindle's own client."""
    from botocore.exceptions import ClientError
    from sqlalchemy import text

    storage = app.storage("default")
    client, bucket = storage.client, storage.bucket
    started = time.perf_counter()
    with app.db.engine.connect() as conn:
        keys = [row[0] for row in conn.execute(text(
            "SELECT storage_key FROM media_variants WHERE state = 'ready' UNION ALL "
            "SELECT storage_key FROM media_assets WHERE state IN ('available', 'ready')"))]
    present = missing = 0
    for key in keys:
        try:
            client.head_object(Bucket=bucket, Key=key)
            present += 1
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey"}:
                raise
            missing += 1
    return time.perf_counter() - started, present, missing


def bench(n_objects: int, repeats: int = 3) -> int:
    """Seed, measure both contenders, print the figures; returns the exit status."""
    import boto3

    print(f"load average at start: {os.getloadavg()[0]:.2f}")

    from rindle.testing.servers import free_port, serving

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="rindle-bench-s3-") as tmp, serving(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            ready_url=f"{endpoint}/moto-api/reset", ready_data=b"", name="moto server"):
        work = Path(tmp)
        (work / "bench_s3_profiles.py").write_text(PROFILE_SRC)
        bucket = f"rindle-bench-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                     aws_access_key_id="testing", aws_secret_access_key="testing"
                     ).create_bucket(Bucket=bucket)
        app = make_app(f"sqlite:///{work / 'bench.db'}", work, endpoint, bucket)
        app.migrate()
        started = time.perf_counter()
        gone = seed(app, n_objects)
        total = n_objects // 2 * 2
        print(f"seeded {total} objects ({total // 2} assets: original + thumb; {gone} thumbs "
              f"never put) in {time.perf_counter() - started:.1f}s; moto server at {endpoint}, "
              "SQLite")
        runs = []
        listings = Listings(app.storage("default").client)
        for i in range(repeats):
            if i:
                reset(app)
            runs.append(run_rindle(app, listings))
        reset(app)
        naive = run_naive(app)
        app.close()
    best = min(run[0] for run in runs)
    print(f"{'contender':<30}{'seconds':>9}{'objects/s':>11}{'present':>9}{'missing':>9}")
    print(f"{'rindle verify-storage':<30}{best:>9.2f}{total / best:>11.0f}{runs[0][1]:>9}"
          f"{runs[0][2]:>9}   runs: {', '.join(f'{r[0]:.2f}' for r in runs)}")
    print(f"{'sequential head_object loop':<30}{naive[0]:>9.2f}{total / naive[0]:>11.0f}"
          f"{naive[1]:>9}{naive[2]:>9}")
    print("rindle listings per run: " + ", ".join(
        f"{run[4]} objects in {run[3]} requests" for run in runs))
    ratio = naive[0] / best
    failures = []
    if any(run[1:3] != (total - gone, gone) for run in runs) or naive[1:] != (total - gone, gone):
        failures.append(f"counts disagree (expected {total - gone} present, {gone} missing)")
    print(f"\nrindle / sequential HEAD: {ratio:.1f}x (bar >= {BAR:.0f}x)")
    if ratio < BAR:
        failures.append(f"rindle is below {BAR:.0f}x the sequential HEAD loop")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print("result: " + ("bar met" if not failures else "BAR MISSED: " + "; ".join(failures)))
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000, help="objects in the bucket")
    parser.add_argument("--repeats", type=int, default=3, help="rindle runs (best counts)")
    args = parser.parse_args()
    return bench(args.objects, args.repeats)


if __name__ == "__main__":
    sys.exit(main())
