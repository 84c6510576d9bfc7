"""What the cache needs of an embedding model, and a deterministic one for tests.

`Embedder` is the knowledge base's protocol (``bosun.knowledge.embeddings``): a ``name``
and ``embed(texts) -> (n, dim) float32 unit rows``, so one instance serves both, and any
model plugs in: the offline all-MiniLM-L6-v2 (`MiniLmEmbedder`, ONNX int8, the default
when the cache is configured in settings), an OpenAI-compatible embeddings API.
The name is part of the cache's scope: vectors of different embedders are never compared.

`HashingEmbedder` is a stand-in with no model at all: hashed word and character n-grams,
L2-normalised. It is deterministic and fast, and it knows nothing of meaning (paraphrases
with other words score low): for tests and for trying the cache out, not for production.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from bosun.knowledge.embeddings import Embedder, MiniLmEmbedder, Vectors

__all__ = ["Embedder", "HashingEmbedder", "MiniLmEmbedder"]

_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Hashed word unigrams, bigrams and character trigrams (see the module doc)."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        """Vector length."""
        self.name = f"hashing:{dim}"
        """Identifies the vectors (no model: the hashing scheme and its length)."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            self._one(text, out[row])
        return out

    def _one(self, text: str, vector: Vectors) -> None:
        words = _WORD.findall(text.casefold())
        features = [*words, *(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))]
        for word in words:
            padded = f" {word} "
            features += [padded[i : i + 3] for i in range(len(padded) - 2)]
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dim
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vector))
        if norm:
            vector /= norm
