"""A real ``redis-server`` on loopback for the whole run (broker and result backend), and
rigs that write a ``rindle.toml`` selecting the Celery executor and start ``celery worker``
processes on it."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

import rindle_celery.plugin
from rindle import Rindle
from rindle.plugins import make_plugin_manager
from rindle.testing.postgres import TempPostgres
from rindle_celery.testing import CeleryWorker, RedisServer, redis_server, start_celery_worker

HERE = Path(__file__).resolve().parent
_prefixes = itertools.count()


@pytest.fixture(scope="session")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One ``redis-server`` on a free loopback port (``--save ''``), stopped at the end."""
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Rig:
    """One test's settings file, rindle app and Celery workers (all on one database and a
    Celery queue prefix of its own, so tests never see one another's messages)."""

    def __init__(self, db_url: str, directory: Path, redis: RedisServer,
                 jobs: dict[str, Any]) -> None:
        self.dir = directory
        self.redis = redis
        self.prefix = f"t{os.getpid()}x{next(_prefixes)}."
        table = {"lease_seconds": 30, **jobs}
        lines = [f"database_url = {_toml(db_url)}", 'secret_key = "test-secret"',
                 f"tmp_dir = {_toml(directory / 'tmp')}", 'profiles = ["celerykit:Photo"]',
                 "", "[storages.default]", 'backend = "local"',
                 f"root = {_toml(directory / 'media')}", "", "[jobs]", 'executor = "celery"',
                 *(f"{k} = {_toml(v)}" for k, v in table.items()), "",
                 "[jobs.executor_options]", f"broker_url = {_toml(redis.url + '/0')}",
                 f"result_backend = {_toml(redis.url + '/1')}",
                 f"queue_prefix = {_toml(self.prefix)}", ""]
        self.config = directory / "rindle.toml"
        self.config.write_text("\n".join(lines))
        self.env = {"RINDLE_CONFIG": str(self.config), "RINDLE_DISABLE_PLUGIN_AUTOLOAD": "0",
                    "RINDLE_LOAD_PLUGINS": "celery"}
        pm = make_plugin_manager(load_entrypoints=False)
        pm.register(rindle_celery.plugin, name="celery")
        self.app = Rindle.from_config(self.config, plugin_manager=pm)
        import celerykit

        celerykit.register(self.app.jobs)
        self._stack = ExitStack()
        self._names = itertools.count()

    def workers(self, count: int = 1, *, pool: str = "solo", concurrency: int = 1,
                env: dict[str, str] | None = None) -> list[CeleryWorker]:
        """Start ``count`` Celery workers (``-P pool -c concurrency``, default ``-P solo``)
        together, with ``env`` added to the rig's; return once all are ready. Each is
        killed when the test ends (if still running)."""
        started = [start_celery_worker("celery_tasks", directory=self.dir,
                                       name=f"w{next(self._names)}",
                                       env={**self.env, **(env or {})}, pool=pool,
                                       concurrency=concurrency, pythonpath=[HERE])
                   for _ in range(count)]
        for worker in started:
            self._stack.callback(worker.kill)  # a throwaway worker: no warm shutdown
        for worker in started:
            worker.wait_ready()
        return started

    def close(self) -> None:
        self._stack.close()
        self.app.close()


@pytest.fixture
def pg_rig(pg_server: TempPostgres, tmp_path: Path, redis: RedisServer) -> Iterator[Rig]:
    """A :class:`Rig` on a fresh migrated PostgreSQL database only (the cases that need
    concurrent writers)."""
    name = f"celery_{os.getpid()}_{next(_prefixes)}"
    rig = Rig(pg_server.create_database(name, template="rindle_template"), tmp_path, redis,
              {})
    try:
        yield rig
    finally:
        rig.close()
        pg_server.drop_database(name)


@pytest.fixture
def make_rig(db_url: str, tmp_path: Path, redis: RedisServer) -> Iterator[Any]:
    """``make_rig(**jobs)``: a :class:`Rig` on the test database (once per dialect) whose
    ``[jobs]`` table adds ``jobs``."""
    rigs: list[Rig] = []

    def make(**jobs: Any) -> Rig:
        rig = Rig(db_url, tmp_path, redis, jobs)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()
