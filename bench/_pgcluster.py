"""A throwaway PostgreSQL server for the fault test and the cluster demonstration (private helper of bench/).

Each ``PgCluster`` is a fresh ``initdb`` in a temporary folder, listening on 127.0.0.1 on a port of its own
with trust authentication, started and stopped with the machine's own binaries
(``/usr/lib/postgresql/<v>/bin``, or ``MOTCUA_PG_BIN``).  As root the server runs as the ``postgres`` OS user
(PostgreSQL refuses root) and the folder belongs to it.  Nothing here touches any other PostgreSQL of the
machine: these scripts restart and kill *their* server, never a shared one."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg


def pg_bin() -> Path:
    """The folder of initdb, pg_ctl and pg_basebackup: MOTCUA_PG_BIN, else the newest Debian install."""
    if os.environ.get("MOTCUA_PG_BIN"):
        return Path(os.environ["MOTCUA_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise SystemExit(
            "no PostgreSQL server binaries (Debian: apt-get install postgresql); or set MOTCUA_PG_BIN"
        )
    return Path(found[-1]).parent


def _as_owner(argv: list[str]) -> list[str]:
    """Run ``argv`` as the postgres OS user when we are root (PostgreSQL will not run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _chown_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


@dataclass
class PgCluster:
    """One private PostgreSQL server: ``create`` (initdb) or ``standby_of`` (pg_basebackup -R), ``start``.

    Attributes:
        port: the TCP port on 127.0.0.1.
        root: the temporary folder holding the data directory, the socket and the log.
    """

    port: int
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="motcua-pg-")))

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "motcua") -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database} connect_timeout=5"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(_as_owner(list(argv)), check=check, capture_output=True, text=True)

    def create(self, *, replication: bool = False) -> PgCluster:
        """initdb with trust authentication on 127.0.0.1 (and replication connections when asked)."""
        _chown_to_postgres(self.root)
        self._run(
            str(pg_bin() / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions",
        )  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "200",
            "shared_buffers": "128MB",
            "logging_collector": "off",
        }
        if replication:
            settings.update(wal_level="replica", max_wal_senders="5", hot_standby="on", wal_keep_size="256MB")
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n")
        return self

    @classmethod
    def standby_of(cls, primary: PgCluster, port: int) -> PgCluster:
        """A streaming standby of a running ``primary``: pg_basebackup -R (standby.signal, conninfo)."""
        standby = cls(port)
        _chown_to_postgres(standby.root)
        try:
            standby._run(
                str(pg_bin() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
            )  # fmt: skip
        except subprocess.CalledProcessError:
            shutil.rmtree(standby.root, ignore_errors=True)
            raise
        with (standby.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"port = {port}\nunix_socket_directories = '{standby.root}'\n")
        return standby

    def start(self) -> None:
        """pg_ctl start, waiting until it accepts connections.

        Raises:
            SystemExit: it did not start (the end of its log says why, e.g. the port is taken).
        """
        try:
            self._run(
                str(pg_bin() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"
            )
        except subprocess.CalledProcessError as exc:
            tail = self.log.read_text(errors="replace").splitlines()[-4:] if self.log.exists() else []
            raise SystemExit(f"PostgreSQL on port {self.port} did not start:\n" + "\n".join(tail)) from exc

    def stop(self, mode: str = "fast") -> None:
        self._run(str(pg_bin() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "immediate") -> float:
        """``pg_ctl restart -m MODE``; returns the seconds until it accepts connections again."""
        began = time.monotonic()
        self._run(
            str(pg_bin() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "-t", "60",
            "restart",
        )  # fmt: skip
        return time.monotonic() - began

    def promote(self) -> None:
        self._run(str(pg_bin() / "pg_ctl"), "-D", str(self.data), "-w", "promote")

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement in autocommit and return its rows (none for a statement without result)."""
        with psycopg.connect(self.dsn(database), autocommit=True) as conn:
            cursor = conn.execute(sql.encode())
            return list(cursor.fetchall()) if cursor.description else []

    def version(self) -> str:
        return str(self.execute("SHOW server_version")[0][0])

    def remove(self) -> None:
        """Stop the server (immediately) and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
