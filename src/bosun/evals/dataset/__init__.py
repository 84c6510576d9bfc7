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

The argument matchers are in `matchers`, the cases, fixtures and assertions (pydantic models)
in `schema`, and reading and validating a file in `loading`.
"""

from __future__ import annotations

from bosun.evals.dataset.loading import DatasetError, load_dataset, parse_dataset
from bosun.evals.dataset.matchers import Matcher, match_arguments, matcher
from bosun.evals.dataset.schema import (
    Assertion,
    Case,
    Dataset,
    Escalates,
    Fixture,
    InputPart,
    Judge,
    MaxCost,
    MaxSteps,
    MustCall,
    MustNotCall,
    OutputContains,
    OutputMatches,
    OutputSchema,
)

# JudgeAssertion is not public API; the evaluator and the checks import it from here.
from bosun.evals.dataset.schema import JudgeAssertion as JudgeAssertion

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
