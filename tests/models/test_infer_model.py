"""Model strings resolved by `infer_model`, and the light import of `bosun.models`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bosun.errors import ModelNameError
from bosun.models import Model, ModelRequest, ModelResponse, infer_model
from bosun.models.anthropic import AnthropicModel
from bosun.models.openai import OpenAIModel


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


async def test_openai() -> None:
    model = infer_model("openai:gpt-4.1-mini")
    assert isinstance(model, OpenAIModel)
    assert (model.name, model.model_name) == ("openai:gpt-4.1-mini", "gpt-4.1-mini")
    assert model.base_url == "https://api.openai.com/v1"
    await model.aclose()


async def test_openai_compatible_server() -> None:
    model = infer_model("openai:qwen@http://127.0.0.1:8088/v1")
    assert isinstance(model, OpenAIModel)
    assert model.model_name == "qwen"
    assert model.base_url == "http://127.0.0.1:8088/v1"
    assert model.name == "openai:qwen@http://127.0.0.1:8088/v1"
    await model.aclose()


async def test_an_at_sign_without_a_url_belongs_to_the_model_name() -> None:
    model = infer_model("openai:my-model@2024")
    assert isinstance(model, OpenAIModel)
    assert model.model_name == "my-model@2024"
    await model.aclose()


async def test_anthropic() -> None:
    model = infer_model("anthropic:claude-sonnet-4-5")
    assert isinstance(model, AnthropicModel)
    assert (model.name, model.model_name) == ("anthropic:claude-sonnet-4-5", "claude-sonnet-4-5")
    await model.aclose()


async def test_anthropic_at_a_base_url() -> None:
    model = infer_model("anthropic:claude-sonnet-4-5@http://127.0.0.1:9/")
    assert isinstance(model, AnthropicModel)
    assert model.base_url == "http://127.0.0.1:9"
    await model.aclose()


def test_a_model_object_passes_through() -> None:
    class Echo(Model):
        name = "echo"

        async def request(self, request: ModelRequest) -> ModelResponse:
            return ModelResponse(text="echo", model="echo", provider="scripted")

    echo = Echo()
    assert infer_model(echo) is echo


@pytest.mark.parametrize(
    "spec",
    ["gpt-4.1-mini", "openai:", "openai:  ", "mistral:large", "llamacpp:", ":gpt-4", ""],
)
def test_unresolvable_strings_list_the_valid_forms(spec: str) -> None:
    with pytest.raises(ModelNameError) as caught:
        infer_model(spec)
    message = str(caught.value)
    for form in ("openai:<model>", "openai:<model>@<base_url>", "anthropic:<model>", "llamacpp:"):
        assert form in message


def test_importing_bosun_models_does_not_import_the_sdks() -> None:
    code = (
        "import sys, bosun.models; "
        "print(sorted(m for m in ('openai', 'anthropic', 'llama_cpp', 'genai_prices')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
