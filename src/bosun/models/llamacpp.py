"""A local GGUF model run in-process by `llama-cpp-python` (the optional extra ``bosun[llamacpp]``).

``Llama.create_chat_completion`` takes and returns the OpenAI chat-completions shape as plain
dicts, so messages, tools and the answer go through the same functions as the OpenAI adapter
(`bosun.models._openai_format`), including tool calls written as fenced JSON or
``<tool_call>`` tags, which is how most small models answer when the chat format has no native
tool calling. Streaming is not supported in this version. A local call costs nothing per token
that genai-prices could know, so `cost_usd` is `None`.

Generation runs in a worker thread, one at a time per model (a ``Llama`` is not thread-safe).
A timeout stops waiting, not the computation: the thread finishes its generation before the
next request of the same model starts.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Protocol

from bosun.errors import (
    ConfigError,
    ContextTooLong,
    MissingDependency,
    ModelError,
    ModelTimeout,
    ModelUnavailable,
)
from bosun.models._http_errors import looks_like_context_overflow
from bosun.models._openai_format import (
    chat_messages,
    chat_tools,
    parse_chat_completion,
    sampling_params,
)
from bosun.models.base import Model, ModelRequest, ModelResponse

__all__ = ["ChatCompleter", "LlamaCppModel"]

_INSTALL = "pip install 'bosun[llamacpp]'"


class ChatCompleter(Protocol):
    """What bosun uses of ``llama_cpp.Llama``: one method returning an OpenAI-shaped dict."""

    def create_chat_completion(self, **kwargs: Any) -> Any:
        """A chat completion, as ``Llama.create_chat_completion`` returns it."""


class LlamaCppModel(Model):
    """A GGUF model loaded by llama-cpp-python, behind the one `Model` interface."""

    model_path: str
    """Path of the GGUF file."""
    timeout_s: float | None
    """How long a request waits for generation when its settings say nothing; `None`: no limit."""

    def __init__(
        self,
        *,
        model_path: str,
        n_ctx: int = 8192,
        n_gpu_layers: int = 0,
        chat_format: str | None = None,
        timeout_s: float | None = None,
        llama: ChatCompleter | None = None,
    ) -> None:
        """Load `model_path` (or use `llama`, an already loaded ``Llama``).

        `n_ctx` is the context window to allocate (llama.cpp's own default, 512, is too small for
        tool-calling prompts); `n_gpu_layers` how many layers to offload (-1: all); `chat_format`
        a llama-cpp-python chat format name, `None` for the template inside the GGUF. Raises
        `MissingDependency` without llama-cpp-python, `ConfigError` when the file cannot be
        loaded.
        """
        self.model_path = model_path
        self.timeout_s = timeout_s
        self.name = f"llamacpp:{model_path}"
        self._lock = threading.Lock()
        self._llama = (
            llama if llama is not None else _load(model_path, n_ctx, n_gpu_layers, chat_format)
        )

    async def request(self, request: ModelRequest) -> ModelResponse:
        """Generate one chat completion in a worker thread."""
        kwargs: dict[str, Any] = {
            "messages": chat_messages(request.messages),
            **sampling_params(request.settings),
        }
        if request.tools:
            kwargs["tools"] = chat_tools(request.tools)
        timeout = request.settings.timeout_s
        if timeout is None:
            timeout = self.timeout_s
        try:
            data = await asyncio.wait_for(asyncio.to_thread(self._generate, kwargs), timeout)
        except TimeoutError as exc:
            raise ModelTimeout(
                f"llamacpp: no answer within {timeout} s",
                provider="llamacpp",
                model=self.model_path,
            ) from exc
        except (ValueError, RuntimeError, OSError) as exc:
            raise _translate(exc, model=self.model_path) from exc
        return parse_chat_completion(
            data, request=request, provider="llamacpp", model=self.model_path
        )

    def _generate(self, kwargs: dict[str, Any]) -> Any:
        with self._lock:
            return self._llama.create_chat_completion(**kwargs)


def _load(model_path: str, n_ctx: int, n_gpu_layers: int, chat_format: str | None) -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependency(
            f"LlamaCppModel needs llama-cpp-python, which is not installed: {_INSTALL}"
        ) from exc
    try:
        return llama_cpp.Llama(
            model_path=model_path,
            n_ctx=n_ctx,
            n_gpu_layers=n_gpu_layers,
            chat_format=chat_format,
            verbose=False,
        )
    except ValueError as exc:  # "Model path does not exist", "Failed to load model from file"
        raise ConfigError(f"llama-cpp-python cannot load {model_path!r}: {exc}") from exc


def _translate(exc: Exception, *, model: str) -> ModelError:
    """The bosun error for a llama-cpp-python failure, most specific first."""
    if isinstance(exc, ValueError) and looks_like_context_overflow(str(exc)):
        return ContextTooLong(f"llamacpp: {exc}", provider="llamacpp", model=model)
    if isinstance(exc, RuntimeError | OSError):
        return ModelUnavailable(f"llamacpp: {exc}", provider="llamacpp", model=model)
    return ModelError(f"llamacpp: {exc}", provider="llamacpp", model=model)
