"""``@tool``: a typed Python function becomes a `Tool` the model can call.

The function's signature is the contract. Every parameter except the injected ones must be
annotated; bosun builds a pydantic model from the parameters (`pydantic.create_model`) and
takes the JSON schema the model sees from it, with parameter descriptions from the docstring
(`docstring_parser`: Google, NumPy, reST and Epydoc styles). Two kinds of parameter are filled
by bosun, never by the model, and stay out of the schema:

* ``ctx: ToolContext`` receives the call's context (run, step, call id, idempotency key);
* ``token: Secret`` receives the credential named by ``@tool(credential=...)``.

A return annotation, when present, is enforced: the pipeline validates the result against it
and serialises it to JSON-compatible data.

Mistakes in the definition (an unannotated parameter, a bad name, a rate limit `limits` cannot
parse) raise `ToolDefinitionError` at decoration time, not on the first call in production.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
import typing
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, ParamSpec, TypeVar, overload

import docstring_parser
import limits
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticUndefined, to_jsonable_python

from bosun.errors import ToolDefinitionError
from bosun.models.base import ToolDefinition
from bosun.tools.base import (
    BreakerPolicy,
    Reconciliation,
    RetryPolicy,
    Risk,
    ToolContext,
    ToolOutput,
    ToolPolicy,
)
from bosun.tools.secrets import Secret

__all__ = ["Tool", "tool"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

Reconciler = (
    Callable[[dict[str, Any], ToolContext], Reconciliation]
    | Callable[[dict[str, Any], ToolContext], Awaitable[Reconciliation]]
)
"""``(args, ctx) -> Reconciliation``, sync or async."""
ReconcilerT = TypeVar("ReconcilerT", bound=Reconciler)

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_Injected = Literal["context", "secret"]


class _NoFieldTitles(GenerateJsonSchema):
    """Leaves out the ``title`` pydantic derives from each parameter name: it repeats the
    property key and costs tokens on every request that lists the tool."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


@dataclass(frozen=True, kw_only=True)
class _Signature:
    """What `_inspect` learned from a function."""

    arguments: type[BaseModel]
    fields: tuple[tuple[str, str], ...]
    """(field name in `arguments`, parameter name) for each model-filled parameter."""
    context_param: str | None
    secret_param: str | None
    result: TypeAdapter[Any] | None
    description: str
    parameters: dict[str, Any]


class Tool(Generic[P, R]):
    """A function the model can call, with its schema and policy. Calling it calls the function.

    Built by `tool`; the pipeline (`bosun.tools.ToolExecutor`) runs it through validation,
    authorization, approval, rate limit, breaker, retry and timeout via `invoke`.
    """

    def __init__(
        self,
        function: Callable[P, R],
        /,
        *,
        policy: ToolPolicy | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        functools.update_wrapper(self, function)
        tool_name = name if name is not None else getattr(function, "__name__", "")
        if not _NAME.fullmatch(tool_name):
            raise ToolDefinitionError(
                f"tool name {tool_name!r} is invalid: use 1 to 64 letters, digits, '_' or '-' "
                "(pass name=... to @tool)"
            )
        self.name: str = tool_name
        """Name the model calls the tool by."""
        self.policy: ToolPolicy = policy or ToolPolicy(scope=f"tools:{tool_name}")
        """Scope, risk and protections."""
        _check_policy(tool_name, self.policy)
        signature = _inspect(function, tool_name=tool_name, description=description)
        _check_credential(tool_name, self.policy, signature)
        filled = set(signature.parameters.get("properties", {}))
        unknown = sorted(set(self.policy.outbound) - filled)
        if unknown:
            raise ToolDefinitionError(
                f"tool {tool_name!r}: outbound={unknown} are not arguments the model fills in"
            )
        self.description: str = signature.description
        """What the tool does, for the model."""
        self.function: Callable[P, R] = function
        """The decorated function, unchanged."""
        self.arguments_model: type[BaseModel] = signature.arguments
        """Pydantic model of the arguments the model fills in."""
        self._signature = signature
        self._definition = ToolDefinition(
            name=tool_name, description=signature.description, parameters=signature.parameters
        )
        self._reconciler: Reconciler | None = None
        self._is_async = _is_async(function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function directly, bypassing the pipeline (for the tool's own tests)."""
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r}, scope={self.policy.scope!r})"

    def definition(self) -> ToolDefinition:
        """The tool as the model is told about it (built once, at decoration)."""
        return self._definition

    def validate_arguments(self, arguments: dict[str, Any]) -> BaseModel:
        """The arguments as an `arguments_model` instance; raises pydantic's ``ValidationError``."""
        return self.arguments_model.model_validate(arguments)

    async def invoke(
        self, arguments: BaseModel, *, ctx: ToolContext, secret: Secret | None = None
    ) -> Any:
        """Run the function once with validated `arguments`; exceptions propagate.

        Sync functions run in a worker thread (`asyncio.to_thread`) so they cannot stall the
        event loop. A cancelled await (timeout) does not stop that thread: the function runs to
        its end in the background, which is one reason side effects carry an idempotency key.
        """
        kwargs = {param: getattr(arguments, field) for field, param in self._signature.fields}
        if self._signature.context_param is not None:
            kwargs[self._signature.context_param] = ctx
        if self._signature.secret_param is not None:
            if secret is None:
                raise ValueError(f"tool {self.name!r} needs its credential to run")
            kwargs[self._signature.secret_param] = secret
        function: Callable[..., Any] = self.function
        if self._is_async:
            return await function(**kwargs)
        return await asyncio.to_thread(functools.partial(function, **kwargs))

    def serialize_result(self, value: Any) -> Any:
        """`value` as JSON-compatible data, checked against the return annotation if any.

        Raises pydantic's ``ValidationError`` (wrong type) or ``PydanticSerializationError``
        (not serialisable).
        """
        adapter = self._signature.result
        if adapter is None:
            return to_jsonable_python(value)
        return adapter.dump_python(adapter.validate_python(value), mode="json")

    def reconciler(self, function: ReconcilerT) -> ReconcilerT:
        """Register ``(args, ctx) -> Reconciliation``: did an interrupted call take effect?"""
        if self._reconciler is not None:
            raise ToolDefinitionError(f"tool {self.name!r} already has a reconciler")
        self._reconciler = function
        return function

    async def reconcile(self, arguments: dict[str, Any], ctx: ToolContext) -> Reconciliation:
        """Ask the reconciler about the call `ctx` names; ``done=None`` when it cannot tell.

        A tool without a reconciler cannot tell. A reconciler that raises cannot tell either:
        the error is logged and the runtime, seeing ``done=None``, escalates instead of acting
        twice.
        """
        function = self._reconciler
        if function is None:
            return Reconciliation(done=None)
        call: Callable[[], object] = functools.partial(function, arguments, ctx)
        outcome: object
        try:
            if _is_async(function):
                pending = call()
                outcome = await pending if inspect.isawaitable(pending) else pending
            else:
                outcome = await asyncio.to_thread(call)
        except Exception:
            logger.exception("reconciler of tool %r failed for call %r", self.name, ctx.call_id)
            return Reconciliation(done=None)
        if not isinstance(outcome, Reconciliation):
            raise ToolDefinitionError(
                f"the reconciler of tool {self.name!r} returned {type(outcome).__name__}; "
                "it must return a bosun.tools.Reconciliation"
            )
        return outcome


_UNSET: Any = object()


@overload
def tool(function: Callable[P, R], /) -> Tool[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    scope: str | None = None,
    risk: Risk | str = ...,
    side_effect: bool = ...,
    requires_approval: bool = ...,
    timeout_s: float = ...,
    retry: RetryPolicy | None = ...,
    rate_limit: str | None = ...,
    breaker: BreakerPolicy | None = ...,
    idempotent: bool = ...,
    credential: str | None = ...,
    fallback: str | None = ...,
    untrusted_output: bool = ...,
    outbound: Sequence[str] = ...,
    pii: Collection[str] = ...,
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...


def tool(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    scope: str | None = None,
    risk: Risk | str = _UNSET,
    side_effect: bool = _UNSET,
    requires_approval: bool = _UNSET,
    timeout_s: float = _UNSET,
    retry: RetryPolicy | None = _UNSET,
    rate_limit: str | None = _UNSET,
    breaker: BreakerPolicy | None = _UNSET,
    idempotent: bool = _UNSET,
    credential: str | None = _UNSET,
    fallback: str | None = _UNSET,
    untrusted_output: bool = _UNSET,
    outbound: Sequence[str] = _UNSET,
    pii: Collection[str] = _UNSET,
) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Make a function a tool: ``@tool`` or ``@tool(scope="crm:write", side_effect=True)``.

    Options left out take `ToolPolicy`'s defaults; the scope defaults to ``tools:<name>`` and
    the name to the function's name.
    """
    options: dict[str, Any] = {
        "side_effect": side_effect,
        "requires_approval": requires_approval,
        "timeout_s": timeout_s,
        "retry": retry,
        "rate_limit": rate_limit,
        "breaker": breaker,
        "idempotent": idempotent,
        "credential": credential,
        "fallback": fallback,
        "untrusted_output": untrusted_output,
    }
    given = {key: value for key, value in options.items() if value is not _UNSET}
    if outbound is not _UNSET:
        given["outbound"] = tuple(outbound)
    if pii is not _UNSET:
        given["pii"] = frozenset(pii)
    if risk is not _UNSET:
        given["risk"] = _risk(risk)

    def decorate(function: Callable[P, R]) -> Tool[P, R]:
        tool_name = name if name is not None else getattr(function, "__name__", "")
        policy = ToolPolicy(scope=scope if scope is not None else f"tools:{tool_name}", **given)
        return Tool(function, policy=policy, name=tool_name, description=description)

    return decorate if function is None else decorate(function)


# --- checks -----------------------------------------------------------------------------------


def _risk(value: Risk | str) -> Risk:
    try:
        return Risk(value)
    except ValueError:
        allowed = ", ".join(repr(r.value) for r in Risk)
        raise ToolDefinitionError(f"risk={value!r} is not one of {allowed}") from None


def _check_policy(name: str, policy: ToolPolicy) -> None:
    problems: list[str] = []
    if not policy.scope:
        problems.append("scope must not be empty")
    if not policy.timeout_s > 0:
        problems.append(f"timeout_s must be positive, got {policy.timeout_s!r}")
    if policy.retry is not None and policy.retry.attempts < 1:
        problems.append(f"retry.attempts must be at least 1, got {policy.retry.attempts!r}")
    if policy.breaker is not None and policy.breaker.failure_threshold < 1:
        problems.append("breaker.failure_threshold must be at least 1")
    if policy.fallback is not None and policy.fallback == name:
        problems.append("a tool cannot be its own fallback")
    if policy.credential is not None and not policy.credential:
        problems.append("credential must name a secret")
    if policy.rate_limit is not None:
        try:
            limits.parse(policy.rate_limit)
        except ValueError:
            problems.append(
                f"rate_limit={policy.rate_limit!r} is not in the limits notation "
                "(e.g. '10/second', '100/minute')"
            )
    if problems:
        raise ToolDefinitionError(f"tool {name!r}: " + "; ".join(problems))


def _check_credential(name: str, policy: ToolPolicy, signature: _Signature) -> None:
    if policy.credential and signature.secret_param is None:
        raise ToolDefinitionError(
            f"tool {name!r} declares credential={policy.credential!r} but no parameter is "
            "annotated Secret to receive it"
        )
    if signature.secret_param is not None and not policy.credential:
        raise ToolDefinitionError(
            f"tool {name!r}: parameter {signature.secret_param!r} is a Secret but the tool "
            "declares no credential; pass credential='NAME' to @tool"
        )


# --- signature -> schema ----------------------------------------------------------------------


def _inspect(
    function: Callable[..., Any], *, tool_name: str, description: str | None
) -> _Signature:
    target = _target(function)
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: cannot resolve the type annotations of "
            f"{getattr(function, '__qualname__', function)!r} ({exc}); define the types it "
            "uses at module level"
        ) from exc
    doc = docstring_parser.parse(inspect.getdoc(function) or "")
    param_docs = {p.arg_name: p.description for p in doc.params if p.description}
    fields: dict[str, Any] = {}
    names: list[tuple[str, str]] = []
    injected: dict[_Injected, str] = {}
    for index, param in enumerate(inspect.signature(target).parameters.values()):
        _check_parameter(tool_name, param, hints)
        hint = hints[param.name]
        kind = _injected_kind(tool_name, param.name, hint)
        if kind is not None:
            if kind in injected:
                raise ToolDefinitionError(
                    f"tool {tool_name!r}: parameters {injected[kind]!r} and {param.name!r} are "
                    f"both {'ToolContext' if kind == 'context' else 'Secret'}; keep one"
                )
            injected[kind] = param.name
            continue
        field_name = param.name if _usable_field_name(param.name) else f"param_{index}"
        fields[field_name] = (hint, _field(param, field_name, param_docs.get(param.name)))
        names.append((field_name, param.name))
    arguments, parameters = _arguments_model(tool_name, fields)
    return _Signature(
        arguments=arguments,
        fields=tuple(names),
        context_param=injected.get("context"),
        secret_param=injected.get("secret"),
        result=_result_adapter(tool_name, hints),
        description=description if description is not None else _description(doc),
        parameters=parameters,
    )


def _check_parameter(tool_name: str, param: inspect.Parameter, hints: dict[str, Any]) -> None:
    if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
        raise ToolDefinitionError(
            f"tool {tool_name!r}: variadic parameter {param.name!r} cannot be filled from JSON "
            "arguments; declare each argument as a named parameter"
        )
    if param.kind is inspect.Parameter.POSITIONAL_ONLY:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: parameter {param.name!r} is positional-only; bosun passes "
            "arguments by name"
        )
    if param.name not in hints:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: parameter {param.name!r} has no type annotation; annotate it "
            f"(e.g. `{param.name}: str`) so bosun can build the argument schema"
        )


def _injected_kind(tool_name: str, param: str, hint: Any) -> _Injected | None:
    base = typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint
    if base is ToolContext:
        return "context"
    if base is Secret:
        return "secret"
    if _mentions(hint, (ToolContext, Secret)):
        raise ToolDefinitionError(
            f"tool {tool_name!r}: parameter {param!r} must be annotated exactly ToolContext or "
            "Secret (not optional, not inside another type): bosun injects it"
        )
    return None


def _mentions(hint: Any, types: tuple[type, ...]) -> bool:
    if hint in types:
        return True
    return any(_mentions(arg, types) for arg in typing.get_args(hint))


def _usable_field_name(name: str) -> bool:
    # pydantic treats leading underscores as private and warns when a field shadows a BaseModel
    # attribute (``json``, ``schema``, ``copy``...); such parameters get an internal field name
    # and keep their own name as the alias, which is what the schema and the model show.
    return not name.startswith("_") and not hasattr(BaseModel, name)


def _field(param: inspect.Parameter, field_name: str, doc: str | None) -> Any:
    options: dict[str, Any] = {}
    if doc:
        options["description"] = doc
    if field_name != param.name:
        options["alias"] = param.name
    default = PydanticUndefined if param.default is inspect.Parameter.empty else param.default
    return Field(default, **options)


def _arguments_model(
    tool_name: str, fields: dict[str, Any]
) -> tuple[type[BaseModel], dict[str, Any]]:
    try:
        model: type[BaseModel] = create_model(
            tool_name, __config__=ConfigDict(extra="forbid"), **fields
        )
        schema = model.model_json_schema(schema_generator=_NoFieldTitles)
    except Exception as exc:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: cannot build a JSON schema for its parameters: {exc}"
        ) from exc
    schema.pop("title", None)
    return model, schema


def _result_adapter(tool_name: str, hints: dict[str, Any]) -> TypeAdapter[Any] | None:
    if "return" not in hints or hints["return"] is ToolOutput:
        return None
    try:
        return TypeAdapter(hints["return"])
    except Exception as exc:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: return annotation {hints['return']!r} cannot be validated "
            f"and serialised to JSON: {exc}"
        ) from exc


def _is_async(function: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(_target(function))


def _target(function: Callable[..., Any]) -> Callable[..., Any]:
    # For an object with ``__call__`` the annotations, signature and async-ness are those of
    # its bound ``__call__`` (run in a thread, an ``async def __call__`` would only return an
    # un-awaited coroutine).
    if inspect.isroutine(function):
        return function
    call: Callable[..., Any] = type(function).__call__.__get__(function)
    return call


def _description(doc: docstring_parser.Docstring) -> str:
    parts = [part for part in (doc.short_description, doc.long_description) if part]
    return "\n\n".join(parts)
