"""The web dashboard, served by `bosun serve` at ``/``: people approve held calls, answer
escalations, follow runs, watch operations and edit prompts, logged in with their API key.

```
login.py          GET/POST /login (API key -> signed session cookie), POST /logout, GET /
approvals.py      the approvals queue: evidence, edit within the tool's schema, decide
escalations.py    handoff packages: claim, hand back, close
runs.py           runs list (filters, keyset pages), a run: waterfall, journal replay, feedback
pipelines.py      a pipeline: its stages, each stage run linked to the run view
ops.py            charts over time (charts.py: server-rendered SVG) from bosun.data.operations
prompts.py        the prompt console's pages; prompt_actions.py its changes; gates.py the
                  evaluation gate run in the background
context.py        the shared parts and the signed-in Viewer (scopes of their roles)
security.py       sessions, CSRF, security headers; forms.py bounded form posts
render.py         Jinja2 (autoescaped), errors as pages; evidence.py what a run saw
templates/ static/  the pages, one stylesheet, one script (no inline script: CSP)
```

Every read and change goes through the same `Gateway` as the REST API (scopes, tenancy,
audit) and the same spine objects as the CLI (`PromptRegistry`, `run_gate`, `trace_of`);
the pages add no rule of their own.
"""

from bosun.service.dashboard.mount import mount

__all__ = ["mount"]
