"""Suggested dispatch: the text model against today's keyword inference (the peer), in the same run, on the
city's held-out newest history (a time split) and on the hand-written set (tests/data/dispatch/handwritten.csv):
category and party top-1/top-3 accuracy, the share abstained, training time and one suggestion's time.

Run alone: `python -m benchmarks.bench_dispatch [DATABASE_URL]` (default: the configured database). It trains
and stores a new model version.
"""

from __future__ import annotations

import statistics
import sys
import time

from gis.dispatch import history, store

AREA = "dispatch"
TIMED_SUGGESTIONS = 500


def measure(url: str) -> dict:
    """Train on the database at `url` (figures on the held-out history and the hand-written set), then time single
    suggestions over hand-written texts."""
    trained = store.train_from_history(url, trained_by="benchmark")
    _, model = store.load_version(url, trained.version)
    texts = history.load_handwritten().texts
    times = []
    for i in range(TIMED_SUGGESTIONS):
        started = time.perf_counter()
        model.suggest(texts[i % len(texts)], "managed_compound")
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"trained": trained, "median_ms": statistics.median(times),
            "p95_ms": times[int(0.95 * len(times)) - 1]}


def run(city_url: str) -> list[dict]:
    """Rows for model and peer, category and party, on both sets, and the times."""
    measured = measure(city_url)
    trained = measured["trained"]
    rows = []
    for name, label in (("held_out", "held-out history"), ("handwritten", "hand-written set")):
        figures = trained.metrics.get(name)
        if not figures:
            continue
        for part in ("category", "party"):
            row = figures.get(part)
            if not row:
                continue
            for metric in ("model_top1", "model_top3", "peer_top1", "peer_top3", "abstained"):
                rows.append({"area": AREA, "metric": f"{label}: {part} {metric.replace('_', ' ')}",
                             "value": round(100 * row[metric], 1), "unit": "%",
                             "note": f"{figures['rows']:,} rows"})
    rows.append({"area": AREA, "metric": "training", "value": round(trained.seconds["training"], 1), "unit": "s",
                 "note": f"{trained.samples['train']:,} complaints"})
    rows.append({"area": AREA, "metric": "one suggestion (median)", "value": round(measured["median_ms"], 2),
                 "unit": "ms", "note": f"p95 {measured['p95_ms']:.2f} ms over {TIMED_SUGGESTIONS}"})
    return rows


if __name__ == "__main__":
    from gis.db.engine import database_url

    for row in run(sys.argv[1] if len(sys.argv) > 1 else database_url()):
        print(f"{row['metric']:<48} {row['value']:>8} {row['unit']:<3} {row['note']}")
