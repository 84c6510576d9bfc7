"""What the cache needs of an embedding model, and a deterministic one for tests.

`Embedder` is one method, so any model plugs in: ``bosun.knowledge``'s offline
all-MiniLM-L6-v2 (ONNX, int8), a sentence-transformers model, an embeddings API.
`HashingEmbedder` is a stand-in with no model at all: hashed word and character n-grams,
L2-normalised. It is deterministic and fast, and it knows nothing of meaning (paraphrases
with other words score low): for tests and for trying the cache out, not for production.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["Embedder", "HashingEmbedder"]


@runtime_checkable
class Embedder(Protocol):
    """Texts to vectors (any length, the same for every text). May raise when the service
    behind it is down: the cache is then bypassed, never the run."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text."""
        ...


_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Hashed word unigrams, bigrams and character trigrams (see the module doc)."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        """Vector length."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        words = _WORD.findall(text.casefold())
        features = [*words, *(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))]
        for word in words:
            padded = f" {word} "
            features += [padded[i : i + 3] for i in range(len(padded) - 2)]
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dim
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]
