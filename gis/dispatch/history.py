"""The city's history as training data for the dispatch model, the keyword peer it is measured against, and the
evaluation of both on the same rows.

A row is a complaint's text, its category (the operator's, as imported or as confirmed), where it fell, when, and
the party that finally held its ticket (责任主体: kind, and the department for street departments and utilities),
known once the ticket was handled or closed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg

from gis.db.engine import libpq_url
from gis.dispatch.model import DispatchModel, calibration_error, clean_text, top_k_hits
from gis.intake.address import normalise
from gis.intake.normalise import Catalogue

PARTY_SQL = ("CASE WHEN t.assignee_kind IN ('property_company', 'community', 'street_department', 'utility') "
             "THEN t.assignee_kind || coalesce(':' || t.department, '') END")
"""A ticket's responsible party as the model names it: `community`, `utility:热力公司`, ..."""

PLACE_SQL = ("CASE WHEN t.compound_code IS NOT NULL AND t.property_company_id IS NOT NULL THEN 'managed_compound' "
             "WHEN t.compound_code IS NOT NULL THEN 'unmanaged_compound' "
             "WHEN t.community_code IS NOT NULL THEN 'open_space' END")
"""Where a ticket's complaint fell, in the party model's place kinds."""

HISTORY_SQL = f"""
SELECT c.description, c.category_code, {PLACE_SQL} AS place, c.reported_at,
       CASE WHEN t.state IN ('handled', 'closed') THEN {PARTY_SQL} END AS party
FROM complaint c JOIN ticket t ON t.complaint_id = c.id
WHERE c.description IS NOT NULL AND c.description <> ''
ORDER BY c.reported_at DESC, c.id DESC
LIMIT %(limit)s"""

ROUTES_SQL = """
SELECT DISTINCT ON (c.code, k.place)
       c.code, k.place, r.assignee_kind || coalesce(':' || r.department, '') AS party
FROM category c
CROSS JOIN (VALUES ('managed_compound'), ('unmanaged_compound'), ('open_space')) k(place)
JOIN routing_rule r ON r.active
     AND (r.category_code IS NULL OR r.category_code = c.code)
     AND (r.responsible_kind IS NULL OR r.responsible_kind = c.responsible_kind)
     AND (r.place = 'any' OR r.place = k.place
          OR (r.place = 'compound' AND k.place IN ('managed_compound', 'unmanaged_compound')))
     AND (r.assignee_kind <> 'property_company' OR k.place = 'managed_compound')
ORDER BY c.code, k.place, r.priority, r.id"""
"""The routing rules' party per category and place kind: what the keyword peer dispatches to."""

HANDWRITTEN = Path(__file__).resolve().parents[2] / "tests" / "data" / "dispatch" / "handwritten.csv"
"""The hand-written test set (text, category code, responsible party), never produced by the generator."""


@dataclass
class History:
    """Rows of history, oldest first."""

    texts: list[str]
    categories: list[str]
    places: list[str | None]
    parties: list[str | None]
    times: list

    def __len__(self) -> int:
        return len(self.texts)

    def split(self, holdout_share: float) -> tuple["History", "History"]:
        """The older rows to train on and the newest `holdout_share` to test on (a time split)."""
        cut = int(round(len(self) * (1 - holdout_share)))
        return self._slice(0, cut), self._slice(cut, len(self))

    def _slice(self, start: int, stop: int) -> "History":
        return History(self.texts[start:stop], self.categories[start:stop], self.places[start:stop],
                       self.parties[start:stop], self.times[start:stop])


def load_history(url: str, limit: int) -> History:
    """The newest `limit` complaints with their tickets, returned oldest first."""
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(HISTORY_SQL, {"limit": limit}).fetchall()
    rows.reverse()
    return History([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[4] for r in rows],
                   [r[3] for r in rows])


def load_handwritten(path: Path = HANDWRITTEN) -> History:
    """The hand-written set: no place is known, so the party is judged from the text alone."""
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return History([r["text"] for r in rows], [r["category_code"] for r in rows], [None] * len(rows),
                   [r["party"] for r in rows], [None] * len(rows))


@dataclass
class Peer:
    """Today's keyword inference (gis.intake.normalise.Catalogue) and the routing rules after it."""

    catalogue: Catalogue
    routes: dict[tuple[str, str], str]

    @classmethod
    def load(cls, url: str) -> "Peer":
        """The active catalogue's keywords and the routing rules of the database at `url`."""
        with psycopg.connect(libpq_url(url)) as conn:
            catalogue = Catalogue.load(conn)
            routes = {(code, place): party for code, place, party in conn.execute(ROUTES_SQL)}
        return cls(catalogue, routes)

    def categories(self, text: str, k: int = 3) -> list[str]:
        """The categories whose keywords occur in the text, in the order the keyword inference tries them."""
        norm = normalise(text)
        found: list[str] = []
        for word, code in self.catalogue.keywords:
            if word in norm and code not in found:
                found.append(code)
                if len(found) == k:
                    break
        return found

    def parties(self, text: str, place: str | None, k: int = 3) -> list[str]:
        """The routing rules' party for each inferred category (in a managed compound when no place is known)."""
        found: list[str] = []
        for code in self.categories(text, k):
            party = self.routes.get((code, place or "managed_compound"))
            if party and party not in found:
                found.append(party)
        return found


def _share(hits: np.ndarray) -> float:
    return round(float(hits.mean()), 4) if len(hits) else 0.0


def _peer_hits(ranked: list[list[str]], truth: list[str], k: int) -> np.ndarray:
    return np.array([t in r[:k] for r, t in zip(ranked, truth)], dtype=bool)


def evaluate(model: DispatchModel, peer: Peer, rows: History, min_confidence: float) -> dict:
    """Top-1 and top-3 accuracy of the model and of the keyword peer on the same rows, for the category and for
    the party (rows with a known party), the share the model abstains on, its accuracy where it does not, and the
    calibration error of its confidence."""
    cleaned = [clean_text(t) for t in rows.texts]
    out: dict = {"rows": len(rows)}
    probabilities, labels = model.category_probabilities(cleaned)
    confident = probabilities.max(axis=1) >= min_confidence
    top1 = top_k_hits(probabilities, labels, rows.categories, 1)
    peer_ranked = [peer.categories(t) for t in rows.texts]
    out["category"] = {
        "model_top1": _share(top1), "model_top3": _share(top_k_hits(probabilities, labels, rows.categories, 3)),
        "peer_top1": _share(_peer_hits(peer_ranked, rows.categories, 1)),
        "peer_top3": _share(_peer_hits(peer_ranked, rows.categories, 3)),
        "peer_no_answer": _share(np.array([not r for r in peer_ranked])),
        "abstained": _share(~confident), "accuracy_when_confident": _share(top1[confident]),
        "calibration_error": round(calibration_error(probabilities, labels, rows.categories), 4),
    }
    known = [i for i, p in enumerate(rows.parties) if p]
    out["party_rows"] = len(known)
    if known:
        texts = [cleaned[i] for i in known]
        truth = [rows.parties[i] for i in known]
        places = [rows.places[i] for i in known]
        party_probs, party_labels = model.party_probabilities(texts, places)
        party_top1 = top_k_hits(party_probs, party_labels, truth, 1)
        party_confident = party_probs.max(axis=1) >= min_confidence
        peer_party = [peer.parties(rows.texts[i], rows.places[i]) for i in known]
        out["party"] = {
            "model_top1": _share(party_top1), "model_top3": _share(top_k_hits(party_probs, party_labels, truth, 3)),
            "peer_top1": _share(_peer_hits(peer_party, truth, 1)),
            "peer_top3": _share(_peer_hits(peer_party, truth, 3)),
            "abstained": _share(~party_confident), "accuracy_when_confident": _share(party_top1[party_confident]),
            "calibration_error": round(calibration_error(party_probs, party_labels, truth), 4),
        }
    return out
