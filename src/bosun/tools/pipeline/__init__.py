"""The tool pipeline: one `ToolExecutor` per process runs every tool call of every run.

A call passes through small stages, each ``async (inv, tool, args, call_next) -> ToolResult``,
folded around the call like starlette middleware. Outermost first:

```
stage        answers (attempts=0 unless the tool ran)
-----------  -------------------------------------------------------------------------
lookup       UNKNOWN_TOOL (lists the tools this run may use)      } entry: turns the call
validate     INVALID_ARGUMENTS (which fields, what was expected)  } into a Tool + arguments
authorize    UNAUTHORIZED (no workaround offered)
approve      raises ApprovalRequired; APPROVAL_REJECTED; edited arguments re-validated
fallback     on TRANSIENT/TIMEOUT/FAILED/CIRCUIT_OPEN/RATE_LIMITED runs policy.fallback
rate limit   RATE_LIMITED with the seconds to wait (per tool, `limits` moving window)
breaker      CIRCUIT_OPEN without calling the tool
retry        tenacity, only on retryable kinds (TIMEOUT, TRANSIENT); sets `attempts`
timeout      TIMEOUT, per attempt
call         credential → function → exception mapping → result checked against its type
```

Decisions a reader would otherwise have to reverse-engineer:

* **Timeout inside retry.** DESIGN.md reads "timeout → retry with backoff"; taken literally the
  timeout would bound all attempts together, and an attempt that hangs would use up the budget
  so that nothing is retried. ``policy.timeout_s`` is *per attempt*, so a timed-out attempt is a
  retryable TIMEOUT like any other transient failure.
* **Breaker outside retry.** One logical call is one success or failure for the breaker, so
  ``failure_threshold`` counts calls, not attempts. Only TRANSIENT, TIMEOUT and FAILED count;
  model mistakes (invalid arguments, `ModelRetry` guidance) and refusals never reach it or
  leave it as it was, and so does INVALID_RESULT (a fault in the tool's code, not an outage).
* **Rate limit outside retry.** A call uses one slot however many attempts it takes; a limited
  call is refused at once (non-blocking) with the seconds to wait, read from the window.
* **Fallback after approval.** The fallback gets the arguments that were actually approved
  (edited ones included) and runs the *whole* pipeline under its own name: its own scope must
  be granted and its own approval policy applies. The human decision in the `Invocation` is for
  the call, so it carries over; if only the fallback needs approval, `ApprovalRequired` names
  the fallback tool. Fallback chains are checked for cycles when the executor is built.
* **Failures before the call report ``attempts=0``**: the tool did not run.
* **Credentials are resolved inside the call stage**, per attempt, and reach the tool as a
  `Secret`. Guidance that quotes the value is redacted and a result that contains it is
  withheld, so a careless tool cannot hand its credential to the model.

What a stage sees (`Invocation`, the stage types, early failures) is in `invocation`; the wrapper
stages in `stages`; the innermost call stage in `call`; `ToolExecutor`, which checks the tools
and folds the stages, in `executor`.
"""

from __future__ import annotations

from bosun.tools.pipeline.executor import ToolExecutor

# AnyTool is not public API; the runtime and the evals import it from here.
from bosun.tools.pipeline.invocation import AnyTool as AnyTool
from bosun.tools.pipeline.invocation import Invocation

__all__ = ["Invocation", "ToolExecutor"]
