"""Address geocoding decisions on a generated set of perturbed addresses (fixtures/address_set.py) from the
loaded city: the shares placed automatically and sent to review, the wrong automatic placements (which must be
none), and the matching rate.

Run alone: `python -m benchmarks.bench_geocode [DATABASE_URL] [--count N] [--seed S]` (default: the configured
database, 5,000 addresses, seed 7).
"""

from __future__ import annotations

import argparse
import sys
import time

from fixtures.address_set import City, evaluate, generate
from gis.intake.gazetteer import Gazetteer

AREA = "geocoding"


def measure(url: str, count: int = 5_000, seed: int = 7) -> dict:
    """Geocode `count` perturbed addresses generated from the city at `url` with `seed`: the evaluation, the seconds it
    took and the number of cases."""
    city = City.load(url)
    gazetteer = Gazetteer.load(url)
    cases = generate(city, count=count, seed=seed)
    started = time.perf_counter()
    result = evaluate(gazetteer, cases)
    seconds = time.perf_counter() - started
    return {"result": result, "seconds": seconds, "cases": len(cases)}


def run(city_url: str) -> list[dict]:
    """Rows for the shares placed automatically and wrongly and the matching rate, on 5,000 addresses."""
    measured = measure(city_url)
    result = measured["result"]
    note = (f"{result.total:,} perturbed addresses; {result.review_share:.1%} to review; "
            f"{len(result.wrong)} placed wrongly")
    return [
        {"area": AREA, "metric": "addresses placed automatically", "value": round(100 * result.auto_share, 1),
         "unit": "%", "note": note},
        {"area": AREA, "metric": "wrong automatic placements", "value": len(result.wrong), "unit": "addresses",
         "note": "aim 0"},
        {"area": AREA, "metric": "address matching", "value": round(result.total / measured["seconds"]),
         "unit": "addresses/s", "note": "one core, every address distinct"},
    ]


def main(argv: list[str]) -> int:
    """Run the geocoding benchmark from the command line and print the figures per kind of perturbation; exit status 1
    when any address was placed wrongly."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="database URL (default: the configured one)")
    parser.add_argument("--count", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.url is None:
        from gis.db.engine import database_url

        args.url = database_url()
    measured = measure(args.url, args.count, args.seed)
    result = measured["result"]
    print(f"{result.total:,} addresses: {result.auto_share:.1%} placed automatically, "
          f"{result.review_share:.1%} sent to review, {len(result.wrong)} placed wrongly "
          f"({result.total / measured['seconds']:,.0f} addresses/s)")
    width = max(len(kind) for kind in result.by_kind)
    for kind, counts in sorted(result.by_kind.items()):
        print(f"  {kind:<{width}}  {counts['total']:>5}  automatic {counts['auto']:>5}  review {counts['review']:>5}"
              f"  wrong {counts['wrong']}")
    for case, code, number in result.wrong[:20]:
        print(f"  wrong: {case.text} -> {code} {number} (truth {case.compound_code} {case.building_number})")
    return 1 if result.wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
