"""The gateway plane: the security perimeter around the runtime.

`Gateway` (gateway.py) wraps a `Runtime`: API keys and principals (auth.py), request and
token limits (ratelimit.py), input checks (inputs.py), injection screening (injection/),
PII detection and the encrypted per-run vault (pii.py, vault.py), output guardrails
(guardrails/), approvals and escalations for any caller (people.py), email in (email.py).
The trust vocabulary is `bosun.trust`; taint gating lives in the runtime
(`bosun.runtime.taint`), because it must hold inside the loop whatever the model does.

Heavy parts load lazily: importing this package does not import Presidio.
"""
