"""Golden datasets for offline evaluation: cases, fixtures and behavioural assertions.

A dataset is a YAML file (a mapping with ``cases``, or a list of cases) or JSONL (one case a
line). Each case has an ``id``, an ``input`` (text, or labelled parts), optional
``fixtures`` (canned tool results) and ``expect``: a list of assertions, each a mapping with
one of these keys:

```yaml
- must_call: refund            # the agent proposed this tool call ...
  args: {order_id: 42, reason: {regex: "damag"}, note: {any: true}}   # ... with these args
  times: 1                     # optional: exactly this many matching calls
- must_not_call: delete_account      # args: optional, as above
- escalates: true              # the run ended with a person (escalated, or asked a question)
- output_matches: "refund of \\$\\d+"    # regex, searched
- output_contains: "refund"
- output_schema: {type: object, required: [status]}   # the output is JSON matching it
- max_cost_usd: 0.05
- max_steps: 6                 # model calls
- judge: {rubric: "Polite and names the order", threshold: 0.7, model: "openai:gpt-4.1"}
```

An argument matcher is a plain value (equality) or a one-key mapping: ``equals``, ``regex``
(searched in the value's text), ``contains`` (substring, list element, or sub-mapping) or
``any`` (present, any value). Arguments a matcher does not name are not checked.

Fixtures answer tool calls instead of the tool, per tool name: entries with ``when`` (argument
matchers) answer every matching call; entries without are used once each, in order. An entry
gives a ``result``, an ``error`` (the tool fails permanently) or ``retry`` (guidance for the
model). Dataset-level ``fixtures`` and ``variables`` (the prompt template's) apply to every
case that does not set its own for that tool or variable.

Validation errors name the case id and the field, all at once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from bosun.errors import UserError
from bosun.trust import Trust

__all__ = [
    "Assertion",
    "Case",
    "Dataset",
    "DatasetError",
    "Escalates",
    "Fixture",
    "InputPart",
    "Judge",
    "Matcher",
    "MaxCost",
    "MaxSteps",
    "MustCall",
    "MustNotCall",
    "OutputContains",
    "OutputMatches",
    "OutputSchema",
    "load_dataset",
    "match_arguments",
    "matcher",
    "parse_dataset",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)
_MATCHER_KEYS = frozenset({"equals", "regex", "contains", "any"})


class DatasetError(UserError):
    """A dataset that cannot be used: the message names the file, the case and the field."""


# --- argument matchers ----------------------------------------------------------------------


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


def _matchers(value: Mapping[str, Any]) -> dict[str, Matcher]:
    out = {}
    for name, raw in value.items():
        try:
            out[name] = matcher(raw)
        except ValueError as exc:
            raise ValueError(f"argument {name!r}: {exc}") from exc
    return out


# --- cases ----------------------------------------------------------------------------------


class InputPart(BaseModel):
    """One labelled piece of a case's input (`bosun.runtime.Content`)."""

    model_config = _STRICT

    text: str
    trust: Trust = Trust.USER
    source: str = "user"


class Fixture(BaseModel):
    """A canned answer for a tool call."""

    model_config = _STRICT

    when: dict[str, Any] | None = None
    """Argument matchers; None: used once, in order."""
    result: Any = None
    """What the tool returns."""
    error: str | None = None
    """Instead of a result: the tool fails with this message (not retried)."""
    retry: str | None = None
    """Instead of a result: guidance sent back to the model (`bosun.errors.ModelRetry`)."""

    @model_validator(mode="after")
    def _one_answer(self) -> Fixture:
        given = [k for k in ("result", "error", "retry") if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError("give exactly one of result, error, retry")
        if self.when is not None:
            _matchers(self.when)
        return self

    def matchers(self) -> dict[str, Matcher]:
        """`when` as matchers."""
        return _matchers(self.when or {})


class _ArgsAssertion(BaseModel):
    model_config = _STRICT

    args: dict[str, Any] = {}
    """Argument matchers."""

    @field_validator("args")
    @classmethod
    def _valid_matchers(cls, value: dict[str, Any]) -> dict[str, Any]:
        _matchers(value)
        return value

    def matchers(self) -> dict[str, Matcher]:
        """`args` as matchers."""
        return _matchers(self.args)


class MustCall(_ArgsAssertion):
    """The agent proposed a call of `must_call` whose arguments match."""

    must_call: str
    times: int | None = Field(default=None, ge=1)
    """Exactly this many matching calls; None: at least one."""


class MustNotCall(_ArgsAssertion):
    """The agent never proposed a call of `must_not_call` (with matching arguments, if given)."""

    must_not_call: str


class Escalates(BaseModel):
    """The run ended with a person (escalated or asking), or did not."""

    model_config = _STRICT

    escalates: bool


class OutputMatches(BaseModel):
    """The final output contains a match of the regex."""

    model_config = _STRICT

    output_matches: str

    @field_validator("output_matches")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from exc
        return value


class OutputContains(BaseModel):
    """The final output contains the text."""

    model_config = _STRICT

    output_contains: str


class OutputSchema(BaseModel):
    """The final output is JSON valid against the schema."""

    model_config = _STRICT

    output_schema: dict[str, Any]

    @field_validator("output_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON schema: {exc.message}") from exc
        return value


class MaxCost(BaseModel):
    """The run cost at most this much (judge calls not included)."""

    model_config = _STRICT

    max_cost_usd: Decimal = Field(ge=0)


class MaxSteps(BaseModel):
    """The run made at most this many model calls."""

    model_config = _STRICT

    max_steps: int = Field(ge=1)


class Judge(BaseModel):
    """A rubric scored by a judge model from 0 to 1."""

    model_config = _STRICT

    rubric: str = Field(min_length=1)
    """What a good output does."""
    threshold: float = Field(default=0.5, ge=0, le=1)
    """Scores at or above pass."""
    model: str | None = None
    """The judge model; None: the evaluation's judge."""
    name: str | None = None
    """A short name for reports."""


class JudgeAssertion(BaseModel):
    """``judge: {...}``."""

    model_config = _STRICT

    judge: Judge


_ASSERTIONS: dict[str, type[BaseModel]] = {
    "must_call": MustCall,
    "must_not_call": MustNotCall,
    "escalates": Escalates,
    "output_matches": OutputMatches,
    "output_contains": OutputContains,
    "output_schema": OutputSchema,
    "max_cost_usd": MaxCost,
    "max_steps": MaxSteps,
    "judge": JudgeAssertion,
}


def _assertion_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return next((k for k, t in _ASSERTIONS.items() if isinstance(value, t)), None)
    if isinstance(value, Mapping):
        return next((k for k in _ASSERTIONS if k in value), None)
    return None


Assertion = Annotated[
    Annotated[MustCall, Tag("must_call")]
    | Annotated[MustNotCall, Tag("must_not_call")]
    | Annotated[Escalates, Tag("escalates")]
    | Annotated[OutputMatches, Tag("output_matches")]
    | Annotated[OutputContains, Tag("output_contains")]
    | Annotated[OutputSchema, Tag("output_schema")]
    | Annotated[MaxCost, Tag("max_cost_usd")]
    | Annotated[MaxSteps, Tag("max_steps")]
    | Annotated[JudgeAssertion, Tag("judge")],
    Discriminator(
        _assertion_kind,
        custom_error_type="unknown_assertion",
        custom_error_message=f"an assertion needs one of the keys {', '.join(_ASSERTIONS)}",
    ),
]
"""One behavioural expectation of a case."""

Fixtures = dict[str, list[Fixture]]


class Case(BaseModel):
    """One input and what the agent must (not) do with it."""

    model_config = _STRICT

    id: str = Field(min_length=1, max_length=200)
    input: str | list[InputPart] = Field(min_length=1)
    """The run's input: text, or labelled parts."""
    expect: list[Assertion] = Field(min_length=1)
    """What must hold."""
    fixtures: Fixtures = {}
    """Canned tool results, by tool name."""
    variables: dict[str, Any] = {}
    """Values for the prompt template's variables."""
    critical: bool = False
    """A regression on this case fails a gate whatever the statistics say."""
    approve: bool = True
    """Decision for calls held for approval: approve (the default) or reject."""
    answers: list[str] = []
    """Answers, in order, to the agent's questions to a person (``ask_human``)."""
    description: str | None = None


class Dataset(BaseModel):
    """A named set of cases."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=500)
    cases: tuple[Case, ...]
    fixtures: Fixtures = {}
    """Fixtures for every case that sets none for that tool."""
    variables: dict[str, Any] = {}
    """Template variables for every case that does not set them."""
    path: str | None = None
    """Where it was read from."""
    digest: str = ""
    """sha256 of the file's bytes."""

    def fixtures_for(self, case: Case) -> Fixtures:
        """The case's fixtures over the dataset's."""
        return {**self.fixtures, **case.fixtures}

    def variables_for(self, case: Case) -> dict[str, Any]:
        """The case's template variables over the dataset's."""
        return {**self.variables, **case.variables}


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    fixtures: Fixtures = {}
    variables: dict[str, Any] = {}
    cases: list[Any] = Field(min_length=1)


# --- loading --------------------------------------------------------------------------------


def load_dataset(path: str | Path) -> Dataset:
    """Read and validate a dataset (``.yaml``/``.yml`` or ``.jsonl``); `DatasetError` lists
    every problem by case id and field."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {file}: {exc}") from exc
    raw = _parse(file, data)
    return parse_dataset(raw, name=file.stem, path=str(file), digest=_sha256(data))


def parse_dataset(
    raw: Any, *, name: str, path: str | None = None, digest: str | None = None
) -> Dataset:
    """Validate a dataset already parsed into Python values (`load_dataset` reads files)."""
    where = path or name
    if isinstance(raw, list):
        raw = {"cases": raw}
    if not isinstance(raw, Mapping):
        raise DatasetError(f"dataset {where}: expected a mapping with `cases` or a list of cases")
    try:
        header = _Header.model_validate(raw)
    except ValidationError as exc:
        raise DatasetError(f"dataset {where} is invalid:\n{_lines(exc)}") from exc
    problems: list[str] = []
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(header.cases):
        label = _case_label(item, index)
        try:
            case = Case.model_validate(item)
        except ValidationError as exc:
            problems.append(f"case {label}:\n{_lines(exc, indent='  ')}")
            continue
        if case.id in seen:
            problems.append(f"case {label}: id repeats case #{seen[case.id] + 1}")
        seen[case.id] = index
        cases.append(case)
    if problems:
        raise DatasetError(f"dataset {where} is invalid:\n" + "\n".join(problems))
    text = json.dumps(raw, sort_keys=True, default=str).encode()
    return Dataset(
        name=header.name or name,
        cases=tuple(cases),
        fixtures=header.fixtures,
        variables=header.variables,
        path=path,
        digest=digest or _sha256(text),
    )


def _parse(file: Path, data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"dataset {file} is not UTF-8 text") from exc
    if file.suffix == ".jsonl":
        cases = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                cases.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"dataset {file}, line {number}: not JSON ({exc.msg})") from exc
        return cases
    if file.suffix in (".yaml", ".yml"):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DatasetError(f"dataset {file} is not valid YAML: {exc}") from exc
    raise DatasetError(f"dataset {file}: use a .yaml, .yml or .jsonl file")


def _case_label(item: Any, index: int) -> str:
    case_id = item.get("id") if isinstance(item, Mapping) else None
    return f"{case_id!r}" if isinstance(case_id, str) and case_id else f"#{index + 1} (no id)"


def _lines(exc: ValidationError, *, indent: str = "") -> str:
    lines = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        if len(loc) > 2 and loc[0] == "expect":
            # Pydantic puts the discriminator's tag in the location (expect.0.must_call.args):
            # the key the user wrote already says which assertion it is.
            del loc[2]
        where = ".".join(str(p) for p in loc) or "(case)"
        lines.append(f"{indent}- {where}: {error['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
