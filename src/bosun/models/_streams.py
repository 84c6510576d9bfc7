"""Streamed answers put back together: chunks in, the body the non-streaming API would have
sent out, so one parser (and its checks) reads both.

- OpenAI chat completions: ``delta.content`` and ``delta.refusal`` are concatenated; tool
  calls arrive as fragments keyed by ``index`` (the id and name in the first, the arguments
  spread over many) and are joined per index; ``finish_reason`` ends the choice; usage comes
  in a last chunk with no choices (``stream_options={"include_usage": True}``). A stream
  that ends with no ``finish_reason`` was cut off.
- Anthropic messages: ``message_start`` carries the model and input usage,
  ``content_block_start``/``_delta`` build text and ``tool_use`` blocks (their input as
  ``input_json_delta`` fragments of one JSON text), ``message_delta`` the stop reason and
  output usage. A stream with no ``message_stop`` was cut off.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["AnthropicAssembly", "OpenAIAssembly", "StreamCut"]


class StreamCut(ValueError):
    """The stream ended before the answer did, or sent a piece bosun cannot place."""


class OpenAIAssembly:
    """Chat-completion chunks (as plain data) -> one chat-completion body."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._refusal: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._model: str | None = None
        self._usage: Any = None

    def add(self, chunk: Mapping[str, Any]) -> str | None:
        """Take one chunk; returns the text it adds, if any."""
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self._model = chunk["model"]
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        choices = chunk.get("choices") or []
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
            return None
        choice = choices[0]
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
        delta = choice.get("delta") or {}
        if not isinstance(delta, Mapping):
            raise StreamCut("a chunk's delta is not an object")
        if isinstance(delta.get("refusal"), str):
            self._refusal.append(delta["refusal"])
        for fragment in delta.get("tool_calls") or ():
            self._add_call(fragment)
        text = delta.get("content")
        if isinstance(text, str) and text:
            self._text.append(text)
            return text
        return None

    def _add_call(self, fragment: Any) -> None:
        if not isinstance(fragment, Mapping):
            raise StreamCut("a tool-call fragment is not an object")
        index = fragment.get("index", len(self._calls))
        if not isinstance(index, int):
            raise StreamCut("a tool-call fragment has no index")
        call = self._calls.setdefault(index, {"id": None, "name": "", "arguments": []})
        if isinstance(fragment.get("id"), str) and fragment["id"]:
            call["id"] = fragment["id"]
        function = fragment.get("function") or {}
        if isinstance(function.get("name"), str):
            call["name"] += function["name"]
        if isinstance(function.get("arguments"), str):
            call["arguments"].append(function["arguments"])

    def body(self) -> dict[str, Any]:
        """The assembled completion, for `parse_chat_completion`."""
        if self._finish is None:
            raise StreamCut("the stream ended before the answer did (no finish_reason)")
        message: dict[str, Any] = {"content": "".join(self._text) or None}
        if self._refusal:
            message["refusal"] = "".join(self._refusal)
        if self._calls:
            message["tool_calls"] = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": "".join(call["arguments"])},
                }
                for _, call in sorted(self._calls.items())
            ]
        return {
            "model": self._model,
            "choices": [{"message": message, "finish_reason": self._finish}],
            "usage": self._usage,
        }


class AnthropicAssembly:
    """Messages API stream events (as plain data) -> one message body."""

    def __init__(self) -> None:
        self._message: dict[str, Any] = {}
        self._blocks: dict[int, dict[str, Any]] = {}
        self._json: dict[int, list[str]] = {}
        self._usage: dict[str, Any] = {}
        self._stop_reason: Any = None
        self._stopped = False

    def add(self, event: Mapping[str, Any]) -> str | None:
        """Take one event; returns the text it adds, if any."""
        kind = event.get("type")
        if kind == "message_start":
            self._message = dict(event.get("message") or {})
            self._usage.update(self._message.get("usage") or {})
        elif kind == "content_block_start":
            block = dict(event.get("content_block") or {})
            self._blocks[self._index(event)] = block
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                return block["text"] or None
        elif kind == "content_block_delta":
            return self._delta(self._index(event), event.get("delta") or {})
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            self._stop_reason = delta.get("stop_reason", self._stop_reason)
            self._usage.update({k: v for k, v in (event.get("usage") or {}).items() if v})
        elif kind == "message_stop":
            self._stopped = True
        return None

    def _index(self, event: Mapping[str, Any]) -> int:
        index = event.get("index")
        if not isinstance(index, int):
            raise StreamCut(f"a {event.get('type')} event has no index")
        return index

    def _delta(self, index: int, delta: Mapping[str, Any]) -> str | None:
        block = self._blocks.get(index)
        if block is None:
            raise StreamCut(f"a delta for content block {index}, which never started")
        if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
            block["text"] = block.get("text", "") + delta["text"]
            return delta["text"] or None
        if delta.get("type") == "input_json_delta" and isinstance(delta.get("partial_json"), str):
            self._json.setdefault(index, []).append(delta["partial_json"])
        return None

    def body(self) -> dict[str, Any]:
        """The assembled message, for the adapter's parser."""
        if not self._stopped:
            raise StreamCut("the stream ended before the answer did (no message_stop)")
        content = []
        for index, block in sorted(self._blocks.items()):
            if block.get("type") == "tool_use" and index in self._json:
                text = "".join(self._json[index])
                try:
                    block["input"] = json.loads(text) if text.strip() else {}
                except (ValueError, RecursionError) as exc:
                    raise StreamCut(f"tool_use input is not JSON: {exc}") from exc
            content.append(block)
        return {
            **self._message,
            "content": content,
            "stop_reason": self._stop_reason,
            "usage": self._usage,
        }
