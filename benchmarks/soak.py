"""A bounded soak test on loopback: sustained Open311 intake plus map browsing (GeoJSON, vector tiles, search)
against the real app on a demo city, for a fixed time and at most a fixed number of requests.

Reports throughput, p50/p95/p99 latency per kind of request, errors (5xx and transport), the server's memory over
time, and complaints lost: every intake answered 200 must be in the database exactly once, tagged by its
description. Exit status 1 when any error or loss is found.

    python -m benchmarks.soak --size small --duration 180
    python -m benchmarks.soak --database-url postgresql://... --duration 300   # a city loaded already
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_city(size: str, seed: int) -> tuple[str, object]:
    """A temporary embedded cluster holding a freshly loaded city; returns (url, cluster)."""
    from fixtures.loader import load_city
    from gis.db.embedded import EmbeddedCluster
    from gis.db.migrate import upgrade
    from gis.layers.catalogue import seed_categories

    cluster = EmbeddedCluster(data_dir=Path(tempfile.mkdtemp(prefix="gridgov-soak-")), db_name="soak")
    url = cluster.start()
    upgrade(url)
    seed_categories(url)
    load_city(url, size, seed=seed, progress=True)
    return url, cluster


def start_server(url: str) -> tuple[subprocess.Popen, str]:
    """Start the app under uvicorn on a free loopback port against `url`; the process and its base URL once /health
    answers. Exits when it does not start within 60 s."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--timeout-graceful-shutdown", "5"],
        cwd=ROOT, env={**os.environ, "GRIDGOV_DATABASE_URL": url},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("the app did not start within 60 s")


class Plan:
    """What to ask for: the city's extent, its open311 services, an API key, compound names to search."""

    def __init__(self, url: str, base: str):
        from gis.intake.open311 import new_api_key

        with psycopg.connect(url) as conn:
            self.extent = conn.execute(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "(SELECT ST_Extent(geom) e FROM community WHERE valid_to IS NULL) x").fetchone()
            self.compounds = [r[0] for r in conn.execute(
                "SELECT name FROM compound WHERE valid_to IS NULL ORDER BY random() LIMIT 200")]
        self.api_key = new_api_key(url, f"soak-{uuid.uuid4().hex[:8]}")
        services = httpx.get(f"{base}/open311/v2/services.json", timeout=30).json()
        self.services = [s["service_code"] for s in services if not s.get("metadata")] or \
            [s["service_code"] for s in services]
        self.marker = f"soak-{uuid.uuid4().hex[:10]}"

    def point(self, rng: random.Random) -> tuple[float, float]:
        minx, miny, maxx, maxy = self.extent
        return rng.uniform(minx, maxx), rng.uniform(miny, maxy)

    def bbox(self, rng: random.Random, span: float) -> str:
        lon, lat = self.point(rng)
        return f"{lon - span},{lat - span},{lon + span},{lat + span}"

    def tile(self, rng: random.Random, z: int) -> tuple[int, int, int]:
        import math

        lon, lat = self.point(rng)
        n = 2 ** z
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return z, x, y


class Soak:
    def __init__(self, base: str, plan: Plan, duration: float, max_requests: int, workers: int,
                 intake_share: float):
        self.base, self.plan = base, plan
        self.duration, self.max_requests, self.workers = duration, max_requests, workers
        self.intake_share = intake_share
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict] = defaultdict(lambda: defaultdict(int))
        self.errors: list[str] = []
        self.accepted_intake: list[str] = []
        self.sent = 0
        self.lock = threading.Lock()

    def _take_turn(self) -> bool:
        with self.lock:
            if self.sent >= self.max_requests:
                return False
            self.sent += 1
            return True

    def _request(self, rng: random.Random, sequence: int) -> tuple[str, str, dict]:
        plan = self.plan
        if rng.random() < self.intake_share:
            lon, lat = plan.point(rng)
            tag = f"{plan.marker}-{sequence}"
            form = {"api_key": plan.api_key, "service_code": rng.choice(plan.services), "lat": f"{lat:.6f}",
                    "long": f"{lon:.6f}", "description": f"楼道堆物影响通行 {tag}"}
            return "intake", "POST", {"url": "/open311/v2/requests.json", "data": form, "tag": tag}
        kind = rng.choices(["tile", "geojson", "complaints", "search", "responsibility"], [5, 2, 1, 1, 1])[0]
        if kind == "tile":
            layer, z = rng.choice([("building", 16), ("building", 15), ("compound", 15), ("grid", 14),
                                   ("community", 13)])
            z, x, y = plan.tile(rng, z)
            return kind, "GET", {"url": f"/tiles/{layer}/{z}/{x}/{y}.mvt"}
        if kind == "geojson":
            layer = rng.choice(["community", "grid", "compound"])
            return kind, "GET", {"url": f"/layers/{layer}.geojson", "params": {"bbox": plan.bbox(rng, 0.01)}}
        if kind == "complaints":
            return kind, "GET", {"url": "/map/complaints.geojson", "params": {"bbox": plan.bbox(rng, 0.02)}}
        if kind == "search":
            name = rng.choice(plan.compounds) if plan.compounds else "小区"
            return kind, "GET", {"url": "/map/search.json", "params": {"q": name[: rng.randint(2, 6)]}}
        lon, lat = plan.point(rng)
        return kind, "GET", {"url": "/responsibility", "params": {"lon": lon, "lat": lat}}

    def _worker(self, index: int, stop_at: float) -> None:
        rng = random.Random(index)
        sequence = index * 10_000_000
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while time.monotonic() < stop_at and self._take_turn():
                sequence += 1
                kind, method, spec = self._request(rng, sequence)
                started = time.perf_counter()
                try:
                    response = client.request(method, spec["url"], params=spec.get("params"),
                                              data=spec.get("data"))
                    status = response.status_code
                except httpx.HTTPError as error:
                    status = f"transport:{type(error).__name__}"
                elapsed = time.perf_counter() - started
                with self.lock:
                    self.latencies[kind].append(elapsed)
                    self.statuses[kind][status] += 1
                    if not isinstance(status, int) or status >= 500:
                        self.errors.append(f"{kind} {spec['url']} -> {status}")
                    elif kind == "intake" and status == 200:
                        self.accepted_intake.append(spec["tag"])

    def run(self, server_pid: int) -> dict:
        server = psutil.Process(server_pid)
        memory: list[tuple[float, float]] = []
        started = time.monotonic()
        stop_at = started + self.duration
        threads = [threading.Thread(target=self._worker, args=(i, stop_at), daemon=True)
                   for i in range(self.workers)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            memory.append((round(time.monotonic() - started, 1), server.memory_info().rss / 2**20))
            for thread in threads:
                thread.join(timeout=5 / len(threads))
        wall = time.monotonic() - started
        memory.append((round(wall, 1), server.memory_info().rss / 2**20))
        return {"wall_s": wall, "memory_mib": memory}


def percentile(values: list[float], share: float) -> float:
    """The value at rank `share` × count of the sorted `values` (0.95 for p95); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def count_lost(url: str, marker: str, accepted: list[str]) -> tuple[int, int]:
    """(lost, duplicated): accepted intake missing from the database, and tags stored more than once."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT substring(description from %s) AS tag, count(*) FROM complaint "
            "WHERE description LIKE %s GROUP BY 1", (f"({marker}-[0-9]+)", f"%{marker}-%")).fetchall()
    stored = {tag: count for tag, count in rows}
    lost = sum(1 for tag in accepted if tag not in stored)
    duplicated = sum(1 for count in stored.values() if count > 1)
    return lost, duplicated


def main(argv: list[str] | None = None) -> int:
    """Run the soak test (loading a city into a temporary cluster unless a database is given), print the figures as JSON
    and optionally write them; exit status 1 on any error, lost or duplicated complaint, or an unhealthy app
    afterwards."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a database holding a loaded city (default: load one)")
    parser.add_argument("--size", default="city", choices=["small", "demo", "city"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load (bounded)")
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--intake-share", type=float, default=0.2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    cluster = None
    url = args.database_url
    if url is None:
        print(f"loading the {args.size} city into a temporary cluster ...", flush=True)
        url, cluster = prepare_city(args.size, args.seed)
    process, base = start_server(url)
    try:
        plan = Plan(url, base)
        soak = Soak(base, plan, args.duration, args.max_requests, args.workers, args.intake_share)
        print(f"soaking {base} for up to {args.duration:.0f} s / {args.max_requests} requests "
              f"with {args.workers} clients ...", flush=True)
        run = soak.run(process.pid)
        health = httpx.get(f"{base}/health", timeout=30).status_code
        lost, duplicated = count_lost(url, plan.marker, soak.accepted_intake)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        if cluster is not None:
            cluster.destroy()

    total = sum(len(v) for v in soak.latencies.values())
    memory = [mib for _, mib in run["memory_mib"]]
    settled = memory[len(memory) // 4:] or memory  # after warm-up
    figures = {
        "requests": total,
        "throughput_rps": round(total / run["wall_s"], 1),
        "wall_s": round(run["wall_s"], 1),
        "errors": len(soak.errors),
        "error_examples": soak.errors[:10],
        "intake_accepted": len(soak.accepted_intake),
        "complaints_lost": lost,
        "complaints_duplicated": duplicated,
        "health_after": health,
        "memory_mib": {"start": round(memory[0], 1), "after_warm_up": round(settled[0], 1),
                       "end": round(memory[-1], 1), "max": round(max(memory), 1),
                       "growth_after_warm_up": round(memory[-1] - settled[0], 1)},
        "by_kind": {
            kind: {"requests": len(values), "p50_ms": round(statistics.median(values) * 1000, 1),
                   "p95_ms": round(percentile(values, 0.95) * 1000, 1),
                   "p99_ms": round(percentile(values, 0.99) * 1000, 1),
                   "statuses": {str(k): v for k, v in soak.statuses[kind].items()}}
            for kind, values in sorted(soak.latencies.items())
        },
    }
    all_latencies = [v for values in soak.latencies.values() for v in values]
    figures["p95_ms"] = round(percentile(all_latencies, 0.95) * 1000, 1)
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2))
    failed = figures["errors"] or lost or duplicated or health != 200
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
