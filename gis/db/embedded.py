"""The embedded PostgreSQL + PostGIS cluster gridgov starts when no database URL is given.

The cluster listens on 127.0.0.1 only, on a free port remembered in the data directory. As root it runs as the
`postgres` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from gis.errors import SetupError

SERVER_SETTINGS = {
    # A local cluster for a city: more memory than the defaults, no JIT (it slows short map queries).
    "listen_addresses": "'127.0.0.1'",
    "shared_buffers": "'1GB'",
    "work_mem": "'64MB'",
    "maintenance_work_mem": "'512MB'",
    "max_wal_size": "'4GB'",
    "checkpoint_timeout": "'15min'",
    "max_connections": "200",
    "jit": "off",
    "fsync": "on",
    "log_min_messages": "warning",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Connections left in TIME_WAIT by a stopped server must not make its own port look taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class EmbeddedCluster:
    """A PostgreSQL cluster kept in `data_dir` (pgdata/, run/, port, postgres.log)."""

    data_dir: Path
    pg_bin: Path = Path("/usr/lib/postgresql/15/bin")
    db_name: str = "gridgov"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def port_file(self) -> Path:
        return self.data_dir / "port"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    @property
    def port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def url(self, db_name: str | None = None, driver: str = "postgresql") -> str:
        port = self.port
        if port is None:
            raise SetupError("the embedded cluster has not been started yet: run `gridgov db up`")
        return f"{driver}://postgres@127.0.0.1:{port}/{db_name or self.db_name}"

    # -- running the server binaries -------------------------------------------------------------------------

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        binary = self.pg_bin / args[0]
        if not binary.exists():
            raise SetupError(
                f"{binary} not found: install the Debian packages postgresql-15 and postgresql-15-postgis-3"
            )
        kwargs: dict = {}
        if os.geteuid() == 0:
            kwargs = {"user": "postgres", "group": "postgres", "extra_groups": []}
        return subprocess.run(
            [str(binary), *args[1:]], check=check, capture_output=True, text=True, cwd="/", **kwargs
        )

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.data_dir, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            # Every parent must be traversable by `postgres`.
            for parent in self.data_dir.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    raise SetupError(
                        f"{parent} is not searchable by the postgres user; set GRIDGOV_DATA_DIR elsewhere"
                    )

    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> None:
        self._prepare_dirs()
        if self.initialised():
            return
        self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-locale", "--no-sync")
        conf = self.pgdata / "postgresql.auto.conf"
        extra = "".join(f"{key} = {value}\n" for key, value in SERVER_SETTINGS.items())
        extra += f"unix_socket_directories = '{self.socket_dir}'\n"
        with conf.open("a") as handle:
            handle.write(extra)

    def running(self) -> bool:
        if not self.initialised():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.pgdata), check=False).returncode == 0

    def start(self) -> str:
        """Initialise if needed, start if stopped, make sure the database and PostGIS exist; return the URL."""
        self.init()
        self.start_server()
        self.ensure_database(self.db_name)
        return self.url()

    def start_server(self) -> None:
        """Start the server when it is stopped, on its remembered port (a free one when that is taken)."""
        if not self.running():
            port = self.port
            if port is None or not _port_is_free(port):
                port = _free_port()
            self.port_file.write_text(f"{port}\n")
            result = self._run(
                "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.pgdata), "-l", str(self.log_file),
                "-o", f"-p {port}", check=False,
            )
            if result.returncode != 0:
                log_tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
                raise SetupError(f"PostgreSQL did not start: {result.stderr.strip()}\n{log_tail}")

    def ensure_database(self, name: str, template: str | None = None) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                clause = f" TEMPLATE {template}" if template else ""
                conn.execute(f'CREATE DATABASE "{name}"{clause}')
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._run("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self.pgdata))

    def destroy(self) -> None:
        # The data is about to be deleted: no point in the shutdown checkpoint.
        self.stop(mode="immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.2)
        raise SetupError("the embedded cluster did not become ready")
