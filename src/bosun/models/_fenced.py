"""Tool calls that models write as text instead of in the native tool-call format.

Small local models often answer a tool-calling prompt with text such as

    ```json
    {"name": "get_weather", "arguments": {"city": "Oslo"}}
    ```

or the Hermes/Qwen chat-template form ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``,
or (Llama 3.x) the bare JSON object as the whole message. `parse_fenced_tool_calls` finds these,
in the order they appear. Accepted shapes of one call: the name under ``name``, ``tool`` or
``function`` (``function`` may also hold a nested ``{"name", "arguments"}`` object, the OpenAI
wire shape); the arguments under ``arguments``, ``args``, ``parameters`` or ``input``, as an
object or as JSON text. A block may hold one call, a list of calls, or several calls one after
another.

A block counts only when every call in it names a tool that was offered; anything else (an
example in prose, JSON the user asked for) stays text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from bosun.models.base import ToolCall

__all__ = ["parse_fenced_tool_calls"]

_BLOCK = re.compile(
    r"<tool_call>(?P<tag>.*?)(?:</tool_call>|\Z)"
    r"|```[ \t]*(?P<label>[A-Za-z_]*)[ \t]*\r?\n?(?P<fence>.*?)```",
    re.DOTALL,
)
_CALL_LABELS = frozenset({"", "json", "tool_call", "tool_calls", "tool_code", "function_call"})
_INNER_FENCE = re.compile(r"\A```[A-Za-z_]*[ \t]*\r?\n(?P<body>.*?)```\Z", re.DOTALL)
_NAME_KEYS = ("name", "tool", "function")
_ARGUMENT_KEYS = ("arguments", "args", "parameters", "input")


def parse_fenced_tool_calls(
    text: str, tool_names: Collection[str]
) -> tuple[str | None, tuple[ToolCall, ...]]:
    """Split `text` into what remains as text and the tool calls written in it.

    Only calls of tools in `tool_names` count. Call ids are ``call_fenced_0``, ``call_fenced_1``
    and so on, in order of appearance; arguments are normalised to compact JSON text when they
    parse (kept verbatim when they do not, so the tool layer can tell the model). The remaining
    text is stripped, `None` when nothing is left; with no calls found, `text` comes back as is.
    """
    if not tool_names:
        return text, ()
    names = frozenset(tool_names)
    calls: list[tuple[str, str]] = []
    kept: list[str] = []
    position = 0
    for match in _BLOCK.finditer(text):
        found = _calls_in_block(match, names)
        if found is None:
            continue
        kept.append(text[position : match.start()])
        position = match.end()
        calls.extend(found)
    if not calls:
        whole = _calls_in(text.strip(), names)
        if not whole:
            return text, ()
        return None, _numbered(whole)
    kept.append(text[position:])
    remaining = "".join(kept).strip()
    return remaining or None, _numbered(calls)


def _numbered(calls: list[tuple[str, str]]) -> tuple[ToolCall, ...]:
    return tuple(
        ToolCall(id=f"call_fenced_{index}", name=name, arguments=arguments)
        for index, (name, arguments) in enumerate(calls)
    )


def _calls_in_block(match: re.Match[str], names: frozenset[str]) -> list[tuple[str, str]] | None:
    if match.group("tag") is not None:
        body = match.group("tag").strip()
        inner = _INNER_FENCE.match(body)
        if inner is not None:
            body = inner.group("body")
    elif match.group("label").lower() in _CALL_LABELS:
        body = match.group("fence")
    else:
        return None
    return _calls_in(body, names)


def _calls_in(body: str, names: frozenset[str]) -> list[tuple[str, str]] | None:
    """Every call in `body`, or `None` unless all of it is calls of offered tools."""
    values = _json_values(body)
    if not values:
        return None
    calls: list[tuple[str, str]] = []
    for value in values:
        items = value if isinstance(value, list) else [value]
        if not items:
            return None
        for item in items:
            call = _call(item, names)
            if call is None:
                return None
            calls.append(call)
    return calls


def _json_values(body: str) -> list[Any]:
    """JSON values written one after another; empty if any part of `body` is not JSON."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    index, end = 0, len(body)
    while True:
        while index < end and body[index] in " \t\r\n,;":
            index += 1
        if index == end:
            return values
        try:
            value, index = decoder.raw_decode(body, index)
        except (ValueError, RecursionError):
            return []
        values.append(value)


def _call(item: object, names: frozenset[str]) -> tuple[str, str] | None:
    if not isinstance(item, dict):
        return None
    function = item.get("function")
    if isinstance(function, dict):
        return _call(function, names)
    name = next((item[key] for key in _NAME_KEYS if isinstance(item.get(key), str)), None)
    if not isinstance(name, str) or name not in names:
        return None
    arguments: object = next((item[key] for key in _ARGUMENT_KEYS if key in item), {})
    normalised = _normalise_arguments(arguments)
    return None if normalised is None else (name, normalised)


def _normalise_arguments(arguments: object) -> str | None:
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError):
            return arguments
        return _dump(parsed) if isinstance(parsed, dict) else arguments
    if isinstance(arguments, dict):
        return _dump(arguments)
    if arguments is None:
        return "{}"
    return None


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
