"""The prompt registry on both backends: versions, sandboxed templates, labels, canaries,
rollback, the promotion gate, repo sync, and prompts resolved by the runtime."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from bosun.data.store import Store
from bosun.evals.runner import EvalReport, save_report
from bosun.models.base import ModelRequest, ModelResponse
from bosun.prompts.registry import (
    PromotionRefused,
    PromptError,
    PromptNotFound,
    PromptRef,
    PromptRegistry,
    PromptSource,
    canary_bucket,
    render,
)
from bosun.runtime import Agent, Runtime
from bosun.testing import ScriptedModel, reply

TEMPLATE = "You help {{ customer }} (tier {{ tier }}).{% if vip %} Be extra kind.{% endif %}"
VARIABLES = {"customer": "str", "tier": "int", "vip": "bool"}


@pytest.fixture
def registry(store: Store) -> PromptRegistry:
    return PromptRegistry(store)


def make(registry: PromptRegistry, version: str, template: str = "Be helpful, v{{ n }}.") -> None:
    registry.create("support", version, template, variables={"n": "str"}, owner="ana")


def gate(
    registry: PromptRegistry,
    version: str,
    *,
    passed: bool,
    dataset: str = "golden",
    name: str = "support",
) -> None:
    """Record an evaluation run with a gate verdict, as `bosun eval --gate` does."""
    report = EvalReport(
        id=f"eval-{name}-{version}-{passed}-{dataset}",
        dataset=dataset,
        dataset_path=None,
        dataset_digest="0" * 64,
        agent="support",
        prompt_name=name,
        prompt_version=version,
        cases=(),
    )
    save_report(registry.store, report, gate={"passed": passed}, gate_passed=passed)


# --- versions and templates ---------------------------------------------------------------


def test_versions_are_created_read_back_and_ordered_semantically(registry: PromptRegistry) -> None:
    registry.create(
        "support",
        "1.2.0",
        TEMPLATE,
        variables=VARIABLES,
        model_settings={"temperature": 0.2},
        changelog="first",
        owner="ana",
    )
    registry.create("support", "1.10.0", "Hi {{ customer }}", variables={"customer": "str"})
    got = registry.get("support", "1.2.0")
    assert (got.template, dict(got.variables), got.owner) == (TEMPLATE, VARIABLES, "ana")
    assert dict(got.model_settings) == {"temperature": 0.2}
    assert got.settings().temperature == 0.2
    assert len(got.digest) == 64
    assert [v.version for v in registry.versions("support")] == ["1.2.0", "1.10.0"]
    assert registry.latest("support").version == "1.10.0"  # not "1.2.0", as strings would sort
    assert registry.list() == ["support"]


@pytest.mark.parametrize(
    ("version", "template", "variables", "settings", "message"),
    [
        ("1.0", "x", {}, {}, "not a semantic version"),
        ("1.0.0", "Hi {{ name }}", {}, {}, "undeclared variables ['name']"),
        ("1.0.0", "Hi {{ name }", {"name": "str"}, {}, "does not parse"),
        ("1.0.0", "x", {"n": "number"}, {}, "use one of str, int"),
        ("1.0.0", "x", {}, {"temprature": 0.1}, "model_settings"),
    ],
)
def test_invalid_versions_are_refused_at_create(
    registry: PromptRegistry,
    version: str,
    template: str,
    variables: dict[str, str],
    settings: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(PromptError, match=message.replace("[", r"\[").replace("]", r"\]")):
        registry.create("p", version, template, variables=variables, model_settings=settings)
    assert registry.list() == []


def test_versions_are_immutable_and_must_increase(registry: PromptRegistry) -> None:
    make(registry, "1.1.0")
    with pytest.raises(PromptError, match="immutable"):
        make(registry, "1.1.0", "changed {{ n }}")
    with pytest.raises(PromptError, match="not greater than the latest"):
        make(registry, "1.0.9")
    make(registry, "1.2.0-rc.1")  # a pre-release sorts after 1.1.0 ...
    with pytest.raises(PromptError, match="not greater"):
        make(registry, "1.1.5-rc.1")  # ... and before 1.2.0
    make(registry, "1.2.0")
    assert registry.latest("support").version == "1.2.0"


def test_variables_are_type_checked_before_rendering(registry: PromptRegistry) -> None:
    registry.create("support", "1.0.0", TEMPLATE, variables=VARIABLES)
    version = registry.get("support", "1.0.0")
    text = version.render({"customer": "Ann", "tier": 2, "vip": True})
    assert text == "You help Ann (tier 2). Be extra kind."
    with pytest.raises(PromptError, match="'tier' must be int, got str"):
        version.render({"customer": "Ann", "tier": "2", "vip": True})
    with pytest.raises(PromptError, match="'tier' must be int, got bool"):
        version.render({"customer": "Ann", "tier": True, "vip": True})
    with pytest.raises(PromptError, match=r"needs variables \['vip'\]"):
        version.render({"customer": "Ann", "tier": 1})
    with pytest.raises(PromptError, match=r"does not declare variables \['typo'\]"):
        version.render({"customer": "Ann", "tier": 1, "vip": False, "typo": 1})


@pytest.mark.parametrize(
    "template",
    [
        "{{ items.__class__.__mro__ }}",  # reaching Python internals
        "{{ items.append(3) }}",  # mutating what it was given
    ],
)
def test_templates_render_in_a_sandbox(registry: PromptRegistry, template: str) -> None:
    registry.create("p", "1.0.0", template, variables={"items": "list"})
    items = [1, 2]
    with pytest.raises(PromptError):
        registry.get("p", "1.0.0").render({"items": items})
    assert items == [1, 2]


def test_diff_shows_template_and_settings_changes(registry: PromptRegistry) -> None:
    registry.create("p", "1.0.0", "Be brief.\nUse tools.", model_settings={"temperature": 0.0})
    registry.create("p", "1.1.0", "Be thorough.\nUse tools.", model_settings={"temperature": 0.7})
    diff = registry.diff("p", "1.0.0", "1.1.0")
    assert "--- p@1.0.0" in diff and "+++ p@1.1.0" in diff
    assert "-Be brief." in diff and "+Be thorough." in diff
    assert ' "temperature": 0.0' in diff.replace("-", " ") and '+  "temperature": 0.7' in diff
    assert " Use tools." in diff  # unchanged context


# --- labels, gate, canary, rollback -----------------------------------------------------------


def test_promotion_to_production_is_refused_without_a_passing_gate(
    registry: PromptRegistry,
) -> None:
    make(registry, "1.0.0")
    with pytest.raises(PromotionRefused, match="has no evaluation gate"):
        registry.promote("support", "1.0.0", "production", by="ana")
    registry.promote("support", "1.0.0", "staging", by="ana")  # other labels need no gate
    gate(registry, "1.0.0", passed=False)
    with pytest.raises(PromotionRefused, match="failed its latest gate"):
        registry.promote("support", "1.0.0", "production", by="ana")
    assert registry.label("support", "production") is None
    gate(registry, "1.0.0", passed=True)
    label = registry.promote("support", "1.0.0", "production", by="ana")
    assert (label.version, label.updated_by) == ("1.0.0", "ana")
    assert registry.resolve("support").version == "1.0.0"


def test_a_newer_failing_gate_on_any_dataset_blocks_promotion(registry: PromptRegistry) -> None:
    make(registry, "1.0.0")
    gate(registry, "1.0.0", passed=True, dataset="refunds")
    gate(registry, "1.0.0", passed=True, dataset="billing")
    assert registry.gate_status("support", "1.0.0").passed
    gate(registry, "1.0.0", passed=False, dataset="billing")
    status = registry.gate_status("support", "1.0.0")
    assert not status.passed and "billing" in status.reason and "refunds" not in status.reason


def test_label_moves_are_audited_with_who_did_them(registry: PromptRegistry) -> None:
    make(registry, "1.0.0")
    make(registry, "1.1.0")
    registry.promote("support", "1.0.0", "staging", by="ana")
    registry.promote("support", "1.1.0", "staging", by="bo")
    registry.rollback("support", "staging", by="cy")
    rows = [r for r in registry.store.audit_rows() if r["action"].startswith("prompt_")]
    moves = [(r["action"], r["actor"], json.loads(r["payload"])) for r in rows]
    assert [(a, who) for a, who, _ in moves] == [
        ("prompt_created", None),
        ("prompt_created", None),
        ("prompt_promoted", "ana"),
        ("prompt_promoted", "bo"),
        ("prompt_rolled_back", "cy"),
    ]
    assert moves[3][2] == {
        "name": "support",
        "label": "staging",
        "version": "1.1.0",
        "previous": "1.0.0",
    }
    assert moves[4][2]["version"] == "1.0.0" and moves[4][2]["previous"] == "1.1.0"
    assert registry.store.verify_audit().ok


def test_a_label_move_whose_audit_fails_does_not_happen(
    registry: PromptRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(registry, "1.0.0")
    make(registry, "1.1.0")
    registry.promote("support", "1.0.0", "staging", by="ana")

    def broken(*_: object) -> None:
        raise RuntimeError("the audit log is unwritable")

    monkeypatch.setattr(registry.store, "audit_in", broken)
    with pytest.raises(RuntimeError, match="unwritable"):
        registry.promote("support", "1.1.0", "staging", by="bo")
    with pytest.raises(RuntimeError, match="unwritable"):
        make(registry, "1.2.0")
    monkeypatch.undo()
    label = registry.label("support", "staging")
    assert label is not None and label.version == "1.0.0"  # the move rolled back with it
    assert [v.version for v in registry.versions("support")] == ["1.0.0", "1.1.0"]


def test_rollback_restores_the_previous_version_step_by_step(registry: PromptRegistry) -> None:
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        make(registry, version)
        gate(registry, version, passed=True)
        registry.promote("support", version, "production", by="ana")
    registry.set_canary("support", "production", "1.0.0", 20, by="ana")
    assert registry.rollback("support", "production", by="bo").version == "1.1.0"
    label = registry.label("support", "production")
    assert label is not None and label.canary is None  # rolling back ends the canary
    assert [m.version for m in label.history] == ["1.0.0"]
    assert registry.resolve("support", key="anyone").version == "1.1.0"
    assert registry.rollback("support", "production", by="bo").version == "1.0.0"
    with pytest.raises(PromptError, match="no earlier version"):
        registry.rollback("support", "production", by="bo")
    with pytest.raises(PromptNotFound):
        registry.rollback("support", "staging", by="bo")


def test_canary_split_is_within_tolerance_sticky_and_monotone(registry: PromptRegistry) -> None:
    make(registry, "1.0.0")
    make(registry, "1.1.0")
    registry.promote("support", "1.0.0", "staging", by="ana")
    registry.set_canary("support", "staging", "1.1.0", 10, by="ana")
    keys = [f"conversation-{i}" for i in range(1000)]
    first = {k: registry.resolve("support", "staging", key=k).version for k in keys}
    share = sum(v == "1.1.0" for v in first.values()) / len(keys)
    assert 0.07 <= share <= 0.13
    again = {k: registry.resolve("support", "staging", key=k).version for k in keys[:200]}
    assert again == {k: first[k] for k in keys[:200]}  # the same key, the same version
    registry.set_canary("support", "staging", "1.1.0", 30, by="ana")
    wider = {k: registry.resolve("support", "staging", key=k).version for k in keys}
    assert all(wider[k] == "1.1.0" for k in keys if first[k] == "1.1.0")  # nobody flips back
    assert 0.26 <= sum(v == "1.1.0" for v in wider.values()) / len(keys) <= 0.34
    assert registry.resolve("support", "staging").version == "1.0.0"  # no key, no canary
    registry.clear_canary("support", "staging", by="ana")
    assert {registry.resolve("support", "staging", key=k).version for k in keys} == {"1.0.0"}


def test_canary_buckets_are_per_prompt() -> None:
    # The same conversation is not always in every prompt's canary.
    keys = [f"k{i}" for i in range(200)]
    a = [canary_bucket("a", k) < 1000 for k in keys]
    b = [canary_bucket("b", k) < 1000 for k in keys]
    assert a != b


def test_a_production_canary_needs_a_gate_and_a_different_version(
    registry: PromptRegistry,
) -> None:
    make(registry, "1.0.0")
    make(registry, "1.1.0")
    gate(registry, "1.0.0", passed=True)
    registry.promote("support", "1.0.0", "production", by="ana")
    with pytest.raises(PromotionRefused):
        registry.set_canary("support", "production", "1.1.0", 5, by="ana")
    with pytest.raises(PromptError, match="between 0 and 100"):
        registry.set_canary("support", "production", "1.1.0", 100, by="ana", require_gate=False)
    with pytest.raises(PromptError, match="already points at"):
        registry.set_canary("support", "production", "1.0.0", 5, by="ana", require_gate=False)
    gate(registry, "1.1.0", passed=True)
    label = registry.set_canary("support", "production", "1.1.0", 5, by="ana")
    assert label.canary is not None and (label.canary.version, label.canary.percent) == (
        "1.1.0",
        5.0,
    )
    # Promoting the canary's version ends the canary: every key gets it now.
    label = registry.promote("support", "1.1.0", "production", by="ana")
    assert (label.version, label.canary) == ("1.1.0", None)


def test_shadow_is_recorded_on_the_label(registry: PromptRegistry) -> None:
    make(registry, "1.0.0")
    make(registry, "1.1.0")
    registry.promote("support", "1.0.0", "staging", by="ana")
    assert registry.set_shadow("support", "staging", "1.1.0", by="ana").shadow == "1.1.0"
    assert registry.resolve("support", "staging", key="k").version == "1.0.0"
    assert registry.clear_shadow("support", "staging", by="ana").shadow is None


# --- repo files -------------------------------------------------------------------------------


def write_prompt(folder: Path, name: str, version: str, template: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-{version}.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: {name}
            version: {version}
            owner: ana
            changelog: from the repo
            variables: {{customer: str}}
            model_settings: {{temperature: 0.1}}
            template: |
              {template}
            """
        )
    )


def test_sync_creates_new_versions_and_refuses_changed_ones(
    registry: PromptRegistry, tmp_path: Path
) -> None:
    folder = tmp_path / "prompts"
    write_prompt(folder, "support", "1.0.0", "Help {{ customer }}.")
    write_prompt(folder / "nested", "support", "1.1.0", "Help {{ customer }} kindly.")
    report = registry.sync_from_dir(folder, by="ci")
    assert report.created == ("support@1.0.0", "support@1.1.0")
    synced = registry.get("support", "1.1.0")
    assert synced.template == "Help {{ customer }} kindly.\n"
    assert (synced.owner, synced.changelog, dict(synced.model_settings)) == (
        "ana",
        "from the repo",
        {"temperature": 0.1},
    )
    again = registry.sync_from_dir(folder, by="ci")
    assert (again.created, again.unchanged) == ((), ("support@1.0.0", "support@1.1.0"))

    write_prompt(folder, "support", "1.0.0", "Help {{ customer }} NOW.")  # edited in place
    write_prompt(folder, "support", "1.2.0", "Help {{ customer }} well.")
    with pytest.raises(PromptError, match="support@1.0.0 .* differs"):
        registry.sync_from_dir(folder, by="ci")
    assert registry.latest("support").version == "1.1.0"  # nothing was created


def test_sync_reports_invalid_files_with_their_path(
    registry: PromptRegistry, tmp_path: Path
) -> None:
    (tmp_path / "bad.yaml").write_text("name: p\nversion: 1.0.0\ntemplate: '{{ x }}'\n")
    with pytest.raises(PromptError, match=r"bad\.yaml.*undeclared variables \['x'\]"):
        registry.sync_from_dir(tmp_path)
    (tmp_path / "bad.yaml").write_text("name: p\nversion: 1.0.0\n")
    with pytest.raises(PromptError, match=r"bad\.yaml is not a valid prompt file:\n- template"):
        registry.sync_from_dir(tmp_path)


# --- resolved by the runtime ------------------------------------------------------------------


def echo_system(request: ModelRequest) -> ModelResponse:
    return reply(request.messages[0].content or "")  # type: ignore[union-attr]


def test_render_follows_the_label_and_the_canary(registry: PromptRegistry) -> None:
    registry.create("p", "1.0.0", "v1 for {{ who }}", variables={"who": "str"})
    registry.create("p", "2.0.0", "v2 for {{ who }}", variables={"who": "str"})
    registry.promote("p", "1.0.0", "staging", by="ana")
    registry.set_canary("p", "staging", "2.0.0", 50, by="ana")
    ref = PromptRef("p", "staging")
    keys = [f"k{i}" for i in range(40)]
    rendered = {k: render(ref, registry, {"who": "Ann"}, k) for k in keys}
    in_canary = {k for k in keys if canary_bucket("p", k) < 5000}
    assert {k for k, r in rendered.items() if r.version == "2.0.0"} == in_canary
    sample = rendered[next(iter(in_canary))]
    assert (sample.text, sample.label, sample.name) == ("v2 for Ann", "staging", "p")
    assert sample.digest == registry.get("p", "2.0.0").digest


async def test_the_runtime_journals_the_prompt_version_a_run_used(
    registry: PromptRegistry,
) -> None:
    registry.create("p", "1.0.0", "You are v1.", model_settings={"temperature": 0})
    registry.create("p", "1.1.0", "You are v1.1.")
    gate(registry, "1.0.0", passed=True, name="p")
    registry.promote("p", "1.0.0", "production", by="ana")
    registry.set_canary("p", "production", "1.1.0", 50, by="ana", require_gate=False)
    source = PromptSource(registry, PromptRef("p"))
    agent = Agent(name="versioned", instructions=source, model=ScriptedModel(echo_system))
    conversations = ["c-1", "c-2", "c-3", "c-4", "c-5", "c-6"]
    async with Runtime(store=registry.store, agents=[agent]) as rt:
        for conversation in conversations:
            run_id = await rt.start(agent, "hi", conversation=conversation)
            result = await rt.resume(run_id)
            started = json.loads(rt.store.journal(run_id)[0].payload)
            expected = "1.1.0" if canary_bucket("p", conversation) < 5000 else "1.0.0"
            assert started["prompt"]["version"] == expected
            assert started["prompt"]["label"] == "production"
            assert result.output == {"1.0.0": "You are v1.", "1.1.0": "You are v1.1."}[expected]
