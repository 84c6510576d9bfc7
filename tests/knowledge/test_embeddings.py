"""The default embedder reproduces all-MiniLM-L6-v2; its files are pinned; an OpenAI-compatible
endpoint plugs in.

Reference vectors (minilm_reference.json): the original fp32 model through
sentence-transformers, computed once in a throwaway environment with PyTorch (see the file's
"source"); bosun runs the int8 ONNX repackaging, which must agree to cosine >= 0.99.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bosun.errors import ConfigError, ModelError
from bosun.knowledge.embeddings import (
    MINILM_MODEL_SHA256,
    MiniLmEmbedder,
    OpenAIEmbedder,
    _packaged_model,
    _sha256,
)
from servers import serve

REFERENCE = json.loads((Path(__file__).parent / "minilm_reference.json").read_text())


def test_the_reference_sentences_match_the_original_model(embedder: MiniLmEmbedder) -> None:
    sentences = REFERENCE["sentences"]
    vectors = embedder.embed([s["text"] for s in sentences])

    assert REFERENCE["model_safetensors_sha256"].startswith("53aa5117")
    for sentence, vector in zip(sentences, vectors, strict=True):
        reference = np.asarray(sentence["vector"], dtype=np.float32)
        cosine = float(vector @ reference / np.linalg.norm(reference))
        assert cosine >= 0.99, (sentence["text"], cosine)


def test_vectors_are_unit_length_and_independent_of_batching(embedder: MiniLmEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence about refunds and returns", "x " * 400]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([t])[0] for t in reversed(texts)][::-1])

    assert together.shape == (3, 384)
    assert together.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(together, alone, atol=1e-4)
    assert embedder.embed([]).shape == (0, 384)


def test_similar_texts_are_closer_than_unrelated_ones(embedder: MiniLmEmbedder) -> None:
    refund, money_back, weather = embedder.embed(
        ["How do I get a refund?", "I want my money back for this order", "It will rain tomorrow"]
    )

    assert refund @ money_back > refund @ weather + 0.2


def test_the_model_file_is_pinned(tmp_path: Path) -> None:
    packaged = _packaged_model()
    assert _sha256(packaged) == MINILM_MODEL_SHA256
    tampered = tmp_path / "model.onnx"
    shutil.copyfile(packaged, tampered)
    with tampered.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")

    with pytest.raises(ConfigError, match="has sha256 .*, expected 8199be6f"):
        MiniLmEmbedder(model_path=tampered).embed(["anything"])


# --- an OpenAI-compatible endpoint ---------------------------------------------------------


def embeddings_app(seen: list[dict[str, Any]]) -> FastAPI:
    """/v1/embeddings answering unnormalised vectors, out of order; model 'down' fails."""
    app = FastAPI()

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append(body)
        if body["model"] == "down":
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), 2.0, 0.0]}
            for i, text in enumerate(body["input"])
        ]
        return JSONResponse(
            {
                "object": "list",
                "data": data[::-1],
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        )

    return app


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    with serve(embeddings_app(seen)) as url:
        yield f"{url}/v1", seen


def test_an_openai_compatible_endpoint_embeds_in_batches(
    endpoint: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = endpoint
    embedder = OpenAIEmbedder(model="tiny", base_url=url, api_key="k", batch_size=2)

    vectors = embedder.embed(["a", "bbb", "cc"])

    assert [len(body["input"]) for body in seen] == [2, 1]
    assert seen[0]["encoding_format"] == "float"
    expected = np.array([[1, 2, 0], [3, 2, 0], [2, 2, 0]], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)
    assert embedder.name == f"openai:tiny@{url}"


def test_an_endpoint_failure_is_a_model_error(
    endpoint: tuple[str, list[dict[str, Any]]],
) -> None:
    url, _ = endpoint
    embedder = OpenAIEmbedder(model="down", base_url=url, api_key="k")

    with pytest.raises(ModelError) as caught:
        embedder.embed(["a"])

    assert caught.value.status_code == 503
    assert caught.value.model == "down"
