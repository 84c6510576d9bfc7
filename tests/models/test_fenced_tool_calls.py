"""Tool calls written as text: fenced JSON, ``<tool_call>`` tags, bare JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bosun.models._fenced import parse_fenced_tool_calls

TOOLS = ("get_weather", "send_email")


def parse(text: str) -> tuple[str | None, list[tuple[str, str, Any]]]:
    """The remaining text and (id, name, parsed arguments) of each call."""
    remaining, calls = parse_fenced_tool_calls(text, TOOLS)
    return remaining, [(c.id, c.name, json.loads(c.arguments)) for c in calls]


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```',
        '```\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```',
        '```tool_call\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```',
        '```JSON\n{"tool": "get_weather", "args": {"city": "Oslo"}}\n```',
        '```json\n{"function": "get_weather", "parameters": {"city": "Oslo"}}\n```',
        '```json\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}\n```',
        '```json\n{"type": "function", "function": {"name": "get_weather", '
        '"arguments": "{\\"city\\": \\"Oslo\\"}"}}\n```',
        '```json {"name": "get_weather", "arguments": {"city": "Oslo"}}```',
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}',  # cut at EOS
        '<tool_call>\n```json\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```\n'
        "</tool_call>",
        '{"name": "get_weather", "parameters": {"city": "Oslo"}}',  # Llama 3.x: the bare object
    ],
)
def test_one_call_in_every_accepted_shape(text: str) -> None:
    assert parse(text) == (None, [("call_fenced_0", "get_weather", {"city": "Oslo"})])


def test_prose_around_the_block_remains() -> None:
    text = 'I will look it up.\n```json\n{"name": "get_weather", "arguments": {}}\n```\nOne moment.'
    assert parse(text) == (
        "I will look it up.\n\nOne moment.",
        [("call_fenced_0", "get_weather", {})],
    )


def test_a_list_several_blocks_and_several_values_keep_their_order() -> None:
    text = (
        '```json\n[{"name": "get_weather", "arguments": {"city": "Oslo"}},'
        ' {"name": "send_email", "arguments": {"to": "a@b.c"}}]\n```\n'
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>\n'
        '```json\n{"name": "get_weather", "arguments": {"city": "Lima"}}\n'
        '{"name": "get_weather", "arguments": {"city": "Kyiv"}}\n```'
    )
    remaining, calls = parse(text)
    assert remaining is None
    assert calls == [
        ("call_fenced_0", "get_weather", {"city": "Oslo"}),
        ("call_fenced_1", "send_email", {"to": "a@b.c"}),
        ("call_fenced_2", "get_weather", {"city": "Rome"}),
        ("call_fenced_3", "get_weather", {"city": "Lima"}),
        ("call_fenced_4", "get_weather", {"city": "Kyiv"}),
    ]


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"name": "delete_everything", "arguments": {}}\n```',  # not offered
        '```json\n{"city": "Oslo"}\n```',  # JSON, but not a call
        '```python\nget_weather(city="Oslo")\n```',
        '```python\n{"name": "get_weather", "arguments": {}}\n```',  # other language
        '```json\n{"name": "get_weather", "arguments": {"city": "Oslo"\n```',  # broken JSON
        '```json\n[{"name": "get_weather"}, {"name": "nope"}]\n```',  # one call not offered
        "```json\n[]\n```",
        '```json\n{"name": "get_weather", "arguments": [1, 2]}\n```',
        "Plain answer, no calls.",
        '{"name": "get_weather", "arguments": {}} and then some words',
    ],
)
def test_text_that_is_not_a_call_of_an_offered_tool_stays_text(text: str) -> None:
    assert parse_fenced_tool_calls(text, TOOLS) == (text, ())


def test_nothing_is_parsed_when_no_tools_were_offered() -> None:
    text = '```json\n{"name": "get_weather", "arguments": {}}\n```'
    assert parse_fenced_tool_calls(text, ()) == (text, ())


def test_a_rejected_block_stays_while_an_accepted_one_goes() -> None:
    text = (
        'Example: ```json\n{"name": "other", "arguments": {}}\n```\n'
        '```json\n{"name": "get_weather", "arguments": {}}\n```'
    )
    remaining, calls = parse_fenced_tool_calls(text, TOOLS)
    assert remaining == 'Example: ```json\n{"name": "other", "arguments": {}}\n```'
    assert [c.name for c in calls] == ["get_weather"]


def test_arguments_that_are_not_json_are_kept_verbatim() -> None:
    text = '```json\n{"name": "get_weather", "arguments": "city=Oslo"}\n```'
    remaining, calls = parse_fenced_tool_calls(text, TOOLS)
    assert remaining is None
    assert calls[0].arguments == "city=Oslo"


def test_missing_arguments_are_an_empty_object() -> None:
    _, calls = parse_fenced_tool_calls('<tool_call>{"name": "get_weather"}</tool_call>', TOOLS)
    assert calls[0].arguments == "{}"


# Backticks are left out of generated strings: a ``` inside a JSON string ends a fence early,
# as it does in any Markdown reader.
no_backtick = st.text(st.characters(blacklist_characters="`"), max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | no_backtick,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(no_backtick, inner, max_size=3),
    max_leaves=8,
)
arguments = st.dictionaries(no_backtick, json_values, max_size=4)
calls = st.lists(st.tuples(st.sampled_from(TOOLS), arguments), min_size=1, max_size=3)
prose = st.text(st.characters(blacklist_characters="`<{[\"'"), max_size=30)


def _render(style: str, name: str, args: dict[str, Any]) -> str:
    call = json.dumps({"name": name, "arguments": args})
    if style == "tag":
        return f"<tool_call>\n{call}\n</tool_call>"
    if style == "string-arguments":
        call = json.dumps({"name": name, "arguments": json.dumps(args)})
    return f"```json\n{call}\n```"


@given(calls, prose, prose, st.sampled_from(["fence", "tag", "string-arguments"]))
def test_rendered_calls_parse_back(
    written: list[tuple[str, dict[str, Any]]], before: str, after: str, style: str
) -> None:
    text = before + "\n" + "\n".join(_render(style, n, a) for n, a in written) + "\n" + after

    remaining, parsed = parse_fenced_tool_calls(text, TOOLS)

    assert [(c.name, json.loads(c.arguments)) for c in parsed] == written
    assert [c.id for c in parsed] == [f"call_fenced_{i}" for i in range(len(written))]
    assert remaining == ((before + "\n" * (len(written) + 1) + after).strip() or None)


@given(prose)
def test_prose_without_blocks_is_returned_untouched(text: str) -> None:
    assert parse_fenced_tool_calls(text, TOOLS) == (text, ())
