"""Hostile input to the Celery executor: forged or replayed ``rindle.run_job`` messages
touch nothing, and ``[jobs.executor_options]`` is checked key by key without ever echoing
a broker URL (it may hold a password)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Rig
from sqlalchemy import Table, select

from rindle import Rindle
from rindle.domain.models import Job
from rindle.errors import ConfigError
from rindle_celery import RUN_TASK, CeleryExecutor, celery_app

_T: Table = Job.__table__  # type: ignore[assignment]
SECRET = "hunter2-broker-password"
GOOD = {"broker_url": f"redis://:{SECRET}@127.0.0.1:6379/0"}


def snapshot(rig: Rig) -> list[tuple[Any, ...]]:
    with rig.app.db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(_T.c.id, _T.c.state, _T.c.attempt, _T.c.locked_by, _T.c.locked_until)
            .order_by(_T.c.id))]


def run_task(rig: Rig) -> Any:
    """The registered ``rindle.run_job`` task, called in this process as a worker calls it."""
    executor = rig.app.executor
    assert isinstance(executor, CeleryExecutor)
    return executor.celery.tasks[RUN_TASK]


@pytest.mark.parametrize("forged", ["not-a-uuid", "' OR 1=1; --", "", "0" * 1000,
                                    "{00000000-0000-0000-0000-00000000000g}"])
def test_a_message_whose_id_is_not_a_uuid_touches_nothing(
        make_rig: Callable[..., Rig], forged: str, caplog: pytest.LogCaptureFixture) -> None:
    rig = make_rig()
    rig.app.jobs.enqueue_now("test.insert", {"n": 1})
    before = snapshot(rig)
    assert run_task(rig)(forged) is None
    assert snapshot(rig) == before
    assert "ignored a rindle.run_job message whose id is not a UUID" in caplog.text
    assert forged not in caplog.text or forged == ""  # the forged text is not logged


def test_unknown_leased_and_final_ids_run_nothing(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    task = run_task(rig)
    held = rig.app.jobs.enqueue_now("test.insert", {"n": 1}).job_id
    later = rig.app.jobs.enqueue_now("test.insert", {"n": 2}, run_at=rig.app.jobs.clock()
                                     + dt.timedelta(hours=1)).job_id
    assert held is not None and later is not None
    assert rig.app.jobs.claim_by_id(held, "another-worker") is not None
    before = snapshot(rig)
    assert task(str(uuid.uuid4())) is None  # unknown
    assert task(str(held)) is None  # leased by a live worker: a duplicate message
    assert task(str(later)) is None  # not yet due: a message sent early
    assert snapshot(rig) == before


def test_options_are_checked_key_by_key() -> None:
    ok = CeleryExecutor(None, {**GOOD, "queue_prefix": "app.", "relay_interval": 0.1})
    assert ok.config["queue_prefix"] == "app." and ok.config["relay_interval"] == 0.1
    assert CeleryExecutor(None, {**GOOD, "relay_interval": 3600}).config[
        "relay_interval"] == 3600.0
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "broker_url must be a broker URL"),
        ({"broker_url": f"redis//:{SECRET}@h"}, "broker_url must be a broker URL"),
        ({"broker_url": 6379}, "broker_url must be a broker URL"),
        ({**GOOD, "result_backend": f"redis//:{SECRET}@h"}, "result_backend must be a URL"),
        ({**GOOD, "queue_prefix": "a b"}, "queue_prefix must be a string without spaces"),
        ({**GOOD, "queue_prefix": "r\u00e9."}, "queue_prefix must be a string without spaces"),
        ({**GOOD, "relay_interval": 0.099}, "relay_interval must be a number of seconds"),
        ({**GOOD, "relay_interval": 3600.5}, "relay_interval must be a number of seconds"),
        ({**GOOD, "relay_interval": True}, "relay_interval must be a number of seconds"),
        ({**GOOD, "relay_interval": "5"}, "relay_interval must be a number of seconds"),
        ({**GOOD, "broker_password": SECRET}, "unknown setting(s) broker_password"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigError) as err:
            CeleryExecutor(None, options)
        assert err.value.code == "config_error"
        assert message in str(err.value), (options, str(err.value))
        assert SECRET not in str(err.value)


def test_the_broker_url_is_never_shown(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    executor = rig.app.executor
    assert isinstance(executor, CeleryExecutor)
    assert rig.redis.url not in repr(executor)
    assert rig.redis.url not in repr(rig.app.settings) + repr(rig.app.settings.jobs)
    assert repr(executor) == f"<CeleryExecutor prefix={rig.prefix!r}>"


def test_celery_app_refuses_an_app_on_another_executor(make_app: Callable[..., Rindle]
                                                       ) -> None:
    with pytest.raises(ConfigError, match="executor is 'worker', not \"celery\""):
        celery_app(make_app())
