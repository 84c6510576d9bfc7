"""The screen's optional semantic layer: sentence embeddings and a linear head over them.

Word n-grams recognise attacks phrased like the ones the screen was fitted on; an embedding
recognises some that say the same thing in other words. The layer is optional: the screen
runs without it (in ~2 ms for a 10 KB e-mail), and with an `Embedder` it embeds the text in
chunks of up to `CHUNK_WORDS` words, scores each chunk with the head fitted by
``scripts/train_injection.py`` (``model.json`` key ``embedding``), and blends the best
chunk's logit with the n-gram model's (`EmbeddingHead.blend`).

Any object with ``name`` and ``embed(texts) -> (n, dim) float32 unit rows`` is an `Embedder`
(the same shape as the knowledge base's embedders, so one instance can serve both). The head
records the embedder it was fitted for; another embedder is refused, since its vectors mean
something else. The head ships for all-MiniLM-L6-v2 as int8 ONNX: the knowledge base's
`bosun.knowledge.embeddings.MiniLmEmbedder` (re-exported here), whose model and tokenizer are
checked against pinned sha256 hashes. One instance can serve the screen and the knowledge base.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bosun.errors import ConfigError
from bosun.knowledge.embeddings import Embedder, MiniLmEmbedder

__all__ = [
    "CHUNK_WORDS",
    "MAX_CHUNKS",
    "MINILM_NAME",
    "Embedder",
    "EmbeddingHead",
    "MiniLmEmbedder",
    "chunks",
]

Vectors = NDArray[np.float32]

CHUNK_WORDS = 64
"""A chunk grows segment by segment up to this many words (MiniLM reads ~128 tokens well)."""
MAX_CHUNKS = 48
"""Chunks embedded per text: the first ones and the last ones, so a huge text costs a bounded
amount of inference (the n-gram layer still reads all of it)."""

MINILM_NAME = "all-MiniLM-L6-v2"
"""The embedder name the shipped head was fitted for."""


@dataclass(frozen=True)
class EmbeddingHead:
    """Logistic regression over an embedding, and how its logit joins the n-gram model's."""

    embedder: str
    """`Embedder.name` the head was fitted for (compared up to the first ``:``)."""
    weights: Vectors
    """One weight per dimension."""
    bias: float
    """The head's intercept."""
    blend: tuple[float, float, float]
    """``(a, b, c)``: the screen's logit is ``a * ngram + b * embedding + c``."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmbeddingHead:
        """The ``embedding`` entry of ``model.json``."""
        a, b, c = (float(x) for x in data["blend"])
        return cls(
            embedder=str(data["embedder"]),
            weights=np.asarray(data["weights"], dtype=np.float32),
            bias=float(data["bias"]),
            blend=(a, b, c),
        )

    def check(self, embedder: Embedder) -> None:
        """Refuse an embedder whose vectors this head was not fitted on."""
        if embedder.name.split(":")[0] != self.embedder.split(":")[0]:
            raise ConfigError(
                f"the injection screen's embedding head was fitted for {self.embedder!r}, "
                f"not {embedder.name!r}: pass that embedder or refit (scripts/train_injection.py)"
            )

    def logits(self, vectors: Vectors) -> NDArray[np.float32]:
        """The head's logit for each row."""
        if vectors.ndim != 2 or vectors.shape[1] != self.weights.shape[0]:
            raise ConfigError(
                f"the embedder returned vectors of shape {vectors.shape}; the head expects "
                f"{self.weights.shape[0]} dimensions"
            )
        out: NDArray[np.float32] = vectors @ self.weights + np.float32(self.bias)
        return out

    def join(self, ngram_logit: float, embedding_logit: float) -> float:
        """The blended logit."""
        a, b, c = self.blend
        # The n-gram logit is clamped as it was when the blend was fitted: a rule-heavy text
        # may score far past any value the fit saw.
        return a * max(-20.0, min(20.0, ngram_logit)) + b * embedding_logit + c


def chunks(segs: Sequence[tuple[int, int, list[str]]], norm: str) -> list[str]:
    """`norm` cut at segment bounds into pieces of up to `CHUNK_WORDS` words (at most
    `MAX_CHUNKS`: the first and the last ones)."""
    out: list[str] = []
    start = end = words = 0
    for s, e, tokens in segs:
        if words and words + len(tokens) > CHUNK_WORDS:
            out.append(norm[start:end])
            words = 0
        if not words:
            start = s
        end, words = e, words + len(tokens)
    if words:
        out.append(norm[start:end])
    if len(out) > MAX_CHUNKS:
        half = MAX_CHUNKS // 2
        out = out[:half] + out[-half:]
    return out
