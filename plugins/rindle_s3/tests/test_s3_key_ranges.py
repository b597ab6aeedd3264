"""Key-ordered listing on S3 (``list_after``, ``StartAfter``) and how ``verify-storage``'s
``check_keys`` answers a batch of keys from key-range listings (moto over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from rindle.errors import StorageError
from rindle.ops import verify_storage as verify
from rindle.storage import Capability, ObjectInfo
from rindle_s3 import S3Storage


def put(storage: S3Storage, *keys: str) -> None:
    for key in keys:
        storage.client.put_object(Bucket=storage.bucket, Key=storage._key(key), Body=b"x")


def folders(count: int) -> list[str]:
    """``count`` asset folders, each with an original and a thumb (``p/0000/o``, ...)."""
    return [f"p/{i:04d}/{name}" for i in range(count) for name in ("o", "t")]


def test_s3_declares_list_after(s3: S3Storage) -> None:
    assert s3.supports(Capability.LIST_AFTER) and s3.supports(Capability.LIST)


def test_list_after_is_exclusive_ordered_and_under_the_prefix(s3: S3Storage) -> None:
    put(s3, "a/2", "a/10", "a/1", "a/3/x", "b/1", "a")
    assert [i.key for i in s3.list_after("a/", "a/1")] == ["a/10", "a/2", "a/3/x"]
    assert [i.key for i in s3.list_after("a/", "")] == ["a/1", "a/10", "a/2", "a/3/x"]
    assert [i.key for i in s3.list_after("a/", "a/3/x")] == []
    assert [i.key for i in s3.list_after("", "a/3")] == ["a/3/x", "b/1"]
    first = next(iter(s3.list_after("b/", "")))
    assert (first.key, first.size) == ("b/1", 1)


def test_list_after_strips_the_storage_prefix(s3_settings: dict[str, str]) -> None:
    settings = {k: v for k, v in s3_settings.items() if k != "backend"}
    inner = S3Storage(name="inner", prefix="tenant", **settings)
    outer = S3Storage(name="outer", **settings)
    put(inner, "k/1", "k/2")
    put(outer, "k/0")
    assert [i.key for i in inner.list_after("k/", "k/1")] == ["k/2"]
    assert [i.key for i in inner.list_after("", "")] == ["k/1", "k/2"]


def test_list_after_pages_past_1000_keys(s3: S3Storage) -> None:
    keys = [f"many/{i:05d}" for i in range(1003)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: put(s3, k), keys))
    asked: list[int] = []
    s3.client.meta.events.register("before-call.s3.ListObjectsV2",
                                   lambda params, **_: asked.append(params["query_string"]
                                                                    ["max-keys"]))
    assert [i.key for i in s3.list_after("many/", "many/00001")] == keys[2:]
    assert asked == [1000, 1000]
    # a limit caps what each request asks for: nothing past it is sent or parsed
    asked.clear()
    assert [i.key for i in s3.list_after("many/", "many/00001", limit=1001)] == keys[2:1003]
    assert asked == [1000, 1]
    asked.clear()
    assert [i.key for i in s3.list_after("many/", "many/00001", limit=1000)] == keys[2:1002]
    assert [i.key for i in s3.list_after("many/", "many/00999", limit=1)] == ["many/01000"]
    assert [i.key for i in s3.list_after("many/", "many/01000", limit=5)] == keys[1001:]
    assert [i.key for i in s3.list_after("many/", "many/01002", limit=5)] == []
    assert asked == [1000, 1, 5, 5]


class Counting(S3Storage):
    """An S3 storage that records each range listing and each key it HEADs."""

    listings: list[tuple[str, str, int | None]]
    headed: list[str]

    def list_after(self, prefix: str, start_after: str, *, limit: int | None = None
                   ) -> Iterator[ObjectInfo]:
        self.listings.append((prefix, start_after, limit))
        return super().list_after(prefix, start_after, limit=limit)

    def exists_many(self, keys: Sequence[str]) -> Sequence[bool | Exception]:
        self.headed.extend(keys)
        return super().exists_many(keys)


@pytest.fixture
def counting(s3_settings: dict[str, str]) -> Counting:
    settings = {k: v for k, v in s3_settings.items() if k != "backend"}
    storage = Counting(name="default", **settings)
    storage.listings, storage.headed = [], []
    return storage


def check(storage: S3Storage, keys: Sequence[str], workers: int = 8
          ) -> Sequence[bool | Exception]:
    with ThreadPoolExecutor(workers) as pool:
        return verify.check_keys(storage, keys, pool, workers=workers)


def test_a_batch_is_answered_by_range_listings_not_heads(counting: Counting) -> None:
    stored = folders(150)  # 300 objects
    gone = {"p/0007/t", "p/0100/o", "p/0149/t"}
    put(counting, *(k for k in stored if k not in gone))
    asked = [k for k in stored if k.endswith("/t")] + ["p/0100/o", "p/0003/o", "p/0003/o"]
    answers = check(counting, asked, workers=8)
    assert answers == [k not in gone for k in asked]
    # 152 distinct keys, fewer than RANGE_MIN_KEYS: one range, never a HEAD. Its first
    # request asks for one object per key (152) and reaches p/0076/o, passing 77 keys: at
    # that density the 75 left need 149 more, and the second request runs out of objects
    assert verify.RANGE_MIN_KEYS == 1000
    assert counting.listings == [("p/0", "p/0000/", 152), ("p/0", "p/0076/o", 149)]
    assert counting.headed == []


def test_a_large_batch_is_cut_into_ranges_listed_together(
        counting: Counting, monkeypatch: pytest.MonkeyPatch) -> None:
    stored = folders(150)
    put(counting, *stored)
    monkeypatch.setattr(verify, "RANGE_MIN_KEYS", 128)
    asked = [k for k in stored if k.endswith("/t")] + ["p/0100/o", "p/0003/o"]
    assert check(counting, asked, workers=8) == [True] * len(asked)
    # 152 keys over 8 workers, ranges of at least 128: one of 128 keys and one of 24,
    # each listed in two requests sized by the density its first request found
    assert sorted(counting.listings) == [("p/0", "p/0000/", 128), ("p/0", "p/0063/t", 125),
                                         ("p/01", "p/0126/", 24), ("p/01", "p/0137/t", 24)]
    assert counting.headed == []


def test_keys_scattered_past_the_budget_fall_back_to_heads(
        counting: Counting, monkeypatch: pytest.MonkeyPatch) -> None:
    put(counting, *folders(40))  # 80 objects, most never asked about
    asked = ["p/0000/o", "p/0010/o", "p/0039/t", "p/0039/zz"]
    # budget = 2 * 4 keys + 10 = 18 listed objects: p/0000/o .. p/0008/t
    monkeypatch.setattr(verify, "RANGE_SLACK", 10)
    assert check(counting, asked) == [True, True, True, False]
    assert counting.headed == ["p/0010/o", "p/0039/t", "p/0039/zz"]
    counting.headed.clear()
    # one object more of budget reaches no further key: the same three are HEADed
    monkeypatch.setattr(verify, "RANGE_SLACK", 11)
    assert check(counting, asked) == [True, True, True, False]
    assert counting.headed == ["p/0010/o", "p/0039/t", "p/0039/zz"]
    counting.headed.clear()
    # a budget that reaches p/0010/o (the 21st listed object) answers it from the listing
    monkeypatch.setattr(verify, "RANGE_SLACK", 13)
    assert check(counting, asked) == [True, True, True, False]
    assert counting.headed == ["p/0039/t", "p/0039/zz"]


def test_a_missing_bucket_makes_every_key_unknowable_never_gone(
        s3_settings: dict[str, str]) -> None:
    settings = {k: v for k, v in s3_settings.items() if k not in {"backend", "bucket"}}
    storage = S3Storage(name="default", bucket="rindle-no-such-bucket-here", **settings)
    answers = check(storage, ["p/0001/o", "p/0002/o"])
    assert len(answers) == 2
    assert all(isinstance(a, StorageError) for a in answers)


def test_an_empty_batch_asks_nothing(counting: Counting) -> None:
    assert check(counting, []) == []
    assert counting.listings == [] and counting.headed == []


def test_timestamps_parse_fast_for_iso_and_fall_back_for_http_dates() -> None:
    import datetime as dt

    from rindle_s3.storage import _timestamp

    utc = dt.UTC
    assert _timestamp("2026-12-05T02:53:50.000Z") == dt.datetime(2026, 12, 5, 2, 53, 50,
                                                                 tzinfo=utc)
    assert _timestamp("2026-12-05T02:53:50") == dt.datetime(2026, 12, 5, 2, 53, 50, tzinfo=utc)
    assert _timestamp("2026-12-05T03:53:50+01:00") == dt.datetime(2026, 12, 5, 2, 53, 50,
                                                                  tzinfo=utc)
    http_date = _timestamp("Sat, 05 Dec 2026 02:53:50 GMT")
    assert http_date == dt.datetime(2026, 12, 5, 2, 53, 50, tzinfo=utc)


def test_listing_and_head_agree_on_last_modified(s3: S3Storage) -> None:
    put(s3, "when/1")
    [listed] = list(s3.list_after("when/", ""))
    headed = s3.head("when/1")
    assert listed.last_modified is not None and headed.last_modified is not None
    assert listed.last_modified.utcoffset() is not None
    assert listed.last_modified.replace(microsecond=0) == headed.last_modified


@pytest.mark.parametrize("query", ["list-type=2&prefix=p/", "list-type=2&fetch-owner=true",
                                   "list-type=2&prefix=nothing-here/", "prefix=p/"])
def test_listing_entries_parse_to_what_botocore_parses(s3: S3Storage, query: str) -> None:
    """The direct path for listing entries gives botocore's own answer, field for field, on
    the server's real responses (ListObjectsV2 with and without owners, an empty one, and
    ListObjects); entries with an Owner take botocore's generic path."""
    from botocore.parsers import RestXMLParser

    from rindle.testing.servers import http
    from rindle_s3.storage import _ListingParser, _ParserFactory, _timestamp

    put(s3, "p/1", "p/2/x", "q/3")
    s3.client.put_object(Bucket=s3.bucket, Key="p/3", Body=b"xyz", StorageClass="STANDARD_IA")
    assert type(s3.client._endpoint._response_parser_factory) is _ParserFactory
    endpoint = str(s3.client.meta.endpoint_url)
    status, body, _ = http("GET", f"{endpoint}/{s3.bucket}?{query}")
    assert status == 200
    operation = "ListObjectsV2" if "list-type=2" in query else "ListObjects"
    shape = s3.client.meta.service_model.operation_model(operation).output_shape
    response = {"body": body, "headers": {}, "status_code": 200}
    stock = RestXMLParser(timestamp_parser=_timestamp).parse(response, shape)
    direct = _ListingParser(timestamp_parser=_timestamp).parse(response, shape)
    assert direct == stock
    entries = stock.get("Contents", [])
    assert len(entries) == (0 if "nothing" in query else 4 if "owner" in query else 3)
    for entry in entries:
        assert entry.get("ChecksumAlgorithm") == (["CRC32"] if operation == "ListObjectsV2"
                                                  else None)  # moto's V1 leaves it out
        assert entry["Size"] == (3 if entry["Key"] == "p/3" else 1)
        assert ("Owner" in entry) == ("owner" in query or operation == "ListObjects")
