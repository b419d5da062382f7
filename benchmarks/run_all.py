"""`make bench`: load the `city` fixture once (kept while its size and seed match), run every benchmark module,
print one table and write it to benchmarks/results/latest.md.

`--province` (`make bench GROWTH=1`) adds the growth benchmark (bench_growth): small, demo, city and the province
fixture, each in a database of its own that is kept while its size and seed match.

Each module `benchmarks/bench_<area>.py` exposes `run(city_url) -> list[dict]` with rows
{"area", "metric", "value", "unit", "note"}; `note` carries the ratio against the peer or the physical limit
measured in the same run.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

import benchmarks
from gis.db.engine import database_url, embedded_cluster
from gis.settings import database_settings

CITY_SEED = 1
BENCH_DB = "gridgov_bench"
SIZE_DBS = {"small": "gridgov_bench_small", "demo": "gridgov_bench_demo", "city": BENCH_DB,
            "province": "gridgov_bench_province"}
"""The growth benchmark's database per fixture size (the city's is the other modules' one)."""
RESULTS = Path(__file__).parent / "results"


def city_database() -> str:
    """URL of a database holding the `city` fixture, loaded by the load benchmark if needed."""
    settings = database_settings()
    if settings.database_url:
        return settings.database_url
    cluster = embedded_cluster()
    database_url()  # starts the cluster
    cluster.ensure_database(BENCH_DB)
    return cluster.url(BENCH_DB)


def size_databases(sizes: tuple[str, ...]) -> dict[str, str]:
    """{size: URL} of the growth benchmark's databases in the embedded cluster (created when missing); with
    GRIDGOV_DATABASE_URL set, only the city's (the other sizes need a cluster to create databases in)."""
    settings = database_settings()
    if settings.database_url:
        return {"city": settings.database_url}
    cluster = embedded_cluster()
    database_url()
    for size in sizes:
        cluster.ensure_database(SIZE_DBS[size])
    return {size: cluster.url(SIZE_DBS[size]) for size in sizes}


def main(selected: list[str]) -> int:
    """Run the selected benchmark modules (all when none is named, bench_load first), print one table and write
    benchmarks/results/latest.md; a partial run keeps the other areas' last figures. Exit status 1 when any module
    failed."""
    console = Console()
    province = "--province" in selected
    selected = [name for name in selected if name != "--province"]
    url = city_database()
    modules = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    # Loading comes first: it makes the city the others run on.
    modules.sort(key=lambda name: name != "bench_load")
    if selected:
        modules = [m for m in modules if m in selected or m.removeprefix("bench_") in selected]
    if province and "bench_growth" not in modules:
        modules.append("bench_growth")
    elif not province:
        # the growth table loads and measures the province (hours on 2 cores): only behind --province
        modules = [m for m in modules if m != "bench_growth"]
    rows, failures = [], []
    for name in modules:
        started = time.perf_counter()
        console.print(f"[bold]{name}[/bold] …")
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            if name == "bench_growth":
                rows.extend(module.run(size_databases(module.ORDER)))
            else:
                rows.extend(module.run(url))
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
            failures.append(name)
            console.print(traceback.format_exc(), style="red")
        console.print(f"  {time.perf_counter() - started:.1f} s")
    table = Table(title="gridgov benchmarks (city fixture)")
    for column in ("area", "metric", "value", "unit", "note"):
        table.add_column(column)
    lines = ["| area | metric | value | unit | note |", "|---|---|---|---|---|"]
    for row in rows:
        value = row["value"]
        shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else value
        table.add_row(row["area"], row["metric"], shown, row["unit"], row.get("note", ""))
        lines.append(f"| {row['area']} | {row['metric']} | {shown} | {row['unit']} | {row.get('note', '')} |")
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    latest = RESULTS / "latest.md"
    if selected and latest.exists():
        # A partial run replaces only the areas it measured; the other areas keep their last figures.
        measured = {row["area"] for row in rows}
        kept = [line for line in latest.read_text(encoding="utf-8").splitlines()[2:]
                if line.split("|")[1].strip() not in measured]
        lines += kept
    latest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if failures:
        console.print(f"failed: {', '.join(failures)}", style="red")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
