"""``rindle detach`` has no dry run (guides/operations.md says why); ``rindle show`` is its
preview: ``attachments_total`` 1 means detach purges (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rindle import Rindle
from tests.ops.test_ops_cli import invoke  # noqa: F401  (the fixture)


def test_show_previews_what_detach_purges(opsapp: Rindle, seed: Callable[..., Any],
                                          invoke: Callable[..., Any]) -> None:  # noqa: F811
    [asset] = seed(1)
    aid = str(asset.id)

    def run(*args: str) -> Any:
        result = invoke("--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    run("attach", aid, "user:1", "avatar")
    run("attach", aid, "team:2", "logo")
    assert run("show", aid)["attachments_total"] == 2
    assert run("detach", "user:1", "avatar") == {"detached": True}  # held elsewhere: kept
    shown = run("show", aid)
    assert (shown["state"], shown["attachments_total"]) == ("ready", 1)
    assert run("detach", "team:2", "logo") == {"detached": True}  # the last holder: purged
    assert opsapp.get_asset(aid).state == "deleted"
    assert run("detach", "team:2", "logo") == {"detached": False}  # nothing left to take
    assert "--live" not in invoke("detach", "--help").output
