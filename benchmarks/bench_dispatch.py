"""Suggested dispatch: the text model against today's keyword inference (the peer), in the same run, on the
city's held-out newest history (a time split) and on the hand-written set (tests/data/dispatch/handwritten.csv):
category and party top-1/top-3 accuracy, the share abstained at GRIDGOV_DISPATCH_MIN_CONFIDENCE and the accuracy
of the answered, training time and one suggestion's time against the 5 ms aim, with the machine's load average.

Run alone: `python -m benchmarks.bench_dispatch [DATABASE_URL]` (default: the configured database). It trains
and stores a new model version.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from gis.dispatch import history, store

AREA = "dispatch"
TIMED_SUGGESTIONS = 1000
AIM_MS = 5.0
"""Issue 19's aim for one suggestion."""


def measure(url: str) -> dict:
    """Train on the database at `url` (figures on the held-out history and the hand-written set), then time single
    suggestions over hand-written texts, half with a known place and half without."""
    trained = store.train_from_history(url, trained_by="benchmark")
    _, model = store.load_version(url, trained.version)
    texts = history.load_handwritten().texts
    load_before = os.getloadavg()[0]
    times, cpu = [], []
    for i in range(TIMED_SUGGESTIONS):
        started, started_cpu = time.perf_counter(), time.thread_time()
        model.suggest(texts[i % len(texts)], "managed_compound" if i % 2 else None)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - started_cpu) * 1000)
    times.sort()
    cpu.sort()
    return {"trained": trained, "median_ms": statistics.median(times),
            "p95_ms": times[int(0.95 * len(times)) - 1], "cpu_p95_ms": cpu[int(0.95 * len(cpu)) - 1],
            "load": (load_before + os.getloadavg()[0]) / 2}


def run(city_url: str) -> list[dict]:
    """Rows for model and peer, category and party, on both sets, and the times."""
    measured = measure(city_url)
    trained = measured["trained"]
    threshold = trained.metrics.get("min_confidence")
    rows = []
    for name, label in (("held_out", "held-out history"), ("handwritten", "hand-written set")):
        figures = trained.metrics.get(name)
        if not figures:
            continue
        for part in ("category", "party"):
            row = figures.get(part)
            if not row:
                continue
            for metric in ("model_top1", "model_top3", "peer_top1", "peer_top3", "abstained",
                           "accuracy_when_confident"):
                note = f"{figures['party_rows' if part == 'party' else 'rows']:,} rows"
                if metric in ("model_top1", "model_top3"):
                    peer = row[metric.replace("model", "peer")]
                    note += f"; {100 * (row[metric] - peer):+.1f} points on the peer"
                if metric in ("abstained", "accuracy_when_confident"):
                    note += f"; threshold {threshold}, calibration error {row['calibration_error']}"
                rows.append({"area": AREA, "metric": f"{label}: {part} {metric.replace('_', ' ')}",
                             "value": round(100 * row[metric], 1), "unit": "%", "note": note})
    rows.append({"area": AREA, "metric": "training", "value": round(trained.seconds["training"], 1), "unit": "s",
                 "note": f"{trained.samples['train']:,} complaints, calibration included"})
    for key, label in (("median_ms", "median"), ("p95_ms", "p95"), ("cpu_p95_ms", "p95 of its CPU time")):
        rows.append({"area": AREA, "metric": f"one suggestion ({label})", "value": round(measured[key], 3),
                     "unit": "ms", "note": f"{measured[key] / AIM_MS:.3f}× the {AIM_MS:g} ms aim over "
                                           f"{TIMED_SUGGESTIONS} texts, load average {measured['load']:.1f}"})
    return rows


if __name__ == "__main__":
    from gis.db.engine import database_url

    for row in run(sys.argv[1] if len(sys.argv) > 1 else database_url()):
        print(f"{row['metric']:<52} {row['value']:>8} {row['unit']:<3} {row['note']}")
