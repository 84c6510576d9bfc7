"""The dataset schema as pydantic models: a `Case` (input, fixtures, assertions), the
`Fixture` that answers a tool call, each kind of assertion, and the `Dataset` that holds them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from bosun.evals.dataset.matchers import Matcher, argument_matchers
from bosun.trust import Trust

_STRICT = ConfigDict(extra="forbid", frozen=True)


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
            argument_matchers(self.when)
        return self

    def matchers(self) -> dict[str, Matcher]:
        """`when` as matchers."""
        return argument_matchers(self.when or {})


class _ArgsAssertion(BaseModel):
    model_config = _STRICT

    args: dict[str, Any] = {}
    """Argument matchers."""

    @field_validator("args")
    @classmethod
    def _valid_matchers(cls, value: dict[str, Any]) -> dict[str, Any]:
        argument_matchers(value)
        return value

    def matchers(self) -> dict[str, Matcher]:
        """`args` as matchers."""
        return argument_matchers(self.args)


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
