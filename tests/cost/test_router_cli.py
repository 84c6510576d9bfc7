"""``bosun router train | evaluate``: the learned router trained from labelled traffic, and the
shipped weights measured on banking77's held-out fifth."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bosun.cli import app
from bosun.economy import load_router
from bosun.economy.training import evaluate, load_traffic

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from third_party import data_dir

runner = CliRunner()

MAPPING = """\
tiers: [cheap, balanced, premium]
intents:
  cheap: [fees]
  balanced: [pending]
  premium: [stolen]
"""

WORDS = {
    "fees": ["fee", "charge", "cost", "price"],
    "pending": ["pending", "waiting", "stuck", "delayed"],
    "stolen": ["stolen", "thief", "robbed", "fraud"],
}


def traffic(path: Path) -> Path:
    """Small labelled traffic: each intent has its own vocabulary, so a router that learned
    anything routes the held-out messages right."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category"])
        for intent, words in WORDS.items():
            for i in range(60):
                a, b = words[i % 4], words[(i // 4) % 4]
                writer.writerow([f"message {i} about the {a} and the {b} on my card", intent])
    return path


def test_train_writes_weights_that_route_held_out_traffic(tmp_path: Path) -> None:
    data = traffic(tmp_path / "traffic.csv")
    tiers = tmp_path / "tiers.yaml"
    tiers.write_text(MAPPING, encoding="utf-8")
    out = tmp_path / "router.json"
    trained = runner.invoke(
        app, ["router", "train", "--data", str(data), "--tiers", str(tiers), "--out", str(out)]
    )
    assert trained.exit_code == 0, trained.output
    assert "accuracy: 1.000" in trained.output
    router = load_router(out)
    decision = router.classify("my card was stolen by a thief")
    assert decision is not None and decision.tier == "premium"
    evaluated = runner.invoke(
        app, ["router", "evaluate", "--data", str(data), "--tiers", str(tiers), "--model", str(out)]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "cost vs always-balanced" in evaluated.output


def test_an_intent_without_a_tier_is_refused_by_name(tmp_path: Path) -> None:
    data = traffic(tmp_path / "traffic.csv")
    tiers = tmp_path / "tiers.yaml"
    tiers.write_text(MAPPING.replace("  premium: [stolen]\n", "  premium: []\n"), "utf-8")
    result = runner.invoke(app, ["router", "evaluate", "--data", str(data), "--tiers", str(tiers)])
    assert result.exit_code == 1
    assert "gives no tier for: stolen" in result.output


@pytest.mark.dataset("intents")
def test_the_shipped_router_on_banking77_held_out() -> None:
    _, examples = load_traffic(data_dir() / "intents" / "banking77-train.csv")
    report = evaluate(load_router(), examples)
    assert report.examples > 1500
    # The quality risk is sending a request below the tier it needs: kept small.
    assert report.accuracy >= 0.9
    assert report.under_routed <= 0.05
    # Cheaper than the perfect router would be impossible without under-routing much more.
    assert report.cost_vs_balanced < report.oracle_vs_balanced * 1.05
