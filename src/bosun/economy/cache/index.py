"""Nearest cached request by cosine similarity, in memory, fast at 100,000 entries.

Exact search over every vector costs a 100,000 x 384 product per lookup (tens of ms on a
loaded 2-core machine). The cache only wants neighbours above a high threshold (~0.95), and
those are easy to find approximately: each vector also gets a 256-bit sign code from fixed
random hyperplanes (SimHash). A lookup counts how many bits every code differs from the
query's (XOR and popcount over 32 bytes an entry), keeps those within `max_distance` bits
(at most the closest `candidates` of them), and scores only those exactly. Two vectors at
cosine 0.9 differ in ~37 of 256 bits on average and unrelated ones in ~128 (give or take
8), so the true neighbour is among the candidates whenever it matters, and unrelated entries
are almost never scored. Entries beyond `max_distance` (cosine below ~0.8) are never
returned: no cache would serve them. Below `exact_below` entries the index scores every
vector exactly.

Hand-written rather than faiss or hnswlib: no new native dependency for ~80 lines, and
entries are added one at a time (HNSW's strength) at a rate where appending to an array is
enough.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["VectorIndex"]

_BITS = 256
_SEED = 20240917

Vector = npt.NDArray[np.float32]


class VectorIndex:
    """Normalised float32 vectors by key; `search` returns the most similar one."""

    def __init__(
        self, *, candidates: int = 64, exact_below: int = 4096, max_distance: int = 72
    ) -> None:
        self.candidates = candidates
        """Entries scored exactly per lookup, after the Hamming pre-selection."""
        self.exact_below = exact_below
        """Below this many entries every vector is scored exactly."""
        self.max_distance = max_distance
        """Hamming distance (of 256 bits) beyond which an entry is not scored: a pair at
        cosine 0.9 differs in ~37 bits (sd ~6), so 72 loses nothing a cache would serve;
        selecting by a bound is also several times cheaper than ranking 100,000 codes."""
        self._keys: list[str] = []
        self._slots: dict[str, int] = {}
        self._vectors: Vector | None = None
        self._codes: npt.NDArray[np.uint64] | None = None
        self._planes: Vector | None = None
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def add(self, key: str, vector: Vector) -> None:
        """Add (or replace) the vector of `key`."""
        vector = _normalised(vector)
        if self._vectors is None:
            dim = vector.shape[0]
            rng = np.random.default_rng(_SEED)
            self._planes = rng.standard_normal((dim, _BITS)).astype(np.float32)
            self._vectors = np.empty((1024, dim), dtype=np.float32)
            # Word-major (words x entries): a lookup is a few passes over flat arrays.
            self._codes = np.empty((_BITS // 64, 1024), dtype=np.uint64)
        assert self._codes is not None
        slot = self._slots.get(key)
        if slot is None:
            if self._n == len(self._vectors):
                self._vectors = np.concatenate([self._vectors, np.empty_like(self._vectors)])
                self._codes = np.concatenate([self._codes, np.empty_like(self._codes)], axis=1)
            slot = self._n
            self._n += 1
            self._keys.append(key)
            self._slots[key] = slot
        self._vectors[slot] = vector
        self._codes[:, slot] = self._code(vector)

    def add_many(self, keys: list[str], vectors: Vector) -> None:
        """Add many at once (loading a scope): one product for all their codes."""
        if not keys:
            return
        fresh = [i for i, key in enumerate(keys) if key not in self._slots]
        if len(fresh) < len(keys) or self._vectors is None:
            # A replaced key, or the first vector: one at a time (sets up the planes).
            for key, vector in zip(keys, vectors, strict=True):
                self.add(key, vector)
            return
        assert self._codes is not None and self._planes is not None
        matrix = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)
        codes = np.packbits((matrix @ self._planes) > 0, axis=1).view(np.uint64)
        need = self._n + len(keys)
        while len(self._vectors) < need:
            self._vectors = np.concatenate([self._vectors, np.empty_like(self._vectors)])
            self._codes = np.concatenate([self._codes, np.empty_like(self._codes)], axis=1)
        self._vectors[self._n : need] = matrix
        self._codes[:, self._n : need] = codes.T
        for key in keys:
            self._slots[key] = self._n
            self._keys.append(key)
            self._n += 1

    def search(self, vector: Vector) -> tuple[str, float] | None:
        """The most similar entry and its cosine similarity, or None when empty (or, past
        `exact_below` entries, when nothing is within `max_distance`)."""
        if self._n == 0 or self._vectors is None or self._codes is None:
            return None
        query = _normalised(vector)
        vectors = self._vectors[: self._n]
        if self._n <= max(self.exact_below, self.candidates):
            scores = vectors @ query
            best = int(np.argmax(scores))
            return self._keys[best], float(scores[best])
        code = self._code(query)
        distances = _popcount(self._codes[0, : self._n] ^ code[0]).astype(np.uint16)
        for word in range(1, len(code)):
            distances += _popcount(self._codes[word, : self._n] ^ code[word])
        near = np.flatnonzero(distances <= self.max_distance)
        if len(near) == 0:
            return None
        if len(near) > self.candidates:
            near = near[np.argpartition(distances[near], self.candidates)[: self.candidates]]
        scores = vectors[near] @ query
        best = int(np.argmax(scores))
        return self._keys[int(near[best])], float(scores[best])

    def _code(self, vector: Vector) -> npt.NDArray[np.uint64]:
        assert self._planes is not None
        bits = np.packbits((vector @ self._planes) > 0)
        return bits.view(np.uint64)


_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """Set bits per 64-bit word. numpy >= 2 has it built in; 1.26 (which bosun still
    allows) counts through a byte table."""
    count = getattr(np, "bitwise_count", None)
    if count is not None:
        return np.asarray(count(words), dtype=np.uint8)
    per_byte = _BYTE_BITS[words.view(np.uint8)].reshape(len(words), 8)
    return np.asarray(per_byte.sum(axis=1, dtype=np.uint8), dtype=np.uint8)


def _normalised(vector: Vector) -> Vector:
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector
