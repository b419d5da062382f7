"""Servers for the benchmarks: gridgov and its peer tipg, each under uvicorn with one worker on loopback.

tipg lives in its own virtual environment (`.venv-peer`, made on first use) so its pinned dependencies never
touch gridgov's. Both serve the same database.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".venv-peer"
TIPG_REQUIREMENT = "tipg>=1.0"


def free_port() -> int:
    """A TCP port on the loopback interface that is free at the time of asking."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen

    def peak_memory_mb(self) -> float:
        """Peak resident memory of the server process (VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _start(name: str, python: Path, app: str, env: dict, ready_path: str, timeout: float = 60) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [str(python), "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
    )
    server = Server(name, f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited during start-up")
        try:
            if httpx.get(server.url + ready_path, timeout=2).status_code < 500:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} did not answer within {timeout:.0f} s")


def start_gridgov(database_url: str) -> Server:
    """Start gridgov under uvicorn on `database_url` and return it once /health answers; RuntimeError when it exits or
    does not answer within 60 s."""
    return _start("gridgov", Path(sys.executable), "api.main:app", {"GRIDGOV_DATABASE_URL": database_url}, "/health")


def ensure_peer_venv() -> Path:
    """The peer's interpreter, installing tipg into `.venv-peer` when it is missing."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import tipg, uvicorn"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", TIPG_REQUIREMENT, "uvicorn"], check=True)
    return python


def start_tipg(database_url: str, tables: list[str]) -> Server:
    """tipg on the same tables, with the same tile buffer as gridgov (its feature cap stays its default)."""
    from gis.db.engine import libpq_url
    from gis.serve.tiles import BUFFER, EXTENT

    env = {
        "DATABASE_URL": libpq_url(database_url),
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_DB_TABLES": "[" + ",".join(f'"public.{table}"' for table in tables) + "]",
        "TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS": '["public", "pg_catalog", "information_schema"]',
        "TIPG_TILE_BUFFER": str(BUFFER),
        "TIPG_TILE_RESOLUTION": str(EXTENT),
        "TIPG_CATALOG_TTL": "3600",
    }
    return _start("tipg", ensure_peer_venv(), "tipg.main:app", env, "/collections")


def timed_requests(base_url: str, paths: list[str]) -> list[float]:
    """Latency in ms of each request, one after another over one kept-alive connection."""
    latencies = []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for path in paths:
            started = time.perf_counter()
            response = client.get(path)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code >= 400:
                raise RuntimeError(f"{base_url}{path}: HTTP {response.status_code} {response.text[:200]}")
    return latencies


def throughput(base_url: str, paths: list[str], clients: int = 4) -> float:
    """Requests per second with `clients` connections working through `paths` together."""
    chunks = [paths[index::clients] for index in range(clients)]
    errors: list[str] = []

    def work(chunk: list[str]) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            for path in chunk:
                if client.get(path).status_code >= 400:
                    errors.append(path)

    threads = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return len(paths) / elapsed


def percentile(values: list[float], share: float) -> float:
    """The `share` percentile of `values` (0.95 for p95), by the inclusive method; the value itself when there is only
    one."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(share * 100) - 1]


def row(area: str, metric: str, value: float, unit: str, note: str = "") -> dict:
    """One result row of a benchmark, the value rounded to two decimals."""
    return {"area": area, "metric": metric, "value": round(value, 2), "unit": unit, "note": note}
