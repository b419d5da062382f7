"""Proactive handling (未诉先办) on the `city` fixture: the emerging hot spot classes of every micro-grid ×
category over the year, opening the proactive tasks (in a transaction rolled back, so the fixture stays as it
is), and the replay of the year month by month: how many complaints fell in micro-grid × category pairs that
already had a task, and how many days after the task was opened."""

from __future__ import annotations

import time

from gis.analytics import emerging, proactive
from gis.db.engine import sync_engine


def run(city_url: str) -> list[dict]:
    """Rows for the classes, the task run and the replay."""
    engine = sync_engine(city_url)
    rows: list[dict] = []
    with engine.connect() as conn:
        started = time.perf_counter()
        figure = emerging.emerging_figure(conn, "micro_grid")
        classes_s = time.perf_counter() - started
        patterns = {k: v for k, v in figure.meta["patterns"].items() if v and k != "no pattern"}
        rows.append({"area": "proactive", "metric": "emerging classes, micro-grid × category × 12 months",
                     "value": round(classes_s, 2), "unit": "s",
                     "note": f"{figure.meta['areas']:,} micro-grids × {figure.meta['categories']} categories; "
                             + ", ".join(f"{k} {v:,}" for k, v in sorted(patterns.items(), key=lambda kv: -kv[1]))})
        conn.rollback()  # end the reads' implicit transaction
        transaction = conn.begin()
        try:
            started = time.perf_counter()
            tasks = proactive.open_tasks(conn, "admin", (), "bench")
            tasks_s = time.perf_counter() - started
        finally:
            transaction.rollback()
        rows.append({"area": "proactive", "metric": "open proactive tasks (rolled back)", "value": round(tasks_s, 2),
                     "unit": "s", "note": f"{tasks.meta['opened']:,} tasks for {tasks.meta['month']}"})
        for level in emerging.hs.HOTSPOT_LEVELS:
            started = time.perf_counter()
            replay = proactive.replay(conn, level)
            replay_s = time.perf_counter() - started
            meta = replay.figure.meta
            rows += [
                {"area": "proactive", "metric": f"{level}: replay of the year, month by month",
                 "value": round(replay_s, 2), "unit": "s",
                 "note": f"{meta['months']} months, {meta['tasks']:,} tasks opened, "
                         f"{meta['tasks_followed_by_a_complaint']:,} of them followed by a complaint"},
                {"area": "proactive", "metric": f"{level}: complaints in pairs that already had a task",
                 "value": meta["in_task_pairs"], "unit": "complaints",
                 "note": f"{(meta['share_after_first_run'] or 0):.1%} of the {meta['complaints_after_first_run']:,} "
                         "complaints after the first monthly run"},
                {"area": "proactive", "metric": f"{level}: how early, median days from task to complaint",
                 "value": meta["median_lead_days"], "unit": "days",
                 "note": f"quartiles {meta['p25_lead_days']}–{meta['p75_lead_days']} days"},
            ]
    engine.dispose()
    return rows
