"""The complaint category catalogue (service codes): shipped as data, stored in the `category` table, editable."""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg

from gis.db.engine import libpq_url

DEFAULT_CATALOGUE = Path(__file__).parents[1] / "data" / "categories.csv"


def read_catalogue(path: Path = DEFAULT_CATALOGUE) -> list[dict]:
    """The category catalogue CSV as rows of its columns, `keywords` split on `|` into a list."""
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["keywords"] = [word for word in row["keywords"].split("|") if word]
    return rows


def seed_categories(url: str, path: Path = DEFAULT_CATALOGUE) -> int:
    """Insert the shipped categories that are missing; edited ones are left as they are. Returns how many."""
    rows = read_catalogue(path)
    columns = ["code", "name", "name_zh", "class_kind", "major_class", "minor_class", "responsible_kind",
               "deadline_class", "keywords"]
    with psycopg.connect(libpq_url(url)) as conn:
        before = conn.execute("SELECT count(*) FROM category").fetchone()[0]
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO category ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
                "ON CONFLICT (code) DO NOTHING",
                [[row[c] for c in columns] for row in rows],
            )
        after = conn.execute("SELECT count(*) FROM category").fetchone()[0]
    return after - before
