"""Hot standbys of the embedded cluster on PostgreSQL's own streaming replication (`gridgov db replica ...`).

Each replica is a base backup of the primary (`pg_basebackup -R`, a physical replication slot of its own) in
`<data root>/replicas/<name>/` with its own port, socket directory and log, started as a hot standby. The primary
needs `wal_level` of at least `replica`, a free WAL sender and a replication entry in `pg_hba.conf` for loopback;
what is missing is added (a changed `wal_level` or `max_wal_senders` restarts the primary, which gridgov owns).
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from gis.db.embedded import EmbeddedCluster, _free_port
from gis.errors import SetupError

REPLICAS_DIR = "replicas"
SLOT_PREFIX = "gridgov_"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
HBA_LINE = "host replication postgres 127.0.0.1/32 trust\n"

LAG_SQL = """
SELECT pg_is_in_recovery(),
       pg_last_wal_replay_lsn()::text,
       CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0.0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END
"""
"""On a standby: in recovery, the replayed WAL position, and seconds behind (0 when everything received is
replayed, else the age of the last replayed transaction)."""


@dataclass
class ReplicaCluster(EmbeddedCluster):
    """A hot standby kept in `data_dir` (`<primary data root>/replicas/<name>`); it is never initialised on its own."""

    name: str = "r1"

    @property
    def slot(self) -> str:
        """The physical replication slot the primary keeps for this replica."""
        return SLOT_PREFIX + self.name

    def init(self) -> None:
        """A replica's data directory comes from a base backup only."""
        if not self.initialised():
            raise SetupError(f"replica {self.name} has no data directory: run `gridgov db replica add`")

    def _prepare_dirs(self) -> None:
        # Under the primary's data root, which is the postgres user's already (its parents were checked then).
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.data_dir.parent, self.data_dir, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)

    def start(self) -> str:
        """Start the standby if stopped (no database is created: it is read-only) and return its URL."""
        self.init()
        self.start_server()
        return self.url()


def replicas_root(primary: EmbeddedCluster) -> Path:
    """Where the replicas of `primary` keep their data directories."""
    return primary.data_dir / REPLICAS_DIR


def replica(primary: EmbeddedCluster, name: str) -> ReplicaCluster:
    """The replica `name` of `primary` (whether or not it exists)."""
    if not _NAME.match(name):
        raise SetupError(f"replica name {name!r}: lower-case letters, digits and _ only, starting with a letter")
    return ReplicaCluster(data_dir=replicas_root(primary) / name, pg_bin=primary.pg_bin, db_name=primary.db_name,
                          name=name)


def list_replicas(primary: EmbeddedCluster) -> list[ReplicaCluster]:
    """Every replica of `primary` that has a data directory, by name."""
    root = replicas_root(primary)
    if not root.is_dir():
        return []
    return [replica(primary, path.name) for path in sorted(root.iterdir())
            if _NAME.match(path.name) and (path / "pgdata" / "PG_VERSION").exists()]


def _next_name(primary: EmbeddedCluster) -> str:
    taken = {path.name for path in replicas_root(primary).iterdir()} if replicas_root(primary).is_dir() else set()
    number = 1
    while f"r{number}" in taken:
        number += 1
    return f"r{number}"


def _allows_loopback_replication(kind, databases, users, address, netmask) -> bool:
    if kind not in ("host", "hostnossl") or "replication" not in (databases or []):
        return False
    if not {"all", "postgres"} & set(users or []):
        return False
    if address in ("all", "samehost", "samenet"):
        return True
    try:
        network = ipaddress.ip_network(f"{address}/{netmask}", strict=False)
    except ValueError:
        return False
    return ipaddress.ip_address("127.0.0.1") in network


def prepare_primary(primary: EmbeddedCluster) -> list[str]:
    """Make `primary` able to stream to one more standby; return what was changed (empty when nothing was)."""
    changed: list[str] = []
    with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
        wal_level = conn.execute("SHOW wal_level").fetchone()[0]
        senders = int(conn.execute("SHOW max_wal_senders").fetchone()[0])
        used = conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0]
        if wal_level == "minimal":
            conn.execute("ALTER SYSTEM SET wal_level = 'replica'")
            changed.append("wal_level = replica")
        if senders < used + 2:
            conn.execute(f"ALTER SYSTEM SET max_wal_senders = {used + 10}")
            conn.execute(f"ALTER SYSTEM SET max_replication_slots = {used + 10}")
            changed.append(f"max_wal_senders = {used + 10}")
        rules = conn.execute("SELECT type, database, user_name, address, netmask FROM pg_hba_file_rules "
                             "WHERE error IS NULL ORDER BY line_number").fetchall()
        allowed = any(_allows_loopback_replication(*rule) for rule in rules)
        if not allowed:
            hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
            with hba.open("a") as handle:
                handle.write(HBA_LINE)
            conn.execute("SELECT pg_reload_conf()")
            changed.append("pg_hba: replication from 127.0.0.1")
    if any(not item.startswith("pg_hba") for item in changed):
        primary.stop()
        primary.start_server()
        primary.wait_ready()
    return changed


def add_replica(primary: EmbeddedCluster, name: str | None = None, timeout: float = 120.0) -> ReplicaCluster:
    """Base-backup the running `primary` into a new hot standby, start it and wait until it streams."""
    if not primary.running():
        raise SetupError("the embedded cluster is not running: run `gridgov db up` first")
    standby = replica(primary, name or _next_name(primary))
    if standby.initialised():
        raise SetupError(f"replica {standby.name} already exists in {standby.data_dir}")
    prepare_primary(primary)
    with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                     "WHERE slot_name = %s AND NOT active", (standby.slot,))
    standby._prepare_dirs()
    conninfo = f"host=127.0.0.1 port={primary.port} user=postgres application_name={standby.slot}"
    result = primary._run("pg_basebackup", "-D", str(standby.pgdata), "-d", conninfo, "-R", "-X", "stream",
                          "-C", "-S", standby.slot, "-c", "fast", "--no-sync", check=False)
    if result.returncode != 0:
        shutil.rmtree(standby.data_dir, ignore_errors=True)
        raise SetupError(f"pg_basebackup failed: {result.stderr.strip()}")
    with (standby.pgdata / "postgresql.auto.conf").open("a") as handle:
        handle.write(f"primary_conninfo = '{conninfo}'\n"
                     f"primary_slot_name = '{standby.slot}'\n"
                     f"unix_socket_directories = '{standby.socket_dir}'\n"
                     "hot_standby = on\n"
                     "hot_standby_feedback = on\n")
    standby.port_file.write_text(f"{_free_port()}\n")
    standby.start()
    wait_streaming(primary, standby, timeout)
    return standby


def wait_streaming(primary: EmbeddedCluster, standby: ReplicaCluster, timeout: float = 120.0) -> None:
    """Wait (bounded) until the primary streams to `standby`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
            row = conn.execute("SELECT state FROM pg_stat_replication WHERE application_name = %s",
                               (standby.slot,)).fetchone()
        if row and row[0] == "streaming":
            return
        time.sleep(0.2)
    raise SetupError(f"replica {standby.name} did not start streaming within {timeout:.0f} s")


def remove_replica(primary: EmbeddedCluster, name: str) -> None:
    """Stop replica `name`, delete its data directory and drop its replication slot on the primary."""
    standby = replica(primary, name)
    if not standby.data_dir.exists():
        raise SetupError(f"no replica named {name}")
    standby.destroy()
    if primary.running():
        with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                         "WHERE slot_name = %s", (standby.slot,))


def replica_lag(url: str, timeout: int = 2) -> dict:
    """What a standby at `url` says about itself: in recovery, replayed WAL position and seconds behind."""
    with psycopg.connect(url, autocommit=True, connect_timeout=timeout) as conn:
        recovering, replayed, seconds = conn.execute(LAG_SQL).fetchone()
    return {"in_recovery": recovering, "replay_lsn": replayed, "lag_seconds": round(seconds or 0.0, 3)}


def replica_status(primary: EmbeddedCluster) -> list[dict]:
    """Each replica of `primary`: name, port, running, streaming state (from `pg_stat_replication`), lag in bytes
    (the primary's WAL position minus the replica's replay position), in seconds (the walsender's `replay_lag`)
    and the replay position the replica reports."""
    streams: dict[str, tuple] = {}
    if primary.running():
        with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
            for row in conn.execute(
                "SELECT s.slot_name, r.state, pg_wal_lsn_diff(pg_current_wal_lsn(), "
                "coalesce(r.replay_lsn, s.restart_lsn))::bigint, extract(epoch FROM r.replay_lag)::float8 "
                "FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid "
                "WHERE starts_with(s.slot_name, %s)", (SLOT_PREFIX,)):
                streams[row[0]] = row[1:]
    answers = []
    for standby in list_replicas(primary):
        running = standby.running()
        state, lag_bytes, replay_lag = streams.get(standby.slot, (None, None, None))
        if replay_lag is None and state == "streaming" and lag_bytes == 0:
            replay_lag = 0.0  # caught up: the walsender reports no lag once the standby has replayed everything
        answer = {"name": standby.name, "port": standby.port, "running": running,
                  "state": state or ("disconnected" if running else "stopped"), "lag_bytes": lag_bytes,
                  "lag_seconds": None if replay_lag is None else round(replay_lag, 3), "replay_lsn": None,
                  "data_dir": str(standby.data_dir)}
        if running:
            try:
                answer["replay_lsn"] = replica_lag(standby.url("postgres"))["replay_lsn"]
            except psycopg.OperationalError:
                answer["state"] = "not answering"
        answers.append(answer)
    return answers
