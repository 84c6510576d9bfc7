"""`McpTool`: one tool of an MCP server as a bosun `Tool`, run by the same pipeline.

The executor sees a `Tool`: a name, a `ToolPolicy`, a definition for the model, argument
validation, `invoke` and `serialize_result`. What differs from a decorated function:

* **Arguments** are checked against the server's JSON Schema (`jsonschema`), not a pydantic
  model built from a signature. Failures are raised as pydantic ``ValidationError``s so the
  pipeline's INVALID_ARGUMENTS guidance reads the same; the messages name the rule broken,
  never the value sent.
* **Policy.** MCP says nothing bosun can rely on about effects, so the defaults are cautious
  and each tool can be configured (`McpToolConfig`): scope ``mcp:<server>:<tool>``, output
  labelled untrusted, and side-effecting with risk ``write`` unless the server annotates the
  tool ``readOnlyHint``. A side-effecting tool is retried only when it is idempotent (the
  server's ``idempotentHint`` or the config): a call cut off by a dying server may have acted.
* **Results.** Structured content when the server sends it, else the text of the content
  blocks (binary blocks are described, not passed on). ``isError`` results are the tool telling
  the model what went wrong: RETRY_WITH_GUIDANCE, which does not count against the breaker.
  A result the SDK cannot check against the tool's output schema is INVALID_RESULT.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jsonschema
import mcp_types
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError, to_jsonable_python

from bosun.errors import ConfigError, ModelRetry, ToolDefinitionError
from bosun.models.base import ToolDefinition
from bosun.tools.base import RetryPolicy, Risk, ToolContext, ToolPolicy
from bosun.tools.decorator import Tool, _check_policy
from bosun.tools.secrets import Secret

if TYPE_CHECKING:
    from bosun.tools.mcp.server import McpServer

__all__ = ["McpTool", "McpToolConfig", "Malformed"]

logger = logging.getLogger("bosun.tools.mcp")

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MAX_ERRORS = 10


@dataclass(frozen=True, kw_only=True)
class McpToolConfig:
    """What bosun should assume about one MCP tool; `None` fields take the MCP defaults
    (see the module docstring)."""

    name: str | None = None
    """The name the model calls it by, when the server's name is not a valid bosun tool
    name (``^[a-zA-Z0-9_-]{1,64}$``) or collides with another tool."""
    scope: str | None = None
    """Scope a run must hold; default ``mcp:<server>:<tool>``."""
    side_effect: bool | None = None
    """Whether a call changes the world; default: unless the server says ``readOnlyHint``."""
    risk: Risk | None = None
    """Damage a call can do; default ``write`` for side effects, ``read`` otherwise."""
    requires_approval: bool = False
    """Hold every call for a person."""
    idempotent: bool | None = None
    """Safe to repeat (retried, replayed after a crash); default: the ``idempotentHint``."""
    untrusted_output: bool = True
    """Label results untrusted (they taint the run). Turn off only for servers you control
    whose output cannot carry someone else's text."""
    timeout_s: float = 30.0
    """Per attempt."""
    rate_limit: str | None = None
    """In the `limits` notation, e.g. ``"10/second"``."""
    outbound: tuple[str, ...] = ()
    """Arguments that carry data outward (recipients, URLs): checked against trusted text."""
    policy: ToolPolicy | None = None
    """A whole policy instead of the fields above (for retry and breaker settings)."""


class _Arguments(BaseModel):
    """Arguments checked against the server's schema, kept as the model sent them."""

    model_config = ConfigDict(extra="allow", frozen=True)


@dataclass(frozen=True, slots=True)
class Malformed:
    """A result bosun could not use; `serialize_result` refuses it (INVALID_RESULT)."""

    reason: str


class McpTool(Tool[..., Any]):
    """A tool of an MCP server. Built by `McpServer.tools`, not by hand."""

    def __init__(
        self, server: McpServer, remote: mcp_types.Tool, config: McpToolConfig | None = None
    ) -> None:
        config = config or McpToolConfig()
        name = config.name or remote.name
        where = f"MCP server {server.name!r}, tool {remote.name!r}"
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"{where}: the name is not a valid tool name (1 to 64 letters, digits, '_' or "
                f"'-'); give it one with tools={{{remote.name!r}: McpToolConfig(name=...)}}"
            )
        self._validator = _checked_schema(where, remote.input_schema)
        self.server = server
        """The server the tool lives on."""
        self.remote_name: str = remote.name
        """The tool's name on its server."""
        self.name = name
        self.description = remote.description or remote.title or ""
        self.policy = _policy(server.name, remote, config)
        try:
            _check_policy(name, self.policy)
        except ToolDefinitionError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        properties = set(remote.input_schema.get("properties") or {})
        unknown = sorted(set(self.policy.outbound) - properties)
        if unknown:
            raise ConfigError(f"{where}: outbound={unknown} are not arguments of the tool")
        self.arguments_model = _Arguments
        self.function = self._call_directly
        self._definition = ToolDefinition(
            name=name, description=self.description, parameters=dict(remote.input_schema)
        )
        self._reconciler = None
        self._is_async = True

    def __repr__(self) -> str:
        return f"McpTool({self.name!r}, server={self.server.name!r}, scope={self.policy.scope!r})"

    def validate_arguments(self, arguments: dict[str, Any]) -> BaseModel:
        """The arguments, once they satisfy the input schema; else pydantic's ValidationError."""
        errors = sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.path))
        if errors:
            raise ValidationError.from_exception_data(
                self.name,
                [
                    {
                        "type": PydanticCustomError("json_schema", _describe(error)),
                        "loc": tuple(error.absolute_path),
                        "input": None,
                    }
                    for error in errors[:_MAX_ERRORS]
                ],
            )
        return _Arguments.model_validate(arguments)

    async def invoke(
        self, arguments: BaseModel, *, ctx: ToolContext, secret: Secret | None = None
    ) -> Any:
        """Call the tool on its server; failures are raised as the pipeline classifies them."""
        values = arguments.model_dump(mode="json", by_alias=True, exclude_unset=True)
        result = await self.server.call(
            self.remote_name, values, timeout_s=self.policy.timeout_s, ctx=ctx
        )
        return result if isinstance(result, Malformed) else _data(self.name, result)

    def serialize_result(self, value: Any) -> Any:
        """JSON-compatible data; a `Malformed` answer raises (INVALID_RESULT)."""
        if isinstance(value, Malformed):
            raise ValueError(value.reason)
        return to_jsonable_python(value)

    async def _call_directly(self, **arguments: Any) -> Any:
        """Call the tool outside any run (for a tool's own tests), schema checked."""
        ctx = ToolContext(run_id="direct", step=0, call_id="direct")
        value = await self.invoke(self.validate_arguments(arguments), ctx=ctx)
        return self.serialize_result(value)


def _checked_schema(where: str, schema: Mapping[str, Any]) -> jsonschema.protocols.Validator:
    """A validator for `schema`; ConfigError saying why when it is not a usable JSON Schema."""
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        raise ConfigError(f"{where}: the input schema must be a JSON Schema of type 'object'")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(dict(schema))
    except jsonschema.SchemaError as exc:
        at = "/".join(str(part) for part in exc.absolute_path) or "(root)"
        raise ConfigError(
            f"{where}: the input schema is not valid JSON Schema at {at}: {exc.message}"
        ) from exc
    validator: jsonschema.protocols.Validator = cls(dict(schema))
    return validator


def _describe(error: jsonschema.ValidationError) -> str:
    """What rule the argument broke, without echoing its value (``explain`` never does)."""
    rule, expected = str(error.validator), error.validator_value
    if rule == "type":
        return f"should be of type {json.dumps(expected)}"
    if rule == "required":
        given = error.instance if isinstance(error.instance, dict) else {}
        names = expected if isinstance(expected, list) else []
        missing = [str(name) for name in names if name not in given]
        return f"missing required argument(s): {', '.join(missing)}"
    if rule == "enum":
        return f"should be one of {json.dumps(expected)[:200]}"
    if rule == "additionalProperties":
        return "has arguments the tool does not take"
    return (
        f"does not satisfy the schema's {rule!r} rule ({json.dumps(expected, default=str)[:100]})"
    )


def _policy(server: str, remote: mcp_types.Tool, config: McpToolConfig) -> ToolPolicy:
    if config.policy is not None:
        return config.policy
    hints = remote.annotations
    if config.side_effect is not None:
        side_effect = config.side_effect
    elif config.risk is not None:
        side_effect = config.risk is not Risk.READ
    else:
        side_effect = not (hints is not None and hints.read_only_hint is True)
    risk = config.risk or (Risk.WRITE if side_effect else Risk.READ)
    idempotent = config.idempotent
    if idempotent is None:
        idempotent = side_effect and hints is not None and hints.idempotent_hint is True
    return ToolPolicy(
        scope=config.scope or f"mcp:{server}:{remote.name}",
        risk=risk,
        side_effect=side_effect,
        requires_approval=config.requires_approval,
        timeout_s=config.timeout_s,
        # A call cut off mid-flight may have acted: repeat only what is safe to repeat.
        retry=RetryPolicy() if idempotent or not side_effect else None,
        rate_limit=config.rate_limit,
        idempotent=idempotent,
        untrusted_output=config.untrusted_output,
        outbound=tuple(config.outbound),
    )


def _data(name: str, result: mcp_types.CallToolResult) -> Any:
    if result.is_error:
        text = " ".join(t for t in (_text(b) for b in result.content) if t)
        raise ModelRetry(f"{name!r} answered with an error: {text[:2000] or 'no details'}")
    if result.structured_content is not None:
        return result.structured_content
    blocks = [_block(b) for b in result.content]
    if len(blocks) == 1 and isinstance(blocks[0], str):
        return blocks[0]
    return blocks


def _text(block: Any) -> str | None:
    text = getattr(block, "text", None)
    return text if isinstance(text, str) else None


def _block(block: Any) -> Any:
    kind = getattr(block, "type", None)
    if kind == "text":
        return block.text
    if kind in ("image", "audio"):
        # Base64 media is no use to a text model and would flood its context.
        return {"type": kind, "mime_type": block.mime_type, "note": "binary content not shown"}
    if kind == "resource_link":
        return {"type": kind, "uri": str(block.uri), "name": block.name}
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        if isinstance(text, str):
            return {"type": kind, "uri": str(resource.uri), "text": text}
        return {"type": kind, "uri": str(resource.uri), "note": "binary content not shown"}
    return {"type": str(kind), "note": "content of a kind bosun does not read"}
