"""`SchemaGuard`: a structured output must be JSON valid against `OutputContext.schema`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from itertools import islice
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from pydantic import BaseModel, ValidationError

from bosun.errors import UserError
from bosun.gateway.guardrails.base import Action, GuardrailVerdict, OutputContext, capped

__all__ = ["SchemaGuard"]


class SchemaGuard:
    """A structured output must be JSON that validates against `OutputContext.schema`.

    No schema: allow. Outputs over `max_chars` are refused unparsed. Reasons give the JSON paths
    and what was expected, never the values.
    """

    def __init__(
        self, *, action: Action = "block", max_chars: int = 1_000_000, name: str = "schema"
    ) -> None:
        if action == "redact":
            raise UserError("SchemaGuard cannot redact; use allow, escalate or block")
        self.name = name
        self.action: Action = action
        """What an invalid output gets."""
        self.max_chars = max_chars
        """Longer outputs are refused without parsing."""

    def check(self, output: str, ctx: OutputContext) -> GuardrailVerdict:
        if ctx.schema is None:
            return GuardrailVerdict(guardrail=self.name, action="allow")
        if len(output) > self.max_chars:
            errors = [f"output is {len(output)} characters, over the limit of {self.max_chars}"]
        elif isinstance(ctx.schema, type):
            errors = _pydantic_errors(ctx.schema, output)
        else:
            errors = _jsonschema_errors(ctx.schema, output)
        if not errors:
            return GuardrailVerdict(guardrail=self.name, action="allow")
        return GuardrailVerdict(guardrail=self.name, action=self.action, reasons=capped(errors))


def _pydantic_errors(model: type[BaseModel], output: str) -> list[str]:
    try:
        model.model_validate_json(output)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        # an extra property's name came from the output: name its parent, as jsonschema does
        return [
            f"{_path(e['loc'][:-1])}: unexpected property"
            if e["type"] == "extra_forbidden"
            else f"{_path(e['loc'])}: {e['msg']}"
            for e in errors
        ]
    return []


def _jsonschema_errors(schema: Mapping[str, Any], output: str) -> list[str]:
    validator = _validator(json.dumps(schema, sort_keys=True, default=str))
    try:
        instance = json.loads(output)
    except json.JSONDecodeError as exc:
        return [f"output is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
    except RecursionError:
        return ["output is not JSON bosun will read: nested too deeply"]
    try:
        # a hostile output can fail a million times; the first hundred say enough
        errors = list(islice(validator.iter_errors(instance), 100))
    except RecursionError:
        return ["output is nested too deeply to validate"]
    errors.sort(key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_path(e.absolute_path)}: {_expected(e)}" for e in errors]


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> Validator:
    """A validator per distinct schema: checking a schema costs more than most validations."""
    schema = json.loads(schema_json)
    validator_class = jsonschema.validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except SchemaError as exc:
        raise UserError(f"OutputContext.schema is not a valid JSON schema: {exc.message}") from exc
    return validator_class(schema)


def _expected(error: jsonschema.ValidationError) -> str:
    """What the schema wanted, said from the schema's side so that no output value is echoed."""
    keyword, wanted = error.validator, error.validator_value
    if keyword == "type":
        return f"expected {' or '.join(wanted) if isinstance(wanted, list) else wanted}"
    if keyword == "required" and isinstance(error.instance, dict):
        missing = [p for p in wanted if p not in error.instance] if isinstance(wanted, list) else []
        return f"missing required {', '.join(map(repr, missing))}"
    if keyword in ("enum", "const", "additionalProperties", "oneOf", "anyOf", "not"):
        return f"does not satisfy {keyword}"
    shown = json.dumps(wanted, default=str)
    return f"does not satisfy {keyword}={shown if len(shown) <= 60 else shown[:57] + '...'}"


def _path(loc: Sequence[Any]) -> str:
    """``$.items[0].qty``; a key that is not a short plain name (a ``dict`` key from the output,
    say) shows as ``[…]``: it may be anything, a secret included."""
    return "$" + "".join(
        f"[{p}]"
        if isinstance(p, int)
        else f".{p}"
        if str(p).isidentifier() and len(str(p)) <= 32
        else "[…]"
        for p in loc
    )
