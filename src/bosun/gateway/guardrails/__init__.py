"""Output guardrails: what a run's answer must pass before it leaves bosun.

A guardrail is any object with a ``name`` and ``check(output, ctx) -> GuardrailVerdict``; it
returns data and never raises for bad content. `Guardrails` folds several into one object with
the same interface, so the gateway wraps the runtime with one guardrail whatever it holds:

```
guard           finds                                          default action
--------------  ---------------------------------------------  --------------
SecretsGuard    API keys, tokens, private keys, passwords        block
PiiGuard        raw PII (placeholders such as <EMAIL_1> pass)    redact
GroundingGuard  order ids, tickets, amounts found in no source   escalate
SchemaGuard     structured output that is not JSON of ctx.schema block
```

Decisions a reader would otherwise have to reverse-engineer:

* **Severity.** allow < redact < escalate < block; the composite takes the most severe action
  and keeps every verdict (`results`) for the trace and the audit log. Every guard accepts
  ``action="allow"`` too: it then only reports (a dry run before enforcing).
* **Redactions chain.** Each guard sees the text as the guards before it left it, and the
  composite's `text` is the output with every redaction applied, whatever the final action, so
  an escalation hands a person the redacted text. Put `SecretsGuard` before `PiiGuard`: a
  detector that also reports ``SECRET`` would otherwise redact the key and turn a block into a
  redaction (the key still never leaves, but the audit shows the weaker action).
* **Fail closed.** A guard that raises (a broken detector) yields a block in the composite; a
  misconfiguration (`UserError`) propagates.
* **Raw PII is judged by recipient, not by provenance.** The gateway masks PII as it enters a
  run, so raw PII in an answer has leaked past masking (an unmasked tool result, say). That it
  also appears in a source says nothing about who may read it: a CRM lookup returns other
  customers' e-mails too. So there is no "allow what the sources contain" switch; the entity
  types this answer's recipient may read in clear are `OutputContext.allowed_pii`.
* **Reasons never repeat what they guard.** A secret or PII value appears as a preview such as
  ``sk-…f3a9``; schema errors give paths and expectations, never the offending value.
  Fabricated identifiers are quoted whole: by definition they came from no source.

The composite and the types every guard speaks are in `base`; each guard has its own module
(`pii`, `secrets` with its built-in table, `grounding`, `schema`), and the two span-finding
guards share `redaction`.
"""

from __future__ import annotations

from bosun.gateway.guardrails.base import (
    Action,
    Detector,
    Finding,
    Guardrail,
    Guardrails,
    GuardrailVerdict,
    OutputContext,
    SpanLike,
)
from bosun.gateway.guardrails.grounding import DEFAULT_IDENTIFIERS, GroundingGuard
from bosun.gateway.guardrails.pii import PiiGuard
from bosun.gateway.guardrails.schema import SchemaGuard
from bosun.gateway.guardrails.secrets import SecretsGuard

__all__ = [
    "Action",
    "DEFAULT_IDENTIFIERS",
    "Detector",
    "Finding",
    "GroundingGuard",
    "Guardrail",
    "GuardrailVerdict",
    "Guardrails",
    "OutputContext",
    "PiiGuard",
    "SchemaGuard",
    "SecretsGuard",
    "SpanLike",
]
