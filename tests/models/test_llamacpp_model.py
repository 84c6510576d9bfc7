"""LlamaCppModel: the missing extra, the documented dict shapes, errors, and one real GGUF (opt-in).

llama-cpp-python is not a test dependency. The adapter takes an already-loaded ``Llama`` through
``llama=``; here that is a stand-in returning the dicts ``Llama.create_chat_completion`` is
documented to return (``llama_cpp.llama_types.CreateChatCompletionResponse``; the tool-call
shape is the one ``chatml-function-calling`` builds).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import pytest

from bosun.errors import ContextTooLong, MissingDependency, ModelBadResponse, ModelTimeout
from bosun.models import (
    ModelRequest,
    ModelSettings,
    SystemMessage,
    ToolCall,
    ToolDefinition,
    UserMessage,
    infer_model,
)
from bosun.models.llamacpp import LlamaCppModel

# Read at import: the suite's autouse fixture clears BOSUN_* variables before each test runs.
LOCAL_GGUF = os.environ.get("BOSUN_LOCAL_GGUF")

WEATHER = ToolDefinition(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
PATH = "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"


def llama_completion(message: dict[str, Any], finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-5f1c",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": PATH,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40},
    }


class FakeLlama:
    """Answers like ``Llama.create_chat_completion`` and records what it was asked."""

    def __init__(self, answer: Any = None, *, fail: Exception | None = None, delay: float = 0.0):
        self.answer = answer
        self.fail = fail
        self.delay = delay
        self.calls: list[dict[str, Any]] = []

    def create_chat_completion(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return self.answer


def test_without_llama_cpp_python_the_error_says_what_to_install(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(MissingDependency, match=r"pip install 'bosun\[llamacpp\]'"):
        LlamaCppModel(model_path=PATH)


def test_infer_model_reaches_the_same_error(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(MissingDependency, match="llama-cpp-python"):
        infer_model(f"llamacpp:{PATH}")


async def test_text_answer_and_what_the_model_was_asked() -> None:
    llama = FakeLlama(llama_completion({"role": "assistant", "content": "Hello!"}))
    model = LlamaCppModel(model_path=PATH, llama=llama)
    request = ModelRequest(
        messages=(SystemMessage(content="Be brief."), UserMessage(content="Hi")),
        tools=(WEATHER,),
        settings=ModelSettings(temperature=0.0, max_tokens=50, seed=1, stop=("</s>",)),
    )

    response = await model.request(request)

    assert model.name == f"llamacpp:{PATH}"
    assert (response.text, response.provider, response.model) == ("Hello!", "llamacpp", PATH)
    assert (response.usage.input_tokens, response.usage.output_tokens) == (31, 9)
    assert response.cost_usd is None
    assert llama.calls == [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Weather for a city.",
                        "parameters": WEATHER.parameters,
                    },
                }
            ],
            "temperature": 0.0,
            "max_tokens": 50,
            "seed": 1,
            "stop": ["</s>"],
        }
    ]


async def test_native_tool_calls_of_chatml_function_calling() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call__0_get_weather_cmpl-1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            }
        ],
        "function_call": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    }
    model = LlamaCppModel(model_path=PATH, llama=FakeLlama(llama_completion(message, "tool_calls")))

    response = await model.request(
        ModelRequest(messages=(UserMessage(content="Oslo?"),), tools=(WEATHER,))
    )

    assert response.finish_reason == "tool_calls"
    assert response.tool_calls == (
        ToolCall(id="call__0_get_weather_cmpl-1", name="get_weather", arguments='{"city": "Oslo"}'),
    )


async def test_tool_calls_written_in_the_text() -> None:
    content = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    llama = FakeLlama(llama_completion({"role": "assistant", "content": content}))
    model = LlamaCppModel(model_path=PATH, llama=llama)

    response = await model.request(
        ModelRequest(messages=(UserMessage(content="Oslo?"),), tools=(WEATHER,))
    )

    assert response.text is None
    assert response.tool_calls == (
        ToolCall(id="call_fenced_0", name="get_weather", arguments='{"city":"Oslo"}'),
    )


async def test_context_overflow_is_context_too_long() -> None:
    failure = ValueError("Requested tokens (9001) exceed context window of 8192")
    model = LlamaCppModel(model_path=PATH, llama=FakeLlama(fail=failure))
    with pytest.raises(ContextTooLong) as caught:
        await model.request(ModelRequest(messages=(UserMessage(content="long"),)))
    assert caught.value.__cause__ is failure


async def test_an_empty_answer_is_a_bad_response() -> None:
    llama = FakeLlama(llama_completion({"role": "assistant", "content": ""}))
    with pytest.raises(ModelBadResponse):
        await LlamaCppModel(model_path=PATH, llama=llama).request(
            ModelRequest(messages=(UserMessage(content="Hi"),))
        )


async def test_timeout() -> None:
    llama = FakeLlama(llama_completion({"role": "assistant", "content": "late"}), delay=0.5)
    model = LlamaCppModel(model_path=PATH, llama=llama, timeout_s=0.1)
    with pytest.raises(ModelTimeout):
        await model.request(ModelRequest(messages=(UserMessage(content="Hi"),)))


@pytest.mark.local_llm
async def test_a_real_gguf_answers() -> None:
    if not LOCAL_GGUF:
        pytest.skip("set BOSUN_LOCAL_GGUF to a .gguf file to run the local model test")
    model = LlamaCppModel(model_path=LOCAL_GGUF, n_ctx=2048)
    request = ModelRequest(
        messages=(UserMessage(content="Reply with the single word: pong"),),
        settings=ModelSettings(temperature=0.0, max_tokens=16, seed=0),
    )

    response = await model.request(request)

    assert response.text is not None and response.text.strip()
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    assert response.provider == "llamacpp"
