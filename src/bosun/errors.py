"""bosun's errors: one tree, three families.

```
BosunError
├── ModelRetry                  signal: the model can act on it (guidance goes back to the model)
├── UserError                   a mistake by the developer using bosun: says what to change
│   ├── ConfigError               settings, bosun.toml, environment
│   ├── ModelNameError            a model string bosun cannot resolve
│   ├── ToolDefinitionError       a function that cannot become a tool
│   ├── AgentNotFound             resume/run of an agent the runtime does not know
│   ├── MissingDependency         an optional extra is not installed
│   ├── RunNotFound               a run id absent from the store
│   │   └── PipelineNotFound        a pipeline id absent from the store
│   ├── PipelineDefinitionError   a pipeline that cannot be built: a cycle, stages whose
│   │                             types do not fit, an unknown stage
│   └── RunStateConflict          the run is not in a state for this (decide a run that is
│                                 not waiting, claim an escalation someone else holds): 409
├── GatewayRefusal              a request refused at the perimeter; `status` is its HTTP status
│   ├── Unauthenticated           no, unknown, revoked or expired API key (401)
│   ├── Forbidden                 the principal lacks the scope, or the run is another tenant's
│   ├── RateLimited               over a request or token limit; retry_after seconds (429)
│   ├── InvalidInput              empty, oversized, binary, badly encoded, nested too deeply
│   ├── Blocked                   screening or a guardrail refused the content; reasons (422)
│   └── IdempotencyConflict       the idempotency key names a different request (run_id, 409)
└── RunFailure                  something failed while running; typed fields say where
    ├── ModelError                a provider call failed (provider, model, status_code)
    │   ├── ModelRateLimited        429: retry_after seconds when the provider said
    │   ├── ModelTimeout            no answer in time
    │   ├── ModelAuthError          bad or missing credentials (not retried)
    │   ├── ModelRefusal            the model declined (not retried)
    │   ├── ModelBadResponse        a body bosun cannot use: malformed, empty
    │   ├── ModelUnavailable        5xx, connection refused, overloaded
    │   │   └── ModelsExhausted           every model of a fallback chain failed (failures)
    │   └── ContextTooLong          the request does not fit the model's context
    ├── ToolFailure               raised by tool code, classified for the pipeline (tool)
    │   ├── TransientToolError      worth retrying (network blip, 503, lock timeout)
    │   └── PermanentToolError      retrying will not help (not found, rejected)
    ├── StoreError                the store failed or was changed under us
    │   ├── StoreUnavailable        the database did not answer or refused the login (host, port)
    │   ├── JournalConflict         another process appended the same journal position
    │   └── DuplicateRun            a run with this idempotency key exists (run_id)
    └── AuditChainBroken          verification found a broken link (row)
```

Third-party exceptions are translated where they enter bosun (the model adapters, the store),
most specific first, and chained with ``from exc``. What the model sees of any failure is the
structured tool result or a guidance message, never a traceback.
"""

from __future__ import annotations

__all__ = [
    "AgentNotFound",
    "AuditChainBroken",
    "BosunError",
    "ConfigError",
    "Blocked",
    "ContextTooLong",
    "DuplicateRun",
    "Forbidden",
    "GatewayRefusal",
    "IdempotencyConflict",
    "InvalidInput",
    "JournalConflict",
    "MissingDependency",
    "ModelAuthError",
    "ModelBadResponse",
    "ModelError",
    "ModelNameError",
    "ModelRateLimited",
    "ModelRefusal",
    "ModelRetry",
    "ModelTimeout",
    "ModelUnavailable",
    "ModelsExhausted",
    "PermanentToolError",
    "PipelineDefinitionError",
    "PipelineNotFound",
    "RateLimited",
    "RunFailure",
    "RunNotFound",
    "RunStateConflict",
    "StoreError",
    "StoreUnavailable",
    "ToolDefinitionError",
    "ToolFailure",
    "TransientToolError",
    "Unauthenticated",
    "UserError",
]


class BosunError(Exception):
    """Base of every error bosun raises on purpose."""


class ModelRetry(BosunError):
    """Raised by a tool to send `message` back to the model as guidance (e.g. "no such order")."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- developer mistakes -------------------------------------------------------------------


class UserError(BosunError):
    """The code or configuration using bosun is wrong; the message says what to change."""


class ConfigError(UserError):
    """Settings from the environment or bosun.toml are invalid."""


class ModelNameError(UserError):
    """A model string such as ``openai:gpt-4.1-mini`` could not be resolved."""


class ToolDefinitionError(UserError):
    """A function cannot be turned into a tool (untyped parameter, bad policy)."""


class AgentNotFound(UserError):
    """The runtime was asked to run or resume an agent it was not given."""


class MissingDependency(UserError):
    """An optional extra is needed: the message names the ``pip install`` to run."""


class RunNotFound(UserError):
    """No run with this id exists in the store."""


class PipelineNotFound(RunNotFound):
    """No pipeline with this id exists in the store."""


class PipelineDefinitionError(UserError):
    """A pipeline cannot be built: its stages form a cycle, a stage's input type does not fit
    what its upstream stages produce, a dependency names no stage. Raised when the pipeline
    is built, never halfway through a run."""


class RunStateConflict(UserError):
    """The run is not in a state that allows this: nothing waits for that decision, someone
    else claimed the escalation, the run has finished."""


# --- refusals at the gateway ------------------------------------------------------------


class GatewayRefusal(BosunError):
    """A request refused at the perimeter. Nothing of it was stored."""

    status: int = 400
    """The HTTP status the service answers with."""


class Unauthenticated(GatewayRefusal):
    """No API key, or one that is unknown, revoked or expired."""

    status = 401


class Forbidden(GatewayRefusal):
    """The principal lacks a scope the request needs, or the run belongs to another tenant."""

    status = 403


class RateLimited(GatewayRefusal):
    """Over a request or token limit; `retry_after` is the seconds until the window frees."""

    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidInput(GatewayRefusal):
    """Input bosun will not process: empty, oversized, binary, badly encoded, nested too
    deeply. The message says which and what the limit is."""

    status = 400

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Blocked(GatewayRefusal):
    """Injection screening or a guardrail refused the content; `reasons` say why."""

    status = 422

    def __init__(self, message: str, *, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reasons = reasons


class IdempotencyConflict(GatewayRefusal):
    """An idempotency key sent again with a different request (another agent or input):
    answering with the earlier run would hide that the new request was never run.

    409, not the 422 of the IETF httpapi-idempotency-key-header draft: the request itself
    is fine and would run under a fresh key; what conflicts is the state the key already
    names (RFC 9110's meaning of 409), and bosun's 422 means screening refused the content,
    which a client must not handle the same way. The runtime raises it (it owns the key), so
    every way in, the API, ``/v1/inbox``, IMAP and the CLI, refuses alike."""

    status = 409

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


# --- run failures ---------------------------------------------------------------------------


class RunFailure(BosunError):
    """Something failed while a run was executing."""


class ModelError(RunFailure):
    """A model provider call failed. `retryable` says whether trying again may help."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status_code = status_code

    @property
    def kind(self) -> str:
        """Stable snake_case name of the error kind, as journaled and shown in traces."""
        return _KINDS[type(self)]


class ModelRateLimited(ModelError):
    """The provider rate-limited the call; `retry_after` is its hint in seconds, if any."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ModelTimeout(ModelError):
    """The provider did not answer in time."""

    retryable = True


class ModelAuthError(ModelError):
    """Credentials are missing, wrong or lack permission."""


class ModelRefusal(ModelError):
    """The model refused to answer (safety refusal or content filter)."""


class ModelBadResponse(ModelError):
    """The response could not be used: malformed body, empty answer, broken tool call."""

    retryable = True


class ModelUnavailable(ModelError):
    """The provider is down, overloaded or unreachable."""

    retryable = True


class ModelsExhausted(ModelUnavailable):
    """Every model of a fallback chain failed; `failures` are their errors, in the order tried
    (the runtime journals each with its model id). Retryable: the chain may recover."""

    def __init__(self, message: str, *, failures: tuple[ModelError, ...], **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.failures = failures


class ContextTooLong(ModelError):
    """The request exceeds the model's context window."""


_KINDS: dict[type[ModelError], str] = {
    ModelError: "model_error",
    ModelRateLimited: "rate_limited",
    ModelTimeout: "timeout",
    ModelAuthError: "auth",
    ModelRefusal: "refusal",
    ModelBadResponse: "bad_response",
    ModelUnavailable: "unavailable",
    ModelsExhausted: "models_exhausted",
    ContextTooLong: "context_too_long",
}


class ToolFailure(RunFailure):
    """Raised by tool code to classify a failure. Plain exceptions count as permanent."""

    retryable: bool = False

    def __init__(self, message: str, *, tool: str | None = None) -> None:
        super().__init__(message)
        self.tool = tool


class TransientToolError(ToolFailure):
    """A failure worth retrying with backoff (timeouts, 503s, lock contention)."""

    retryable = True


class PermanentToolError(ToolFailure):
    """A failure that retrying will not fix."""


class StoreError(RunFailure):
    """The store could not be read or written."""


class StoreUnavailable(StoreError):
    """The database could not be reached: connection refused, unknown host, timeout, login
    refused. The message is one line naming `host` and `port` (or the SQLite file) and why."""

    def __init__(self, message: str, *, host: str | None = None, port: int | None = None) -> None:
        super().__init__(message)
        self.host = host
        self.port = port


class JournalConflict(StoreError):
    """Another writer appended the same journal position: this process lost the run."""

    def __init__(self, message: str, *, run_id: str, seq: int) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.seq = seq


class DuplicateRun(StoreError):
    """A run with the same (tenant, idempotency key) was stored first; `run_id` names it."""

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class AuditChainBroken(RunFailure):
    """The audit log's hash chain does not verify at row `row_id`."""

    def __init__(self, message: str, *, row_id: int) -> None:
        super().__init__(message)
        self.row_id = row_id
