"""The semantic cache: `SemanticCache` (a `Model` wrapper), its backends and embedders."""

from bosun.economy.cache.backends import CacheBackend, RedisCacheBackend, StoreCacheBackend
from bosun.economy.cache.embedder import Embedder, HashingEmbedder, MiniLmEmbedder
from bosun.economy.cache.index import VectorIndex
from bosun.economy.cache.semantic import CachePolicy, CacheStats, SemanticCache, uncacheable

__all__ = [
    "CacheBackend",
    "CachePolicy",
    "CacheStats",
    "Embedder",
    "HashingEmbedder",
    "MiniLmEmbedder",
    "RedisCacheBackend",
    "SemanticCache",
    "StoreCacheBackend",
    "VectorIndex",
    "uncacheable",
]
