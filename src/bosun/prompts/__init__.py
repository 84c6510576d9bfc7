"""The prompt registry: versioned prompts, labels with canary and shadow rollouts, eval-gated
promotion (the spine's upper half, above the runtime).

``registry.py`` (`PromptRegistry`: versions and label moves), ``labels.py`` (label and rollout
values, stored-row mapping), ``source.py`` (`PromptSource`/`PromptRef`: instructions resolved
per run), ``template.py`` (`PromptVersion`: sandboxed Jinja2 with typed variables).
"""

from bosun.prompts.labels import PRODUCTION, PromptLabel
from bosun.prompts.registry import PromptRegistry
from bosun.prompts.source import PromptRef, PromptSource
from bosun.prompts.template import PromptVersion

__all__ = [
    "PRODUCTION",
    "PromptLabel",
    "PromptRef",
    "PromptRegistry",
    "PromptSource",
    "PromptVersion",
]
