"""The text model behind suggested dispatch (智能派单): character n-grams with TF-IDF and a logistic regression,
one for the category and one for the final responsible party, trained on the city's own history.

Nothing is downloaded: the vectoriser and the classifier are scikit-learn's, fitted here on the texts given. The
party model also sees where the complaint fell (a compound with a property company, one without, outside
compounds), since the same leak goes to the company in one compound and to the community in another.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import joblib
import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from gis.intake.address import normalise

PLACE_KINDS = ("managed_compound", "unmanaged_compound", "open_space")
"""Where a complaint fell, as the party model reads it; any other place (or none known) adds nothing."""
PLACE_WORDS = {"managed_compound": "位置：有物业的小区", "unmanaged_compound": "位置：无物业的小区",
               "open_space": "位置：小区外"}
"""How a place feature is shown among the words behind a suggestion."""

_NUMBERS = re.compile(r"[0-9]+")
_STOP = set("的了在是有和也都就还")


def clean_text(text: str | None) -> str:
    """The text the model reads: normalised (NFKC, no spaces or punctuation, lower case) and without numbers,
    which name buildings, units and phone numbers rather than the problem."""
    return _NUMBERS.sub("", normalise(text))


@dataclass
class Ranked:
    """One classifier's answer: labels best first with their probabilities, and the n-grams that drove the first."""

    labels: list[str]
    confidences: list[float]
    words: list[str]


@dataclass
class TextClassifier:
    """Character 1–3-gram TF-IDF and a multinomial logistic regression over one label set."""

    vectoriser: TfidfVectorizer
    classifier: LogisticRegression
    with_place: bool = False
    _vocabulary: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str], places: Sequence[str | None] | None = None,
            max_features: int = 60_000) -> "TextClassifier":
        """Fit on cleaned texts (clean_text) and their labels; `places` adds the place kind as features."""
        vectoriser = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, max_features=max_features,
                                     sublinear_tf=True, dtype=np.float32)
        matrix = vectoriser.fit_transform(texts)
        if places is not None:
            matrix = sp.hstack([matrix, _place_matrix(places)], format="csr")
        classifier = LogisticRegression(C=8.0, max_iter=300, solver="lbfgs")
        classifier.fit(matrix, np.asarray(labels))
        classifier.coef_ = classifier.coef_.astype(np.float32)
        classifier.intercept_ = classifier.intercept_.astype(np.float32)
        return cls(vectoriser, classifier, with_place=places is not None)

    def _matrix(self, texts: Sequence[str], places: Sequence[str | None] | None):
        matrix = self.vectoriser.transform(texts)
        if self.with_place:
            matrix = sp.hstack([matrix, _place_matrix(places or [None] * len(texts))], format="csr")
        return matrix

    def probabilities(self, texts: Sequence[str], places: Sequence[str | None] | None = None) -> np.ndarray:
        """Probabilities per text (rows) and label (columns, in `labels` order)."""
        return self.classifier.predict_proba(self._matrix(texts, places))

    @property
    def labels(self) -> list[str]:
        """The labels, in the order of the probability columns."""
        return [str(label) for label in self.classifier.classes_]

    def rank(self, text: str, place: str | None = None, k: int = 3, words: int = 6) -> Ranked:
        """The k most probable labels of one cleaned text, and the n-grams (present in it) that pushed the first
        label up most: tf-idf weight times the label's coefficient, minus the mean over labels."""
        row = self._matrix([text], [place])
        logits = (row @ self.classifier.coef_.T).ravel() + self.classifier.intercept_
        logits = np.asarray(logits, dtype=np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        order = np.argsort(-probs)[:k]
        best = int(order[0])
        coef = self.classifier.coef_
        contribution = row.data * (coef[best, row.indices] - coef[:, row.indices].mean(axis=0))
        vocabulary = self._names()
        chosen: list[str] = []
        for index in np.argsort(-contribution):
            if contribution[index] <= 0 or len(chosen) >= words:
                break
            name = vocabulary[row.indices[index]]
            if name in _STOP or any(name in other for other in chosen):
                continue
            chosen = [other for other in chosen if other not in name] + [name]
        return Ranked([self.labels[i] for i in order], [round(float(probs[i]), 4) for i in order], chosen)

    def _names(self) -> np.ndarray:
        if self._vocabulary is None:
            names = list(self.vectoriser.get_feature_names_out())
            if self.with_place:
                names += [PLACE_WORDS[kind] for kind in PLACE_KINDS]
            self._vocabulary = np.asarray(names, dtype=object)
        return self._vocabulary


def _place_matrix(places: Sequence[str | None]) -> sp.csr_matrix:
    """One column per known place kind, 1 where the complaint fell there."""
    rows, cols = [], []
    for i, place in enumerate(places):
        if place in PLACE_KINDS:
            rows.append(i)
            cols.append(PLACE_KINDS.index(place))
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(places), len(PLACE_KINDS)))


@dataclass
class DispatchModel:
    """The category model and the party model, trained together from one history."""

    category: TextClassifier
    party: TextClassifier
    seconds: dict[str, float] = field(default_factory=dict)

    def suggest(self, text: str | None, place: str | None = None, k: int = 3) -> dict:
        """Top-k categories and parties of one complaint text, with their probabilities and the words behind
        the first category and the first party."""
        cleaned = clean_text(text)
        category = self.category.rank(cleaned, k=k)
        party = self.party.rank(cleaned, place, k=k)
        return {
            "categories": [{"code": c, "confidence": p} for c, p in zip(category.labels, category.confidences)],
            "parties": [{"party": c, "confidence": p} for c, p in zip(party.labels, party.confidences)],
            "category_words": category.words,
            "party_words": party.words,
        }

    def to_bytes(self) -> bytes:
        """The model serialised (joblib, compressed) for the `dispatch_model` table."""
        buffer = io.BytesIO()
        joblib.dump(self, buffer, compress=3)
        return buffer.getvalue()

    @staticmethod
    def from_bytes(content: bytes) -> "DispatchModel":
        """A model read back from the bytes `to_bytes` wrote (only ever bytes this code stored itself)."""
        return joblib.load(io.BytesIO(content))


def train(texts: Sequence[str], categories: Sequence[str], parties: Sequence[str | None],
          places: Sequence[str | None], max_features: int = 60_000,
          progress: Callable[[str], None] | None = None) -> DispatchModel:
    """Fit both models; rows without a known party train the category model only."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    cleaned = [clean_text(t) for t in texts]
    seconds["cleaning"] = time.perf_counter() - started
    if progress:
        progress("category")
    started = time.perf_counter()
    category = TextClassifier.fit(cleaned, categories, max_features=max_features)
    seconds["category"] = time.perf_counter() - started
    if progress:
        progress("party")
    started = time.perf_counter()
    known = [i for i, p in enumerate(parties) if p]
    # Every third row is shown without its place, so the model also answers for a text alone (a call-taker's
    # question, a report not yet placed).
    party = TextClassifier.fit([cleaned[i] for i in known], [parties[i] for i in known],
                               [places[i] if n % 3 else None for n, i in enumerate(known)], max_features=max_features)
    seconds["party"] = time.perf_counter() - started
    return DispatchModel(category, party, seconds)


def top_k_hits(probabilities: np.ndarray, labels: Sequence[str], truth: Sequence[str], k: int) -> np.ndarray:
    """Per row, whether the true label is among the k most probable."""
    index = {label: i for i, label in enumerate(labels)}
    wanted = np.array([index.get(t, -1) for t in truth])
    top = np.argsort(-probabilities, axis=1)[:, :k]
    return (top == wanted[:, None]).any(axis=1)


def calibration_error(probabilities: np.ndarray, labels: Sequence[str], truth: Sequence[str], bins: int = 10) -> float:
    """Expected calibration error of the first choice: the mean gap between confidence and accuracy over ten
    confidence bins, weighted by how many rows fall in each (0 is perfectly calibrated)."""
    confidence = probabilities.max(axis=1)
    correct = top_k_hits(probabilities, labels, truth, 1)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        mask = (confidence > low) & (confidence <= high)
        if mask.any():
            total += mask.sum() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(total / max(1, len(confidence)))
