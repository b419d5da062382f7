"""Which database a read goes to: a hot standby in rotation, or the primary (read-your-writes, lag, failures).

`ReadRouter` holds one async engine per replica of GRIDGOV_DATABASE_READ_URLS and a background task that reads
each replica's replay position and lag once per `replica_poll_s` (one query per replica, not per request). A
replica that does not answer, is not in recovery, or lags beyond `replica_max_lag_bytes` / `replica_max_lag_s`
leaves the rotation; it rejoins at the first poll that finds it caught up.

Read-your-writes: a caller's write pins that caller's reads to the primary from the moment it starts; when it is
answered, the primary's `pg_current_wal_lsn()` (taken after the commit) is kept for the caller, and the caller's
reads go to a replica only once that replica's last polled `pg_last_wal_replay_lsn()` is at or past it. At most
`replica_recent_writers` callers are remembered; the positions of those forgotten fold into one floor that every
caller's replica must have replayed, so forgetting never serves a stale read.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gis.settings import DatabaseSettings, database_settings

log = logging.getLogger("gridgov.replicas")

POLL_SQL = text("SELECT pg_is_in_recovery(), pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint")
PRIMARY_LSN_SQL = text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")

PINNED = float("inf")
"""The position recorded for a caller whose write is still running: no replica can be far enough."""


def read_urls(settings: DatabaseSettings | None = None) -> list[str]:
    """The replicas' URLs of GRIDGOV_DATABASE_READ_URLS (comma-separated; blanks ignored)."""
    settings = settings or database_settings()
    return [part.strip() for part in settings.database_read_urls.split(",") if part.strip()]


def lsn_text(position: int | None) -> str | None:
    """A WAL position (bytes from 0/0) as PostgreSQL writes it (`16/B374D848`)."""
    if position is None:
        return None
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


@dataclass
class Replica:
    """One standby: its engine and what the last poll found."""

    url: str
    engine: AsyncEngine
    in_rotation: bool = False
    replay_lsn: int | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    reason: str | None = "尚未检查"
    polled: int = 0

    @property
    def address(self) -> str:
        """host:port/database, without credentials, for /health."""
        parsed = make_url(self.url)
        return f"{parsed.host}:{parsed.port or 5432}/{parsed.database}"

    def describe(self) -> dict:
        """What /health shows of this replica."""
        return {"address": self.address, "in_rotation": self.in_rotation, "lag_bytes": self.lag_bytes,
                "lag_seconds": self.lag_seconds, "replay_lsn": lsn_text(self.replay_lsn), "reason": self.reason}


@dataclass
class WritePositions:
    """The WAL position of each caller's last write, bounded; forgotten positions fold into `floor`."""

    bound: int
    positions: OrderedDict = field(default_factory=OrderedDict)
    running: dict = field(default_factory=dict)
    floor: int = 0

    def begin(self, key: str) -> None:
        """A write of `key` starts: its reads go to the primary until it is recorded."""
        self.running[key] = self.running.get(key, 0) + 1

    def end(self, key: str, position: int | None) -> None:
        """The write of `key` was answered at primary WAL position `position` (None: unknown, pin to the primary
        until a later write records one)."""
        count = self.running.get(key, 0) - 1
        if count > 0:
            self.running[key] = count
        else:
            self.running.pop(key, None)
        self.positions[key] = PINNED if position is None else max(position, self.positions.get(key, 0))
        self.positions.move_to_end(key)
        while len(self.positions) > self.bound:
            _, forgotten = self.positions.popitem(last=False)
            if forgotten != PINNED:
                self.floor = max(self.floor, forgotten)

    def needed(self, key: str | None) -> float:
        """The replay position a replica must have reached to serve `key`."""
        if key is not None and key in self.running:
            return PINNED
        own = self.positions.get(key, 0) if key is not None else 0
        return max(own, self.floor)

    def forget_replayed(self, replayed: int) -> None:
        """Drop the callers whose last write every replica in rotation has replayed (kept short, not only bounded)."""
        for key in [key for key, position in self.positions.items() if position <= replayed]:
            del self.positions[key]


class ReadRouter:
    """The replicas of one app, their rotation and the callers' write positions."""

    def __init__(self, primary: AsyncEngine, urls: list[str], settings: DatabaseSettings | None = None):
        self.settings = settings or database_settings()
        self.primary = primary
        self.replicas = [Replica(url=url, engine=replica_engine(url, self.settings)) for url in urls]
        self.writes = WritePositions(bound=self.settings.replica_recent_writers)
        self._turn = itertools.count()
        self._task: asyncio.Task | None = None
        self.primary_lsn: int | None = None
        keep = int(self.settings.replica_max_lag_s / max(self.settings.replica_poll_s, 0.05)) + 3
        self.history: deque[tuple[float, int]] = deque(maxlen=keep)
        """(monotonic time, primary WAL position) of the recent polls, for the replicas' lag in seconds."""

    def choose(self, key: str | None) -> Replica | None:
        """A replica in rotation that has replayed what `key` needs, in turn; None: read on the primary."""
        needed = self.writes.needed(key)
        ready = [replica for replica in self.replicas
                 if replica.in_rotation and replica.replay_lsn is not None and replica.replay_lsn >= needed]
        if not ready:
            return None
        return ready[next(self._turn) % len(ready)]

    def take_out(self, replica: Replica, reason: str) -> None:
        """Leave the rotation now (a read failed on it); the next good poll brings it back."""
        if replica.in_rotation:
            log.warning("replica %s leaves the rotation: %s", replica.address, reason)
        replica.in_rotation = False
        replica.reason = reason

    async def primary_position(self) -> int | None:
        """The primary's current WAL position, or None when it cannot be read."""
        try:
            async with self.primary.connect() as conn:
                return (await conn.execute(PRIMARY_LSN_SQL)).scalar_one()
        except Exception as error:  # noqa: BLE001 - a primary fault is answered by the request itself
            log.warning("could not read the primary's WAL position: %s", type(error).__name__)
            return None

    def seconds_behind(self, replay_lsn: int) -> float:
        """How long ago the primary was where the replica has replayed to: 0 when it has replayed the primary's
        last polled position, else the age of the newest polled primary position it has reached (or of the oldest
        remembered one, when it has reached none). Accurate to one poll interval; unlike the age of the last
        replayed transaction, it does not grow while the primary is idle."""
        now = time.monotonic()
        if not self.history or replay_lsn >= self.history[-1][1]:
            return 0.0
        reached = [seen for seen, position in self.history if position <= replay_lsn]
        since = reached[-1] if reached else self.history[0][0]
        return round(now - since, 3)

    async def poll_once(self) -> None:
        """Read the primary's position and every replica's replay position and lag; update the rotation."""
        self.primary_lsn = await self.primary_position()
        if self.primary_lsn is not None:
            self.history.append((time.monotonic(), self.primary_lsn))
        await asyncio.gather(*(self._poll(replica) for replica in self.replicas))
        replayed = [replica.replay_lsn for replica in self.replicas if replica.in_rotation]
        if replayed and len(replayed) == len(self.replicas):
            self.writes.forget_replayed(min(replayed))

    async def _poll(self, replica: Replica) -> None:
        replica.polled += 1
        try:
            async with replica.engine.connect() as conn:
                recovering, replay_lsn = (await conn.execute(POLL_SQL)).one()
        except Exception as error:  # noqa: BLE001 - any failure means the replica cannot serve
            self.take_out(replica, f"无法连接（{type(error).__name__}）")
            replica.lag_bytes = replica.lag_seconds = None
            await replica.engine.dispose()
            return
        if not recovering or replay_lsn is None:
            self.take_out(replica, "不是只读副本（未处于恢复状态）")
            return
        replica.replay_lsn = replay_lsn
        replica.lag_seconds = self.seconds_behind(replay_lsn)
        replica.lag_bytes = max(0, self.primary_lsn - replay_lsn) if self.primary_lsn is not None else None
        if replica.lag_bytes is not None and replica.lag_bytes > self.settings.replica_max_lag_bytes:
            self.take_out(replica, f"延迟 {replica.lag_bytes} 字节，超过上限 {self.settings.replica_max_lag_bytes}")
        elif replica.lag_seconds > self.settings.replica_max_lag_s:
            self.take_out(replica, f"延迟 {replica.lag_seconds} 秒，超过上限 {self.settings.replica_max_lag_s}")
        else:
            if not replica.in_rotation:
                log.info("replica %s joins the rotation", replica.address)
            replica.in_rotation, replica.reason = True, None

    async def start(self) -> None:
        """Poll once (so the rotation is known when the app starts serving), then keep polling in the background."""
        await self.poll_once()
        self._task = asyncio.create_task(self._poll_forever(), name="gridgov-replica-poll")

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.replica_poll_s)
            try:
                await self.poll_once()
            except Exception:  # noqa: BLE001 - the poll must outlive any one failure
                log.exception("replica poll failed")

    async def close(self) -> None:
        """Stop polling and close the replicas' pools."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for replica in self.replicas:
            await replica.engine.dispose()

    def describe(self) -> list[dict]:
        """Every replica as /health shows it."""
        return [replica.describe() for replica in self.replicas]


def replica_engine(url: str, settings: DatabaseSettings) -> AsyncEngine:
    """The asyncpg engine of one replica: the API's pool size and statement timeout, a short connect timeout so a
    replica that is away is found out at once."""
    return create_async_engine(
        make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False),
        pool_size=settings.pool_max,
        max_overflow=0,
        pool_timeout=10,
        connect_args={
            "timeout": 3,
            "server_settings": {"statement_timeout": str(settings.statement_timeout_ms), "jit": "off"},
        },
    )
