"""The reference agent: a support inbox turned into tickets, end to end, on bosun's public API.

```
inbox/*.eml -> email_input -> Gateway (screening, grants) -> Runtime (PII vault, journal)
            -> agent (prompts/, tools.py, critic, taint policy; the scripted policy model
               or a real one) -> helpdesk.py (tickets, notes, drafts; replies and refunds
               once a person approves)
```

Modules: `helpdesk` (the example's own SQLite CRM and `seed`), `tools` (the agent's tools),
`email_input` (``.eml`` to run input), `triage` + `policy` + `replies` (the scripted policy
model), `agent` (`build_agent`), `inbox_run` (`process_inbox`), `knowledge`
(`load_knowledge`: the help articles in bosun's knowledge base). Data: ``inbox/`` (the sample
emails and their MANIFEST.yaml), ``golden.yaml`` (the evaluation dataset), ``prompts/`` (the
prompt, for the registry), ``kb/`` (30 help articles, English and Spanish), ``questions/``
(emails answered from them).
"""

from examples.support_desk.agent import build_agent
from examples.support_desk.email_input import InboundEmail, MalformedEmail, load_inbox, read_email
from examples.support_desk.helpdesk import Helpdesk, seed
from examples.support_desk.policy import MODEL_NAME, scripted_policy_model

__all__ = [
    "MODEL_NAME",
    "Helpdesk",
    "InboundEmail",
    "MalformedEmail",
    "build_agent",
    "load_inbox",
    "read_email",
    "scripted_policy_model",
    "seed",
]
