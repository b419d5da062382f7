"""The text model behind suggested dispatch (智能派单), trained on the city's own history.

- The category (问题类别): character 1–3-gram TF-IDF and a multinomial logistic regression.
- The responsible party (责任主体) is not read from the text alone: a ticket's party follows from its category
  and where it fell (a compound with a property company, one without, outside compounds) — the routing rules
  (派遣规则), and on top of them whatever transfers the city's history shows. So the party's probability is
  P(party) = Σ over categories c and place kinds k of P(c | text) · P(k) · P(party | c, k), where P(party | c, k)
  is counted in the training history with the routing rules' party as one extra observation of each pair
  (`RULE_PSEUDO_COUNT`), and P(k) is the known place or, when the place is unknown (a call-taker's question, a
  report not yet placed), a second logistic regression that reads the place kind from the text.
- Calibration: the confidences are temperature-scaled. Training fits every model on the older 80 % of its rows
  (`CALIBRATION_SHARE`), picks the temperature of the category model and of the place model that minimises the
  log-loss on the newest 20 % (a time split), then refits on all rows and keeps those temperatures.
- Threshold rule: a suggestion is confident when its first category's calibrated probability is at least
  `GRIDGOV_DISPATCH_MIN_CONFIDENCE` (default 0.6); below it the model abstains (fills nothing, a person chooses
  from the top three). The same threshold applies to the first party.
- One suggestion: the vocabulary is a Python dictionary and the coefficients a dense numpy array, so one text is
  a dictionary lookup per n-gram and a gather of a few hundred coefficient rows (no scikit-learn call per text).

Nothing is downloaded: the vectoriser and the classifiers are scikit-learn's, fitted here on the texts given.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import joblib
import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from gis.errors import Conflict
from gis.intake.address import normalise

PLACE_KINDS = ("managed_compound", "unmanaged_compound", "open_space")
"""Where a complaint fell, as the party model reads it; any other place (or none known) is read from the text."""
PLACE_WORDS = {"managed_compound": "位置：有物业的小区", "unmanaged_compound": "位置：无物业的小区",
               "open_space": "位置：小区外"}
"""How a known place is shown among the words behind a suggested party."""
CALIBRATION_SHARE = 0.2
"""The newest share of the training rows the temperatures are fitted on."""
RULE_PSEUDO_COUNT = 1.0
"""How many observations the routing rules' party counts for in each category × place kind."""
FORMAT = 2
"""The stored model's format; a version stored in an older one is not loaded (train again)."""
OLD_FORMAT = "派单模型的格式已过时，请重新运行 gridgov model train"

_NUMBERS = re.compile(r"[0-9]+")
_WHITE = re.compile(r"(?u)\s\s+")
_STOP = set("的了在是有和也都就还")


def clean_text(text: str | None) -> str:
    """The text the model reads: normalised (NFKC, no spaces or punctuation, lower case) and without numbers,
    which name buildings, units and phone numbers rather than the problem."""
    return _NUMBERS.sub("", normalise(text))


@dataclass
class CharGrams:
    """The shared features: scikit-learn's TfidfVectorizer (char 1–3-grams, sublinear tf, L2), fitted by it;
    `row` computes the same vector for one text with a dictionary lookup per n-gram."""

    vectoriser: TfidfVectorizer
    vocabulary: dict[str, int]
    idf: np.ndarray
    names: list[str]

    @classmethod
    def fit(cls, texts: Sequence[str], max_features: int) -> tuple["CharGrams", object]:
        """Fit on cleaned texts; returns the features and the texts' matrix."""
        vectoriser = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, max_features=max_features,
                                     sublinear_tf=True, dtype=np.float32)
        matrix = vectoriser.fit_transform(texts)
        vocabulary = {str(k): int(v) for k, v in vectoriser.vocabulary_.items()}
        names = [""] * len(vocabulary)
        for name, index in vocabulary.items():
            names[index] = name
        return cls(vectoriser, vocabulary, vectoriser.idf_.astype(np.float32), names), matrix

    def matrix(self, texts: Sequence[str]):
        """The sparse matrix of many cleaned texts (scikit-learn's transform)."""
        return self.vectoriser.transform(texts)

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One cleaned text's vector: the indices of its known n-grams and their weights."""
        text = _WHITE.sub(" ", text.lower())
        counts: dict[int, int] = {}
        vocabulary = self.vocabulary
        for size in (1, 2, 3):
            for start in range(len(text) - size + 1):
                index = vocabulary.get(text[start:start + size])
                if index is not None:
                    counts[index] = counts.get(index, 0) + 1
        indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        weights = (np.log(np.fromiter(counts.values(), dtype=np.float32, count=len(counts))) + 1) * self.idf[indices]
        norm = float(np.sqrt(weights @ weights)) if len(weights) else 0.0
        return indices, weights / norm if norm else weights


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=-1, keepdims=True)


@dataclass
class Linear:
    """A fitted multinomial logistic regression as dense arrays: coefficients (features × labels), intercepts and
    the calibration temperature the logits are divided by."""

    labels: list[str]
    coef_t: np.ndarray
    intercept: np.ndarray
    temperature: float = 1.0

    @classmethod
    def fit(cls, matrix, labels: Sequence[str]) -> "Linear":
        """Fit on a feature matrix and one label per row."""
        classifier = LogisticRegression(C=8.0, max_iter=300, solver="lbfgs")
        classifier.fit(matrix, np.asarray(labels))
        classes = [str(c) for c in classifier.classes_]
        coef = classifier.coef_
        if len(classes) == 2:  # scikit-learn keeps one row for two classes: the second's logit against the first
            coef = np.vstack([-coef / 2, coef / 2])
            intercept = np.array([-classifier.intercept_[0] / 2, classifier.intercept_[0] / 2])
        else:
            intercept = classifier.intercept_
        return cls(classes, np.ascontiguousarray(coef.T, dtype=np.float32), intercept.astype(np.float32))

    def logits(self, matrix) -> np.ndarray:
        """Uncalibrated logits of many rows (a sparse matrix)."""
        return np.asarray(matrix @ self.coef_t, dtype=np.float64) + self.intercept

    def probabilities(self, matrix) -> np.ndarray:
        """Calibrated probabilities of many rows, columns in `labels` order."""
        return _softmax(self.logits(matrix) / self.temperature)

    def calibrate(self, matrix, truth: Sequence[str]) -> dict:
        """Set the temperature that minimises the log-loss on these rows (labels unknown to the model skipped);
        returns the log-loss before and after."""
        index = {label: i for i, label in enumerate(self.labels)}
        rows = [i for i, t in enumerate(truth) if t in index]
        if len(rows) < 10:
            return {"rows": len(rows)}
        logits = self.logits(matrix[rows])
        wanted = np.array([index[truth[i]] for i in rows])

        def loss(temperature: float) -> float:
            probs = _softmax(logits / temperature)
            return float(-np.log(np.clip(probs[np.arange(len(rows)), wanted], 1e-12, 1)).mean())

        before = loss(1.0)
        self.temperature = float(minimize_scalar(loss, bounds=(0.05, 10.0), method="bounded").x)
        return {"rows": len(rows), "temperature": round(self.temperature, 4), "log_loss_before": round(before, 4),
                "log_loss_after": round(loss(self.temperature), 4)}


@dataclass
class DispatchModel:
    """The category model, the place model, the party table (category × place kind → party) and the features
    they share, trained together from one history."""

    grams: CharGrams
    category: Linear
    place: Linear | None
    place_prior: np.ndarray
    party_labels: list[str]
    party_table: np.ndarray  # categories × place kinds × parties, each row summing to 1
    seconds: dict[str, float] = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    format: int = FORMAT

    def place_probabilities(self, matrix, places: Sequence[str | None]) -> np.ndarray:
        """P(place kind) per row: the known place, else read from the text (or the history's shares)."""
        out = np.empty((len(places), len(PLACE_KINDS)))
        unknown = [i for i, p in enumerate(places) if p not in PLACE_KINDS]
        for i, p in enumerate(places):
            if p in PLACE_KINDS:
                out[i] = [float(p == kind) for kind in PLACE_KINDS]
        if unknown:
            if self.place is None:
                out[unknown] = self.place_prior
            else:
                read = self.place.probabilities(matrix[unknown])
                out[unknown] = read[:, [self.place.labels.index(k) for k in PLACE_KINDS]]
        return out

    def category_probabilities(self, cleaned: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Calibrated category probabilities of many cleaned texts, and the labels of the columns."""
        return self.category.probabilities(self.grams.matrix(cleaned)), self.category.labels

    def party_probabilities(self, cleaned: Sequence[str], places: Sequence[str | None]
                            ) -> tuple[np.ndarray, list[str]]:
        """P(party) of many cleaned texts with their places (None: unknown), and the labels of the columns."""
        matrix = self.grams.matrix(cleaned)
        return np.einsum("nc,nk,ckp->np", self.category.probabilities(matrix),
                         self.place_probabilities(matrix, places), self.party_table), self.party_labels

    def suggest(self, text: str | None, place: str | None = None, k: int = 3, words: int = 6) -> dict:
        """Top-k categories and parties of one complaint text, with their calibrated probabilities, and the words
        behind the first category and the first party (the first party's words are those of the category that
        brings it the most probability, and the place when it is known)."""
        indices, weights = self.grams.row(clean_text(text))
        gathered = self.category.coef_t[indices]  # n-grams × categories
        categories = _softmax((weights @ gathered + self.category.intercept) / self.category.temperature)
        if place in PLACE_KINDS:
            places = np.array([float(place == kind) for kind in PLACE_KINDS])
        elif self.place is None:
            places = self.place_prior
        else:
            read = _softmax((weights @ self.place.coef_t[indices] + self.place.intercept) / self.place.temperature)
            places = read[[self.place.labels.index(kind) for kind in PLACE_KINDS]]
        by_category = categories[:, None] * np.einsum("k,ckp->cp", places, self.party_table)  # categories × parties
        parties = by_category.sum(axis=0)
        top_categories = np.argsort(-categories)[:k]
        top_parties = np.argsort(-parties)[:k]
        behind = int(np.argmax(by_category[:, top_parties[0]]))
        party_words = self._words(indices, weights, gathered, behind, words)
        if place in PLACE_KINDS:
            party_words = party_words[:words - 1] + [PLACE_WORDS[place]]
        return {
            "categories": [{"code": self.category.labels[i], "confidence": round(float(categories[i]), 4)}
                           for i in top_categories],
            "parties": [{"party": self.party_labels[i], "confidence": round(float(parties[i]), 4)}
                        for i in top_parties],
            "category_words": self._words(indices, weights, gathered, int(top_categories[0]), words),
            "party_words": party_words,
        }

    def _words(self, indices: np.ndarray, weights: np.ndarray, gathered: np.ndarray, label: int,
               words: int) -> list[str]:
        """The n-grams of the text that pushed `label` up most: tf-idf weight times the label's coefficient, minus
        the mean over labels; none inside another chosen, no stop characters."""
        contribution = weights * (gathered[:, label] - gathered.mean(axis=1))
        chosen: list[str] = []
        for index in np.argsort(-contribution):
            if contribution[index] <= 0 or len(chosen) >= words:
                break
            name = self.grams.names[indices[index]]
            if name in _STOP or any(name in other for other in chosen):
                continue
            chosen = [other for other in chosen if other not in name] + [name]
        return chosen

    def to_bytes(self) -> bytes:
        """The model serialised (joblib, compressed) for the `dispatch_model` table."""
        buffer = io.BytesIO()
        joblib.dump(self, buffer, compress=3)
        return buffer.getvalue()

    @staticmethod
    def from_bytes(content: bytes) -> "DispatchModel":
        """A model read back from the bytes `to_bytes` wrote (only ever bytes this code stored itself); Conflict
        (OLD_FORMAT) when they were written by an earlier format."""
        try:
            model = joblib.load(io.BytesIO(content))
        except (AttributeError, ModuleNotFoundError, TypeError) as error:
            raise Conflict(OLD_FORMAT) from error
        if not isinstance(model, DispatchModel) or getattr(model, "format", 1) != FORMAT:
            raise Conflict(OLD_FORMAT)
        return model


def _party_table(categories: list[str], rows: Sequence[tuple[str, str | None, str | None]],
                 routes: dict[tuple[str, str], str]) -> tuple[list[str], np.ndarray]:
    """P(party | category, place kind): the history's final parties counted, the routing rules' party added as
    RULE_PSEUDO_COUNT observations, a pair with neither spread evenly."""
    parties = sorted({p for _, k, p in rows if p and k in PLACE_KINDS} | set(routes.values()))
    c_index = {c: i for i, c in enumerate(categories)}
    p_index = {p: i for i, p in enumerate(parties)}
    table = np.zeros((len(categories), len(PLACE_KINDS), len(parties)))
    for category, place, party in rows:
        if party and place in PLACE_KINDS and category in c_index:
            table[c_index[category], PLACE_KINDS.index(place), p_index[party]] += 1
    for (category, place), party in routes.items():
        if category in c_index and place in PLACE_KINDS:
            table[c_index[category], PLACE_KINDS.index(place), p_index[party]] += RULE_PSEUDO_COUNT
    totals = table.sum(axis=2, keepdims=True)
    table = np.where(totals > 0, table / np.maximum(totals, 1e-12), 1.0 / max(1, len(parties)))
    return parties, table.astype(np.float64)


def _fit(cleaned: list[str], categories: Sequence[str], places: Sequence[str | None], parties: Sequence[str | None],
         routes: dict[tuple[str, str], str], max_features: int) -> DispatchModel:
    grams, matrix = CharGrams.fit(cleaned, max_features)
    category = Linear.fit(matrix, categories)
    placed = [i for i, p in enumerate(places) if p in PLACE_KINDS]
    kinds = {places[i] for i in placed}
    place = Linear.fit(matrix[placed], [places[i] for i in placed]) if len(kinds) > 1 else None
    prior = np.array([sum(places[i] == kind for i in placed) for kind in PLACE_KINDS], dtype=np.float64)
    prior = prior / prior.sum() if prior.sum() else np.full(len(PLACE_KINDS), 1 / len(PLACE_KINDS))
    labels, table = _party_table(category.labels, list(zip(categories, places, parties)), routes)
    return DispatchModel(grams, category, place, prior, labels, table)


def train(texts: Sequence[str], categories: Sequence[str], parties: Sequence[str | None],
          places: Sequence[str | None], routes: dict[tuple[str, str], str] | None = None,
          max_features: int = 60_000, progress: Callable[[str], None] | None = None) -> DispatchModel:
    """Fit the models on rows oldest first (rows without a known party count for the category only); `routes`
    is the routing rules' party per (category, place kind). The temperatures come from the newest
    CALIBRATION_SHARE of the rows, fitted on the rest; the stored model is then fitted on every row."""
    routes = routes or {}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    cleaned = [clean_text(t) for t in texts]
    seconds["cleaning"] = time.perf_counter() - started
    calibration: dict = {}
    cut = int(round(len(cleaned) * (1 - CALIBRATION_SHARE)))
    temperatures = (1.0, 1.0)
    if progress:
        progress("calibration")
    started = time.perf_counter()
    if len(set(categories[:cut])) > 1 and len(cleaned) - cut >= 10:
        inner = _fit(cleaned[:cut], categories[:cut], places[:cut], parties[:cut], routes, max_features)
        held = inner.grams.matrix(cleaned[cut:])
        calibration["category"] = inner.category.calibrate(held, categories[cut:])
        if inner.place is not None:
            placed = [i for i, p in enumerate(places[cut:]) if p in PLACE_KINDS]
            calibration["place"] = inner.place.calibrate(held[placed], [places[cut + i] for i in placed])
        temperatures = (inner.category.temperature, inner.place.temperature if inner.place else 1.0)
    seconds["calibration"] = time.perf_counter() - started
    if progress:
        progress("category, place and party")
    started = time.perf_counter()
    model = _fit(cleaned, categories, places, parties, routes, max_features)
    model.category.temperature = temperatures[0]
    if model.place is not None:
        model.place.temperature = temperatures[1]
    seconds["fitting"] = time.perf_counter() - started
    model.seconds, model.calibration = seconds, calibration
    return model


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
