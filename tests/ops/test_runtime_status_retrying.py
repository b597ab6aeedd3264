"""runtime-status shows jobs that failed and wait for another attempt, with their error:
a worker built without a profile the web app uses (``rindle worker`` on a rindle.toml that
does not list it) otherwise looked like "nothing to do" (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from sqlalchemy import update

from rindle import Profile
from rindle.domain.models import Job, utcnow
from tests.apps import MakeApp


class Photo(Profile):
    name = "photo"
    allow_mime = ("image/png",)


NEXT = ("fix what the errors under `retrying` name (a setting, a missing profile): the worker "
        "retries those jobs until they run out of attempts")


def test_a_job_failing_on_a_missing_profile_is_shown_with_its_error(
        make_app: MakeApp, tmp_path: Path) -> None:
    web = make_app(profiles=[Photo])
    web.migrate()
    Image.new("RGB", (4, 4), "red").save(tmp_path / "a.png")
    web.upload("photo", tmp_path / "a.png")
    quiet = web.ops.runtime_status()
    assert (quiet.retrying_job_count, quiet.retrying_jobs) == (0, [])
    assert NEXT not in quiet.recommendations and "retrying  0 job(s)" in quiet.render()

    worker = make_app()  # the same database, but no profiles
    assert worker.jobs.drain() == 1
    report = worker.ops.runtime_status()
    assert report.retrying_job_count == 1
    [job] = report.retrying_jobs
    expected = ("UnknownProfile: unknown profile 'photo'; configured profiles: none. Add it to "
                "`profiles` in rindle.toml or pass it to Rindle(profiles=[...]).")
    assert {k: job[k] for k in ("queue", "kind", "attempt", "max_attempts", "error")} == {
        "queue": "promote", "kind": "rindle.promote", "attempt": 1, "max_attempts": 3,
        "error": expected}
    assert report.recommendations == [NEXT]
    text = report.render()
    assert "retrying  1 job(s) failed and wait to run again\n" in text
    assert f"          rindle.promote (promote) attempt 1/3: {expected}\n" in text
    assert report.to_dict()["retrying_jobs"] == [job]


def test_a_job_that_gave_up_is_listed_with_its_error(make_app: MakeApp, tmp_path: Path) -> None:
    web = make_app(profiles=[Photo])
    Image.new("RGB", (4, 4), "red").save(tmp_path / "a.png")
    web.upload("photo", tmp_path / "a.png")
    worker = make_app()  # no profiles: the promotion fails on every attempt
    for _attempt in range(3):
        with worker.db.transaction() as s:  # due now instead of after the backoff
            s.execute(update(Job).where(Job.state == "retryable").values(run_at=utcnow()))
        assert worker.jobs.drain() == 1
    report = worker.ops.runtime_status()
    assert (report.retrying_job_count, report.discarded_jobs) == (0, 1)
    [job] = report.discarded
    assert (job["kind"], job["attempt"], job["max_attempts"]) == ("rindle.promote", 3, 3)
    assert job["error"].startswith("UnknownProfile: unknown profile 'photo'")
    assert f"discarded 1 job(s) gave up\n          rindle.promote (promote) attempt 3/3: " \
           f"{job['error']}\n" in report.render()
