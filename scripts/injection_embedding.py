"""The embedding layer's part of ``train_injection.py``: the head over all-MiniLM-L6-v2
vectors, the blend with the n-gram model, and a cache so each text is embedded once.

MiniLM on a 2-core machine embeds ~10-50 chunks a second, so the measurements that need
embeddings of long documents use a fixed, stratified sample of each source (`sample`); the
tables say how many documents they are over.
"""

from __future__ import annotations

import math
import pickle
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from injection_corpus import SEED, Doc, Unit, family
from numpy.typing import NDArray

from bosun.gateway.injection.embedding import MINILM_NAME, MiniLmEmbedder, chunks
from bosun.gateway.injection.features import normalize, segments

C_HEAD = 1.0
PER_SOURCE = 120
"""Documents per source (half attacks, half benign where both exist) in the sampled tables."""


class CachedEmbedder:
    """`MiniLmEmbedder` that remembers every vector, optionally across runs (a pickle)."""

    def __init__(self, path: Path | None = None) -> None:
        self.inner = MiniLmEmbedder(threads=1, batch_size=32)
        self.name = self.inner.name
        self.path = path
        self.memo: dict[str, NDArray[np.float32]] = {}
        if path is not None and path.exists():
            self.memo = pickle.loads(path.read_bytes())

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        todo = sorted({t for t in texts if t not in self.memo})
        if todo:
            for text, row in zip(todo, self.inner.embed(todo), strict=True):
                self.memo[text] = row
        return np.stack([self.memo[t] for t in texts]) if texts else np.zeros((0, 384), "f4")

    def save(self) -> None:
        if self.path is not None:
            self.path.write_bytes(pickle.dumps(self.memo))


def unit_chunks(unit: Unit) -> list[str]:
    """The chunks the screen would embed for `unit` (a windowed unit's every chunk is a
    sample; a plain unit is one sample, its first chunk)."""
    norm = normalize(unit.text)[0]
    pieces = chunks(segments(norm), norm)
    return pieces if unit.windowed else pieces[:1]


def fit_head(units: Sequence[Unit], embedder: CachedEmbedder) -> dict[str, Any]:
    """Logistic regression on chunk vectors, source families weighted equally per class."""
    from sklearn.linear_model import LogisticRegression

    rows: list[tuple[str, int, str]] = [
        (piece, u.label, family(u.source)) for u in units for piece in unit_chunks(u)
    ]
    x = embedder.embed([r[0] for r in rows])
    per = Counter((fam, label) for _, label, fam in rows)
    weights = [len(rows) / (len(per) * per[(fam, label)]) for _, label, fam in rows]
    clf = LogisticRegression(C=C_HEAD, max_iter=5000)
    clf.fit(x, np.array([r[1] for r in rows]), sample_weight=np.array(weights))
    return {
        "embedder": MINILM_NAME,
        "weights": [round(float(w), 4) for w in clf.coef_[0]],
        "bias": round(float(clf.intercept_[0]), 4),
    }


def fit_blend(triples: Sequence[tuple[Doc, float, float]]) -> list[float]:
    """``[a, b, c]`` of ``a * ngram + b * embedding + c``, by logistic regression on
    out-of-fold logits, source families weighted equally per class."""
    from sklearn.linear_model import LogisticRegression

    per = Counter((family(d.source), d.label) for d, _, _ in triples)
    weights = [len(triples) / (len(per) * per[(family(d.source), d.label)]) for d, _, _ in triples]
    x = np.array([[max(-20.0, min(20.0, n)), e] for _, n, e in triples])
    clf = LogisticRegression(C=1.0, max_iter=1000)
    clf.fit(x, np.array([d.label for d, _, _ in triples]), sample_weight=np.array(weights))
    a, b = clf.coef_[0]
    return [round(float(a), 4), round(float(b), 4), round(float(clf.intercept_[0]), 4)]


def blended(blend: Sequence[float], ngram: float, embedding: float) -> float:
    """The screen's score for the blended logit (as `EmbeddingHead.join` computes it)."""
    a, b, c = blend
    z = a * max(-20.0, min(20.0, ngram)) + b * embedding + c
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def sample(docs: Sequence[Doc], salt: str, per_source: int = PER_SOURCE) -> list[Doc]:
    """A fixed sample of each source: up to `per_source` documents, half of each label."""
    out: list[Doc] = []
    for source in sorted({d.source for d in docs}):
        for label in (0, 1):
            mine = [d for d in docs if d.source == source and d.label == label]
            random.Random(f"{SEED}:{salt}:{source}:{label}").shuffle(mine)
            out += mine[: per_source // 2]
    return out
