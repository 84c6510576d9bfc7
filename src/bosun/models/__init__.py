"""Models: one interface (`Model.request`) and the strings that name models.

The provider adapters are not imported here, to keep ``import bosun`` light; they live at
`bosun.models.openai.OpenAIModel`, `bosun.models.anthropic.AnthropicModel` and
`bosun.models.llamacpp.LlamaCppModel`, and `infer_model` imports the one a string names.
"""

from bosun.models._registry import infer_model
from bosun.models.base import (
    AssistantMessage,
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    StreamEvent,
    SystemMessage,
    TextDelta,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    Usage,
    UserMessage,
)

__all__ = [
    "AssistantMessage",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "StreamEvent",
    "SystemMessage",
    "TextDelta",
    "ToolCall",
    "ToolDefinition",
    "ToolMessage",
    "Usage",
    "UserMessage",
    "infer_model",
]
