"""A tus server in its own process, for the restart test:
``python -m tests.web.tus_server_process DATABASE_URL MEDIA_ROOT TMP_DIR PORT``."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("RINDLE_DISABLE_PLUGIN_AUTOLOAD", "1")

from rindle import Rindle
from rindle.cli.serve import make_threading_server
from rindle.web import tus_wsgi
from tests.web.conftest import Other, Photo, header_actor


def main(database_url: str, root: str, tmp_dir: str, port: str) -> None:
    """Serve the tus server under ``/files`` on ``127.0.0.1:PORT`` until killed."""
    app = Rindle(database_url=database_url, secret_key="test-secret", tmp_dir=tmp_dir,
                 storages={"default": {"backend": "local", "root": root}},
                 profiles=[Photo, Other], load_entrypoints=False)
    server = make_threading_server(tus_wsgi(app, authorize=header_actor, mount="/files"),
                                   "127.0.0.1", int(port), quiet=True)
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:5])
