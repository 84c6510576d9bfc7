"""Argument matchers: how an expected tool argument (``equals``, ``regex``, ``contains``,
``any``, or a plain value) is read from a dataset and checked against a proposed call."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Matcher", "argument_matchers", "match_arguments", "matcher"]

_MATCHER_KEYS = frozenset({"equals", "regex", "contains", "any"})


@dataclass(frozen=True, slots=True)
class Matcher:
    """One argument's expectation."""

    kind: Literal["equals", "regex", "contains", "any"]
    """How `value` is compared."""
    value: Any
    """The expected value, pattern or part."""

    def check(self, present: bool, actual: Any) -> bool:
        """Whether an argument (`present` or not, with value `actual`) satisfies it."""
        if not present:
            return False
        if self.kind == "any":
            return True
        if self.kind == "equals":
            return bool(_same(actual, self.value))
        if self.kind == "regex":
            text = actual if isinstance(actual, str) else json.dumps(actual, sort_keys=True)
            return re.search(self.value, text) is not None
        return _contains(actual, self.value)

    def describe(self) -> str:
        """The matcher as text, for reports."""
        if self.kind == "any":
            return "any"
        return f"{self.kind} {json.dumps(self.value, ensure_ascii=False, default=str)}"


def matcher(raw: Any) -> Matcher:
    """A `Matcher` from its dataset form; raises ``ValueError`` for a bad regex."""
    if isinstance(raw, Mapping) and len(raw) == 1 and next(iter(raw)) in _MATCHER_KEYS:
        kind, value = next(iter(raw.items()))
        if kind == "regex":
            if not isinstance(value, str):
                raise ValueError("regex takes a string")
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from exc
        if kind == "any" and value is not True:
            raise ValueError("write `any: true`")
        return Matcher(kind, value)
    return Matcher("equals", raw)


def match_arguments(expected: Mapping[str, Matcher], arguments: Mapping[str, Any]) -> bool:
    """Whether `arguments` satisfy every matcher (arguments not named are not checked)."""
    return all(m.check(name in arguments, arguments.get(name)) for name, m in expected.items())


def _same(actual: Any, expected: Any) -> bool:
    # JSON has one number type: 42 and 42.0 are the same argument; True is not 1.
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    return bool(actual == expected)


def _contains(actual: Any, part: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(part, str) and part in actual
    if isinstance(actual, list):
        return any(_same(item, part) for item in actual)
    if isinstance(actual, dict) and isinstance(part, Mapping):
        return all(k in actual and _same(actual[k], v) for k, v in part.items())
    return False


def argument_matchers(value: Mapping[str, Any]) -> dict[str, Matcher]:
    """Each argument's `Matcher` from its dataset form; the ``ValueError`` names the argument."""
    out = {}
    for name, raw in value.items():
        try:
            out[name] = matcher(raw)
        except ValueError as exc:
            raise ValueError(f"argument {name!r}: {exc}") from exc
    return out
