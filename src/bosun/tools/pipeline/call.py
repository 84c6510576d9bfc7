"""The innermost stage of the tool pipeline: the credential, PII revealed for the tools allowed
it, the call itself, what it raised mapped to an error kind, and its result checked."""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel

from bosun.errors import ModelRetry, ToolFailure
from bosun.tools.base import ErrorKind, ToolOutput, ToolResult
from bosun.tools.pipeline.invocation import AnyTool, Invocation
from bosun.tools.secrets import Secret, SecretsProvider
from bosun.trust import Content

__all__ = ["Call"]

logger = logging.getLogger(__name__)


class Call:
    """The innermost stage: credential, the call itself, exception mapping, result check."""

    def __init__(self, secrets: SecretsProvider | None) -> None:
        self._secrets = secrets

    async def __call__(self, inv: Invocation, tool: AnyTool, args: BaseModel) -> ToolResult:
        secret: Secret | None = None
        try:
            if tool.policy.credential is not None:
                value = self._secrets.get(tool.policy.credential) if self._secrets else None
                if not value:
                    logger.error(
                        "tool %r: credential %r is not set", tool.name, tool.policy.credential
                    )
                    return ToolResult.failure(
                        ErrorKind.FAILED, f"{tool.name!r} is not configured and cannot run now."
                    )
                secret = Secret(value)
            if inv.reveal is not None and tool.policy.pii:
                # Only here, per attempt: the journal, the approver and the model keep
                # placeholders; only a tool allowed a PII type sees its real values.
                dumped = args.model_dump(mode="json", by_alias=True, exclude_unset=True)
                args = tool.validate_arguments(inv.reveal(dumped, tool.policy.pii))
            output = await tool.invoke(args, ctx=inv.ctx, secret=secret)
        except Exception as exc:
            result = _classify(inv, tool, exc)
        else:
            result = _check_result(tool, output)
        return result if secret is None else _withhold(tool, result, secret)


def _classify(inv: Invocation, tool: AnyTool, exc: Exception) -> ToolResult:
    """Map what the tool raised to an error kind; the model sees guidance, never a traceback."""
    name = tool.name
    if isinstance(exc, ModelRetry):
        return ToolResult.failure(ErrorKind.RETRY_WITH_GUIDANCE, exc.message)
    if tool.policy.credential is not None:
        # The exception may quote the credential (a URL, a header): log only its type.
        logger.warning("call %s: tool %r raised %s", inv.call.id, name, type(exc).__name__)
    if isinstance(exc, ToolFailure):
        if tool.policy.credential is None:
            logger.warning("call %s: tool %r raised %r", inv.call.id, name, exc)
        if exc.retryable:
            return ToolResult.failure(ErrorKind.TRANSIENT, f"{name!r} failed temporarily: {exc}")
        return ToolResult.failure(ErrorKind.FAILED, str(exc))
    kind_name = type(exc).__name__
    traceback = exc if tool.policy.credential is None else None
    if isinstance(exc, TimeoutError | ConnectionError):
        if traceback is not None:
            logger.warning("call %s: tool %r raised %s", inv.call.id, name, kind_name, exc_info=exc)
        return ToolResult.failure(
            ErrorKind.TRANSIENT, f"{name!r} failed temporarily ({kind_name})."
        )
    if traceback is not None:
        logger.error("call %s: tool %r failed unexpectedly", inv.call.id, name, exc_info=exc)
    return ToolResult.failure(
        ErrorKind.FAILED, f"{name!r} failed with an internal error ({kind_name})."
    )


def _check_result(tool: AnyTool, output: Any) -> ToolResult:
    trust = None
    if isinstance(output, ToolOutput):
        trust, output = output.trust, output.data
    elif isinstance(output, Content):
        # A tool that labels its own output as text (an agent called as a tool): its text,
        # and its label for the runtime, which journals it and taints the run when untrusted.
        trust, output = output.trust, output.text
    try:
        data = tool.serialize_result(output)
    except Exception as exc:  # ValidationError, PydanticSerializationError, a custom serializer
        logger.error("tool %r returned an invalid result: %s", tool.name, exc)
        return ToolResult.failure(
            ErrorKind.INVALID_RESULT,
            f"{tool.name!r} returned a result that does not match its declared type. This is a "
            "fault in the tool, not in your call.",
        )
    return ToolResult.success(data, trust=trust)


def _withhold(tool: AnyTool, result: ToolResult, secret: Secret) -> ToolResult:
    value = secret.reveal()
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]
    if result.guidance and (value in result.guidance or escaped in result.guidance):
        guidance = result.guidance.replace(value, "[redacted]").replace(escaped, "[redacted]")
        result = result.model_copy(update={"guidance": guidance})
    if result.ok and escaped in json.dumps(result.data, ensure_ascii=False):
        logger.error("tool %r returned its own credential; the result was withheld", tool.name)
        return ToolResult.failure(
            ErrorKind.FAILED,
            f"{tool.name!r} returned data that cannot be shown. This is a fault in the tool.",
        )
    return result
