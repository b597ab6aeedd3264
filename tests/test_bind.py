"""``with app.bind(connection_or_session):``: rindle's writes ride in the host's transaction.

The host has its own engine (as a web app does) on the same database and its own table.
Each test checks what is in the database after the host commits or rolls back, and what
rindle did after the commit (telemetry, deleting a stored object), on SQLite and
PostgreSQL. The module shares one database per dialect (:mod:`tests.domain.attach_kit`):
each test counts only its own rows (its tag, its owner, its assets' jobs) and leaves no
job due.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from rindle import Rindle
from rindle.database import bound
from rindle.domain.models import Asset, Attachment, Job
from rindle.errors import NotFound, UsageError
from tests.domain import attach_kit
from tests.lifecycle.conftest import PROFILES, jpeg_bytes

module_db_url = attach_kit.module_db_url

notes_meta = MetaData()
notes = Table("host_notes", notes_meta, Column("id", Integer, primary_key=True),
              Column("text", String(50)))


def host_engine_for(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed)


@pytest.fixture
def host(module_db_url: str) -> Iterator[Engine]:
    """The host app's own engine on rindle's database, with a table of its own."""
    engine = host_engine_for(module_db_url)
    notes_meta.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def bapp(module_db_url: str, tmp_path: Path) -> Iterator[Rindle]:
    app = Rindle(database_url=module_db_url, secret_key="test-secret", profiles=PROFILES,
                 tmp_dir=str(tmp_path / "tmp"), load_entrypoints=False,
                 storages={"default": {"backend": "local", "root": str(tmp_path / "media")}})
    yield app
    app.close()


@pytest.fixture
def tag() -> str:
    """This test's own mark: its notes' text and its owners' id."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def events(bapp: Rindle) -> list[str]:
    seen: list[str] = []
    bapp.telemetry.attach(lambda name, measurements, metadata: seen.append(name))
    return seen


def count(app: Rindle, table: Any, *where: Any) -> int:
    with app.db.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def mine(app: Rindle, tag: str, *asset_ids: uuid.UUID) -> tuple[int, int, int, int]:
    """This test's rows: notes, attachments of its owners, its assets, their jobs."""
    ids = [str(a) for a in asset_ids]
    return (count(app, notes, notes.c.text == tag),
            count(app, Attachment, Attachment.owner_id == tag),
            count(app, Asset, Asset.id.in_(asset_ids)),
            count(app, Job, Job.args["asset_id"].as_string().in_(ids)))


def stored_files(app: Rindle) -> list[Path]:
    root: Path = app.storage().root  # type: ignore[attr-defined]
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def ready_asset(app: Rindle) -> uuid.UUID:
    asset = app.upload("photo", jpeg_bytes(), filename="a.jpg")
    app.jobs.drain()
    return asset.id


# --- a Connection ---------------------------------------------------------------------------

def test_connection_rollback_leaves_nothing(bapp: Rindle, host: Engine, tag: str,
                                            events: list[str]) -> None:
    with host.connect() as conn:
        conn.execute(notes.insert().values(text=tag))
        with bapp.bind(conn):
            asset = bapp.upload("photo", jpeg_bytes(), filename="a.jpg")
            assert bapp.get_asset(asset.id).state == "analyzing"  # visible inside
        if bapp.db.dialect_name == "postgresql":  # SQLite: the host holds the write lock
            assert mine(bapp, tag, asset.id) == (0, 0, 0, 0)  # others see nothing yet
        conn.rollback()
    assert mine(bapp, tag, asset.id) == (0, 0, 0, 0)
    assert stored_files(bapp) == []  # the stored original is deleted on the host's rollback
    assert "rindle.upload.stop" not in events


def test_connection_commit_keeps_both_and_runs_effects_after_it(
        bapp: Rindle, host: Engine, tag: str, events: list[str]) -> None:
    with host.connect() as conn:
        conn.execute(notes.insert().values(text=tag))
        with bapp.bind(conn):
            asset = bapp.upload("photo", jpeg_bytes(), filename="a.jpg")
        assert "rindle.upload.stop" not in events  # waits for the host's commit
        conn.commit()
        assert "rindle.upload.stop" in events
    assert mine(bapp, tag, asset.id) == (1, 0, 1, 1)  # the note, the asset, its promotion
    assert len(stored_files(bapp)) == 1
    assert bapp.jobs.drain() >= 1 and bapp.get_asset(asset.id).state == "ready"


def test_engine_begin_block_commits_on_exit(bapp: Rindle, host: Engine, tag: str) -> None:
    aid = ready_asset(bapp)
    with host.begin() as conn:
        with bapp.bind(conn):
            bapp.attach(aid, ("user", tag), "avatar")
        conn.execute(notes.insert().values(text=tag))
    assert mine(bapp, tag)[:2] == (1, 1)


# --- a Session ------------------------------------------------------------------------------

def detach_in_host_transaction(bapp: Rindle, host: Engine, tag: str, events: list[str], *,
                               commit: bool) -> tuple[uuid.UUID, int]:
    """Attach a ready asset, then detach it inside a host Session (writing a note of its
    own too) and commit or roll back; the asset and how many jobs it had before."""
    aid = ready_asset(bapp)
    bapp.attach(aid, ("user", tag), "avatar")
    jobs_before = mine(bapp, tag, aid)[3]
    events.clear()
    with Session(host) as session:
        session.execute(notes.insert().values(text=tag))
        with bapp.bind(session):
            assert bapp.detach(("user", tag), "avatar") is True  # -> deleted + purge job
            assert bapp.get_asset(aid).state == "deleted"  # seen inside the transaction
        assert events == []  # nothing is said before the host's commit
        if commit:
            session.commit()
        else:
            session.rollback()
    return aid, jobs_before


def test_session_rollback_undoes_attach_detach_state_change_and_job(
        bapp: Rindle, host: Engine, tag: str, events: list[str]) -> None:
    aid, jobs_before = detach_in_host_transaction(bapp, host, tag, events, commit=False)
    assert bapp.get_asset(aid).state == "ready"
    assert mine(bapp, tag, aid) == (0, 1, 1, jobs_before)
    assert events == []  # no state_change event for a state the database never held


def test_session_commit_keeps_the_state_change_and_emits_after_it(
        bapp: Rindle, host: Engine, tag: str, events: list[str]) -> None:
    aid, jobs_before = detach_in_host_transaction(bapp, host, tag, events, commit=True)
    assert events == ["rindle.asset.state_change"]
    assert bapp.get_asset(aid).state == "deleted"
    assert mine(bapp, tag, aid) == (1, 0, 1, jobs_before + 1)  # + the purge
    bapp.jobs.drain()  # leave no job due for the module's other tests


def test_a_session_closed_without_commit_rolls_back(bapp: Rindle, host: Engine,
                                                   tag: str) -> None:
    with Session(host) as session, bapp.bind(session):
        asset = bapp.upload("photo", jpeg_bytes(), filename="a.jpg")
    assert mine(bapp, tag, asset.id) == (0, 0, 0, 0)
    assert stored_files(bapp) == []


def test_a_failing_rindle_call_rolls_back_only_its_savepoint(bapp: Rindle, host: Engine,
                                                            tag: str) -> None:
    aid = ready_asset(bapp)
    with Session(host) as session:
        session.execute(notes.insert().values(text=tag))
        with bapp.bind(session):
            with pytest.raises(NotFound):
                bapp.attach(uuid.uuid4(), ("user", tag), "avatar")
            bapp.attach(aid, ("user", tag), "avatar")
        session.commit()
    assert mine(bapp, tag)[:2] == (1, 1)


def test_after_the_host_commits_inside_the_block_rindle_runs_on_its_own(
        bapp: Rindle, host: Engine, tag: str) -> None:
    aid = ready_asset(bapp)
    with Session(host) as session, bapp.bind(session) as binding:
        bapp.attach(aid, ("user", tag), "avatar")
        session.commit()
        assert binding.ended and bound(bapp.db) is None
        bapp.attach(aid, ("user", tag), "banner")  # its own transaction, committed now
        assert mine(bapp, tag)[1] == 2
        session.rollback()  # nothing of rindle's is in the host's transaction any more
    assert mine(bapp, tag)[1] == 2


# --- misuse -----------------------------------------------------------------------------------

def test_nested_bind_is_refused(bapp: Rindle, host: Engine) -> None:
    with host.connect() as conn, bapp.bind(conn):
        with pytest.raises(UsageError) as err, bapp.bind(conn):
            pass
        assert err.value.code == "bind_nested"
        assert "already active" in str(err.value)


def test_another_database_is_refused(bapp: Rindle, module_db_url: str,
                                     tmp_path: Path) -> None:
    other = (f"sqlite:///{tmp_path / 'other.db'}" if module_db_url.startswith("sqlite")
             else make_url(module_db_url).set(database="postgres").render_as_string(False))
    engine = host_engine_for(other)
    try:
        with engine.connect() as conn, pytest.raises(UsageError) as err, bapp.bind(conn):
            pass
    finally:
        engine.dispose()
    assert err.value.code == "bind_other_database"
    assert "same database" in str(err.value)
    assert "test-secret" not in str(err.value)


def test_bind_takes_only_a_connection_or_session(bapp: Rindle, host: Engine) -> None:
    with pytest.raises(UsageError) as err, bapp.bind(host):  # type: ignore[arg-type]
        pass
    assert err.value.code == "bind_not_connection"


def test_the_binding_belongs_to_one_thread(bapp: Rindle, host: Engine, tag: str) -> None:
    seen: dict[str, object] = {}

    def other_thread() -> None:
        seen["bound"] = bound(bapp.db)
        seen["attach"] = bapp.attach(aid, ("user", tag), "avatar").slot  # its own commit

    aid = ready_asset(bapp)
    assert not bapp.db.is_bound()
    with host.connect() as conn, bapp.bind(conn) as binding:
        assert bound(bapp.db) is binding and bapp.db.is_bound()
        if bapp.db.dialect_name == "postgresql":  # SQLite: the host holds the write lock
            worker = threading.Thread(target=other_thread)
            worker.start()
            worker.join(timeout=60)
            assert seen == {"bound": None, "attach": "avatar"}
        else:
            worker = threading.Thread(target=lambda: seen.update(bound=bound(bapp.db)))
            worker.start()
            worker.join(timeout=60)
            assert seen == {"bound": None}
        conn.rollback()
        assert not bapp.db.is_bound()  # the host's transaction ended
    assert bound(bapp.db) is None


@pytest.mark.parametrize("commit", [False, True])
def test_cancelling_a_job_rides_in_the_hosts_transaction(bapp: Rindle, host: Engine,
                                                         commit: bool) -> None:
    asset = bapp.upload("photo", jpeg_bytes(), filename="a.jpg")  # enqueues its promotion
    with bapp.db.engine.connect() as conn:
        job_id = conn.scalar(select(Job.id).where(Job.args["asset_id"].as_string()
                                                  == str(asset.id)))
    assert job_id is not None
    with host.connect() as conn:
        with bapp.bind(conn):
            assert bapp.jobs.cancel(job_id) is True
        conn.commit() if commit else conn.rollback()
    with bapp.db.engine.connect() as conn:
        state = conn.scalar(select(Job.state).where(Job.id == job_id))
    assert state == ("cancelled" if commit else "available")
    bapp.jobs.cancel(job_id)  # leave no job due for the module's other tests


# --- every service's after-commit work waits for the host ------------------------------------

def bound_direct_uploads(bapp: Rindle, host: Engine, tag: str, events: list[str], *,
                         commit: bool) -> tuple[uuid.UUID, Path, list[Any]]:
    """Inside one host Session: a direct upload initiated, its bytes stored (what the
    client's presigned PUT does), signed, verified and attached over an asset already in
    the slot (whose purge that queues), and a second session aborted (its staged object is
    deleted after commit). Commits or rolls back; the replaced asset, the aborted session's
    object and the jobs the executor was told of."""
    old = ready_asset(bapp)
    bapp.attach(old, ("user", tag), "avatar")
    events.clear()
    published: list[Any] = []
    bapp.jobs.publisher = published.extend
    data = jpeg_bytes()
    with Session(host) as session:
        with bapp.bind(session):
            first = bapp.initiate_upload("photo", filename="a.jpg", byte_size=len(data))
            bapp.storage().put(first.upload_key, io.BytesIO(data))
            bapp.sign_upload(first.id)
            asset = bapp.verify_upload(first.id)
            bapp.attach(asset.id, ("user", tag), "avatar")
            second = bapp.initiate_upload("photo", filename="b.jpg")
            bapp.storage().put(second.upload_key, io.BytesIO(data))
            bapp.abort_upload(second.id)
        aborted = bapp.storage().root / second.upload_key  # type: ignore[attr-defined]
        # nothing before the host's outcome
        assert (events, published, aborted.is_file()) == ([], [], True)
        if commit:
            session.commit()
        else:
            session.rollback()
    return old, aborted, published


UPLOAD_EVENTS = ("rindle.upload.start", "rindle.upload.stop", "rindle.upload_session.state_change",
                 "rindle.asset.state_change")


def test_bound_direct_upload_rolled_back_has_no_effect(
        bapp: Rindle, host: Engine, tag: str, events: list[str]) -> None:
    old, aborted, published = bound_direct_uploads(bapp, host, tag, events, commit=False)
    assert [e for e in events if e in UPLOAD_EVENTS] == []
    assert published == []  # no promotion, no purge told to the executor
    assert aborted.is_file()  # the aborted session's object is not deleted
    assert bapp.attachment(("user", tag), "avatar").id == old  # type: ignore[union-attr]
    assert bapp.get_asset(old).state == "ready"


def test_bound_direct_upload_committed_runs_each_effect_once(
        bapp: Rindle, host: Engine, tag: str, events: list[str]) -> None:
    old, aborted, published = bound_direct_uploads(bapp, host, tag, events, commit=True)
    assert events.count("rindle.upload.start") == 2
    assert events.count("rindle.upload.stop") == 1
    assert sorted(ref.queue for ref in published) == ["promote", "purge"]
    assert not aborted.exists()  # deleted once the host committed
    assert bapp.get_asset(old).state == "deleted"
    bapp.jobs.publisher = None
    bapp.jobs.drain()  # leave no job due for the module's other tests


@pytest.mark.parametrize("commit", [False, True])
def test_bound_ops_verbs_report_after_the_hosts_commit(
        bapp: Rindle, host: Engine, events: list[str], commit: bool) -> None:
    asset = bapp.upload("photo", jpeg_bytes(), filename="a.jpg")
    bapp.jobs.drain(["promote"])  # its variant jobs wait
    events.clear()
    with Session(host) as session:
        with bapp.bind(session):
            assert bapp.cancel_processing(asset.id).variants != ()
            assert bapp.requeue_variants(asset.id).requeued != []
        said = [e for e in events if e in ("rindle.asset.processing_cancelled",
                                           "rindle.repair.stop")]
        assert said == []
        session.commit() if commit else session.rollback()
    said = [e for e in events if e in ("rindle.asset.processing_cancelled",
                                       "rindle.repair.stop")]
    assert said == (["rindle.asset.processing_cancelled", "rindle.repair.stop"]
                    if commit else [])
    bapp.jobs.drain()  # leave no job due for the module's other tests
    assert bapp.get_asset(asset.id).state == "ready"
