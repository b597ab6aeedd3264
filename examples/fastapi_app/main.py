"""``uvicorn examples.fastapi_app.main:api``: the example on the rindle.toml of the current
folder (its local storage's ``base_url`` pointing at ``http://127.0.0.1:8000/rindle``)."""

from __future__ import annotations

from pathlib import Path

from examples.fastapi_app.app import Photo, Photos, create_app
from rindle import Rindle

rindle = Rindle.from_config(profiles=[Photo])
api = create_app(rindle, Photos(Path("photos.db")))
