"""Model strings such as ``openai:gpt-4.1-mini`` resolved to `Model` objects.

Adapters are imported only when a string names them: importing the provider SDKs costs
about 0.3 s, which ``import bosun`` must not pay.
"""

from __future__ import annotations

import re

from bosun.errors import ModelNameError
from bosun.models.base import Model

__all__ = ["infer_model"]

_FORMS = (
    "openai:<model> (e.g. openai:gpt-4.1-mini), "
    "openai:<model>@<base_url> for an OpenAI-compatible server "
    "(e.g. openai:qwen@http://127.0.0.1:8088/v1), "
    "anthropic:<model> (e.g. anthropic:claude-sonnet-4-5), "
    "anthropic:<model>@<base_url>, "
    "llamacpp:<path to .gguf> (e.g. llamacpp:/models/qwen2.5-7b.gguf)"
)
# The model part may itself contain "@" (Vertex-style versions); only "@http(s)://" splits.
_AT_URL = re.compile(r"\A(?P<model>.+?)@(?P<url>https?://\S+)\Z")


def infer_model(spec: str | Model) -> Model:
    """The model named by `spec`; a `Model` is returned unchanged.

    Raises `ModelNameError` for a string that names no known provider or no model.
    """
    if isinstance(spec, Model):
        return spec
    provider, sep, rest = spec.strip().partition(":")
    rest = rest.strip()
    if not sep or not rest:
        raise ModelNameError(f"cannot read model {spec!r}; use one of: {_FORMS}")
    if provider == "llamacpp":
        from bosun.models.llamacpp import LlamaCppModel

        return LlamaCppModel(model_path=rest)
    if provider not in ("openai", "anthropic"):
        raise ModelNameError(
            f"unknown model provider {provider!r} in {spec!r}; use one of: {_FORMS}"
        )
    match = _AT_URL.match(rest)
    model, base_url = (match["model"], match["url"]) if match else (rest, None)
    if provider == "openai":
        from bosun.models.openai import OpenAIModel

        return OpenAIModel(model=model, base_url=base_url)
    from bosun.models.anthropic import AnthropicModel

    return AnthropicModel(model=model, base_url=base_url)
