"""A throwaway PostgreSQL cluster on a free loopback port, for tests and benchmarks.

Runs ``initdb`` and ``pg_ctl`` from the installed PostgreSQL binaries under a temporary
directory. As root the server runs as the ``postgres`` system user (PostgreSQL refuses
to run as root). Nothing is left behind after :meth:`TempPostgres.stop`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from rindle.testing.servers import free_port

__all__ = ["TempPostgres", "find_pg_bin"]


def find_pg_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    env = os.environ.get("RINDLE_PG_BIN")
    if env and (Path(env) / "initdb").exists():
        return Path(env)
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    return None


class TempPostgres:
    """A PostgreSQL server that lives as long as this object is started."""

    def __init__(self, bin_dir: Path | None = None, *, user: str = "rindle",
                 settings: Mapping[str, str] | None = None) -> None:
        """``settings``: extra server parameters (``{"shared_buffers": "1GB"}``), passed as
        ``-c name=value`` at start."""
        found = bin_dir or find_pg_bin()
        if found is None:
            raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) are not installed")
        self.bin_dir = found
        self.user = user
        self.settings = dict(settings or {})
        self.port = 0
        self.dir: Path | None = None
        self._as_root = hasattr(os, "geteuid") and os.geteuid() == 0

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> TempPostgres:
        """Create the cluster and start the server; returns self."""
        self.dir = Path(tempfile.mkdtemp(prefix="rindle-pg-"))
        os.chmod(self.dir, 0o755)
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        self.port = free_port()
        try:
            self._run(str(self.bin_dir / "initdb"), "-D", str(data), "-U", self.user,
                      "--auth=trust", "-E", "UTF8", "--no-sync")
            opts = (f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                    "-c max_connections=200")
            for name, value in self.settings.items():
                opts += f" -c {name}={value}"
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(data), "-o", opts,
                      "-l", str(self.dir / "server.log"), "-w", "start")
        except subprocess.CalledProcessError as exc:
            log = ""
            if (self.dir / "server.log").exists():
                log = (self.dir / "server.log").read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"PostgreSQL failed to start: {exc.stderr}\n{log}") from exc
        return self

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for ``database`` on this server."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create ``name`` (optionally from ``template``) and return its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as conn:
            tmpl = f" TEMPLATE {template}" if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{tmpl}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting anyone still using it."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server and delete its files."""
        if self.dir is None:
            return
        data = self.dir / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run(str(self.bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                          "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
