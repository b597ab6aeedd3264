"""Debian's nginx in front of rindle's delivery app, configured from guides/production.md.

:func:`guide_server_block` reads the ``nginx`` block of the guide (the one a reader copies);
:class:`NginxFront` fills in the loopback ports and the storage root, wraps it in a
complete ``nginx.conf`` (``daemon off``, pid, logs and temp files under a temp folder) and
runs ``/usr/sbin/nginx`` until closed. Used by tests/security/test_accel_redirect.py and by
the guide's own doc test.
"""

from __future__ import annotations

import contextlib
import getpass
import re
import subprocess
from pathlib import Path
from types import TracebackType

from rindle.testing.servers import free_port, serving

NGINX = Path("/usr/sbin/nginx")
GUIDE = Path(__file__).resolve().parents[1] / "guides" / "production.md"
#: What the guide's block names, replaced for a run on loopback.
GUIDE_LISTEN = "listen 80;"
GUIDE_UPSTREAM = "http://127.0.0.1:8000"
GUIDE_ROOT = "/srv/rindle/media/"

_BLOCK = re.compile(r"```nginx\n(.*?)```", re.S)


def guide_server_block(guide: Path = GUIDE) -> str:
    """The one ``nginx`` code block of ``guide``, as written."""
    blocks = _BLOCK.findall(guide.read_text(encoding="utf-8"))
    assert len(blocks) == 1, f"{guide.name} must hold exactly one nginx block, not {len(blocks)}"
    return str(blocks[0])


def render(block: str, *, port: int, upstream_port: int, root: Path) -> str:
    """``block`` listening on 127.0.0.1:``port``, proxying to ``upstream_port`` and
    aliasing ``root``; each placeholder must occur (a guide edit cannot slip past)."""
    for placeholder in (GUIDE_LISTEN, GUIDE_UPSTREAM, GUIDE_ROOT):
        assert placeholder in block, f"the guide's nginx block lost {placeholder!r}"
    return (block.replace(GUIDE_LISTEN, f"listen 127.0.0.1:{port};")
                 .replace(GUIDE_UPSTREAM, f"http://127.0.0.1:{upstream_port}")
                 .replace(GUIDE_ROOT, f"{root.resolve()}/"))


def nginx_conf(server: str, work: Path) -> str:
    """A complete configuration around ``server``, every writable path under ``work``; the
    workers run as the current user (pytest's temp folders are private to it)."""
    return f"""daemon off;
user {getpass.getuser()};
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    default_type application/octet-stream;
{server}
}}
"""


class NginxFront:
    """nginx on 127.0.0.1:``port`` in front of the delivery app on ``upstream_port``."""

    def __init__(self, work: Path, *, upstream_port: int, root: Path,
                 block: str | None = None) -> None:
        self.work = work
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        work.mkdir(parents=True, exist_ok=True)
        server = render(block if block is not None else guide_server_block(),
                        port=self.port, upstream_port=upstream_port, root=root)
        self.conf = work / "nginx.conf"
        self.conf.write_text(nginx_conf(server, work), encoding="utf-8")
        self._stack = contextlib.ExitStack()

    def check(self) -> None:
        """``nginx -t`` on the configuration: raises with nginx's own words if it is wrong."""
        proc = subprocess.run([str(NGINX), "-t", "-p", str(self.work), "-c", str(self.conf),
                               "-e", str(self.work / "error.log")],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise AssertionError(f"nginx -t refused the configuration:\n{proc.stderr}")

    def __enter__(self) -> NginxFront:
        self.check()
        self._stack.enter_context(serving(
            [str(NGINX), "-p", str(self.work), "-c", str(self.conf),
             "-e", str(self.work / "error.log")],
            ready_url=f"{self.base_url}/nginx-ready", name="nginx"))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.close()
